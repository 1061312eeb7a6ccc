//! Identity endpoints and the bearer-token check of every enforcement point.
//!
//! * `POST /oauth/token` — OAuth 2.0 Token Exchange (RFC 8693): an agent trades the
//!   user's token (or its parent agent's delegated token) for a delegated token.
//!   The agent authenticates with a signed `actor_token`, or, where the inventory
//!   allows it, a client secret (form fields or HTTP Basic).
//! * `GET /.well-known/jwks.json` — the keys delegated tokens are signed with.
//! * `GET /.well-known/oauth-authorization-server` — RFC 8414 metadata.
//!
//! Every request to an enforcement point must carry a delegated token, as
//! `Authorization: Bearer`, or as `Authorization: DPoP` with a `DPoP` proof when
//! the token is bound to a key (RFC 9449); a missing or bad one is answered `401`
//! with `WWW-Authenticate` challenges that say what is wrong (RFC 6750, RFC 9449
//! §7.1), and is logged as a denied request.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use zt4ai_identity::{
    AuthError, DPOP_ALGS, DpopProof, ExchangeRequest, Identity, Presented, TOKEN_EXCHANGE,
    VerifiedChain,
};

use crate::AppState;

/// How a `401` asks the client to authenticate.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Challenge<'a> {
    /// The token endpoint's client credentials (HTTP Basic).
    Basic,
    /// A bearer token (RFC 6750), with the protected-resource metadata URL
    /// (RFC 9728) where there is one.
    Bearer(Option<&'a str>),
}

/// The answer to a refused token request or bearer token.
pub(crate) fn auth_error(e: &AuthError, challenge: Challenge<'_>) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut resp = (
        status,
        Json(json!({ "error": e.code, "error_description": e.description })),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        let desc = e.description.replace(['"', '\\'], "'");
        let error = format!(", error=\"{}\", error_description=\"{desc}\"", e.code);
        let values = match challenge {
            Challenge::Basic => vec!["Basic realm=\"zt4ai\"".to_owned()],
            Challenge::Bearer(metadata) => {
                let mut bearer = "Bearer realm=\"zt4ai\"".to_owned();
                let mut dpop = format!("DPoP realm=\"zt4ai\", algs=\"{}\"", DPOP_ALGS.join(" "));
                if let Some(m) = metadata {
                    bearer.push_str(&format!(", resource_metadata=\"{m}\""));
                    dpop.push_str(&format!(", resource_metadata=\"{m}\""));
                }
                // RFC 6750 §3.1: no error code when the request had no
                // credentials; a proof's error goes with the DPoP scheme.
                match e.code {
                    "missing_token" => {
                        bearer.push_str(&format!(", error_description=\"{desc}\""));
                    }
                    "invalid_dpop_proof" => dpop.push_str(&error),
                    _ => bearer.push_str(&error),
                }
                vec![bearer, dpop]
            }
        };
        for value in values {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
    }
    resp
}

/// The request's `DPoP` header: none, or exactly one (RFC 9449 §4.3).
fn dpop_header(headers: &HeaderMap, status: u16) -> Result<Option<&str>, AuthError> {
    let mut all = headers.get_all("dpop").iter();
    let (first, second) = (all.next(), all.next());
    let bad = |what: &str| AuthError {
        status,
        code: "invalid_dpop_proof",
        description: what.into(),
    };
    match (first, second) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(bad("the request has more than one `DPoP` header")),
        (Some(v), None) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| bad("the `DPoP` header is not ASCII")),
    }
}

