//! The LLM gateway: zt4ai as an OpenAI-compatible endpoint to agents and a
//! client of the model providers of the inventory, deciding every model call
//! with the same pipeline as the MCP gateway and the AuthZEN API.
//!
//! * `GET /v1/models` lists only the models the caller's chain may invoke.
//! * `POST /v1/chat/completions` becomes an `invoke_model`
//!   [`ActionRequest`]: the messages are its prompt, inspected as content;
//!   messages with role `tool` or `function`, and any message marked
//!   [`UNTRUSTED_FIELD`], are untrusted (a prompt injection there makes the
//!   session untrusted instead of denying the call); sensitive data anywhere
//!   in the prompt is checked against the model's clearance (deny, or redact
//!   with `inspection.sensitive_egress: redact`); the session's label is
//!   checked against it too. The session is the token's, shared with the MCP
//!   gateway, so a tool's confidential output stops a later call to a model
//!   not cleared for it.
//! * What comes back is inspected before the agent sees it: sensitive data and
//!   injections change the session as a tool's output would; data above the
//!   chain's own clearance is withheld (a stream is cut with an error event);
//!   every tool call the model proposes is checked against policy as if the
//!   agent made it, and annotated, stripped or failed (`llm.tool_calls`).
//! * Budgets per agent and per user ([`budget`]) answer `429` with
//!   `Retry-After`.
//! * Provider keys stay in the gateway; provider errors, timeouts and
//!   malformed answers become OpenAI-style errors.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use serde_json::{Map, Value, json};
use zt4ai_core::inventory::llm::{ToolCallMode, Upstream};
use zt4ai_core::{
    Action, ActionRequest, ActorChain, ApprovalId, Decision, Label, SessionId, Verdict,
};
use zt4ai_identity::VerifiedChain;
use zt4ai_pipeline::inspect::Detectors;
use zt4ai_pipeline::{Pipeline, Refusal};

pub mod budget;
mod sse;

pub use budget::{Exhausted, Meter};

/// The enforcement point's name in audit records, metrics and traces.
pub const POINT: &str = "llm";

/// The message field that marks a message as untrusted content (a retrieved
/// document, say): `"zt4ai_untrusted": true`. Removed before the provider
/// sees the message.
pub const UNTRUSTED_FIELD: &str = "zt4ai_untrusted";

/// The reason ids of the LLM gateway's own refusals.
pub mod reasons {
    /// A budget is used up.
    pub const BUDGET: &str = "zt4ai.llm.budget";
    /// The completion carries data above the acting chain's clearance.
    pub const OUTPUT_CLEARANCE: &str = "zt4ai.llm.output_clearance";
    /// A proposed tool call names no inventory tool.
    pub const UNKNOWN_TOOL: &str = "zt4ai.llm.unknown_tool";
    /// A proposed tool call's arguments are not a JSON object.
    pub const TOOL_ARGUMENTS: &str = "zt4ai.llm.tool_arguments";
}

/// How many bytes of earlier text each streamed piece is inspected with, so
/// that a value split across pieces is still found.
const STREAM_OVERLAP: usize = 512;

/// An OpenAI-style error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmError {
    /// The HTTP status.
    pub status: u16,
    /// The error's `type`.
    pub kind: &'static str,
    /// The error's `code`.
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// zt4ai's details (the verdict), under `error.zt4ai`.
    pub detail: Option<Box<Value>>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl LlmError {
    fn new(status: u16, kind: &'static str, code: &'static str, message: String) -> Self {
        LlmError {
            status,
            kind,
            code,
            message,
            detail: None,
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        LlmError::new(
            400,
            "invalid_request_error",
            "invalid_request",
            message.into(),
        )
    }

    fn provider(status: u16, code: &'static str, message: String) -> Self {
        LlmError::new(status, "upstream_error", code, message)
    }

    /// The JSON body: `{"error": {"message", "type", "param", "code", "zt4ai"}}`.
    pub fn body(&self) -> Value {
        let mut e = json!({
            "message": self.message,
            "type": self.kind,
            "param": null,
            "code": self.code,
        });
        if let Some(d) = &self.detail {
            e["zt4ai"] = (**d).clone();
        }
        json!({ "error": e })
    }

    /// The error as the last event of a stream.
    fn event(&self) -> Bytes {
        Bytes::from(format!("data: {}\n\n", self.body()))
    }
}

/// A stream of server-sent events, ready to send.
pub type EventStream = Pin<Box<dyn Stream<Item = Bytes> + Send>>;

/// What a chat call answers.
pub enum Reply {
    /// A `chat.completion` object.
    Json(Value),
    /// `chat.completion.chunk` events, ending with `data: [DONE]` or an
    /// error event.
    Stream(EventStream),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Json(v) => f.debug_tuple("Json").field(v).finish(),
            Reply::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// What the HTTP side read from the request besides the body.
#[derive(Debug, Default, Clone)]
pub struct CallOptions {
    /// The caller's request id.
    pub request_id: Option<String>,
    /// A granted approval, presented for a retried call.
    pub approval: Option<ApprovalId>,
    /// Ask for a declassification instead of a label deny.
    pub declassify: bool,
}

/// The LLM gateway; cheap to clone.
#[derive(Clone)]
pub struct LlmGateway {
    inner: Arc<Inner>,
}

struct Inner {
    pipeline: Arc<Pipeline>,
    client: reqwest::Client,
    /// Each served model's provider key: `None` sends none; an error says
    /// why the key could not be read (the model then answers `503`).
    keys: HashMap<String, Result<Option<String>, String>>,
    meter: Meter,
}

impl std::fmt::Debug for LlmGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmGateway").finish_non_exhaustive()
    }
}

/// A proposed tool call, as the model wrote it.
#[derive(Debug, Clone, Default)]
struct Proposed {
    choice: u64,
    id: String,
    name: String,
    arguments: String,
}

/// A proposed tool call's verdict.
#[derive(Debug)]
struct Checked {
    call: Proposed,
    tool: Option<String>,
    verdict: Verdict,
}

