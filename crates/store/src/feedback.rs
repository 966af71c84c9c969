//! Feedback people give on a preview of an app: a comment with annotations of page
//! elements, kept per tenant under the sid its client chose, with a status that moves from
//! `pending` to `in_progress`, `resolved` or `dismissed`.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::references::resolve;
use super::{Store, StoreError, StoreResult, new_id, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackStatus {
    Pending,
    InProgress,
    Resolved,
    Dismissed,
}

impl FeedbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackStatus::Pending => "pending",
            FeedbackStatus::InProgress => "in_progress",
            FeedbackStatus::Resolved => "resolved",
            FeedbackStatus::Dismissed => "dismissed",
        }
    }
}

impl rusqlite::types::FromSql for FeedbackStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        match value.as_str()? {
            "pending" => Ok(FeedbackStatus::Pending),
            "in_progress" => Ok(FeedbackStatus::InProgress),
            "resolved" => Ok(FeedbackStatus::Resolved),
            "dismissed" => Ok(FeedbackStatus::Dismissed),
            other => Err(rusqlite::types::FromSqlError::Other(format!("unknown feedback status {other:?}").into())),
        }
    }
}

/// Feedback as given.
#[derive(Debug, Clone)]
pub struct NewFeedback {
    pub sid: String,
    pub app_sid: String,
    pub app_version_sid: String,
    /// A session (or app sid) of the tenant; stored resolved to the session id.
    pub session_id: Option<String>,
    pub studio_session_sid: Option<String>,
    pub author_email: String,
    pub author_name: Option<String>,
    pub comment: String,
    /// The annotations as JSON text.
    pub annotations: String,
    pub screenshot: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Feedback {
    pub id: String,
    pub sid: String,
    pub app_sid: String,
    pub app_version_sid: String,
    pub session_id: Option<String>,
    pub studio_session_sid: Option<String>,
    pub author_email: String,
    pub author_name: Option<String>,
    pub status: FeedbackStatus,
    pub comment: String,
    /// The annotations as JSON text.
    pub annotations: String,
    pub screenshot: Option<String>,
    pub sent_to_studio_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which feedback to list; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct FeedbackFilter {
    pub app_sid: Option<String>,
    pub app_version_sid: Option<String>,
    pub status: Option<FeedbackStatus>,
}

const COLUMNS: &str = "id, sid, app_sid, app_version_sid, session_id, studio_session_sid, author_email, author_name, \
                       status, comment, annotations, screenshot, sent_to_studio_at, resolved_at, created_at, updated_at";

impl Store {
    /// Records new feedback, `pending`. A sid the tenant already used is a conflict.
    pub async fn create_feedback(&self, tenant_id: &str, new: NewFeedback) -> StoreResult<Feedback> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            let session_id = new.session_id.as_deref().map(|s| resolve(c, &tenant_id, s)).transpose()?;
            let taken = c
                .prepare_cached("SELECT 1 FROM feedback WHERE tenant_id = ?1 AND sid = ?2")?
                .query_row(params![tenant_id, new.sid], |_| Ok(()))
                .optional()?;
            if taken.is_some() {
                return Err(StoreError::Conflict(format!("feedback {} already exists", new.sid)));
            }
            let now = now_ms();
            c.prepare_cached(
                "INSERT INTO feedback (id, tenant_id, sid, app_sid, app_version_sid, session_id, studio_session_sid,
                                       author_email, author_name, status, comment, annotations, screenshot,
                                       created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?13, ?13)",
            )?
            .execute(params![
                new_id("fbk_"),
                tenant_id,
                new.sid,
                new.app_sid,
                new.app_version_sid,
                session_id,
                new.studio_session_sid,
                new.author_email,
                new.author_name,
                new.comment,
                new.annotations,
                new.screenshot,
                now
            ])?;
            get(c, &tenant_id, &new.sid)?.ok_or_else(|| StoreError::Internal("feedback vanished".into()))
        })
        .await
    }

    /// The tenant's feedback matching `filter`, in the order it was given.
    pub async fn list_feedback(&self, tenant_id: &str, filter: FeedbackFilter) -> StoreResult<Vec<Feedback>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM feedback
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR app_sid = ?2) AND (?3 IS NULL OR app_version_sid = ?3)
                   AND (?4 IS NULL OR status = ?4)
                 ORDER BY seq"
            ))?;
            let status = filter.status.map(FeedbackStatus::as_str);
            let rows =
                stmt.query_map(params![tenant_id, filter.app_sid, filter.app_version_sid, status], feedback_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub async fn get_feedback(&self, tenant_id: &str, sid: &str) -> StoreResult<Option<Feedback>> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.read(move |c| get(c, &tenant_id, &sid)).await
    }

    /// Moves feedback to `status` (a resolution is timed; any other status clears it) and,
    /// when given, records the Studio session it was sent to.
    pub async fn update_feedback_status(
        &self,
        tenant_id: &str,
        sid: &str,
        status: FeedbackStatus,
        studio_session_sid: Option<String>,
    ) -> StoreResult<Feedback> {
        let (tenant_id, sid) = (tenant_id.to_owned(), sid.to_owned());
        self.write(move |c| {
            let now = now_ms();
            let resolved_at = (status == FeedbackStatus::Resolved).then_some(now);
            let changed = c.execute(
                "UPDATE feedback SET status = ?3, resolved_at = ?4, updated_at = ?5,
                        studio_session_sid = COALESCE(?6, studio_session_sid),
                        sent_to_studio_at = CASE WHEN ?6 IS NULL THEN sent_to_studio_at
                                                 ELSE COALESCE(sent_to_studio_at, ?5) END
                 WHERE tenant_id = ?1 AND sid = ?2",
                params![tenant_id, sid, status.as_str(), resolved_at, now, studio_session_sid],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("feedback {sid} not found")));
            }
            get(c, &tenant_id, &sid)?.ok_or_else(|| StoreError::Internal("feedback vanished".into()))
        })
        .await
    }
}

fn get(c: &rusqlite::Connection, tenant_id: &str, sid: &str) -> StoreResult<Option<Feedback>> {
    Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM feedback WHERE tenant_id = ?1 AND sid = ?2"))?
        .query_row(params![tenant_id, sid], feedback_from_row)
        .optional()?)
}

fn feedback_from_row(r: &Row<'_>) -> rusqlite::Result<Feedback> {
    Ok(Feedback {
        id: r.get(0)?,
        sid: r.get(1)?,
        app_sid: r.get(2)?,
        app_version_sid: r.get(3)?,
        session_id: r.get(4)?,
        studio_session_sid: r.get(5)?,
        author_email: r.get(6)?,
        author_name: r.get(7)?,
        status: r.get(8)?,
        comment: r.get(9)?,
        annotations: r.get(10)?,
        screenshot: r.get(11)?,
        sent_to_studio_at: r.get(12)?,
        resolved_at: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}
