//! The OpenID AuthZEN Authorization API 1.0, mapped onto the pipeline.
//!
//! ## How zt4ai reads an AuthZEN request
//!
//! * `subject` — `{"type": "agent", "id": "report-agent", "properties": {"user":
//!   "alice", "via": ["parent-agent"]}}`: the agent acting, the user it acts for,
//!   and any parent agents (outermost first) that delegated to it. A subject of
//!   type `user` is a user acting directly.
//! * `action.name` — `call_tool`, `read`, `write`, `send` or `invoke_model`.
//! * `resource` — `{"type": "tool", "id": "mail.send_email", "properties":
//!   {"arguments": {…}}}`, or `dataset`, `destination` (the id is the mail address,
//!   URL or host), `model`.
//! * `context` — `session` (required: the task or conversation id), and optional
//!   `risk` (0–100), `findings` (`[{"kind": "prompt_injection"}]`), `approval`
//!   (the id of a granted approval, to retry a `require_approval` request) and
//!   `declassify` (`true`: if the session's label is all that stands in the
//!   way, ask a human to lower it rather than be denied; anything but a boolean
//!   is `400`).
//!
//! The response is `{"decision": bool, "context": {...}}` where the context holds
//! zt4ai's verdict (`allow`, `deny`, `require_approval`), reasons, the determining
//! policy ids, obligations, the approval id when one is needed, the session's
//! label after the request, and the risk behind the decision (`risk`: the score,
//! the session's and the agent's scores, and the signals that make it up) when
//! it was scored. `decision` is `true` only for `allow`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use zt4ai_core::{
    Action, ActionRequest, ActorChain, AgentId, ApprovalId, Finding, SessionId, UserId, Verdict,
};
use zt4ai_identity::VerifiedChain;
use zt4ai_pipeline::reasons;

use crate::{ApiError, AppState};

/// An AuthZEN subject.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Subject {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// An AuthZEN action.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ActionSpec {
    name: String,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as AuthZEN allows; zt4ai reads action data from the resource"
    )]
    properties: Map<String, Value>,
}

/// An AuthZEN resource.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Resource {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

/// `POST /access/v1/evaluation`.
#[derive(Debug, Deserialize)]
pub(crate) struct EvaluationRequest {
    subject: Subject,
    action: ActionSpec,
    resource: Resource,
    #[serde(default)]
    context: Map<String, Value>,
}

/// One item of an evaluations request; missing parts come from the top level.
#[derive(Debug, Deserialize)]
pub(crate) struct EvaluationItem {
    subject: Option<Subject>,
    action: Option<ActionSpec>,
    resource: Option<Resource>,
    context: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(Debug, Default, Deserialize)]
struct Options {
    #[serde(default)]
    evaluations_semantic: Semantic,
}

/// `POST /access/v1/evaluations`.
#[derive(Debug, Deserialize)]
pub(crate) struct EvaluationsRequest {
    subject: Option<Subject>,
    action: Option<ActionSpec>,
    resource: Option<Resource>,
    context: Option<Map<String, Value>>,
    #[serde(default)]
    evaluations: Option<Vec<EvaluationItem>>,
    #[serde(default)]
    options: Options,
}

