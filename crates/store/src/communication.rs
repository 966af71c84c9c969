//! Communication: channel registrations of apps, messages, and the durable outbox the
//! dispatcher works from (a message row with `status` `queued`/`sending` and
//! `next_attempt_at`), with one row per delivery attempt.
//!
//! A message is queued in the transaction that stores it, so an acknowledged message is
//! never lost; a message the dispatcher was sending when the process died is put back in
//! the queue at the next start ([`Store::requeue_interrupted_messages`]).
//!
//! A registration's settings (URLs, signing secret, SMTP URL) are stored sealed
//! ([`super::secrets`]) and opened only in memory, when read.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::idempotency::{IdempotencyKey, Written, write_once};
use super::sealed::Sealer;
use super::secrets::REGISTRATION_SETTINGS;
use super::{Store, StoreError, StoreResult, new_id, now_ms};

/// A registration as stored, secrets included (the service masks them in answers).
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub id: String,
    pub app_sid: String,
    pub channel_id: String,
    pub kind: String,
    /// Kind-specific settings: URLs, signing secret, SMTP URL, sender.
    pub settings: Value,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub app_sid: String,
    pub channel_id: String,
    pub kind: String,
    pub settings: Value,
    pub status: String,
}

/// A change to a registration; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RegistrationPatch {
    pub settings: Option<Value>,
    pub status: Option<String>,
}

/// What a message says and where it goes, as the sender gave it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    pub app_sid: String,
    pub channel_id: String,
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
    pub html: Option<String>,
    pub metadata: Value,
}

/// What `send` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queued {
    pub message_id: String,
    pub status: String,
}

/// A message with its delivery timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    #[serde(flatten)]
    pub message: NewMessage,
    pub registration_id: String,
    pub kind: String,
    /// `queued`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    /// `sending`, `delivered`, `retry`, `failed` or `interrupted`.
    pub outcome: String,
}

/// A message the dispatcher claimed, with what it needs to deliver it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    pub tenant_id: String,
    pub message: NewMessage,
    pub created_at: i64,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// The registration as it is now; `None` when it was deleted or disabled since.
    pub registration: Option<Registration>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    Delivered {
        status_code: Option<u16>,
    },
    /// Try again at `at` (Unix ms).
    Retry {
        status_code: Option<u16>,
        error: String,
        at: i64,
    },
    Failed {
        status_code: Option<u16>,
        error: String,
    },
}

