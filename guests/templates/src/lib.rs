//! The template sandbox: a component of the `stage:platform/step` world that checks and
//! evaluates workflow templates. Its input is a [`stage_templates::Job`] as JSON, its output
//! the job's [`stage_templates::Outcome`]s as a JSON array, in order.
//!
//! Templates are tenant code: the host runs this component like a step (a fresh instance
//! per evaluation, no imports it can use to reach anything), under memory, wall-time and
//! output limits. A template that exhausts one of them ends this instance, not the host.

use stage_guest_sdk::bindings::stage::platform::types::{StepContext, StepError};
use stage_guest_sdk::bindings::{Guest, export_step};
use stage_templates::Job;

struct TemplateSandbox;

impl Guest for TemplateSandbox {
    fn run(_ctx: StepContext, input: String) -> Result<String, StepError> {
        let job: Job<'_, serde_json::Value> =
            serde_json::from_str(&input).map_err(|e| StepError::InvalidInput(format!("not a template job: {e}")))?;
        let outcomes = stage_templates::run(&job);
        serde_json::to_string(&outcomes).map_err(|e| StepError::Permanent(e.to_string()))
    }
}

export_step!(TemplateSandbox with_types_in stage_guest_sdk::bindings);
