//! The formula sandbox: a component of the `stage:platform/step` world that evaluates the
//! formulas of one spreadsheet. Its input is a [`stage_formulas::Job`] as JSON, its output
//! the [`stage_formulas::Answer`] as JSON.
//!
//! Formulas are tenant code: the host runs this component like a step (a fresh instance per
//! evaluation, no imports it can use to reach anything), under memory, wall-time and output
//! limits. A formula that exhausts one of them — or recurses until the stack runs out — ends
//! this instance, not the host.

use stage_formulas::Job;
use stage_guest_sdk::bindings::stage::platform::types::{StepContext, StepError};
use stage_guest_sdk::bindings::{Guest, export_step};

struct FormulaSandbox;

impl Guest for FormulaSandbox {
    fn run(_ctx: StepContext, input: String) -> Result<String, StepError> {
        let job: Job =
            serde_json::from_str(&input).map_err(|e| StepError::InvalidInput(format!("not a formula job: {e}")))?;
        serde_json::to_string(&stage_formulas::evaluate(&job)).map_err(|e| StepError::Permanent(e.to_string()))
    }
}

export_step!(FormulaSandbox with_types_in stage_guest_sdk::bindings);
