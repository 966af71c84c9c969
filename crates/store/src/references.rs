//! Session references: a session id, or the sid of the app attached to the session, as
//! every route taking a session accepts them.

use rusqlite::{Connection, OptionalExtension, params};

use super::{StoreError, StoreResult};

/// Resolves a session reference of a tenant (a session id, or the sid of the app attached
/// to it) to the session id. Other tenants' sessions are not found.
pub(super) fn resolve(c: &Connection, tenant_id: &str, reference: &str) -> StoreResult<String> {
    resolve_optional(c, tenant_id, reference)?
        .ok_or_else(|| StoreError::NotFound(format!("session {reference} not found")))
}

/// [`resolve`], answering `None` for a session the tenant does not have.
pub(super) fn resolve_optional(c: &Connection, tenant_id: &str, reference: &str) -> StoreResult<Option<String>> {
    Ok(c.prepare_cached(
        "SELECT id FROM sessions WHERE id = ?2 AND tenant_id = ?1
         UNION ALL
         SELECT session_id FROM apps WHERE sid = ?2 AND tenant_id = ?1
         LIMIT 1",
    )?
    .query_row(params![tenant_id, reference], |r| r.get(0))
    .optional()?)
}