impl Store {
    pub async fn create_registration(&self, tenant_id: &str, new: NewRegistration) -> StoreResult<Registration> {
        let tenant_id = tenant_id.to_owned();
        let sealer = self.sealer.clone();
        self.write(move |c| {
            super::apps::get(c, &tenant_id, &new.app_sid)?;
            let now = now_ms();
            let id = new_id("reg_");
            let settings = REGISTRATION_SETTINGS.seal(&sealer, &tenant_id, &id, &new.settings.to_string());
            let inserted = c.execute(
                "INSERT INTO comm_registrations (id, tenant_id, app_sid, channel_id, kind, settings, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (tenant_id, app_sid, channel_id) DO NOTHING",
                params![id, tenant_id, new.app_sid, new.channel_id, new.kind, settings, new.status, now],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "app {} already has a registration for channel {}; update or delete it",
                    new.app_sid, new.channel_id
                )));
            }
            registration(c, &sealer, &tenant_id, &id)
        })
        .await
    }

    pub async fn list_registrations(&self, tenant_id: &str, app_sid: Option<String>) -> StoreResult<Vec<Registration>> {
        let tenant_id = tenant_id.to_owned();
        let sealer = self.sealer.clone();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{REGISTRATION_SELECT} WHERE tenant_id = ?1 AND (?2 IS NULL OR app_sid = ?2) ORDER BY app_sid, channel_id"
            ))?;
            let rows: Vec<SealedRegistration> =
                stmt.query_map(params![tenant_id, app_sid], registration_from_row)?.collect::<Result<_, _>>()?;
            rows.into_iter().map(|row| row.open(&sealer)).collect()
        })
        .await
    }

    pub async fn get_registration(&self, tenant_id: &str, id: &str) -> StoreResult<Registration> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        let sealer = self.sealer.clone();
        self.read(move |c| registration(c, &sealer, &tenant_id, &id)).await
    }

    pub async fn update_registration(
        &self,
        tenant_id: &str,
        id: &str,
        patch: RegistrationPatch,
    ) -> StoreResult<Registration> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        let sealer = self.sealer.clone();
        self.write(move |c| {
            registration(c, &sealer, &tenant_id, &id)?;
            let settings = patch
                .settings
                .map(|settings| REGISTRATION_SETTINGS.seal(&sealer, &tenant_id, &id, &settings.to_string()));
            c.execute(
                "UPDATE comm_registrations
                 SET settings = coalesce(?3, settings), status = coalesce(?4, status), updated_at = ?5
                 WHERE id = ?1 AND tenant_id = ?2",
                params![id, tenant_id, settings, patch.status, now_ms()],
            )?;
            registration(c, &sealer, &tenant_id, &id)
        })
        .await
    }

    pub async fn delete_registration(&self, tenant_id: &str, id: &str) -> StoreResult<()> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.write(move |c| {
            let deleted =
                c.execute("DELETE FROM comm_registrations WHERE id = ?1 AND tenant_id = ?2", params![id, tenant_id])?;
            if deleted == 0 {
                return Err(StoreError::NotFound(format!("registration {id} not found")));
            }
            Ok(())
        })
        .await
    }

    /// Stores a message for the app's active registration of the channel and queues it,
    /// in one transaction. A missing or disabled registration stores nothing.
    pub async fn queue_message(
        &self,
        tenant_id: &str,
        message: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Written<Queued>> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            write_once(c, &tenant_id, key.as_ref(), |c| {
                let found: Option<(String, String, String)> = c
                    .prepare_cached(
                        "SELECT id, kind, status FROM comm_registrations
                         WHERE tenant_id = ?1 AND app_sid = ?2 AND channel_id = ?3",
                    )?
                    .query_row(params![tenant_id, message.app_sid, message.channel_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .optional()?;
                let Some((registration_id, kind, status)) = found else {
                    return Err(StoreError::NotFound(format!(
                        "app {} has no registration for channel {}: register one at /api/v1/communication/registrations",
                        message.app_sid, message.channel_id
                    )));
                };
                if status != "active" {
                    return Err(StoreError::Conflict(format!(
                        "the registration of app {} for channel {} is {status}",
                        message.app_sid, message.channel_id
                    )));
                }
                let id = new_id("msg_");
                let now = now_ms();
                c.prepare_cached(
                    "INSERT INTO comm_messages (id, tenant_id, app_sid, channel_id, registration_id, kind, recipient,
                        subject, text, html, metadata, status, attempts, next_attempt_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'queued', 0, ?12, ?12, ?12)",
                )?
                .execute(params![
                    id,
                    tenant_id,
                    message.app_sid,
                    message.channel_id,
                    registration_id,
                    kind,
                    message.to,
                    message.subject,
                    message.text,
                    message.html,
                    message.metadata.to_string(),
                    now
                ])?;
                Ok(Queued { message_id: id, status: "queued".into() })
            })
        })
        .await
    }

    pub async fn get_message(&self, tenant_id: &str, id: &str) -> StoreResult<Message> {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.read(move |c| {
            let mut message = c
                .prepare_cached(&format!("{MESSAGE_SELECT} WHERE tenant_id = ?1 AND id = ?2"))?
                .query_row(params![tenant_id, id], message_from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("message {id} not found")))?;
            message.attempts = attempts(c, &message.id)?;
            Ok(message)
        })
        .await
    }

    /// The newest messages of the tenant (of one app when given), with their attempts.
    pub async fn list_messages(
        &self,
        tenant_id: &str,
        app_sid: Option<String>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE tenant_id = ?1 AND (?2 IS NULL OR app_sid = ?2)
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?;
            let mut messages: Vec<Message> =
                stmt.query_map(params![tenant_id, app_sid, limit], message_from_row)?.collect::<Result<_, _>>()?;
            for message in &mut messages {
                message.attempts = attempts(c, &message.id)?;
            }
            Ok(messages)
        })
        .await
    }

    /// Puts messages whose delivery was cut short by a stop or crash back in the queue; their
    /// open attempts are marked `interrupted`. Returns how many.
    pub async fn requeue_interrupted_messages(&self) -> StoreResult<usize> {
        self.write(|c| {
            let now = now_ms();
            c.execute(
                "UPDATE comm_attempts SET outcome = 'interrupted', finished_at = ?1,
                        error = 'the server stopped during the attempt'
                 WHERE outcome = 'sending'",
                [now],
            )?;
            Ok(c.execute(
                "UPDATE comm_messages SET status = 'queued', next_attempt_at = ?1, updated_at = ?1
                 WHERE status = 'sending'",
                [now],
            )?)
        })
        .await
    }

    /// Claims up to `limit` messages due now: each becomes `sending` with a new attempt.
    pub async fn claim_due_messages(&self, limit: usize) -> StoreResult<Vec<Delivery>> {
        let sealer = self.sealer.clone();
        self.write(move |c| {
            let now = now_ms();
            let ids: Vec<String> = c
                .prepare_cached(
                    "SELECT id FROM comm_messages
                     WHERE status IN ('queued', 'sending') AND next_attempt_at <= ?1
                     ORDER BY next_attempt_at LIMIT ?2",
                )?
                .query_map(params![now, limit as i64], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.iter().map(|id| claim(c, &sealer, id, now)).collect()
        })
        .await
    }

    /// When the next queued message is due (Unix ms), if any is queued.
    pub async fn next_message_due(&self) -> StoreResult<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT min(next_attempt_at) FROM comm_messages WHERE status IN ('queued', 'sending')",
            )?
            .query_row([], |r| r.get(0))?)
        })
        .await
    }

    /// Records how an attempt ended and moves the message on.
    pub async fn finish_attempt(&self, message_id: &str, attempt: i64, end: AttemptEnd) -> StoreResult<()> {
        let message_id = message_id.to_owned();
        self.write(move |c| {
            let now = now_ms();
            let (outcome, status, status_code, error, next) = match end {
                AttemptEnd::Delivered { status_code } => ("delivered", "delivered", status_code, None, None),
                AttemptEnd::Retry { status_code, error, at } => ("retry", "queued", status_code, Some(error), Some(at)),
                AttemptEnd::Failed { status_code, error } => ("failed", "failed", status_code, Some(error), None),
            };
            c.prepare_cached(
                "UPDATE comm_attempts SET finished_at = ?3, status_code = ?4, error = ?5, outcome = ?6
                 WHERE message_id = ?1 AND attempt = ?2",
            )?
            .execute(params![message_id, attempt, now, status_code, error, outcome])?;
            c.prepare_cached(
                "UPDATE comm_messages SET status = ?2, next_attempt_at = ?3, updated_at = ?4,
                        delivered_at = CASE WHEN ?2 = 'delivered' THEN ?4 ELSE delivered_at END
                 WHERE id = ?1",
            )?
            .execute(params![message_id, status, next, now])?;
            Ok(())
        })
        .await
    }
}

