//! Session files: content-addressed blobs, per-path versions with tombstones, snapshots.
//!
//! A path's versions are 1, 2, … and never reused. Writing the bytes a path already holds
//! is a no-op (no new version), except through [`Store::write_file_version`], which keeps
//! every write as the Convex `writeFile` does. Deleting writes a tombstone version;
//! restoring a snapshot writes new versions, it never rewrites history.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::references::resolve;
use super::{Store, StoreError, StoreResult, new_id, now_ms, sha256_hex};

/// The newest version of a path. `hash` is `None` when that version is a tombstone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileHead {
    pub path: String,
    pub version: i64,
    pub size: i64,
    #[serde(skip)]
    pub hash: Option<String>,
    pub created_at: i64,
}

/// One file's bytes at one version.
#[derive(Debug, Clone)]
pub struct FileContent {
    /// The session's id (also when it was named by its app's sid).
    pub session_id: String,
    pub path: String,
    pub version: i64,
    pub size: i64,
    pub created_at: i64,
    pub bytes: Vec<u8>,
}

/// One entry of a path's history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRevision {
    pub version: i64,
    pub size: i64,
    pub deleted: bool,
    pub hash: Option<String>,
    pub created_at: i64,
}

/// The version a write left a path at.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WrittenFile {
    pub path: String,
    pub version: i64,
    pub size: i64,
}

/// A file to write, hashed by the caller so that hashing happens off the writer thread.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub path: String,
    pub bytes: Vec<u8>,
    hash: String,
}

impl NewFile {
    pub fn new(path: String, bytes: Vec<u8>) -> NewFile {
        let hash = sha256_hex(&bytes);
        NewFile { path, bytes, hash }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub id: String,
    pub session_id: String,
    pub name: Option<String>,
    pub file_count: i64,
    pub created_at: i64,
}

/// A snapshot with the bytes of its files, in the order the session first wrote them.
#[derive(Debug, Clone)]
pub struct SnapshotContents {
    pub snapshot: Snapshot,
    pub files: Vec<FileContent>,
}

/// What restoring a snapshot changed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Restored {
    pub snapshot_id: String,
    /// Paths given a new version holding the snapshot's bytes.
    pub restored: i64,
    /// Live paths absent from the snapshot, now tombstoned.
    pub deleted: i64,
}

