//! The preview page (`/s/:id`): what it shows is a *build*, the compilation of the
//! session's current files from its last render's entry ([`stage_compile`] under the
//! [`policy::preview_policy`]), or, on the page of an app sid, of the app's published
//! version from the entry recorded with it ([`Previews::build_published`]). Builds are kept
//! in a bounded cache under their fingerprint (the hash of their owner, the session or the
//! app, of the entry and of every compilable file's path and content hash). Modules are served
//! under `/s/:id/b/:build/<path>`, so a new build gets new URLs (and the browser fresh
//! module instances) while an unchanged one is cached for good. Third-party libraries come
//! from `--preview-modules-url` through the page's import map; the UI kit ([`kit`]) and
//! the `@stage/*` client modules from Stage itself.
//!
//! Also here: the page's token ([`PreviewTokens`], good for its own session's, or its own
//! app's, preview calls only) and the events the page listens to ([`RenderEvents`]: a
//! session's renders, an app's new versions).

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
use stage_store::preview::PublishedVersion;
use stage_store::sessions::{RenderOutcome, RenderProblem};

/// Builds kept in memory, and their total bytes of code.
const BUILD_CACHE_ENTRIES: usize = 256;
const BUILD_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// One compilation of a session's files (or of an app version's), as the page uses it.
#[derive(Debug)]
pub struct Build {
    /// The fingerprint it was made from: the build's id in URLs.
    pub id: String,
    /// Whose build it is: the session id, or the app sid for a published version's build.
    /// A build is served only under its owner's page.
    pub owner: String,
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
    fn from_compilation(id: String, owner: String, compilation: Compilation, report: Option<String>) -> Build {
        let modules =
            compilation.modules.into_iter().map(|m| (m.path, BuiltModule { hash: m.hash, code: m.code })).collect();
        let problems = compilation.problems;
        Build { id, owner, entry: compilation.entry, report, problems, modules }
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
        let hashes = heads.iter().filter_map(|h| h.hash.as_deref().map(|hash| (h.path.as_str(), hash)));
        let id = fingerprint(session_id, entry, hashes);
        let (tenant_id, session_id, entry) = (tenant_id.to_owned(), session_id.to_owned(), entry.to_owned());
        self.compile_cached(id, session_id.clone(), entry, || async move {
            compilable_files(store, &tenant_id, &session_id).await
        })
        .await
    }

    /// The build of `entry` from the files of an app's published version: the same
    /// compilation as a session's, owned by the app, so that it changes only when the app is
    /// published again.
    pub async fn build_published(
        &self,
        store: &Store,
        published: &PublishedVersion,
        entry: &str,
    ) -> Result<Arc<Build>, BuildError> {
        let hashes = published.files.iter().map(|(path, hash)| (path.as_str(), hash.as_str()));
        let id = fingerprint(&published.app_sid, entry, hashes);
        let (sid, version) = (published.app_sid.clone(), published.version);
        self.compile_cached(id, sid.clone(), entry.to_owned(), || async move {
            let files = store.published_files(&sid, version).await?;
            Ok(files.into_iter().filter(|(path, _)| ModuleKind::of(path).is_some()).collect())
        })
        .await
    }

    /// The build `id` from memory, or compiled from the files `load` reads.
    async fn compile_cached<L, F>(
        &self,
        id: String,
        owner: String,
        entry: String,
        load: L,
    ) -> Result<Arc<Build>, BuildError>
    where
        L: FnOnce() -> F,
        F: std::future::Future<Output = Result<BTreeMap<String, Vec<u8>>, stage_store::StoreError>>,
    {
        let policy = self.policy.clone();
        let build_id = id.clone();
        self.builds
            .get_or_load(id, || async move {
                let files = load().await?;
                tokio::task::spawn_blocking(move || {
                    let compilation = compile(&files, &entry, &policy);
                    let report = compilation.report(&files);
                    Build::from_compilation(build_id, owner, compilation, report)
                })
                .await
                .map_err(|e| BuildError::Crashed(e.to_string()))
            })
            .await
    }