const REGISTRATION_SELECT: &str = "SELECT id, app_sid, channel_id, kind, settings, status, created_at, updated_at,
        tenant_id
     FROM comm_registrations";

/// A registration as read, its settings still sealed.
struct SealedRegistration {
    registration: Registration,
    tenant_id: String,
    settings: String,
}

impl SealedRegistration {
    fn open(self, sealer: &Sealer) -> StoreResult<Registration> {
        let settings = REGISTRATION_SETTINGS.open(sealer, &self.tenant_id, &self.registration.id, &self.settings)?;
        Ok(Registration { settings: serde_json::from_str(&settings).unwrap_or(Value::Null), ..self.registration })
    }
}

fn registration_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SealedRegistration> {
    Ok(SealedRegistration {
        registration: Registration {
            id: r.get(0)?,
            app_sid: r.get(1)?,
            channel_id: r.get(2)?,
            kind: r.get(3)?,
            settings: Value::Null,
            status: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
        },
        settings: r.get(4)?,
        tenant_id: r.get(8)?,
    })
}

fn registration(c: &Connection, sealer: &Sealer, tenant_id: &str, id: &str) -> StoreResult<Registration> {
    c.prepare_cached(&format!("{REGISTRATION_SELECT} WHERE id = ?1 AND tenant_id = ?2"))?
        .query_row(params![id, tenant_id], registration_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("registration {id} not found")))?
        .open(sealer)
}

