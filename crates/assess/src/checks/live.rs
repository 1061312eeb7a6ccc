//! Checks against a running gateway, through its HTTP API.
//!
//! [`probe`] asks the gateway everything once, before the checks run, and keeps
//! each answer (status, content type, the start of the body) or why there was
//! none; the checks only read those answers. Probing is read-only except for
//! the kill-switch probe, which needs the admin token and touches nothing that
//! exists: it registers a throwaway agent of its own, shows that suspending it
//! takes effect on its very next request, and retires it. The throwaway agent
//! (`zt4ai-assess-probe-…`, retired) and its lifecycle records stay in the
//! registry and the audit log, as every admin change does.
//!
//! What the kill-switch probe can show with only the admin token: the agent
//! proves itself with a key it registered, and is let through to the next
//! stage of the token endpoint; once suspended, the same proof is refused at
//! once. Showing an already issued delegated token refused would need a user
//! token from the organisation's identity provider, which an assessor does not
//! hold; the gateway refuses both through the same registry check, on every
//! request.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

use super::{Check, Deployment, count};
use crate::model::{Evidence, Outcome};

pub(crate) const CHECKS: &[Check] = &[
    Check {
        id: "live-authn-required",
        about: "the running gateway refuses requests without credentials",
        run: authn_required,
    },
    Check {
        id: "live-kill-switch",
        about: "suspending an agent takes effect on its next request",
        run: kill_switch,
    },
    Check {
        id: "live-audit-verifiable",
        about: "the running gateway's audit log verifies",
        run: audit_verifiable,
    },
    Check {
        id: "live-metrics",
        about: "the running gateway exposes Prometheus metrics",
        run: metrics,
    },
    Check {
        id: "live-health",
        about: "the running gateway reports healthy and ready",
        run: health,
    },
    Check {
        id: "live-transport-tls",
        about: "the gateway is reached over TLS",
        run: transport_tls,
    },
];

/// Ids of the kill-switch probe's throwaway agents start with this.
pub const PROBE_AGENT_PREFIX: &str = "zt4ai-assess-probe-";

/// Most of a body kept for evidence.
const BODY_KEEP: usize = 4 * 1024;
/// Most of the metrics page read.
const METRICS_READ: usize = 4 * 1024 * 1024;
/// Most of any other body read.
const BODY_READ: usize = 256 * 1024;
/// Issuer of zt4ai's delegated tokens, when the gateway's metadata does not say.
const DEFAULT_ISSUER: &str = "zt4ai";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// What the running gateway answered (probed once, before the checks run).
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {
    /// The gateway's base URL, as given.
    pub base_url: String,
    /// Why probing could not start (a base URL that does not parse, no HTTP
    /// client); nothing else was asked then.
    pub error: Option<String>,
    /// `GET /healthz`.
    pub health: Answer,
    /// `GET /readyz`.
    pub ready: Answer,
    /// `GET /metrics` (its body is not kept; see `metric_families`).
    pub metrics: Answer,
    /// The `zt4ai_` metric families the metrics page declares or samples.
    pub metric_families: Vec<String>,
    /// The enforcement points and the admin API, asked without credentials.
    pub unauthenticated: Vec<Answer>,
    /// Whether an admin token was given.
    pub admin_token: bool,
    /// The kill-switch probe.
    pub kill_switch: KillSwitch,
    /// `GET /admin/v1/audit/verify`, when asked (`None`: why is in `audit_skipped`).
    pub audit: Option<Answer>,
    /// Why the audit log was not verified through the gateway.
    pub audit_skipped: Option<String>,
}

/// One request and its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// `GET`, `POST`.
    pub method: String,
    /// The path asked.
    pub path: String,
    /// The status, if there was an answer.
    pub status: Option<u16>,
    /// Its content type.
    pub content_type: Option<String>,
    /// The start of its body.
    pub body: String,
    /// Why there was no answer (connection refused, timeout, TLS).
    pub error: Option<String>,
}

impl Answer {
    /// `GET /healthz → 200`, `POST /oauth/token → 401 invalid_client`, for evidence.
    pub fn describe(&self) -> String {
        let outcome = match (self.status, &self.error) {
            (Some(s), _) => match self.error_code() {
                Some(code) => format!("{s} {code}"),
                None => s.to_string(),
            },
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "not asked".to_owned(),
        };
        format!("{} {} → {outcome}", self.method, self.path)
    }

    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The OAuth / admin API error code (`invalid_client`, …) of a JSON error.
    fn error_code(&self) -> Option<String> {
        self.json()?.get("error")?.as_str().map(str::to_owned)
    }
}