/// Verifies the delegated token of a request to enforcement point `point`:
/// bearer, or bound to a key with its `DPoP` proof for this `method` and `path`
/// of the gateway's base URL. A genuine token refused for want of its proof of
/// possession is recorded in the audit log under the chain it proves: someone
/// holds that token without its key.
pub(crate) async fn verify_request(
    state: &AppState,
    identity: &Identity,
    point: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<VerifiedChain, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AuthError {
            status: 401,
            code: "missing_token",
            description: "no `Authorization: Bearer` or `Authorization: DPoP` delegated token"
                .into(),
        })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::invalid_token(
            "the Authorization header is not `Bearer <token>` or `DPoP <token>`",
        ));
    }
    let presented = if scheme.eq_ignore_ascii_case("bearer") {
        Presented::Bearer(token)
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Presented::Dpop {
            token,
            proof: dpop_header(headers, 401)?,
        }
    } else {
        return Err(AuthError::invalid_token(
            "the Authorization header is not `Bearer <token>` or `DPoP <token>`",
        ));
    };
    // Only a proof is checked against the URL the client addressed.
    let url = match presented {
        Presented::Dpop { .. } => format!("{}{path}", state.config.base_url.trim_end_matches('/')),
        Presented::Bearer(_) => String::new(),
    };
    let refused = match identity.verify_request(presented, method.as_str(), &url) {
        Ok(chain) => return Ok(chain),
        Err(r) => r,
    };
    if let Some(holder) = &refused.holder {
        let chain = holder.actor_chain();
        let verdict = zt4ai_core::Verdict::deny(
            zt4ai_pipeline::reasons::POSSESSION,
            format!("token `{}`: {}", holder.jti, refused.description),
        );
        let refusal = zt4ai_pipeline::Refusal {
            point,
            request_id: crate::authzen::request_id(headers),
            chain: &chain,
            session: &holder.flow_session(),
            action: method.as_str(),
            resource: path,
        };
        tracing::warn!(user = %holder.user, jti = %holder.jti, error = refused.code,
            reason = %refused.description, "a genuine token without its proof of possession");
        state.pipeline.record_refusal(refusal, verdict).await;
    }
    Err(refused.error)
}

/// `POST /oauth/token`.
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(identity) = state.identity.clone() else {
        return auth_error(
            &AuthError::invalid_request("token exchange is not enabled"),
            Challenge::Basic,
        );
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return auth_error(
            &AuthError::invalid_request("the body must be `application/x-www-form-urlencoded`"),
            Challenge::Basic,
        );
    }
    let limit = state.config.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return crate::ApiError::TooLarge { limit }.into_response();
        }
    };
    let mut req: ExchangeRequest = match serde_urlencoded::from_bytes(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return auth_error(
                &AuthError::invalid_request(format!("form body: {e}")),
                Challenge::Basic,
            );
        }
    };
    // RFC 6749 §2.3.1: client credentials may come as HTTP Basic.
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|s| s.split_once(':')) {
            Some((id, secret)) => {
                req.client_id = Some(id.to_owned());
                req.client_secret = Some(secret.to_owned());
            }
            None => {
                return auth_error(
                    &AuthError::invalid_client("malformed HTTP Basic credentials"),
                    Challenge::Basic,
                );
            }
        }
    }
    match dpop_header(&headers, 400) {
        Ok(proof) => {
            req.dpop = proof.map(|p| DpopProof {
                proof: p.to_owned(),
                url: format!(
                    "{}/oauth/token",
                    state.config.base_url.trim_end_matches('/')
                ),
            });
        }
        Err(e) => return auth_error(&e, Challenge::Basic),
    }
    match identity.exchange(&req).await {
        Ok(resp) => {
            let mut r = Json(resp).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::info!(error = e.code, reason = %e.description, "token exchange refused");
            auth_error(&e, Challenge::Basic)
        }
    }
}

/// `GET /.well-known/jwks.json`.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    match &state.identity {
        Some(i) => Json(i.jwks()).into_response(),
        None => crate::ApiError::NotFound.into_response(),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub(crate) async fn metadata(State(state): State<AppState>) -> Response {
    let base = state.config.base_url.trim_end_matches('/');
    let secrets = state.identity.as_ref().is_some_and(|i| i.allows_secrets());
    let mut methods = vec!["none"];
    if secrets {
        methods.extend(["client_secret_post", "client_secret_basic"]);
    }
    Json(json!({
        "issuer": zt4ai_identity::ISSUER,
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": [TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": methods,
        "dpop_signing_alg_values_supported": DPOP_ALGS,
    }))
    .into_response()
}
