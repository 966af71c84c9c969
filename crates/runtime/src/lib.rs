//! Stage's wasm runtime: one wasmtime engine for the process, compiled components, and
//! sandboxed invocations of steps and backends, with the capability policy and the one
//! outbound HTTP client every host-made connection goes through ([`net`]).
//!
//! * One [`wasmtime::Engine`] (component model, pooling allocator, copy-on-write memory
//!   images, epoch interruption driven by a ticker thread).
//! * Components are compiled once per content hash and cached in memory (bounded, least
//!   recently used first) and on disk ([`cache`]); each gets an `InstancePre`, kept with
//!   its component, and every invocation runs in a fresh `Store`.
//! * Every invocation has limits ([`limits`]); its outbound HTTP passes the capability
//!   [`policy`] in the wasi:http `send_request` hook ([`outbound`]), which also routes
//!   requests to the embedded services or configured upstreams and injects credentials through the
//!   embedder's [`Gateway`]. Guests get no filesystem, environment or sockets.
//!
//! * Tenants share it fairly ([`admission`]), and guests run on threads of their own.
//! * An invocation that produced nothing says why in one vocabulary for steps and
//!   backends, [`Failure`], with the class it is recorded with ([`FailureClass`]); the
//!   WIT's error classes and the HTTP status table are [`ErrorClass`]'s (`stage-classes`).
//!   The WIT bindings of both worlds are generated once (`wit.rs`).
//!
//! Nothing here knows about HTTP routes or SQLite: the embedder supplies a [`Gateway`]
//! (the embedded services, credentials) and the components to run (built-in steps are the
//! embedder's too).

pub mod admission;
mod backend;
pub mod cache;
mod capture;
mod failure;
mod guests;
pub mod limits;
pub mod net;
pub mod outbound;
pub mod policy;
pub mod retry;
mod sandbox;
mod step;
mod wit;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use self::admission::{Admission, Busy, Quotas, Slot};
pub use self::backend::{BackendAnswer, BackendCall, RequestBody};
pub use self::cache::ComponentStats;
pub use self::capture::LogLine;
pub use self::failure::{DEFAULT_RATE_LIMIT_WAIT, Failure, FailureClass, FailureRecord, Subject};
pub use self::limits::Limits;
pub use self::outbound::{BoxFuture, CredentialError, Gateway, Identity, NoServices, OutboundReport, Route};
pub use self::policy::{Destination, Policy};
pub use self::sandbox::ComputeHost;
pub use self::step::{Invocation, StepCall, StepContext};
pub use stage_classes::ErrorClass;

use self::backend::BackendPre;
use self::cache::ComponentCache;
use self::guests::GuestThreads;
use self::sandbox::Sandbox;
use self::wit::StepPre;
use stage_cache::{CacheLimits, CacheStats};

/// How often the epoch advances; guests yield every few ticks and are stopped at their
/// deadline on a tick.
pub const TICK: Duration = Duration::from_millis(1);

/// Bytes of each pooled memory and table kept resident between instances.
const KEEP_RESIDENT_BYTES: usize = 4 * 1024 * 1024;

/// Instances that may be alive at once (each holds a pooled memory slot).
const MAX_CONCURRENT_INSTANCES: u32 = 256;

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where precompiled artifacts are kept.
    pub compiled_dir: PathBuf,
    /// Limits of an invocation unless a component's manifest says otherwise.
    pub default_limits: Limits,
    /// Whether destinations marked `private` may reach private addresses.
    pub allow_private_egress: bool,
    /// The longest wall time any invocation may be given, whatever its step, manifest or
    /// backend asks for (the operator's ceiling).
    pub max_wall_time_ms: u64,
    /// How tenants share the runtime.
    pub quotas: Quotas,
    /// Bounds of the compiled components kept in memory (weighed by their image bytes).
    pub components: CacheLimits,
    /// Instances kept out of the tenants' slots, for the host's own sandboxes that run
    /// beside them (the Sheets emulator's formulas, which a step's request may start).
    pub reserved_instances: u32,
}