impl Checked {
    fn allowed(&self) -> bool {
        self.verdict.decision == Decision::Allow
    }

    fn annotation(&self) -> Value {
        json!({
            "choice": self.call.choice,
            "id": self.call.id,
            "name": self.call.name,
            "tool": self.tool,
            "decision": self.verdict.decision.as_str(),
            "reasons": self.verdict.reasons,
            "policies": self.verdict.policies,
        })
    }
}

impl LlmGateway {
    /// The gateway for `pipeline`'s inventory. Provider keys are read now;
    /// one that cannot be read is logged and its model answers `503` (the
    /// others are served). `base_dir` resolves relative key files.
    pub fn new(
        pipeline: Arc<Pipeline>,
        base_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        // One TLS implementation for the process: rustls with ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .user_agent(concat!("zt4ai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client for the model providers: {e}"))?;
        let mut keys = HashMap::new();
        for m in pipeline.inventory().models.values() {
            let Some(up) = &m.upstream else { continue };
            let key = match &up.api_key {
                None => Ok(None),
                Some(source) => {
                    let source = match (source, base_dir) {
                        (zt4ai_core::inventory::verification::SecretSource::File(f), Some(dir))
                            if std::path::Path::new(f).is_relative() =>
                        {
                            zt4ai_core::inventory::verification::SecretSource::File(
                                dir.join(f).to_string_lossy().into_owned(),
                            )
                        }
                        (s, _) => s.clone(),
                    };
                    source.read().map(Some).map_err(|e| {
                        tracing::error!(model = %m.id, error = %e, "the model's provider key cannot be read; calls to it will fail");
                        format!("the provider key of model `{}` cannot be read: {e}", m.id)
                    })
                }
            };
            keys.insert(m.id.clone(), key);
        }
        Ok(LlmGateway {
            inner: Arc::new(Inner {
                pipeline,
                client,
                keys,
                meter: Meter::default(),
            }),
        })
    }

    /// `GET /v1/models`: the models `v`'s chain may invoke.
    pub fn models(&self, v: &VerifiedChain) -> Value {
        let chain = v.actor_chain();
        let p = &self.inner.pipeline;
        let data: Vec<Value> = p
            .inventory()
            .models
            .values()
            .filter(|m| p.may_invoke_model(&chain, v.scope.as_ref(), &m.id))
            .map(|m| {
                json!({
                    "id": m.id,
                    "object": "model",
                    "created": 0,
                    "owned_by": m.provider,
                })
            })
            .collect();
        json!({ "object": "list", "data": data })
    }

