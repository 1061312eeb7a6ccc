//! The gateway's client for Streamable HTTP upstream servers.
//!
//! The messages are rmcp's own types; the transport is a plain request and
//! response on hyper's HTTP/1.1 connections ([`crate::conn`]). rmcp's client
//! transport runs every request through a worker task and several channels, and
//! on a loaded gateway those thread hops (futex and eventfd wake-ups) cost more
//! than the MCP work itself (see `BENCHMARKS.md`). Here a call is one HTTP
//! exchange, polled by the task that decided it, connection included. reqwest
//! is not used: its redirect and retry layers parse the URL again on every
//! request, which was several per cent of the gateway's CPU per call.
//!
//! One upstream session is opened on first use (`initialize`, then
//! `notifications/initialized`) and shared by every call; a server that forgets
//! it (404) gets a new one and the request is sent again, once. An answer comes
//! as a JSON body or as server-sent events: the event that answers the request
//! is taken, notifications are dropped, and a request from the server (sampling,
//! elicitation) is refused at once so that the server does not wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, InitializeResult, ListToolsResult,
    ProtocolVersion, ServerResult, Tool,
};
use rustls_platform_verifier::BuilderVerifierExt as _;
use serde::de::DeserializeOwned;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::conn::{Connector, Pool};

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const ACCEPTS: &str = "application/json, text/event-stream";
/// The largest answer the gateway reads from an upstream server.
pub(crate) const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The most pages of `tools/list` the gateway follows.
const MAX_PAGES: usize = 100;

/// The upstreams' connector: HTTP/1.1 over TCP or TLS (the platform's trust
/// roots), no proxy. No redirect is followed (an upstream that redirects is a
/// misconfiguration or an attack). Needs a rustls crypto provider installed.
pub(crate) fn connector() -> Result<Connector, String> {
    let tls = rustls::ClientConfig::builder()
        .with_platform_verifier()
        .map_err(|e| format!("TLS trust roots: {e}"))?
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(connector)
}

/// Why an exchange with an upstream failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The server answered with a JSON-RPC error.
    Rpc(ErrorData),
    /// The exchange broke: `short` is for the agent, `detail` for the log.
    Broken { short: String, detail: String },
}

impl Failure {
    fn broken(short: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Failure::Broken {
            short: short.into(),
            detail: detail.to_string(),
        }
    }
}

/// An upstream session: its id (none if the server keeps no sessions) and the
/// protocol revision negotiated in it.
#[derive(Clone)]
struct Session {
    id: Option<HeaderValue>,
    version: HeaderValue,
}

/// One Streamable HTTP upstream server.
pub(crate) struct HttpUpstream {
    url: Uri,
    pool: Arc<Pool>,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    next_id: AtomicU64,
}

/// One JSON-RPC message as an upstream may send it: a response (`result` or
/// `error`), or a request or notification of its own (`method`).
#[derive(Deserialize)]
struct Message<T> {
    id: Option<Value>,
    method: Option<String>,
    result: Option<T>,
    error: Option<ErrorData>,
}

/// Which kind of `tools/call` result an answer is, read without building it.
#[derive(Deserialize)]
struct Shape {
    content: Option<IgnoredAny>,
    #[serde(rename = "resultType")]
    result_type: Option<IgnoredAny>,
}

/// One JSON-RPC request, as sent.
#[derive(Serialize)]
struct Request<'a, P> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a P,
}

/// What one answer held.
enum Answered<T> {
    Done(Result<T, Failure>),
    /// The server no longer knows the session (HTTP 404).
    SessionGone,
    /// A notification, accepted.
    Accepted,
}

