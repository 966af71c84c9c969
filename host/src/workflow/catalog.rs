//! Step kinds a tenant's workflows may use: the built-in steps and the tenant's plugins,
//! each resolved to a prepared component with its capability policy and limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::runtime::registry::{StepManifest, builtins};
use crate::runtime::{Limits, Policy, PreparedStep, Runtime};
use crate::store::{Store, sha256_hex};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    UnknownKind(String),
    /// The component failed to compile or link (the message says why).
    Broken(String),
    Store(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::UnknownKind(kind) => write!(f, "unknown step kind {kind}"),
            ResolveError::Broken(why) => write!(f, "{why}"),
            ResolveError::Store(why) => write!(f, "{why}"),
        }
    }
}

struct Builtin {
    manifest: Arc<StepManifest>,
    hash: String,
    wasm: Arc<[u8]>,
}

/// Resolves step kinds for tenants. Plugins are cached per tenant and kind until they
/// change through [`StepKinds::forget_plugin`].
pub struct StepKinds {
    runtime: Arc<Runtime>,
    store: Store,
    builtins: HashMap<String, Builtin>,
    plugins: Mutex<HashMap<(String, String), ResolvedStep>>,
}

impl StepKinds {
    pub fn new(runtime: Arc<Runtime>, store: Store) -> StepKinds {
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
        StepKinds { runtime, store, builtins, plugins: Mutex::default() }
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
            return self.prepare(builtin.manifest.clone(), &builtin.hash, builtin.wasm.clone()).await;
        }
        let key = (tenant_id.to_owned(), kind.to_owned());
        if let Some(resolved) = self.plugins.lock().expect("catalog poisoned").get(&key) {
            return Ok(resolved.clone());
        }
        let plugin = self
            .store
            .plugin_component(tenant_id, kind)
            .await
            .map_err(|e| ResolveError::Store(e.to_string()))?
            .ok_or_else(|| ResolveError::UnknownKind(kind.to_owned()))?;
        let manifest = serde_json::from_value::<StepManifest>(plugin.manifest)
            .map_err(|e| ResolveError::Broken(format!("plugin {kind} has an invalid manifest: {e}")))?;
        let resolved = self.prepare(Arc::new(manifest), &plugin.hash, Arc::from(plugin.wasm)).await?;
        self.plugins.lock().expect("catalog poisoned").insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Compiles and links a candidate plugin component, so that a broken one is refused
    /// when it is uploaded rather than when a run needs it.
    pub async fn check_component(&self, manifest: StepManifest, wasm: &[u8]) -> Result<(), ResolveError> {
        self.prepare(Arc::new(manifest), &sha256_hex(wasm), Arc::from(wasm)).await.map(|_| ())
    }

    /// Drops the cached resolution of a plugin that was replaced or deleted.
    pub fn forget_plugin(&self, tenant_id: &str, kind: &str) {
        self.plugins.lock().expect("catalog poisoned").remove(&(tenant_id.to_owned(), kind.to_owned()));
    }

    async fn prepare(
        &self,
        manifest: Arc<StepManifest>,
        hash: &str,
        wasm: Arc<[u8]>,
    ) -> Result<ResolvedStep, ResolveError> {
        let prepared = self.runtime.prepare_step(hash, wasm).await.map_err(|e| {
            ResolveError::Broken(format!("the component of {} is not a usable step: {e:#}", manifest.kind))
        })?;
        Ok(ResolvedStep {
            policy: Arc::new(Policy::new(manifest.allow.clone())),
            limits: manifest.limits.unwrap_or(self.runtime.default_limits()),
            manifest,
            prepared,
        })
    }
}

fn spec_of(manifest: &StepManifest) -> StepSpec {
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
