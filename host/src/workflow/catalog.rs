//! Step kinds a tenant's workflows may use: the built-in steps and the tenant's plugins,
//! each resolved to a prepared component with its capability policy and limits.
//!
//! A plugin's manifest, policy and limits are cached per (tenant, kind) in a bounded
//! [`Cache`]; its compiled component is not held here but asked of the runtime by content
//! hash at each resolution (a hit in memory, else its artifact on disk, else its bytes from
//! the store), so that the runtime's component budget bounds every compiled component.

use std::collections::HashMap;
use std::sync::Arc;

use crate::workflow::registry::{StepManifest, builtins};
use stage_cache::{Cache, CacheLimits, CacheStats};
use stage_runtime::{Limits, Policy, PreparedStep, Runtime};
use stage_store::{Store, StoreError, sha256_hex};

use super::{StepCatalog, StepSpec};

/// A step kind ready to invoke.
#[derive(Clone)]
pub struct ResolvedStep {
    pub manifest: Arc<StepManifest>,
    pub prepared: PreparedStep,
    pub policy: Arc<Policy>,
    pub limits: Limits,
}

/// Why a kind could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown step kind {0}")]
    UnknownKind(String),
    /// The component failed to compile or link (the message says why).
    #[error("{0}")]
    Broken(String),
    #[error("{0}")]
    Store(String),
}

struct Builtin {
    manifest: Arc<StepManifest>,
    hash: String,
    wasm: Arc<[u8]>,
}

/// A tenant's plugin kind as cached: everything but the compiled component.
struct PluginKind {
    manifest: Arc<StepManifest>,
    hash: String,
    policy: Arc<Policy>,
    limits: Limits,
    /// Estimated bytes in memory.
    weight: u64,
}

/// Most estimated bytes of plugin manifests, policies and limits kept in memory (a plugin
/// weighs 1 KiB plus 4x its manifest's JSON).
const PLUGIN_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Resolves step kinds for tenants. Plugins are cached per tenant and kind until they
/// change through [`StepKinds::forget_plugin`] (or are evicted).
pub struct StepKinds {
    runtime: Arc<Runtime>,
    store: Store,
    builtins: HashMap<String, Builtin>,
    plugins: Cache<(String, String), PluginKind>,
}

impl StepKinds {
    /// Step kinds keeping at most `max_plugins` plugin kinds in memory.
    pub fn new(runtime: Arc<Runtime>, store: Store, max_plugins: usize) -> StepKinds {
        let builtins = builtins()
            .into_iter()
            .map(|step| {
                let builtin = Builtin {
                    hash: sha256_hex(step.wasm),
                    wasm: Arc::from(step.wasm),
                    manifest: Arc::new(step.manifest),
                };
                (builtin.manifest.kind.clone(), builtin)
            })
            .collect();
        let limits = CacheLimits { max_entries: max_plugins, max_weight: PLUGIN_CACHE_BYTES };
        StepKinds { runtime, store, builtins, plugins: Cache::new(limits, |plugin: &PluginKind| plugin.weight) }
    }

    /// The wall time of an invocation unless a step asks for another.
    pub fn default_wall_time(&self) -> std::time::Duration {
        self.runtime.default_limits().wall_time()
    }

    pub fn is_builtin(&self, kind: &str) -> bool {
        self.builtins.contains_key(kind)
    }

    /// The kinds `tenant_id` may use, for validating its workflow files.
    pub async fn catalog(&self, tenant_id: &str) -> Result<Catalog, ResolveError> {
        let mut specs: HashMap<String, StepSpec> =
            self.builtins.values().map(|b| (b.manifest.kind.clone(), spec_of(&b.manifest))).collect();
        for plugin in self.store.list_plugins(tenant_id).await.map_err(|e| ResolveError::Store(e.to_string()))? {
            if let Ok(manifest) = serde_json::from_value::<StepManifest>(plugin.manifest) {
                specs.insert(manifest.kind.clone(), spec_of(&manifest));
            }
        }
        Ok(Catalog { specs, max_timeout_ms: self.runtime.max_wall_time_ms() })
    }

