//! `@stage/compute`: run a workflow (or one built-in step) of the same app version, with
//! the identity of the backend request's caller.
//!
//! ```ignore
//! let answer = compute::run_workflow("signup", &json!({ "email": "a@example.com" }))?;
//! assert_eq!(answer.status, 200);
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::StepError;
use crate::backend::step_error;
use crate::backend_bindings::stage::platform::compute as wit;

/// What a workflow run answered: what `POST /api/v1/run/<app>/<workflow>` would answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowAnswer {
    pub run_id: String,
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: Value,
}

/// Runs workflow `name` with `input` (a JSON object).
pub fn run_workflow(name: &str, input: &Value) -> Result<WorkflowAnswer, StepError> {
    let answer = wit::run_workflow(name, &input.to_string()).map_err(step_error)?;
    serde_json::from_str(&answer).map_err(|e| StepError::Permanent(format!("unreadable workflow answer: {e}")))
}

/// Runs one built-in step (e.g. `pulse.track`) once and answers its output.
pub fn run_step(kind: &str, input: &Value) -> Result<Value, StepError> {
    let output = wit::run_step(kind, &input.to_string()).map_err(step_error)?;
    serde_json::from_str(&output).map_err(|e| StepError::Permanent(format!("unreadable step output: {e}")))
}
