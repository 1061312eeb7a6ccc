//! The live checks against real gateways on loopback: one set up as `zt4ai
//! serve` sets it up (identity, admin token, audit log), one weak (no identity,
//! no admin API), one that is not there at all.

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

use tokio::sync::oneshot;
use zt4ai_assess::checks::live::{self, LiveFacts, PROBE_AGENT_PREFIX};
use zt4ai_assess::{Deployment, Options, Outcome, Status, checks};
use zt4ai_core::Inventory;
use zt4ai_gateway::GatewayConfig;
use zt4ai_identity::Identity;
use zt4ai_pipeline::{Pipeline, PolicyEngine, PolicySource, SessionStore};

const INVENTORY: &str = include_str!("../../../../examples/acme/inventory.yaml");
const ACME: &str = include_str!("../../../../examples/acme/policies/acme.cedar");
const ADMIN_TOKEN: &str = "assess-admin-token";
const TIMEOUT: Duration = Duration::from_secs(10);

struct Gateway {
    addr: SocketAddr,
    identity: Option<Arc<Identity>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// A gateway as `zt4ai serve` runs it: identity, the admin API, every
    /// verdict in the audit log (in the same database), audit verification.
    async fn sound(db: &Path, inventory: &str, mcp: bool) -> Gateway {
        let data_dir = db.parent().unwrap();
        let (pipeline, inv) = pipeline(db, inventory);
        let identity = Arc::new(
            Identity::open(
                Arc::clone(&inv),
                Arc::clone(pipeline.store()),
                data_dir,
                Some(data_dir),
            )
            .unwrap(),
        );
        identity.load().await.unwrap();
        let key = zt4ai_audit::LogKey::load_or_create(
            &data_dir.join("audit.key"),
            zt4ai_audit::DEFAULT_ORIGIN,
        )
        .unwrap();
        let audit =
            zt4ai_audit::AuditLog::open(db, key, zt4ai_audit::AuditConfig::default()).unwrap();
        let pipeline = Arc::new(pipeline.with_audit(Arc::new(audit)));
        let upstreams = mcp.then(|| {
            let u = Arc::new(zt4ai_mcp::Upstreams::new(inv.mcp_servers.values().cloned()).unwrap());
            u.start();
            u
        });
        let config = GatewayConfig {
            admin_token: Some(ADMIN_TOKEN.into()),
            audit_path: Some(db.to_owned()),
            mcp: upstreams,
            ..GatewayConfig::default()
        };
        Self::serve(pipeline, config, Some(identity)).await
    }

    /// A gateway without identity, admin API or audit log: callers state who
    /// they are.
    async fn weak(db: &Path) -> Gateway {
        let (pipeline, _) = pipeline(db, INVENTORY);
        Self::serve(Arc::new(pipeline), GatewayConfig::default(), None).await
    }

