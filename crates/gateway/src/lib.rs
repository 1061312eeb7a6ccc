//! zt4ai's HTTP enforcement points.
//!
//! Today this is the OpenID AuthZEN 1.0 policy decision point API, for agents and
//! frameworks that enforce in-process: `POST /access/v1/evaluation`,
//! `POST /access/v1/evaluations` and `GET /.well-known/authzen-configuration`.
//! Every endpoint only translates its protocol into an
//! [`ActionRequest`](zt4ai_core::ActionRequest) and the
//! [`Verdict`](zt4ai_core::Verdict) back; the decision itself is the
//! [pipeline's](zt4ai_pipeline::Pipeline), so it is the same whichever door a
//! request comes through.
//!
//! Bad input never reaches the pipeline as a guess: malformed JSON and wrong types
//! get `400` with the offending path, oversized bodies `413`; a well-formed request
//! that cannot be resolved (unknown agent, unknown action) is a `deny` with a reason.

mod authzen;
mod error;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
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
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_body_bytes: 256 * 1024,
            max_evaluations: 256,
            base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pipeline: Arc<Pipeline>,
    config: Arc<GatewayConfig>,
}

/// The gateway's routes.
pub fn router(pipeline: Arc<Pipeline>, config: GatewayConfig) -> Router {
    let state = AppState {
        pipeline,
        config: Arc::new(config),
    };
    Router::new()
        .route("/access/v1/evaluation", post(authzen::evaluation))
        .route("/access/v1/evaluations", post(authzen::evaluations))
        .route(
            "/.well-known/authzen-configuration",
            get(authzen::configuration),
        )
        .route("/healthz", get(health))
        .fallback(error::not_found)
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<serde_json::Value> {
    let (hits, misses) = state.pipeline.engine().cache_stats();
    axum::Json(serde_json::json!({
        "status": "ok",
        "sessions_cached": state.pipeline.store().cached(),
        "decision_cache": { "hits": hits, "misses": misses },
    }))
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains
/// in-flight requests.
pub async fn serve(
    listener: TcpListener,
    pipeline: Arc<Pipeline>,
    mut config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    if config.base_url.is_empty() {
        config.base_url = format!("http://{addr}");
    }
    let app = router(pipeline, config);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