    /// `POST /v1/chat/completions` for `v`: decides, forwards, inspects.
    pub async fn chat(
        &self,
        v: &VerifiedChain,
        body: &[u8],
        options: CallOptions,
    ) -> Result<Reply, LlmError> {
        let inner = &self.inner;
        let raw_len = body.len();
        let mut body: Value = serde_json::from_slice(body)
            .map_err(|e| LlmError::bad_request(format!("the body is not JSON: {e}")))?;
        let mut call = read_call(&mut body)?;
        call.bytes = raw_len;
        let inv = inner.pipeline.inventory();
        let mut prompt = Map::new();
        prompt.insert("messages".into(), std::mem::take(&mut call.messages));
        // The request's other fields (tool definitions, `user`, metadata…)
        // reach the provider too: they are decided with the messages, inspected
        // for sensitive data and redacted alike, and put back afterwards.
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in std::mem::take(obj) {
                match k.as_str() {
                    "model" | "stream" | "stream_options" => obj.insert(k, v),
                    _ => prompt.insert(k, v),
                };
            }
        }
        let prompt = Value::Object(prompt);
        // What goes out if the call is allowed, before any redaction.
        let outbound = prompt.clone();
        let req = ActionRequest {
            request_id: options.request_id.clone(),
            chain: v.actor_chain(),
            session: SessionId::new(v.flow_session())
                .map_err(|e| LlmError::bad_request(format!("session: {e}")))?,
            action: Action::InvokeModel {
                model: call.model.clone(),
                prompt,
                untrusted: call.untrusted.clone(),
            },
            risk: v.risk,
            findings: Vec::new(),
            approval: options.approval.clone(),
            declassify: options.declassify,
            scope: v.scope.clone(),
        };
        let now = zt4ai_core::unix_now();
        let agent = v.agents.last().map(|a| a.as_str());
        let mut charge = match inner.meter.admit(
            &inv.llm.budgets,
            agent,
            v.user.as_str(),
            budget::estimate_tokens(call.bytes),
            now,
        ) {
            Ok(c) => c,
            Err(e) => return Err(self.over_budget(v, &call.model, &options, &e).await),
        };
        let verdict = inner.pipeline.enforce(&req, POINT).await;
        let result = if verdict.decision == Decision::Allow {
            self.forward(v, req, &call, body, outbound, &verdict, &mut charge)
                .await
        } else {
            Err(refusal(&call.model, &verdict))
        };
        // Whatever did not reach the provider costs no tokens; a call that
        // did has taken its charge over and settled it.
        inner.meter.settle(&mut charge, 0, now);
        result
    }

    /// Sends an allowed call to its provider and answers what came back.
    /// Takes `charge` over once the provider has the call.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one call, read once by `chat`"
    )]
    async fn forward(
        &self,
        v: &VerifiedChain,
        req: ActionRequest,
        call: &Call,
        mut body: Value,
        mut outbound: Value,
        verdict: &Verdict,
        charge: &mut budget::Charge,
    ) -> Result<Reply, LlmError> {
        let inner = &self.inner;
        let inv = inner.pipeline.inventory();
        let Some(model) = inv.models.get(&call.model) else {
            return Err(LlmError::new(
                404,
                "invalid_request_error",
                "model_not_found",
                format!("model `{}` does not exist", call.model),
            ));
        };
        let Some(upstream) = &model.upstream else {
            return Err(LlmError::new(
                503,
                "upstream_error",
                "model_not_served",
                format!(
                    "model `{}` has no `upstream` in the inventory: the gateway does not know where it is served",
                    model.id
                ),
            ));
        };
        let key = match inner.keys.get(&model.id) {
            Some(Err(e)) => {
                return Err(LlmError::new(
                    503,
                    "upstream_error",
                    "provider_key",
                    e.clone(),
                ));
            }
            Some(Ok(k)) => k.clone(),
            None => None,
        };
        // The prompt as decided, redacted as the verdict says, untrusted
        // messages marked as data if the inventory asks.
        if let Err(e) = zt4ai_pipeline::redact(&mut outbound, &verdict.obligations) {
            tracing::error!(model = %model.id, error = %e, "redaction failed; the call is not sent");
            return Err(LlmError::new(
                403,
                "zt4ai_policy",
                "denied",
                format!("sensitive data could not be redacted ({e}); the call is not sent"),
            ));
        }
        if let Some(mode) = inv.llm.spotlight {
            spotlight(&mut outbound, &call.untrusted, mode);
        }
        if let (Some(obj), Value::Object(out)) = (body.as_object_mut(), outbound) {
            // The messages and the other fields, as decided.
            obj.extend(out);
            obj.insert("model".into(), Value::String(upstream.model.clone()));
            if call.stream {
                // Usage lets the budget count what the stream really cost.
                obj.insert("stream_options".into(), json!({ "include_usage": true }));
            }
        }
        let response = self.send(upstream, key.as_deref(), &body).await?;
        let status = response.status();
        let limit = inv.llm.max_response_bytes;
        if !status.is_success() || !call.stream {
            let bytes = read_limited(response, limit, upstream.timeout).await?;
            if !status.is_success() {
                return Err(provider_error(&model.id, status, &bytes));
            }
            let completion = parse_completion(&model.id, &bytes)?;
            // The provider has answered: the call costs what it used, even
            // if what it said is withheld.
            let mut charge = std::mem::take(charge);
            let result = self
                .finish(v, &req, &call.model, completion, call.bytes)
                .await;
            let used = match &result {
                Ok((_, used)) => *used,
                Err(_) => budget::estimate_tokens(call.bytes + bytes.len()),
            };
            inner
                .meter
                .settle(&mut charge, used, zt4ai_core::unix_now());
            zt4ai_telemetry::metrics().llm_tokens(&model.id, used);
            return result.map(|(c, _)| Reply::Json(c));
        }
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if !is_stream {
            return Err(LlmError::provider(
                502,
                "malformed_response",
                format!(
                    "the provider of model `{}` answered a streamed call without an event stream",
                    model.id
                ),
            ));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let pump = Pump {
            gateway: self.clone(),
            chain: v.clone(),
            req,
            model: call.model.clone(),
            include_usage: call.include_usage,
            prompt_bytes: call.bytes,
            charge: std::mem::take(charge),
            tx,
            limit,
        };
        tokio::spawn(pump.run(response));
        let events =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (b, rx)) },
            );
        Ok(Reply::Stream(Box::pin(events)))
    }

    /// The `429` for a used-up budget, recorded in the audit log.
    async fn over_budget(
        &self,
        v: &VerifiedChain,
        model: &str,
        options: &CallOptions,
        e: &Exhausted,
    ) -> LlmError {
        let chain = v.actor_chain();
        let session = v.flow_session();
        let verdict = self
            .inner
            .pipeline
            .record_refusal(
                Refusal {
                    point: POINT,
                    request_id: options.request_id.clone(),
                    chain: &chain,
                    session: &session,
                    action: "invoke_model",
                    resource: model,
                },
                Verdict::deny(reasons::BUDGET, e.to_string()),
            )
            .await;
        tracing::info!(decision = "deny", model, user = %v.user, reason = %e, "LLM call refused: budget used up");
        let mut err = LlmError::new(
            429,
            if e.limit.starts_with("tokens") {
                "tokens"
            } else {
                "requests"
            },
            "rate_limit_exceeded",
            e.to_string(),
        );
        err.retry_after = Some(e.retry_after);
        err.detail = Some(Box::new(json!({
            "verdict": "deny",
            "reasons": verdict.reasons,
            "policies": verdict.policies,
            "limit": e.limit,
            "holder": e.holder,
        })));
        err
    }

    async fn send(
        &self,
        upstream: &Upstream,
        key: Option<&str>,
        body: &Value,
    ) -> Result<reqwest::Response, LlmError> {
        let url = format!("{}/chat/completions", upstream.base_url);
        let mut rb = self
            .inner
            .client
            .post(&url)
            .timeout(upstream.timeout)
            .json(body);
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        rb.send().await.map_err(|e| transport_error(upstream, &e))
    }

    /// The inspected, checked completion and the tokens it cost.
    async fn finish(
        &self,
        v: &VerifiedChain,
        req: &ActionRequest,
        model: &str,
        mut completion: Value,
        prompt_bytes: usize,
    ) -> Result<(Value, u64), LlmError> {
        let mut texts = Vec::new();
        let mut calls = Vec::new();
        if let Some(choices) = completion.get("choices").and_then(Value::as_array) {
            for (ci, c) in choices.iter().enumerate() {
                let choice = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::try_from(ci).unwrap_or(0));
                let msg = c.get("message");
                if let Some(t) = msg.and_then(|m| m.get("content")) {
                    texts.push(content_text(t));
                }
                if let Some(m) = msg.and_then(Value::as_object) {
                    side_texts(m, &mut texts);
                }
                for tc in msg
                    .and_then(|m| m.get("tool_calls"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    calls.push(Proposed {
                        choice,
                        id: str_at(tc, "/id"),
                        name: str_at(tc, "/function/name"),
                        arguments: str_at(tc, "/function/arguments"),
                    });
                }
            }
        }
        self.absorb(v, req, model, &texts).await?;
        let checked = self.check_calls(req, calls).await;
        let mode = self.inner.pipeline.inventory().llm.tool_calls;
        if mode == ToolCallMode::Fail
            && let Some(bad) = checked.iter().find(|c| !c.allowed())
        {
            return Err(tool_call_refused(bad, &checked));
        }
        if mode == ToolCallMode::Strip
            && let Some(choices) = completion.get_mut("choices").and_then(Value::as_array_mut)
        {
            for (ci, c) in choices.iter_mut().enumerate() {
                let choice = c
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(u64::try_from(ci).unwrap_or(0));
                let stripped: Vec<&Checked> = checked
                    .iter()
                    .filter(|k| k.call.choice == choice && !k.allowed())
                    .collect();
                if stripped.is_empty() {
                    continue;
                }
                strip_choice(c, &stripped);
            }
        }
        if !checked.is_empty() {
            completion["zt4ai"] = json!({
                "tool_calls": checked.iter().map(Checked::annotation).collect::<Vec<_>>(),
                "mode": mode.as_str(),
            });
        }
        completion["model"] = Value::String(model.to_owned());
        let used = completion
            .pointer("/usage/total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                let bytes: usize = texts.iter().map(String::len).sum();
                budget::estimate_tokens(prompt_bytes + bytes)
            });
        Ok((completion, used))
    }

    /// What the model answered changes the session as a tool's output
    /// would; data above the chain's clearance is withheld.
    async fn absorb(
        &self,
        v: &VerifiedChain,
        req: &ActionRequest,
        model: &str,
        texts: &[String],
    ) -> Result<(), LlmError> {
        let p = &self.inner.pipeline;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let found = p
            .absorb_output(req, POINT, &refs)
            .await
            .map_err(|v| refusal(model, &v))?;
        let Some(inspector) = p.inspector() else {
            return Ok(());
        };
        let clearance = chain_clearance(p, &req.chain);
        let over = found.iter().find_map(|f| {
            inspector
                .classify(&f.kind)
                .filter(|(label, _)| *label > clearance)
                .map(|(label, _)| (f.kind.to_string(), label))
        });
        match over {
            None => Ok(()),
            Some((kind, label)) => Err(self.withheld(v, req, model, &kind, label, clearance).await),
        }
    }

    /// The refusal of a completion that carries `kind` (`label`) data above
    /// the chain's `clearance`, recorded in the audit log.
    async fn withheld(
        &self,
        v: &VerifiedChain,
        req: &ActionRequest,
        model: &str,
        kind: &str,
        label: Label,
        clearance: Label,
    ) -> LlmError {
        let message = format!(
            "the completion of `{model}` carries {label} data ({kind}), above the clearance of {} ({clearance}); it is withheld",
            req.chain.describe()
        );
        let session = req.session.to_string();
        let verdict = self
            .inner
            .pipeline
            .record_refusal(
                Refusal {
                    point: POINT,
                    request_id: req.request_id.clone(),
                    chain: &req.chain,
                    session: &session,
                    action: "model_output",
                    resource: model,
                },
                Verdict::deny(reasons::OUTPUT_CLEARANCE, message),
            )
            .await;
        tracing::info!(decision = "deny", model, user = %v.user, reason = %verdict.reasons.first().map_or("", |r| r.message.as_str()), "completion withheld");
        refusal(model, &verdict)
    }

    /// Decides each proposed tool call as if the agent made it now, without
    /// effect; the flagged ones are recorded in the audit log.
    async fn check_calls(&self, req: &ActionRequest, calls: Vec<Proposed>) -> Vec<Checked> {
        let p = &self.inner.pipeline;
        let inv = p.inventory();
        let mut out = Vec::with_capacity(calls.len());
        for call in calls {
            let tool = tool_id(inv, &call.name);
            let verdict = match (&tool, serde_json::from_str::<Value>(&call.arguments)) {
                (None, _) => Verdict::deny(
                    reasons::UNKNOWN_TOOL,
                    format!(
                        "the model proposed `{}`, which names no tool in the inventory: zt4ai cannot check it",
                        call.name
                    ),
                ),
                (Some(_), Err(e)) => Verdict::deny(
                    reasons::TOOL_ARGUMENTS,
                    format!(
                        "the arguments of the proposed `{}` are not JSON: {e}",
                        call.name
                    ),
                ),
                (Some(_), Ok(a)) if !(a.is_object() || a.is_null()) => Verdict::deny(
                    reasons::TOOL_ARGUMENTS,
                    format!(
                        "the arguments of the proposed `{}` are not a JSON object",
                        call.name
                    ),
                ),
                (Some(t), Ok(arguments)) => p.preview(&ActionRequest {
                    request_id: req.request_id.clone(),
                    chain: req.chain.clone(),
                    session: req.session.clone(),
                    action: Action::CallTool {
                        tool: t.clone(),
                        arguments,
                    },
                    risk: req.risk,
                    findings: Vec::new(),
                    approval: None,
                    declassify: false,
                    scope: req.scope.clone(),
                }),
            };
            if verdict.decision != Decision::Allow {
                tracing::info!(tool = %call.name, decision = verdict.decision.as_str(),
                    policies = ?verdict.policies, "proposed tool call flagged");
                let session = req.session.to_string();
                let resource = tool.clone().unwrap_or_else(|| call.name.clone());
                // Recorded as the refusal it would be: a proposed call is
                // not an action, but what a model tried is evidence.
                let _ = p
                    .record_refusal(
                        Refusal {
                            point: POINT,
                            request_id: req.request_id.clone(),
                            chain: &req.chain,
                            session: &session,
                            action: "proposed_tool_call",
                            resource: &resource,
                        },
                        verdict.clone(),
                    )
                    .await;
            }
            out.push(Checked {
                call,
                tool,
                verdict,
            });
        }
        out
    }
}