/// The kill-switch probe: what was done and what it showed.
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    /// Why it did not run (no admin token, no identity, …); `None` when it ran.
    pub skipped: Option<String>,
    /// The throwaway agent's id.
    pub agent: Option<String>,
    /// Every request made, in order.
    pub steps: Vec<Answer>,
    /// Whether the agent's proof was accepted before the suspension (`None`: not
    /// established).
    pub accepted_before: Option<bool>,
    /// Whether the same proof was refused right after it (`None`: not established).
    pub refused_after: Option<bool>,
    /// The refusal's reason, as the gateway gave it.
    pub refusal: Option<String>,
    /// Milliseconds from the suspension's answer to the refusal.
    pub refused_within_ms: Option<u64>,
    /// Whether the throwaway agent was retired afterwards.
    pub retired: bool,
}

/// Asks the gateway at `base_url` everything the live checks look at; with
/// `admin_token`, also runs the kill-switch probe and verifies its audit log
/// through the admin API. Each request waits at most `timeout`. Never fails:
/// every answer, and every reason there was none, is in the facts.
pub async fn probe(base_url: &str, admin_token: Option<&str>, timeout: Duration) -> LiveFacts {
    let mut facts = LiveFacts {
        base_url: base_url.to_owned(),
        admin_token: admin_token.is_some(),
        ..LiveFacts::default()
    };
    if let Err(e) = url::Url::parse(base_url) {
        facts.error = Some(format!("`{base_url}` is not a URL: {e}"));
        return facts;
    }
    // One TLS implementation for the process: rustls with ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("zt4ai-assess/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            facts.error = Some(format!("no HTTP client: {e}"));
            return facts;
        }
    };
    let g = Gateway {
        client,
        base: base_url.trim_end_matches('/').to_owned(),
    };

    facts.health = g.get("/healthz", None, BODY_READ).await;
    facts.ready = g.get("/readyz", None, BODY_READ).await;
    let (mut m, body) = g.get_body("/metrics", None, METRICS_READ).await;
    facts.metric_families = families(&body);
    m.body = String::new();
    facts.metrics = m;

    let evaluation = json!({
        "subject": {"type": "agent", "id": "zt4ai-assess-probe"},
        "action": {"name": "read"},
        "resource": {"type": "dataset", "id": "zt4ai-assess-probe"},
        "context": {"session": "zt4ai-assess-probe"}
    });
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "zt4ai-assess", "version": env!("CARGO_PKG_VERSION")}}
    });
    facts.unauthenticated = vec![
        g.post_json("/access/v1/evaluation", &evaluation, None)
            .await,
        g.post_json("/mcp", &initialize, None).await,
        g.get("/admin/v1/agents", None, BODY_READ).await,
    ];

    match admin_token {
        None => {
            facts.kill_switch.skipped = Some(NO_ADMIN_TOKEN.into());
            facts.audit_skipped = Some(NO_ADMIN_TOKEN.into());
        }
        Some(token) => {
            facts.kill_switch = kill_switch_probe(&g, token).await;
            let audit = g
                .get("/admin/v1/audit/verify", Some(token), BODY_READ)
                .await;
            facts.audit = Some(audit);
        }
    }
    facts
}

const NO_ADMIN_TOKEN: &str =
    "no admin token given (--admin-token-file, ZT4AI_ADMIN_TOKEN, or `admin-token` in --data-dir)";

/// The gateway, for the probes.
struct Gateway {
    client: reqwest::Client,
    base: String,
}

impl Gateway {
    async fn get(&self, path: &str, token: Option<&str>, limit: usize) -> Answer {
        self.get_body(path, token, limit).await.0
    }

