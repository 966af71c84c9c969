//! Inference: an OpenAI-compatible client for app backends (`@stage/inference`), with
//! per-app usage.
//!
//! * `POST /inference/v1/chat/completions` and `POST /inference/v1/embeddings` forward the
//!   body to the configured upstream (`--inference-base-url`, e.g.
//!   `https://api.openai.com/v1`) with the host's key, and answer the upstream's status and
//!   JSON. Only app backends may call them (through their `inference` interface): the
//!   caller must be an app, which every call's usage is recorded against.
//! * `GET /inference/usage?appSid=` sums the tenant's calls and tokens, per model.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::input::Invalid;
use super::{ServiceCaller, ServiceState};
use crate::envelope::extract::Query;
use crate::envelope::{ApiError, ApiResult, ErrorCode, ok};
use stage_runtime::net::{Egress, Timeouts};
use stage_store::inference::{InferenceCall, InferenceUsage};

/// Bounds connecting and each pause in the answer; generation can take a while.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Largest answer read from the upstream.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The OpenAI-compatible API inference calls go to; the host holds the key.
pub struct InferenceUpstream {
    /// Base URL ending before `/chat/completions` (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for InferenceUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferenceUpstream").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

pub(super) fn router() -> Router<ServiceState> {
    Router::new()
        .route("/inference/v1/chat/completions", post(chat))
        .route("/inference/v1/embeddings", post(embed))
        .route("/inference/usage", get(usage))
}

async fn chat(State(state): State<ServiceState>, caller: ServiceCaller, body: Bytes) -> Result<Response, ApiError> {
    forward(&state, &caller, "chat", "/chat/completions", body).await
}

async fn embed(State(state): State<ServiceState>, caller: ServiceCaller, body: Bytes) -> Result<Response, ApiError> {
    forward(&state, &caller, "embed", "/embeddings", body).await
}

/// Sends `body` to the upstream's `path`, records the call, and answers what the upstream
/// answered.
async fn forward(
    state: &ServiceState,
    caller: &ServiceCaller,
    kind: &'static str,
    path: &str,
    body: Bytes,
) -> Result<Response, ApiError> {
    let app_sid = caller.app_sid.clone().ok_or_else(|| {
        ApiError::new(ErrorCode::Forbidden, "inference is available to app backends only (their `inference` interface)")
    })?;
    let upstream = state.inference.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::UpstreamError,
            "inference is not configured on this server: start it with --inference-base-url",
        )
    })?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::validation(format!("the inference request is not JSON: {e}")))?;
    let model = request.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
    if model.is_empty() {
        return Err(ApiError::validation("the inference request needs a `model`"));
    }

    let url = format!("{}{path}", upstream.base_url.trim_end_matches('/'));
    let mut builder = http::Request::post(&url).header(CONTENT_TYPE, "application/json");
    if let Some(key) = &upstream.api_key {
        let mut value = HeaderValue::try_from(format!("Bearer {key}"))
            .map_err(|_| ApiError::internal("the server's inference key is not a valid header value"))?;
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    let request = builder.body(body).map_err(|_| ApiError::internal("the inference base URL is not a URL"))?;
    let mut call =
        InferenceCall { app_sid, kind, model, status: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    // The base URL is the operator's (`--inference-base-url`), so it may be private.
    let sent =
        state.outbound.send(request, Egress::PrivateAllowed, Timeouts::uniform(TIMEOUT), MAX_RESPONSE_BYTES).await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            state.store.record_inference_call(&caller.tenant_id, call).await?;
            return Err(ApiError::new(ErrorCode::UpstreamError, format!("the inference upstream failed: {error}"))
                .with_details(serde_json::json!({ "service": "inference", "status": null })));
        }
    };
    call.status = response.status().as_u16();
    if response.status().is_success()
        && let Ok(answer) = serde_json::from_slice::<Value>(response.body())
    {
        let usage = &answer["usage"];
        let tokens = |field: &str| usage[field].as_i64().unwrap_or(0);
        call.prompt_tokens = tokens("prompt_tokens");
        call.completion_tokens = tokens("completion_tokens");
        call.total_tokens = usage["total_tokens"].as_i64().unwrap_or(call.prompt_tokens + call.completion_tokens);
        if let Some(model) = answer["model"].as_str().filter(|m| !m.is_empty()) {
            call.model = model.to_owned();
        }
    }
    state.store.record_inference_call(&caller.tenant_id, call).await?;

    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut answer = (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], response.body().clone())
        .into_response();
    if let Some(retry_after) = response.headers().get(RETRY_AFTER) {
        answer.headers_mut().insert(RETRY_AFTER, retry_after.clone());
    }
    Ok(answer)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UsageQuery {
    app_sid: Option<String>,
}

async fn usage(
    State(state): State<ServiceState>,
    caller: ServiceCaller,
    Query(query): Query<UsageQuery>,
) -> ApiResult<InferenceUsage> {
    let app_sid = caller.app_scope(query.app_sid).map_err(Invalid::into_error)?;
    Ok(ok(state.store.inference_usage(&caller.tenant_id, app_sid).await?))
}
