#![allow(dead_code, reason = "each user of the stand-in uses part of it")]
//! A stand-in for an OpenAI-compatible LLM provider, for end-to-end tests and
//! benchmarks.
//!
//! It serves `GET /v1/models` and `POST /v1/chat/completions` on loopback. What
//! a chat completion answers is chosen by markers in the text of the last
//! `user` message; several markers may appear in one message:
//!
//! - `[[say:TEXT]]`: the reply content is exactly `TEXT`, with `{card}`
//!   replaced by [`CARD`] (so that a test's prompt need not carry it).
//! - `[[reason:TEXT]]`: the reply also carries `reasoning_content` `TEXT`
//!   (as some providers send a model's reasoning), `{card}` replaced as above;
//!   streamed before the content.
//! - `[[tool:NAME:ARGS]]`: the reply proposes a call of tool `NAME` with the raw
//!   argument string `ARGS`; several markers give calls `call_1`, `call_2`, ...
//! - `[[sleep:MS]]`: wait `MS` milliseconds before answering.
//! - `[[garbage]]`: answer 200 with a body that is not JSON.
//! - `[[error:STATUS]]`: answer `STATUS` with an OpenAI error body.
//! - `[[chunk_delay:MS]]`: when streaming, wait `MS` milliseconds between chunks.
//! - `[[pad:N]]`: the reply content is `N` bytes of `x`.
//! - no marker: the reply content is `ok`.
//!
//! A marker's value runs until the next `]]`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use futures_util::StreamExt as _;
use futures_util::stream;
use parking_lot::Mutex;
use serde_json::{Value, json};

/// A valid test payment card number, for completions that carry one.
pub const CARD: &str = "4111 1111 1111 1111";

/// The most bytes of content one streamed chunk carries.
const PIECE_BYTES: usize = 8;

/// A running stand-in provider on `127.0.0.1`.
pub struct StandIn {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The parsed request bodies received on `/v1/chat/completions`, in order.
    pub received: Arc<Mutex<Vec<Value>>>,
    /// The `Authorization` header of each request on `/v1/chat/completions`, in
    /// order (also of the requests rejected for a wrong key).
    pub auth: Arc<Mutex<Vec<Option<String>>>>,
    /// The server task.
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Starts on `127.0.0.1:0`. `api_key`: when `Some`, requests whose
    /// `Authorization` header is not `Bearer <key>` get 401 with an OpenAI
    /// error body.
    pub async fn start(api_key: Option<&str>) -> StandIn {
        let shared = Arc::new(Shared {
            api_key: api_key.map(str::to_owned),
            received: Arc::default(),
            auth: Arc::default(),
            next_id: AtomicU64::new(1),
        });
        let received = Arc::clone(&shared.received);
        let auth = Arc::clone(&shared.auth);
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = listener.tap_io(|tcp| {
            // Best effort: without it small SSE chunks may wait on delayed ACKs.
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StandIn {
            addr,
            received,
            auth,
            task,
        }
    }

    /// The OpenAI base URL: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The request bodies received on `/v1/chat/completions`, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.received.lock().clone()
    }

    /// Stops the server.
    pub fn stop(self) {
        self.task.abort();
    }
}

/// State shared by the handlers.
struct Shared {
    /// The key a request must present, if any.
    api_key: Option<String>,
    /// See [`StandIn::received`].
    received: Arc<Mutex<Vec<Value>>>,
    /// See [`StandIn::auth`].
    auth: Arc<Mutex<Vec<Option<String>>>>,
    /// The number in the next completion id.
    next_id: AtomicU64,
}

impl Shared {
    /// Whether `authorization` satisfies the configured key.
    fn authorized(&self, authorization: Option<&str>) -> bool {
        match &self.api_key {
            None => true,
            Some(key) => authorization == Some(format!("Bearer {key}").as_str()),
        }
    }
}

/// The `Authorization` header, if present and valid text.
fn authorization(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `GET /v1/models`: one model, `standin`.
async fn models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.authorized(authorization(&headers).as_deref()) {
        return unauthorized();
    }
    axum::Json(json!({
        "object": "list",
        "data": [{"id": "standin", "object": "model", "created": 0, "owned_by": "standin"}],
    }))
    .into_response()
}

/// `POST /v1/chat/completions`: records the request and answers as its
/// markers say.
async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = authorization(&headers);
    shared.auth.lock().push(authorization.clone());
    if !shared.authorized(authorization.as_deref()) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "request body is not valid JSON",
            "invalid_request_error",
            "invalid_json",
        );
    };
    shared.received.lock().push(request.clone());

    let plan = Plan::from_request(&request);
    if let Some(delay) = plan.sleep {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = plan.error {
        return openai_error(status, "stand-in error", "server_error", "standin");
    }
    if plan.garbage {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "this is not json {",
        )
            .into_response();
    }

    let id = format!(
        "chatcmpl-standin-{}",
        shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let model = request
        .get("model")
        .cloned()
        .unwrap_or_else(|| json!("standin"));
    let reply = Reply {
        id,
        created: unix_now(),
        model,
        usage: plan.usage(prompt_bytes(&request)),
        content: plan.content,
        tools: plan.tools,
        reasoning: plan.reasoning,
    };
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        reply.stream(include_usage, plan.chunk_delay)
    } else {
        axum::Json(reply.completion()).into_response()
    }
}

