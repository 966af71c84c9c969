//! Compiled components, keyed by the SHA-256 of their bytes.
//!
//! A component is compiled once per content hash and kept in memory; the compiled
//! artifact is also written to `<data dir>/compiled/<engine hash>/<content hash>.cwasm`, so
//! a restart loads it instead of compiling again. The engine hash changes with anything
//! that makes artifacts incompatible (wasmtime version, settings), so stale artifacts are
//! never loaded.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counters of the cache's work, for operators and tests.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CacheStats {
    /// Components compiled from wasm bytes.
    pub compiled: u64,
    /// Components loaded from a precompiled artifact on disk.
    pub loaded_from_disk: u64,
    /// Components held in memory.
    pub in_memory: u64,
}

pub(crate) struct ComponentCache {
    engine: Engine,
    dir: PathBuf,
    components: Mutex<HashMap<String, Arc<OnceCell<Component>>>>,
    compiled: AtomicU64,
    loaded: AtomicU64,
}

impl ComponentCache {
    pub fn new(engine: Engine, root: &Path) -> anyhow::Result<ComponentCache> {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let dir = root.join(format!("{:016x}", hasher.finish()));
        std::fs::create_dir_all(&dir)?;
        Ok(ComponentCache {
            engine,
            dir,
            components: Mutex::default(),
            compiled: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
        })
    }

    /// The compiled component for `wasm` whose SHA-256 is `hash`: from memory, from disk, or
    /// compiled now (on a blocking thread). Concurrent callers for one hash share one compile.
    pub async fn component(&self, hash: &str, wasm: Arc<[u8]>) -> anyhow::Result<Component> {
        let cell = self.components.lock().expect("cache poisoned").entry(hash.to_owned()).or_default().clone();
        let component = cell
            .get_or_try_init(|| async {
                let (engine, path) = (self.engine.clone(), self.dir.join(format!("{hash}.cwasm")));
                let (component, from_disk) =
                    tokio::task::spawn_blocking(move || load_or_compile(&engine, &path, &wasm))
                        .await
                        .map_err(|e| anyhow::anyhow!("compile task failed: {e}"))??;
                let counter = if from_disk { &self.loaded } else { &self.compiled };
                counter.fetch_add(1, Ordering::Relaxed);
                anyhow::Ok(component)
            })
            .await?;
        Ok(component.clone())
    }

    pub fn stats(&self) -> CacheStats {
        let in_memory = self.components.lock().expect("cache poisoned").values().filter(|c| c.initialized()).count();
        CacheStats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_disk: self.loaded.load(Ordering::Relaxed),
            in_memory: in_memory as u64,
        }
    }
}

/// Loads the precompiled artifact at `path`, or compiles `wasm` and writes the artifact.
/// Returns whether it came from disk.
fn load_or_compile(engine: &Engine, path: &Path, wasm: &[u8]) -> anyhow::Result<(Component, bool)> {
    if path.exists() {
        // SAFETY: the artifact was written by `Component::serialize` of an engine with the
        // same compatibility hash (it names the folder), into the server's own data folder.
        match unsafe { Component::deserialize_file(engine, path) } {
            Ok(component) => return Ok((component, true)),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable compiled artifact"),
        }
    }
    let component = Component::new(engine, wasm)?;
    // Unique per writer: servers may share one artifact folder.
    let temporary = path.with_extension(format!("{}.{}.tmp", std::process::id(), crate::store::random_token(8)));
    std::fs::write(&temporary, component.serialize()?)?;
    std::fs::rename(&temporary, path)?;
    Ok((component, false))
}
