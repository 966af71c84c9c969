//! Google OAuth refresh tokens stored per app, for the refresh-token grant. The token is
//! written and used by the host only; nothing reads it back out through the API. The token
//! and the client secret are stored sealed ([`super::secrets`]) and opened only in memory.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::secrets::{GOOGLE_CLIENT_SECRET, GOOGLE_REFRESH_TOKEN};
use super::{Store, StoreResult, now_ms};

/// What an app's owner gave so that the host can obtain Google access tokens for it.
#[derive(Clone, PartialEq, Eq)]
pub struct GoogleRefreshToken {
    pub refresh_token: String,
    /// OAuth client of the grant; the server's configured client when absent.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for GoogleRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleRefreshToken").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// What the API shows about an app's Google credentials (never the secrets).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleCredentialStatus {
    pub configured: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl Store {
    pub async fn set_app_google_token(
        &self,
        tenant_id: &str,
        app_sid: &str,
        token: GoogleRefreshToken,
    ) -> StoreResult<GoogleCredentialStatus> {
        let (tenant_id, app_sid) = (tenant_id.to_owned(), app_sid.to_owned());
        let sealer = self.sealer.clone();
        self.write(move |c| {
            super::apps::get(c, &tenant_id, &app_sid)?;
            let now = now_ms();
            let refresh_token = GOOGLE_REFRESH_TOKEN.seal(&sealer, &tenant_id, &app_sid, &token.refresh_token);
            let client_secret =
                token.client_secret.map(|secret| GOOGLE_CLIENT_SECRET.seal(&sealer, &tenant_id, &app_sid, &secret));
            c.execute(
                "INSERT INTO app_google_credentials (app_sid, tenant_id, refresh_token, client_id, client_secret, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (app_sid) DO UPDATE
                 SET refresh_token = ?3, client_id = ?4, client_secret = ?5, updated_at = ?6",
                params![app_sid, tenant_id, refresh_token, token.client_id, client_secret, now],
            )?;
            Ok(GoogleCredentialStatus { configured: true, client_id: token.client_id, updated_at: Some(now) })
        })
        .await
    }

    pub async fn delete_app_google_token(&self, tenant_id: &str, app_sid: &str) -> StoreResult<()> {
        let (tenant_id, app_sid) = (tenant_id.to_owned(), app_sid.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM app_google_credentials WHERE app_sid = ?1 AND tenant_id = ?2",
                params![app_sid, tenant_id],
            )?;
            Ok(())
        })
        .await
    }

    /// The app's refresh token (opened), `None` when none was given.
    pub async fn app_google_token(&self, tenant_id: &str, app_sid: &str) -> StoreResult<Option<GoogleRefreshToken>> {
        let (tenant_id, app_sid) = (tenant_id.to_owned(), app_sid.to_owned());
        let sealer = self.sealer.clone();
        self.read(move |c| {
            let stored: Option<(String, Option<String>, Option<String>)> = c
                .prepare_cached(
                    "SELECT refresh_token, client_id, client_secret FROM app_google_credentials
                     WHERE app_sid = ?1 AND tenant_id = ?2",
                )?
                .query_row(params![app_sid, tenant_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let Some((refresh_token, client_id, client_secret)) = stored else { return Ok(None) };
            Ok(Some(GoogleRefreshToken {
                refresh_token: GOOGLE_REFRESH_TOKEN.open(&sealer, &tenant_id, &app_sid, &refresh_token)?,
                client_id,
                client_secret: client_secret
                    .map(|secret| GOOGLE_CLIENT_SECRET.open(&sealer, &tenant_id, &app_sid, &secret))
                    .transpose()?,
            }))
        })
        .await
    }

    pub async fn app_google_status(&self, tenant_id: &str, app_sid: &str) -> StoreResult<GoogleCredentialStatus> {
        let (tenant_id, app_sid) = (tenant_id.to_owned(), app_sid.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT client_id, updated_at FROM app_google_credentials WHERE app_sid = ?1 AND tenant_id = ?2",
            )?
            .query_row(params![app_sid, tenant_id], |r| {
                Ok(GoogleCredentialStatus { configured: true, client_id: r.get(0)?, updated_at: r.get(1)? })
            })
            .optional()?
            .unwrap_or(GoogleCredentialStatus { configured: false, client_id: None, updated_at: None }))
        })
        .await
    }
}
