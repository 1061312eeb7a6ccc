//! The MCP gateway's HTTP side: Streamable HTTP at `/mcp`, behind the delegated
//! token check, and the protected-resource metadata (RFC 9728) that MCP clients
//! follow from a `401` to find where to get a token.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use zt4ai_mcp::McpGateway;

use crate::AppState;

fn metadata_url(state: &AppState) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource",
        state.config.base_url.trim_end_matches('/')
    )
}

/// The `/mcp` routes, if the gateway has upstream MCP servers and identity.
pub(crate) fn router(state: &AppState) -> Router {
    let (Some(upstreams), Some(_)) = (&state.config.mcp, &state.identity) else {
        return Router::new();
    };
    let gateway = McpGateway::new(Arc::clone(&state.pipeline), Arc::clone(upstreams));
    let service = StreamableHttpService::new(
        move || Ok(gateway.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// Verifies the delegated token of every MCP request and hands the chain to the
/// handler; refuses with `401` and the resource metadata otherwise.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(identity) = &state.identity else {
        return crate::ApiError::NotFound.into_response();
    };
    match crate::auth::verify_bearer(identity, req.headers()) {
        Ok(chain) => {
            req.extensions_mut().insert(chain);
            next.run(req).await
        }
        Err(e) => {
            tracing::info!(decision = "deny", error = e.code, reason = %e.description, "MCP request refused: bad credentials");
            let meta = metadata_url(&state);
            crate::auth::auth_error(&e, crate::auth::Challenge::Bearer(Some(&meta)))
        }
    }
}

/// `GET /.well-known/oauth-protected-resource` (RFC 9728).
pub(crate) async fn resource_metadata(State(state): State<AppState>) -> Response {
    let base = state.config.base_url.trim_end_matches('/');
    Json(json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "resource_name": "zt4ai MCP gateway",
    }))
    .into_response()
}
