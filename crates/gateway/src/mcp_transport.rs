//! The server side of MCP's Streamable HTTP transport for one endpoint (`/mcp`
//! or `/mcp/<server>`): protocol revisions 2024-11-05 to 2025-11-25, with
//! sessions, JSON answers and server-sent-event answers.
//!
//! * `POST` carries one JSON-RPC message or a batch. `initialize` (alone, with no
//!   session) opens a session owned by the principal of the delegated token, and
//!   the answer names it in `Mcp-Session-Id`. Every other message needs a live
//!   session of that same principal: no session id is `400`, an unknown or
//!   expired one `404`, another principal's `403`.
//! * A request is answered as one JSON body. If the answer takes longer than
//!   [`STREAM_AFTER`] and the client accepts an event stream, it becomes one: a
//!   comment every [`KEEP_ALIVE`] keeps proxies from cutting a slow tool call,
//!   then the answer comes as an event. A client that accepts only one of the two
//!   always gets that one. Notifications and responses are accepted with `202`.
//! * A batch is decided element by element; the answers come back as one array.
//! * `DELETE` ends a session. `GET` (a stream for messages the server starts) is
//!   `405`: the gateway sends none, which the transport allows.
//! * Every request is checked first: `Host` (DNS-rebinding protection), the media
//!   types, the protocol revision, the size and the JSON-RPC shape, each refused
//!   with its status and a JSON-RPC error.
//!
//! Why not rmcp's server transport, which the gateway used first: the gateway
//! only answers requests, and rmcp runs a worker task and six channels for each
//! session. `heaptrack` put that at about 90 KiB per idle session, and the
//! request path through the worker cost more CPU than deciding the call (see
//! `BENCHMARKS.md`). A session here is an entry in a map. rmcp still provides the
//! message types, and the upstream side (`zt4ai-mcp`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{CallToolRequestParams, ErrorData, InitializeRequestParams, ServerResult};
use serde::Serialize;
use serde_json::{Value, json};
use zt4ai_core::{AgentId, UserId};
use zt4ai_identity::VerifiedChain;
use zt4ai_mcp::McpGateway;

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// A session unused for this long is closed.
pub(crate) const IDLE: Duration = Duration::from_secs(3600);
/// The limits on live sessions.
const LIMITS: Limits = Limits {
    // Per endpoint: `initialize` beyond this is refused (`503`).
    total: 100_000,
    // Per principal (user and agent chain), so that one token holder cannot use
    // up the endpoint: beyond this, its least recently used session is closed.
    per_principal: 1_000,
    idle: IDLE,
};
/// Expired sessions are swept when the count reaches this, then whenever it
/// doubles.
const FIRST_SWEEP: usize = 1024;
/// An answer not ready after this long is sent as an event stream, if the client
/// accepts one.
pub(crate) const STREAM_AFTER: Duration = Duration::from_secs(1);
/// The interval of keep-alive comments in an answer stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One MCP endpoint and its sessions.
pub(crate) struct Endpoint {
    gateway: McpGateway,
    /// The `Host` values accepted: (lower-case host without brackets, port).
    allowed_hosts: Vec<(String, Option<u16>)>,
    max_body: usize,
    max_batch: usize,
    sessions: parking_lot::Mutex<Sessions>,
}

struct Sessions {
    map: HashMap<Box<str>, Session>,
    /// Live sessions per principal.
    per_principal: HashMap<Owner, usize>,
    sweep_at: usize,
}

type Owner = (UserId, Vec<AgentId>);

#[derive(Clone, Copy, Debug)]
struct Limits {
    total: usize,
    per_principal: usize,
    idle: Duration,
}

/// The endpoint's session limit is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Full;

impl Sessions {
    fn new() -> Self {
        Sessions {
            map: HashMap::new(),
            per_principal: HashMap::new(),
            sweep_at: FIRST_SWEEP,
        }
    }