impl Store {
    /// Writes all `files` in one transaction, refusing the whole write if the session
    /// would then hold more than `max_files` live files.
    pub async fn push_files(
        &self,
        tenant_id: &str,
        session: &str,
        files: Vec<NewFile>,
        max_files: usize,
    ) -> StoreResult<Vec<WrittenFile>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            write_files(c, &id, files, max_files, SameBytes::Skip)
        })
        .await
    }

    /// Writes one file as a new version, even when the path already holds these bytes.
    pub async fn write_file_version(
        &self,
        tenant_id: &str,
        session: &str,
        file: NewFile,
        max_files: usize,
    ) -> StoreResult<WrittenFile> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let written = write_files(c, &id, vec![file], max_files, SameBytes::NewVersion)?;
            written.into_iter().next().ok_or_else(|| StoreError::Internal("no file was written".into()))
        })
        .await
    }

    /// Live files of a session, ordered by path.
    pub async fn list_files(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<FileHead>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        let (id, files) = self
            .read(move |c| {
                let id = resolve(c, &tenant_id, &session)?;
                let files = live_heads(c, &id)?;
                Ok((id, files))
            })
            .await?;
        self.touch_later(id);
        Ok(files)
    }

    /// A file's bytes at `version`, or at its newest version when `None`; `None` when the
    /// path (or that version of it) holds no file.
    pub async fn read_file(
        &self,
        tenant_id: &str,
        session: &str,
        path: &str,
        version: Option<i64>,
    ) -> StoreResult<Option<FileContent>> {
        let (tenant_id, session, path) = (tenant_id.to_owned(), session.to_owned(), path.to_owned());
        let (id, content) = self
            .read(move |c| {
                let id = resolve(c, &tenant_id, &session)?;
                let row = match version {
                    None => head(c, &id, &path)?,
                    Some(version) => c
                        .prepare_cached(
                            "SELECT path, version, size, blob_hash, created_at FROM file_versions
                             WHERE session_id = ?1 AND path = ?2 AND version = ?3",
                        )?
                        .query_row(params![id, path, version], head_from_row)
                        .optional()?,
                };
                let content = row.map(|head| content(c, &id, head)).transpose()?.flatten();
                Ok((id, content))
            })
            .await?;
        self.touch_later(id);
        Ok(content)
    }

    /// Every live file of a session with its bytes, ordered by path.
    pub async fn read_all_files(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<FileContent>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        let (id, files) = self
            .read(move |c| {
                let id = resolve(c, &tenant_id, &session)?;
                let mut files = Vec::new();
                for head in live_heads(c, &id)? {
                    files.extend(content(c, &id, head)?);
                }
                Ok((id, files))
            })
            .await?;
        self.touch_later(id);
        Ok(files)
    }

    /// Every version of a path, oldest first, tombstones included.
    pub async fn file_history(&self, tenant_id: &str, session: &str, path: &str) -> StoreResult<Vec<FileRevision>> {
        let (tenant_id, session, path) = (tenant_id.to_owned(), session.to_owned(), path.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let mut stmt = c.prepare_cached(
                "SELECT version, size, blob_hash, created_at FROM file_versions
                 WHERE session_id = ?1 AND path = ?2 ORDER BY version",
            )?;
            let history: Vec<FileRevision> = stmt
                .query_map(params![id, path], |r| {
                    let hash: Option<String> = r.get(2)?;
                    Ok(FileRevision {
                        version: r.get(0)?,
                        size: r.get(1)?,
                        deleted: hash.is_none(),
                        hash,
                        created_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            if history.is_empty() {
                return Err(StoreError::NotFound(format!("file {path} not found in session {id}")));
            }
            Ok(history)
        })
        .await
    }

    /// Every version of a path holding bytes (tombstones left out), newest first.
    pub async fn file_versions(&self, tenant_id: &str, session: &str, path: &str) -> StoreResult<Vec<FileContent>> {
        let (tenant_id, session, path) = (tenant_id.to_owned(), session.to_owned(), path.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let heads: Vec<FileHead> = c
                .prepare_cached(
                    "SELECT path, version, size, blob_hash, created_at FROM file_versions
                     WHERE session_id = ?1 AND path = ?2 AND blob_hash IS NOT NULL ORDER BY version DESC",
                )?
                .query_map(params![id, path], head_from_row)?
                .collect::<Result<_, _>>()?;
            contents(c, &id, heads)
        })
        .await
    }

    /// The newest version of every live file with its bytes, in the order the session
    /// first wrote each path.
    pub async fn files_in_write_order(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<FileContent>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let heads: Vec<FileHead> = c
                .prepare_cached(
                    "SELECT h.path, h.version, h.size, h.blob_hash, h.created_at FROM
                       (SELECT path, MAX(version) AS version, size, blob_hash, created_at FROM file_versions
                        WHERE session_id = ?1 GROUP BY path) h
                     JOIN file_versions first ON first.session_id = ?1 AND first.path = h.path AND first.version = 1
                     WHERE h.blob_hash IS NOT NULL ORDER BY first.seq",
                )?
                .query_map([&id], head_from_row)?
                .collect::<Result<_, _>>()?;
            contents(c, &id, heads)
        })
        .await
    }

    /// Every version holding bytes of every path (tombstones left out), in the order they
    /// were written.
    pub async fn versions_in_write_order(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<FileHead>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let mut stmt = c.prepare_cached(
                "SELECT path, version, size, blob_hash, created_at FROM file_versions
                 WHERE session_id = ?1 AND blob_hash IS NOT NULL ORDER BY seq",
            )?;
            let rows = stmt.query_map([&id], head_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes a live file by writing a tombstone version.
    pub async fn delete_file(&self, tenant_id: &str, session: &str, path: &str) -> StoreResult<WrittenFile> {
        let (tenant_id, session, path) = (tenant_id.to_owned(), session.to_owned(), path.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let Some(FileHead { version, hash: Some(_), .. }) = head(c, &id, &path)? else {
                return Err(StoreError::NotFound(format!("file {path} not found in session {id}")));
            };
            let now = now_ms();
            insert_version(c, &id, &path, version + 1, None, 0, now)?;
            c.execute("UPDATE sessions SET last_accessed_at = ?2 WHERE id = ?1", params![id, now])?;
            Ok(WrittenFile { path, version: version + 1, size: 0 })
        })
        .await
    }

    pub async fn create_snapshot(&self, tenant_id: &str, session: &str, name: Option<String>) -> StoreResult<Snapshot> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            snapshot(c, &id, name)
        })
        .await
    }

    /// Snapshots of a session, newest first.
    pub async fn list_snapshots(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<Snapshot>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let mut stmt = c.prepare_cached(
                "SELECT id, session_id, name, file_count, created_at FROM snapshots
                 WHERE session_id = ?1 ORDER BY created_at DESC, rowid DESC",
            )?;
            let rows = stmt.query_map([&id], snapshot_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Snapshots of a session with their files' bytes, newest first.
    pub async fn snapshot_contents(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<SnapshotContents>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let snapshots: Vec<Snapshot> = c
                .prepare_cached(
                    "SELECT id, session_id, name, file_count, created_at FROM snapshots
                     WHERE session_id = ?1 ORDER BY created_at DESC, rowid DESC",
                )?
                .query_map([&id], snapshot_from_row)?
                .collect::<Result<_, _>>()?;
            let mut files = c.prepare_cached(
                "SELECT sf.path, sf.version, sf.size, sf.blob_hash, v.created_at
                 FROM snapshot_files sf
                 JOIN file_versions v ON v.session_id = ?2 AND v.path = sf.path AND v.version = sf.version
                 LEFT JOIN file_versions first ON first.session_id = ?2 AND first.path = sf.path AND first.version = 1
                 WHERE sf.snapshot_id = ?1 ORDER BY first.seq, sf.path",
            )?;
            let mut answer = Vec::with_capacity(snapshots.len());
            for snapshot in snapshots {
                let heads: Vec<FileHead> =
                    files.query_map(params![snapshot.id, id], head_from_row)?.collect::<Result<_, _>>()?;
                answer.push(SnapshotContents { files: contents(c, &id, heads)?, snapshot });
            }
            Ok(answer)
        })
        .await
    }

    /// Writes every file of a snapshot of the tenant's as a new version of its path, even
    /// when the path already holds those bytes, and leaves other paths alone (the Convex
    /// `restoreSnapshot`). Answers how many files were written, `None` when the tenant has
    /// no such snapshot.
    pub async fn restore_snapshot_versions(
        &self,
        tenant_id: &str,
        snapshot_id: &str,
        max_files: usize,
    ) -> StoreResult<Option<usize>> {
        let (tenant_id, snapshot_id) = (tenant_id.to_owned(), snapshot_id.to_owned());
        self.write(move |c| {
            let session_id: Option<String> = c
                .query_row(
                    "SELECT s.id FROM snapshots sn JOIN sessions s ON s.id = sn.session_id
                     WHERE sn.id = ?1 AND s.tenant_id = ?2",
                    params![snapshot_id, tenant_id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = session_id else { return Ok(None) };
            let wanted: Vec<(String, String, i64)> = c
                .prepare(
                    "SELECT sf.path, sf.blob_hash, sf.size FROM snapshot_files sf
                     LEFT JOIN file_versions first ON first.session_id = ?2 AND first.path = sf.path AND first.version = 1
                     WHERE sf.snapshot_id = ?1 ORDER BY first.seq, sf.path",
                )?
                .query_map(params![snapshot_id, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let now = now_ms();
            let mut live = live_count(c, &id)?;
            for (path, hash, size) in &wanted {
                let previous = head(c, &id, path)?;
                if previous.as_ref().is_none_or(|p| p.hash.is_none()) {
                    live += 1;
                }
                insert_version(c, &id, path, previous.map_or(1, |p| p.version + 1), Some(hash), *size, now)?;
            }
            check_live_count(&id, live, max_files)?;
            c.execute("UPDATE sessions SET last_accessed_at = ?2 WHERE id = ?1", params![id, now])?;
            Ok(Some(wanted.len()))
        })
        .await
    }

    /// Makes the session's live files equal to the snapshot's, writing new versions.
    pub async fn restore_snapshot(&self, tenant_id: &str, session: &str, snapshot_id: &str) -> StoreResult<Restored> {
        let (tenant_id, session, snapshot_id) = (tenant_id.to_owned(), session.to_owned(), snapshot_id.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let found = c
                .query_row(
                    "SELECT 1 FROM snapshots WHERE id = ?1 AND session_id = ?2",
                    params![snapshot_id, id],
                    |_| Ok(()),
                )
                .optional()?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("snapshot {snapshot_id} not found in session {id}")));
            }
            let now = now_ms();
            let (mut restored, mut deleted) = (0, 0);
            // Paths whose snapshot bytes differ from the live ones (or that are not live).
            let mut stmt =
                c.prepare("SELECT sf.path, sf.blob_hash, sf.size FROM snapshot_files sf WHERE sf.snapshot_id = ?1")?;
            let wanted: Vec<(String, String, i64)> =
                stmt.query_map([&snapshot_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
            for (path, hash, size) in &wanted {
                let previous = head(c, &id, path)?;
                if previous.as_ref().and_then(|p| p.hash.as_deref()) == Some(hash.as_str()) {
                    continue;
                }
                insert_version(c, &id, path, previous.map_or(1, |p| p.version + 1), Some(hash), *size, now)?;
                restored += 1;
            }
            let in_snapshot: std::collections::HashSet<&str> = wanted.iter().map(|(p, _, _)| p.as_str()).collect();
            for live in live_heads(c, &id)? {
                if !in_snapshot.contains(live.path.as_str()) {
                    insert_version(c, &id, &live.path, live.version + 1, None, 0, now)?;
                    deleted += 1;
                }
            }
            c.execute("UPDATE sessions SET last_accessed_at = ?2 WHERE id = ?1", params![id, now])?;
            Ok(Restored { snapshot_id, restored, deleted })
        })
        .await
    }
}

/// What writing the bytes a path already holds does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SameBytes {
    /// Nothing: the path stays at its version.
    Skip,
    /// A new version all the same.
    NewVersion,
}

