//! Signed webhook notices: how zt4ai tells the people on call that it acted on
//! its own, such as quarantining an agent.
//!
//! The decision path must never wait on a receiver, so [`Notifier::notify`] hands
//! the notice to a background task and returns at once; the task retries with
//! exponential backoff and reports a [`Delivery`]. A notice is a JSON body POSTed
//! to the configured URL with these headers:
//!
//! | header | value |
//! |---|---|
//! | `content-type` | `application/json` |
//! | `x-zt4ai-event` | what happened, such as `agent.quarantined` |
//! | `x-zt4ai-delivery` | a random id, the same on every retry (deduplicate on it) |
//! | `x-zt4ai-timestamp` | Unix seconds when this attempt was sent |
//! | `x-zt4ai-signature` | `sha256=` and the lowercase hex HMAC-SHA256 of `<timestamp>.<body>` |
//!
//! The signature covers the timestamp, so a receiver that refuses timestamps
//! older than a few minutes also refuses a captured notice replayed later; each
//! attempt is signed afresh with its own timestamp. A receiver checks a notice
//! like this (or calls [`verify_signature`]):
//!
//! ```text
//! ts  = header("x-zt4ai-timestamp")
//! mac = hmac_sha256(secret, ts + "." + raw_body)
//! ok  = constant_time_eq("sha256=" + hex(mac), header("x-zt4ai-signature"))
//!       and abs(now - int(ts)) <= 300
//! ```
//!
//! Retries: a connection error, a timeout, a `5xx`, `408` or `429` is retried;
//! any other answer outside `2xx` is final. A `4xx` means the receiver looked at
//! the notice and rejected it (bad signature, unknown event, wrong path), and a
//! `3xx` is not followed (a redirect could send the signed notice elsewhere):
//! asking again would get the same answer, so the failure is logged at once
//! instead of after minutes of backoff.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use sha2::Sha256;
use tokio::task::JoinHandle;
use zt4ai_core::inventory::verification::{SecretSource, Webhook};
use zt4ai_core::unix_now;

/// The header naming the event.
pub const EVENT_HEADER: &str = "x-zt4ai-event";
/// The header carrying the delivery id, the same on every retry.
pub const DELIVERY_HEADER: &str = "x-zt4ai-delivery";
/// The header carrying the Unix seconds the attempt was signed at.
pub const TIMESTAMP_HEADER: &str = "x-zt4ai-timestamp";
/// The header carrying `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "x-zt4ai-signature";
/// The first wait between attempts; it doubles after each failed attempt.
pub const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

type HmacSha256 = Hmac<Sha256>;

/// Sends signed notices to one webhook. Cheap to clone: clones share the HTTP
/// client's connections.
#[derive(Clone)]
pub struct Notifier {
    url: reqwest::Url,
    /// Scheme, host and port only: what logs show. Many webhook URLs carry a
    /// token in their path or query (Slack's do), so the full URL is never logged.
    origin: String,
    /// HMAC keyed with the secret; cloned for each signature.
    key: HmacSha256,
    client: reqwest::Client,
    attempts: u32,
    backoff: Duration,
}

