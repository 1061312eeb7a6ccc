//! The admin API: the agent registry, revocation and key rotation, behind an admin
//! credential (`Authorization: Bearer <admin token>`).
//!
//! * `GET  /admin/v1/agents` — every registered agent
//! * `POST /admin/v1/agents` — register: `{"id", "owner", "purpose", "public_jwk"?, "secret"?: true, "by"?}`
//! * `GET  /admin/v1/agents/{id}` — one agent and its lifecycle events
//! * `POST /admin/v1/agents/{id}/{suspend|resume|retire}` — `{"by"?, "reason"?}`
//! * `POST /admin/v1/tokens/revoke` — `{"token"}` or `{"jti", "exp"?}`, plus `"by"?`, `"reason"?`
//! * `POST /admin/v1/users/{id}/revoke` — every session of a user, or `{"sid"}`
//! * `POST /admin/v1/keys/rotate` — a new signing key; old tokens stay valid
//! * `GET  /admin/v1/approvals` — pending approvals (`?all=true`: every one)
//! * `GET  /admin/v1/approvals/{id}` — one approval, and whether it has expired
//! * `POST /admin/v1/approvals/{id}/{approve|grant|deny}` — a human decides; the
//!   agent's held call then goes on (or the agent retries presenting the
//!   approval id). Besides the admin token this needs the approver's own user
//!   token from the identity provider in [`APPROVER_TOKEN`]: the admin token
//!   says the caller may use the API, the user token says which human decides,
//!   so that separation of duties (never the requesting user; only the
//!   inventory's approver group, when it names one) holds against a shared
//!   admin credential. The body may not name an approver (`by`)
//! * `GET  /admin/v1/labels/{user}/{agent}` — the label of what `user`'s agent
//!   `agent` has read: its flow session, which every gateway call and every
//!   AuthZEN session of the two stands on
//! * `POST /admin/v1/labels/{user}/{agent}/lower` — `{"to"?, "trust"?,
//!   "drop_categories"?, "reason"?}`: a human lowers its confidentiality to
//!   `to`, clears its untrusted mark (`"trust": true`) or takes categories out
//!   of it, proved as for approvals (the approver's user token; never `user`;
//!   only the approver group when the inventory names one)
//! * `GET  /admin/v1/tools` — the MCP tool pins, blocked ones first
//! * `POST /admin/v1/tools/{tool}/approve` — accept the tool's current definition
//!   as its pin: `{"digest"?, "by"?}` (with `digest`, only if that is still the
//!   definition seen, i.e. the one reviewed)
//! * `GET  /admin/v1/audit/verify` — verify the running server's audit log from
//!   its first record with the log's own key, as `zt4ai audit verify` does
//!   (read-only; one at a time; needs [`GatewayConfig::audit_path`](crate::GatewayConfig::audit_path))
//!
//! Changes take effect on the next request at every enforcement point.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;
use zt4ai_core::inventory::AgentState;
use zt4ai_core::unix_now as now;
use zt4ai_core::{AgentId, Category, Integrity, Label, SessionId, UserId};
use zt4ai_identity::Identity;
use zt4ai_session::{ApprovalError, Approver, Lowering, NewAgent, RegistryError};

use crate::{ApiError, AppState};

/// The header carrying the approver's user token (from the organisation's
/// identity provider, or `zt4ai dev-idp token`) when an approval is decided.
pub(crate) const APPROVER_TOKEN: &str = "x-zt4ai-approver-token";

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

/// Checks the admin credential; the identity service if it holds.
fn authorise(state: &AppState, headers: &HeaderMap) -> Result<std::sync::Arc<Identity>, Response> {
    let Some(identity) = &state.identity else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the admin API is not enabled",
        ));
    };
    admin_only(state, headers)?;
    Ok(std::sync::Arc::clone(identity))
}

/// Checks the admin credential alone (the approvals live in the pipeline's
/// store, which a gateway without identity has too).
fn admin_only(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(expected) = &state.config.admin_token else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the admin API is not enabled",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests: equal-length, and nothing about the token leaks by timing.
    let ok = sha2::Sha256::digest(given.as_bytes()) == sha2::Sha256::digest(expected.as_bytes());
    if !ok || given.is_empty() {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin API needs `Authorization: Bearer <admin token>`",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"zt4ai-admin\""),
        );
        return Err(r);
    }
    Ok(())
}

