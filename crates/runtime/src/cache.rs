//! Compiled components, keyed by the SHA-256 of their bytes, with the linked forms
//! (`InstancePre`s of the step and backend worlds) made of them.
//!
//! A component is compiled once per content hash and kept in memory in a bounded
//! [`Cache`] weighed by its compiled image's bytes; the compiled artifact is also written to
//! `<data dir>/compiled/<engine hash>/<content hash>.cwasm`, so a restart, or a component
//! evicted from memory, loads it from disk instead of compiling again. The engine hash
//! changes with anything that makes artifacts incompatible (wasmtime version, settings), so
//! stale artifacts are never loaded.
//!
//! The linked forms live in the component's entry rather than in caches of their own: an
//! `InstancePre` holds its component, so a separate cache of them would keep components
//! alive that this cache had evicted, and its byte budget would bound nothing. Callers keep
//! a prepared component only for one invocation or request; what they cache longer (plugin
//! kinds, backends) names the content hash and comes back here.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::backend::BackendPre;
use super::sandbox::Sandbox;
use super::wit::StepPre;
use stage_cache::{Cache, CacheLimits, CacheStats};

/// Counters of the components' compilation, for operators and tests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStats {
    /// Components compiled from wasm bytes.
    pub compiled: u64,
    /// Components loaded from a precompiled artifact on disk.
    pub loaded_from_disk: u64,
    /// Components held in memory.
    pub in_memory: u64,
}

/// A compiled component and its linked forms, made on first use.
pub(crate) struct Compiled {
    pub component: Component,
    pub step: OnceLock<StepPre<Sandbox>>,
    pub backend: OnceLock<BackendPre>,
}

impl Compiled {
    /// Bytes of the compiled image (code and data the engine maps for it).
    fn image_bytes(&self) -> u64 {
        let range = self.component.image_range();
        (range.end as usize).saturating_sub(range.start as usize) as u64
    }
}

pub(crate) struct ComponentCache {
    engine: Engine,
    dir: PathBuf,
    components: Cache<String, Compiled>,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

impl ComponentCache {
    pub fn new(engine: Engine, root: &Path, limits: CacheLimits) -> anyhow::Result<ComponentCache> {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)?;
        Ok(ComponentCache {
            engine,
            dir,
            components: Cache::new(limits, Compiled::image_bytes),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        })
    }

    /// The compiled component whose SHA-256 is `hash`: from memory, from its artifact on
    /// disk, or compiled now from the bytes `wasm` gives (asked for only then), on a
    /// blocking thread. Concurrent callers for one hash share one load.
    pub async fn compiled<F, Fut>(&self, hash: &str, wasm: F) -> anyhow::Result<Arc<Compiled>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Arc<[u8]>>>,
    {
        self.components
            .get_or_load(hash.to_owned(), || async {
                let (engine, path) = (self.engine.clone(), self.dir.join(format!("{hash}.cwasm")));
                let from_disk = {
                    let (engine, path) = (engine.clone(), path.clone());
                    blocking(move || Ok(load_artifact(&engine, &path))).await?
                };
                let component = match from_disk {
                    Some(component) => {
                        self.loaded.fetch_add(1, Ordering::Relaxed);
                        component
                    }
                    None => {
                        let wasm = wasm().await?;
                        let component = blocking(move || compile(&engine, &path, &wasm)).await?;
                        self.compiled.fetch_add(1, Ordering::Relaxed);
                        component
                    }
                };
                anyhow::Ok(Compiled { component, step: OnceLock::new(), backend: OnceLock::new() })
            })
            .await
    }

    /// Drops the component `hash` from memory (its artifact on disk stays); users holding
    /// it keep it until they are done.
    pub fn forget(&self, hash: &str) -> bool {
        self.components.invalidate(&hash.to_owned())
    }

    pub fn stats(&self) -> ComponentStats {
        ComponentStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_disk: self.loaded.load(Ordering::Relaxed),
            in_memory: self.components.stats().entries,
        }
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.components.stats()
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| anyhow::anyhow!("compile task failed: {e}"))?
}

/// The precompiled artifact at `path`, if there is a readable one.
fn load_artifact(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    // SAFETY: the artifact was written by `Component::serialize` of an engine with the
    // same compatibility hash (it names the folder), into the server's own data folder.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(component) => Some(component),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable compiled artifact");
            None
        }
    }
}

/// Compiles `wasm` and writes its artifact to `path`.
fn compile(engine: &Engine, path: &Path, wasm: &[u8]) -> anyhow::Result<Component> {
    let component = Component::new(engine, wasm)?;
    // Unique per writer: servers may share one artifact folder.
    let temporary = path.with_extension(format!("{}.{}.tmp", std::process::id(), stage_ids::random_token(8)));
    std::fs::write(&temporary, component.serialize()?)?;
    std::fs::rename(&temporary, path)?;
    Ok(component)
}
