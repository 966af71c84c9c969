//! State a session's app keeps besides its files: key-values, one live-data value, and a
//! list of messages. Values are opaque text to the store (the API layer keeps Convex values
//! in their encoded JSON form); every row belongs to a session and goes with it.

use rusqlite::{OptionalExtension, params};

use super::references::{resolve, resolve_optional};
use super::{Store, StoreResult, new_id, now_ms};

/// One message of a session.
#[derive(Debug, Clone)]
pub struct SessionMessage {
    pub id: String,
    pub session_id: String,
    pub text: String,
    pub sender: String,
    pub created_at: i64,
}

impl Store {
    /// Sets `key` of the session to `value`, replacing what it held.
    pub async fn kv_set(&self, tenant_id: &str, session: &str, key: &str, value: String) -> StoreResult<()> {
        let (tenant_id, session, key) = (tenant_id.to_owned(), session.to_owned(), key.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            c.prepare_cached(
                "INSERT INTO session_kv (session_id, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (session_id, key) DO UPDATE SET value = ?3, updated_at = ?4",
            )?
            .execute(params![id, key, value, now_ms()])?;
            Ok(())
        })
        .await
    }

    /// The value of `key`, `None` when unset (or without the session).
    pub async fn kv_get(&self, tenant_id: &str, session: &str, key: &str) -> StoreResult<Option<String>> {
        let (tenant_id, session, key) = (tenant_id.to_owned(), session.to_owned(), key.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(None) };
            Ok(c.prepare_cached("SELECT value FROM session_kv WHERE session_id = ?1 AND key = ?2")?
                .query_row(params![id, key], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// Replaces the session's live data.
    pub async fn set_live_data(&self, tenant_id: &str, session: &str, data: String) -> StoreResult<()> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            c.prepare_cached(
                "INSERT INTO session_live_data (session_id, data, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (session_id) DO UPDATE SET data = ?2, updated_at = ?3",
            )?
            .execute(params![id, data, now_ms()])?;
            Ok(())
        })
        .await
    }

    /// The session's live data, `None` when never set (or without the session).
    pub async fn live_data(&self, tenant_id: &str, session: &str) -> StoreResult<Option<String>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(None) };
            Ok(c.prepare_cached("SELECT data FROM session_live_data WHERE session_id = ?1")?
                .query_row([&id], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// Appends a message to the session's list.
    pub async fn send_message(&self, tenant_id: &str, session: &str, text: &str, sender: &str) -> StoreResult<()> {
        let (tenant_id, session, text, sender) =
            (tenant_id.to_owned(), session.to_owned(), text.to_owned(), sender.to_owned());
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            c.prepare_cached(
                "INSERT INTO session_messages (id, session_id, text, sender, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![new_id("chat_"), id, text, sender, now_ms()])?;
            Ok(())
        })
        .await
    }

    /// The session's messages in the order they were sent (none without the session).
    pub async fn messages(&self, tenant_id: &str, session: &str) -> StoreResult<Vec<SessionMessage>> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(Vec::new()) };
            let mut stmt = c.prepare_cached(
                "SELECT id, session_id, text, sender, created_at FROM session_messages
                 WHERE session_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([&id], |r| {
                Ok(SessionMessage {
                    id: r.get(0)?,
                    session_id: r.get(1)?,
                    text: r.get(2)?,
                    sender: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Deletes every message of the session; answers how many there were.
    pub async fn clear_messages(&self, tenant_id: &str, session: &str) -> StoreResult<usize> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        self.write(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(0) };
            Ok(c.execute("DELETE FROM session_messages WHERE session_id = ?1", [&id])?)
        })
        .await
    }
}