impl HttpUpstream {
    pub(crate) fn new(url: &str, connector: Connector) -> Result<Self, String> {
        let parsed: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(format!("`{url}`: not an http:// or https:// URL"));
        }
        let url = parsed;
        Ok(HttpUpstream {
            url,
            pool: Arc::new(Pool::new(connector)),
            session: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        })
    }

    /// `tools/list`, every page.
    pub(crate) async fn list_tools(&self) -> Result<Vec<Tool>, Failure> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let page: ListToolsResult = self.request("tools/list", &params).await?;
            tools.extend(page.tools);
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => return Ok(tools),
            }
        }
        Err(Failure::broken(
            "listed more than 100 pages of tools",
            "tools/list pagination did not end",
        ))
    }

    /// `tools/call`.
    pub(crate) async fn call_tool(
        &self,
        params: CallToolRequestParams,
    ) -> Result<CallToolResponse, Failure> {
        // Kept as text and read once into the type it turns out to be, rather
        // than built as a `Value` tree first (this is every call's path).
        let result: Box<RawValue> = self.request("tools/call", &params).await?;
        let not_mcp = |e| Failure::broken("answered with something that is not MCP", e);
        // The common answer is a plain result: read it as one, rather than
        // trying `ServerResult`'s variants in turn.
        let shape: Shape = serde_json::from_str(result.get()).map_err(not_mcp)?;
        if shape.content.is_some() && shape.result_type.is_none() {
            return serde_json::from_str(result.get())
                .map(CallToolResponse::Complete)
                .map_err(not_mcp);
        }
        let result: ServerResult = serde_json::from_str(result.get()).map_err(not_mcp)?;
        match result {
            ServerResult::CallToolResult(r) => Ok(CallToolResponse::Complete(r)),
            ServerResult::InputRequiredResult(r) => Ok(CallToolResponse::InputRequired(r)),
            ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
            _ => Err(Failure::broken(
                "answered with something that is not MCP",
                "tools/call answered with another kind of result",
            )),
        }
    }

    /// Forgets the session after a failure: the next request opens a new one.
    pub(crate) async fn forget(&self) {
        self.session.lock().await.take();
    }

    /// Ends the session (shutdown): `DELETE`, as the transport specifies.
    pub(crate) async fn close(&self) {
        let Some(s) = self.session.lock().await.take() else {
            return;
        };
        if s.id.is_some() {
            let mut req = self.build(Some(&s), Vec::new());
            *req.method_mut() = Method::DELETE;
            req.headers_mut().remove(CONTENT_TYPE);
            let _ = self.pool.exchange(req, async |_| ()).await;
        }
    }

    /// Sends one request in the current session (opening one if needed) and
    /// returns its result; a server that lost the session gets a new one, once.
    async fn request<T: DeserializeOwned, P: Serialize>(
        &self,
        method: &str,
        params: &P,
    ) -> Result<T, Failure> {
        let body = |id: u64| {
            serde_json::to_vec(&Request {
                jsonrpc: "2.0",
                id,
                method,
                params,
            })
            .map_err(|e| Failure::broken("bad request", e))
        };
        for _ in 0..2 {
            let session = self.session().await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            match self.post(Some(&session), body(id)?, Some(id)).await?.1 {
                Answered::Done(r) => return r,
                Answered::Accepted => {
                    return Err(Failure::broken(
                        "answered with something that is not MCP",
                        format!("`{method}` answered 202 Accepted"),
                    ));
                }
                Answered::SessionGone => {
                    let mut slot = self.session.lock().await;
                    if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, &session)) {
                        *slot = None;
                    }
                }
            }
        }
        Err(Failure::broken(
            "keeps losing its session",
            "the server answered 404 for a fresh session",
        ))
    }

    /// The current session, opened (`initialize`) if there is none.
    async fn session(&self) -> Result<Arc<Session>, Failure> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        // Rare, and large: boxed so that every request's future stays small.
        let session = Box::pin(self.open_session()).await?;
        *slot = Some(Arc::clone(&session));
        Ok(session)
    }

    /// `initialize`, then `notifications/initialized`.
    async fn open_session(&self) -> Result<Arc<Session>, Failure> {
        let mut init = rmcp::model::ClientConfig::default();
        init.protocol_version = ProtocolVersion::LATEST_WITH_INITIALIZE;
        init.client_info =
            rmcp::model::Implementation::new("zt4ai-gateway", env!("CARGO_PKG_VERSION"));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": init}),
        )
        .map_err(|e| Failure::broken("bad request", e))?;
        let (headers, answered) = self.post(None, body, Some(id)).await?;
        let result: InitializeResult = match answered {
            Answered::Done(r) => r?,
            Answered::SessionGone | Answered::Accepted => {
                return Err(Failure::broken(
                    "refused to open a session",
                    "initialize answered 404",
                ));
            }
        };
        let version = HeaderValue::from_str(result.protocol_version.as_str())
            .map_err(|e| Failure::broken("answered with something that is not MCP", e))?;
        let session = Arc::new(Session {
            id: headers.get(SESSION_ID).cloned(),
            version,
        });
        let note =
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .map_err(|e| Failure::broken("bad request", e))?;
        self.post::<Value>(Some(&session), note, None).await?;
        Ok(session)
    }

    /// A POST of `body` in `session` (none while initializing).
    fn build(&self, session: Option<&Session>, body: Vec<u8>) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.url.clone();
        let h = req.headers_mut();
        h.insert(ACCEPT, HeaderValue::from_static(ACCEPTS));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(s) = session {
            h.insert(PROTOCOL_VERSION, s.version.clone());
            if let Some(sid) = &s.id {
                h.insert(SESSION_ID, sid.clone());
            }
        }
        req
    }

    /// POSTs one message; for a request (`id`), reads the answer to it.
    async fn post<T: DeserializeOwned>(
        &self,
        session: Option<&Session>,
        body: Vec<u8>,
        id: Option<u64>,
    ) -> Result<(HeaderMap, Answered<T>), Failure> {
        let read = async |resp: &mut http::Response<Incoming>| {
            let status = resp.status();
            let headers = std::mem::take(resp.headers_mut());
            if status == StatusCode::NOT_FOUND && session.is_some_and(|s| s.id.is_some()) {
                return Ok((headers, Answered::SessionGone));
            }
            if !status.is_success() {
                let text = read_text(resp.body_mut(), &headers)
                    .await
                    .unwrap_or_default();
                return Err(Failure::broken(
                    format!("answered HTTP {}", status.as_u16()),
                    format!("HTTP {status}: {}", text.trim()),
                ));
            }
            let Some(id) = id else {
                return Ok((headers, Answered::Accepted));
            };
            let sse = headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            let answer = if sse {
                self.answer_from_events(resp.body_mut(), session, id).await
            } else {
                read_bytes(resp.body_mut(), &headers)
                    .await
                    .and_then(|bytes| {
                        answer_of(&bytes, id).unwrap_or_else(|| {
                            Err(Failure::broken(
                                "answered with something that is not MCP",
                                format!(
                                    "not the answer to request {id}: {}",
                                    String::from_utf8_lossy(&bytes)
                                ),
                            ))
                        })
                    })
            };
            Ok((headers, Answered::Done(answer)))
        };
        self.pool
            .exchange(self.build(session, body), read)
            .await
            .map_err(|e| Failure::broken("the connection failed", e))?
    }

    /// Reads server-sent events until the one that answers request `id`.
    async fn answer_from_events<T: DeserializeOwned>(
        &self,
        body: &mut Incoming,
        session: Option<&Session>,
        id: u64,
    ) -> Result<T, Failure> {
        let mut events = sse_stream::SseStream::new(body);
        let mut read = 0usize;
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| Failure::broken("the connection failed", e))?;
            // Priming events (an id and a retry interval) carry no message.
            let Some(data) = event.data.filter(|d| !d.trim().is_empty()) else {
                continue;
            };
            read += data.len();
            if read > MAX_ANSWER {
                return Err(Failure::broken(
                    "answered more than 16 MiB",
                    "answer too large",
                ));
            }
            if let Some(answer) = answer_of(data.as_bytes(), id) {
                return answer;
            }
            self.refuse_server_request(data.as_bytes(), session);
        }
        Err(Failure::broken(
            "closed the stream without answering",
            format!("the event stream ended before the answer to request {id}"),
        ))
    }

    /// A request from the server inside an answer stream (sampling,
    /// elicitation, roots): the gateway relays none, so it answers an error at
    /// once instead of letting the server wait.
    fn refuse_server_request(&self, data: &[u8], session: Option<&Session>) {
        let Ok(m) = serde_json::from_slice::<Message<Value>>(data) else {
            tracing::warn!("upstream MCP server sent an unreadable event; ignored");
            return;
        };
        let (Some(req_id), Some(method)) = (m.id, m.method) else {
            return; // a notification (progress, logging): not relayed
        };
        tracing::info!(method = %method, "upstream MCP server request refused: not relayed through the gateway");
        let Ok(body) = serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": req_id,
            "error": {"code": -32601, "message": format!("`{method}` is not relayed through the zt4ai gateway")},
        })) else {
            return;
        };
        let req = self.build(session, body);
        let pool = Arc::clone(&self.pool);
        tokio::spawn(async move {
            let _ = pool.exchange(req, async |_| ()).await;
        });
    }
}

