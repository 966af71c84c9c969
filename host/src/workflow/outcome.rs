//! How a run ended ([`RunResult`]) and what its caller is answered ([`Answer`]).
//!
//! The domain says what happened; how each result reads over HTTP (statuses, the error
//! envelope) is the API layer's, which the runner asks through [`AnswerFormat`] when a run
//! ends. The runner records the answer it gets, so that a replayed `Idempotency-Key` gets
//! the same one.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use stage_runtime::{Failure, FailureRecord};
use stage_store::runs::{RunErrorRecord, StepRecord};

use super::definition::StepDef;
use super::template::TemplateErrorKind;

/// The HTTP answer of a run: status, headers and body, as recorded for replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: Value,
}

impl Answer {
    /// A `response` step's output as the run's answer.
    pub fn from_response_step(output: &Value) -> Answer {
        Answer {
            status: output["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
            headers: output["headers"].as_object().cloned().unwrap_or_default(),
            body: output["body"].clone(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum RunResult {
    /// Its `response` step made the answer.
    Responded(Answer),
    /// It ran without a `response` step: every step's output, by label.
    Completed(Map<String, Value>),
    Failed(RunFailure),
}

/// Why a run failed.
#[derive(Debug, Clone)]
pub struct RunFailure {
    pub reason: FailureReason,
    pub message: String,
    /// The step it failed at, if any.
    pub step: Option<StepRef>,
}

/// What made a run fail.
#[derive(Debug, Clone)]
pub enum FailureReason {
    /// The version has no workflow of that name.
    WorkflowNotFound,
    /// A step's `if` or input templates did not compile, evaluate, or stay in bounds.
    Template(TemplateErrorKind),
    /// A step failed for good.
    Step(Failure),
    /// The run reached its deadline.
    Deadline,
    /// The run waited for one of its tenant's slots until its deadline.
    NoSlot { retry_after: Duration },
    /// The run's execution crashed (a host bug).
    Crashed,
    /// The server stopped while the run was in progress.
    Interrupted,
}

/// A step a failure is about: `{stepIndex, stepId, kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRef {
    pub step_index: usize,
    pub step_id: Option<String>,
    pub kind: String,
    /// The step's failure, when it failed on its own (not its templates or the deadline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureRecord>,
}

impl StepRef {
    pub fn of(step: &StepDef) -> StepRef {
        StepRef { step_index: step.index, step_id: step.id.clone(), kind: step.kind.clone(), error: None }
    }
}

impl RunResult {
    pub fn succeeded(&self) -> bool {
        !matches!(self, RunResult::Failed(_))
    }
}

/// How a run ended, with its steps' records.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub result: RunResult,
    pub steps: Vec<StepRecord>,
}

impl RunOutcome {
    pub fn failed(reason: FailureReason, message: String, step: Option<StepRef>, steps: Vec<StepRecord>) -> RunOutcome {
        RunOutcome { result: RunResult::Failed(RunFailure { reason, message, step }), steps }
    }
}

/// What a caller is answered for a run's result: the API layer's business.
pub trait AnswerFormat: Send + Sync + 'static {
    /// The answer to the caller of run `run_id` that ended with `result`.
    fn answer(&self, run_id: &str, result: &RunResult) -> Answer;

    /// The error recorded with a run that failed: the code its answer carries, and why.
    fn error(&self, failure: &RunFailure) -> RunErrorRecord;
}
