//! Apps and their immutable versions. A version pins a snapshot of the app's session, so
//! editing the session never changes what a published version runs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::files::snapshot;
use super::references::resolve;
use super::{Store, StoreError, StoreResult, new_id, now_ms};
use stage_cache::{Cache, CacheLimits, CacheStats};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub sid: String,
    pub session_id: String,
    pub name: String,
    pub description: Option<String>,
    pub config: Value,
    pub repository: Option<Value>,
    /// The newest published version, the one runs use.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppVersion {
    pub app_sid: String,
    pub version: i64,
    pub snapshot_id: String,
    pub file_count: i64,
    pub created_at: i64,
}

/// The new contents of an app's metadata; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub config: Option<Value>,
    /// `Some(None)` unlinks the repository.
    pub repository: Option<Option<Value>>,
}

/// What publishing needs besides the session.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub description: Option<String>,
    pub config: Value,
}

impl Store {
    /// Publishes a session as a new app at version 1. A session has at most one app.
    pub async fn publish_app(&self, tenant_id: &str, session: &str, app: NewApp, guard: FileGuard) -> StoreResult<App> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let session_id = resolve(c, &tenant_id, &session)?;
            guard.check(c, &session_id)?;
            if let Some(sid) = app_of_session(c, &session_id)? {
                return Err(StoreError::Conflict(format!(
                    "session {session_id} is already published as app {sid}; publish a new version with POST /api/v1/stage/apps/{sid}/versions"
                )));
            }
            let sid = new_id("app_");
            let now = now_ms();
            c.execute(
                "INSERT INTO apps (sid, tenant_id, session_id, name, description, config, active_version, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)",
                params![sid, tenant_id, session_id, app.name, app.description, app.config.to_string(), now],
            )?;
            add_version(c, &sid, &session_id)?;
            get(c, &tenant_id, &sid)
        })
        .await
    }

    /// Publishes the session's current files as the app's next version.
    pub async fn republish_app(&self, tenant_id: &str, sid: &str, guard: FileGuard) -> StoreResult<AppVersion> {
        let (tenant_id, key) = (tenant_id.to_owned(), sid.to_owned());
        let version = self
            .write(move |c| {
                let app = get(c, &tenant_id, &key)?;
                guard.check(c, &app.session_id)?;
                add_version(c, &app.sid, &app.session_id)
            })
            .await;
        self.app_cache.forget(sid);
        version
    }

    /// Apps of a tenant, newest first; with `session`, only the app attached to it.
    pub async fn list_apps(&self, tenant_id: &str, session: Option<String>) -> StoreResult<Vec<App>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let session_id = session.map(|s| resolve(c, &tenant_id, &s)).transpose()?;
            let mut stmt = c.prepare_cached(&format!(
                "{APP_SELECT} WHERE tenant_id = ?1 AND (?2 IS NULL OR session_id = ?2) ORDER BY created_at DESC, sid"
            ))?;
            let rows = stmt.query_map(params![tenant_id, session_id], app_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn get_app(&self, tenant_id: &str, sid: &str) -> StoreResult<App> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.read(move |c| get(c, &tenant_id, &sid)).await
    }

    pub async fn update_app(&self, tenant_id: &str, sid: &str, patch: AppPatch) -> StoreResult<App> {
        let updated = self.update_app_uncached(tenant_id, sid, patch).await;
        self.app_cache.forget(sid);
        updated
    }

    async fn update_app_uncached(&self, tenant_id: &str, sid: &str, patch: AppPatch) -> StoreResult<App> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.write(move |c| {
            let app = get(c, &tenant_id, &sid)?;
            let description = patch.description.unwrap_or(app.description);
            let repository = patch.repository.unwrap_or(app.repository);
            c.execute(
                "UPDATE apps SET name = ?2, description = ?3, config = ?4, repository = ?5, updated_at = ?6 WHERE sid = ?1",
                params![
                    sid,
                    patch.name.unwrap_or(app.name),
                    description,
                    patch.config.unwrap_or(app.config).to_string(),
                    repository.map(|r| r.to_string()),
                    now_ms()
                ],
            )?;
            get(c, &tenant_id, &sid)
        })
        .await
    }

    /// The versions of an app, oldest first.
    pub async fn app_versions(&self, tenant_id: &str, sid: &str) -> StoreResult<Vec<AppVersion>> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.read(move |c| {
            get(c, &tenant_id, &sid)?;
            let mut stmt = c.prepare_cached(
                "SELECT v.app_sid, v.version, v.snapshot_id, s.file_count, v.created_at
                 FROM app_versions v JOIN snapshots s ON s.id = v.snapshot_id
                 WHERE v.app_sid = ?1 ORDER BY v.version",
            )?;
            let rows = stmt.query_map([&sid], version_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Apps by sid with their tenant, filled by [`Store::find_app`] and emptied of an app
/// whenever this module changes it (which also drops a lookup in flight, so that a lookup
/// racing a change does not cache stale data). Bounded: an app weighs 1 KiB plus its
/// config's and repository's JSON.
pub(super) struct AppCache(Cache<String, (String, App)>);

/// Most apps kept, and their most estimated bytes.
const APP_CACHE_LIMITS: CacheLimits = CacheLimits { max_entries: 16 * 1024, max_weight: 64 * 1024 * 1024 };

impl Default for AppCache {
    fn default() -> AppCache {
        AppCache(Cache::new(APP_CACHE_LIMITS, |(_, app): &(String, App)| {
            let repository = app.repository.as_ref().map_or(0, |r| r.to_string().len());
            (1024 + app.config.to_string().len() + repository) as u64
        }))
    }
}

impl AppCache {
    fn forget(&self, sid: &str) {
        self.0.invalidate(&sid.to_owned());
    }
}

/// An app lookup that did not find one (not cached) or failed.
enum Lookup {
    Missing,
    Failed(StoreError),
}

impl Store {
    /// An app by sid whatever its tenant, with the tenant id (for routes addressed by app,
    /// such as runs, whose callers may be end users rather than API keys).
    pub async fn find_app(&self, sid: &str) -> StoreResult<Option<(String, App)>> {
        let found = self
            .app_cache
            .0
            .get_or_load(sid.to_owned(), || async {
                self.find_app_uncached(sid).await.map_err(Lookup::Failed)?.ok_or(Lookup::Missing)
            })
            .await;
        match found {
            Ok(entry) => Ok(Some((*entry).clone())),
            Err(Lookup::Missing) => Ok(None),
            Err(Lookup::Failed(e)) => Err(e),
        }
    }

    /// The counters of the cache of apps by sid.
    pub fn app_cache_stats(&self) -> CacheStats {
        self.app_cache.0.stats()
    }

    async fn find_app_uncached(&self, sid: &str) -> StoreResult<Option<(String, App)>> {
        let sid = sid.to_owned();
        self.read(move |c| {
            let tenant: Option<String> = c
                .prepare_cached("SELECT tenant_id FROM apps WHERE sid = ?1")?
                .query_row([&sid], |r| r.get(0))
                .optional()?;
            match tenant {
                Some(tenant) => Ok(Some((tenant.clone(), get(c, &tenant, &sid)?))),
                None => Ok(None),
            }
        })
        .await
    }

    /// The bytes of `path` in the snapshot an app version pins; `None` when absent.
    pub async fn app_version_file(&self, sid: &str, version: i64, path: &str) -> StoreResult<Option<Vec<u8>>> {
        let (sid, path) = (sid.to_owned(), path.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT b.data FROM app_versions v
                 JOIN snapshot_files f ON f.snapshot_id = v.snapshot_id AND f.path = ?3
                 JOIN blobs b ON b.hash = f.blob_hash
                 WHERE v.app_sid = ?1 AND v.version = ?2",
            )?
            .query_row(params![sid, version, path], |r| r.get(0))
            .optional()?)
        })
        .await
    }
}

