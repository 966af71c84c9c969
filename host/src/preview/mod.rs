//! The preview page (`/s/:id`): what it shows is a *build*, the compilation of the
//! session's current files from its last render's entry ([`stage_compile`] under the
//! [`policy::preview_policy`]), kept in a bounded cache under its fingerprint (the hash of
//! the entry and of every compilable file's path and content hash). Modules are served
//! under `/s/:id/b/:build/<path>`, so a new build gets new URLs (and the browser fresh
//! module instances) while an unchanged one is cached for good. Third-party libraries come
//! from `--preview-modules-url` through the page's import map; the UI kit ([`kit`]) and
//! the `@stage/*` client modules from Stage itself.
//!
//! Also here: the page's token ([`PreviewTokens`], good for its own session's preview
//! calls only) and the render events the page listens to ([`RenderEvents`]).

pub mod kit;
pub mod page;
pub mod policy;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::broadcast;

use stage_cache::{Cache, CacheLimits, CacheStats};
use stage_compile::{Compilation, ModuleKind, Policy, Problem, compile};
use stage_store::Store;
use stage_store::files::FileHead;
use stage_store::sessions::{RenderOutcome, RenderProblem};

/// Builds kept in memory, and their total bytes of code.
const BUILD_CACHE_ENTRIES: usize = 256;
const BUILD_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// One compilation of a session, as the page uses it.
#[derive(Debug)]
pub struct Build {
    /// The fingerprint it was made from: the build's id in URLs.
    pub id: String,
    pub session_id: String,
    pub entry: String,
    /// The problems as a person reads them; `None` when it compiled clean.
    pub report: Option<String>,
    /// The problems, each where it is.
    pub problems: Vec<Problem>,
    /// Compiled modules by session path.
    pub modules: HashMap<String, BuiltModule>,
}

#[derive(Debug)]
pub struct BuiltModule {
    pub hash: String,
    pub code: String,
}

impl Build {
    fn from_compilation(id: String, session_id: String, compilation: Compilation, report: Option<String>) -> Build {
        let modules =
            compilation.modules.into_iter().map(|m| (m.path, BuiltModule { hash: m.hash, code: m.code })).collect();
        let problems = compilation.problems;
        Build { id, session_id, entry: compilation.entry, report, problems, modules }
    }

    /// What a render records of this build.
    pub fn outcome(&self) -> RenderOutcome {
        let problems = self
            .problems
            .iter()
            .map(|p| RenderProblem { file: p.file.clone(), line: p.line, column: p.column, message: p.message.clone() })
            .collect();
        RenderOutcome { error: self.report.clone(), problems }
    }

    fn weight(&self) -> u64 {
        self.modules.values().map(|m| m.code.len() as u64 + 128).sum::<u64>()
            + self.report.as_ref().map_or(0, |r| r.len() as u64)
    }
}

/// The preview's shared state.
pub struct Previews {
    policy: Policy,
    pub kit: BTreeMap<&'static str, kit::KitModule>,
    builds: Cache<String, Build>,
    pub tokens: PreviewTokens,
    pub events: RenderEvents,
    /// `--preview-modules-url`, without a trailing `/`.
    pub modules_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] stage_store::StoreError),
    #[error("the compiler stopped: {0}")]
    Crashed(String),
    #[error("build {0} is not known (any more)")]
    Unknown(String),
}