/// The call as read from the request body.
struct Call {
    model: String,
    messages: Value,
    untrusted: Vec<String>,
    stream: bool,
    include_usage: bool,
    /// The request body's size, for budget estimates (set by the caller).
    bytes: usize,
}

/// Reads and checks the request body; takes the messages out of it.
fn read_call(body: &mut Value) -> Result<Call, LlmError> {
    let Some(obj) = body.as_object_mut() else {
        return Err(LlmError::bad_request("the body must be a JSON object"));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(LlmError::bad_request("`model` must be a non-empty string")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(LlmError::bad_request("`stream` must be a boolean")),
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(Value::Array(mut messages)) = obj.remove("messages") else {
        return Err(LlmError::bad_request("`messages` must be an array"));
    };
    if messages.is_empty() {
        return Err(LlmError::bad_request("`messages` must not be empty"));
    }
    let mut untrusted = Vec::new();
    for (i, m) in messages.iter_mut().enumerate() {
        let Some(m) = m.as_object_mut() else {
            return Err(LlmError::bad_request(format!(
                "`messages[{i}]` must be an object"
            )));
        };
        let role = match m.get("role") {
            Some(Value::String(r)) => r.clone(),
            _ => {
                return Err(LlmError::bad_request(format!(
                    "`messages[{i}].role` must be a string"
                )));
            }
        };
        let marked = match m.remove(UNTRUSTED_FIELD) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(LlmError::bad_request(format!(
                    "`messages[{i}].{UNTRUSTED_FIELD}` must be a boolean"
                )));
            }
        };
        if marked || role == "tool" || role == "function" {
            untrusted.push(format!("/messages/{i}"));
        }
    }
    Ok(Call {
        model,
        messages: Value::Array(messages),
        untrusted,
        stream,
        include_usage,
        bytes: 0,
    })
}

