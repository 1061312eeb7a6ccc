//! Signed webhook notices against a real receiver on loopback: what is sent, how
//! it is signed, and which failures are retried.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;
use zt4ai_core::inventory::verification::{SecretSource, Webhook};
use zt4ai_gateway::notify::{
    DELIVERY_HEADER, EVENT_HEADER, Notifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature,
};

use super::unix_now;

const SECRET: &str = "s3cret-for-tests";

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header"))
            .to_str()
            .unwrap()
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer with, in order; once used up, `then`.
    answers: VecDeque<u16>,
    then: u16,
    seen: Vec<Seen>,
}

/// A receiver on loopback that records every request and answers as scripted.
struct Receiver {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start(answers: &[u16], then: u16) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            answers: answers.iter().copied().collect(),
            then,
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |State(s): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes| async move {
                        let mut s = s.lock().unwrap();
                        s.seen.push(Seen { headers, body });
                        let code = s.answers.pop_front().unwrap_or(s.then);
                        StatusCode::from_u16(code).unwrap()
                    },
                ),
            )
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, script }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
}

/// A webhook whose secret is in a file under `dir`.
fn webhook(dir: &Path, url: String, attempts: u32) -> Webhook {
    let file = dir.join("webhook-secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    Webhook {
        url,
        secret: SecretSource::File(file.to_str().unwrap().to_owned()),
        attempts,
        timeout: Duration::from_secs(5),
    }
}

fn notifier(dir: &Path, url: String, attempts: u32) -> Notifier {
    Notifier::new(&webhook(dir, url, attempts))
        .unwrap()
        .with_backoff(Duration::from_millis(1))
}

#[tokio::test]
async fn notice_carries_event_and_body_and_a_signature_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], 200).await;
    let n = notifier(dir.path(), receiver.url(), 3);
    assert!(!format!("{n:?}").contains(SECRET), "{n:?}");
    let body = json!({"agent": "report-agent", "reason": "exfiltration", "at": 1_700_000_000});
    let d = n.notify("agent.quarantined", body.clone()).await.unwrap();
    assert!(d.delivered, "{d:?}");
    assert_eq!((d.attempts, d.last_error), (1, None));

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.header("content-type"), "application/json");
    assert_eq!(s.header(EVENT_HEADER), "agent.quarantined");
    assert_eq!(s.header(DELIVERY_HEADER), d.id);
    assert_eq!(d.id.len(), 32);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&s.body).unwrap(),
        body
    );
    let ts = s.header(TIMESTAMP_HEADER);
    assert!((ts.parse::<i64>().unwrap() - unix_now()).abs() <= 5, "{ts}");
    let sig = s.header(SIGNATURE_HEADER);
    assert!(sig.starts_with("sha256="), "{sig}");
    assert_eq!(sig.len(), "sha256=".len() + 64);
    assert_eq!(sig, sig.to_ascii_lowercase());

    assert!(verify_signature(SECRET.as_bytes(), ts, &s.body, sig));
    assert!(!verify_signature(b"wrong secret", ts, &s.body, sig));
    let mut tampered = s.body.to_vec();
    tampered[1] ^= 1;
    assert!(!verify_signature(SECRET.as_bytes(), ts, &tampered, sig));
    // The timestamp is signed: replaying the notice under a new one fails.
    let later = (ts.parse::<i64>().unwrap() + 600).to_string();
    assert!(!verify_signature(SECRET.as_bytes(), &later, &s.body, sig));
    // Malformed headers are refused, not panicked on.
    for bad in [
        "",
        "sha256=",
        "sha1=00",
        &sig[7..],
        "sha256=zz",
        "sha256=+f",
    ] {
        assert!(
            !verify_signature(SECRET.as_bytes(), ts, &s.body, bad),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[500, 500], 200).await;
    let d = notifier(dir.path(), receiver.url(), 5)
        .notify("agent.quarantined", json!({"agent": "a"}))
        .await
        .unwrap();
    assert!(d.delivered, "{d:?}");
    assert_eq!((d.attempts, d.last_error), (3, None));
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(s.header(DELIVERY_HEADER), d.id);
        // Every attempt is signed afresh, and verifies.
        assert!(verify_signature(
            SECRET.as_bytes(),
            s.header(TIMESTAMP_HEADER),
            &s.body,
            s.header(SIGNATURE_HEADER)
        ));
    }
}

#[tokio::test]
async fn a_receiver_that_stays_unavailable_is_given_up_on_after_the_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], 503).await;
    let d = notifier(dir.path(), receiver.url(), 3)
        .notify("agent.quarantined", json!({}))
        .await
        .unwrap();
    assert!(!d.delivered);
    assert_eq!(d.attempts, 3);
    assert!(d.last_error.as_deref().unwrap().contains("503"), "{d:?}");
    assert_eq!(receiver.seen().len(), 3);
}

#[tokio::test]
async fn a_rejection_is_not_retried_but_rate_limiting_is() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&[], 400).await;
    let d = notifier(dir.path(), receiver.url(), 5)
        .notify("agent.quarantined", json!({}))
        .await
        .unwrap();
    assert!(!d.delivered);
    assert_eq!(d.attempts, 1);
    assert!(d.last_error.as_deref().unwrap().contains("400"), "{d:?}");
    assert_eq!(receiver.seen().len(), 1);

    let receiver = Receiver::start(&[429, 408], 204).await;
    let d = notifier(dir.path(), receiver.url(), 5)
        .notify("agent.quarantined", json!({}))
        .await
        .unwrap();
    assert!(d.delivered, "{d:?}");
    assert_eq!(d.attempts, 3);
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_until_the_attempts_run_out() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = notifier(dir.path(), format!("http://{addr}/hook"), 2)
        .notify("agent.quarantined", json!({}))
        .await
        .unwrap();
    assert!(!d.delivered);
    assert_eq!(d.attempts, 2);
    // The error says why, and does not repeat the URL (it may carry a token).
    let e = d.last_error.unwrap();
    assert!(!e.contains("/hook"), "{e}");
}

#[tokio::test]
async fn a_missing_secret_is_a_startup_error_that_names_where_it_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/hook".to_owned();
    let var = "ZT4AI_TEST_WEBHOOK_SECRET_THAT_IS_NEVER_SET";
    let e = Notifier::new(&Webhook {
        secret: SecretSource::Env(var.into()),
        ..webhook(dir.path(), url.clone(), 1)
    })
    .unwrap_err();
    assert!(e.contains(var) && e.contains("not set"), "{e}");

    let missing = dir.path().join("nowhere").join("secret");
    let e = Notifier::new(&Webhook {
        secret: SecretSource::File(missing.to_str().unwrap().into()),
        ..webhook(dir.path(), url.clone(), 1)
    })
    .unwrap_err();
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    let blank = dir.path().join("blank");
    std::fs::write(&blank, " \n\n").unwrap();
    let e = Notifier::new(&Webhook {
        secret: SecretSource::File(blank.to_str().unwrap().into()),
        ..webhook(dir.path(), url, 1)
    })
    .unwrap_err();
    assert!(
        e.contains(blank.to_str().unwrap()) && e.contains("empty"),
        "{e}"
    );
}