/// Writes `files` into session `id`, refusing the whole write if the session would then
/// hold more than `max_files` live files.
fn write_files(
    c: &Connection,
    id: &str,
    files: Vec<NewFile>,
    max_files: usize,
    same: SameBytes,
) -> StoreResult<Vec<WrittenFile>> {
    let now = now_ms();
    let mut live = live_count(c, id)?;
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let previous = head(c, id, &file.path)?;
        if same == SameBytes::Skip
            && let Some(previous) = &previous
            && previous.hash.as_deref() == Some(file.hash.as_str())
        {
            written.push(WrittenFile { path: file.path, version: previous.version, size: previous.size });
            continue;
        }
        if previous.as_ref().is_none_or(|p| p.hash.is_none()) {
            live += 1;
        }
        let version = previous.map_or(1, |p| p.version + 1);
        put_blob(c, &file.hash, &file.bytes)?;
        insert_version(c, id, &file.path, version, Some(&file.hash), file.bytes.len() as i64, now)?;
        written.push(WrittenFile { path: file.path, version, size: file.bytes.len() as i64 });
    }
    check_live_count(id, live, max_files)?;
    c.execute("UPDATE sessions SET last_accessed_at = ?2 WHERE id = ?1", params![id, now])?;
    Ok(written)
}