/// The most sensitive data every link of the chain may read.
fn chain_clearance(p: &Pipeline, chain: &ActorChain) -> Label {
    let inv = p.inventory();
    let user = inv
        .users
        .get(&chain.user)
        .map_or(Label::Public, |u| u.clearance);
    chain
        .agents
        .iter()
        .map(|a| inv.agents.get(a).map_or(Label::Public, |a| a.clearance))
        .fold(user, Label::min)
}

/// The inventory tool a proposed function name means: the tool id itself
/// (`mail.send_email`), the id with its `.` written as `_` or `__` (function
/// names may not hold dots), or a tool's bare name when only one server has
/// it.
fn tool_id(inv: &zt4ai_core::Inventory, name: &str) -> Option<String> {
    if inv.tools.contains_key(name) {
        return Some(name.to_owned());
    }
    let mut bare = None;
    let mut bare_count = 0;
    for (id, t) in &inv.tools {
        if let Some((server, tool)) = id.split_once('.') {
            if name == format!("{server}_{tool}") || name == format!("{server}__{tool}") {
                return Some(id.clone());
            }
            if tool == name {
                bare = Some(t.id.clone());
                bare_count += 1;
            }
        }
    }
    (bare_count == 1).then_some(bare).flatten()
}

/// The text of a message's `content`: a string, or the `text` of its parts.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// What a completion's message (or a streamed delta) says besides its
/// `content`, which reaches the agent all the same: every string of its other
/// fields (a provider's `reasoning_content`, a `refusal`, an audio
/// `transcript`), but not the role, the proposed calls (checked by the
/// preview) or audio data.
fn side_texts(m: &Map<String, Value>, out: &mut Vec<String>) {
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }
    for (k, v) in m {
        match k.as_str() {
            "content" | "role" | "tool_calls" | "function_call" => {}
            "audio" => {
                if let Some(t) = v.get("transcript").and_then(Value::as_str) {
                    out.push(t.to_owned());
                }
            }
            _ => strings(v, out),
        }
    }
}