/// The process's wasm runtime. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    step_linker: Linker<Sandbox>,
    backend_linker: Linker<Sandbox>,
    cache: ComponentCache,
    gateway: Arc<dyn Gateway>,
    admission: Admission,
    guests: GuestThreads,
    config: RuntimeConfig,
}

/// A step component ready to instantiate: its content hash names it.
#[derive(Clone)]
pub struct PreparedStep {
    pub hash: String,
    pre: StepPre<Sandbox>,
}

/// A backend component ready to serve requests: its content hash names it.
#[derive(Clone)]
pub struct PreparedBackend {
    pub hash: String,
    pre: BackendPre,
}

impl Runtime {
    pub fn new(config: RuntimeConfig, gateway: Arc<dyn Gateway>) -> anyhow::Result<Runtime> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true).epoch_interruption(true).memory_init_cow(true);
        // Guests use WASI 0.2 (synchronous calls); without the component-model-async
        // machinery every call and store is cheaper (~20% per invocation measured).
        wasm.concurrency_support(false);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
            .total_memories(MAX_CONCURRENT_INSTANCES * 2)
            .total_tables(MAX_CONCURRENT_INSTANCES * 4)
            .total_stacks(MAX_CONCURRENT_INSTANCES)
            .max_memory_size(config.default_limits.memory_bytes.max(256 * 1024 * 1024))
            // Reset a used slot by rewriting only its dirty pages (found with the kernel's
            // PAGEMAP_SCAN) and keep them resident, instead of madvise + page faults + TLB
            // shootdowns on every invocation. What lies past the resident part is
            // decommitted as soon as the instance ends: batching it would keep up to a batch
            // of freed memories resident (a tenant's guests growing to their limit on
            // purpose would hold gigabytes), for no measurable gain on the runs bench.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16)
            .decommit_batch_size(1);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm)?;

        let ticker = engine.weak();
        std::thread::Builder::new().name("stage-wasm-epoch".into()).spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;

        let cache = ComponentCache::new(engine.clone(), &config.compiled_dir, config.components)?;
        // A slot runs at most two instances at once (a backend and the step it starts).
        let slots = MAX_CONCURRENT_INSTANCES.saturating_sub(config.reserved_instances).max(2) / 2;
        let admission = Admission::new(config.quotas, slots as usize);
        // A step imports what every guest may.
        let step_linker = sandbox::linker(&engine)?;
        let backend_linker = backend::linker(&engine)?;
        let guests = GuestThreads::new()?;
        Ok(Runtime { engine, step_linker, backend_linker, cache, gateway, admission, guests, config })
    }

    /// Slots of work per tenant (runs, backend requests).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The operator's ceiling on any invocation's wall time.
    pub fn max_wall_time_ms(&self) -> u64 {
        self.config.max_wall_time_ms
    }

    /// `limits` with the wall time held to the operator's ceiling.
    fn bounded(&self, mut limits: Limits) -> Limits {
        limits.wall_time_ms = limits.wall_time_ms.min(self.config.max_wall_time_ms);
        limits
    }

    pub fn default_limits(&self) -> Limits {
        self.config.default_limits
    }

    /// Finds (or compiles) the step component whose SHA-256 is `hash` and links it against
    /// the step world. `wasm` gives its bytes, asked for only when the component is neither
    /// in memory nor in the artifact folder.
    pub async fn prepare_step<F, Fut>(&self, hash: &str, wasm: F) -> anyhow::Result<PreparedStep>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Arc<[u8]>>>,
    {
        let compiled = self.cache.compiled(hash, wasm).await?;
        let pre = linked(&compiled.step, || Ok(StepPre::new(self.step_linker.instantiate_pre(&compiled.component)?)?))?;
        Ok(PreparedStep { hash: hash.to_owned(), pre })
    }

    /// Finds (or compiles, as [`Runtime::prepare_step`]) a backend component and links it
    /// against the backend world; an error says why the component is not a usable backend.
    pub async fn prepare_backend<F, Fut>(&self, hash: &str, wasm: F) -> anyhow::Result<PreparedBackend>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Arc<[u8]>>>,
    {
        let compiled = self.cache.compiled(hash, wasm).await?;
        let pre = linked(&compiled.backend, || {
            Ok(BackendPre::new(self.backend_linker.instantiate_pre(&compiled.component)?)?)
        })?;
        Ok(PreparedBackend { hash: hash.to_owned(), pre })
    }

    /// Drops the component `hash` (and its linked forms) from memory, e.g. when the last
    /// plugin using it is deleted; its users keep it until they are done, and a later
    /// prepare loads it again from its artifact on disk.
    pub fn forget_component(&self, hash: &str) -> bool {
        self.cache.forget(hash)
    }

    /// Serves one request with a fresh instance of a prepared backend, under `call.limits`.
    pub async fn serve_backend(&self, backend: &PreparedBackend, mut call: BackendCall) -> BackendAnswer {
        call.limits = self.bounded(call.limits);
        let (engine, pre, gateway) = (self.engine.clone(), backend.pre.clone(), self.gateway.clone());
        let allow_private = self.config.allow_private_egress;
        let serving = self.guests.run(async move { backend::serve(&engine, &pre, gateway, allow_private, call).await });
        serving.await.unwrap_or_else(|panic| BackendAnswer::failed(host_failed(Subject::Backend, panic)))
    }

    /// Runs a prepared step once, in its own store, under `call.limits`.
    pub async fn invoke_step(&self, step: &PreparedStep, mut call: StepCall) -> Invocation {
        call.limits = self.bounded(call.limits);
        let (engine, pre, gateway) = (self.engine.clone(), step.pre.clone(), self.gateway.clone());
        let allow_private = self.config.allow_private_egress;
        let invoking = self.guests.run(async move { step::invoke(&engine, &pre, gateway, allow_private, call).await });
        invoking.await.unwrap_or_else(|panic| Invocation::failed(host_failed(Subject::Step, panic)))
    }

    /// A prepared step instantiated and called with nothing around it; only for the
    /// runtime benchmark's baseline.
    #[doc(hidden)]
    pub async fn invoke_bare(&self, step: &PreparedStep, input: &str) -> anyhow::Result<String> {
        Ok(step::invoke_bare(&self.engine, &step.pre, self.gateway.clone(), input).await?)
    }

    pub fn component_stats(&self) -> ComponentStats {
        self.cache.stats()
    }

    /// The counters of the in-memory component cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.cache_stats()
    }
}

