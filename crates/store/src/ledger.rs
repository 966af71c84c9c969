//! The ledger: append-only audit events, hash-chained per tenant.
//!
//! A tenant's events are numbered `seq` 1, 2, … Each stores `prevHash` (the hash of the
//! event before it; 64 zeros for seq 1) and `hash = hex(SHA-256(record ‖ prevHash))`, where
//! `record` is the canonical JSON ([`canonical_json`]) of the event as served, without its
//! `hash`. Appends read the chain's head inside the write transaction, on the single writer
//! thread, so two appends never get the same `seq` or fork the chain.
//!
//! How tampering is detected: every field of an event lives in its own column, and the
//! record text that was hashed is stored beside them. [`Store::verify_ledger`] rebuilds each
//! event from its columns (the same code that serves events), requires its canonical record
//! to equal the stored text, requires SHA-256 of the stored text and `prev_hash` to equal the
//! stored `hash`, and requires `prev_hash` to be the previous row's `hash` and `seq` to
//! follow on. Editing any column of a row — a field, the record text, a hash, a seq — breaks
//! that row; re-hashing the edited row breaks the next row's link. Only rewriting every later
//! row too would go unnoticed, as with any hash chain that is not anchored elsewhere.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::canonical::canonical_json;
use super::idempotency::{IdempotencyKey, Written, write_once};
use super::{Store, StoreError, StoreResult, now_ms, sha256_hex};

/// The `prevHash` of a tenant's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event as the client describes it (validated by the service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerFields {
    pub operation: String,
    pub service_id: String,
    pub actor: String,
    pub actor_type: String,
    /// ISO-8601 in UTC with milliseconds.
    pub timestamp: String,
    /// `{service, location?}`.
    pub source: Option<Value>,
    /// `{service, location?}`.
    pub destination: Option<Value>,
    /// `[{field, classification}]`.
    pub data_refs: Vec<Value>,
    pub status: String,
    pub meta: Map<String, Value>,
    pub stage_app_id: Option<String>,
    pub author_email: Option<String>,
}

/// A stored, chained event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEvent {
    pub seq: i64,
    #[serde(flatten)]
    pub fields: LedgerFields,
    /// When the ledger appended the event, Unix ms.
    pub received_at: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of re-checking a tenant's whole chain.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerVerification {
    pub ok: bool,
    /// Events in the chain.
    pub count: i64,
    /// The first position at which the chain does not hold, if any.
    pub first_broken_seq: Option<i64>,
}

impl Store {
    /// Appends an event at the head of the tenant's chain.
    pub async fn append_ledger_event(
        &self,
        tenant_id: &str,
        event: LedgerFields,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Written<LedgerEvent>> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| write_once(c, &tenant_id, key.as_ref(), |c| append(c, &tenant_id, event))).await
    }

    /// Events in chain order after `after_seq`, optionally only those of one app.
    pub async fn list_ledger_events(
        &self,
        tenant_id: &str,
        stage_app_id: Option<String>,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<LedgerEvent>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM ledger_events
                 WHERE tenant_id = ?1 AND seq > ?2 AND (?4 IS NULL OR stage_app_id = ?4)
                 ORDER BY seq LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![tenant_id, after_seq, limit, stage_app_id], event_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Recomputes the tenant's chain from the stored columns and reports the first `seq` at
    /// which it breaks.
    pub async fn verify_ledger(&self, tenant_id: &str) -> StoreResult<LedgerVerification> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS}, record FROM ledger_events WHERE tenant_id = ?1 ORDER BY seq"
            ))?;
            let mut rows = stmt.query([&tenant_id])?;
            let (mut count, mut first_broken_seq) = (0, None);
            let mut prev_hash = GENESIS_HASH.to_owned();
            while let Some(row) = rows.next()? {
                count += 1;
                if first_broken_seq.is_some() {
                    continue;
                }
                match checked_link(row, count, &prev_hash) {
                    Some(hash) => prev_hash = hash,
                    None => first_broken_seq = Some(count),
                }
            }
            Ok(LedgerVerification { ok: first_broken_seq.is_none(), count, first_broken_seq })
        })
        .await
    }
}