const MESSAGE_SELECT: &str = "SELECT id, app_sid, channel_id, recipient, subject, text, html, metadata,
        registration_id, kind, status, attempts, next_attempt_at, created_at, updated_at, delivered_at
     FROM comm_messages";

fn message_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        message: content_from_row(r, 1)?,
        registration_id: r.get(8)?,
        kind: r.get(9)?,
        status: r.get(10)?,
        attempt_count: r.get(11)?,
        next_attempt_at: r.get(12)?,
        created_at: r.get(13)?,
        updated_at: r.get(14)?,
        delivered_at: r.get(15)?,
        attempts: Vec::new(),
    })
}

/// The columns `app_sid, channel_id, recipient, subject, text, html, metadata`, from `first` on.
fn content_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<NewMessage> {
    let metadata: String = r.get(first + 6)?;
    Ok(NewMessage {
        app_sid: r.get(first)?,
        channel_id: r.get(first + 1)?,
        to: r.get(first + 2)?,
        subject: r.get(first + 3)?,
        text: r.get(first + 4)?,
        html: r.get(first + 5)?,
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
    })
}

fn attempts(c: &Connection, message_id: &str) -> StoreResult<Vec<Attempt>> {
    let mut stmt = c.prepare_cached(
        "SELECT attempt, started_at, finished_at, status_code, error, outcome FROM comm_attempts
         WHERE message_id = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map([message_id], |r| {
        Ok(Attempt {
            attempt: r.get(0)?,
            started_at: r.get(1)?,
            finished_at: r.get(2)?,
            status_code: r.get(3)?,
            error: r.get(4)?,
            outcome: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Marks one message `sending` with a new attempt and reads what its delivery needs.
fn claim(c: &Connection, sealer: &Sealer, id: &str, now: i64) -> StoreResult<Delivery> {
    let mut delivery = c
        .prepare_cached(
            "UPDATE comm_messages SET status = 'sending', attempts = attempts + 1, next_attempt_at = NULL,
                    updated_at = ?2
             WHERE id = ?1
             RETURNING tenant_id, app_sid, channel_id, recipient, subject, text, html, metadata, created_at, attempts,
                       registration_id",
        )?
        .query_row(params![id, now], |r| {
            Ok((
                Delivery {
                    message_id: id.to_owned(),
                    tenant_id: r.get(0)?,
                    message: content_from_row(r, 1)?,
                    created_at: r.get(8)?,
                    attempt: r.get(9)?,
                    registration: None,
                },
                r.get::<_, String>(10)?,
            ))
        })?;
    c.prepare_cached(
        "INSERT INTO comm_attempts (message_id, attempt, started_at, outcome) VALUES (?1, ?2, ?3, 'sending')
         ON CONFLICT (message_id, attempt) DO UPDATE SET started_at = ?3, outcome = 'sending'",
    )?
    .execute(params![id, delivery.0.attempt, now])?;
    let (tenant_id, registration_id) = (delivery.0.tenant_id.clone(), delivery.1);
    delivery.0.registration = match registration(c, sealer, &tenant_id, &registration_id) {
        Ok(registration) => Some(registration).filter(|registration| registration.status == "active"),
        Err(StoreError::NotFound(_)) => None,
        Err(error) => {
            // Delivered nowhere rather than with a secret that does not open.
            tracing::error!(%error, message = id, "could not open the registration of a message");
            None
        }
    };
    Ok(delivery.0)
}