/// What the markers of a request ask for.
#[derive(Debug, Default)]
struct Plan {
    /// The reply content; `None` when the reply is only tool calls.
    content: Option<String>,
    /// Proposed tool calls, `(name, arguments)`, in order.
    tools: Vec<(String, String)>,
    /// `[[reason:TEXT]]`: the reply's `reasoning_content`.
    reasoning: Option<String>,
    /// `[[sleep:MS]]`: wait before answering.
    sleep: Option<Duration>,
    /// `[[chunk_delay:MS]]`: wait between streamed chunks.
    chunk_delay: Option<Duration>,
    /// `[[garbage]]`: answer with a body that is not JSON.
    garbage: bool,
    /// `[[error:STATUS]]`: answer with this status and an OpenAI error body.
    error: Option<StatusCode>,
}

impl Plan {
    /// Reads the markers in the last `user` message of `request`.
    fn from_request(request: &Value) -> Plan {
        let text = request
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|messages| {
                messages
                    .iter()
                    .rev()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .map(|m| message_text(m.get("content").unwrap_or(&Value::Null)))
            .unwrap_or_default();
        Plan::from_text(&text)
    }

    /// Reads the markers in `text`; unknown or malformed markers are ignored.
    fn from_text(text: &str) -> Plan {
        let mut plan = Plan::default();
        let mut said = None;
        for marker in markers(text) {
            let (name, value) = marker.split_once(':').unwrap_or((marker, ""));
            match name {
                "say" => said = Some(value.replace("{card}", CARD)),
                "reason" => plan.reasoning = Some(value.replace("{card}", CARD)),
                "pad" => {
                    if let Ok(n) = value.trim().parse() {
                        said = Some("x".repeat(n));
                    }
                }
                "tool" => {
                    let (tool, args) = value.split_once(':').unwrap_or((value, ""));
                    plan.tools.push((tool.to_owned(), args.to_owned()));
                }
                "sleep" => plan.sleep = millis(value),
                "chunk_delay" => plan.chunk_delay = millis(value),
                "garbage" => plan.garbage = true,
                "error" => {
                    plan.error = Some(
                        value
                            .parse()
                            .ok()
                            .and_then(|s| StatusCode::from_u16(s).ok())
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    );
                }
                _ => {}
            }
        }
        plan.content = match said {
            Some(text) => Some(text),
            None if plan.tools.is_empty() => Some("ok".to_owned()),
            None => None,
        };
        plan
    }

    /// Token usage for a prompt of `prompt_bytes` bytes and this reply.
    fn usage(&self, prompt_bytes: usize) -> Value {
        let prompt = (prompt_bytes / 4).max(1);
        let content_bytes = self.content.as_deref().map_or(0, str::len);
        let completion = (content_bytes / 4).max(1) + 10 * self.tools.len();
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        })
    }
}

/// The insides of each `[[...]]` in `text`, in order.
fn markers(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("]]") else { break };
        found.push(&after[..end]);
        rest = &after[end + 2..];
    }
    found
}

/// A marker value in milliseconds.
fn millis(value: &str) -> Option<Duration> {
    value.trim().parse().ok().map(Duration::from_millis)
}

/// The text of a message `content`: a string, or the joined `text` parts of
/// an array.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// The total bytes of text content over all messages of `request`.
fn prompt_bytes(request: &Value) -> usize {
    request
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, |messages| {
            messages
                .iter()
                .map(|m| message_text(m.get("content").unwrap_or(&Value::Null)).len())
                .sum()
        })
}

