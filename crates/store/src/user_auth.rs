//! End users' Google authorisations recorded on a session: who signed in (one record per
//! email per session), through which Passport authorisation, with which scopes. No token
//! is stored here.

use rusqlite::{OptionalExtension, Row, params};

use super::references::{resolve, resolve_optional};
use super::{Store, StoreError, StoreResult, new_id, now_ms};

/// What signing in records about an end user.
#[derive(Debug, Clone)]
pub struct NewUserAuth {
    pub email: String,
    pub name: String,
    pub picture: String,
    pub passport_authorization_id: String,
    pub scopes: Vec<String>,
}

/// An end user's authorisation on a session.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub id: String,
    pub session_id: String,
    pub email: String,
    pub name: String,
    pub picture: String,
    pub passport_authorization_id: String,
    pub scopes: Vec<String>,
    /// `active` once recorded.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Records (or refreshes, for an email already recorded on the session) an end user's
    /// authorisation; it is `active` afterwards.
    pub async fn set_user_auth(&self, tenant_id: &str, session: &str, auth: NewUserAuth) -> StoreResult<()> {
        let (tenant_id, session) = (tenant_id.to_owned(), session.to_owned());
        let scopes = serde_json::to_string(&auth.scopes).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.write(move |c| {
            let id = resolve(c, &tenant_id, &session)?;
            c.prepare_cached(
                "INSERT INTO session_user_auth
                   (id, session_id, email, name, picture, passport_authorization_id, scopes, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?8)
                 ON CONFLICT (session_id, email) DO UPDATE
                 SET name = ?4, picture = ?5, passport_authorization_id = ?6, scopes = ?7, status = 'active',
                     updated_at = ?8",
            )?
            .execute(params![
                new_id("uau_"),
                id,
                auth.email,
                auth.name,
                auth.picture,
                auth.passport_authorization_id,
                scopes,
                now_ms()
            ])?;
            Ok(())
        })
        .await
    }

    /// The authorisation recorded for `email` on the session, if any.
    pub async fn user_auth(&self, tenant_id: &str, session: &str, email: &str) -> StoreResult<Option<UserAuth>> {
        let (tenant_id, session, email) = (tenant_id.to_owned(), session.to_owned(), email.to_owned());
        self.read(move |c| {
            let Some(id) = resolve_optional(c, &tenant_id, &session)? else { return Ok(None) };
            let row = c
                .prepare_cached(
                    "SELECT id, session_id, email, name, picture, passport_authorization_id, scopes, status,
                            created_at, updated_at
                     FROM session_user_auth WHERE session_id = ?1 AND email = ?2",
                )?
                .query_row(params![id, email], user_auth_from_row)
                .optional()?;
            row.map(|(auth, scopes)| {
                let scopes = serde_json::from_str(&scopes).map_err(|e| StoreError::Internal(e.to_string()))?;
                Ok(UserAuth { scopes, ..auth })
            })
            .transpose()
        })
        .await
    }
}

/// The record, and its scopes as stored (JSON).
fn user_auth_from_row(r: &Row<'_>) -> rusqlite::Result<(UserAuth, String)> {
    let auth = UserAuth {
        id: r.get(0)?,
        session_id: r.get(1)?,
        email: r.get(2)?,
        name: r.get(3)?,
        picture: r.get(4)?,
        passport_authorization_id: r.get(5)?,
        scopes: Vec::new(),
        status: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
    };
    Ok((auth, r.get(6)?))
}
