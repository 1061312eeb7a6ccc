//! The LLM gateway's HTTP side: OpenAI-compatible `POST /v1/chat/completions`
//! and `GET /v1/models`, behind the delegated token check. What they answer is
//! in `zt4ai-llm`; here are the credentials, the body limit, the headers
//! (`x-zt4ai-approval`, `x-zt4ai-declassify`, `x-request-id`) and the
//! OpenAI-style errors (`{"error": {"message", "type", "param", "code"}}`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zt4ai_core::ApprovalId;
use zt4ai_identity::VerifiedChain;
use zt4ai_llm::{CallOptions, LlmError, Reply};

use crate::AppState;

/// The header a retried call presents a granted approval in.
pub(crate) const APPROVAL_HEADER: &str = "x-zt4ai-approval";
/// The header that asks for a declassification (`true`).
pub(crate) const DECLASSIFY_HEADER: &str = "x-zt4ai-declassify";

fn error(e: &LlmError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = (status, Json(e.body())).into_response();
    if let Some(s) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&s.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn bad(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "invalid_request"}})),
    )
        .into_response()
}

/// The caller's chain, or the `401` (OpenAI-style body, RFC 6750 challenge).
async fn authenticate(
    state: &AppState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<VerifiedChain, Response> {
    let Some(identity) = &state.identity else {
        return Err(crate::ApiError::NotFound.into_response());
    };
    let verified = crate::auth::verify_request(state, identity, "llm", method, path, headers).await;
    verified.map_err(|e| {
        tracing::info!(decision = "deny", error = e.code, reason = %e.description, "LLM request refused: bad credentials");
        let mut resp = crate::auth::auth_error(&e, crate::auth::Challenge::Bearer(None));
        let status = resp.status();
        let body = json!({"error": {
            "message": e.description,
            "type": "invalid_request_error",
            "param": null,
            "code": e.code,
        }});
        let headers = std::mem::take(resp.headers_mut());
        let mut out = (status, Json(body)).into_response();
        for (k, v) in &headers {
            if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
                out.headers_mut().append(k.clone(), v.clone());
            }
        }
        out
    })
}

fn options(headers: &HeaderMap) -> Result<CallOptions, Response> {
    let text = |name: &str| -> Result<Option<&str>, Response> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| bad(format!("header `{name}` is not visible ASCII")))
            })
            .transpose()
    };
    let approval = text(APPROVAL_HEADER)?
        .map(|a| {
            ApprovalId::new(a.trim().to_owned())
                .map_err(|e| bad(format!("header `{APPROVAL_HEADER}`: {e}")))
        })
        .transpose()?;
    let declassify = match text(DECLASSIFY_HEADER)? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(bad(format!(
                "header `{DECLASSIFY_HEADER}` must be `true` or `false`"
            )));
        }
    };
    Ok(CallOptions {
        request_id: text("x-request-id")?.map(|s| s.chars().take(128).collect()),
        approval,
        declassify,
    })
}

/// `GET /v1/models`.
pub(crate) async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(gw) = &state.config.llm else {
        return crate::ApiError::NotFound.into_response();
    };
    match authenticate(&state, &Method::GET, "/v1/models", &headers).await {
        Ok(v) => Json(gw.models(&v)).into_response(),
        Err(r) => r,
    }
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(gw) = &state.config.llm else {
        return crate::ApiError::NotFound.into_response();
    };
    // Credentials first: an unauthenticated caller learns nothing about the body.
    let v = match authenticate(&state, &Method::POST, "/v1/chat/completions", &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let opts = match options(&headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let limit = state.config.max_body_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error(&LlmError {
                status: 413,
                kind: "invalid_request_error",
                code: "request_too_large",
                message: format!("the request body is larger than {limit} bytes"),
                detail: None,
                retry_after: None,
            });
        }
    };
    let span = tracing::debug_span!(target: zt4ai_telemetry::TRACE_TARGET, "llm chat",
        otel.name = "POST /v1/chat/completions",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/v1/chat/completions",
    );
    zt4ai_telemetry::continue_trace(
        &span,
        headers.get("traceparent").and_then(|v| v.to_str().ok()),
        headers.get("tracestate").and_then(|v| v.to_str().ok()),
    );
    let reply = tracing::Instrument::instrument(gw.chat(&v, &bytes, opts), span).await;
    match reply {
        Ok(Reply::Json(v)) => Json(v).into_response(),
        Ok(Reply::Stream(events)) => {
            let body = Body::from_stream(futures_util::StreamExt::map(
                events,
                Ok::<_, std::convert::Infallible>,
            ));
            let mut resp = Response::new(body);
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(e) => error(&e),
    }
}