fn check_live_count(session_id: &str, live: i64, max_files: usize) -> StoreResult<()> {
    if live > max_files as i64 {
        return Err(StoreError::Invalid(format!(
            "session {session_id} would hold {live} files; the limit is {max_files}"
        )));
    }
    Ok(())
}

/// Records the session's live files as a new snapshot.
pub(super) fn snapshot(c: &Connection, session_id: &str, name: Option<String>) -> StoreResult<Snapshot> {
    let snapshot_id = new_id("snap_");
    let now = now_ms();
    c.execute(
        "INSERT INTO snapshots (id, session_id, name, file_count, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
        params![snapshot_id, session_id, name, now],
    )?;
    let file_count = c.execute(
        "INSERT INTO snapshot_files (snapshot_id, path, version, blob_hash, size)
         SELECT ?1, path, version, blob_hash, size FROM
           (SELECT path, MAX(version) AS version, blob_hash, size FROM file_versions WHERE session_id = ?2 GROUP BY path)
         WHERE blob_hash IS NOT NULL",
        params![snapshot_id, session_id],
    )? as i64;
    c.execute("UPDATE snapshots SET file_count = ?2 WHERE id = ?1", params![snapshot_id, file_count])?;
    Ok(Snapshot { id: snapshot_id, session_id: session_id.to_owned(), name, file_count, created_at: now })
}

