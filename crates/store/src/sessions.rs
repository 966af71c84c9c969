//! Sessions: creation, lookup by id or attached app sid, render state, Google scopes.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::files::{self, FileHead};
use super::references::{resolve, resolve_optional};
use super::{Store, StoreError, StoreResult, new_id, now_ms};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    pub created_at: i64,
    pub last_accessed_at: i64,
    pub file_count: i64,
    pub app_sid: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderState {
    pub entry: String,
    pub version: i64,
    /// What went wrong, as a person reads it: the compile problems, or what the preview
    /// page reported; `None` when nothing did.
    pub error: Option<String>,
    /// The compile problems of the render, each where it is.
    pub problems: Vec<RenderProblem>,
    pub rendered_at: i64,
}

/// A problem a render's compilation found, as recorded; `line` and `column` (1-based) are
/// `None` for a problem about a whole file (a missing entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderProblem {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

/// What a render found: the error text and the problems it is made of.
#[derive(Debug, Clone, Default)]
pub struct RenderOutcome {
    pub error: Option<String>,
    pub problems: Vec<RenderProblem>,
}

/// Reads the stored problems column (NULL before migration 10: none).
fn problems_column(text: Option<String>) -> rusqlite::Result<Vec<RenderProblem>> {
    match text {
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))),
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleScopes {
    pub scopes: Vec<String>,
    pub updated_at: i64,
}

/// A session as a record: its id (an app sid given for it is resolved) and its times.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: String,
    pub created_at: i64,
    pub last_accessed_at: i64,
}

/// A session's render state as a record of its own.
#[derive(Debug, Clone)]
pub struct RenderRecord {
    pub session_id: String,
    pub state: RenderState,
    /// When the session was first rendered.
    pub created_at: i64,
}

/// Everything `status` reports about a session.
#[derive(Debug, Clone)]
pub struct SessionStatus {
    pub created_at: i64,
    pub last_accessed_at: i64,
    pub render: Option<RenderState>,
    /// Live files (tombstoned paths omitted), ordered by path.
    pub files: Vec<FileHead>,
}

/// Last-access times are refreshed by reads at most this often, to spare the writer.
const TOUCH_INTERVAL_MS: i64 = 1_000;