/// The admin credential checked, then the JSON body read.
async fn admit<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(std::sync::Arc<Identity>, T), Response> {
    let identity = authorise(state, headers)?;
    Ok((identity, body_json(state, body).await?))
}

async fn body_json<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    body: Body,
) -> Result<T, Response> {
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit }.into_response())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")).into_response())
}

fn registry_error(e: &RegistryError) -> Response {
    let status = match e {
        RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
        RegistryError::AlreadyRegistered(_)
        | RegistryError::Retired(_)
        | RegistryError::InvalidTransition { .. } => StatusCode::CONFLICT,
        RegistryError::EmptyOwner => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, "registry", e.to_string())
}

pub(crate) async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let identity = match authorise(&state, &headers) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match identity.store().agents() {
        Ok(a) => Json(json!({ "agents": a })).into_response(),
        Err(e) => registry_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Register {
    #[serde(default)]
    id: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    public_jwk: Option<Value>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    by: Option<String>,
}

pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (identity, r): (_, Register) = match admit(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match register_agent(&identity, &r) {
        Ok(v) => {
            let by = r.by.as_deref().unwrap_or("admin-api");
            let detail = json!({ "purpose": r.purpose, "secret": r.secret });
            let ok = (StatusCode::CREATED, Json(v)).into_response();
            recorded(&state, "agent.registered", by, &r.id, detail, ok).await
        }
        Err(resp) => resp,
    }
}

/// Records an admin change in the audit log and answers `ok`; a `503` saying
/// so if the record cannot be stored (the change itself stands).
async fn recorded(
    state: &AppState,
    event: &str,
    by: &str,
    subject: &str,
    detail: Value,
    ok: Response,
) -> Response {
    let Some(log) = state.pipeline.audit() else {
        return ok;
    };
    let actor = format!("admin-api:{by}");
    let ev = zt4ai_audit::Event::lifecycle(event, &actor, subject, detail);
    match log.append(&ev).durable().await {
        Ok(_) => ok,
        Err(e) => {
            tracing::error!(event, subject, error = %e, "admin change not recorded in the audit log");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                format!("the change was made but the audit log could not record it: {e}"),
            )
        }
    }
}