    /// A `GET`, with the body read up to `limit` (the answer keeps its start).
    async fn get_body(&self, path: &str, token: Option<&str>, limit: usize) -> (Answer, String) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send("GET", path, req, limit).await
    }

    async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send("POST", path, req, BODY_READ).await.0
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish());
        self.send("POST", path, req, BODY_READ).await.0
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        req: reqwest::RequestBuilder,
        limit: usize,
    ) -> (Answer, String) {
        let mut answer = Answer {
            method: method.to_owned(),
            path: path.to_owned(),
            ..Answer::default()
        };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                answer.error = Some(error_chain(&e));
                return (answer, String::new());
            }
        };
        answer.status = Some(resp.status().as_u16());
        answer.content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let room = limit.saturating_sub(bytes.len());
                    bytes.extend_from_slice(c.get(..room.min(c.len())).unwrap_or_default());
                    if bytes.len() >= limit {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    answer.error = Some(format!("reading the body: {}", error_chain(&e)));
                    break;
                }
            }
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        answer.body = truncate(&body, BODY_KEEP);
        (answer, body)
    }
}

/// An error with its causes (reqwest's own message is often just "error sending request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The `zt4ai_` metric families a Prometheus / OpenMetrics page declares
/// (`# TYPE zt4ai_x …`) or samples (`zt4ai_x_total{…} 1`).
fn families(body: &str) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for line in body.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split_whitespace().next(),
            None if !line.starts_with('#') => line.split(['{', ' ']).next(),
            None => None,
        };
        if let Some(n) = name.filter(|n| n.starts_with("zt4ai_")) {
            out.insert(n.to_owned());
        }
    }
    out.into_iter().collect()
}

/// Registers a throwaway agent with a key of its own, shows its proof accepted,
/// suspends it, shows the same kind of proof refused at once, and retires it.
async fn kill_switch_probe(g: &Gateway, token: &str) -> KillSwitch {
    let mut ks = KillSwitch::default();
    // Identity: without it there is no registry, no token endpoint, no kill switch.
    let jwks = g.get("/.well-known/jwks.json", None, BODY_READ).await;
    if jwks.status == Some(404) {
        ks.skipped = Some(
            "the gateway runs without identity (no token endpoint, no agent registry), so it has no kill switch to probe; see live-authn-required".into(),
        );
        ks.steps.push(jwks);
        return ks;
    }
    ks.steps.push(jwks);
    let agents = g.get("/admin/v1/agents", Some(token), BODY_READ).await;
    match agents.status {
        Some(200) => {}
        Some(401 | 403) => {
            ks.skipped = Some("the admin API refused the admin token given".into());
            ks.steps.push(agents);
            return ks;
        }
        Some(404) => {
            ks.skipped = Some("the gateway's admin API is not enabled".into());
            ks.steps.push(agents);
            return ks;
        }
        _ => {
            ks.skipped = Some(format!(
                "the agent registry could not be listed ({})",
                agents.describe()
            ));
            ks.steps.push(agents);
            return ks;
        }
    }
    // The throwaway agent needs an owner who is a user of the inventory:
    // borrow the owner of a registered agent, an active one if there is one.
    let list = agents
        .json()
        .and_then(|v| v.get("agents").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    ks.steps.push(agents);
    let owner_of = |active: bool| {
        list.iter()
            .filter(|a| !active || a.get("state").and_then(Value::as_str) == Some("active"))
            .find_map(|a| a.get("owner").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let Some(owner) = owner_of(true).or_else(|| owner_of(false)) else {
        ks.skipped = Some(
            "the agent registry is empty, so there is no user to own a throwaway probe agent"
                .into(),
        );
        return ks;
    };
    let (jwk, key) = match keypair() {
        Ok(k) => k,
        Err(e) => {
            ks.skipped = Some(format!("no key for the probe agent: {e}"));
            return ks;
        }
    };
    let id = match random_hex(8) {
        Ok(h) => format!("{PROBE_AGENT_PREFIX}{h}"),
        Err(e) => {
            ks.skipped = Some(format!("no probe agent id: {e}"));
            return ks;
        }
    };
    ks.agent = Some(id.clone());
    let issuer = g
        .get("/.well-known/oauth-authorization-server", None, BODY_READ)
        .await
        .json()
        .and_then(|v| v.get("issuer").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_ISSUER.to_owned());

    let registration = json!({
        "id": id,
        "owner": owner,
        "purpose": "zt4ai assess kill-switch probe: registered, suspended and retired at once; holds no grants",
        "public_jwk": jwk,
        "by": "zt4ai-assess",
    });
    let registered = g
        .post_json("/admin/v1/agents", &registration, Some(token))
        .await;
    let ok = registered.status == Some(201);
    ks.steps.push(registered);
    if !ok {
        return ks;
    }

    // Before: the agent's proof gets it past client authentication; the
    // exchange then stops at the (deliberately invalid) subject token.
    let before = exchange(g, &id, &key, &issuer).await;
    ks.accepted_before = judge(&before).map(|refused| !refused);
    ks.steps.push(before);

    let change = json!({"by": "zt4ai-assess", "reason": "kill-switch probe"});
    let suspend = g
        .post_json(
            &format!("/admin/v1/agents/{id}/suspend"),
            &change,
            Some(token),
        )
        .await;
    let suspended = suspend.ok();
    let at = Instant::now();
    ks.steps.push(suspend);
    if suspended {
        let after = exchange(g, &id, &key, &issuer).await;
        let elapsed = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        ks.refused_after = judge(&after);
        if ks.refused_after == Some(true) {
            ks.refused_within_ms = Some(elapsed);
            ks.refusal = after.json().and_then(|v| {
                v.get("error_description")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        }
        ks.steps.push(after);
    }

    // Clean up whatever happened: a retired agent can never act again.
    let retire = g
        .post_json(
            &format!("/admin/v1/agents/{id}/retire"),
            &change,
            Some(token),
        )
        .await;
    ks.retired = retire.ok();
    ks.steps.push(retire);
    ks
}

/// One token exchange by the probe agent with a fresh assertion and a subject
/// token that is not a token: it can only ever fail, and where it fails says
/// whether the agent itself was accepted.
async fn exchange(
    g: &Gateway,
    agent: &str,
    key: &jsonwebtoken::EncodingKey,
    issuer: &str,
) -> Answer {
    let assertion = match assertion(agent, key, issuer) {
        Ok(a) => a,
        Err(e) => {
            return Answer {
                method: "POST".into(),
                path: "/oauth/token".into(),
                error: Some(format!("no actor assertion: {e}")),
                ..Answer::default()
            };
        }
    };
    g.post_form(
        "/oauth/token",
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", "zt4ai-assess-probe-not-a-token"),
            ("subject_token_type", TOKEN_TYPE_JWT),
            ("actor_token", &assertion),
            ("actor_token_type", TOKEN_TYPE_JWT),
        ],
    )
    .await
}

/// `Some(true)`: the agent was refused as an agent (`invalid_client`);
/// `Some(false)`: it was accepted and only the subject token was refused
/// (`invalid_grant`); `None`: neither can be told.
fn judge(a: &Answer) -> Option<bool> {
    match a.error_code().as_deref() {
        Some("invalid_client") => Some(true),
        Some("invalid_grant") => Some(false),
        _ => None,
    }
}

/// A fresh Ed25519 key pair: the public JWK to register, the signing key.
fn keypair() -> Result<(Value, jsonwebtoken::EncodingKey), String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| e.to_string())?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(public), "alg": "EdDSA", "use": "sig"});
    // PKCS#8 v1 for an Ed25519 private key: a fixed prefix, then the seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    Ok((jwk, jsonwebtoken::EncodingKey::from_ed_der(&der)))
}

