//! zt4ai's HTTP enforcement points.
//!
//! Today this is the OpenID AuthZEN 1.0 policy decision point API, for agents and
//! frameworks that enforce in-process: `POST /access/v1/evaluation`,
//! `POST /access/v1/evaluations` and `GET /.well-known/authzen-configuration`;
//! the token endpoint where agents obtain delegated tokens (`POST /oauth/token`,
//! RFC 8693) with its JWKS and metadata; and the admin API (agent registry,
//! revocation, key rotation, audit verification).
//! Every endpoint only translates its protocol into an
//! [`ActionRequest`](zt4ai_core::ActionRequest) and the
//! [`Verdict`](zt4ai_core::Verdict) back; the decision itself is the
//! [pipeline's](zt4ai_pipeline::Pipeline), so it is the same whichever door a
//! request comes through.
//!
//! Bad input never reaches the pipeline as a guess: malformed JSON and wrong types
//! get `400` with the offending path, oversized bodies `413`; a well-formed request
//! that cannot be resolved (unknown agent, unknown action) is a `deny` with a reason.

#![allow(
    clippy::result_large_err,
    reason = "handlers short-circuit with a ready axum Response; one per request, never hot"
)]

mod admin;
mod auth;
mod authzen;
mod error;
mod llm;
mod mcp;
mod mcp_transport;
pub mod notify;
mod threads;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use zt4ai_identity::Identity;
use zt4ai_pipeline::Pipeline;

pub use error::ApiError;

/// Reads an AuthZEN evaluation request (`subject`, `action`, `resource`, `context`)
/// as an [`ActionRequest`](zt4ai_core::ActionRequest), exactly as the API does.
/// An error is a sentence saying what is wrong.
pub fn authzen_request(body: &serde_json::Value) -> Result<zt4ai_core::ActionRequest, String> {
    authzen::from_value(body)
}

/// Gateway settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted number of items in one `evaluations` request.
    pub max_evaluations: usize,
    /// The base URL published in the AuthZEN metadata (`http://host:port`).
    pub base_url: String,
    /// The admin API's bearer credential; `None` disables the admin API.
    pub admin_token: Option<String>,
    /// Upstream MCP servers; `Some` serves the MCP gateway at `/mcp` (tokens required).
    pub mcp: Option<Arc<zt4ai_mcp::Upstreams>>,
    /// `Host` header values the MCP endpoints accept besides loopback and the
    /// base URL's host (DNS-rebinding protection).
    pub mcp_allowed_hosts: Vec<String>,
    /// The audit log's SQLite file, for `GET /admin/v1/audit/verify` (the log's
    /// writer does not expose where it writes); `None` disables that endpoint.
    pub audit_path: Option<std::path::PathBuf>,
    /// The LLM gateway; `Some` serves `/v1/chat/completions` and `/v1/models`
    /// (tokens required).
    pub llm: Option<zt4ai_llm::LlmGateway>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: 256 * 1024,
            max_evaluations: 256,
            base_url: "http://127.0.0.1:8080".into(),
            admin_token: None,
            mcp: None,
            mcp_allowed_hosts: Vec::new(),
            audit_path: None,
            llm: None,
        }
    }
}

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pipeline: Arc<Pipeline>,
    config: Arc<GatewayConfig>,
    /// `Some`: every request proves who it is with a delegated token. `None`:
    /// the caller states the actor chain (embedding and tests only; `zt4ai serve`
    /// always runs with identity).
    identity: Option<Arc<Identity>>,
    /// The MCP tool pins, when the MCP gateway runs.
    pins: Option<Arc<zt4ai_mcp::Pins>>,
}