fn register_agent(identity: &Identity, r: &Register) -> Result<Value, Response> {
    if zt4ai_core::AgentId::new(r.id.clone()).is_err() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("invalid agent id `{}`", r.id),
        ));
    }
    if !r.owner.trim().is_empty()
        && !identity
            .inventory()
            .users
            .keys()
            .any(|u| u.as_str() == r.owner)
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("owner `{}` is not a user in the inventory", r.owner),
        ));
    }
    let jwk = match &r.public_jwk {
        Some(v) => {
            if serde_json::from_value::<jsonwebtoken::jwk::Jwk>(v.clone())
                .ok()
                .and_then(|j| jsonwebtoken::DecodingKey::from_jwk(&j).ok())
                .is_none()
            {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "`public_jwk` is not a usable public JWK",
                ));
            }
            Some(v.to_string())
        }
        None => None,
    };
    let secret = if r.secret {
        Some(zt4ai_identity::new_secret().map_err(|e| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?)
    } else {
        None
    };
    let hash = secret.as_deref().map(zt4ai_identity::secret_hash);
    let by = r.by.clone().unwrap_or_else(|| "admin-api".into());
    let agent = identity
        .store()
        .register_agent(&NewAgent {
            id: &r.id,
            owner: &r.owner,
            purpose: &r.purpose,
            public_jwk: jwk.as_deref(),
            secret_hash: hash.as_deref(),
            by: &by,
            now: now(),
        })
        .map_err(|e| registry_error(&e))?;
    identity.changed();
    let mut v = json!({ "agent": agent });
    if let Some(s) = secret {
        v["client_secret"] = json!(s);
    }
    Ok(v)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let identity = match authorise(&state, &headers) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let store = identity.store();
    match (store.agent(&id), store.agent_events(&id)) {
        (Ok(a), Ok(ev)) => Json(json!({ "agent": a, "events": ev })).into_response(),
        (Err(e), _) | (_, Err(e)) => registry_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn lifecycle(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, op)): Path<(String, String)>,
    body: Body,
) -> Response {
    let identity = match authorise(&state, &headers) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let to = match op.as_str() {
        "suspend" => AgentState::Suspended,
        "resume" => AgentState::Active,
        "retire" => AgentState::Retired,
        _ => return ApiError::NotFound.into_response(),
    };
    let c: Change = match body_json(&state, body).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by = c.by.unwrap_or_else(|| "admin-api".into());
    match identity
        .store()
        .set_agent_state(&id, to, &by, c.reason.as_deref(), now())
    {
        Ok(a) => {
            identity.changed();
            tracing::warn!(agent = %id, state = to.as_str(), by = %by, "agent lifecycle changed");
            let event = match to {
                AgentState::Suspended => "agent.suspended",
                AgentState::Active => "agent.resumed",
                AgentState::Retired => "agent.retired",
            };
            let ok = Json(json!({ "agent": a })).into_response();
            recorded(&state, event, &by, &id, json!({ "reason": c.reason }), ok).await
        }
        Err(e) => registry_error(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Revoke {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (identity, r): (_, Revoke) = match admit(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (jti, exp) = match (&r.token, &r.jti) {
        (Some(t), _) => match zt4ai_identity::token_id(t) {
            Some(x) => x,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "`token` is not a zt4ai delegated token",
                );
            }
        },
        (None, Some(j)) => (j.clone(), r.exp.unwrap_or(0)),
        (None, None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "give `token` or `jti`",
            );
        }
    };
    let by = r.by.unwrap_or_else(|| "admin-api".into());
    match identity.revoke_token(&jti, exp, &by, r.reason.as_deref()) {
        Ok(new) => {
            let ok = Json(json!({ "jti": jti, "revoked": true, "already": !new })).into_response();
            let detail = json!({ "reason": r.reason });
            recorded(&state, "token.revoked", &by, &jti, detail, ok).await
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.code, e.description),
    }
}

pub(crate) async fn revoke_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    body: Body,
) -> Response {
    let (identity, r): (_, Revoke) = match admit(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let by = r.by.unwrap_or_else(|| "admin-api".into());
    match identity
        .store()
        .revoke_user_session(&user, r.sid.as_deref(), &by, now())
    {
        Ok(()) => {
            identity.changed();
            let sid = r.sid.unwrap_or_else(|| "*".into());
            let detail = json!({ "sid": sid, "reason": r.reason });
            let ok = Json(json!({ "user": user, "sid": sid, "revoked": true })).into_response();
            recorded(&state, "user.revoked", &by, &user, detail, ok).await
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
    }
}

pub(crate) async fn rotate(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let identity = match authorise(&state, &headers) {
        Ok(i) => i,
        Err(r) => return r,
    };
    match identity.rotate_keys() {
        Ok(kid) => {
            let ok = Json(json!({ "active_kid": kid })).into_response();
            recorded(&state, "keys.rotated", "admin-api", &kid, Value::Null, ok).await
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    all: bool,
}

pub(crate) async fn approvals(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Response {
    if let Err(r) = admin_only(&state, &headers) {
        return r;
    }
    match state.pipeline.store().approvals(q.all) {
        Ok(a) => Json(json!({ "approvals": a })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
    }
}

/// `GET /admin/v1/approvals/{id}`: the approval, and whether it has expired
/// (a pending or granted approval past `expires_at` can no longer be used).
pub(crate) async fn approval(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admin_only(&state, &headers) {
        return r;
    }
    match state.pipeline.store().approval(&id) {
        Ok(a) => {
            let expired = a.expired(now());
            Json(json!({ "approval": a, "expired": expired })).into_response()
        }
        Err(e) => approval_error(&e),
    }
}

/// The body of an approval decision. There is nothing to say in it: who
/// decides is the approver token's user, never a name in the body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalDecision {
    /// Refused when present: the approver is the token's user.
    #[serde(default)]
    by: Option<Value>,
}

/// `POST /admin/v1/approvals/{id}/{approve|grant|deny}`: the admin token, and
/// the approver's own user token in [`APPROVER_TOKEN`].
pub(crate) async fn decide_approval(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, op)): Path<(String, String)>,
    body: Body,
) -> Response {
    let grant = match op.as_str() {
        "approve" | "grant" => true,
        "deny" => false,
        _ => return ApiError::NotFound.into_response(),
    };
    let approver = match admitted_approver(&state, &headers, "deciding approvals").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let d: ApprovalDecision = match body_json(&state, body).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    if d.by.is_some() {
        return ApiError::BadRequest(format!(
            "`by` is not accepted: the approver is the user of the `{APPROVER_TOKEN}` token"
        ))
        .into_response();
    }
    let group = state.pipeline.inventory().settings.approvers.clone();
    let by = approver.user.clone();
    match state
        .pipeline
        .store()
        .decide_approval(&id, grant, &approver, group.as_deref(), now())
    {
        Ok(a) => {
            tracing::warn!(approval = %id, granted = grant, by = %by, "approval decided");
            let event = if grant {
                "approval.granted"
            } else {
                "approval.denied"
            };
            let detail = json!({
                "kind": a.kind,
                "requested_by": a.requested_by,
                "approver_group": group,
            });
            let ok = Json(json!({ "approval": a })).into_response();
            recorded(&state, event, &by, &id, detail, ok).await
        }
        Err(e) => {
            tracing::info!(approval = %id, granted = grant, by = %by, error = %e, "approval decision refused");
            approval_error(&e)
        }
    }
}

/// The admin credential checked, then the human deciding (`what`) proved
/// by their user token ([`approver`]); `501` without an identity provider.
async fn admitted_approver(
    state: &AppState,
    headers: &HeaderMap,
    what: &str,
) -> Result<Approver, Response> {
    admin_only(state, headers)?;
    let Some(identity) = state.identity.clone() else {
        return Err(error(
            StatusCode::NOT_IMPLEMENTED,
            "no_identity",
            format!(
                "{what} needs the identity provider to prove who decides, and this gateway runs without identity"
            ),
        ));
    };
    approver(state, &identity, headers).await
}

/// The human deciding, proved by their user token: an [`Approver`] that is in
/// the approver group when the identity provider says so or the inventory
/// does. A missing, invalid or revoked token is `401`.
async fn approver(
    state: &AppState,
    identity: &Identity,
    headers: &HeaderMap,
) -> Result<Approver, Response> {
    let unauthorised = |message: String| {
        let mut r = error(StatusCode::UNAUTHORIZED, "approver_unauthorized", message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"zt4ai-approver\""),
        );
        r
    };
    let token = headers
        .get(APPROVER_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(|t| t.strip_prefix("Bearer ").unwrap_or(t))
        .unwrap_or("");
    if token.is_empty() {
        return Err(unauthorised(format!(
            "deciding an approval or lowering a label needs the approver's own user token from the identity provider in `{APPROVER_TOKEN}`"
        )));
    }
    let user = match identity.users().verify(token).await {
        Ok(u) => u,
        Err(e) if e.status == 503 => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.description,
            ));
        }
        Err(e) => {
            return Err(unauthorised(format!(
                "the approver token is not valid: {}",
                e.description
            )));
        }
    };
    // A user whose sessions an admin revoked does not decide either.
    let revoked = identity.user_revoked(&user).map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.description,
        )
    })?;
    if revoked {
        return Err(unauthorised(format!(
            "the session of user `{}` has been revoked",
            user.id
        )));
    }
    let inventory = state.pipeline.inventory();
    let in_group = match &inventory.settings.approvers {
        None => true,
        Some(g) => user.groups.iter().any(|ug| ug == g) || inventory.user_in_group(&user.id, g),
    };
    Ok(Approver {
        user: user.id,
        in_group,
    })
}