/// An actor assertion (RFC 7523 style): the agent's claim to be itself.
fn assertion(agent: &str, key: &jsonwebtoken::EncodingKey, issuer: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let claims = json!({
        "iss": agent, "sub": agent, "aud": issuer,
        "iat": now, "exp": now + 60, "jti": random_hex(16)?,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        key,
    )
    .map_err(|e| e.to_string())
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| e.to_string())?;
    Ok(zt4ai_core::hex(&buf))
}

// --- Checks ------------------------------------------------------------------

const NO_GATEWAY: &str = "no gateway given (--gateway URL)";

fn facts(d: &Deployment) -> Result<&LiveFacts, Outcome> {
    let f = d
        .live
        .as_ref()
        .ok_or_else(|| Outcome::skipped(NO_GATEWAY))?;
    if let Some(e) = &f.error {
        return Err(Outcome::skipped(format!("the gateway was not probed: {e}")));
    }
    Ok(f)
}

/// The facts of a gateway that answered at all; skipped otherwise (live-health
/// says it did not answer).
fn reached(d: &Deployment) -> Result<&LiveFacts, Outcome> {
    let f = facts(d)?;
    if f.health.status.is_none() && f.ready.status.is_none() && f.metrics.status.is_none() {
        return Err(Outcome::skipped(format!(
            "the gateway at `{}` did not answer (see live-health)",
            f.base_url
        )));
    }
    Ok(f)
}