    /// Opens session `sid` for `owner` at `now`, unless the endpoint is full
    /// (expired sessions are swept first when a limit is near). An owner at its
    /// own limit loses its least recently used session, whose client will get
    /// `404` and open another; its label lives with its token, so nothing is shed.
    /// Returns the session closed to make room, if any.
    fn open(
        &mut self,
        sid: Box<str>,
        owner: Owner,
        now: Instant,
        limits: Limits,
    ) -> Result<Option<Box<str>>, Full> {
        let mine = |s: &Self| s.per_principal.get(&owner).copied().unwrap_or(0);
        if self.map.len() >= self.sweep_at
            || self.map.len() >= limits.total
            || mine(self) >= limits.per_principal
        {
            self.sweep(now, limits.idle);
        }
        if self.map.len() >= limits.total {
            return Err(Full);
        }
        let mut evicted = None;
        if mine(self) >= limits.per_principal {
            let oldest = self
                .map
                .iter()
                .filter(|(_, v)| v.owner == owner)
                .min_by_key(|(_, v)| v.used)
                .map(|(k, _)| k.clone());
            if let Some(old) = oldest {
                self.close(&old);
                evicted = Some(old);
            }
        }
        *self.per_principal.entry(owner.clone()).or_default() += 1;
        if self.map.insert(sid, Session { owner, used: now }).is_none() {
            zt4ai_telemetry::metrics().mcp_session_opened();
        }
        Ok(evicted)
    }

    /// Forgets session `sid`.
    fn close(&mut self, sid: &str) {
        if let Some(gone) = self.map.remove(sid) {
            zt4ai_telemetry::metrics().mcp_session_closed();
            self.release(&gone.owner);
        }
    }

    fn release(&mut self, owner: &Owner) {
        if let Some(n) = self.per_principal.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.per_principal.remove(owner);
            }
        }
    }

    /// Forgets every session unused for `idle`.
    fn sweep(&mut self, now: Instant, idle: Duration) {
        let expired: Vec<Box<str>> = self
            .map
            .iter()
            .filter(|(_, v)| now.saturating_duration_since(v.used) >= idle)
            .map(|(k, _)| k.clone())
            .collect();
        for sid in expired {
            self.close(&sid);
        }
        self.sweep_at = (self.map.len() * 2).max(FIRST_SWEEP);
    }
}

/// A live MCP session: who opened it, and when it was last used.
struct Session {
    owner: Owner,
    used: Instant,
}

/// What a request's `Accept` header allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Accepts {
    json: bool,
    events: bool,
}

/// A JSON-RPC request's answer.
struct Reply {
    id: Value,
    result: Result<ServerResult, ErrorData>,
}

/// A JSON-RPC response, serialized as it stands.
#[derive(Serialize)]
struct Wire<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a ServerResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorData>,
}

impl Reply {
    fn wire(&self) -> Wire<'_> {
        let (result, error) = match &self.result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        Wire {
            jsonrpc: "2.0",
            id: &self.id,
            result,
            error,
        }
    }
}

/// A `tools/call` request read as exactly that (the common case, without an
/// intermediate JSON tree).
#[derive(serde::Deserialize)]
struct CallWire {
    jsonrpc: String,
    id: Value,
    method: String,
    params: CallToolRequestParams,
}

impl Endpoint {
    pub(crate) fn new(
        gateway: McpGateway,
        allowed_hosts: &[String],
        max_body: usize,
        max_batch: usize,
    ) -> Arc<Self> {
        Arc::new(Endpoint {
            gateway,
            allowed_hosts: allowed_hosts.iter().filter_map(|h| authority(h)).collect(),
            max_body,
            max_batch,
            sessions: parking_lot::Mutex::new(Sessions::new()),
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
            // Boxed once here rather than copied by each layer that wraps it.
            Box::pin(async move { Ok(me.serve(req).await) })
        })
    }