/// The answer to an approval that cannot be shown or decided.
fn approval_error(e: &ApprovalError) -> Response {
    let (status, code) = match e {
        ApprovalError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ApprovalError::SelfApproval { .. } => (StatusCode::FORBIDDEN, "separation_of_duties"),
        ApprovalError::NotApprover { .. } => (StatusCode::FORBIDDEN, "not_approver"),
        ApprovalError::Expired(_) => (StatusCode::CONFLICT, "expired"),
        ApprovalError::AlreadyDecided { .. } => (StatusCode::CONFLICT, "already_decided"),
        ApprovalError::NotGranted { .. } | ApprovalError::Mismatch(_) => {
            (StatusCode::CONFLICT, "conflict")
        }
        ApprovalError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store"),
    };
    error(status, code, e.to_string())
}

/// The user and agent of a `/admin/v1/labels/{user}/{agent}` path, checked,
/// and the flow session of the two.
fn flow_of(user: &str, agent: &str) -> Result<SessionId, Response> {
    let user = UserId::new(user)
        .map_err(|e| ApiError::BadRequest(format!("user: {e}")).into_response())?;
    let agent = AgentId::new(agent)
        .map_err(|e| ApiError::BadRequest(format!("agent: {e}")).into_response())?;
    Ok(SessionId::flow(&user, Some(&agent)))
}

