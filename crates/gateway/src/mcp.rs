//! The MCP gateway's HTTP side: Streamable HTTP at `/mcp` (every upstream's
//! tools, prefixed) and `/mcp/{server}` (one server's tools), behind the
//! delegated token check, and the protected-resource metadata (RFC 9728) that MCP
//! clients follow from a `401` to find where to get a token.
//!
//! In front of the MCP service, every POSTed message is checked before the SDK
//! sees it, so that bad input always gets a JSON-RPC error body:
//! * larger than the body limit: `413` with a JSON-RPC error;
//! * not JSON: `400`, `-32700` (parse error);
//! * JSON but not a JSON-RPC message: `400`, `-32600` (invalid request);
//! * a batch (a JSON array): each element is handled, and decided, on its own,
//!   and the responses come back as one JSON array.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ClientRequest};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::Deserialize as _;
use serde_json::{Value, json};
use zt4ai_mcp::McpGateway;

use crate::AppState;
use crate::mcp_direct::{DirectCall, Endpoint, Initialize};

/// A `tools/call` request as the direct path reads it: `_meta` stays in the
/// params, where the approval is presented.
#[derive(serde::Deserialize)]
struct CallWire {
    jsonrpc: String,
    id: Value,
    method: String,
    params: CallToolRequestParams,
}

impl CallWire {
    /// A JSON-RPC 2.0 `tools/call` request with a usable id.
    fn is_call(&self) -> bool {
        self.jsonrpc == "2.0"
            && self.method == "tools/call"
            && (self.id.is_string() || self.id.is_i64() || self.id.is_u64())
    }
}

/// How long one element of a batch may take to answer.
const BATCH_ELEMENT_TIMEOUT: Duration = Duration::from_secs(120);

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

/// One MCP endpoint serving `gateway`: rmcp's service with the direct path for
/// `tools/call` in front (see [`crate::mcp_direct`]).
fn endpoint(state: &AppState, gateway: McpGateway) -> Arc<Endpoint> {
    let sessions = Arc::new(LocalSessionManager::default());
    let factory = gateway.clone();
    let hosts = allowed_hosts(state);
    let rmcp = StreamableHttpService::new(
        move || Ok(factory.session()),
        Arc::clone(&sessions),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts.clone())
            .with_max_request_body_bytes(state.config.max_body_bytes),
    );
    Endpoint::new(gateway, sessions, rmcp, &hosts)
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
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_messages,
        ))
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

/// A JSON-RPC error response with HTTP `status`.
fn rpc_error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    tracing::info!(decision = "deny", status = status.as_u16(), code, error = %message, "MCP message refused");
    (
        status,
        Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The id of a message that is an object with a usable id, else `null`.
fn id_of(v: &Value) -> Value {
    match v.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// Checks every POSTed message (size, JSON, JSON-RPC shape) and splits batches.
async fn check_messages(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let limit = state.config.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if too_large {
                rpc_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Value::Null,
                    -32600,
                    format!("message too large: the limit is {limit} bytes"),
                )
            } else {
                rpc_error(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    -32600,
                    format!("cannot read the request body: {e}"),
                )
            };
        }
    };
    // The common case: one well-formed message, passed on untouched. A
    // `tools/call` is marked for the endpoint's direct path (read once, as
    // exactly that), and `initialize` so that the endpoint learns the new
    // session's owner.
    let mut parts = parts;
    let well_formed = match serde_json::from_slice::<CallWire>(&bytes) {
        Ok(call) if call.is_call() => {
            parts.extensions.insert(DirectCall {
                id: call.id,
                params: call.params,
            });
            true
        }
        _ => match serde_json::from_slice::<ClientJsonRpcMessage>(&bytes) {
            Ok(ClientJsonRpcMessage::Request(r))
                if matches!(r.request, ClientRequest::InitializeRequest(_)) =>
            {
                parts.extensions.insert(Initialize);
                true
            }
            Ok(_) => true,
            Err(_) => false,
        },
    };
    if well_formed {
        if !json_only(&parts.headers) {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
        // A client that accepts only JSON gets the answer as one JSON body.
        parts.headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let res = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        return as_json(res, state.config.max_body_bytes.max(1 << 20)).await;
    }
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32700,
                format!("parse error: the body is not JSON ({e})"),
            );
        }
    };
    match value {
        Value::Array(items) => batch(&state, parts, items, next).await,
        other => {
            let why = ClientJsonRpcMessage::deserialize(&other)
                .err()
                .map_or_else(String::new, |e| e.to_string());
            rpc_error(
                StatusCode::BAD_REQUEST,
                id_of(&other),
                -32600,
                format!("invalid request: not a JSON-RPC 2.0 MCP message ({why})"),
            )
        }
    }
}

