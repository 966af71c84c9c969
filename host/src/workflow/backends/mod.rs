//! App versions' API backends, loaded once per version and kept in a bounded [`Cache`]: a
//! `wasi:http/proxy` component pushed as `/app/backend.wasm`, with an optional
//! [`manifest`] (`/app/backend.json`: allowed outbound hosts, limits). The twin of the
//! workflow loader (`workflow::loader`): publishing validates and precompiles a backend, so
//! a broken component fails publish and the first request does not compile.

pub mod manifest;

use std::sync::Arc;

use stage_cache::{Cache, CacheLimits, CacheStats};
use stage_runtime::{Limits, Policy, PreparedBackend, Runtime};
use stage_store::apps::FileGuard;
use stage_store::{Store, StoreError, sha256_hex};

use super::Problem;

/// Where a session keeps its backend component.
pub const WASM_PATH: &str = "/app/backend.wasm";
/// Request and response bodies a backend accepts unless its manifest says otherwise.
const DEFAULT_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why a backend could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "{} is present but {WASM_PATH} is not: push the backend component too, or remove the manifest",
        manifest::MANIFEST_PATH
    )]
    ManifestWithoutComponent,
    /// The manifest has problems (every one listed).
    #[error("{} has {} problem(s)", manifest::MANIFEST_PATH, .0.len())]
    InvalidManifest(Vec<Problem>),
    #[error(
        "{WASM_PATH} is not a usable backend: {0} (a backend is a wasi:http/proxy component, e.g. a Rust crate \
         built with `cargo build --target wasm32-wasip2`)"
    )]
    NotABackend(String),
    /// A published backend could not be loaded now.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A published version's backend, ready to serve one request.
pub struct Backend {
    pub prepared: PreparedBackend,
    pub policy: Arc<Policy>,
    pub limits: Limits,
}

/// A version's backend as cached: everything but the compiled component; `None` when the
/// version has no backend.
pub struct VersionBackend(Option<BackendSettings>);

struct BackendSettings {
    hash: String,
    policy: Arc<Policy>,
    limits: Limits,
    /// Estimated bytes in memory.
    weight: u64,
}

/// Most estimated bytes of backend settings kept in memory (a backend weighs 1 KiB plus 4x
/// its manifest).
const BACKEND_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Backends of app versions, loaded once per version (a version never changes).
pub struct Backends {
    store: Store,
    runtime: Arc<Runtime>,
    defaults: Limits,
    versions: Cache<(String, i64), VersionBackend>,
}

impl Backends {
    /// Backends keeping the settings of at most `max_versions` app versions in memory.
    pub fn new(store: Store, runtime: Arc<Runtime>, max_versions: usize) -> Backends {
        let defaults =
            Limits { input_bytes: DEFAULT_BODY_BYTES, output_bytes: DEFAULT_BODY_BYTES, ..runtime.default_limits() };
        let limits = CacheLimits { max_entries: max_versions, max_weight: BACKEND_CACHE_BYTES };
        let versions = Cache::new(limits, |backend: &VersionBackend| backend.0.as_ref().map_or(0, |b| b.weight));
        Backends { store, runtime, defaults, versions }
    }

    /// The backend of an app version, `None` when the version has none.
    pub async fn of_version(&self, sid: &str, version: i64) -> Result<Option<Backend>, BackendError> {
        let cached = self
            .versions
            .get_or_load((sid.to_owned(), version), || async {
                let wasm = self.store.app_version_file(sid, version, WASM_PATH).await?;
                let manifest = self.store.app_version_file(sid, version, manifest::MANIFEST_PATH).await?;
                self.load(wasm, manifest).await
            })
            .await?;
        let Some(settings) = &cached.0 else { return Ok(None) };
        let wasm = || async {
            let bytes = self.store.app_version_file(sid, version, WASM_PATH).await?;
            bytes.map(Arc::from).ok_or_else(|| anyhow::anyhow!("{WASM_PATH} of app {sid} version {version} is gone"))
        };
        let prepared = self.runtime.prepare_backend(&settings.hash, wasm).await.map_err(|e| {
            BackendError::Unavailable(format!(
                "the backend of app {sid} (version {version}) could not be loaded: {e:#}"
            ))
        })?;
        Ok(Some(Backend { prepared, policy: settings.policy.clone(), limits: settings.limits }))
    }

    /// Checks (and precompiles) a session's backend before it is published, returning the
    /// guard that makes the publish fail if the files change in between, and the checked
    /// backend for [`Backends::published`].
    pub async fn check_session(
        &self,
        tenant_id: &str,
        session: &str,
    ) -> Result<(FileGuard, VersionBackend), BackendError> {
        let wasm = self.store.read_file(tenant_id, session, WASM_PATH, None).await?.map(|f| f.bytes);
        let manifest = self.store.read_file(tenant_id, session, manifest::MANIFEST_PATH, None).await?.map(|f| f.bytes);
        let guard = FileGuard::default()
            .expect(WASM_PATH, wasm.as_deref().map(sha256_hex))
            .expect(manifest::MANIFEST_PATH, manifest.as_deref().map(sha256_hex));
        let checked = self.load(wasm, manifest).await?;
        Ok((guard, checked))
    }

    /// Records that `checked` was published as `version` of app `sid`: it becomes that
    /// version's entry, and the app's older versions are dropped.
    pub fn published(&self, sid: &str, version: i64, checked: VersionBackend) {
        self.versions.invalidate_where(|(app, older)| app == sid && *older < version);
        self.versions.insert((sid.to_owned(), version), checked);
    }

    /// The counters of the backend settings cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.versions.stats()
    }

    /// Validates a backend's files and compiles (or finds) its component.
    async fn load(&self, wasm: Option<Vec<u8>>, manifest: Option<Vec<u8>>) -> Result<VersionBackend, BackendError> {
        let Some(wasm) = wasm else {
            if manifest.is_some() {
                return Err(BackendError::ManifestWithoutComponent);
            }
            return Ok(VersionBackend(None));
        };
        let weight = 1024 + 4 * manifest.as_ref().map_or(0, Vec::len) as u64;
        let manifest = manifest::parse(manifest.as_deref(), self.defaults, self.runtime.max_wall_time_ms())
            .map_err(BackendError::InvalidManifest)?;
        let hash = sha256_hex(&wasm);
        let wasm: Arc<[u8]> = wasm.into();
        self.runtime
            .prepare_backend(&hash, || async move { Ok(wasm) })
            .await
            .map_err(|e| BackendError::NotABackend(format!("{e:#}")))?;
        Ok(VersionBackend(Some(BackendSettings {
            hash,
            policy: Arc::new(manifest.policy),
            limits: manifest.limits,
            weight,
        })))
    }
}
