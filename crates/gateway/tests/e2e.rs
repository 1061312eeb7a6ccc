//! End-to-end: a real zt4ai server on loopback, a real HTTP client, a real SQLite file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use zt4ai_core::Inventory;
use zt4ai_gateway::GatewayConfig;
use zt4ai_identity::{Actor, DelegatedClaims, Identity};
use zt4ai_pipeline::{Pipeline, PolicyEngine, PolicySource, SessionStore};

const INVENTORY: &str = include_str!("../../../examples/acme/inventory.yaml");
const ACME: &str = include_str!("../../../examples/acme/policies/acme.cedar");

#[path = "e2e/approvals.rs"]
mod approvals;
#[path = "e2e/identity.rs"]
mod identity;
#[path = "e2e/llm.rs"]
mod llm;
#[path = "e2e/llm_standin.rs"]
mod llm_standin;
#[path = "e2e/mcp.rs"]
mod mcp;
#[path = "e2e/notify.rs"]
mod notify;

pub(crate) struct Server {
    pub addr: SocketAddr,
    pub pipeline: Arc<Pipeline>,
    pub identity: Arc<Identity>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    pub client: reqwest::Client,
}

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token";

/// Runs `script` (in `crates/gateway/tests/interop/`) with `args` in the
/// interop virtualenv (the official MCP and OpenAI Python SDKs, installed from
/// PyPI by `scripts/python-interop` on first use); the JSON report it prints.
pub(crate) async fn interop(script: &'static str, args: Vec<String>) -> Value {
    tokio::task::spawn_blocking(move || {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let setup = std::process::Command::new(root.join("scripts/python-interop"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(setup.status.success(), "scripts/python-interop failed");
        let python = String::from_utf8(setup.stdout).unwrap().trim().to_owned();
        let out = std::process::Command::new(python)
            .arg(root.join("crates/gateway/tests/interop").join(script))
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{script} failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    })
    .await
    .unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Server {
    pub(crate) async fn start(db: &Path) -> Server {
        Self::start_with(db, GatewayConfig::default()).await
    }

    pub(crate) async fn start_with(db: &Path, config: GatewayConfig) -> Server {
        Self::start_full(db, config, INVENTORY).await
    }

    pub(crate) async fn start_full(db: &Path, config: GatewayConfig, inventory: &str) -> Server {
        Self::start_checked(db, config, inventory).await.unwrap()
    }

    /// Starts a server on `inventory`; an error is why identity could not load.
    pub(crate) async fn try_start(db: &Path, inventory: &str) -> Result<Server, String> {
        Self::start_checked(db, GatewayConfig::default(), inventory).await
    }

    async fn start_checked(
        db: &Path,
        mut config: GatewayConfig,
        inventory: &str,
    ) -> Result<Server, String> {
        // reqwest is built with rustls and no default crypto provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let inv = Arc::new(Inventory::from_yaml_str(inventory, "inventory.yaml").unwrap());
        let engine = PolicyEngine::new(
            inv,
            &[PolicySource {
                name: "acme.cedar".into(),
                text: ACME.into(),
            }],
        )
        .unwrap();
        let store = Arc::new(SessionStore::open(db).unwrap());
        let data_dir = db.parent().unwrap();
        let identity = Arc::new(Identity::open(
            Arc::clone(engine.inventory()),
            Arc::clone(&store),
            data_dir,
            Some(data_dir),
        )?);
        identity.load().await.map_err(|e| e.description)?;
        // As `zt4ai serve` runs it: every verdict recorded in the audit log, in
        // the same database file (a short lock wait, for the failure test).
        let key = zt4ai_audit::LogKey::load_or_create(
            &data_dir.join("audit.key"),
            zt4ai_audit::DEFAULT_ORIGIN,
        )
        .unwrap();
        let audit = zt4ai_audit::AuditLog::open(
            db,
            key,
            zt4ai_audit::AuditConfig {
                busy_timeout: std::time::Duration::from_millis(200),
                journal: true,
                ..zt4ai_audit::AuditConfig::default()
            },
        )
        .unwrap();
        let inspector = zt4ai_pipeline::inspect::Inspector::from_inventory(
            &engine.inventory().inspection,
            [7; 32],
        )
        .unwrap();
        let pipeline = Arc::new(
            Pipeline::new(Arc::new(engine), store)
                .with_audit(Arc::new(audit))
                .with_inspector(Arc::new(inspector)),
        );
        if config.llm.is_none()
            && pipeline
                .inventory()
                .models
                .values()
                .any(|m| m.upstream.is_some())
        {
            // As `zt4ai serve` does: key files are relative to the data directory here.
            config.llm =
                Some(zt4ai_llm::LlmGateway::new(Arc::clone(&pipeline), Some(data_dir)).unwrap());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.base_url = format!("http://{addr}");
        config.admin_token = Some(ADMIN_TOKEN.into());
        let (tx, rx) = oneshot::channel::<()>();
        // As `zt4ai serve` runs it: requests on threads of their own.
        let task = tokio::spawn(zt4ai_gateway::serve_threads(
            listener,
            Arc::clone(&pipeline),
            config,
            Some(Arc::clone(&identity)),
            async {
                let _ = rx.await;
            },
            std::num::NonZeroUsize::new(2).unwrap(),
        ));
        Ok(Server {
            addr,
            pipeline,
            identity,
            stop: Some(tx),
            task,
            client: reqwest::Client::new(),
        })
    }

    /// A delegated token for a chain, signed with the server's key (the exchange
    /// itself is tested in `identity`).
    pub(crate) fn mint(&self, user: &str, agents: &[&str]) -> String {
        let now = unix_now();
        let chain: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
        self.identity
            .sign_claims(&DelegatedClaims {
                iss: zt4ai_identity::ISSUER.into(),
                sub: user.into(),
                aud: zt4ai_identity::ISSUER.into(),
                iat: now,
                nbf: now,
                exp: now + 600,
                jti: format!("test-{user}-{}-{}", chain.join("-"), rand_suffix()),
                act: Actor::from_chain(&chain).unwrap(),
                scope: None,
                risk: None,
                sid: None,
                auth_time: now,
                cnf: None,
            })
            .unwrap()
    }

    /// The token for the chain a request body's subject states.
    pub(crate) fn token_for(&self, body: &Value) -> String {
        let s = body.get("subject").cloned().unwrap_or(Value::Null);
        let user = s["properties"]["user"]
            .as_str()
            .unwrap_or("alice")
            .to_owned();
        let mut agents: Vec<String> = s["properties"]["via"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        agents.push(s["id"].as_str().unwrap_or("report-agent").to_owned());
        let refs: Vec<&str> = agents.iter().map(String::as_str).collect();
        self.mint(&user, &refs)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let token = self.mint("alice", &["report-agent"]);
        self.post_with(path, body, Some(&token)).await
    }

    /// A POST to the admin API with the admin token.
    pub(crate) async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// A GET of a JSON document, with a bearer token if given.
    pub(crate) async fn get_json(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.client.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub(crate) async fn post_with(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json");
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.body(body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub(crate) async fn evaluate(&self, body: Value) -> Value {
        let token = self.token_for(&body);
        let (status, v) = self
            .post_with("/access/v1/evaluation", body.to_string(), Some(&token))
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `text` with its one occurrence of `from` replaced by `to`.
pub(crate) fn replace_once(text: String, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from}");
    text.replace(from, to)
}

pub(crate) fn agent(user: &str, agent: &str, via: &[&str]) -> Value {
    json!({"type": "agent", "id": agent, "properties": {"user": user, "via": via}})
}

pub(crate) fn call(subject: Value, tool: &str, args: Value, session: &str) -> Value {
    json!({
        "subject": subject,
        "action": {"name": "call_tool"},
        "resource": {"type": "tool", "id": tool, "properties": {"arguments": args}},
        "context": {"session": session}
    })
}

pub(crate) fn exec() -> Value {
    agent("alice", "report-agent", &[])
}

pub(crate) fn verdict(v: &Value) -> &str {
    v["context"]["verdict"].as_str().unwrap()
}

pub(crate) fn policies(v: &Value) -> Vec<String> {
    serde_json::from_value(v["context"]["policies"].clone()).unwrap()
}

#[tokio::test]
async fn motivating_case_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;

    let v = s
        .evaluate(call(
            exec(),
            "crm.query",
            json!({"table": "customers"}),
            "q3-report",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");
    assert_eq!(v["context"]["session"]["confidentiality"], "confidential");
    assert_eq!(
        v["context"]["session"]["categories"],
        json!(["customer", "pii"])
    );

    let v = s
        .evaluate(call(
            exec(),
            "mail.send_email",
            json!({"to": "board@acme.example"}),
            "q3-report",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");

    let send = call(
        exec(),
        "mail.send_email",
        json!({"to": "ceo@rival.example", "body": "customers.csv"}),
        "q3-report",
    );
    let token = s.token_for(&send);
    let v = s.evaluate(send).await;
    assert_eq!(v["decision"], false, "{v}");
    assert_eq!(verdict(&v), "deny");
    // Denied by the flow guard, and the attempt quarantines the agent.
    assert_eq!(policies(&v), ["zt4ai.flow.send", "zt4ai.risk.quarantined"]);
    let reason = v["context"]["reasons"][0]["message"].as_str().unwrap();
    assert!(
        reason.contains("confidential") && reason.contains("ceo@rival.example"),
        "{reason}"
    );
    assert_eq!(
        v["context"]["risk"]["signals"][0]["signal"], "confidential_then_send",
        "{v}"
    );

    // Its token, still unexpired, is refused from the very next request.
    let board = call(
        exec(),
        "mail.send_email",
        json!({"to": "board@acme.example"}),
        "other",
    );
    let (status, v) = s
        .post_with("/access/v1/evaluation", board.to_string(), Some(&token))
        .await;
    assert_eq!(status, 401, "{v}");
    assert!(v.to_string().contains("report-agent"), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn session_labels_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    let s = Server::start(&db).await;
    let v = s
        .evaluate(call(
            exec(),
            "crm.query",
            json!({"table": "customers"}),
            "long-task",
        ))
        .await;
    assert_eq!(v["decision"], true);
    s.stop().await;

    let s = Server::start(&db).await;
    let v = s
        .evaluate(call(
            exec(),
            "mail.send_email",
            json!({"to": "x@rival.example"}),
            "long-task",
        ))
        .await;
    assert_eq!(
        policies(&v),
        ["zt4ai.flow.send", "zt4ai.risk.quarantined"],
        "{v}"
    );
    s.stop().await;
}

#[tokio::test]
async fn untrusted_session_requires_approval_then_allows_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let v = s
        .evaluate(call(
            exec(),
            "web.fetch",
            json!({"url": "https://blog.example/post"}),
            "triage",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");
    assert_eq!(
        v["context"]["obligations"],
        json!([{"kind": "spotlight", "tool": "web.fetch", "mode": "delimit"}])
    );
    assert_eq!(v["context"]["session"]["integrity"], "untrusted");

    let delete = call(
        exec(),
        "files.delete_file",
        json!({"path": "/shared/q3.xlsx"}),
        "triage",
    );
    let v = s.evaluate(delete.clone()).await;
    assert_eq!(v["decision"], false);
    assert_eq!(verdict(&v), "require_approval");
    assert_eq!(policies(&v), ["zt4ai.integrity.tool"]);
    let approval = v["context"]["approval"].as_str().unwrap().to_owned();

    // A human grants it (what `zt4ai approvals grant` does), then the agent retries.
    s.pipeline
        .store()
        .decide_approval(
            &approval,
            true,
            &zt4ai_session::Approver {
                user: "secops".into(),
                in_group: true,
            },
            None,
            0,
        )
        .unwrap();
    let mut retry = delete.clone();
    retry["context"]["approval"] = json!(approval);
    let v = s.evaluate(retry.clone()).await;
    assert_eq!(v["decision"], true, "{v}");
    let v = s.evaluate(retry).await;
    assert_eq!(v["decision"], false, "an approval is used once");
    assert_eq!(policies(&v), ["zt4ai.approval.invalid"]);
    s.stop().await;
}

#[tokio::test]
async fn sub_agent_and_suspended_agent() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    // summariser holds wiki.search; its parent report-agent does not.
    let v = s
        .evaluate(call(
            agent("alice", "summariser", &["report-agent"]),
            "wiki.search",
            json!({"q": "pricing"}),
            "sub",
        ))
        .await;
    assert_eq!(v["decision"], false, "{v}");
    assert_eq!(policies(&v), ["zt4ai.default_deny"]);
    let v = s
        .evaluate(call(
            agent("alice", "summariser", &[]),
            "wiki.search",
            json!({"q": "pricing"}),
            "sub2",
        ))
        .await;
    assert_eq!(v["decision"], true, "{v}");

    for body in [
        call(
            agent("bob", "legacy-bot", &[]),
            "crm.query",
            json!({"table": "sales_pipeline"}),
            "old",
        ),
        json!({"subject": agent("bob", "legacy-bot", &[]), "action": {"name": "read"}, "resource": {"type": "dataset", "id": "handbook"}, "context": {"session": "old"}}),
        json!({"subject": agent("bob", "legacy-bot", &[]), "action": {"name": "invoke_model"}, "resource": {"type": "model", "id": "acme-llm"}, "context": {"session": "old"}}),
    ] {
        // A suspended agent's token no longer verifies: refused before any policy.
        let token = s.token_for(&body);
        let (st, v) = s
            .post_with("/access/v1/evaluation", body.to_string(), Some(&token))
            .await;
        assert_eq!(st, 401, "{v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("suspended"),
            "{v}"
        );
        // And were it active in the registry but suspended in the inventory, the
        // lifecycle guard would still deny: defence in depth.
        let req = zt4ai_gateway::authzen_request(&body).unwrap();
        let verdict = s.pipeline.decide(&req);
        assert!(
            verdict
                .policies
                .contains(&"zt4ai.lifecycle.inactive".to_string()),
            "{verdict:?}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn evaluations_honour_the_three_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let items = json!([
        {"resource": {"type": "tool", "id": "crm.query", "properties": {"arguments": {"table": "handbook"}}}},
        {"resource": {"type": "tool", "id": "files.delete_file"}, "subject": agent("bob", "report-agent", &[])},
        {"resource": {"type": "tool", "id": "wiki.search"}},
    ]);
    let body = |semantic: &str| {
        json!({
            "subject": exec(),
            "action": {"name": "call_tool"},
            "context": {"session": format!("batch-{semantic}")},
            "evaluations": items,
            "options": {"evaluations_semantic": semantic}
        })
    };
    let decisions = |v: &Value| -> Vec<bool> {
        v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    let (st, v) = s
        .post_raw("/access/v1/evaluations", body("execute_all").to_string())
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(decisions(&v), [true, false, false]);
    let (_, v) = s
        .post_raw(
            "/access/v1/evaluations",
            body("deny_on_first_deny").to_string(),
        )
        .await;
    assert_eq!(decisions(&v), [true, false]);
    let (_, v) = s
        .post_raw(
            "/access/v1/evaluations",
            body("permit_on_first_permit").to_string(),
        )
        .await;
    assert_eq!(decisions(&v), [true]);
    // Without items, the request is a single evaluation.
    let single = json!({"subject": exec(), "action": {"name": "call_tool"}, "resource": {"type": "tool", "id": "wiki.search"}, "context": {"session": "x"}});
    let (_, v) = s
        .post_raw("/access/v1/evaluations", single.to_string())
        .await;
    assert_eq!(v["decision"], false);
    s.stop().await;
}

#[tokio::test]
async fn metadata_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let v = s
        .get_json("/.well-known/authzen-configuration", None)
        .await
        .1;
    assert_eq!(v["policy_decision_point"], format!("http://{}", s.addr));
    assert_eq!(
        v["access_evaluation_endpoint"],
        format!("http://{}/access/v1/evaluation", s.addr)
    );
    assert_eq!(
        v["access_evaluations_endpoint"],
        format!("http://{}/access/v1/evaluations", s.addr)
    );
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_precise_errors_and_never_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig {
        max_body_bytes: 4096,
        ..GatewayConfig::default()
    };
    let s = Server::start_with(&dir.path().join("z.db"), config).await;

    let (st, v) = s.post_raw("/access/v1/evaluation", "{\"subject\": ").await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"], "invalid_request");
    assert!(
        v["message"].as_str().unwrap().contains("invalid JSON body"),
        "{v}"
    );

    let (st, v) = s.post_raw("/access/v1/evaluation", r#"{"subject": {"type": "agent", "id": 7}, "action": {"name": "read"}, "resource": {"type": "dataset", "id": "x"}}"#).await;
    assert_eq!(st, 400);
    assert!(
        v["message"].as_str().unwrap().contains("`subject.id`"),
        "{v}"
    );

    let (st, v) = s
        .post_raw(
            "/access/v1/evaluation",
            r#"{"action": {"name": "read"}, "resource": {"type": "dataset", "id": "x"}}"#,
        )
        .await;
    assert_eq!(st, 400);
    assert!(v["message"].as_str().unwrap().contains("subject"), "{v}");

    let (st, v) = s.post_raw("/access/v1/evaluation", "{}  trailing").await;
    assert_eq!(st, 400, "{v}");

    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(10_000));
    let (st, v) = s.post_raw("/access/v1/evaluation", big).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(v["error"], "request_too_large");

    // Well-formed but unresolvable: a deny with a reason.
    let cases = [
        (
            json!({"subject": exec(), "action": {"name": "teleport"}, "resource": {"type": "tool", "id": "x"}, "context": {"session": "s"}}),
            "unsupported action `teleport`",
        ),
        (
            json!({"subject": exec(), "action": {"name": "read"}, "resource": {"type": "dataset", "id": "customers"}}),
            "`context.session` is required",
        ),
        (
            json!({"subject": exec(), "action": {"name": "read"}, "resource": {"type": "tool", "id": "customers"}, "context": {"session": "s"}}),
            "resource of type `dataset`",
        ),
        (
            json!({"subject": {"type": "agent", "id": "report-agent", "properties": {"user": 7}}, "action": {"name": "read"}, "resource": {"type": "dataset", "id": "customers"}, "context": {"session": "s"}}),
            "`subject.properties.user` must be a string",
        ),
        (
            json!({"subject": exec(), "action": {"name": "read"}, "resource": {"type": "dataset", "id": "customers"}, "context": {"session": "s", "risk": 101}}),
            "from 0 to 100",
        ),
        (
            json!({"subject": exec(), "action": {"name": "read"}, "resource": {"type": "dataset", "id": "nope"}, "context": {"session": "s"}}),
            "`nope` is not a known dataset",
        ),
    ];
    for (body, expected) in cases {
        let v = s.evaluate(body).await;
        assert_eq!(v["decision"], false, "{v}");
        let msg = v["context"]["reasons"][0]["message"].as_str().unwrap();
        assert!(msg.contains(expected), "{msg} should contain {expected}");
    }
    s.stop().await;
}

#[tokio::test]
async fn request_id_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("z.db")).await;
    let r = s
        .client
        .post(s.url("/access/v1/evaluation"))
        .header("x-request-id", "req-42")
        .bearer_auth(s.mint("alice", &["report-agent"]))
        .json(&call(exec(), "wiki.search", json!({}), "s"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    s.stop().await;
}

/// Waits (at most 5 s) until `/healthz` answers `status`.
async fn health_becomes(s: &Server, status: u16) {
    let started = std::time::Instant::now();
    while s.get_json("/healthz", None).await.0 != status {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/healthz never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The audit log cannot write (another process holds the database's write
/// lock). A verdict answered before its commit failed is in the journal and
/// stays there, retried; once the commit fails, requests are denied with the
/// reason, `/healthz` and `/readyz` answer `503` naming the error, and all of
/// it recovers once the lock is gone, with every answered verdict and the
/// admin change in the log, in order.
#[tokio::test]
async fn an_audit_log_that_cannot_write_denies_and_health_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    let s = Server::start(&db).await;
    let log = Arc::clone(s.pipeline.audit().unwrap());
    let read = call(exec(), "crm.query", json!({"table": "customers"}), "a1");
    assert_eq!(verdict(&s.evaluate(read.clone()).await), "allow");
    assert!(log.settled(Duration::from_secs(5)).await);

    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // A verdict that writes nothing to the session: only the audit log needs
    // the lock. (A tool the agent may not use: a plain deny, not an
    // exfiltration attempt, which would also quarantine the agent.)
    let send = call(
        exec(),
        "crm.update_record",
        json!({"table": "customers"}),
        "a1",
    );
    // In the journal, answered; the log cannot take it.
    let v = s.evaluate(send.clone()).await;
    assert_eq!(verdict(&v), "deny");
    assert!(
        !policies(&v).iter().any(|p| p == "zt4ai.audit.unavailable"),
        "{v}"
    );
    health_becomes(&s, 503).await;
    let v = s.evaluate(send.clone()).await;
    assert_eq!(verdict(&v), "deny");
    assert_eq!(policies(&v), ["zt4ai.audit.unavailable"], "{v}");
    for path in ["/healthz", "/readyz"] {
        let (status, h) = s.get_json(path, None).await;
        assert_eq!(status, 503, "{h}");
        assert_eq!(h["status"], "failing");
        assert_eq!(h["audit"]["ok"], false);
        assert!(
            h["audit"]["error"].as_str().unwrap().contains("locked"),
            "{h}"
        );
    }
    blocker.execute_batch("ROLLBACK").unwrap();
    health_becomes(&s, 200).await;
    let v = s.evaluate(send).await;
    assert_eq!(verdict(&v), "deny", "{v}");
    let denied_by = policies(&v);
    assert!(
        !denied_by.iter().any(|p| p == "zt4ai.audit.unavailable"),
        "{v}"
    );

    let (status, _) = s
        .admin(
            "/admin/v1/agents/report-agent/suspend",
            json!({"by": "secops", "reason": "test"}),
        )
        .await;
    assert_eq!(status, 200);
    drop(log);
    s.stop().await;
    let reader = zt4ai_audit::AuditReader::open(&db).unwrap();
    let mut records = Vec::new();
    reader
        .query(&zt4ai_audit::Filter::default(), |r| {
            records.push(serde_json::to_value(&r).unwrap());
            true
        })
        .unwrap();
    let kinds: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["decision"].as_str().or(r["event"].as_str()).unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "decision allow",
            "decision deny",
            "decision deny",
            "lifecycle agent.suspended"
        ],
        "the refused verdict has no record; the others do, the one answered while \
         the log was locked included"
    );
    assert_eq!(records[3]["actor"], "admin-api:secops");
    assert_eq!(records[2]["policies"], json!(denied_by));
}

#[tokio::test]
async fn admin_api_verifies_the_running_audit_log_and_finds_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("z.db");
    // Without the log's file configured, the endpoint is not there.
    let s = Server::start(&db).await;
    let (st, _) = s
        .get_json("/admin/v1/audit/verify", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(st, 404);
    s.stop().await;

    let config = GatewayConfig {
        audit_path: Some(db.clone()),
        ..GatewayConfig::default()
    };
    let s = Server::start_with(&db, config).await;
    s.evaluate(call(
        exec(),
        "crm.query",
        json!({"table": "customers"}),
        "audit-verify",
    ))
    .await;
    let (st, _) = s.get_json("/admin/v1/audit/verify", None).await;
    assert_eq!(st, 401);
    let (st, v) = s
        .get_json("/admin/v1/audit/verify", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["report"]["records"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(
        v["verifier_key"].as_str().unwrap(),
        s.pipeline.audit().unwrap().verifier_key()
    );

    // Someone with write access to the database edits the decision.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n = conn
        .execute(
            "UPDATE audit_records SET body = CAST(replace(CAST(body AS TEXT), 'audit-verify', 'audit-verifx') AS BLOB) \
             WHERE kind = 'decision'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let (st, v) = s
        .get_json("/admin/v1/audit/verify", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["problem"]["message"].as_str().unwrap().contains("edited"),
        "{v}"
    );
    s.stop().await;
}
