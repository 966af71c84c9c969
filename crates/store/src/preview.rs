//! What the preview page (`/s/:id`) looks up before it knows the tenant: whose session an
//! id (a session id or the sid of the app attached to it) is.

use rusqlite::OptionalExtension;

use super::{Store, StoreResult};

/// The session a preview id names.
#[derive(Debug, Clone)]
pub struct PreviewTarget {
    pub tenant_id: String,
    pub session_id: String,
    pub app_sid: Option<String>,
}

impl Store {
    /// The session `id` names, in whichever tenant; `None` when none does.
    pub async fn preview_target(&self, id: &str) -> StoreResult<Option<PreviewTarget>> {
        let id = id.to_owned();
        self.read(move |c| {
            let sql = "SELECT s.tenant_id, s.id, a.sid FROM sessions s LEFT JOIN apps a ON a.session_id = s.id
                       WHERE s.id = ?1
                       UNION ALL
                       SELECT s.tenant_id, s.id, a.sid FROM apps a JOIN sessions s ON s.id = a.session_id
                       WHERE a.sid = ?1
                       LIMIT 1";
            let target = c
                .query_row(sql, [&id], |r| {
                    Ok(PreviewTarget { tenant_id: r.get(0)?, session_id: r.get(1)?, app_sid: r.get(2)? })
                })
                .optional()?;
            Ok(target)
        })
        .await
    }
}