/// The answer to request `id` in one JSON-RPC message, if it is that answer.
fn answer_of<T: DeserializeOwned>(data: &[u8], id: u64) -> Option<Result<T, Failure>> {
    let m: Message<T> = match serde_json::from_slice(data) {
        Ok(m) => m,
        Err(e) => {
            // Not readable as an answer carrying T: is it an answer at all?
            let v: Value = serde_json::from_slice(data).ok()?;
            if v.get("id").and_then(Value::as_u64) == Some(id) && v.get("method").is_none() {
                return Some(Err(Failure::broken(
                    "answered with something that is not MCP",
                    format!("unreadable answer: {e}"),
                )));
            }
            return None;
        }
    };
    if m.method.is_some() || m.id.as_ref().and_then(Value::as_u64) != Some(id) {
        return None;
    }
    Some(match (m.result, m.error) {
        (_, Some(e)) => Err(Failure::Rpc(e)),
        (Some(r), None) => Ok(r),
        (None, None) => Err(Failure::broken(
            "answered with something that is not MCP",
            "a response with neither result nor error",
        )),
    })
}

async fn read_bytes(body: &mut Incoming, headers: &HeaderMap) -> Result<Vec<u8>, Failure> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(Failure::broken(
            "answered more than 16 MiB",
            "answer too large",
        ));
    }
    match Limited::new(body, MAX_ANSWER).collect().await {
        Ok(body) => Ok(body.to_bytes().to_vec()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Failure::broken(
            "answered more than 16 MiB",
            "answer too large",
        )),
        Err(e) => Err(Failure::broken("the connection failed", e)),
    }
}

