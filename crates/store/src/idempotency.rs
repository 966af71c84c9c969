//! Idempotency keys of service writes: the first answer to a `(tenant, scope, key)` is
//! stored in the same transaction as the write it answers, so a replay (a retried step, a
//! resent request) gets that answer back and writes nothing, even across a crash.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, StoreResult, now_ms};

/// An `Idempotency-Key` as claimed by one request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// What the key is unique within besides the tenant, e.g. the route `POST /pulse/events`.
    pub scope: &'static str,
    pub key: String,
    /// A digest of the request, to tell a replay from a different request reusing the key.
    pub fingerprint: String,
}

/// The result of a write that may have been a replay.
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    /// True when `value` is the stored answer of an earlier request with the same key.
    pub replayed: bool,
}

/// Runs `work` unless `key` was used before: then answers the stored result (or a conflict
/// when the earlier request was different). Call inside a write transaction so that the
/// write and the key are committed together.
pub(super) fn write_once<T, F>(
    c: &Connection,
    tenant_id: &str,
    key: Option<&IdempotencyKey>,
    work: F,
) -> StoreResult<Written<T>>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(&Connection) -> StoreResult<T>,
{
    let Some(key) = key else {
        return Ok(Written { value: work(c)?, replayed: false });
    };
    if let Some(value) = earlier_answer(c, tenant_id, key)? {
        return Ok(Written { value, replayed: true });
    }
    let value = work(c)?;
    let response = serde_json::to_string(&value).map_err(|e| StoreError::Internal(e.to_string()))?;
    c.prepare_cached(
        "INSERT INTO service_idempotency_keys (tenant_id, scope, key, fingerprint, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![tenant_id, key.scope, key.key, key.fingerprint, response, now_ms()])?;
    Ok(Written { value, replayed: false })
}

/// The stored answer of an earlier request with `key`, without writing anything: for writes
/// with an outside side effect (a call to Stripe) that must not happen again on a replay.
/// Answers a conflict when the earlier request was different, like [`write_once`]. The write
/// itself still goes through [`write_once`], which settles a race between two requests.
pub(super) fn earlier_answer<T: DeserializeOwned>(
    c: &Connection,
    tenant_id: &str,
    key: &IdempotencyKey,
) -> StoreResult<Option<T>> {
    let earlier: Option<(String, String)> = c
        .prepare_cached(
            "SELECT fingerprint, response FROM service_idempotency_keys
             WHERE tenant_id = ?1 AND scope = ?2 AND key = ?3",
        )?
        .query_row(params![tenant_id, key.scope, key.key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((fingerprint, response)) = earlier else { return Ok(None) };
    if fingerprint != key.fingerprint {
        return Err(StoreError::Conflict(format!(
            "the Idempotency-Key {:?} was already used for a different request to {}",
            key.key, key.scope
        )));
    }
    serde_json::from_str(&response)
        .map(Some)
        .map_err(|e| StoreError::Internal(format!("stored idempotent answer is unreadable: {e}")))
}
