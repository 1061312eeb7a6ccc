//! The MCP gateway's HTTP side: Streamable HTTP at `/mcp` (every upstream's
//! tools, prefixed) and `/mcp/{server}` (one server's tools), behind the
//! delegated token check, and the protected-resource metadata (RFC 9728) that MCP
//! clients follow from a `401` to find where to get a token.
//!
//! The transport itself, sessions and message checks, is in
//! [`crate::mcp_transport`]; what the methods answer is in `zt4ai-mcp`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zt4ai_mcp::McpGateway;

use crate::AppState;
use crate::mcp_transport::Endpoint;

fn metadata_url(state: &AppState) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource",
        state.config.base_url.trim_end_matches('/')
    )
}

/// The `Host` values the MCP service accepts (DNS-rebinding protection): the
/// loopback names and the host of the configured base URL.
fn allowed_hosts(state: &AppState) -> Vec<String> {
    let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
    if let Ok(u) = url::Url::parse(&state.config.base_url)
        && let Some(h) = u.host_str()
    {
        let h = h.trim_start_matches('[').trim_end_matches(']').to_owned();
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts.extend(state.config.mcp_allowed_hosts.iter().cloned());
    hosts
}

/// One MCP endpoint serving `gateway`.
fn endpoint(state: &AppState, gateway: McpGateway) -> Arc<Endpoint> {
    Endpoint::new(
        gateway,
        &allowed_hosts(state),
        state.config.max_body_bytes,
        state.config.max_evaluations,
    )
}

/// The `/mcp` routes, if the gateway has upstream MCP servers and identity.
pub(crate) fn router(state: &AppState) -> Router {
    let (Some(upstreams), Some(_), Some(pins)) = (&state.config.mcp, &state.identity, &state.pins)
    else {
        return Router::new();
    };
    let gateway = McpGateway::new(
        Arc::clone(&state.pipeline),
        Arc::clone(upstreams),
        Arc::clone(pins),
    );
    let mut router =
        Router::new().route_service("/mcp", endpoint(state, gateway.clone()).service());
    for server in upstreams.servers() {
        if let Some(one) = gateway.for_server(&server.id) {
            router = router.route_service(
                &format!("/mcp/{}", server.id),
                endpoint(state, one).service(),
            );
        }
    }
    router.layer(axum::middleware::from_fn_with_state(
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
    let verified = crate::auth::verify_request(
        &state,
        identity,
        "mcp",
        req.method(),
        req.uri().path(),
        req.headers(),
    )
    .await;
    match verified {
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
        "dpop_signing_alg_values_supported": zt4ai_identity::DPOP_ALGS,
        "dpop_bound_access_tokens_required": state.identity.as_ref().is_some_and(|i| i.requires_dpop()),
        "resource_name": "zt4ai MCP gateway",
    }))
    .into_response()
}