    async fn serve(self: Arc<Self>, mut req: Request) -> Response {
        if !self.host_allowed(req.headers()) {
            return refuse(
                StatusCode::FORBIDDEN,
                Value::Null,
                -32600,
                "forbidden: this Host is not allowed (DNS-rebinding protection)".into(),
            );
        }
        let Some(chain) = req.extensions_mut().remove::<VerifiedChain>() else {
            // The token check runs in front of the endpoint; without its result
            // nothing is served.
            return refuse(
                StatusCode::UNAUTHORIZED,
                Value::Null,
                -32600,
                "no verified delegated token".into(),
            );
        };
        match *req.method() {
            Method::POST => self.post(chain, req).await,
            Method::DELETE => self.delete(&chain, req.headers()),
            _ => {
                let mut res = refuse(
                    StatusCode::METHOD_NOT_ALLOWED,
                    Value::Null,
                    -32600,
                    format!(
                        "{} is not served here: POST messages, DELETE to end a session (the gateway starts no messages, so it offers no GET stream)",
                        req.method()
                    ),
                );
                res.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("POST, DELETE"));
                res
            }
        }
    }

    async fn post(self: Arc<Self>, chain: VerifiedChain, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        if let Err(res) = check_headers(headers) {
            return res;
        }
        let Some(accepts) = accepts(headers) else {
            return refuse(
                StatusCode::NOT_ACCEPTABLE,
                Value::Null,
                -32600,
                "not acceptable: accept application/json or text/event-stream".into(),
            );
        };
        let bytes = match read_body(body, self.max_body).await {
            Ok(b) => b,
            Err(res) => return res,
        };
        let sid = headers
            .get(SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        // The common case first: one `tools/call`, read as exactly that.
        if let Ok(call) = serde_json::from_slice::<CallWire>(&bytes)
            && call.jsonrpc == "2.0"
            && call.method == "tools/call"
            && usable_id(&call.id)
        {
            if let Err(res) = self.owned(sid.as_deref(), &chain, &call.id) {
                return res;
            }
            let me = Arc::clone(&self);
            return respond(accepts, async move {
                let result = me.call(&chain, call.params, &call.id, sid.as_deref()).await;
                encode(
                    &Reply {
                        id: call.id,
                        result,
                    }
                    .wire(),
                )
            })
            .await;
        }

        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    Value::Null,
                    -32700,
                    format!("parse error: the body is not JSON ({e})"),
                );
            }
        };
        match value {
            Value::Object(_)
                if value.get("method").and_then(Value::as_str) == Some("initialize") =>
            {
                self.initialize(&chain, value)
            }
            Value::Object(_) => {
                let id = id_of(&value);
                if let Err(e) = shape(&value) {
                    return refuse(StatusCode::BAD_REQUEST, id, -32600, e);
                }
                if let Err(res) = self.owned(sid.as_deref(), &chain, &id) {
                    return res;
                }
                let is_request = !id.is_null() && value.get("method").is_some();
                let me = Arc::clone(&self);
                let reply = async move { me.handle(&chain, value, sid.as_deref()).await };
                // A notification or a response is accepted; it has no answer.
                if !is_request {
                    reply.await;
                    return StatusCode::ACCEPTED.into_response();
                }
                respond(accepts, async move {
                    let reply = reply.await.unwrap_or(Reply {
                        id,
                        result: Err(ErrorData::internal_error("no answer", None)),
                    });
                    encode(&reply.wire())
                })
                .await
            }
            Value::Array(items) => self.batch(chain, sid, accepts, items).await,
            other => refuse(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32600,
                format!(
                    "invalid request: a JSON-RPC message is an object or an array of them, not {}",
                    zt4ai_core::json_type(&other)
                ),
            ),
        }
    }

    /// Opens a session for `chain` and answers `initialize`.
    fn initialize(&self, chain: &VerifiedChain, message: Value) -> Response {
        let id = id_of(&message);
        if let Err(e) = shape(&message) {
            return refuse(StatusCode::BAD_REQUEST, id, -32600, e);
        }
        if id.is_null() {
            return refuse(
                StatusCode::BAD_REQUEST,
                id,
                -32600,
                "invalid request: `initialize` is a request and needs an id".into(),
            );
        }
        let params: InitializeRequestParams =
            match message.get("params").cloned().map(serde_json::from_value) {
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        id,
                        -32602,
                        format!("invalid params for `initialize`: {e}"),
                    );
                }
                None => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        id,
                        -32602,
                        "invalid params: `initialize` needs params".into(),
                    );
                }
            };
        let sid = match self.open(chain) {
            Ok(sid) => sid,
            Err(res) => return res,
        };
        tracing::info!(
            session = %sid,
            user = %chain.user,
            agent = %chain.agents.last().map_or("-", |a| a.as_str()),
            client = %params.client_info.name,
            protocol = %params.protocol_version,
            "MCP session opened"
        );
        let reply = Reply {
            id,
            result: Ok(ServerResult::InitializeResult(
                self.gateway.initialize(&params),
            )),
        };
        let mut res = json_response(StatusCode::OK, encode(&reply.wire()));
        if let Ok(v) = HeaderValue::from_str(&sid) {
            res.headers_mut().insert(SESSION_ID, v);
        }
        res
    }

    /// A new session owned by `chain`, or the refusal.
    fn open(&self, chain: &VerifiedChain) -> Result<String, Response> {
        let mut raw = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut raw) {
            tracing::error!(error = %e, "no randomness for an MCP session id");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                Value::Null,
                -32603,
                "cannot open a session now".into(),
            ));
        }
        let sid = zt4ai_core::hex(&raw);
        let owner = (chain.user.clone(), chain.agents.clone());
        let opened =
            self.sessions
                .lock()
                .open(sid.clone().into_boxed_str(), owner, Instant::now(), LIMITS);
        if let Ok(evicted) = opened {
            if let Some(old) = evicted {
                tracing::info!(closed = %old, user = %chain.user, limit = LIMITS.per_principal, "MCP session closed to make room: its principal is at its limit of live sessions");
            }
            return Ok(sid);
        }
        tracing::warn!(
            limit = LIMITS.total,
            "MCP session refused: too many live sessions on this endpoint"
        );
        let mut res = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            Value::Null,
            -32603,
            format!(
                "too many live MCP sessions on this endpoint (the limit is {}): retry later",
                LIMITS.total
            ),
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        Err(res)
    }

    /// The live session `sid` names, if `chain` owns it (and marks it used); the
    /// refusal otherwise, carrying `id`.
    fn owned(&self, sid: Option<&str>, chain: &VerifiedChain, id: &Value) -> Result<(), Response> {
        let Some(sid) = sid else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                id.clone(),
                -32600,
                "bad request: no Mcp-Session-Id header: send `initialize` first".into(),
            ));
        };
        let mut s = self.sessions.lock();
        let live = match s.map.get_mut(sid) {
            Some(session) if session.used.elapsed() < IDLE => {
                if session.owner.0 != chain.user || session.owner.1 != chain.agents {
                    drop(s);
                    let e = zt4ai_mcp::not_the_owner(sid);
                    return Err(error_response(StatusCode::FORBIDDEN, id.clone(), &e));
                }
                session.used = Instant::now();
                true
            }
            Some(_) => {
                s.close(sid);
                false
            }
            None => false,
        };
        drop(s);
        if live {
            Ok(())
        } else {
            Err(refuse(
                StatusCode::NOT_FOUND,
                id.clone(),
                -32600,
                "unknown or expired MCP session: send `initialize` to open a new one".into(),
            ))
        }
    }

    /// `DELETE`: ends the caller's session.
    fn delete(&self, chain: &VerifiedChain, headers: &HeaderMap) -> Response {
        let sid = headers.get(SESSION_ID).and_then(|v| v.to_str().ok());
        if let Err(res) = self.owned(sid, chain, &Value::Null) {
            return res;
        }
        if let Some(sid) = sid {
            self.sessions.lock().close(sid);
            tracing::info!(session = %sid, "MCP session closed by the client");
        }
        StatusCode::OK.into_response()
    }

    /// A batch: each element handled and decided on its own, the answers
    /// returned as one array; `202` if none is a request.
    async fn batch(
        self: Arc<Self>,
        chain: VerifiedChain,
        sid: Option<String>,
        accepts: Accepts,
        items: Vec<Value>,
    ) -> Response {
        if items.is_empty() {
            return refuse(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32600,
                "invalid request: empty batch".into(),
            );
        }
        if items.len() > self.max_batch {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                -32600,
                format!(
                    "batch of {} messages: the limit is {}",
                    items.len(),
                    self.max_batch
                ),
            );
        }
        if let Err(res) = self.owned(sid.as_deref(), &chain, &Value::Null) {
            return res;
        }
        let requests = items.iter().filter(|i| answered(i)).count();
        let me = Arc::clone(&self);
        let answers = async move {
            let mut answers = Vec::with_capacity(items.len());
            for item in items {
                let id = id_of(&item);
                let reply = match shape(&item) {
                    Err(e) => answered(&item).then(|| Reply {
                        id,
                        result: Err(ErrorData::invalid_request(e, None)),
                    }),
                    Ok(()) if item.get("method").and_then(Value::as_str) == Some("initialize") => {
                        Some(Reply {
                            id,
                            result: Err(ErrorData::invalid_request(
                                "`initialize` must not be part of a batch",
                                None,
                            )),
                        })
                    }
                    Ok(()) => me.handle(&chain, item, sid.as_deref()).await,
                };
                answers.extend(reply);
            }
            tracing::info!(
                answers = answers.len(),
                "MCP batch handled element by element"
            );
            answers
        };
        if requests == 0 {
            answers.await;
            return StatusCode::ACCEPTED.into_response();
        }
        respond(accepts, async move {
            let answers = answers.await;
            encode(&answers.iter().map(Reply::wire).collect::<Vec<_>>())
        })
        .await
    }

    /// One well-formed message of a live session (not `initialize`): the answer
    /// if it is a request. Notifications and responses need none (the gateway
    /// sends no requests, and cancellation is left to the client's transport).
    async fn handle(
        &self,
        chain: &VerifiedChain,
        message: Value,
        sid: Option<&str>,
    ) -> Option<Reply> {
        let Value::Object(mut message) = message else {
            return None;
        };
        let (Some(id), Some(Value::String(method))) =
            (message.remove("id"), message.remove("method"))
        else {
            return None;
        };
        let params = message.remove("params");
        let result = match method.as_str() {
            "ping" => Ok(ServerResult::empty(())),
            "tools/list" => self
                .gateway
                .list_tools(chain)
                .await
                .map(ServerResult::ListToolsResult),
            "tools/call" => match params.map(serde_json::from_value::<CallToolRequestParams>) {
                Some(Ok(p)) => self.call(chain, p, &id, sid).await,
                Some(Err(e)) => Err(ErrorData::invalid_params(
                    format!("invalid params for `tools/call`: {e}"),
                    None,
                )),
                None => Err(ErrorData::invalid_params("`tools/call` needs params", None)),
            },
            "initialize" => Err(ErrorData::invalid_request(
                "this session is already initialized: send `initialize` alone, without Mcp-Session-Id, to open another",
                None,
            )),
            "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "prompts/list"
            | "prompts/get"
            | "completion/complete"
            | "logging/setLevel" => Err(zt4ai_mcp::not_offered(&method, chain)),
            other => Err(zt4ai_mcp::unknown_method(other, chain)),
        };
        Some(Reply { id, result })
    }

    /// Decides and forwards one `tools/call` (in the token's information-flow
    /// session, see [`zt4ai_mcp::flow_session`]), in a trace span named and
    /// attributed after the OpenTelemetry MCP semantic conventions (a server
    /// span `tools/call <tool>`).
    async fn call(
        &self,
        chain: &VerifiedChain,
        params: CallToolRequestParams,
        rpc_id: &Value,
        sid: Option<&str>,
    ) -> Result<ServerResult, ErrorData> {
        use tracing::Instrument as _;
        let span = tracing::debug_span!(target: zt4ai_telemetry::TRACE_TARGET, "tools/call",
            otel.name = format!("tools/call {}", params.name),
            otel.kind = "server",
            mcp.method.name = "tools/call",
            mcp.session.id = tracing::field::Empty,
            jsonrpc.request.id = %rpc_id,
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %params.name,
            gen_ai.agent.id = chain.agents.last().map(|a| a.as_str()),
            network.transport = "tcp",
            error.type = tracing::field::Empty,
        );
        if let Some(sid) = sid
            && !span.is_disabled()
        {
            // The session id lets its holder use the session: traces get a
            // digest, never the id.
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(sid.as_bytes());
            let short = zt4ai_core::hex(&digest[..8]);
            span.record("mcp.session.id", short);
        }
        // The caller's trace continues through zt4ai: MCP carries W3C Trace
        // Context in `params._meta` (the MCP semantic conventions).
        let meta = |k: &str| {
            params
                .meta
                .as_ref()
                .and_then(|m| m.0.0.get(k))
                .and_then(Value::as_str)
        };
        zt4ai_telemetry::continue_trace(&span, meta("traceparent"), meta("tracestate"));
        let approval = zt4ai_mcp::approval_in(&params)?;
        let outcome = self
            .gateway
            .call(chain, zt4ai_mcp::flow_session(chain), params, approval)
            .instrument(span.clone())
            .await;
        if let Err(e) = &outcome {
            span.record("error.type", e.code.0.to_string());
        }
        let mut result = outcome.map(ServerResult::from)?;
        // The shape of the revisions spoken here (2025-11-25 and older).
        result.strip_result_type_for_legacy_peer();
        result.strip_non_object_output_for_legacy_peer();
        Ok(result)
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let allowed = |host: &str, port: Option<u16>| {
            self.allowed_hosts
                .iter()
                .any(|(h, p)| h.eq_ignore_ascii_case(host) && p.is_none_or(|p| Some(p) == port))
        };
        // Every request asks: the usual `name:port` is read in place.
        match plain_authority(value) {
            Some((host, port)) => allowed(host, port),
            None => authority(value).is_some_and(|(host, port)| allowed(&host, port)),
        }
    }
}

