//! The `stage:platform/step` world: one fresh store and instance per invocation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::capture::{Capture, LogBook, LogLine};
use super::limits::{DeadlinePassed, Limits, MemoryLimiter, arm_deadline};
use super::outbound::{Gateway, Identity, OutboundHooks, OutboundReport, Refusal};
use super::policy::Policy;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
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

/// Per-invocation state of the store.
pub(crate) struct StepState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    limiter: MemoryLimiter,
    log: LogBook,
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl log::Host for StepState {
    fn log(&mut self, level: log::Level, message: String) {
        self.log.push(level_name(level), message);
    }
}

/// The name of a WIT log level, as run records and the server log show it.
pub(crate) fn level_name(level: log::Level) -> &'static str {
    match level {
        log::Level::Trace => "trace",
        log::Level::Debug => "debug",
        log::Level::Info => "info",
        log::Level::Warn => "warn",
        log::Level::Error => "error",
    }
}

impl types::Host for StepState {}

/// The imports a step may use: WASI (no preopens, env or sockets — see [`invoke`]),
/// wasi:http through [`OutboundHooks`], and the log.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<StepState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    log::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |state| state)?;
    types::add_to_linker::<_, HasSelf<StepState>>(&mut linker, |state| state)?;
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
    pre: &StepPre<StepState>,
    gateway: Arc<dyn Gateway>,
    allow_private: bool,
    call: StepCall,
) -> Invocation {
    let limits = call.limits;
    let stdout = Capture::new(limits.log_bytes);
    let stderr = Capture::new(limits.log_bytes);
    // No arguments, environment, preopened directories or socket addresses: the defaults
    // of the builder, spelled out where it matters.
    let wasi = WasiCtx::builder().stdout(stdout.clone()).stderr(stderr.clone()).allow_ip_name_lookup(false).build();
    let report = Arc::new(Mutex::new(OutboundReport::default()));
    let hooks = OutboundHooks {
        gateway,
        policy: call.policy,
        identity: call.identity,
        limits,
        allow_private,
        report: report.clone(),
    };
    let state = StepState {
        wasi,
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks,
        limiter: MemoryLimiter::new(limits.memory_bytes),
        log: LogBook::new(limits.log_bytes),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    let wall = limits.wall_time();
    arm_deadline(&mut store, wall);

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

    let outbound = report.lock().expect("report poisoned").clone();
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
        stdout: stdout.text(),
        stderr: stderr.text(),
        log: state.log.lines().to_vec(),
    }
}

/// Instantiates and calls a step with nothing around it (no limiter, deadline callback or
/// output capture): the baseline the runtime benchmark compares [`invoke`] against.
pub(crate) async fn invoke_bare(
    engine: &Engine,
    pre: &StepPre<StepState>,
    gateway: Arc<dyn Gateway>,
    input: &str,
) -> wasmtime::Result<String> {
    let identity = Identity { tenant_id: String::new(), app_sid: None, actor_email: None };
    let report = Arc::new(Mutex::new(OutboundReport::default()));
    let hooks = OutboundHooks {
        gateway,
        policy: Arc::default(),
        identity,
        limits: Limits::default(),
        allow_private: false,
        report,
    };
    let state = StepState {
        wasi: WasiCtx::builder().build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        hooks,
        limiter: MemoryLimiter::new(usize::MAX),
        log: LogBook::new(0),
    };
    let mut store = Store::new(engine, state);
    // Far enough never to interrupt (the deadline is added to the current epoch).
    store.set_epoch_deadline(u64::MAX / 2);
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
        Some(Refusal::Credentials(what)) => StepFailure::Credentials(what.clone()),
        None => failure,
    }
}

fn classify_trap(
    error: &wasmtime::Error,
    during_instantiation: bool,
    state: &StepState,
    limits: Limits,
) -> StepFailure {
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