/// The gateway's routes. With `identity`, every AuthZEN request must carry a
/// delegated token and the token endpoints are served; without it the caller
/// states the actor chain, which only an embedding that authenticates callers
/// itself should do.
pub fn router(
    pipeline: Arc<Pipeline>,
    config: GatewayConfig,
    identity: Option<Arc<Identity>>,
) -> Router {
    let pins = config
        .mcp
        .as_ref()
        .map(|_| Arc::new(zt4ai_mcp::Pins::new(Arc::clone(pipeline.store()))));
    if let Some(identity) = &identity {
        // A quarantine made by a decision in this process: token verification
        // must see the suspension on the very next request, not a second later.
        let identity = Arc::downgrade(identity);
        pipeline.add_quarantine_hook(zt4ai_pipeline::QuarantineHook(Arc::new(move |_| {
            if let Some(i) = identity.upgrade() {
                i.changed();
            }
        })));
    }
    let state = AppState {
        pipeline,
        config: Arc::new(config),
        identity,
        pins,
    };
    let mcp = mcp::router(&state);
    Router::new()
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route(
            "/.well-known/authzen-configuration",
            get(authzen::configuration),
        )
        .route("/oauth/token", post(auth::token))
        .route("/.well-known/jwks.json", get(auth::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(auth::metadata),
        )
        .route("/admin/v1/agents", get(admin::list).post(admin::register))
        .route("/admin/v1/agents/{id}", get(admin::show))
        .route("/admin/v1/agents/{id}/{op}", post(admin::lifecycle))
        .route("/admin/v1/tokens/revoke", post(admin::revoke_token))
        .route("/admin/v1/users/{id}/revoke", post(admin::revoke_user))
        .route("/admin/v1/keys/rotate", post(admin::rotate))
        .route("/admin/v1/approvals", get(admin::approvals))
        .route("/admin/v1/approvals/{id}", get(admin::approval))
        .route(
            "/admin/v1/approvals/{id}/{op}",
            post(admin::decide_approval),
        )
        .route("/admin/v1/labels/{user}/{agent}", get(admin::label))
        .route(
            "/admin/v1/labels/{user}/{agent}/lower",
            post(admin::lower_label),
        )
        .route("/admin/v1/tools", get(admin::tools))
        .route("/admin/v1/tools/{tool}/approve", post(admin::approve_tool))
        .route("/admin/v1/audit/verify", get(admin::verify_audit))
        .route(
            "/.well-known/oauth-protected-resource",
            get(mcp::resource_metadata),
        )
        .route("/v1/chat/completions", post(llm::chat))
        .route("/v1/models", get(llm::models))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .fallback(error::not_found)
        .with_state(state)
        .merge(mcp)
}

/// `/healthz`: whether this process can decide at all. `200` with `"status":
/// "ok"`, or `503` with `"status": "failing"` while the session store or the
/// audit log fails (every request is then denied).
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    let (ok, body) = core_health(&state);
    health_response(ok, body)
}

/// `/readyz`: `/healthz`, plus the upstream MCP servers; `503` also when every
/// upstream is down (one down server still leaves the others to serve).
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    let (mut ok, mut body) = core_health(&state);
    if let Some(ups) = &state.config.mcp {
        let status = ups.status();
        if !status.is_empty() && status.iter().all(|s| s.state == "down") {
            ok = false;
        }
        body["upstreams"] = serde_json::json!(status);
    }
    health_response(ok, body)
}

fn core_health(state: &AppState) -> (bool, serde_json::Value) {
    let (hits, misses) = state.pipeline.engine().cache_stats();
    let audit = state.pipeline.audit().map(|a| a.health());
    let store = state.pipeline.store().ping();
    let ok = audit.as_ref().is_none_or(|a| a.ok) && store.is_ok();
    let body = serde_json::json!({
        "store": match &store {
            Ok(()) => serde_json::json!({ "ok": true }),
            Err(e) => serde_json::json!({ "ok": false, "error": e.to_string() }),
        },
        "sessions_cached": state.pipeline.store().cached(),
        "decision_cache": { "hits": hits, "misses": misses },
        "audit": audit,
    });
    (ok, body)
}

fn health_response(ok: bool, body: serde_json::Value) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut body = body;
    body["status"] = serde_json::json!(if ok { "ok" } else { "failing" });
    let code = if ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// `/metrics`: Prometheus metrics in the OpenMetrics text format.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let m = zt4ai_telemetry::metrics();
    m.sessions_cached(state.pipeline.store().cached());
    if let Some(a) = state.pipeline.audit() {
        let h = a.health();
        m.audit_state(h.records, h.pending, h.unsynced, h.ok);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            zt4ai_telemetry::METRICS_CONTENT_TYPE,
        )],
        m.render(),
    )
        .into_response()
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    config: GatewayConfig,
    identity: Option<Arc<Identity>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app_on(&listener, pipeline, config, identity)?;
    // Streamed answers (MCP's server-sent events) go out in several writes; without
    // TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each one ~40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the gateway like [`serve`], with its connections spread over
/// `threads` threads that each run a single-threaded Tokio runtime of their
/// own; accepting connections runs on the caller's runtime. Each connection is
/// served, start to end, by one thread, which wakes no other: on a busy
/// gateway this costs less CPU and latency per request than one multi-threaded
/// runtime (see `BENCHMARKS.md`). Errors: the listener's address cannot be
/// read, a thread cannot be started.
pub async fn serve_threads(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    config: GatewayConfig,
    identity: Option<Arc<Identity>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    threads: std::num::NonZeroUsize,
) -> std::io::Result<()> {
    if let Some(m) = &config.mcp {
        m.supervise_here();
    }
    let app = app_on(&listener, pipeline, config, identity)?;
    threads::serve(listener, app, threads, shutdown).await
}

/// The gateway's router for `listener`, whose address is the base URL unless
/// the config names one.
fn app_on(
    listener: &TcpListener,
    pipeline: Arc<Pipeline>,
    mut config: GatewayConfig,
    identity: Option<Arc<Identity>>,
) -> std::io::Result<Router> {
    let addr: SocketAddr = listener.local_addr()?;
    if config.base_url.is_empty() {
        config.base_url = format!("http://{addr}");
    }
    Ok(router(pipeline, config, identity))
}