async fn read_text(body: &mut Incoming, headers: &HeaderMap) -> Option<String> {
    let bytes = read_bytes(body, headers).await.ok()?;
    let text = String::from_utf8_lossy(&bytes);
    Some(text.chars().take(200).collect())
}

/// An error and its causes, for the log (hyper's client error alone says only
/// "client error (Connect)").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    use super::*;

    /// What the fake upstream saw and how it behaves.
    #[derive(Default)]
    struct Seen {
        initializes: usize,
        /// Answer the next `tools/call` with 404, as a server that lost the session.
        lose_session: bool,
        /// The answers the gateway sent to the server's own requests.
        refusals: Vec<Value>,
    }

    type Shared = Arc<Mutex<Seen>>;

    fn sse(events: &[Value]) -> Response {
        let body: String = events
            .iter()
            .map(|e| format!("id: 0\ndata: {e}\n\n"))
            .collect();
        (
            [("content-type", "text/event-stream")],
            format!("retry: 3000\n\n{body}"),
        )
            .into_response()
    }

    /// A Streamable HTTP MCP server written for this test: it answers
    /// `tools/list` as JSON in two pages and `tools/call` as events, after asking
    /// the client something and notifying it of progress.
    async fn upstream(State(seen): State<Shared>, headers: HeaderMap, body: String) -> Response {
        let m: Value = serde_json::from_str(&body).unwrap();
        let session = headers
            .get(SESSION_ID)
            .map(|v| v.to_str().unwrap().to_owned());
        let mut s = seen.lock().unwrap();
        let method = m.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = m.get("id").cloned().unwrap_or(Value::Null);
        match method.as_deref() {
            Some("initialize") => {
                s.initializes += 1;
                let sid = format!("s{}", s.initializes);
                let result = json!({"jsonrpc": "2.0", "id": id, "result": {
                    "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "fake", "version": "0"}}});
                ([(SESSION_ID, sid)], axum::Json(result)).into_response()
            }
            _ if session.as_deref() != Some(&format!("s{}", s.initializes)) => {
                (StatusCode::BAD_REQUEST, "wrong session").into_response()
            }
            Some("notifications/initialized") => StatusCode::ACCEPTED.into_response(),
            Some("tools/list") => {
                let page2 = m["params"]["cursor"] == "p2";
                let (name, next) = if page2 {
                    ("b", None)
                } else {
                    ("a", Some("p2"))
                };
                let mut result =
                    json!({"tools": [{"name": name, "inputSchema": {"type": "object"}}]});
                if let Some(n) = next {
                    result["nextCursor"] = json!(n);
                }
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
            }
            Some("tools/call") if s.lose_session => {
                s.lose_session = false;
                (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
            }
            Some("tools/call") => sse(&[
                json!({"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}}),
                json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}}),
                json!({"jsonrpc": "2.0", "id": 999, "result": {"content": []}}),
                json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}}),
            ]),
            None => {
                s.refusals.push(m);
                StatusCode::ACCEPTED.into_response()
            }
            Some(_) => axum::Json(json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": "no such method"}}))
            .into_response(),
        }
    }

    async fn serve(seen: Shared) -> String {
        let app = axum::Router::new()
            .route("/mcp", axum::routing::post(upstream))
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/mcp")
    }

    fn client() -> Connector {
        let _ = rustls::crypto::ring::default_provider().install_default();
        connector().unwrap()
    }

    fn text(r: &CallToolResponse) -> String {
        let CallToolResponse::Complete(r) = r else {
            panic!("not a complete result: {r:?}")
        };
        r.content[0].as_text().unwrap().text.clone()
    }

    #[tokio::test]
    async fn lists_every_page_and_answers_calls_through_events() {
        let seen = Shared::default();
        let up = HttpUpstream::new(&serve(Arc::clone(&seen)).await, client()).unwrap();
        let tools = up.list_tools().await.unwrap();
        let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        assert_eq!(names, ["a", "b"], "both pages");

        let call = CallToolRequestParams::new("a");
        // The answer is the event with the request's id; the server's own
        // request in the stream is refused, its notification and a stray answer
        // are passed over.
        assert_eq!(text(&up.call_tool(call.clone()).await.unwrap()), "done");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        {
            let s = seen.lock().unwrap();
            assert_eq!(s.initializes, 1, "one session for every request");
            assert_eq!(s.refusals.len(), 1, "{:?}", s.refusals);
            assert_eq!(s.refusals[0]["id"], "srv-1");
            assert_eq!(s.refusals[0]["error"]["code"], -32601);
        }

        // A server that lost the session gets a new one and the call is sent again.
        seen.lock().unwrap().lose_session = true;
        assert_eq!(text(&up.call_tool(call).await.unwrap()), "done");
        assert_eq!(seen.lock().unwrap().initializes, 2);

        // A JSON-RPC error is the server's own answer, not a broken exchange.
        match up.request::<Value, _>("other/method", &json!({})).await {
            Err(Failure::Rpc(e)) => assert_eq!(e.code.0, -32601),
            other => panic!("expected the server's error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_server_that_is_not_mcp_is_a_broken_exchange() {
        let app = axum::Router::new().route(
            "/mcp",
            axum::routing::post(|| async {
                ([("content-type", "text/html")], "<html>hello</html>")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let up = HttpUpstream::new(&format!("http://{addr}/mcp"), client()).unwrap();
        match up.list_tools().await {
            Err(Failure::Broken { short, .. }) => {
                assert_eq!(short, "answered with something that is not MCP");
            }
            other => panic!("expected a broken exchange, got {other:?}"),
        }
    }
}