fn str_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Marks the untrusted messages' text as data, not instructions.
fn spotlight(prompt: &mut Value, untrusted: &[String], mode: zt4ai_core::inventory::SpotlightMode) {
    for pointer in untrusted {
        let Some(m) = prompt.pointer_mut(pointer) else {
            continue;
        };
        let source = m
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| m.get("role").and_then(Value::as_str))
            .unwrap_or("untrusted")
            .to_owned();
        match m.get_mut("content") {
            Some(Value::String(s)) => {
                *s = zt4ai_pipeline::inspect::spotlight::spotlight(&source, s, mode);
            }
            Some(Value::Array(parts)) => {
                for part in parts {
                    if let Some(Value::String(s)) = part.get_mut("text") {
                        *s = zt4ai_pipeline::inspect::spotlight::spotlight(&source, s, mode);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Removes `stripped` tool calls from a completion's choice; a choice left
/// without calls finishes with `stop` and says why.
fn strip_choice(choice: &mut Value, stripped: &[&Checked]) {
    let ids: Vec<&str> = stripped.iter().map(|k| k.call.id.as_str()).collect();
    let Some(msg) = choice.get_mut("message").and_then(Value::as_object_mut) else {
        return;
    };
    let left = match msg.get_mut("tool_calls") {
        Some(Value::Array(calls)) => {
            calls.retain(|c| !ids.contains(&c.get("id").and_then(Value::as_str).unwrap_or("")));
            calls.len()
        }
        _ => 0,
    };
    if left > 0 {
        return;
    }
    msg.remove("tool_calls");
    let note = stripped_note(stripped);
    let empty = match msg.get("content") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if empty {
        msg.insert("content".into(), Value::String(note));
    }
    choice["finish_reason"] = Value::String("stop".into());
}

/// What an agent reads in place of tool calls zt4ai removed.
fn stripped_note(stripped: &[&Checked]) -> String {
    let what: Vec<String> = stripped
        .iter()
        .map(|k| {
            format!(
                "`{}` ({}: {})",
                k.call.name,
                k.verdict.decision.as_str(),
                k.verdict.reasons.first().map_or("", |r| r.message.as_str())
            )
        })
        .collect();
    format!(
        "[zt4ai removed the proposed tool call(s) {}]",
        what.join("; ")
    )
}

/// The error for a proposed tool call under `llm.tool_calls: fail`.
fn tool_call_refused(bad: &Checked, all: &[Checked]) -> LlmError {
    let mut e = LlmError::new(
        403,
        "zt4ai_policy",
        "tool_call_denied",
        format!(
            "the model proposed `{}`, which zt4ai policy does not allow ({}: {}); the completion is withheld",
            bad.call.name,
            bad.verdict.decision.as_str(),
            bad.verdict
                .reasons
                .first()
                .map_or("", |r| r.message.as_str())
        ),
    );
    e.detail = Some(Box::new(json!({
        "verdict": "deny",
        "tool_calls": all.iter().map(Checked::annotation).collect::<Vec<_>>(),
    })));
    e
}

/// The error for a model call the verdict does not allow.
fn refusal(model: &str, verdict: &Verdict) -> LlmError {
    use zt4ai_pipeline::reasons as r;
    let first = verdict
        .reasons
        .first()
        .map_or(String::new(), |r| format!(": {}", r.message));
    let policy = verdict.policies.first().map_or("", String::as_str);
    let mut e = if verdict.decision == Decision::RequireApproval {
        LlmError::new(
            403,
            "zt4ai_policy",
            "approval_required",
            format!(
                "`{model}` needs a human approval ({}){first}; once granted, retry with the header `x-zt4ai-approval`",
                verdict.approval.as_ref().map_or("-", |a| a.as_str())
            ),
        )
    } else if policy == r::UNKNOWN_RESOURCE {
        LlmError::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("`{model}`{first}"),
        )
    } else if policy == r::STORE_UNAVAILABLE || policy == r::AUDIT_UNAVAILABLE {
        LlmError::new(
            503,
            "server_error",
            "unavailable",
            format!("`{model}` refused{first}"),
        )
    } else {
        LlmError::new(
            403,
            "zt4ai_policy",
            "denied",
            format!("`{model}` denied by zt4ai policy{first}"),
        )
    };
    e.detail = Some(Box::new(verdict.explanation()));
    e
}

/// A provider that could not be reached, or did not answer in time.
fn transport_error(upstream: &Upstream, e: &reqwest::Error) -> LlmError {
    if e.is_timeout() {
        LlmError::provider(
            504,
            "timeout",
            format!(
                "the model provider at {} did not answer within {} ms",
                upstream.base_url,
                upstream.timeout.as_millis()
            ),
        )
    } else {
        tracing::warn!(provider = %upstream.base_url, error = %e, "model provider unreachable");
        LlmError::provider(
            502,
            "provider_unreachable",
            format!(
                "the model provider at {} could not be reached",
                upstream.base_url
            ),
        )
    }
}

/// Reads a whole provider answer, up to `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, LlmError> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > limit {
                    return Err(LlmError::provider(
                        502,
                        "response_too_large",
                        format!(
                            "the model provider's answer is larger than {limit} bytes (llm.max_response_bytes)"
                        ),
                    ));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) if e.is_timeout() => {
                return Err(LlmError::provider(
                    504,
                    "timeout",
                    format!(
                        "the model provider did not finish its answer within {} ms",
                        timeout.as_millis()
                    ),
                ));
            }
            Err(e) => {
                return Err(LlmError::provider(
                    502,
                    "provider_broken",
                    format!("the model provider's answer broke off: {e}"),
                ));
            }
        }
    }
}

/// The error for a provider's non-2xx answer: what the caller can fix
/// (400, 404, 422) keeps its status; the provider's own rate limit is a
/// `429`; everything else (its key refused, its failure) is the gateway's
/// `502`.
fn provider_error(model: &str, status: reqwest::StatusCode, bytes: &[u8]) -> LlmError {
    let said = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "no error message".to_owned());
    let said: String = said.chars().take(500).collect();
    let code = status.as_u16();
    let message = format!("the provider of model `{model}` answered {code}: {said}");
    match code {
        400 | 404 | 422 => {
            LlmError::new(code, "invalid_request_error", "provider_rejected", message)
        }
        429 => LlmError::new(429, "requests", "provider_rate_limited", message),
        _ => LlmError::provider(502, "provider_error", message),
    }
}

/// A provider's non-streamed answer: a JSON object with a `choices` array.
fn parse_completion(model: &str, bytes: &[u8]) -> Result<Value, LlmError> {
    let malformed = |why: String| {
        LlmError::provider(
            502,
            "malformed_response",
            format!(
                "the provider of model `{model}` answered something that is not a chat completion: {why}"
            ),
        )
    };
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON ({e})")))?;
    match v.get("choices") {
        Some(Value::Array(_)) => Ok(v),
        _ => Err(malformed("no `choices` array".into())),
    }
}

/// The streaming side of one call: reads the provider's events, passes
/// content on as it comes (inspected with the text before it), holds tool
/// calls back until the model has finished proposing them, and ends with
/// `[DONE]` or an error event.
struct Pump {
    gateway: LlmGateway,
    chain: VerifiedChain,
    req: ActionRequest,
    model: String,
    include_usage: bool,
    prompt_bytes: usize,
    charge: budget::Charge,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    limit: usize,
}

impl Pump {
    async fn run(mut self, response: reqwest::Response) {
        let mut texts = BTreeMap::new();
        let outcome = self.relay(response, &mut texts).await;
        if !texts.is_empty() {
            // Cut, failed or abandoned before the end: what was delivered
            // still changes the session, as a tool's output would.
            let delivered: Vec<&str> = texts.values().map(String::as_str).collect();
            if let Err(v) = self
                .gateway
                .inner
                .pipeline
                .absorb_output(&self.req, POINT, &delivered)
                .await
            {
                tracing::error!(model = %self.model, reason = ?v.reasons.first().map(|r| &r.message), "the delivered part of a stream could not be absorbed");
            }
        }
        let inner = &self.gateway.inner;
        let used = match &outcome {
            Ok(u) => *u,
            Err((_, u)) => *u,
        };
        inner
            .meter
            .settle(&mut self.charge, used, zt4ai_core::unix_now());
        zt4ai_telemetry::metrics().llm_tokens(&self.model, used);
        if let Err((e, _)) = outcome {
            tracing::info!(model = %self.model, code = e.code, reason = %e.message, "LLM stream ended by zt4ai");
            let _ = self.tx.send(e.event()).await;
        }
    }

    async fn send(&self, chunk: &Value) -> bool {
        self.tx
            .send(Bytes::from(format!("data: {chunk}\n\n")))
            .await
            .is_ok()
    }