    async fn serve(
        pipeline: Arc<Pipeline>,
        mut config: GatewayConfig,
        identity: Option<Arc<Identity>>,
    ) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.base_url = format!("http://{addr}");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(zt4ai_gateway::serve(
            listener,
            pipeline,
            config,
            identity.clone(),
            async {
                let _ = rx.await;
            },
        ));
        Gateway {
            addr,
            identity,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn pipeline(db: &Path, inventory: &str) -> (Pipeline, Arc<Inventory>) {
    let inv = Arc::new(Inventory::from_yaml_str(inventory, "inventory.yaml").unwrap());
    let engine = PolicyEngine::new(
        Arc::clone(&inv),
        &[PolicySource {
            name: "acme.cedar".into(),
            text: ACME.into(),
        }],
    )
    .unwrap();
    let store = Arc::new(SessionStore::open(db).unwrap());
    (Pipeline::new(Arc::new(engine), store), inv)
}

/// The acme deployment, with what the gateway answered.
fn deployment(facts: LiveFacts) -> Deployment {
    let mut d = Deployment::load(
        INVENTORY,
        "inventory.yaml",
        vec![PolicySource {
            name: "acme.cedar".into(),
            text: ACME.into(),
        }],
        Options {
            dormant_days: 30,
            now: 1_800_000_000,
        },
    )
    .unwrap();
    d.live = Some(facts);
    d
}

fn run(d: &Deployment, id: &str) -> Outcome {
    (checks::find(id).unwrap().run)(d)
}

const LIVE: [&str; 6] = [
    "live-authn-required",
    "live-kill-switch",
    "live-audit-verifiable",
    "live-metrics",
    "live-health",
    "live-transport-tls",
];

#[tokio::test]
async fn a_gateway_run_as_zt4ai_serve_runs_it_passes_the_live_checks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("zt4ai.db");
    let g = Gateway::sound(&db, INVENTORY, false).await;
    let facts = live::probe(&g.url(), Some(ADMIN_TOKEN), TIMEOUT).await;
    let d = deployment(facts.clone());
    for id in LIVE {
        let o = run(&d, id);
        let expected = if id == "live-transport-tls" {
            // Plain http on loopback.
            Status::Investigate
        } else {
            Status::Passed
        };
        assert_eq!(o.status, expected, "{id}: {o:#?}\n{facts:#?}");
    }
    let o = run(&d, "live-kill-switch");
    assert!(o.summary.contains("very next request"), "{}", o.summary);

    // The probe agent is retired, and its life is in the audit log.
    let agent = facts.kill_switch.agent.clone().unwrap();
    assert!(agent.starts_with(PROBE_AGENT_PREFIX));
    let registered = g.identity.as_ref().unwrap().store().agent(&agent).unwrap();
    assert_eq!(registered.state.as_str(), "retired");
    let reader = zt4ai_audit::AuditReader::open(&db).unwrap();
    let mut events = Vec::new();
    reader
        .query(
            &zt4ai_audit::Filter {
                kind: Some("lifecycle".into()),
                ..Default::default()
            },
            |r| {
                if let zt4ai_audit::Event::Lifecycle(l) = r.event
                    && l.subject == agent
                {
                    events.push(l.event);
                }
                true
            },
        )
        .unwrap();
    assert_eq!(
        events,
        ["agent.registered", "agent.suspended", "agent.retired"]
    );
    g.stop().await;
}

#[tokio::test]
async fn the_mcp_endpoint_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // An upstream nobody listens on: the endpoint is served all the same.
    let inventory = INVENTORY.replace(
        "settings:",
        "mcp_servers:\n  - id: crm\n    url: http://127.0.0.1:9/mcp\n    timeout_ms: 200\nsettings:",
    );
    let g = Gateway::sound(&dir.path().join("zt4ai.db"), &inventory, true).await;
    let facts = live::probe(&g.url(), None, TIMEOUT).await;
    let mcp = facts
        .unauthenticated
        .iter()
        .find(|a| a.path == "/mcp")
        .unwrap();
    assert_eq!(mcp.status, Some(401), "{mcp:?}");
    let d = deployment(facts);
    assert_eq!(run(&d, "live-authn-required").status, Status::Passed);
    // Without the admin token, nothing is changed and nothing verified.
    for id in ["live-kill-switch", "live-audit-verifiable"] {
        let o = run(&d, id);
        assert_eq!(o.status, Status::Skipped, "{id}: {o:?}");
        assert!(o.summary.contains("--admin-token"), "{}", o.summary);
    }
    g.stop().await;
}

#[tokio::test]
async fn a_gateway_without_identity_fails_authentication_and_has_no_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::weak(&dir.path().join("zt4ai.db")).await;
    // Even with an admin token in hand, there is nothing to probe.
    let facts = live::probe(&g.url(), Some(ADMIN_TOKEN), TIMEOUT).await;
    let d = deployment(facts.clone());
    let o = run(&d, "live-authn-required");
    assert_eq!(o.status, Status::Failed, "{o:#?}");
    assert!(
        o.evidence
            .iter()
            .any(|e| e.problem && e.message.contains("/access/v1/evaluation → 200")),
        "{o:#?}"
    );
    let o = run(&d, "live-kill-switch");
    assert_eq!(o.status, Status::Skipped, "{o:?}");
    assert!(o.summary.contains("without identity"), "{}", o.summary);
    assert!(facts.kill_switch.agent.is_none(), "nothing was registered");
    assert_eq!(run(&d, "live-audit-verifiable").status, Status::Skipped);
    assert_eq!(run(&d, "live-metrics").status, Status::Passed);
    assert_eq!(run(&d, "live-health").status, Status::Passed);
    assert_eq!(run(&d, "live-transport-tls").status, Status::Investigate);
    g.stop().await;
}

#[tokio::test]
async fn a_gateway_that_is_not_there_fails_health_and_skips_the_rest() {
    // Bind and drop: a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let facts = live::probe(
        &format!("http://127.0.0.1:{port}"),
        Some(ADMIN_TOKEN),
        Duration::from_secs(2),
    )
    .await;
    let d = deployment(facts);
    assert_eq!(run(&d, "live-health").status, Status::Failed);
    for id in [
        "live-authn-required",
        "live-kill-switch",
        "live-audit-verifiable",
        "live-metrics",
    ] {
        assert_eq!(run(&d, id).status, Status::Skipped, "{id}");
    }
    let facts = live::probe("not a url", None, TIMEOUT).await;
    assert!(facts.error.is_some());
    let d = deployment(facts);
    assert_eq!(run(&d, "live-health").status, Status::Skipped);
    assert_eq!(run(&d, "live-transport-tls").status, Status::Failed);
}