const EVENT_COLUMNS: &str = "seq, operation, service_id, actor, actor_type, timestamp, source, destination, \
                             data_refs, status, meta, stage_app_id, author_email, received_at, prev_hash, hash";
/// Index of the `record` column when selected after [`EVENT_COLUMNS`].
const RECORD_COLUMN: usize = 16;

fn append(c: &Connection, tenant_id: &str, fields: LedgerFields) -> StoreResult<LedgerEvent> {
    let head: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM ledger_events WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([tenant_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = head.map_or((1, GENESIS_HASH.to_owned()), |(seq, hash)| (seq + 1, hash));
    let mut event = LedgerEvent { seq, fields, received_at: now_ms(), prev_hash, hash: String::new() };
    let record = record_text(&event).map_err(StoreError::Internal)?;
    event.hash = chain_hash(&record, &event.prev_hash);
    let f = &event.fields;
    let json = |value: &Value| value.to_string();
    c.prepare_cached(
        "INSERT INTO ledger_events (tenant_id, seq, operation, service_id, actor, actor_type, timestamp, source,
                                    destination, data_refs, status, meta, stage_app_id, author_email, received_at,
                                    prev_hash, hash, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        tenant_id,
        event.seq,
        f.operation,
        f.service_id,
        f.actor,
        f.actor_type,
        f.timestamp,
        f.source.as_ref().map(json),
        f.destination.as_ref().map(json),
        json(&Value::Array(f.data_refs.clone())),
        f.status,
        json(&Value::Object(f.meta.clone())),
        f.stage_app_id,
        f.author_email,
        event.received_at,
        event.prev_hash,
        event.hash,
        record
    ])?;
    Ok(event)
}

/// The text an event's hash covers: its canonical JSON without `hash`.
fn record_text(event: &LedgerEvent) -> Result<String, String> {
    let mut record = serde_json::to_value(event).map_err(|e| format!("ledger event is not JSON: {e}"))?;
    if let Some(record) = record.as_object_mut() {
        record.remove("hash");
    }
    Ok(canonical_json(&record))
}

fn chain_hash(record: &str, prev_hash: &str) -> String {
    sha256_hex(format!("{record}{prev_hash}").as_bytes())
}

/// Checks one row as the `expected_seq`-th link after `prev_hash`; answers its hash when the
/// link holds. Any unreadable column counts as a break.
fn checked_link(row: &rusqlite::Row<'_>, expected_seq: i64, prev_hash: &str) -> Option<String> {
    let event = event_from_row(row).ok()?;
    let stored_record: String = row.get(RECORD_COLUMN).ok()?;
    let holds = event.seq == expected_seq
        && event.prev_hash == prev_hash
        && record_text(&event).ok()? == stored_record
        && chain_hash(&stored_record, &event.prev_hash) == event.hash;
    holds.then_some(event.hash)
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LedgerEvent> {
    fn json<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<T> {
        let text: String = r.get(index)?;
        serde_json::from_str(&text)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e)))
    }
    fn optional_json(r: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<Value>> {
        match r.get_ref(index)? {
            rusqlite::types::ValueRef::Null => Ok(None),
            _ => json(r, index).map(Some),
        }
    }
    Ok(LedgerEvent {
        seq: r.get(0)?,
        fields: LedgerFields {
            operation: r.get(1)?,
            service_id: r.get(2)?,
            actor: r.get(3)?,
            actor_type: r.get(4)?,
            timestamp: r.get(5)?,
            source: optional_json(r, 6)?,
            destination: optional_json(r, 7)?,
            data_refs: json(r, 8)?,
            status: r.get(9)?,
            meta: json(r, 10)?,
            stage_app_id: r.get(11)?,
            author_email: r.get(12)?,
        },
        received_at: r.get(13)?,
        prev_hash: r.get(14)?,
        hash: r.get(15)?,
    })
}