    /// Relays the stream; the tokens it cost, or the error that ends it
    /// (with the tokens so far).
    /// `texts` receives the content delivered, per choice; it is emptied
    /// once the whole answer has been absorbed.
    async fn relay(
        &mut self,
        response: reqwest::Response,
        texts: &mut BTreeMap<u64, String>,
    ) -> Result<u64, (LlmError, u64)> {
        let p = Arc::clone(&self.gateway.inner.pipeline);
        let inspector = p.inspector().cloned();
        let clearance = chain_clearance(&p, &self.req.chain);
        let mut parser = sse::Parser::default();
        let mut body = response.bytes_stream();
        let mut calls: BTreeMap<(u64, u64), Proposed> = BTreeMap::new();
        let mut held_finish: Vec<Value> = Vec::new();
        let mut usage: Option<Value> = None;
        let mut received = 0usize;
        let estimate = |texts: &BTreeMap<u64, String>, calls: &BTreeMap<(u64, u64), Proposed>| {
            let bytes: usize = texts.values().map(String::len).sum::<usize>()
                + calls.values().map(|c| c.arguments.len()).sum::<usize>();
            budget::estimate_tokens(self.prompt_bytes + bytes)
        };
        let mut done = false;
        while !done {
            let bytes = match body.next().await {
                None => break,
                Some(Ok(b)) => b,
                Some(Err(e)) => {
                    let err = if e.is_timeout() {
                        LlmError::provider(
                            504,
                            "timeout",
                            "the model provider's stream did not finish in time".into(),
                        )
                    } else {
                        LlmError::provider(
                            502,
                            "provider_broken",
                            format!("the model provider's stream broke off: {e}"),
                        )
                    };
                    return Err((err, estimate(texts, &calls)));
                }
            };
            received += bytes.len();
            if received > self.limit || parser.pending() > self.limit {
                return Err((
                    LlmError::provider(
                        502,
                        "response_too_large",
                        format!(
                            "the model provider's stream is larger than {} bytes (llm.max_response_bytes)",
                            self.limit
                        ),
                    ),
                    estimate(texts, &calls),
                ));
            }
            for data in parser.push(&bytes) {
                if data.trim() == "[DONE]" {
                    done = true;
                    break;
                }
                let mut chunk: Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        return Err((
                            LlmError::provider(
                                502,
                                "malformed_response",
                                format!(
                                    "the model provider streamed an event that is not JSON ({e})"
                                ),
                            ),
                            estimate(texts, &calls),
                        ));
                    }
                };
                if let Some(err) = chunk.get("error") {
                    let said = err
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message");
                    return Err((
                        LlmError::provider(
                            502,
                            "provider_error",
                            format!("the model provider ended the stream with an error: {said}"),
                        ),
                        estimate(texts, &calls),
                    ));
                }
                if chunk.get("usage").is_some_and(|u| !u.is_null())
                    && chunk
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                {
                    usage = Some(chunk);
                    continue;
                }
                let mut keep = Vec::new();
                let choices = match chunk.get_mut("choices").and_then(Value::as_array_mut) {
                    Some(c) => std::mem::take(c),
                    None => Vec::new(),
                };
                for mut c in choices {
                    let ci = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                    // The content, and what else the model says beside it
                    // (reasoning, a refusal): all of it reaches the agent.
                    let mut pieces = Vec::new();
                    if let Some(piece) = c.pointer("/delta/content").and_then(Value::as_str) {
                        pieces.push(piece.to_owned());
                    }
                    if let Some(delta) = c.get("delta").and_then(Value::as_object) {
                        side_texts(delta, &mut pieces);
                    }
                    for piece in &pieces {
                        let text = texts.entry(ci).or_default();
                        let from = floor_boundary(text, text.len().saturating_sub(STREAM_OVERLAP));
                        text.push_str(piece);
                        if let Some(ins) = &inspector {
                            let window = &text[from..];
                            let over = ins
                                .inspect(window, Detectors::Sensitive)
                                .into_iter()
                                .find_map(|f| {
                                    ins.classify(&f.kind)
                                        .filter(|(l, _)| *l > clearance)
                                        .map(|(l, _)| (f.kind.to_string(), l))
                                });
                            if let Some((kind, label)) = over {
                                let e = self
                                    .gateway
                                    .withheld(
                                        &self.chain,
                                        &self.req,
                                        &self.model,
                                        &kind,
                                        label,
                                        clearance,
                                    )
                                    .await;
                                return Err((e, estimate(texts, &calls)));
                            }
                        }
                    }
                    if let Some(Value::Array(deltas)) = c
                        .get_mut("delta")
                        .and_then(Value::as_object_mut)
                        .and_then(|d| d.remove("tool_calls"))
                    {
                        for d in deltas {
                            let index = d.get("index").and_then(Value::as_u64).unwrap_or(0);
                            let call = calls.entry((ci, index)).or_insert_with(|| Proposed {
                                choice: ci,
                                ..Proposed::default()
                            });
                            if let Some(id) = d.get("id").and_then(Value::as_str) {
                                call.id = id.to_owned();
                            }
                            if let Some(n) = d.pointer("/function/name").and_then(Value::as_str) {
                                call.name.push_str(n);
                            }
                            if let Some(a) =
                                d.pointer("/function/arguments").and_then(Value::as_str)
                            {
                                call.arguments.push_str(a);
                            }
                        }
                    }
                    let finishing = c.get("finish_reason").is_some_and(|f| !f.is_null());
                    if finishing && calls.keys().any(|(k, _)| *k == ci) {
                        held_finish.push(c);
                        continue;
                    }
                    let empty_delta = c
                        .get("delta")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty);
                    if !empty_delta || finishing {
                        keep.push(c);
                    }
                }
                if keep.is_empty() {
                    continue;
                }
                chunk["choices"] = Value::Array(keep);
                chunk["model"] = Value::String(self.model.clone());
                if !self.send(&chunk).await {
                    // The agent went away: stop reading the provider.
                    return Ok(estimate(texts, &calls));
                }
            }
        }
        if !done && held_finish.is_empty() && texts.is_empty() && calls.is_empty() {
            return Err((
                LlmError::provider(
                    502,
                    "provider_broken",
                    "the model provider's stream ended before any answer".into(),
                ),
                estimate(texts, &calls),
            ));
        }
        // The whole answer changes the session (durably, audited) before the
        // tool calls and the end of the stream go out.
        let all: Vec<String> = texts.values().cloned().collect();
        let absorbed = self
            .gateway
            .absorb(&self.chain, &self.req, &self.model, &all)
            .await;
        let used_so_far = estimate(texts, &calls);
        let with_text: Vec<u64> = texts.keys().copied().collect();
        texts.clear();
        if let Err(e) = absorbed {
            return Err((e, used_so_far));
        }
        let used = usage
            .as_ref()
            .and_then(|u| u.pointer("/usage/total_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(used_so_far);
        let checked = self
            .gateway
            .check_calls(&self.req, calls.into_values().collect())
            .await;
        let mode = p.inventory().llm.tool_calls;
        if mode == ToolCallMode::Fail
            && let Some(bad) = checked.iter().find(|c| !c.allowed())
        {
            return Err((tool_call_refused(bad, &checked), used));
        }
        let mut choices: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        let mut stripped: BTreeMap<u64, Vec<&Checked>> = BTreeMap::new();
        for k in &checked {
            if mode == ToolCallMode::Strip && !k.allowed() {
                stripped.entry(k.call.choice).or_default().push(k);
                continue;
            }
            let list = choices.entry(k.call.choice).or_default();
            list.push(json!({
                "index": list.len(),
                "id": k.call.id,
                "type": "function",
                "function": { "name": k.call.name, "arguments": k.call.arguments },
            }));
        }
        if !checked.is_empty() {
            let mut out = Vec::new();
            for (ci, list) in &choices {
                out.push(
                    json!({ "index": ci, "delta": { "tool_calls": list }, "finish_reason": null }),
                );
            }
            for (ci, list) in &stripped {
                if !choices.contains_key(ci) && !with_text.contains(ci) {
                    out.push(json!({ "index": ci, "delta": { "content": stripped_note(list) }, "finish_reason": null }));
                }
            }
            let chunk = json!({
                "object": "chat.completion.chunk",
                "model": self.model,
                "choices": out,
                "zt4ai": {
                    "tool_calls": checked.iter().map(Checked::annotation).collect::<Vec<_>>(),
                    "mode": mode.as_str(),
                },
            });
            if !self.send(&chunk).await {
                return Ok(used);
            }
        }
        for mut f in held_finish {
            let ci = f.get("index").and_then(Value::as_u64).unwrap_or(0);
            if !choices.contains_key(&ci) {
                f["finish_reason"] = Value::String("stop".into());
            }
            let chunk = json!({
                "object": "chat.completion.chunk",
                "model": self.model,
                "choices": [f],
            });
            if !self.send(&chunk).await {
                return Ok(used);
            }
        }
        if let Some(mut u) = usage
            && self.include_usage
        {
            u["model"] = Value::String(self.model.clone());
            if !self.send(&u).await {
                return Ok(used);
            }
        }
        let _ = self.tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
        Ok(used)
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn untrusted_messages_are_tool_results_and_marked_ones() {
        let mut body = json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "tool", "tool_call_id": "c1", "content": "page"},
                {"role": "user", "content": "doc", UNTRUSTED_FIELD: true},
                {"role": "user", "content": "hi", UNTRUSTED_FIELD: false},
            ],
        });
        let call = read_call(&mut body).unwrap();
        assert_eq!(call.untrusted, ["/messages/1", "/messages/2"]);
        // The marker never reaches the provider.
        assert!(!call.messages.to_string().contains(UNTRUSTED_FIELD));
        assert!(body.get("messages").is_none());
    }

    #[test]
    fn malformed_calls_say_what_is_wrong() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"messages": []}), "`model`"),
            (json!({"model": "m"}), "`messages` must be an array"),
            (json!({"model": "m", "messages": []}), "must not be empty"),
            (
                json!({"model": "m", "messages": [1]}),
                "`messages[0]` must be an object",
            ),
            (
                json!({"model": "m", "messages": [{"content": "x"}]}),
                "`messages[0].role`",
            ),
            (
                json!({"model": "m", "stream": "yes", "messages": [{"role": "user"}]}),
                "`stream`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", UNTRUSTED_FIELD: "yes"}]}),
                UNTRUSTED_FIELD,
            ),
        ];
        for (mut body, want) in cases {
            let e = read_call(&mut body).err().unwrap();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(want), "{} lacks {want}", e.message);
        }
    }

    #[test]
    fn function_names_map_to_inventory_tools() {
        let inv = zt4ai_core::Inventory::from_yaml_str(
            include_str!("../../../examples/acme/inventory.yaml"),
            "acme",
        )
        .unwrap();
        for name in [
            "mail.send_email",
            "mail_send_email",
            "mail__send_email",
            "send_email",
        ] {
            assert_eq!(
                tool_id(&inv, name).as_deref(),
                Some("mail.send_email"),
                "{name}"
            );
        }
        assert_eq!(tool_id(&inv, "launch_missiles"), None);
    }

    #[test]
    fn provider_errors_keep_what_the_caller_can_fix() {
        let body = br#"{"error": {"message": "bad temperature"}}"#;
        let e = provider_error("m", reqwest::StatusCode::BAD_REQUEST, body);
        assert_eq!((e.status, e.code), (400, "provider_rejected"));
        assert!(e.message.contains("bad temperature"));
        let e = provider_error("m", reqwest::StatusCode::UNAUTHORIZED, b"");
        assert_eq!((e.status, e.code), (502, "provider_error"));
        let e = provider_error("m", reqwest::StatusCode::TOO_MANY_REQUESTS, b"");
        assert_eq!(e.status, 429);
        assert!(parse_completion("m", b"{").is_err());
        assert!(parse_completion("m", b"{\"id\": 1}").is_err());
        assert!(parse_completion("m", b"{\"choices\": []}").is_ok());
    }
}
