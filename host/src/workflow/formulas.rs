//! The formula sandbox: the Sheets emulator's formulas evaluated in a wasm component
//! (`guests/formulas`) on the server's runtime, one fresh instance per evaluation, under
//! the emulator's [`FormulaLimits`]. This is the runtime side of
//! [`crate::services::sheets::formulas::FormulaEvaluator`]: the services sit below the
//! runtime, so the server hands them this at start.

use std::sync::Arc;

use super::sandbox::HostSandbox;
use crate::services::sheets::formulas::{Evaluating, EvaluationFailure, FormulaEvaluator, FormulaLimits};
use stage_runtime::{Identity, Limits, Policy, Runtime, StepCall, StepContext};

/// The formula sandbox component, built from `guests/formulas` by `build.rs`.
const SANDBOX_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guests/formulas.wasm"));

pub struct FormulaSandbox {
    runtime: Arc<Runtime>,
    sandbox: HostSandbox,
}

impl FormulaSandbox {
    pub fn new(runtime: Arc<Runtime>) -> FormulaSandbox {
        FormulaSandbox { runtime, sandbox: HostSandbox::new(SANDBOX_WASM) }
    }

    async fn run(&self, tenant_id: &str, job: String, limits: FormulaLimits) -> Result<String, EvaluationFailure> {
        let sandbox = self
            .sandbox
            .prepared(&self.runtime)
            .await
            .map_err(|e| EvaluationFailure(format!("the formula sandbox is unavailable: {e:#}")))?;
        let call = StepCall {
            context: StepContext {
                run_id: String::new(),
                app_sid: String::new(),
                workflow: String::new(),
                step_id: "sheets-formulas".into(),
                attempt: 1,
                idempotency_key: String::new(),
            },
            limits: Limits {
                // The operator's ceiling on wall time applies here too.
                wall_time_ms: limits.time_ms.max(1),
                memory_bytes: limits.memory_bytes,
                outbound_requests: 0,
                outbound_bytes: 0,
                output_bytes: limits.output_bytes,
                input_bytes: job.len(),
                log_bytes: 4 * 1024,
            },
            input: job,
            identity: Identity { tenant_id: tenant_id.to_owned(), app_sid: None, actor_email: None },
            policy: Arc::new(Policy::default()),
        };
        let invocation = self.runtime.invoke_step(sandbox, call).await;
        invocation.outcome.map_err(|failure| {
            let why = super::sandbox::ended(failure, &invocation.stderr, limits.output_bytes);
            EvaluationFailure(format!("the spreadsheet's formulas {why}"))
        })
    }
}

impl FormulaEvaluator for FormulaSandbox {
    fn evaluate<'a>(&'a self, tenant_id: &'a str, job: String, limits: FormulaLimits) -> Evaluating<'a> {
        Box::pin(self.run(tenant_id, job, limits))
    }
}