/// The answer a future produces (one JSON-RPC message or an array, encoded), as
/// a JSON body or as an event stream: see the module documentation.
async fn respond<F>(accepts: Accepts, answer: F) -> Response
where
    F: Future<Output = Vec<u8>> + Send + 'static,
{
    if !accepts.events {
        return json_response(StatusCode::OK, answer.await);
    }
    let mut answer = Box::pin(answer);
    if accepts.json
        && let Ok(bytes) = tokio::time::timeout(STREAM_AFTER, &mut answer).await
    {
        return json_response(StatusCode::OK, bytes);
    }
    // Not ready yet (or JSON not accepted): stream, keeping the connection
    // alive until the answer comes. Dropping the stream drops the call.
    let ticks = tokio::time::interval(KEEP_ALIVE);
    let stream = futures_util::stream::unfold(Some((answer, ticks)), |state| async move {
        let (mut answer, mut ticks) = state?;
        tokio::select! {
            bytes = &mut answer => {
                let mut event = Vec::with_capacity(bytes.len() + 8);
                event.extend_from_slice(b"data: ");
                event.extend_from_slice(&bytes);
                event.extend_from_slice(b"\n\n");
                Some((Ok::<_, Infallible>(Bytes::from(event)), None))
            }
            _ = ticks.tick() => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), Some((answer, ticks)))),
        }
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The media types, the protocol revision: `Err` with the refusal.
fn check_headers(headers: &HeaderMap) -> Result<(), Response> {
    let json_sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_sent {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Value::Null,
            -32600,
            "unsupported media type: send Content-Type: application/json".into(),
        ));
    }
    if let Some(v) = headers.get(PROTOCOL_VERSION)
        && !zt4ai_mcp::PROTOCOL_VERSIONS
            .iter()
            .any(|p| v.as_bytes() == p.as_bytes())
    {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            format!(
                "bad request: unsupported MCP-Protocol-Version {:?}; this gateway speaks {}",
                String::from_utf8_lossy(v.as_bytes()),
                zt4ai_mcp::PROTOCOL_VERSIONS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// What the `Accept` header allows; `None` if neither JSON nor an event stream.
/// No header at all means JSON.
fn accepts(headers: &HeaderMap) -> Option<Accepts> {
    let mut seen = false;
    let mut a = Accepts {
        json: false,
        events: false,
    };
    for value in headers.get_all(header::ACCEPT) {
        for item in value.to_str().unwrap_or("").split(',') {
            seen = true;
            let media = item.split(';').next().unwrap_or("").trim();
            let is = |t: &str| media.eq_ignore_ascii_case(t);
            if is("application/json") || is("application/*") || is("*/*") {
                a.json = true;
            }
            if is("text/event-stream") || is("text/*") || is("*/*") {
                a.events = true;
            }
        }
    }
    if !seen {
        a.json = true;
    }
    (a.json || a.events).then_some(a)
}

/// The body, up to `limit` bytes; `Err` with the refusal.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                -32600,
                format!("message too large: the limit is {limit} bytes"),
            )
        } else {
            refuse(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32600,
                format!("cannot read the request body: {e}"),
            )
        }
    })
}

