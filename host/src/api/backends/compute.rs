//! A backend's `compute` interface: workflows and single steps of the same app version,
//! run with the identity of the caller of the backend request.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::AppState;
use crate::workflow::caller::Caller;
use crate::workflow::loader::LoadError;
use crate::workflow::plan::RunError;
use crate::workflow::runner::RunAnswer;
use crate::workflow::runs::RunOrder;
use stage_runtime::{BoxFuture, ComputeHost, ErrorClass, Failure};

/// Runs for one backend request.
pub(super) struct AppCompute {
    pub state: AppState,
    pub tenant_id: String,
    pub app_sid: String,
    pub caller: Caller,
    /// How long a workflow may run before the backend is told it is still running.
    pub wait: Duration,
}

impl ComputeHost for AppCompute {
    fn run_workflow(&self, name: String, input: String) -> BoxFuture<'static, Result<String, Failure>> {
        let (state, app_sid, caller, wait) = (self.state.clone(), self.app_sid.clone(), self.caller.clone(), self.wait);
        Box::pin(async move {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| failure(ErrorClass::InvalidInput, format!("the workflow input is not JSON: {e}")))?;
            // The run executes inside the backend request's slot.
            let order =
                RunOrder { app_sid, workflow: name, caller, input, idempotency_key: None, wait, within_slot: true };
            match state.runs.start(order).await.map_err(|error| run_failure(&error))? {
                RunAnswer::Finished { run_id, answer, .. } => Ok(json!({
                    "runId": run_id, "status": answer.status, "headers": answer.headers, "body": answer.body,
                })
                .to_string()),
                RunAnswer::Pending { run_id } => Err(failure(
                    ErrorClass::Transient,
                    format!("the workflow is still running as run {run_id}; follow it at GET /api/v1/runs/{run_id}"),
                )),
            }
        })
    }

    fn run_step(&self, kind: String, input: String) -> BoxFuture<'static, Result<String, Failure>> {
        let state = self.state.clone();
        let identity = self.caller.identity(&self.tenant_id, &self.app_sid);
        Box::pin(async move {
            let input: Value = serde_json::from_str(&input)
                .map_err(|e| failure(ErrorClass::InvalidInput, format!("the step input is not JSON: {e}")))?;
            let output = state.runs.runner().executor().run_single_step(&kind, &input, identity).await?;
            Ok(output.to_string())
        })
    }
}

fn failure(class: ErrorClass, message: String) -> Failure {
    Failure::new(class, message)
}

/// A refused run as the class a guest can act on.
fn run_failure(error: &RunError) -> Failure {
    let class = match error {
        RunError::AppNotFound(_)
        | RunError::NoWorkflows { .. }
        | RunError::WorkflowNotFound { .. }
        | RunError::InputNotObject
        | RunError::Load(LoadError::Invalid(_)) => ErrorClass::InvalidInput,
        RunError::Unauthorized(_) => ErrorClass::Unauthorized,
        RunError::Busy(busy) => {
            return Failure::Classified {
                class: ErrorClass::RateLimited,
                message: error.to_string(),
                retry_after: Some(busy.retry_after),
            };
        }
        RunError::KeyReused { run_id } => {
            return failure(ErrorClass::Permanent, format!("the run collided with run {run_id}"));
        }
        RunError::Load(LoadError::Catalog(_) | LoadError::Store(_)) | RunError::Store(_) => ErrorClass::Transient,
    };
    failure(class, error.to_string())
}
