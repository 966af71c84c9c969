//! Workflow runs: `POST /api/v1/run/:appSid/:workflow`, `GET /api/v1/runs/:runId`,
//! `GET /api/v1/stage/apps/:sid/runs`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::Authenticated;
use crate::envelope::app_headers;
use crate::envelope::extract::{JsonBody, PathParams, Query};
use crate::envelope::{ApiError, ApiResult, ErrorCode, ok};
use crate::workflow::caller::Caller;
use crate::workflow::executor::bounded_wait;
use crate::workflow::loader::LoadError;
use crate::workflow::outcome::{Answer, AnswerFormat, FailureReason, RunFailure, RunResult};
use crate::workflow::plan::RunError;
use crate::workflow::runner::RunAnswer;
use crate::workflow::runs::RunOrder;
use crate::workflow::template::TemplateErrorKind;
use stage_store::runs::RunErrorRecord;
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
    caller: Caller,
    PathParams((sid, name)): PathParams<(String, String)>,
    Query(query): Query<RunQuery>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RunBody>,
) -> Result<Response, ApiError> {
    let order = RunOrder {
        app_sid: sid.clone(),
        workflow: name,
        caller,
        input: body.input.unwrap_or_else(|| Value::Object(Map::new())),
        idempotency_key: idempotency_key(&headers)?,
        wait: bounded_wait(query.wait),
        within_slot: false,
    };
    match state.runs.start(order).await? {
        RunAnswer::Finished { run_id, answer, replayed } => answer_response(&sid, &run_id, answer, replayed),
        RunAnswer::Pending { run_id } => {
            let body = json!({ "success": true, "data": { "runId": run_id, "status": "running" } });
            Ok((StatusCode::ACCEPTED, [("x-stage-run-id", run_id)], Json(body)).into_response())
        }
    }
}

/// How run results read over HTTP: a `response` step's answer as it is, the outputs of a run
/// without one in the success envelope, a failure in the error envelope with the code its
/// reason has and the step it names in `details`.
pub struct RunAnswers;

impl RunAnswers {
    fn code(reason: &FailureReason) -> ErrorCode {
        match reason {
            FailureReason::WorkflowNotFound => ErrorCode::NotFound,
            FailureReason::Template(TemplateErrorKind::Invalid) => ErrorCode::ValidationFailed,
            FailureReason::Template(TemplateErrorKind::Limit) => ErrorCode::TemplateLimit,
            FailureReason::Step(failure) => failure.into(),
            FailureReason::Deadline => ErrorCode::StepTimeout,
            FailureReason::NoSlot { .. } => ErrorCode::RateLimited,
            FailureReason::Crashed | FailureReason::Interrupted => ErrorCode::Internal,
        }
    }
}

impl AnswerFormat for RunAnswers {
    fn answer(&self, run_id: &str, result: &RunResult) -> Answer {
        let failure = match result {
            RunResult::Responded(answer) => return answer.clone(),
            RunResult::Completed(outputs) => {
                let body = json!({ "success": true, "data": { "runId": run_id, "outputs": outputs } });
                return Answer { status: 200, headers: Map::new(), body };
            }
            RunResult::Failed(failure) => failure,
        };
        let code = RunAnswers::code(&failure.reason);
        let details = match (&failure.reason, &failure.step) {
            (FailureReason::Crashed | FailureReason::Interrupted, _) => json!({ "runId": run_id }),
            (_, Some(step)) => json!(step),
            (_, None) => Value::Null,
        };
        let mut headers = Map::new();
        if let FailureReason::NoSlot { retry_after } = &failure.reason {
            headers.insert("retry-after".into(), json!(retry_after.as_secs_f64().ceil().max(1.0).to_string()));
        }
        let body = json!({
            "success": false,
            "error": { "code": code.as_str(), "message": failure.message, "details": details },
        });
        Answer { status: code.status().as_u16(), headers, body }
    }

    fn error(&self, failure: &RunFailure) -> RunErrorRecord {
        RunErrorRecord { code: RunAnswers::code(&failure.reason).as_str().to_owned(), message: failure.message.clone() }
    }
}

/// Every way a run is refused, as its answer.
impl From<RunError> for ApiError {
    fn from(error: RunError) -> ApiError {
        let message = error.to_string();
        match error {
            RunError::AppNotFound(_) | RunError::NoWorkflows { .. } | RunError::WorkflowNotFound { .. } => {
                ApiError::not_found(message)
            }
            RunError::Unauthorized(_) => ApiError::new(ErrorCode::Unauthorized, message),
            RunError::InputNotObject => ApiError::validation(message),
            RunError::KeyReused { .. } => ApiError::new(ErrorCode::Conflict, message),
            RunError::Busy(busy) => ApiError::new(ErrorCode::RateLimited, message).with_retry_after(busy.retry_after),
            RunError::Load(error) => error.into(),
            RunError::Store(error) => error.into(),
        }
    }
}

/// A workflow file that cannot be used: 422 listing its problems.
impl From<LoadError> for ApiError {
    fn from(error: LoadError) -> ApiError {
        match error {
            LoadError::Invalid(problems) => super::file_problems(crate::workflow::definition::FILE_PATH, &problems),
            LoadError::Catalog(e) => ApiError::internal(e.to_string()),
            LoadError::Store(e) => e.into(),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")));
    }
    Ok(Some(key.to_owned()))
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
    Authenticated(caller): Authenticated,
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
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Vec<RunRecord>> {
    state.store.get_app(&caller.tenant_id, &sid).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    Ok(ok(state.store.list_runs(&caller.tenant_id, &sid, limit).await?))
}