/// The outcome of one notice, once delivered or given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The `x-zt4ai-delivery` id the notice was sent with.
    pub id: String,
    /// Whether the receiver answered `2xx`.
    pub delivered: bool,
    /// How many attempts were made.
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("url", &self.origin)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier for `webhook`. The secret is read now, so a missing or empty
    /// one stops startup instead of failing the first quarantine; the error names
    /// the environment variable or file. A relative secret file is relative to the
    /// working directory: the caller resolves it beforehand if it means otherwise.
    pub fn new(webhook: &Webhook) -> Result<Notifier, String> {
        let secret = read_secret(&webhook.secret)?;
        let url = reqwest::Url::parse(&webhook.url)
            .map_err(|e| format!("webhook URL `{}`: {e}", webhook.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("webhook URL `{}` is not http(s)", webhook.url));
        }
        let origin = url.origin().ascii_serialization();
        if url.scheme() == "http" && !is_loopback(&url) {
            tracing::warn!(url = %origin,
                "the webhook URL is plain http: notices are signed but readable on the way");
        }
        let key = HmacSha256::new_from_slice(secret.as_bytes())
            .map_err(|e| format!("webhook secret: {e}"))?;
        // One TLS implementation for the process: rustls with ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(webhook.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("zt4ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client for the webhook: {e}"))?;
        Ok(Notifier {
            url,
            origin,
            key,
            client,
            attempts: webhook.attempts.max(1),
            backoff: BASE_BACKOFF,
        })
    }

    /// Replaces the first wait between attempts ([`BASE_BACKOFF`]); it still
    /// doubles up to [`MAX_BACKOFF`]. For tests, which cannot wait for seconds.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration) -> Self {
        self.backoff = base;
        self
    }

    /// Sends `body` as the notice of `event` in the background and returns at
    /// once; await the handle to learn the outcome, or drop it (delivery goes on).
    /// Failed attempts are logged as warnings, giving up as an error.
    ///
    /// Must be called within a Tokio runtime.
    pub fn notify(&self, event: &str, body: serde_json::Value) -> JoinHandle<Delivery> {
        let this = self.clone();
        let event = event.to_owned();
        tokio::spawn(async move { this.deliver(&event, &body).await })
    }

    async fn deliver(&self, event: &str, body: &serde_json::Value) -> Delivery {
        let id = delivery_id();
        let Ok(event_value) = HeaderValue::from_str(event) else {
            let error = format!("event `{event}` is not a valid header value");
            return self.give_up(event, id, 0, error);
        };
        let body = match serde_json::to_vec(body) {
            Ok(b) => b,
            Err(e) => return self.give_up(event, id, 0, format!("body: {e}")),
        };
        let mut delay = self.backoff.min(MAX_BACKOFF);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (error, retry) = match self.attempt(&event_value, &id, &body).await {
                Ok(()) => {
                    tracing::debug!(url = %self.origin, event, delivery = %id, attempt,
                        "webhook notice delivered");
                    return Delivery {
                        id,
                        delivered: true,
                        attempts: attempt,
                        last_error: None,
                    };
                }
                Err(failure) => failure,
            };
            tracing::warn!(url = %self.origin, event, delivery = %id, attempt, %error,
                "webhook attempt failed");
            if !retry || attempt >= self.attempts {
                return self.give_up(event, id, attempt, error);
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2).min(MAX_BACKOFF);
        }
    }

    fn give_up(&self, event: &str, id: String, attempts: u32, error: String) -> Delivery {
        tracing::error!(url = %self.origin, event, delivery = %id, attempts, %error,
            "webhook notice not delivered; giving up");
        Delivery {
            id,
            delivered: false,
            attempts,
            last_error: Some(error),
        }
    }

    /// One signed POST. An error is what went wrong and whether to try again.
    async fn attempt(
        &self,
        event: &HeaderValue,
        id: &str,
        body: &[u8],
    ) -> Result<(), (String, bool)> {
        let timestamp = unix_now().to_string();
        let signature = format!("sha256={}", zt4ai_core::hex(&self.sign(&timestamp, body)));
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.clone())
            .header(DELIVERY_HEADER, id)
            .header(TIMESTAMP_HEADER, &timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err((format!("answered {}", r.status()), retryable(r.status()))),
            Err(e) if e.is_timeout() => Err(("timed out".into(), true)),
            // Without the URL: reqwest's messages name it, and it may hold a token.
            Err(e) => {
                let retry = !e.is_builder();
                Err((error_chain(&e.without_url()), retry))
            }
        }
    }

    fn sign(&self, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Whether `header` (`sha256=<hex>`) is the signature of `body` sent at
/// `timestamp` (the `x-zt4ai-timestamp` header, as received) under `secret`.
/// The comparison takes constant time. It does not judge the timestamp's age:
/// a receiver should also refuse timestamps more than a few minutes from now.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(expected) = header.strip_prefix("sha256=").and_then(unhex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Retried: the receiver is down, overloaded or asks to slow down. Final: it
/// answered, and would answer the same again.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

fn read_secret(source: &SecretSource) -> Result<String, String> {
    source.read().map_err(|e| format!("webhook secret: {e}"))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A random delivery id (128 bits, hex). If the system has no randomness to give,
/// the time stands in: the id only lets receivers deduplicate retries.
fn delivery_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = nanos.to_be_bytes();
    }
    zt4ai_core::hex(&b)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// An error with its causes: reqwest's own message hides why a connection failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
