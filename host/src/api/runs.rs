//! Workflow runs: `POST /api/v1/run/:appSid/:workflow`, `GET /api/v1/runs/:runId`,
//! `GET /api/v1/stage/apps/:sid/runs`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::{Caller, RunCaller};
use crate::envelope::app_headers;
use crate::envelope::extract::{JsonBody, PathParams, Query};
use crate::envelope::{ApiError, ApiResult, ErrorCode, ok};
use crate::workflow::AuthPolicy;
use crate::workflow::WorkflowFile;
use crate::workflow::executor::{Answer, bounded_wait};
use crate::workflow::loader::LoadError;
use crate::workflow::runner::{CallerKey, RunAnswer, RunError, RunRequest};
use stage_store::apps::App;
use stage_store::runs::RunRecord;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/run/{app}/{workflow}", post(run))
        .route("/runs/{run}", get(get_run))
        .route("/stage/apps/{sid}/runs", get(list_runs))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    /// Milliseconds to wait for the run before answering 202.
    wait: Option<u64>,
}

/// Longest `Idempotency-Key` accepted (as Stripe).
const MAX_IDEMPOTENCY_KEY: usize = 255;

async fn run(
    State(state): State<AppState>,
    mut caller: RunCaller,
    PathParams((sid, name)): PathParams<(String, String)>,
    Query(query): Query<RunQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    let (tenant_id, app) = find_app_for(&state, &sid, &mut caller).await?;
    let input = body.input.unwrap_or_else(|| Value::Object(Map::new()));
    let idempotency_key = idempotency_key(&headers)?;
    let (file, request) = prepare_run(&state, tenant_id, &app, name, &caller, input, idempotency_key).await?;
    match state.runner.run(file.clone(), request, bounded_wait(query.wait)).await {
        Ok(RunAnswer::Finished { run_id, answer, replayed }) => answer_response(&sid, &run_id, answer, replayed),
        Ok(RunAnswer::Pending { run_id }) => {
            let body = json!({ "success": true, "data": { "runId": run_id, "status": "running" } });
            Ok((StatusCode::ACCEPTED, [("x-stage-run-id", run_id)], Json(body)).into_response())
        }
        Err(RunError::KeyReused { run_id }) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("Idempotency-Key was already used for a different request (run {run_id})"),
        )),
        Err(RunError::Busy(busy)) => Err(busy_error(&busy)),
        Err(RunError::Store(e)) => Err(e.into()),
    }
}

/// A tenant at its limit: 429 with `Retry-After`.
pub(super) fn busy_error(busy: &stage_runtime::Busy) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, busy.to_string()).with_retry_after(busy.retry_after)
}

/// The published app `sid` and its tenant, as `caller` may see it: a key of another
/// tenant does not see the app at all (404), and the credential-less local admin is just
/// anonymous to another tenant's app.
pub(super) async fn find_app_for(
    state: &AppState,
    sid: &str,
    caller: &mut RunCaller,
) -> Result<(String, App), ApiError> {
    let not_found = || ApiError::not_found(format!("app {sid} not found"));
    let (tenant_id, app) = state.store.find_app(sid).await?.ok_or_else(not_found)?;
    if let RunCaller::Key(principal) = &*caller
        && principal.tenant_id != tenant_id
    {
        if principal.key_id.is_some() {
            return Err(not_found());
        }
        *caller = RunCaller::Anonymous;
    }
    Ok((tenant_id, app))
}

/// Finds workflow `name` of the app's active version and checks the caller and input: the
/// run request of `POST /api/v1/run/...` and of a backend's `compute.run-workflow`.
pub(super) async fn prepare_run(
    state: &AppState,
    tenant_id: String,
    app: &App,
    name: String,
    caller: &RunCaller,
    input: Value,
    idempotency_key: Option<String>,
) -> Result<(Arc<WorkflowFile>, RunRequest), ApiError> {
    let sid = &app.sid;
    let file = state
        .workflows
        .of_version(&tenant_id, sid, app.version)
        .await
        .map_err(load_error)?
        .ok_or_else(|| ApiError::not_found(format!("app {sid} (version {}) has no workflows", app.version)))?;
    let workflow = file.workflow(&name).ok_or_else(|| {
        let known: Vec<&str> = file.workflows.keys().map(String::as_str).collect();
        ApiError::not_found(format!("workflow {name} not found in app {sid}; it has: {}", known.join(", ")))
    })?;
    if workflow.auth == AuthPolicy::Required && matches!(caller, RunCaller::Anonymous) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!("workflow {name} requires an API key or an end-user token (Authorization: Bearer …)"),
        ));
    }
    if !input.is_object() {
        return Err(ApiError::validation("input must be a JSON object"));
    }
    let mut config = Value::Object(file.config.clone());
    if let (Some(merged), Value::Object(overrides)) = (config.as_object_mut(), &app.config) {
        merged.extend(overrides.clone());
    }
    let request = RunRequest {
        tenant_id,
        app_sid: sid.clone(),
        app_name: app.name.clone(),
        app_version: app.version,
        config,
        workflow: name,
        input,
        auth: caller.auth_json(),
        idempotency_key: idempotency_key.map(|key| CallerKey { caller: caller.idempotency_scope(), key }),
        within_slot: false,
    };
    Ok((file, request))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(Some(key.to_owned()))
}

pub(super) fn load_error(error: LoadError) -> ApiError {
    match error {
        LoadError::Invalid(problems) => super::file_problems(crate::workflow::definition::FILE_PATH, &problems),
        LoadError::Catalog(e) => ApiError::internal(e.to_string()),
        LoadError::Store(e) => e.into(),
    }
}

/// A run's answer as HTTP: its status and headers, the body as JSON (or as text when a
/// `response` step set a non-JSON content type and a string body). The host frames it and
/// scopes its cookies to the app ([`app_headers::sanitize`]); an answer that is not valid
/// HTTP (the executor refuses those, so only an old record could hold one) is refused.
fn answer_response(sid: &str, run_id: &str, answer: Answer, replayed: bool) -> Result<Response, ApiError> {
    let unsendable = |why: String| {
        ApiError::new(ErrorCode::StepFailed, format!("the answer of run {run_id} cannot be sent as HTTP: {why}"))
    };
    let status = app_headers::final_status(answer.status)
        .ok_or_else(|| unsendable(format!("{} is not a final HTTP status", answer.status)))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &answer.headers {
        let value = value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string());
        let (name, value) = app_headers::check(name, &value).map_err(|invalid| unsendable(invalid.to_string()))?;
        headers.insert(name, value);
    }
    app_headers::sanitize(&mut headers, sid);
    headers.insert("x-stage-run-id", HeaderValue::try_from(run_id).expect("run ids are ASCII"));
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    let text_type = headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|t| !t.contains("json"));
    Ok(match answer.body {
        Value::String(text) if text_type => (status, headers, text).into_response(),
        body => (status, headers, Json(body)).into_response(),
    })
}

async fn get_run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(run_id): PathParams<String>,
) -> ApiResult<RunRecord> {
    Ok(ok(state.store.get_run(&caller.tenant_id, &run_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<u32>,
}

async fn list_runs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(sid): PathParams<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Vec<RunRecord>> {
    state.store.get_app(&caller.tenant_id, &sid).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    Ok(ok(state.store.list_runs(&caller.tenant_id, &sid, limit).await?))
}
