//! The `stage:platform/step` world: one fresh store and instance per invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::capture::LogLine;
use super::limits::{DeadlinePassed, Limits};
use super::outbound::{Gateway, Identity, OutboundReport, Refusal};
use super::policy::Policy;
use super::sandbox::{Grant, Sandbox};

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "stage:platform/step",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
        require_store_data_send: true,
    });
}

pub use bindings::StepPre;
use bindings::stage::platform::{log, types};

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

/// The error classes of the WIT `step-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    InvalidInput,
    Transient,
    RateLimited,
    Unauthorized,
    Permanent,
}

/// Why an invocation produced no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// The step returned an error of this class.
    Step { class: ErrorClass, message: String, retry_after: Option<Duration> },
    /// The capability policy refused an outbound request (the message names it).
    Denied(String),
    /// An outbound limit was reached.
    OutboundLimit(String),
    /// The host could not provide credentials for a destination.
    Credentials(String),
    /// The wall-time limit passed.
    Timeout(Duration),
    /// The guest tried to grow its memory past the limit.
    MemoryExceeded { limit: usize },
    /// The output was larger than allowed.
    OutputTooLarge { limit: usize },
    /// The guest trapped (panicked, hit `unreachable`, …).
    Trap(String),
    /// The component could not be instantiated.
    Instantiate(String),
}

impl std::fmt::Display for StepFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepFailure::Step { message, .. } => write!(f, "{message}"),
            StepFailure::Denied(what) => write!(f, "capability denied: {what}"),
            StepFailure::OutboundLimit(what) => write!(f, "outbound limit reached: {what}"),
            StepFailure::Credentials(what) => write!(f, "{what}"),
            StepFailure::Timeout(limit) => write!(f, "the step ran longer than {} ms", limit.as_millis()),
            StepFailure::MemoryExceeded { limit } => {
                write!(f, "the step exceeded its memory limit of {} MiB", limit / (1024 * 1024))
            }
            StepFailure::OutputTooLarge { limit } => write!(f, "the step's output exceeds {limit} bytes"),
            StepFailure::Trap(why) => write!(f, "the step crashed: {why}"),
            StepFailure::Instantiate(why) => write!(f, "the step could not start: {why}"),
        }
    }
}

/// Everything an invocation produced.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The step's JSON output.
    pub outcome: Result<String, StepFailure>,
    pub instantiate: Duration,
    pub execute: Duration,
    pub outbound: OutboundReport,
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<LogLine>,
}

impl Invocation {
    /// An invocation that ended before its guest ran.
    pub(crate) fn failed(failure: StepFailure) -> Invocation {
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

/// The imports a step may use: WASI (no preopens, env or sockets — see [`invoke`]),
/// wasi:http through [`OutboundHooks`], and the log.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    log::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    types::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    Ok(linker)
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
        Err(_elapsed) => Err(StepFailure::Timeout(wall)),
        Ok(Err((during_instantiation, error))) => Err(classify_trap(&error, during_instantiation, state, limits)),
        Ok(Ok(Err(step_error))) => Err(refusal_or(&outbound, step_failure(step_error))),
        Ok(Ok(Ok(output))) if output.len() > limits.output_bytes => {
            Err(StepFailure::OutputTooLarge { limit: limits.output_bytes })
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

/// A refused outbound request explains a failure better than what the guest made of it.
fn refusal_or(report: &OutboundReport, failure: StepFailure) -> StepFailure {
    match &report.refused {
        Some(Refusal::Denied(what)) => StepFailure::Denied(what.clone()),
        Some(Refusal::Limit(what)) => StepFailure::OutboundLimit(what.clone()),
        // A credential source that is down for now makes the step transient (retried per
        // its policy); missing or refused credentials make it unauthorized.
        Some(Refusal::Credentials(error)) if error.transient => {
            StepFailure::Step { class: ErrorClass::Transient, message: error.message.clone(), retry_after: None }
        }
        Some(Refusal::Credentials(error)) => StepFailure::Credentials(error.message.clone()),
        None => failure,
    }
}

fn classify_trap(error: &wasmtime::Error, during_instantiation: bool, state: &Sandbox, limits: Limits) -> StepFailure {
    if error.chain().any(|cause| cause.is::<DeadlinePassed>()) {
        return StepFailure::Timeout(limits.wall_time());
    }
    if state.limiter.refused.is_some() {
        return StepFailure::MemoryExceeded { limit: limits.memory_bytes };
    }
    let report = state.hooks.report.lock().expect("report poisoned").clone();
    let message = format!("{error:#}");
    let failure = if during_instantiation { StepFailure::Instantiate(message) } else { StepFailure::Trap(message) };
    refusal_or(&report, failure)
}

fn step_failure(error: types::StepError) -> StepFailure {
    let (class, message, retry_after) = match error {
        types::StepError::InvalidInput(m) => (ErrorClass::InvalidInput, m, None),
        types::StepError::Transient(m) => (ErrorClass::Transient, m, None),
        types::StepError::RateLimited(ms) => {
            (ErrorClass::RateLimited, format!("rate limited: retry after {ms} ms"), Some(Duration::from_millis(ms)))
        }
        types::StepError::Unauthorized(m) => (ErrorClass::Unauthorized, m, None),
        types::StepError::Permanent(m) => (ErrorClass::Permanent, m, None),
    };
    StepFailure::Step { class, message, retry_after }
}