/// Handles a JSON-RPC batch element by element: each goes through the MCP service
/// (and so through authorisation) as if sent alone; the answers come back as one
/// array. Notifications get no answer; a batch of notifications gets `202`.
async fn batch(
    state: &AppState,
    parts: axum::http::request::Parts,
    items: Vec<Value>,
    next: Next,
) -> Response {
    if items.is_empty() {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            "invalid request: empty batch".into(),
        );
    }
    let max = state.config.max_evaluations;
    if items.len() > max {
        return rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            Value::Null,
            -32600,
            format!("batch of {} messages: the limit is {max}", items.len()),
        );
    }
    let mut answers = Vec::with_capacity(items.len());
    for item in items {
        let id = id_of(&item);
        let is_request = item.get("id").is_some();
        if item.get("method").and_then(Value::as_str) == Some("initialize") {
            answers.push(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600,
                "message": "invalid request: `initialize` must not be part of a batch"}}));
            continue;
        }
        let bytes = match ClientJsonRpcMessage::deserialize(&item) {
            Ok(_) => Bytes::from(item.to_string()),
            Err(e) => {
                if is_request || !item.is_object() {
                    answers.push(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32600,
                        "message": format!("invalid request: not a JSON-RPC 2.0 MCP message ({e})")}}));
                }
                continue;
            }
        };
        let mut sub = parts.clone();
        sub.headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(bytes.len() as u64),
        );
        let res = tokio::time::timeout(
            BATCH_ELEMENT_TIMEOUT,
            next.clone()
                .run(Request::from_parts(sub, Body::from(bytes))),
        )
        .await;
        let answer = match res {
            Ok(res) => answer_of(res, state.config.max_body_bytes.max(1 << 20)).await,
            Err(_) => Some(Err("no answer in time".to_owned())),
        };
        match answer {
            Some(Ok(a)) => answers.push(a),
            Some(Err(why)) if is_request => answers.push(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": why}}),
            ),
            _ => {}
        }
    }
    tracing::info!(
        elements = answers.len(),
        "MCP batch handled element by element"
    );
    if answers.is_empty() {
        return StatusCode::ACCEPTED.into_response();
    }
    Json(Value::Array(answers)).into_response()
}

/// Whether the client accepts JSON but not server-sent events.
fn json_only(headers: &axum::http::HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    accept.contains("application/json") && !accept.contains("text/event-stream")
}

/// A response carrying its JSON-RPC answer as an SSE stream, re-sent as one JSON
/// body with the same status and headers (the session id among them).
async fn as_json(res: Response, limit: usize) -> Response {
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !sse {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let answer = answer_of(Response::from_parts(parts.clone(), body), limit).await;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = match answer {
        Some(Ok(v)) => v,
        Some(Err(why)) => {
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32603, "message": why}})
        }
        None => return StatusCode::ACCEPTED.into_response(),
    };
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// The JSON-RPC answer in one element's response: the JSON body, or the response
/// carried by its SSE stream. `None` for an accepted notification.
async fn answer_of(res: Response, limit: usize) -> Option<Result<Value, String>> {
    let status = res.status();
    if status == StatusCode::ACCEPTED {
        return None;
    }
    let sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = match axum::body::to_bytes(res.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => return Some(Err(format!("cannot read the answer: {e}"))),
    };
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() {
        return Some(Err(format!("{status}: {}", text.trim())));
    }
    if !sse {
        return Some(serde_json::from_str(&text).map_err(|e| format!("unreadable answer: {e}")));
    }
    // Server-sent events: the answer is the event whose data is a JSON-RPC
    // response (priming events carry no data).
    for event in text.split("\n\n") {
        let data: String = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(v) = serde_json::from_str::<Value>(&data)
            && (v.get("result").is_some() || v.get("error").is_some())
        {
            return Some(Ok(v));
        }
    }
    Some(Err("the answer stream held no JSON-RPC response".into()))
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