    /// A build of `owner` (a session id or an app sid) still in memory, by id.
    pub async fn cached_build(&self, owner: &str, id: &str) -> Result<Arc<Build>, BuildError> {
        let unknown = id.to_owned();
        let build = self.builds.get_or_load(id.to_owned(), || async move { Err(BuildError::Unknown(unknown)) }).await?;
        if build.owner == owner { Ok(build) } else { Err(BuildError::Unknown(id.to_owned())) }
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

/// The hash of the owner (a session id or an app sid), the entry and each compilable
/// file's path and content hash (`files`): two builds with the same fingerprint are the
/// same. Builds are their owner's own.
fn fingerprint<'a>(owner: &str, entry: &str, files: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut text = format!("{}\n{owner}\n{entry}\n", env!("CARGO_PKG_VERSION"));
    for (path, hash) in files.filter(|(path, _)| ModuleKind::of(path).is_some()) {
        text.push_str(&format!("{path}\t{hash}\n"));
    }
    stage_ids::sha256_hex(text.as_bytes())[..32].to_owned()
}

/// Prefix of a preview token: apart from API keys (`stage_sk_`), so that no route taking
/// a key takes one.
pub const TOKEN_PREFIX: &str = "stage_pv_";

/// Tokens of preview pages: HMAC-SHA256 of what the page shows (a session, or an app's
/// published version) under the server's preview key (`DATA_DIR/preview-key`). A session
/// page's token is good for its own session's preview calls (render events, its render
/// error); an app page's token for its own app's events (new versions); neither for
/// anything else.
pub struct PreviewTokens {
    key: [u8; 32],
}

/// What a preview token is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope<'a> {
    /// The page of a session (by its id): the session's working copy.
    Session(&'a str),
    /// The page of an app (by its sid): its published version.
    App(&'a str),
}

impl PreviewTokens {
    pub fn token(&self, scope: TokenScope<'_>) -> String {
        use base64::Engine;
        let mac = self.mac(scope).finalize().into_bytes();
        format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `token` is the token of `scope`.
    pub fn verify(&self, token: &str, scope: TokenScope<'_>) -> bool {
        use base64::Engine;
        let Some(encoded) = token.strip_prefix(TOKEN_PREFIX) else { return false };
        let Ok(mac) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else { return false };
        self.mac(scope).verify_slice(&mac).is_ok()
    }

    fn mac(&self, scope: TokenScope<'_>) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        // Apart by domain, so that no token of one kind is one of the other.
        match scope {
            TokenScope::Session(session_id) => {
                mac.update(b"stage preview token v1\0");
                mac.update(session_id.as_bytes());
            }
            TokenScope::App(sid) => {
                mac.update(b"stage published preview token v1\0");
                mac.update(sid.as_bytes());
            }
        }
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

/// A version of an app published, as its page hears of it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishEvent {
    #[serde(skip)]
    pub app_sid: String,
    pub version: i64,
}

/// What the preview's listeners hear.
#[derive(Debug, Clone)]
pub enum PreviewEvent {
    Render(RenderEvent),
    Publish(PublishEvent),
}

impl From<RenderEvent> for PreviewEvent {
    fn from(event: RenderEvent) -> PreviewEvent {
        PreviewEvent::Render(event)
    }
}

impl From<PublishEvent> for PreviewEvent {
    fn from(event: PublishEvent) -> PreviewEvent {
        PreviewEvent::Publish(event)
    }
}

/// Every render and every published version, to whoever listens (each listener keeps its
/// session's renders, or its app's versions).
pub struct RenderEvents {
    sender: broadcast::Sender<PreviewEvent>,
}

impl RenderEvents {
    /// Events a slow listener may fall behind by before it is told to catch up.
    const BACKLOG: usize = 1024;

    fn new() -> RenderEvents {
        RenderEvents { sender: broadcast::channel(Self::BACKLOG).0 }
    }

    pub fn publish(&self, event: impl Into<PreviewEvent>) {
        // No listener is fine.
        let _ = self.sender.send(event.into());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<PreviewEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::PreviewTokens;
    use super::TokenScope::{App, Session};

    #[test]
    fn a_token_is_good_for_its_own_session_only() {
        let tokens = PreviewTokens { key: [7; 32] };
        let token = tokens.token(Session("ses_a"));
        assert!(token.starts_with("stage_pv_"));
        assert!(tokens.verify(&token, Session("ses_a")));
        assert!(!tokens.verify(&token, Session("ses_b")));
        assert!(!tokens.verify(&token, App("ses_a")));
        assert!(!PreviewTokens { key: [8; 32] }.verify(&token, Session("ses_a")));
        assert!(!tokens.verify("stage_pv_!!", Session("ses_a")));
        assert!(!tokens.verify(&token.replace("stage_pv_", "stage_sk_"), Session("ses_a")));
    }

    #[test]
    fn an_app_pages_token_is_good_for_its_own_app_only() {
        let tokens = PreviewTokens { key: [7; 32] };
        let token = tokens.token(App("app_a"));
        assert!(tokens.verify(&token, App("app_a")));
        assert!(!tokens.verify(&token, App("app_b")));
        assert!(!tokens.verify(&token, Session("app_a")));
        assert_ne!(token, tokens.token(Session("app_a")));
    }
}
