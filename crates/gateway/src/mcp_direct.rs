//! One MCP endpoint: rmcp's Streamable HTTP service, with a direct path for
//! `tools/call`.
//!
//! rmcp serves a request of a stateful session through the session's worker
//! task, the service loop and a request-wise event channel, then frames the
//! answer as server-sent events. On a loaded gateway those hops cost more than
//! deciding the call (see `BENCHMARKS.md`). A `tools/call` in a live session
//! that the caller owns therefore skips them: it is decided and forwarded by the
//! task that received it, and answered as one JSON body, which the transport
//! allows for any request. Everything else goes to rmcp: `initialize`,
//! notifications, `tools/list`, `DELETE`, the `GET` stream, batches' elements,
//! and any call the direct path is not sure about (unknown or closed session,
//! unsupported protocol version), which rmcp then answers as usual.
//!
//! The direct path needs to know who owns a session: the owner is recorded when
//! rmcp's answer to `initialize` names the new session, and forgotten on
//! `DELETE` or once rmcp no longer knows the session.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolRequestParams, ErrorData, ServerResult};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::Value;
use zt4ai_core::{AgentId, UserId};
use zt4ai_identity::VerifiedChain;
use zt4ai_mcp::McpGateway;

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// The protocol revisions whose requests the direct path answers (those that
/// have sessions); anything else is left to rmcp.
const DIRECT_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Owners are swept of closed sessions whenever their number doubles.
const FIRST_SWEEP: usize = 1024;

/// A `tools/call` request, found by the message check in front of the endpoint.
#[derive(Clone, Debug)]
pub(crate) struct DirectCall {
    pub(crate) id: Value,
    pub(crate) params: CallToolRequestParams,
}

/// An `initialize` request, marked by the message check.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Initialize;

type Owner = (UserId, Vec<AgentId>);

/// One MCP endpoint (`/mcp` or `/mcp/<server>`).
pub(crate) struct Endpoint {
    gateway: McpGateway,
    sessions: Arc<LocalSessionManager>,
    rmcp: StreamableHttpService<McpGateway, LocalSessionManager>,
    owners: parking_lot::Mutex<Owners>,
    /// The `Host` values accepted (host, optional port), as rmcp is configured:
    /// a request with any other `Host` is left to rmcp, which refuses it.
    allowed_hosts: Vec<(String, Option<u16>)>,
}

struct Owners {
    map: HashMap<Arc<str>, Owner>,
    sweep_at: usize,
}

