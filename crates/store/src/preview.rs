//! What the preview page (`/s/:id`) looks up before it knows the tenant: whose session an
//! id (a session id or the sid of the app attached to it) is; and, for an app sid, the
//! files of the app's published (active) version, which the page shows instead of the
//! session's working copy.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreResult};

/// The session a preview id names.
#[derive(Debug, Clone)]
pub struct PreviewTarget {
    pub tenant_id: String,
    pub session_id: String,
    pub app_sid: Option<String>,
    /// Which of the two the id was.
    pub named_by: NamedBy,
}

/// What a preview id named: the page of a session shows its working copy, the page of an
/// app its published version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedBy {
    Session,
    App,
}

impl PreviewTarget {
    /// The app sid when the id named the app (its page shows the published version).
    pub fn published_app(&self) -> Option<&str> {
        match self.named_by {
            NamedBy::App => self.app_sid.as_deref(),
            NamedBy::Session => None,
        }
    }
}

/// An app's active version, as its preview page needs it.
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    pub app_sid: String,
    pub version: i64,
    /// The session's render entry when the version was published; `None` when the session
    /// had not been rendered (the page uses the default entry).
    pub entry: Option<String>,
    pub published_at: i64,
    /// Each file of the version's snapshot: `(path, SHA-256 of its bytes)`, by path.
    pub files: Vec<(String, String)>,
}

impl Store {
    /// The session `id` names, in whichever tenant; `None` when none does.
    pub async fn preview_target(&self, id: &str) -> StoreResult<Option<PreviewTarget>> {
        let id = id.to_owned();
        self.read(move |c| {
            let sql = "SELECT s.tenant_id, s.id, a.sid, 0 FROM sessions s LEFT JOIN apps a ON a.session_id = s.id
                       WHERE s.id = ?1
                       UNION ALL
                       SELECT s.tenant_id, s.id, a.sid, 1 FROM apps a JOIN sessions s ON s.id = a.session_id
                       WHERE a.sid = ?1
                       LIMIT 1";
            let target = c
                .query_row(sql, [&id], |r| {
                    let named_by = if r.get::<_, i64>(3)? == 1 { NamedBy::App } else { NamedBy::Session };
                    Ok(PreviewTarget { tenant_id: r.get(0)?, session_id: r.get(1)?, app_sid: r.get(2)?, named_by })
                })
                .optional()?;
            Ok(target)
        })
        .await
    }

    /// The tenant's app `sid` at its active version: the version, its entry and its files'
    /// hashes. `None` when the tenant has no such app.
    pub async fn published_version(&self, tenant_id: &str, sid: &str) -> StoreResult<Option<PublishedVersion>> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.read(move |c| {
            let version = c
                .prepare_cached(
                    "SELECT v.version, v.entry, v.created_at, v.snapshot_id FROM apps a
                     JOIN app_versions v ON v.app_sid = a.sid AND v.version = a.active_version
                     WHERE a.sid = ?1 AND a.tenant_id = ?2",
                )?
                .query_row(params![sid, tenant_id], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?))
                })
                .optional()?;
            let Some((version, entry, published_at, snapshot_id)) = version else { return Ok(None) };
            let files = c
                .prepare_cached("SELECT path, blob_hash FROM snapshot_files WHERE snapshot_id = ?1 ORDER BY path")?
                .query_map([&snapshot_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(Some(PublishedVersion { app_sid: sid, version, entry, published_at, files }))
        })
        .await
    }

    /// Every file of the snapshot that version `version` of app `sid` pins: `(path, bytes)`,
    /// by path (empty without that version).
    pub async fn published_files(&self, sid: &str, version: i64) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let sid = sid.to_owned();
        self.read(move |c| {
            let files = c
                .prepare_cached(
                    "SELECT f.path, b.data FROM app_versions v
                     JOIN snapshot_files f ON f.snapshot_id = v.snapshot_id
                     JOIN blobs b ON b.hash = f.blob_hash
                     WHERE v.app_sid = ?1 AND v.version = ?2 ORDER BY f.path",
                )?
                .query_map(params![sid, version], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(files)
        })
        .await
    }
}