/// Whether `message` is a JSON-RPC 2.0 request, notification or response;
/// `Err` says what is wrong.
fn shape(message: &Value) -> Result<(), String> {
    let Some(m) = message.as_object() else {
        return Err(format!(
            "invalid request: a JSON-RPC message is an object, not {}",
            zt4ai_core::json_type(message)
        ));
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("invalid request: `jsonrpc` must be \"2.0\"".into());
    }
    if let Some(id) = m.get("id")
        && !usable_id(id)
    {
        return Err("invalid request: `id` must be a string or an integer".into());
    }
    match (m.get("method"), m.get("id")) {
        (Some(Value::String(_)), _) => Ok(()),
        (Some(_), _) => Err("invalid request: `method` must be a string".into()),
        (None, Some(_)) if m.contains_key("result") || m.contains_key("error") => Ok(()),
        (None, _) => Err("invalid request: not a JSON-RPC 2.0 MCP message (no `method`)".into()),
    }
}

/// Whether a batch element gets an answer: a request, or a malformed element
/// that has an id or is not an object at all.
fn answered(item: &Value) -> bool {
    match item.get("id") {
        Some(_) => shape(item).is_err() || item.get("method").is_some(),
        None => !item.is_object(),
    }
}

fn usable_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

/// The id of a message that is an object with a usable id, else `null`.
fn id_of(v: &Value) -> Value {
    match v.get("id") {
        Some(id) if usable_id(id) => id.clone(),
        _ => Value::Null,
    }
}

