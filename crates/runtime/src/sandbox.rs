//! The store state every guest runs in, steps and backends alike: WASI without
//! arguments, environment, preopens or sockets; wasi:http through [`OutboundHooks`]; a
//! memory limiter; bounded stdout, stderr and log; and, for backends, the embedder's
//! [`ComputeHost`]. Also the imports every guest may use ([`linker`]) and what a guest
//! that stopped failed with ([`Sandbox::classify_trap`]).

use std::sync::{Arc, Mutex};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::capture::{Capture, LogBook};
use super::failure::{Failure, Subject};
use super::limits::{DeadlinePassed, Limits, MemoryLimiter, arm_deadline};
use super::outbound::{BoxFuture, Gateway, Identity, OutboundHooks, OutboundReport};
use super::policy::Policy;
use super::wit::{log, types};

/// Workflows and steps a backend may run through its `compute` interface, supplied by the
/// embedder for each request (it knows the app version and the caller).
pub trait ComputeHost: Send + Sync + 'static {
    /// Runs workflow `name` of the app's version; the answer is `{runId, status, headers, body}`.
    fn run_workflow(&self, name: String, input: String) -> BoxFuture<'static, Result<String, Failure>>;

    /// Runs one built-in step once; the answer is its JSON output.
    fn run_step(&self, kind: String, input: String) -> BoxFuture<'static, Result<String, Failure>>;
}

/// The imports every guest may use (all a step has): WASI (no preopens, env or sockets —
/// see [`Sandbox::store`]), wasi:http through [`OutboundHooks`], and the log.
pub(crate) fn linker(engine: &Engine) -> anyhow::Result<Linker<Sandbox>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    log::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    types::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// Per-invocation state of a store.
pub(crate) struct Sandbox {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    pub hooks: OutboundHooks,
    pub limiter: MemoryLimiter,
    pub log: LogBook,
    /// What a backend's `compute` interface runs (steps have none).
    pub compute: Option<Arc<dyn ComputeHost>>,
}

/// Where an invocation's output and outbound traffic are recorded, readable after the
/// store is gone.
pub(crate) struct Recorders {
    pub stdout: Capture,
    pub stderr: Capture,
    pub report: Arc<Mutex<OutboundReport>>,
}

/// Who a guest runs for and under which policy and limits.
pub(crate) struct Grant {
    pub gateway: Arc<dyn Gateway>,
    pub policy: Arc<Policy>,
    pub identity: Identity,
    pub limits: Limits,
    pub allow_private: bool,
}

impl Sandbox {
    /// A fresh store for one invocation under `grant.limits`: memory limiter set, wall-time
    /// deadline armed, output captured.
    pub fn store(engine: &Engine, grant: Grant, compute: Option<Arc<dyn ComputeHost>>) -> (Store<Sandbox>, Recorders) {
        let limits = grant.limits;
        let recorders = Recorders {
            stdout: Capture::new(limits.log_bytes),
            stderr: Capture::new(limits.log_bytes),
            report: Arc::new(Mutex::new(OutboundReport::default())),
        };
        // No arguments, environment, preopened directories or socket addresses: the
        // defaults of the builder, spelled out where it matters.
        let wasi = WasiCtx::builder()
            .stdout(recorders.stdout.clone())
            .stderr(recorders.stderr.clone())
            .allow_ip_name_lookup(false)
            .build();
        let sandbox =
            Sandbox::new(wasi, grant, recorders.report.clone(), MemoryLimiter::new(limits.memory_bytes), compute);
        let mut store = Store::new(engine, sandbox);
        store.limiter(|sandbox| &mut sandbox.limiter);
        arm_deadline(&mut store, limits.wall_time());
        (store, recorders)
    }

    /// A store with nothing around the guest (no limiter, deadline or captured output): the
    /// baseline the runtime benchmark measures against.
    pub fn bare_store(engine: &Engine, gateway: Arc<dyn Gateway>) -> Store<Sandbox> {
        let grant = Grant {
            gateway,
            policy: Arc::default(),
            identity: Identity { tenant_id: String::new(), app_sid: None, actor_email: None },
            limits: Limits { log_bytes: 0, ..Limits::default() },
            allow_private: false,
        };
        let sandbox =
            Sandbox::new(WasiCtx::builder().build(), grant, Arc::default(), MemoryLimiter::new(usize::MAX), None);
        let mut store = Store::new(engine, sandbox);
        // Far enough never to interrupt (the deadline is added to the current epoch).
        store.set_epoch_deadline(u64::MAX / 2);
        store
    }

    fn new(
        wasi: WasiCtx,
        grant: Grant,
        report: Arc<Mutex<OutboundReport>>,
        limiter: MemoryLimiter,
        compute: Option<Arc<dyn ComputeHost>>,
    ) -> Sandbox {
        let log = LogBook::new(grant.limits.log_bytes);
        let hooks = OutboundHooks {
            gateway: grant.gateway,
            policy: grant.policy,
            identity: grant.identity,
            limits: grant.limits,
            allow_private: grant.allow_private,
            report,
        };
        Sandbox { wasi, http: WasiHttpCtx::new(), table: ResourceTable::new(), hooks, limiter, log, compute }
    }

    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Why the guest's instantiation or call failed: its deadline passed, it was refused
    /// memory, or it crashed (during instantiation: it could not start).
    pub fn classify_trap(&self, subject: Subject, error: &wasmtime::Error, during_instantiation: bool) -> Failure {
        let limits = self.hooks.limits;
        if error.chain().any(|cause| cause.is::<DeadlinePassed>()) {
            return Failure::Timeout { subject, limit: limits.wall_time() };
        }
        if self.limiter.refused.is_some() {
            return Failure::MemoryExceeded { subject, limit: limits.memory_bytes };
        }
        let why = format!("{error:#}");
        if during_instantiation { Failure::Instantiate { subject, why } } else { Failure::Trap { subject, why } }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl log::Host for Sandbox {
    fn log(&mut self, level: log::Level, message: String) {
        let level = match level {
            log::Level::Trace => "trace",
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.log.push(level, message);
    }
}

impl types::Host for Sandbox {}