    /// The component, policy and limits of `kind` for `tenant_id`, compiled on first use.
    pub async fn resolve(&self, tenant_id: &str, kind: &str) -> Result<ResolvedStep, ResolveError> {
        if let Some(builtin) = self.builtins.get(kind) {
            let wasm = builtin.wasm.clone();
            let prepared = self.prepare(&builtin.manifest.kind, &builtin.hash, || async move { Ok(wasm) }).await?;
            return Ok(ResolvedStep {
                policy: Arc::new(Policy::new(builtin.manifest.allow.clone())),
                limits: builtin.manifest.limits.unwrap_or(self.runtime.default_limits()),
                manifest: builtin.manifest.clone(),
                prepared,
            });
        }
        let plugin = self
            .plugins
            .get_or_load((tenant_id.to_owned(), kind.to_owned()), || self.load_plugin(tenant_id, kind))
            .await?;
        let prepared = self.prepare(kind, &plugin.hash, || self.plugin_wasm(tenant_id, kind, &plugin.hash)).await?;
        Ok(ResolvedStep {
            manifest: plugin.manifest.clone(),
            prepared,
            policy: plugin.policy.clone(),
            limits: plugin.limits,
        })
    }

    /// Compiles and links a candidate plugin component, so that a broken one is refused
    /// when it is uploaded rather than when a run needs it.
    pub async fn check_component(&self, manifest: &StepManifest, wasm: &[u8]) -> Result<(), ResolveError> {
        let wasm: Arc<[u8]> = Arc::from(wasm);
        self.prepare(&manifest.kind, &sha256_hex(&wasm), || async { Ok(wasm.clone()) }).await.map(|_| ())
    }

    /// Drops what is cached of a tenant's plugin that was replaced or deleted: its kind,
    /// and its component `previous_hash` (the hash it had) unless another plugin, of any
    /// tenant, still uses the same component.
    pub async fn forget_plugin(&self, tenant_id: &str, kind: &str, previous_hash: Option<&str>) {
        self.plugins.invalidate(&(tenant_id.to_owned(), kind.to_owned()));
        let Some(hash) = previous_hash else { return };
        if self.builtins.values().any(|builtin| builtin.hash == hash) {
            return;
        }
        match self.store.plugin_component_in_use(hash).await {
            Ok(true) => {}
            Ok(false) => {
                self.runtime.forget_component(hash);
            }
            // Left to the cache's eviction.
            Err(e) => tracing::warn!(kind, error = %e, "could not check whether a plugin's component is still used"),
        }
    }

    /// The counters of the plugin kinds cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.plugins.stats()
    }

    async fn load_plugin(&self, tenant_id: &str, kind: &str) -> Result<PluginKind, ResolveError> {
        let plugin = match self.store.get_plugin(tenant_id, kind).await {
            Ok(plugin) => plugin,
            Err(StoreError::NotFound(_)) => return Err(ResolveError::UnknownKind(kind.to_owned())),
            Err(e) => return Err(ResolveError::Store(e.to_string())),
        };
        let weight = 1024 + 4 * plugin.manifest.to_string().len() as u64;
        let manifest = serde_json::from_value::<StepManifest>(plugin.manifest)
            .map_err(|e| ResolveError::Broken(format!("plugin {kind} has an invalid manifest: {e}")))?;
        Ok(PluginKind {
            policy: Arc::new(Policy::new(manifest.allow.clone())),
            limits: manifest.limits.unwrap_or(self.runtime.default_limits()),
            manifest: Arc::new(manifest),
            hash: plugin.hash,
            weight,
        })
    }

    /// The bytes of a plugin's component, for compiling it when its artifact is missing.
    async fn plugin_wasm(&self, tenant_id: &str, kind: &str, hash: &str) -> anyhow::Result<Arc<[u8]>> {
        match self.store.plugin_component(tenant_id, kind).await? {
            Some(plugin) if plugin.hash == hash => Ok(Arc::from(plugin.wasm)),
            _ => anyhow::bail!("plugin {kind} was replaced or deleted while it was being loaded; try again"),
        }
    }

    async fn prepare<F, Fut>(&self, kind: &str, hash: &str, wasm: F) -> Result<PreparedStep, ResolveError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Arc<[u8]>>>,
    {
        self.runtime
            .prepare_step(hash, wasm)
            .await
            .map_err(|e| ResolveError::Broken(format!("the component of {kind} is not a usable step: {e:#}")))
    }
}

pub(crate) fn spec_of(manifest: &StepManifest) -> StepSpec {
    StepSpec {
        kind: manifest.kind.clone(),
        required: manifest.inputs.required.clone(),
        optional: manifest.inputs.optional.clone(),
        additional: manifest.inputs.additional,
    }
}

/// The step kinds of one tenant, for workflow validation.
pub struct Catalog {
    specs: HashMap<String, StepSpec>,
    /// The operator's ceiling on a step's `timeoutMs`.
    max_timeout_ms: u64,
}

impl StepCatalog for Catalog {
    fn spec(&self, kind: &str) -> Option<&StepSpec> {
        self.specs.get(kind)
    }

    fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.specs.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    fn max_timeout_ms(&self) -> u64 {
        self.max_timeout_ms
    }
}