/// `value` as a plain `name[:port]` (letters, digits, dots and hyphens, a
/// port that fits 16 bits), without allocating; `None` for anything else,
/// which [`authority`] reads.
fn plain_authority(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match value.split_once(':') {
        Some((host, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (host, Some(port.parse::<u16>().ok()?))
        }
        None => (value, None),
    };
    let plain = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    plain.then_some((host, port))
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

/// `value` as JSON; an internal error message if it cannot be encoded.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "an MCP answer could not be encoded");
        br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"the answer could not be encoded"}}"#.to_vec()
    })
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// A refused request: HTTP `status` with a JSON-RPC error (and its log line).
fn refuse(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    tracing::info!(decision = "deny", status = status.as_u16(), code, error = %message, "MCP request refused");
    json_response(
        status,
        encode(&json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})),
    )
}

fn error_response(status: StatusCode, id: Value, e: &ErrorData) -> Response {
    json_response(
        status,
        encode(
            &Reply {
                id,
                result: Err(e.clone()),
            }
            .wire(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_plain_host_is_read_in_place_as_the_full_parser_reads_it() {
        for v in [
            "localhost",
            "127.0.0.1:8080",
            "Gateway.Example.COM:443",
            "a-b.example",
            "host:0",
            "host:65535",
        ] {
            let (host, port) = plain_authority(v).unwrap();
            assert_eq!(Some((host.to_ascii_lowercase(), port)), authority(v), "{v}");
        }
        // Anything else is left to the full parser.
        for v in [
            "",
            "[::1]:8080",
            "host:",
            "host:65536",
            "host:8o",
            "user@host",
            "a:1:2",
            " host",
            "hoſt",
        ] {
            assert_eq!(plain_authority(v), None, "{v}");
        }
    }

    #[test]
    fn accept_header() {
        let both = Accepts {
            json: true,
            events: true,
        };
        assert_eq!(
            accepts(&headers(&[(
                "accept",
                "application/json, text/event-stream"
            )])),
            Some(both)
        );
        assert_eq!(accepts(&headers(&[("accept", "*/*")])), Some(both));
        assert_eq!(
            accepts(&headers(&[("accept", "text/event-stream")])),
            Some(Accepts {
                json: false,
                events: true
            })
        );
        assert_eq!(
            accepts(&headers(&[])),
            Some(Accepts {
                json: true,
                events: false
            })
        );
        assert_eq!(accepts(&headers(&[("accept", "text/html")])), None);
    }

    #[test]
    fn message_shapes() {
        assert!(shape(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).is_ok());
        assert!(shape(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).is_ok());
        assert!(shape(&json!({"jsonrpc": "2.0", "id": "x", "result": {}})).is_ok());
        for bad in [
            json!({"jsonrpc": "1.0", "id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": null, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": 7}),
            json!({"jsonrpc": "2.0", "id": 1}),
            json!("ping"),
        ] {
            assert!(shape(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_limits_per_endpoint_and_principal() {
        let limits = Limits {
            total: 3,
            per_principal: 2,
            idle: Duration::from_secs(60),
        };
        let who = |u: &str| {
            (
                UserId::new(u.to_owned()).unwrap(),
                vec![AgentId::new("a".to_owned()).unwrap()],
            )
        };
        let t0 = Instant::now();
        let mut s = Sessions::new();
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(s.open("1".into(), who("alice"), t0, limits), Ok(None));
        assert_eq!(s.open("2".into(), who("alice"), t1, limits), Ok(None));
        // Alice at her limit: her least recently used session makes room.
        assert_eq!(
            s.open("3".into(), who("alice"), t1, limits),
            Ok(Some("1".into()))
        );
        assert!(!s.map.contains_key("1"));
        assert_eq!(s.open("4".into(), who("bob"), t1, limits), Ok(None));
        // The endpoint is full: nobody else gets in.
        assert_eq!(s.open("5".into(), who("carol"), t1, limits), Err(Full));
        // Ending one frees a slot.
        s.close("2");
        assert_eq!(s.open("5".into(), who("carol"), t1, limits), Ok(None));
        // Expired sessions are swept when a limit is reached.
        let later = t1 + Duration::from_secs(61);
        assert_eq!(s.open("6".into(), who("dave"), later, limits), Ok(None));
        assert_eq!(s.map.len(), 1);
        assert_eq!(s.per_principal.len(), 1);
    }

    /// A slow answer becomes an event stream with a keep-alive first; a quick
    /// one stays JSON; a client that takes only JSON waits for JSON.
    #[tokio::test(start_paused = true)]
    async fn slow_answers_stream() {
        let both = Accepts {
            json: true,
            events: true,
        };
        let quick = respond(both, async { b"{\"a\":1}".to_vec() }).await;
        assert_eq!(quick.headers()["content-type"], "application/json");

        let slow = respond(both, async {
            tokio::time::sleep(Duration::from_secs(40)).await;
            b"{\"a\":2}".to_vec()
        })
        .await;
        assert_eq!(slow.headers()["content-type"], "text/event-stream");
        let body = axum::body::to_bytes(slow.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        // A keep-alive at once and every 15 s, then the answer as an event.
        assert_eq!(
            text,
            ": keep-alive\n\n: keep-alive\n\n: keep-alive\n\ndata: {\"a\":2}\n\n"
        );

        let json_only = Accepts {
            json: true,
            events: false,
        };
        let slow = respond(json_only, async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            b"{\"a\":3}".to_vec()
        })
        .await;
        assert_eq!(slow.headers()["content-type"], "application/json");
    }
}