/// An answer to one chat-completions request.
struct Reply {
    /// `chatcmpl-standin-N`.
    id: String,
    /// Unix seconds.
    created: u64,
    /// The request's model.
    model: Value,
    /// The `usage` object.
    usage: Value,
    /// The reply content, `None` for `null`.
    content: Option<String>,
    /// Proposed tool calls, `(name, arguments)`.
    tools: Vec<(String, String)>,
    /// `reasoning_content`, if any.
    reasoning: Option<String>,
}

impl Reply {
    /// `"tool_calls"` when the reply proposes calls, else `"stop"`.
    fn finish_reason(&self) -> &'static str {
        if self.tools.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    /// The non-streaming `chat.completion` object.
    fn completion(&self) -> Value {
        let mut message = json!({"role": "assistant", "content": self.content});
        if let Some(r) = &self.reasoning {
            message["reasoning_content"] = json!(r);
        }
        if !self.tools.is_empty() {
            let calls: Vec<Value> = self
                .tools
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({
                        "id": format!("call_{}", i + 1),
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    })
                })
                .collect();
            message["tool_calls"] = Value::Array(calls);
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason()}],
            "usage": self.usage,
        })
    }

    /// A `chat.completion.chunk` with one choice carrying `delta`.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    }

    /// The SSE events of the streamed reply, `[DONE]` included.
    fn events(&self, include_usage: bool) -> Vec<Bytes> {
        let mut chunks = vec![self.chunk(json!({"role": "assistant", "content": ""}), None)];
        for piece in pieces(self.reasoning.as_deref().unwrap_or(""), PIECE_BYTES) {
            chunks.push(self.chunk(json!({"reasoning_content": piece}), None));
        }
        for piece in pieces(self.content.as_deref().unwrap_or(""), PIECE_BYTES) {
            chunks.push(self.chunk(json!({"content": piece}), None));
        }
        for (i, (name, args)) in self.tools.iter().enumerate() {
            chunks.push(self.chunk(
                json!({"tool_calls": [{
                    "index": i,
                    "id": format!("call_{}", i + 1),
                    "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]}),
                None,
            ));
            let (first, second) = args.split_at(char_floor(args, args.len() / 2));
            for half in [first, second] {
                chunks.push(self.chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": half}}]}),
                    None,
                ));
            }
        }
        chunks.push(self.chunk(json!({}), Some(self.finish_reason())));
        if include_usage {
            let mut usage = self.chunk(json!({}), None);
            usage["choices"] = json!([]);
            usage["usage"] = self.usage.clone();
            chunks.push(usage);
        }
        chunks
            .iter()
            .map(|chunk| Bytes::from(format!("data: {chunk}\n\n")))
            .chain([Bytes::from_static(b"data: [DONE]\n\n")])
            .collect()
    }

    /// The streamed (`text/event-stream`) response, `delay` between events.
    fn stream(&self, include_usage: bool, delay: Option<Duration>) -> Response {
        let events = self.events(include_usage);
        let body =
            stream::iter(events.into_iter().enumerate()).then(move |(i, event)| async move {
                if let Some(delay) = delay.filter(|d| i > 0 && !d.is_zero()) {
                    tokio::time::sleep(delay).await;
                }
                Ok::<_, Infallible>(event)
            });
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }
}

/// `text` cut into pieces of at most `max` bytes (at least one character
/// each), on character boundaries.
fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(first) = rest.chars().next() {
        let end = char_floor(rest, max).max(first.len_utf8());
        let (piece, tail) = rest.split_at(end);
        out.push(piece);
        rest = tail;
    }
    out
}

/// The largest character boundary of `text` at or below `index`.
fn char_floor(text: &str, index: usize) -> usize {
    let mut end = index.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Unix time in seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An OpenAI-style error response.
fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    let body = json!({
        "error": {"message": message, "type": kind, "param": null, "code": code},
    });
    (status, axum::Json(body)).into_response()
}

/// The 401 for a missing or wrong API key.
fn unauthorized() -> Response {
    openai_error(
        StatusCode::UNAUTHORIZED,
        "Incorrect API key provided",
        "invalid_request_error",
        "invalid_api_key",
    )
}

/// Posts `body` to `{base_url}/chat/completions`; returns the status and the
/// parsed JSON answer, or `Value::String` of the raw text when it is not JSON.
pub async fn chat(client: &reqwest::Client, base_url: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("{base_url}/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}