/// The failure of an invocation whose host task panicked.
fn host_failed(subject: Subject, panic: tokio::task::JoinError) -> Failure {
    Failure::Trap { subject, why: format!("the host failed: {panic}") }
}

/// The linked form in `slot`, made by `link` on first use. A failed link is not kept (it
/// is cheap next to the compile, which is).
fn linked<P: Clone>(slot: &OnceLock<P>, link: impl FnOnce() -> anyhow::Result<P>) -> anyhow::Result<P> {
    if let Some(pre) = slot.get() {
        return Ok(pre.clone());
    }
    let pre = link()?;
    Ok(slot.get_or_init(|| pre).clone())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use bytes::Bytes;

    use super::*;

    /// Serves `echo.stage.internal` by echoing the request; no credentials.
    struct EchoGateway(crate::net::Outbound);

    impl Gateway for EchoGateway {
        fn outbound(&self) -> &crate::net::Outbound {
            &self.0
        }

        fn internal(
            &self,
            service: &str,
            request: http::Request<Bytes>,
            identity: &Identity,
        ) -> BoxFuture<'static, Option<http::Response<Bytes>>> {
            let answer = (service == "echo").then(|| {
                let body = serde_json::json!({ "path": request.uri().to_string(), "tenant": identity.tenant_id });
                http::Response::new(Bytes::from(body.to_string()))
            });
            Box::pin(async move { answer })
        }

        fn credentials(
            &self,
            _: &policy::Target<'_>,
            _: &Identity,
        ) -> BoxFuture<'static, Result<Vec<(http::HeaderName, http::HeaderValue)>, CredentialError>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    async fn chaos() -> anyhow::Result<Arc<[u8]>> {
        Ok(std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm"))?.into())
    }

    fn runtime(dir: &std::path::Path) -> Runtime {
        runtime_with(dir, CacheLimits { max_entries: 16, max_weight: u64::MAX })
    }

    fn runtime_with(dir: &std::path::Path, components: CacheLimits) -> Runtime {
        let config = RuntimeConfig {
            compiled_dir: dir.to_owned(),
            default_limits: Limits { wall_time_ms: 500, memory_bytes: 16 * 1024 * 1024, ..Limits::default() },
            allow_private_egress: false,
            max_wall_time_ms: 60_000,
            quotas: Quotas::default(),
            components,
            reserved_instances: 0,
        };
        Runtime::new(config, Arc::new(EchoGateway(crate::net::Outbound::new()))).unwrap()
    }

    fn call(input: serde_json::Value, policy: Policy, limits: Limits) -> StepCall {
        StepCall {
            context: StepContext {
                run_id: "run_1".into(),
                app_sid: "app_1".into(),
                workflow: "w".into(),
                step_id: "s".into(),
                attempt: 1,
                idempotency_key: "key".into(),
            },
            input: input.to_string(),
            identity: Identity { tenant_id: "t".into(), app_sid: Some("app_1".into()), actor_email: None },
            policy: Arc::new(policy),
            limits,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_and_contains_guests() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime(dir.path());
        let limits = runtime.default_limits();
        let started = Instant::now();
        let step = runtime.prepare_step("chaos", chaos).await.unwrap();
        eprintln!("compile: {:?}", started.elapsed());

        let echo = runtime
            .invoke_step(&step, call(serde_json::json!({ "mode": "echo", "n": 5 }), Policy::default(), limits))
            .await;
        let output: serde_json::Value = serde_json::from_str(echo.outcome.as_ref().unwrap()).unwrap();
        assert_eq!(output["input"]["n"], 5);
        assert_eq!(output["ctx"]["idempotencyKey"], "key");

        let started = Instant::now();
        let spin =
            runtime.invoke_step(&step, call(serde_json::json!({ "mode": "spin" }), Policy::default(), limits)).await;
        assert!(matches!(spin.outcome, Err(Failure::Timeout { .. })), "{:?}", spin.outcome);
        eprintln!("spin stopped after {:?}", started.elapsed());

        let hog =
            runtime.invoke_step(&step, call(serde_json::json!({ "mode": "hog" }), Policy::default(), limits)).await;
        assert!(matches!(hog.outcome, Err(Failure::MemoryExceeded { .. })), "{:?}", hog.outcome);

        let denied = runtime
            .invoke_step(
                &step,
                call(serde_json::json!({ "mode": "fetch", "url": "http://example.com/" }), Policy::default(), limits),
            )
            .await;
        assert!(
            matches!(&denied.outcome, Err(Failure::Denied(url)) if url.contains("example.com")),
            "{:?}",
            denied.outcome
        );

        let loopback = Policy::new(vec![
            serde_json::from_value(serde_json::json!({ "scheme": "http", "host": "127.0.0.1", "port": 9 })).unwrap(),
        ]);
        let private = runtime
            .invoke_step(
                &step,
                call(serde_json::json!({ "mode": "fetch", "url": "http://127.0.0.1:9/" }), loopback, limits),
            )
            .await;
        assert!(
            matches!(&private.outcome, Err(Failure::Denied(why)) if why.contains("non-public")),
            "{:?}",
            private.outcome
        );

        let internal = Policy::new(vec![
            serde_json::from_value(serde_json::json!({ "scheme": "http", "host": "echo.stage.internal" })).unwrap(),
        ]);
        let echoed = runtime
            .invoke_step(
                &step,
                call(
                    serde_json::json!({ "mode": "fetch", "url": "http://echo.stage.internal/x?y=1" }),
                    internal,
                    limits,
                ),
            )
            .await;
        let output: serde_json::Value = serde_json::from_str(echoed.outcome.as_ref().unwrap()).unwrap();
        assert_eq!(output["status"], 200);
        assert_eq!(output["body"], r#"{"path":"/x?y=1","tenant":"t"}"#);
        assert_eq!(echoed.outbound.requests, 1);

        let printed = runtime
            .invoke_step(&step, call(serde_json::json!({ "mode": "print", "text": "hi" }), Policy::default(), limits))
            .await;
        assert_eq!((printed.stdout.as_str(), printed.stderr.as_str()), ("hi\n", "hi\n"));
        assert_eq!(printed.log, [LogLine { level: "info", message: "hi".into() }]);

        let started = Instant::now();
        for _ in 0..100 {
            runtime
                .invoke_step(&step, call(serde_json::json!({ "mode": "echo" }), Policy::default(), limits))
                .await
                .outcome
                .unwrap();
        }
        eprintln!("echo invocation: {:?} each", started.elapsed() / 100);
        assert_eq!(runtime.component_stats(), ComponentStats { compiled: 1, loaded_from_disk: 0, in_memory: 1 });

        // A second runtime on the same folder loads the artifact instead of compiling.
        let again = self::tests::runtime(dir.path());
        again.prepare_step("chaos", chaos).await.unwrap();
        assert_eq!(again.component_stats(), ComponentStats { compiled: 0, loaded_from_disk: 1, in_memory: 1 });
    }

    #[tokio::test]
    async fn an_evicted_component_is_loaded_again_from_disk_and_its_users_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime_with(dir.path(), CacheLimits { max_entries: 1, max_weight: u64::MAX });
        let response = std::fs::read(concat!(env!("OUT_DIR"), "/steps/response.wasm")).unwrap();
        let response_wasm = || async { anyhow::Ok(Arc::<[u8]>::from(response)) };
        let held = runtime.prepare_step("chaos", chaos).await.unwrap();
        runtime.prepare_step("response", response_wasm).await.unwrap();
        assert_eq!(runtime.cache_stats().evictions, 1);
        let limits = runtime.default_limits();
        let echo = json_call(&runtime, &held, limits).await;
        assert!(echo.is_ok(), "an evicted component stays usable by its holder: {echo:?}");

        let no_bytes = || async { anyhow::bail!("the bytes are not needed: the artifact is on disk") };
        runtime.prepare_step("chaos", no_bytes).await.unwrap();
        assert_eq!(runtime.component_stats(), ComponentStats { compiled: 2, loaded_from_disk: 1, in_memory: 1 });
        assert!(runtime.cache_stats().weight > 0, "weighed by its image");

        assert!(runtime.forget_component("chaos"));
        assert_eq!(runtime.component_stats().in_memory, 0);
        let Err(missing) = runtime.prepare_step("other", no_bytes).await else { panic!("no artifact, no bytes") };
        assert!(missing.to_string().contains("not needed"), "{missing}");
        assert_eq!(runtime.cache_stats().load_failures, 1);
    }

    async fn json_call(runtime: &Runtime, step: &PreparedStep, limits: Limits) -> Result<String, Failure> {
        runtime.invoke_step(step, call(serde_json::json!({ "mode": "echo" }), Policy::default(), limits)).await.outcome
    }
}
