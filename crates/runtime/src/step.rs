//! The `stage:platform/step` world: one fresh store and instance per invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use super::capture::LogLine;
use super::failure::{Failure, Subject};
use super::limits::Limits;
use super::outbound::{Gateway, Identity, OutboundReport};
use super::policy::Policy;
use super::sandbox::{Grant, Sandbox};
use super::wit::{StepPre, types};

/// Where and why a step runs; passed to the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    pub run_id: String,
    pub app_sid: String,
    pub workflow: String,
    pub step_id: String,
    pub attempt: u32,
    pub idempotency_key: String,
}

/// Everything an invocation produced.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The step's JSON output.
    pub outcome: Result<String, Failure>,
    pub instantiate: Duration,
    pub execute: Duration,
    pub outbound: OutboundReport,
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<LogLine>,
}

impl Invocation {
    /// An invocation that ended before its guest ran.
    pub(crate) fn failed(failure: Failure) -> Invocation {
        Invocation {
            outcome: Err(failure),
            instantiate: Duration::ZERO,
            execute: Duration::ZERO,
            outbound: OutboundReport::default(),
            stdout: String::new(),
            stderr: String::new(),
            log: Vec::new(),
        }
    }
}

/// What an invocation is given besides the component.
pub struct StepCall {
    pub context: StepContext,
    /// The step's input, as JSON text.
    pub input: String,
    pub identity: Identity,
    pub policy: Arc<Policy>,
    pub limits: Limits,
}

/// Instantiates the step in a fresh store and runs it once.
pub(crate) async fn invoke(
    engine: &Engine,
    pre: &StepPre<Sandbox>,
    gateway: Arc<dyn Gateway>,
    allow_private: bool,
    call: StepCall,
) -> Invocation {
    let limits = call.limits;
    let wall = limits.wall_time();
    let grant = Grant { gateway, policy: call.policy, identity: call.identity, limits, allow_private };
    let (mut store, recorders) = Sandbox::store(engine, grant, None);

    let started = Instant::now();
    let context = types::StepContext {
        run_id: call.context.run_id,
        app_sid: call.context.app_sid,
        workflow: call.context.workflow,
        step_id: call.context.step_id,
        attempt: call.context.attempt,
        idempotency_key: call.context.idempotency_key,
    };
    let mut instantiate = Duration::ZERO;
    let run = async {
        let instance = pre.instantiate_async(&mut store).await.map_err(|e| (true, e))?;
        instantiate = started.elapsed();
        instance.call_run(&mut store, &context, &call.input).await.map_err(|e| (false, e))
    };
    let result = tokio::time::timeout(wall, run).await;
    let total = started.elapsed();

    let outbound = recorders.report.lock().expect("report poisoned").clone();
    let state = store.data();
    let outcome = match result {
        Err(_elapsed) => Err(Failure::Timeout { subject: Subject::Step, limit: wall }),
        Ok(Err((during_instantiation, error))) => Err(state
            .classify_trap(Subject::Step, &error, during_instantiation)
            .explained_by(outbound.refused.as_ref())),
        Ok(Ok(Err(step_error))) => Err(Failure::from_wit(step_error).explained_by(outbound.refused.as_ref())),
        Ok(Ok(Ok(output))) if output.len() > limits.output_bytes => {
            Err(Failure::OutputTooLarge { subject: Subject::Step, limit: limits.output_bytes })
        }
        Ok(Ok(Ok(output))) => Ok(output),
    };
    Invocation {
        outcome,
        instantiate,
        execute: total.saturating_sub(instantiate),
        outbound,
        stdout: recorders.stdout.text(),
        stderr: recorders.stderr.text(),
        log: state.log.lines().to_vec(),
    }
}

/// Instantiates and calls a step with nothing around it (no limiter, deadline callback or
/// output capture): the baseline the runtime benchmark compares [`invoke`] against.
pub(crate) async fn invoke_bare(
    engine: &Engine,
    pre: &StepPre<Sandbox>,
    gateway: Arc<dyn Gateway>,
    input: &str,
) -> wasmtime::Result<String> {
    let mut store = Sandbox::bare_store(engine, gateway);
    let context = types::StepContext {
        run_id: String::new(),
        app_sid: String::new(),
        workflow: String::new(),
        step_id: String::new(),
        attempt: 1,
        idempotency_key: String::new(),
    };
    let instance = pre.instantiate_async(&mut store).await?;
    instance.call_run(&mut store, &context, input).await?.map_err(|e| wasmtime::Error::msg(format!("{e:?}")))
}