fn seen(a: &Answer) -> Evidence {
    Evidence::note(a.describe())
}

fn problem(message: impl Into<String>) -> Evidence {
    Evidence {
        problem: true,
        ..Evidence::note(message)
    }
}

/// The AuthZEN evaluation, the MCP endpoint and the admin API, asked without
/// credentials: `401`/`403` is right, `404` means not served (fine for MCP and
/// the admin API, which are optional), a `2xx` means anyone may use it.
fn authn_required(d: &Deployment) -> Outcome {
    let f = match reached(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let mut open = Vec::new();
    let mut odd = Vec::new();
    let mut fine = Vec::new();
    for a in &f.unauthenticated {
        let required = a.path == "/access/v1/evaluation";
        match a.status {
            Some(s) if (200..300).contains(&s) => open.push(problem(format!(
                "{} without credentials: it answered, so anyone who can reach it may use it",
                a.describe()
            ))),
            Some(401 | 403) => fine.push(seen(a)),
            Some(404) if !required => {
                fine.push(Evidence::note(format!("{} (not served)", a.describe())))
            }
            _ => odd.push(problem(format!(
                "{} without credentials: expected 401",
                a.describe()
            ))),
        }
    }
    if !open.is_empty() {
        Outcome::failed(format!(
            "{} of the gateway without credentials",
            count(open.len(), "endpoint answers", "endpoints answer")
        ))
        .with(open)
        .with(odd)
        .with(fine)
    } else if !odd.is_empty() {
        Outcome::investigate(
            "some endpoints answered requests without credentials with neither 401 nor a result",
        )
        .with(odd)
        .with(fine)
    } else {
        Outcome::passed("the gateway refuses requests without credentials (401)").with(fine)
    }
}

/// The kill-switch probe (see [`probe`]): passed when the suspended probe agent
/// is refused on its next request, failed when it is still accepted.
fn kill_switch(d: &Deployment) -> Outcome {
    let f = match reached(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let ks = &f.kill_switch;
    if let Some(why) = &ks.skipped {
        return Outcome::skipped(why.clone());
    }
    let steps: Vec<Evidence> = ks.steps.iter().map(seen).collect();
    let agent = ks.agent.as_deref().unwrap_or("the probe agent");
    let mut leftovers = Vec::new();
    if ks.agent.is_some() && !ks.retired {
        leftovers.push(problem(format!(
            "the probe agent `{agent}` could not be retired: retire it (`zt4ai agent retire {agent}`)"
        )));
    }
    match (ks.accepted_before, ks.refused_after) {
        (Some(true), Some(true)) => {
            let within = ks
                .refused_within_ms
                .map_or(String::new(), |ms| format!(" ({ms} ms after the suspension)"));
            let reason = ks
                .refusal
                .as_deref()
                .map_or(String::new(), |r| format!(": \"{r}\""));
            Outcome::passed(format!(
                "a suspended agent was refused on its very next request{within}"
            ))
            .with(vec![Evidence::note(format!(
                "throwaway agent `{agent}`: its signed proof was accepted, then refused right after `suspend`{reason}; it is now retired"
            ))])
            .with(leftovers)
            .with(steps)
        }
        (Some(true), Some(false)) => Outcome::failed(format!(
            "the suspended agent `{agent}` was still accepted on its next request: suspension does not take effect at once"
        ))
        .with(leftovers)
        .with(steps),
        (Some(false), _) => Outcome::investigate(format!(
            "the probe agent `{agent}` was refused even before it was suspended, so the probe shows nothing"
        ))
        .with(leftovers)
        .with(steps),
        _ => Outcome::investigate(format!(
            "the kill-switch probe with `{agent}` was inconclusive: the gateway's answers did not say whether the agent was accepted"
        ))
        .with(leftovers)
        .with(steps),
    }
}

/// `GET /admin/v1/audit/verify`: the running gateway's audit log verifies from
/// its first record.
fn audit_verifiable(d: &Deployment) -> Outcome {
    let f = match reached(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let Some(a) = &f.audit else {
        return Outcome::skipped(
            f.audit_skipped
                .clone()
                .unwrap_or_else(|| NO_ADMIN_TOKEN.to_owned()),
        );
    };
    let v = a.json().unwrap_or(Value::Null);
    match a.status {
        Some(200) if v.get("ok") == Some(&Value::Bool(true)) => {
            let r = &v["report"];
            Outcome::passed(format!(
                "the running gateway's audit log verifies: {} records, {} kept checkpoints and the signed head",
                r["records"], r["checkpoints"]
            ))
            .with(vec![Evidence::note(format!(
                "log `{}`, root {}, verifier key {}: keep the key where the server cannot write",
                r["origin"].as_str().unwrap_or_default(),
                r["root"].as_str().unwrap_or_default(),
                v["verifier_key"].as_str().unwrap_or_default()
            ))])
        }
        Some(200) if v.get("ok") == Some(&Value::Bool(false)) => {
            let p = &v["problem"];
            let at = p["index"]
                .as_u64()
                .map_or(String::new(), |i| format!("record {i}: "));
            let message = format!("{at}{}", p["message"].as_str().unwrap_or("no reason given"));
            Outcome::failed(format!(
                "the running gateway's audit log does not verify: {message}"
            ))
            .with(vec![problem(message)])
        }
        Some(404) => Outcome::skipped(
            "the gateway does not verify its audit log through the admin API (no audit log, no file configured, or an older zt4ai): \
             verify it with `zt4ai audit verify`, or assess with --data-dir",
        ),
        Some(401 | 403) => Outcome::skipped("the admin API refused the admin token given"),
        Some(409) => Outcome::investigate("another audit verification was running; assess again")
            .with(vec![seen(a)]),
        Some(s) if s >= 500 => Outcome::failed(format!(
            "the gateway could not verify its audit log ({s}): {}",
            a.body
        ))
        .with(vec![problem(a.describe())]),
        _ => {
            Outcome::investigate("the audit verification gave an answer zt4ai does not understand")
                .with(vec![problem(a.describe())])
        }
    }
}

/// `GET /metrics` is `200` Prometheus / OpenMetrics text with zt4ai's metrics.
fn metrics(d: &Deployment) -> Outcome {
    let f = match reached(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let m = &f.metrics;
    let text = m.content_type.as_deref().is_some_and(|c| {
        c.starts_with("text/plain") || c.starts_with("application/openmetrics-text")
    });
    match m.status {
        Some(200) if text && !f.metric_families.is_empty() => {
            let shown: Vec<&str> = f
                .metric_families
                .iter()
                .take(8)
                .map(String::as_str)
                .collect();
            Outcome::passed(format!(
                "the gateway exposes {} zt4ai metric families at /metrics",
                f.metric_families.len()
            ))
            .with(vec![Evidence::note(format!(
                "{}{}",
                shown.join(", "),
                if f.metric_families.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ))])
        }
        Some(200) if !text => Outcome::failed(format!(
            "/metrics is not Prometheus text (content type `{}`)",
            m.content_type.as_deref().unwrap_or("none")
        ))
        .with(vec![problem(m.describe())]),
        Some(200) => Outcome::failed("/metrics answers, but with no zt4ai metrics")
            .with(vec![problem(m.describe())]),
        Some(401 | 403) => Outcome::investigate(
            "/metrics needs credentials: make sure the monitoring system has them",
        )
        .with(vec![seen(m)]),
        _ => Outcome::failed(
            "the gateway exposes no metrics: decisions, denials and audit health go unwatched",
        )
        .with(vec![problem(m.describe())]),
    }
}

/// `/healthz` and `/readyz` both `200`.
fn health(d: &Deployment) -> Outcome {
    let f = match facts(d) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let bad: Vec<&Answer> = [&f.health, &f.ready]
        .into_iter()
        .filter(|a| a.status != Some(200))
        .collect();
    if bad.is_empty() {
        return Outcome::passed("the gateway reports healthy and ready")
            .with(vec![seen(&f.health), seen(&f.ready)]);
    }
    if bad.iter().all(|a| a.status.is_none()) && bad.len() == 2 {
        return Outcome::failed(format!("the gateway at `{}` did not answer", f.base_url))
            .with(bad.iter().map(|a| problem(a.describe())).collect());
    }
    let evidence = bad
        .iter()
        .map(|a| {
            let status = a
                .json()
                .and_then(|v| v.get("status").and_then(Value::as_str).map(str::to_owned));
            problem(match status {
                Some(s) => format!("{} (status `{s}`): {}", a.describe(), a.body),
                None => a.describe(),
            })
        })
        .collect();
    Outcome::failed(
        "the gateway does not report healthy and ready: while it fails, every request is denied",
    )
    .with(evidence)
}

/// `https` passes; `http` to a loopback host is fine for a local test, not for
/// production; `http` anywhere else sends tokens and decisions in clear.
fn transport_tls(d: &Deployment) -> Outcome {
    let Some(f) = d.live.as_ref() else {
        return Outcome::skipped(NO_GATEWAY);
    };
    let url = match url::Url::parse(&f.base_url) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::failed(format!("`{}` is not a URL: {e}", f.base_url));
        }
    };
    let loopback = super::identity::is_loopback_url(url.as_str());
    let at = Evidence::note(format!("gateway URL `{}`", f.base_url));
    match url.scheme() {
        "https" => Outcome::passed("the gateway is reached over TLS (https)").with(vec![at]),
        "http" if loopback => Outcome::investigate(
            "the gateway is reached over plain http on a loopback address: fine for a local test, not for production",
        )
        .with(vec![at]),
        "http" => Outcome::failed(
            "the gateway is reached over plain http: bearer tokens, the admin token and decisions cross the network in clear",
        )
        .with(vec![Evidence { problem: true, ..at }]),
        other => Outcome::failed(format!("the gateway URL's scheme is `{other}`, not https"))
            .with(vec![Evidence { problem: true, ..at }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use crate::checks::Options;

    const INVENTORY: &str = "\
organisation: Test
users:
  - id: alice
agents:
  - id: a1
    owner: alice
    purpose: Summarises customer accounts for account managers
";

    fn with(live: Option<LiveFacts>) -> Deployment {
        let mut d = Deployment::load(
            INVENTORY,
            "inventory.yaml",
            Vec::new(),
            Options {
                dormant_days: 30,
                now: 1_800_000_000,
            },
        )
        .unwrap();
        d.live = live;
        d
    }

    fn run(id: &str, f: &LiveFacts) -> Outcome {
        let check = CHECKS.iter().find(|c| c.id == id).unwrap();
        (check.run)(&with(Some(f.clone())))
    }

    fn answer(method: &str, path: &str, status: u16, body: &str) -> Answer {
        Answer {
            method: method.into(),
            path: path.into(),
            status: Some(status),
            content_type: Some("application/json".into()),
            body: body.into(),
            error: None,
        }
    }

    /// What a sound gateway answers.
    fn sound() -> LiveFacts {
        LiveFacts {
            base_url: "https://zt4ai.example".into(),
            health: answer("GET", "/healthz", 200, r#"{"status":"ok"}"#),
            ready: answer("GET", "/readyz", 200, r#"{"status":"ok"}"#),
            metrics: Answer {
                content_type: Some("application/openmetrics-text; version=1.0.0".into()),
                ..answer("GET", "/metrics", 200, "")
            },
            metric_families: vec!["zt4ai_decisions".into()],
            unauthenticated: vec![
                answer("POST", "/access/v1/evaluation", 401, "{}"),
                answer("POST", "/mcp", 404, "{}"),
                answer("GET", "/admin/v1/agents", 401, "{}"),
            ],
            admin_token: true,
            kill_switch: KillSwitch {
                agent: Some("zt4ai-assess-probe-1".into()),
                accepted_before: Some(true),
                refused_after: Some(true),
                refusal: Some("agent `zt4ai-assess-probe-1` is suspended".into()),
                refused_within_ms: Some(3),
                retired: true,
                ..KillSwitch::default()
            },
            audit: Some(answer(
                "GET",
                "/admin/v1/audit/verify",
                200,
                r#"{"ok":true,"report":{"records":3,"checkpoints":1,"origin":"o","root":"r"},"verifier_key":"k"}"#,
            )),
            ..LiveFacts::default()
        }
    }

    #[test]
    fn every_check_is_skipped_without_a_gateway() {
        let d = with(None);
        for c in CHECKS {
            let o = (c.run)(&d);
            assert_eq!(o.status, Status::Skipped, "{}", c.id);
            assert_eq!(o.summary, NO_GATEWAY);
        }
    }

    #[test]
    fn a_sound_gateway_passes_every_check() {
        for c in CHECKS {
            let o = run(c.id, &sound());
            assert_eq!(o.status, Status::Passed, "{}: {o:?}", c.id);
        }
    }

    #[test]
    fn an_answer_without_credentials_fails() {
        let mut f = sound();
        f.unauthenticated[0] = answer("POST", "/access/v1/evaluation", 200, "{}");
        assert_eq!(run("live-authn-required", &f).status, Status::Failed);
        // A 404 for the evaluation endpoint is not zt4ai answering.
        f.unauthenticated[0] = answer("POST", "/access/v1/evaluation", 404, "{}");
        assert_eq!(run("live-authn-required", &f).status, Status::Investigate);
    }

    #[test]
    fn a_suspended_agent_still_accepted_fails_the_kill_switch() {
        let mut f = sound();
        f.kill_switch.refused_after = Some(false);
        assert_eq!(run("live-kill-switch", &f).status, Status::Failed);
        f.kill_switch.refused_after = None;
        assert_eq!(run("live-kill-switch", &f).status, Status::Investigate);
        f.kill_switch.skipped = Some(NO_ADMIN_TOKEN.into());
        let o = run("live-kill-switch", &f);
        assert_eq!(
            (o.status, o.summary.as_str()),
            (Status::Skipped, NO_ADMIN_TOKEN)
        );
    }

    #[test]
    fn a_probe_agent_left_behind_is_reported() {
        let mut f = sound();
        f.kill_switch.retired = false;
        let o = run("live-kill-switch", &f);
        assert_eq!(o.status, Status::Passed);
        assert!(
            o.evidence
                .iter()
                .any(|e| e.problem && e.message.contains("retire"))
        );
    }

    #[test]
    fn an_audit_log_that_does_not_verify_fails() {
        let mut f = sound();
        f.audit = Some(answer(
            "GET",
            "/admin/v1/audit/verify",
            200,
            r#"{"ok":false,"problem":{"index":4,"message":"its content does not match its stored tree hashes (edited)"}}"#,
        ));
        let o = run("live-audit-verifiable", &f);
        assert_eq!(o.status, Status::Failed);
        assert!(o.summary.contains("record 4: its content"), "{}", o.summary);
        f.audit = Some(answer("GET", "/admin/v1/audit/verify", 404, "{}"));
        assert_eq!(run("live-audit-verifiable", &f).status, Status::Skipped);
    }

    #[test]
    fn metrics_without_zt4ai_families_fail() {
        let mut f = sound();
        f.metric_families.clear();
        assert_eq!(run("live-metrics", &f).status, Status::Failed);
        f.metrics.status = Some(404);
        assert_eq!(run("live-metrics", &f).status, Status::Failed);
        assert_eq!(
            families(
                "# TYPE zt4ai_decisions counter\nzt4ai_decisions_total{decision=\"allow\"} 3\nother 1\n# EOF\n"
            ),
            ["zt4ai_decisions", "zt4ai_decisions_total"]
        );
    }

    #[test]
    fn an_unhealthy_or_silent_gateway_fails_health() {
        let mut f = sound();
        f.ready = answer("GET", "/readyz", 503, r#"{"status":"failing"}"#);
        let o = run("live-health", &f);
        assert_eq!(o.status, Status::Failed);
        assert!(o.evidence[0].message.contains("failing"), "{o:?}");
        let silent = LiveFacts {
            base_url: "http://127.0.0.1:9".into(),
            health: Answer {
                error: Some("connection refused".into()),
                ..Answer::default()
            },
            ..LiveFacts::default()
        };
        assert_eq!(run("live-health", &silent).status, Status::Failed);
        // The others have nothing to judge.
        assert_eq!(run("live-metrics", &silent).status, Status::Skipped);
        assert_eq!(run("live-authn-required", &silent).status, Status::Skipped);
    }

    #[test]
    fn plain_http_is_fine_only_on_loopback() {
        for (url, status) in [
            ("https://zt4ai.example:8443", Status::Passed),
            ("http://127.0.0.1:8080", Status::Investigate),
            ("http://[::1]:8080", Status::Investigate),
            ("http://localhost:8080/", Status::Investigate),
            ("http://zt4ai.internal:8080", Status::Failed),
            ("http://10.0.0.5", Status::Failed),
            ("not a url", Status::Failed),
        ] {
            let f = LiveFacts {
                base_url: url.into(),
                ..sound()
            };
            assert_eq!(run("live-transport-tls", &f).status, status, "{url}");
        }
    }
}