fn snapshot_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Snapshot> {
    Ok(Snapshot { id: r.get(0)?, session_id: r.get(1)?, name: r.get(2)?, file_count: r.get(3)?, created_at: r.get(4)? })
}

fn head_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileHead> {
    Ok(FileHead { path: r.get(0)?, version: r.get(1)?, size: r.get(2)?, hash: r.get(3)?, created_at: r.get(4)? })
}

/// The newest version of one path (possibly a tombstone).
pub(super) fn head(c: &Connection, session_id: &str, path: &str) -> StoreResult<Option<FileHead>> {
    Ok(c.prepare_cached(
        "SELECT path, version, size, blob_hash, created_at FROM file_versions
         WHERE session_id = ?1 AND path = ?2 ORDER BY version DESC LIMIT 1",
    )?
    .query_row(params![session_id, path], head_from_row)
    .optional()?)
}

/// The newest version of every live path, ordered by path.
pub(super) fn live_heads(c: &Connection, session_id: &str) -> StoreResult<Vec<FileHead>> {
    // SQLite takes the bare columns of a single-MAX() aggregate from the row holding the max.
    let mut stmt = c.prepare_cached(
        "SELECT path, version, size, blob_hash, created_at FROM
           (SELECT path, MAX(version) AS version, size, blob_hash, created_at FROM file_versions
            WHERE session_id = ?1 GROUP BY path)
         WHERE blob_hash IS NOT NULL ORDER BY path",
    )?;
    let rows = stmt.query_map([session_id], head_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The bytes of a file version; `None` for a tombstone.
fn content(c: &Connection, session_id: &str, head: FileHead) -> StoreResult<Option<FileContent>> {
    let Some(hash) = head.hash else { return Ok(None) };
    let bytes = c.prepare_cached("SELECT data FROM blobs WHERE hash = ?1")?.query_row([&hash], |r| r.get(0))?;
    Ok(Some(FileContent {
        session_id: session_id.to_owned(),
        path: head.path,
        version: head.version,
        size: head.size,
        created_at: head.created_at,
        bytes,
    }))
}

/// The bytes of each version in `heads` (tombstones dropped), in order.
fn contents(c: &Connection, session_id: &str, heads: Vec<FileHead>) -> StoreResult<Vec<FileContent>> {
    let mut files = Vec::with_capacity(heads.len());
    for head in heads {
        files.extend(content(c, session_id, head)?);
    }
    Ok(files)
}

fn live_count(c: &Connection, session_id: &str) -> StoreResult<i64> {
    Ok(c.prepare_cached(
        "SELECT COUNT(*) FROM
           (SELECT blob_hash, MAX(version) FROM file_versions WHERE session_id = ?1 GROUP BY path)
         WHERE blob_hash IS NOT NULL",
    )?
    .query_row([session_id], |r| r.get(0))?)
}

fn put_blob(c: &Connection, hash: &str, bytes: &[u8]) -> StoreResult<()> {
    c.prepare_cached("INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?1, ?2, ?3)")?.execute(params![
        hash,
        bytes.len() as i64,
        bytes
    ])?;
    Ok(())
}

fn insert_version(
    c: &Connection,
    session_id: &str,
    path: &str,
    version: i64,
    hash: Option<&str>,
    size: i64,
    now: i64,
) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO file_versions (session_id, path, version, blob_hash, size, created_at, seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT IFNULL(MAX(seq), 0) + 1 FROM file_versions WHERE session_id = ?1))",
    )?
    .execute(params![session_id, path, version, hash, size, now])?;
    Ok(())
}