async fn read_json<T: DeserializeOwned>(state: &AppState, body: Body) -> Result<T, ApiError> {
    let limit = state.config.max_body_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        if path == "." || syntax {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid field `{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    Ok(value)
}

fn with_request_id(headers: &HeaderMap, mut response: Response) -> Response {
    static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    if let Some(v) = headers.get(&X_REQUEST_ID)
        && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
    {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    response
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(128).collect())
}

/// The caller's verified chain (when tokens are required) and the parsed body:
/// credentials first, so an unauthenticated caller learns nothing about the body.
async fn admit<T: DeserializeOwned>(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<VerifiedChain>, T), Response> {
    let verified = authenticate(state, path, headers).await?;
    let req = read_json(state, body)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((verified, req))
}

pub(crate) async fn evaluation(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (verified, req): (_, EvaluationRequest) =
        match admit(&state, "/access/v1/evaluation", &headers, body).await {
            Ok(x) => x,
            Err(r) => return with_request_id(&headers, r),
        };
    if let Err(e) = check_context(Some(&req.context), "context") {
        return with_request_id(&headers, e.into_response());
    }
    let span = tracing::debug_span!(target: zt4ai_telemetry::TRACE_TARGET, "authzen evaluation",
        otel.name = "POST /access/v1/evaluation",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/access/v1/evaluation",
        zt4ai.request_id = request_id(&headers).as_deref(),
    );
    let out = evaluate(
        &state,
        verified.as_ref(),
        &req.subject,
        &req.action,
        &req.resource,
        &req.context,
        request_id(&headers),
    );
    zt4ai_telemetry::continue_trace(
        &span,
        headers.get("traceparent").and_then(|v| v.to_str().ok()),
        headers.get("tracestate").and_then(|v| v.to_str().ok()),
    );
    let out = tracing::Instrument::instrument(out, span).await;
    with_request_id(&headers, Json(out).into_response())
}

pub(crate) async fn evaluations(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (verified, req): (_, EvaluationsRequest) =
        match admit(&state, "/access/v1/evaluations", &headers, body).await {
            Ok(x) => x,
            Err(r) => return with_request_id(&headers, r),
        };
    let rid = request_id(&headers);
    let items = req.evaluations.unwrap_or_default();
    let checked = check_context(req.context.as_ref(), "context").and_then(|()| {
        items.iter().enumerate().try_for_each(|(i, item)| {
            check_context(item.context.as_ref(), &format!("evaluations[{i}].context"))
        })
    });
    if let Err(e) = checked {
        return with_request_id(&headers, e.into_response());
    }
    if items.is_empty() {
        // AuthZEN: without items, the request behaves as a single evaluation.
        let (Some(s), Some(a), Some(r)) = (&req.subject, &req.action, &req.resource) else {
            let e = ApiError::BadRequest(
                "`evaluations` is empty, so `subject`, `action` and `resource` are required at the top level".into(),
            );
            return with_request_id(&headers, e.into_response());
        };
        let ctx = req.context.clone().unwrap_or_default();
        return with_request_id(
            &headers,
            Json(evaluate(&state, verified.as_ref(), s, a, r, &ctx, rid).await).into_response(),
        );
    }
    if items.len() > state.config.max_evaluations {
        let e = ApiError::BadRequest(format!(
            "`evaluations` has {} items; at most {} are accepted per request",
            items.len(),
            state.config.max_evaluations
        ));
        return with_request_id(&headers, e.into_response());
    }
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let subject = item.subject.as_ref().or(req.subject.as_ref());
        let action = item.action.as_ref().or(req.action.as_ref());
        let resource = item.resource.as_ref().or(req.resource.as_ref());
        let context = item.context.as_ref().or(req.context.as_ref());
        let empty = Map::new();
        let out = match (subject, action, resource) {
            (Some(s), Some(a), Some(r)) => {
                let item_rid = rid.as_ref().map(|r| format!("{r}#{i}"));
                evaluate(
                    &state,
                    verified.as_ref(),
                    s,
                    a,
                    r,
                    context.unwrap_or(&empty),
                    item_rid,
                )
                .await
            }
            _ => verdict_json(&Verdict::deny(
                reasons::INVALID_REQUEST,
                format!(
                    "evaluation {i} has no `subject`, `action` or `resource`, and the request gives no default"
                ),
            )),
        };
        let decision = out
            .get("decision")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        results.push(out);
        let stop = match req.options.evaluations_semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !decision,
            Semantic::PermitOnFirstPermit => decision,
        };
        if stop {
            break;
        }
    }
    with_request_id(
        &headers,
        Json(json!({ "evaluations": results })).into_response(),
    )
}

pub(crate) async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let base = state.config.base_url.trim_end_matches('/');
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
}

/// The context fields whose wrong type is the caller's mistake, answered `400`
/// before anything is decided (other context errors are a deny with a reason,
/// as they always were): today `declassify`, which must be a boolean.
fn check_context(context: Option<&Map<String, Value>>, path: &str) -> Result<(), ApiError> {
    match context.and_then(|c| c.get("declassify")) {
        None | Some(Value::Null | Value::Bool(_)) => Ok(()),
        Some(_) => Err(ApiError::BadRequest(format!(
            "invalid field `{path}.declassify`: expected `true` or `false`"
        ))),
    }
}

/// Verifies the bearer token when the gateway requires one; a refusal is the
/// `401` to answer.
async fn authenticate(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<VerifiedChain>, Response> {
    let Some(identity) = &state.identity else {
        return Ok(None);
    };
    let post = axum::http::Method::POST;
    match crate::auth::verify_request(state, identity, "authzen", &post, path, headers).await {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            tracing::info!(request_id = request_id(headers).as_deref().unwrap_or("-"),
                decision = "deny", error = e.code, reason = %e.description, "request refused: bad credentials");
            Err(crate::auth::auth_error(
                &e,
                crate::auth::Challenge::Bearer(None),
            ))
        }
    }
}

async fn evaluate(
    state: &AppState,
    verified: Option<&VerifiedChain>,
    subject: &Subject,
    action: &ActionSpec,
    resource: &Resource,
    context: &Map<String, Value>,
    request_id: Option<String>,
) -> Value {
    let req = match verified {
        Some(v) => to_verified_request(v, subject, action, resource, context, request_id.clone()),
        None => to_action_request(subject, action, resource, context, request_id.clone())
            .map_err(|m| (reasons::INVALID_REQUEST, m)),
    };
    match req {
        Ok(req) => verdict_json(&state.pipeline.enforce(&req, "authzen").await),
        Err((id, message)) => {
            tracing::info!(decision = "deny", policy = id, reason = %message, "decision");
            let verdict = Verdict::deny(id, message);
            let verdict = match verified {
                // Who tried is known: keep the refusal in the audit log.
                Some(v) => {
                    let chain = v.actor_chain();
                    let session = context.get("session").and_then(Value::as_str).unwrap_or("");
                    let refusal = zt4ai_pipeline::Refusal {
                        point: "authzen",
                        request_id,
                        chain: &chain,
                        session,
                        action: &action.name,
                        resource: &resource.id,
                    };
                    state.pipeline.record_refusal(refusal, verdict).await
                }
                None => verdict,
            };
            verdict_json(&verdict)
        }
    }
}

/// The request with the actor chain, scope and account risk its token proves.
/// A subject stated in the body must be the one the token names.
fn to_verified_request(
    v: &VerifiedChain,
    subject: &Subject,
    action: &ActionSpec,
    resource: &Resource,
    context: &Map<String, Value>,
    request_id: Option<String>,
) -> Result<ActionRequest, (&'static str, String)> {
    let mismatch = |m: String| (reasons::IDENTITY_MISMATCH, m);
    let current = v.agents.last().map(AgentId::as_str);
    match (subject.kind.as_str(), current) {
        ("agent", Some(agent)) if subject.id == agent => {}
        ("agent", Some(agent)) => {
            return Err(mismatch(format!(
                "the token was issued to agent `{agent}`, not `{}`",
                subject.id
            )));
        }
        ("user", None) if subject.id == v.user.as_str() => {}
        (kind, _) => {
            return Err(mismatch(format!(
                "the token proves {}, not {kind} `{}`",
                describe(v),
                subject.id
            )));
        }
    }
    if let Some(user) = str_prop(&subject.properties, "user", "subject.properties")
        .map_err(|m| (reasons::INVALID_REQUEST, m))?
        && user != v.user.as_str()
    {
        return Err(mismatch(format!(
            "the token acts for user `{}`, not `{user}`",
            v.user
        )));
    }
    if let Some(via) = subject.properties.get("via") {
        let stated: Vec<&str> = via
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let parents: Vec<&str> = v.agents[..v.agents.len().saturating_sub(1)]
            .iter()
            .map(AgentId::as_str)
            .collect();
        if stated != parents {
            return Err(mismatch(format!(
                "the token's chain is {}, not the `via` stated",
                describe(v)
            )));
        }
    }
    let mut req = request_for(v.actor_chain(), action, resource, context, request_id)
        .map_err(|m| (reasons::INVALID_REQUEST, m))?;
    req.risk = match (req.risk, v.risk) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    req.scope = v.scope.clone();
    Ok(req)
}

fn describe(v: &VerifiedChain) -> String {
    let mut s = format!("user `{}`", v.user);
    for a in &v.agents {
        s.push_str(&format!(" → `{a}`"));
    }
    s
}

fn verdict_json(v: &Verdict) -> Value {
    let mut ctx = Map::new();
    ctx.insert("verdict".into(), json!(v.decision.as_str()));
    ctx.insert("reasons".into(), json!(v.reasons));
    ctx.insert("policies".into(), json!(v.policies));
    ctx.insert("obligations".into(), json!(v.obligations));
    if let Some(a) = &v.approval {
        ctx.insert("approval".into(), json!(a));
    }
    if let Some(s) = &v.session {
        ctx.insert("session".into(), json!(s));
    }
    if let Some(r) = &v.risk {
        ctx.insert("risk".into(), json!(r));
    }
    json!({ "decision": v.is_allowed(), "context": ctx })
}

fn str_prop<'a>(
    props: &'a Map<String, Value>,
    key: &str,
    whose: &str,
) -> Result<Option<&'a str>, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{whose}.{key}` must be a string")),
    }
}