/// `GET /admin/v1/labels/{user}/{agent}`: the label of the flow session of
/// `user`'s agent `agent`; `recorded` is false (and the label the lowest) if
/// the two have read nothing yet.
pub(crate) async fn label(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, agent)): Path<(String, String)>,
) -> Response {
    if let Err(r) = admin_only(&state, &headers) {
        return r;
    }
    let flow = match flow_of(&user, &agent) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match state.pipeline.store().label_of(&flow) {
        Ok(l) => Json(json!({
            "user": user,
            "agent": agent,
            "session": flow,
            "recorded": l.is_some(),
            "label": l.unwrap_or_default(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lower {
    #[serde(default)]
    to: Option<Label>,
    #[serde(default)]
    trust: bool,
    #[serde(default)]
    drop_categories: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/v1/labels/{user}/{agent}/lower`: a human lowers the label of
/// what `user`'s agent `agent` has read, for every later request of the two
/// (a declassification outside any request): its confidentiality to `to`,
/// its untrusted mark cleared (`trust`), categories dropped. Proved as an approval
/// is: the admin token, and the approver's own user token in
/// [`APPROVER_TOKEN`], who may not be `user` and must be in the approver group
/// when the inventory names one. Recorded in the audit log as
/// `label.lowered`.
pub(crate) async fn lower_label(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((user, agent)): Path<(String, String)>,
    body: Body,
) -> Response {
    let approver = match admitted_approver(&state, &headers, "lowering a label").await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let flow = match flow_of(&user, &agent) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let l: Lower = match body_json(&state, body).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let drop = l
        .drop_categories
        .iter()
        .enumerate()
        .map(|(i, c)| Category::new(c).map_err(|e| format!("drop_categories[{i}]: {e}")))
        .collect::<Result<BTreeSet<_>, _>>();
    let lowering = match drop {
        Ok(drop) => Lowering {
            to: l.to,
            trust: l.trust,
            drop,
        },
        Err(e) => return ApiError::BadRequest(e).into_response(),
    };
    if lowering.is_empty() {
        return ApiError::BadRequest(
            "nothing to lower: give `to` (public, internal, confidential or highly_confidential), `trust: true` (clear the untrusted mark) or `drop_categories`".into(),
        )
        .into_response();
    }
    let group = state.pipeline.inventory().settings.approvers.clone();
    if let Some(group) = &group
        && !approver.in_group
    {
        return error(
            StatusCode::FORBIDDEN,
            "not_approver",
            format!("`{}` is not in the approver group `{group}`", approver.user),
        );
    }
    if approver.user == user {
        return error(
            StatusCode::FORBIDDEN,
            "separation_of_duties",
            format!(
                "`{user}` cannot lower the label of what an agent read on their behalf (separation of duties)"
            ),
        );
    }
    match state.pipeline.store().lower_label(&flow, &lowering, now()) {
        Ok(Some((before, after))) => {
            tracing::warn!(user = %user, agent = %agent, from = %before.confidentiality, to = %after.confidentiality,
                trusted = after.integrity == Integrity::Trusted, by = %approver.user, "label lowered");
            let detail = json!({
                "user": user,
                "agent": agent,
                "from": before.confidentiality,
                "to": after.confidentiality,
                "before": before,
                "after": after,
                "reason": l.reason,
                "approver_group": group,
            });
            let ok = Json(json!({
                "user": user,
                "agent": agent,
                "session": flow,
                "before": before,
                "label": after,
            }))
            .into_response();
            recorded(
                &state,
                "label.lowered",
                &approver.user,
                flow.as_str(),
                detail,
                ok,
            )
            .await
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("`{user}`'s agent `{agent}` has no label recorded: it has read nothing"),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
    }
}

pub(crate) async fn tools(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorise(&state, &headers) {
        return r;
    }
    match state.pipeline.store().tool_pins() {
        Ok(p) => Json(json!({ "tools": p })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decide {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    digest: Option<String>,
}

pub(crate) async fn approve_tool(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tool): Path<String>,
    body: Body,
) -> Response {
    let (_, d): (_, Decide) = match admit(&state, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let by = d.by.unwrap_or_else(|| "admin-api".into());
    match state
        .pipeline
        .store()
        .approve_tool(&tool, d.digest.as_deref(), &by, now())
    {
        Ok(pin) => {
            if let Some(p) = &state.pins {
                p.invalidate();
            }
            tracing::warn!(tool = %tool, digest = %pin.digest, by = %by, "MCP tool definition approved");
            let detail = json!({ "digest": pin.digest });
            let ok = Json(json!({ "tool": pin })).into_response();
            recorded(&state, "tool.approved", &by, &tool, detail, ok).await
        }
        Err(e @ zt4ai_session::PinError::NotFound(_)) => {
            error(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        Err(e @ zt4ai_session::PinError::Stale { .. }) => {
            error(StatusCode::CONFLICT, "stale", e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store", e.to_string()),
    }
}

/// Whether an audit verification is running (they read the whole log: one at a
/// time).
static VERIFYING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Clears [`VERIFYING`] when the verification ends, however it ends.
struct Verifying;

impl Drop for Verifying {
    fn drop(&mut self) {
        VERIFYING.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// `GET /admin/v1/audit/verify`: recomputes the running server's audit log from
/// its first record and checks every kept checkpoint and the signed head with
/// the log's own verifier key. `200` with `{"ok": true, "report", "verifier_key"}`
/// or `{"ok": false, "problem", "verifier_key"}`; `404` when the gateway has no
/// audit log or does not know its file; `409` while another verification runs.
///
/// This shows the log is intact against the key the server signs with; an
/// auditor who wants more verifies offline against a verifier key and
/// checkpoints kept where the server cannot write.
pub(crate) async fn verify_audit(State(state): State<AppState>, headers: HeaderMap) -> Response {
    use std::sync::atomic::Ordering;
    if let Err(r) = authorise(&state, &headers) {
        return r;
    }
    let (Some(log), Some(path)) = (state.pipeline.audit(), state.config.audit_path.clone()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "audit verification is not enabled: the gateway has no audit log, or its file is not configured",
        );
    };
    let key = log.verifier_key().to_owned();
    let verifier = match zt4ai_audit::verifier(&key) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                e.to_string(),
            );
        }
    };
    if VERIFYING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return error(
            StatusCode::CONFLICT,
            "busy",
            "an audit verification is already running",
        );
    }
    let guard = Verifying;
    // Records answered before this call are in the journal and reach the
    // log within its deferral: the verification covers them.
    if !log.settled(std::time::Duration::from_secs(5)).await {
        tracing::warn!(
            "audit records journaled before the verification are not yet in the log; verifying what is"
        );
    }
    let verified = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let reader = zt4ai_audit::AuditReader::open(&path)?;
        Ok::<_, zt4ai_audit::AuditError>(reader.verify(&verifier, &[]))
    })
    .await;
    match verified {
        Ok(Ok(Ok(report))) => {
            Json(json!({ "ok": true, "report": report, "verifier_key": key })).into_response()
        }
        Ok(Ok(Err(problem))) => {
            tracing::error!(problem = %problem, "audit log verification failed");
            Json(json!({ "ok": false, "problem": problem, "verifier_key": key })).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            e.to_string(),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the verification stopped: {e}"),
        ),
    }
}