/// Publishing checks files before the snapshot is taken; the guard makes sure the
/// snapshot holds exactly the bytes that were checked (else the publish is a conflict).
#[derive(Debug, Clone, Default)]
pub struct FileGuard {
    /// `(path, SHA-256 of the checked bytes or None if the file was absent)`.
    pub expected: Vec<(String, Option<String>)>,
}

impl FileGuard {
    /// Expects `path` to hold the bytes hashed to `hash` (absent when `None`).
    pub fn expect(mut self, path: &str, hash: Option<String>) -> FileGuard {
        self.expected.push((path.to_owned(), hash));
        self
    }

    /// Both guards' expectations.
    pub fn and(mut self, other: FileGuard) -> FileGuard {
        self.expected.extend(other.expected);
        self
    }

    fn check(&self, c: &Connection, session_id: &str) -> StoreResult<()> {
        for (path, expected) in &self.expected {
            let current = super::files::head(c, session_id, path)?.and_then(|head| head.hash);
            if current != *expected {
                return Err(StoreError::Conflict(format!("{path} changed while publishing; publish again")));
            }
        }
        Ok(())
    }
}

const APP_SELECT: &str =
    "SELECT sid, session_id, name, description, config, repository, active_version, created_at, updated_at FROM apps";

fn app_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<App> {
    let json = |text: String| {
        serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
    };
    Ok(App {
        sid: r.get(0)?,
        session_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        config: json(r.get(4)?)?,
        repository: r.get::<_, Option<String>>(5)?.map(json).transpose()?,
        version: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AppVersion> {
    Ok(AppVersion {
        app_sid: r.get(0)?,
        version: r.get(1)?,
        snapshot_id: r.get(2)?,
        file_count: r.get(3)?,
        created_at: r.get(4)?,
    })
}

/// The tenant's app `sid`, or `NotFound` naming it.
pub(super) fn get(c: &Connection, tenant_id: &str, sid: &str) -> StoreResult<App> {
    c.prepare_cached(&format!("{APP_SELECT} WHERE sid = ?1 AND tenant_id = ?2"))?
        .query_row(params![sid, tenant_id], app_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("app {sid} not found")))
}

fn app_of_session(c: &Connection, session_id: &str) -> StoreResult<Option<String>> {
    Ok(c.query_row("SELECT sid FROM apps WHERE session_id = ?1", [session_id], |r| r.get(0)).optional()?)
}

/// Snapshots the session and records it as the app's next (and active) version.
fn add_version(c: &Connection, sid: &str, session_id: &str) -> StoreResult<AppVersion> {
    let version: i64 = c.query_row("SELECT active_version + 1 FROM apps WHERE sid = ?1", [sid], |r| r.get(0))?;
    let snap = snapshot(c, session_id, Some(format!("{sid} v{version}")))?;
    // The entry the version's preview page shows: the one the session renders now.
    c.execute(
        "INSERT INTO app_versions (app_sid, version, snapshot_id, created_at, entry)
         VALUES (?1, ?2, ?3, ?4, (SELECT render_entry FROM sessions WHERE id = ?5))",
        params![sid, version, snap.id, snap.created_at, session_id],
    )?;
    c.execute(
        "UPDATE apps SET active_version = ?2, updated_at = ?3 WHERE sid = ?1",
        params![sid, version, snap.created_at],
    )?;
    Ok(AppVersion {
        app_sid: sid.to_owned(),
        version,
        snapshot_id: snap.id,
        file_count: snap.file_count,
        created_at: snap.created_at,
    })
}