/// Translates AuthZEN's shapes into an [`ActionRequest`]; an error is a sentence
/// for a deny reason.
pub(crate) fn to_action_request(
    subject: &Subject,
    action: &ActionSpec,
    resource: &Resource,
    context: &Map<String, Value>,
    request_id: Option<String>,
) -> Result<ActionRequest, String> {
    let chain = match subject.kind.as_str() {
        "user" => ActorChain {
            user: UserId::new(subject.id.clone()).map_err(|e| e.to_string())?,
            agents: Vec::new(),
        },
        "agent" => {
            let user = str_prop(&subject.properties, "user", "subject.properties")?
                .ok_or("an agent subject needs `subject.properties.user`: the user it acts for")?;
            let mut agents = Vec::new();
            match subject.properties.get("via") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        let id = item
                            .as_str()
                            .ok_or("`subject.properties.via` must be a list of agent ids")?;
                        agents.push(AgentId::new(id).map_err(|e| e.to_string())?);
                    }
                }
                Some(_) => {
                    return Err("`subject.properties.via` must be a list of agent ids".into());
                }
            }
            agents.push(AgentId::new(subject.id.clone()).map_err(|e| e.to_string())?);
            ActorChain {
                user: UserId::new(user).map_err(|e| e.to_string())?,
                agents,
            }
        }
        other => {
            return Err(format!(
                "unsupported subject type `{other}`, expected `agent` or `user`"
            ));
        }
    };
    request_for(chain, action, resource, context, request_id)
}