impl Endpoint {
    pub(crate) fn new(
        gateway: McpGateway,
        sessions: Arc<LocalSessionManager>,
        rmcp: StreamableHttpService<McpGateway, LocalSessionManager>,
        allowed_hosts: &[String],
    ) -> Arc<Self> {
        Arc::new(Endpoint {
            gateway,
            sessions,
            rmcp,
            allowed_hosts: allowed_hosts.iter().filter_map(|h| authority(h)).collect(),
            owners: parking_lot::Mutex::new(Owners {
                map: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        })
    }

    /// The endpoint as a service for the router.
    pub(crate) fn service(
        self: Arc<Self>,
    ) -> impl tower::Service<
        Request,
        Response = Response,
        Error = Infallible,
        Future = impl Future<Output = Result<Response, Infallible>> + Send,
    > + Clone
    + Send
    + 'static {
        tower::service_fn(move |req: Request| {
            let me = Arc::clone(&self);
            async move { Ok(me.serve(req).await) }
        })
    }

    async fn serve(&self, mut req: Request) -> Response {
        let sid = req
            .headers()
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(Arc::<str>::from);
        if let (Some(mut call), Some(sid)) = (req.extensions_mut().remove::<DirectCall>(), &sid) {
            if self.may_answer(req.headers())
                && let Some(chain) = req.extensions_mut().remove::<VerifiedChain>()
            {
                match self.direct(&chain, sid, call).await {
                    Ok(answer) => return answer,
                    Err(back) => call = back,
                }
                req.extensions_mut().insert(chain);
            }
            req.extensions_mut().insert(call);
        }
        // The owner of a session `initialize` may open.
        let owner = req
            .extensions()
            .get::<Initialize>()
            .and(req.extensions().get::<VerifiedChain>())
            .map(|v| (v.user.clone(), v.agents.clone()));
        let delete = req.method() == Method::DELETE;
        let res = self.rmcp.handle(req).await.map(Body::new);
        if res.status().is_success() {
            if let (Some(new), Some(owner)) = (
                res.headers().get(SESSION_ID).and_then(|v| v.to_str().ok()),
                owner,
            ) {
                self.record(Arc::from(new), owner).await;
            } else if delete && let Some(sid) = sid {
                self.owners.lock().map.remove(&sid);
            }
        }
        res
    }

    /// Whether the direct path may answer a request with these headers: what
    /// rmcp checks before it serves a request (DNS-rebinding protection on
    /// `Host`, JSON accepted and sent, a protocol revision with sessions). A
    /// request that fails any of them goes to rmcp, which answers the error.
    fn may_answer(&self, headers: &HeaderMap) -> bool {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let host_ok = text(header::HOST)
            .and_then(authority)
            .is_some_and(|(host, port)| {
                self.allowed_hosts
                    .iter()
                    .any(|(h, p)| *h == host && p.is_none_or(|p| Some(p) == port))
            });
        let accepts_json = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("application/json"));
        let sends_json = text(header::CONTENT_TYPE).is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json"))
        });
        let version_ok = headers
            .get(PROTOCOL_VERSION)
            .is_none_or(|v| DIRECT_VERSIONS.iter().any(|d| v.as_bytes() == d.as_bytes()));
        host_ok && accepts_json && sends_json && version_ok
    }

    /// Answers a `tools/call` of `chain` in session `sid` itself, or gives the
    /// call back to be left to rmcp.
    async fn direct(
        &self,
        chain: &VerifiedChain,
        sid: &Arc<str>,
        call: DirectCall,
    ) -> Result<Response, DirectCall> {
        let owned = match self.owners.lock().map.get(sid) {
            Some(o) => o.0 == chain.user && o.1 == chain.agents,
            None => return Err(call),
        };
        if !self.sessions.has_session(sid).await.unwrap_or(false) {
            self.owners.lock().map.remove(sid);
            return Err(call);
        }
        let session = zt4ai_mcp::flow_session(sid);
        let answer = if !owned {
            Err(zt4ai_mcp::not_the_owner(&session))
        } else {
            match zt4ai_mcp::approval_in(&call.params) {
                Ok(approval) => {
                    self.gateway
                        .call(chain, session, call.params, approval)
                        .await
                }
                Err(e) => Err(e),
            }
        };
        Ok(json_answer(call.id, answer.map(ServerResult::from)))
    }

    /// Records the owner of a new session, sweeping closed sessions' owners
    /// whenever their number has doubled.
    async fn record(&self, sid: Arc<str>, owner: Owner) {
        let sweep = {
            let mut o = self.owners.lock();
            o.map.insert(sid, owner);
            (o.map.len() >= o.sweep_at).then(|| o.map.keys().cloned().collect::<Vec<_>>())
        };
        let Some(known) = sweep else { return };
        let mut closed = Vec::new();
        for sid in known {
            if !self.sessions.has_session(&sid).await.unwrap_or(true) {
                closed.push(sid);
            }
        }
        let mut o = self.owners.lock();
        for sid in &closed {
            o.map.remove(sid);
        }
        o.sweep_at = (o.map.len() * 2).max(FIRST_SWEEP);
    }
}

/// A `Host` value or allowed-host entry as (lower-case host without brackets,
/// port).
fn authority(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (host, port) = match axum::http::uri::Authority::try_from(value) {
        Ok(a) => (a.host().to_owned(), a.port_u16()),
        Err(_) => (value.to_owned(), None),
    };
    Some((
        host.trim_matches(|c| c == '[' || c == ']')
            .to_ascii_lowercase(),
        port,
    ))
}

/// A JSON-RPC response, serialized as it stands.
#[derive(serde::Serialize)]
struct Answer<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a ServerResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorData>,
}

/// A JSON-RPC answer as one JSON body.
fn json_answer(id: Value, answer: Result<ServerResult, ErrorData>) -> Response {
    let (result, error) = match &answer {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let body = Answer {
        jsonrpc: "2.0",
        id: &id,
        result,
        error,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "an MCP answer could not be encoded");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