impl Store {
    pub async fn create_session(&self, tenant_id: &str) -> StoreResult<String> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            let id = new_id("ses_");
            let now = now_ms();
            c.execute(
                "INSERT INTO sessions (id, tenant_id, created_at, last_accessed_at) VALUES (?1, ?2, ?3, ?3)",
                params![id, tenant_id, now],
            )?;
            Ok(id)
        })
        .await
    }

    pub async fn list_sessions(&self, tenant_id: &str) -> StoreResult<Vec<SessionSummary>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT s.id, s.created_at, s.last_accessed_at, a.sid,
                        (SELECT COUNT(*) FROM (SELECT blob_hash, MAX(version) FROM file_versions
                                               WHERE session_id = s.id GROUP BY path)
                         WHERE blob_hash IS NOT NULL)
                 FROM sessions s LEFT JOIN apps a ON a.session_id = s.id
                 WHERE s.tenant_id = ?1 ORDER BY s.created_at DESC, s.id",
            )?;
            let rows = stmt.query_map([&tenant_id], |r| {
                Ok(SessionSummary {
                    id: r.get(0)?,
                    created_at: r.get(1)?,
                    last_accessed_at: r.get(2)?,
                    app_sid: r.get(3)?,
                    file_count: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes a session with its files and snapshots. A session published as an app is
    /// kept (its versions pin snapshots of it): that is a conflict.
    pub async fn delete_session(&self, tenant_id: &str, session: &str) -> StoreResult<String> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let app: Option<String> =
                c.query_row("SELECT sid FROM apps WHERE session_id = ?1", [&id], |r| r.get(0)).optional()?;
            if let Some(sid) = app {
                return Err(StoreError::Conflict(format!(
                    "session {id} is published as app {sid}; its versions run from this session's snapshots"
                )));
            }
            let hashes: Vec<String> = c
                .prepare(
                    "SELECT DISTINCT blob_hash FROM file_versions WHERE session_id = ?1 AND blob_hash IS NOT NULL",
                )?
                .query_map([&id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            c.execute("DELETE FROM sessions WHERE id = ?1", [&id])?;
            let mut unreferenced = c.prepare_cached(
                "DELETE FROM blobs WHERE hash = ?1
                 AND NOT EXISTS (SELECT 1 FROM file_versions WHERE blob_hash = ?1)",
            )?;
            for hash in hashes {
                unreferenced.execute([hash])?;
            }
            Ok(id)
        })
        .await
    }

    pub async fn session_status(&self, tenant_id: &str, session: &str) -> StoreResult<SessionStatus> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        let (id, status) = self
            .read(move |c| {
                let id = resolve(c, &tenant_id, &session)?;
                let (created_at, last_accessed_at, render) = c.query_row(
                    "SELECT created_at, last_accessed_at, render_entry, render_version, render_error, rendered_at,
                            render_problems
                     FROM sessions WHERE id = ?1",
                    [&id],
                    |r| {
                        let entry: Option<String> = r.get(2)?;
                        let render = match entry {
                            Some(entry) => Some(RenderState {
                                entry,
                                version: r.get(3)?,
                                error: r.get(4)?,
                                problems: problems_column(r.get(6)?)?,
                                rendered_at: r.get(5)?,
                            }),
                            None => None,
                        };
                        Ok((r.get(0)?, r.get(1)?, render))
                    },
                )?;
                let files = files::live_heads(c, &id)?;
                Ok((id, SessionStatus { created_at, last_accessed_at, render, files }))
            })
            .await?;
        self.touch_later(id);
        Ok(status)
    }

    /// Records a render of `entry` with what its compilation found. A render is always
    /// recorded (version + 1), whether or not `entry` is a file: its absence is a problem of
    /// the outcome, not a refusal.
    pub async fn render(
        &self,
        tenant_id: &str,
        session: &str,
        entry: &str,
        outcome: RenderOutcome,
    ) -> StoreResult<RenderState> {
        let (tenant_id, session, entry) = (tenant_id.to_owned(), session.to_owned(), entry.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let now = now_ms();
            let problems = serde_json::to_string(&outcome.problems).map_err(|e| StoreError::Internal(e.to_string()))?;
            let version = c.query_row(
                "UPDATE sessions SET render_entry = ?2, render_version = render_version + 1, render_error = ?4,
                        render_problems = ?5, rendered_at = ?3, last_accessed_at = ?3,
                        render_created_at = COALESCE(render_created_at, ?3)
                 WHERE id = ?1 RETURNING render_version",
                params![id, entry, now, outcome.error, problems],
                |r| r.get(0),
            )?;
            Ok(RenderState { entry, version, error: outcome.error, problems: outcome.problems, rendered_at: now })
        })
        .await
    }

    /// The session `session` refers to, `None` when the tenant has no such session.
    pub async fn find_session(&self, tenant_id: &str, session: &str) -> StoreResult<Option<SessionRecord>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(None) };
            let record =
                c.query_row("SELECT created_at, last_accessed_at FROM sessions WHERE id = ?1", [&id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            Ok(Some(SessionRecord { id, created_at: record.0, last_accessed_at: record.1 }))
        })
        .await
    }

    /// The session's render state, `None` before its first render (or without the session).
    pub async fn render_record(&self, tenant_id: &str, session: &str) -> StoreResult<Option<RenderRecord>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(None) };
            let row = c.query_row(
                "SELECT render_entry, render_version, render_error, rendered_at, render_created_at, render_problems
                 FROM sessions WHERE id = ?1",
                [&id],
                |r| {
                    let entry: Option<String> = r.get(0)?;
                    let Some(entry) = entry else { return Ok(None) };
                    let rendered_at: i64 = r.get(3)?;
                    let problems = problems_column(r.get(5)?)?;
                    let state = RenderState { entry, version: r.get(1)?, error: r.get(2)?, problems, rendered_at };
                    Ok(Some((state, r.get::<_, Option<i64>>(4)?.unwrap_or(rendered_at))))
                },
            )?;
            Ok(row.map(|(state, created_at)| RenderRecord { session_id: id, state, created_at }))
        })
        .await
    }

    /// Sets (or with `None` clears) the error of the session's render state. Before the
    /// first render, or without the session, nothing changes and this answers `false`.
    pub async fn set_render_error(&self, tenant_id: &str, session: &str, error: Option<String>) -> StoreResult<bool> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(false) };
            let changed = c.execute(
                "UPDATE sessions SET render_error = ?2 WHERE id = ?1 AND render_entry IS NOT NULL",
                params![id, error],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    pub async fn set_google_scopes(
        &self,
        tenant_id: &str,
        session: &str,
        scopes: Vec<String>,
    ) -> StoreResult<GoogleScopes> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let now = now_ms();
            let encoded = serde_json::to_string(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?;
            c.execute(
                "UPDATE sessions SET google_scopes = ?2, google_scopes_updated_at = ?3, last_accessed_at = ?3 WHERE id = ?1",
                params![id, encoded, now],
            )?;
            Ok(GoogleScopes { scopes, updated_at: now })
        })
        .await
    }

    /// The scopes granted to a session, `None` if never set.
    pub async fn google_scopes(&self, tenant_id: &str, session: &str) -> StoreResult<Option<GoogleScopes>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            let (scopes, updated_at): (Option<String>, Option<i64>) = c.query_row(
                "SELECT google_scopes, google_scopes_updated_at FROM sessions WHERE id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            match (scopes, updated_at) {
                (Some(scopes), Some(updated_at)) => Ok(Some(GoogleScopes {
                    scopes: serde_json::from_str(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?,
                    updated_at,
                })),
                _ => Ok(None),
            }
        })
        .await
    }

    /// Refreshes a session's last-access time in the background after a read.
    pub(super) fn touch_later(&self, session_id: String) {
        let store = self.clone();
        tokio::spawn(async move {
            let result = store
                .write(move |c| {
                    let now = now_ms();
                    c.execute(
                        "UPDATE sessions SET last_accessed_at = ?2 WHERE id = ?1 AND last_accessed_at < ?3",
                        params![session_id, now, now - TOUCH_INTERVAL_MS],
                    )?;
                    Ok(())
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not refresh a session's last-access time");
            }
        });
    }
}