/// The request of `chain` for an AuthZEN action, resource and context.
fn request_for(
    chain: ActorChain,
    action: &ActionSpec,
    resource: &Resource,
    context: &Map<String, Value>,
    request_id: Option<String>,
) -> Result<ActionRequest, String> {
    let require_type = |kind: &str| -> Result<(), String> {
        if resource.kind == kind {
            Ok(())
        } else {
            Err(format!(
                "action `{}` applies to a resource of type `{kind}`, not `{}`",
                action.name, resource.kind
            ))
        }
    };
    let act = match action.name.as_str() {
        "call_tool" => {
            require_type("tool")?;
            let arguments = match resource.properties.get("arguments") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(v @ Value::Object(_)) => v.clone(),
                Some(_) => return Err("`resource.properties.arguments` must be an object".into()),
            };
            Action::CallTool {
                tool: resource.id.clone(),
                arguments,
            }
        }
        "read" => {
            require_type("dataset")?;
            Action::Read {
                dataset: resource.id.clone(),
            }
        }
        "write" => {
            require_type("dataset")?;
            Action::Write {
                dataset: resource.id.clone(),
            }
        }
        "send" => {
            require_type("destination")?;
            Action::Send {
                target: resource.id.clone(),
            }
        }
        "invoke_model" => {
            require_type("model")?;
            Action::InvokeModel {
                model: resource.id.clone(),
                prompt: Value::Null,
                untrusted: Vec::new(),
            }
        }
        other => {
            return Err(format!(
                "unsupported action `{other}`, expected `call_tool`, `read`, `write`, `send` or `invoke_model`"
            ));
        }
    };
    let session = str_prop(context, "session", "context")?.ok_or(
        "`context.session` is required: the id of the task or conversation this request belongs to",
    )?;
    let session = SessionId::new(session).map_err(|e| e.to_string())?;
    let risk = match context.get("risk") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let r = v
                .as_f64()
                .ok_or("`context.risk` must be a number from 0 to 100")?;
            if !(0.0..=100.0).contains(&r) {
                return Err(format!("`context.risk` must be from 0 to 100, got {r}"));
            }
            // INVARIANT: 0 <= r <= 100, so the cast is exact after ceil.
            Some(r.ceil() as u8)
        }
    };
    let findings = match context.get("findings") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value::<Vec<Finding>>(v.clone()).map_err(|e| {
            format!("`context.findings` must be a list of {{\"kind\": …}} objects: {e}")
        })?,
    };
    let approval = str_prop(context, "approval", "context")?
        .map(|a| ApprovalId::new(a).map_err(|e| e.to_string()))
        .transpose()?;
    let declassify = match context.get("declassify") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`context.declassify` must be `true` or `false`".into()),
    };
    Ok(ActionRequest {
        request_id,
        chain,
        session,
        action: act,
        risk,
        findings,
        approval,
        scope: None,
        declassify,
    })
}

/// Reads an AuthZEN evaluation request from JSON.
pub(crate) fn from_value(body: &Value) -> Result<ActionRequest, String> {
    let req: EvaluationRequest = serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        format!("invalid field `{path}`: {}", e.into_inner())
    })?;
    to_action_request(&req.subject, &req.action, &req.resource, &req.context, None)
}