impl Previews {
    pub fn new(modules_url: &str, token_key: [u8; 32]) -> anyhow::Result<Previews> {
        Ok(Previews {
            policy: policy::preview_policy(),
            kit: kit::compile_kit()?,
            builds: Cache::new(
                CacheLimits { max_entries: BUILD_CACHE_ENTRIES, max_weight: BUILD_CACHE_BYTES },
                Build::weight,
            ),
            tokens: PreviewTokens { key: token_key },
            events: RenderEvents::new(),
            modules_url: modules_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.builds.stats()
    }

    /// The policy renders are checked against.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The build of `entry` from the session's files as they are now (`heads`).
    pub async fn build(
        &self,
        store: &Store,
        tenant_id: &str,
        session_id: &str,
        entry: &str,
        heads: &[FileHead],
    ) -> Result<Arc<Build>, BuildError> {
        let id = fingerprint(session_id, entry, heads);
        let policy = self.policy.clone();
        let (tenant_id, session_id, entry) = (tenant_id.to_owned(), session_id.to_owned(), entry.to_owned());
        let build_id = id.clone();
        self.builds
            .get_or_load(id, || async move {
                let files = compilable_files(store, &tenant_id, &session_id).await?;
                tokio::task::spawn_blocking(move || {
                    let compilation = compile(&files, &entry, &policy);
                    let report = compilation.report(&files);
                    Build::from_compilation(build_id, session_id, compilation, report)
                })
                .await
                .map_err(|e| BuildError::Crashed(e.to_string()))
            })
            .await
    }

    /// A build of the session still in memory, by id.
    pub async fn cached_build(&self, session_id: &str, id: &str) -> Result<Arc<Build>, BuildError> {
        let unknown = id.to_owned();
        let build = self.builds.get_or_load(id.to_owned(), || async move { Err(BuildError::Unknown(unknown)) }).await?;
        if build.session_id == session_id { Ok(build) } else { Err(BuildError::Unknown(id.to_owned())) }
    }
}

/// The session's live files that a compilation may read, by path.
pub async fn compilable_files(
    store: &Store,
    tenant_id: &str,
    session_id: &str,
) -> Result<BTreeMap<String, Vec<u8>>, stage_store::StoreError> {
    let files = store.read_all_files(tenant_id, session_id).await?;
    Ok(files.into_iter().filter(|f| ModuleKind::of(&f.path).is_some()).map(|f| (f.path, f.bytes)).collect())
}

/// The hash of the session, the entry and each compilable file's path and content: two
/// builds with the same fingerprint are the same. Builds are the session's own.
fn fingerprint(session_id: &str, entry: &str, heads: &[FileHead]) -> String {
    let mut text = format!("{}\n{session_id}\n{entry}\n", env!("CARGO_PKG_VERSION"));
    for head in heads.iter().filter(|h| ModuleKind::of(&h.path).is_some()) {
        if let Some(hash) = &head.hash {
            text.push_str(&format!("{}\t{hash}\n", head.path));
        }
    }
    stage_ids::sha256_hex(text.as_bytes())[..32].to_owned()
}

/// Prefix of a preview token: apart from API keys (`stage_sk_`), so that no route taking
/// a key takes one.
pub const TOKEN_PREFIX: &str = "stage_pv_";

/// Tokens of preview pages: HMAC-SHA256 of the session id under the server's preview key
/// (`DATA_DIR/preview-key`). A token is good for its own session's preview calls (render
/// events, its render error) and for nothing else.
pub struct PreviewTokens {
    key: [u8; 32],
}

impl PreviewTokens {
    pub fn token(&self, session_id: &str) -> String {
        use base64::Engine;
        let mac = self.mac(session_id).finalize().into_bytes();
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `token` is the token of `session_id`.
    pub fn verify(&self, token: &str, session_id: &str) -> bool {
        use base64::Engine;
        let Some(encoded) = token.strip_prefix(TOKEN_PREFIX) else { return false };
        let Ok(mac) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else { return false };
        self.mac(session_id).verify_slice(&mac).is_ok()
    }

    fn mac(&self, session_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"stage preview token v1\0");
        mac.update(session_id.as_bytes());
        mac
    }
}

/// A render recorded, as the page (and any client) hears of it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderEvent {
    #[serde(skip)]
    pub session_id: String,
    pub entry: String,
    pub version: i64,
    pub error: Option<String>,
}

/// Every render, to whoever listens (each listener keeps its session's).
pub struct RenderEvents {
    sender: broadcast::Sender<RenderEvent>,
}

impl RenderEvents {
    /// Events a slow listener may fall behind by before it is told to catch up.
    const BACKLOG: usize = 1024;

    fn new() -> RenderEvents {
        RenderEvents { sender: broadcast::channel(Self::BACKLOG).0 }
    }

    pub fn publish(&self, event: RenderEvent) {
        // No listener is fine.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RenderEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::PreviewTokens;

    #[test]
    fn a_token_is_good_for_its_own_session_only() {
        let tokens = PreviewTokens { key: [7; 32] };
        let token = tokens.token("ses_a");
        assert!(token.starts_with("stage_pv_"));
        assert!(tokens.verify(&token, "ses_a"));
        assert!(!tokens.verify(&token, "ses_b"));
        assert!(!PreviewTokens { key: [8; 32] }.verify(&token, "ses_a"));
        assert!(!tokens.verify("stage_pv_!!", "ses_a"));
        assert!(!tokens.verify(&token.replace("stage_pv_", "stage_sk_"), "ses_a"));
    }
}
