//! A backend's `compute` interface: workflows and single steps of the same app version,
//! run with the identity of the caller of the backend request.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::AppState;
use super::super::auth::RunCaller;
use super::super::runs::prepare_run;
use crate::envelope::{ApiError, ErrorCode};
use crate::workflow::runner::{RunAnswer, RunError};
use stage_runtime::{BoxFuture, ComputeHost, ErrorClass, Failure, Identity};
use stage_store::apps::App;

/// Runs for one backend request.
pub(super) struct AppCompute {
    pub state: AppState,
    pub tenant_id: String,
    pub app: App,
    pub caller: RunCaller,
    /// How long a workflow may run before the backend is told it is still running.
    pub wait: Duration,
}

impl ComputeHost for AppCompute {
    fn run_workflow(&self, name: String, input: String) -> BoxFuture<'static, Result<String, Failure>> {
        let (state, tenant_id, app, caller, wait) =
            (self.state.clone(), self.tenant_id.clone(), self.app.clone(), self.caller.clone(), self.wait);
        Box::pin(async move {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| failure(ErrorClass::InvalidInput, format!("the workflow input is not JSON: {e}")))?;
            let (file, mut request) =
                prepare_run(&state, tenant_id, &app, name, &caller, input, None).await.map_err(api_failure)?;
            // The run executes inside the backend request's slot.
            request.within_slot = true;
            match state.runner.run(file, request, wait).await {
                Ok(RunAnswer::Finished { run_id, answer, .. }) => Ok(json!({
                    "runId": run_id, "status": answer.status, "headers": answer.headers, "body": answer.body,
                })
                .to_string()),
                Ok(RunAnswer::Pending { run_id }) => Err(failure(
                    ErrorClass::Transient,
                    format!("the workflow is still running as run {run_id}; follow it at GET /api/v1/runs/{run_id}"),
                )),
                Err(RunError::KeyReused { run_id }) => {
                    Err(failure(ErrorClass::Permanent, format!("the run collided with run {run_id}")))
                }
                Err(RunError::Busy(busy)) => Err(Failure::Classified {
                    class: ErrorClass::RateLimited,
                    message: busy.to_string(),
                    retry_after: Some(busy.retry_after),
                }),
                Err(RunError::Store(e)) => Err(failure(ErrorClass::Transient, e.to_string())),
            }
        })
    }

    fn run_step(&self, kind: String, input: String) -> BoxFuture<'static, Result<String, Failure>> {
        let state = self.state.clone();
        let identity = Identity {
            tenant_id: self.tenant_id.clone(),
            app_sid: Some(self.app.sid.clone()),
            actor_email: self.caller.auth_json()["email"].as_str().map(str::to_owned),
        };
        Box::pin(async move {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| failure(ErrorClass::InvalidInput, format!("the step input is not JSON: {e}")))?;
            let output = state.runner.executor().run_single_step(&kind, &input, identity).await?;
            Ok(output.to_string())
        })
    }
}

fn failure(class: ErrorClass, message: String) -> Failure {
    Failure::new(class, message)
}

/// A refused run request as the class a guest can act on.
fn api_failure(error: ApiError) -> Failure {
    let class = match error.code {
        ErrorCode::NotFound | ErrorCode::ValidationFailed | ErrorCode::BadRequest => ErrorClass::InvalidInput,
        ErrorCode::Unauthorized | ErrorCode::Forbidden => ErrorClass::Unauthorized,
        ErrorCode::Internal | ErrorCode::UpstreamError => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    failure(class, error.message)
}
