//! Google access tokens for steps' requests, obtained and cached by the host so that a
//! guest never holds one.
//!
//! Two grants (REFERENCE.md, Google OAuth): the server's service account (a JWT signed
//! RS256 with the key's `private_key_id` as `kid`, exchanged with the
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` grant) and a refresh token stored per app
//! (the `refresh_token` grant). Tokens are cached per grant and scope set until shortly
//! before they expire; concurrent requests for the same grant wait for one token request.
//! The token endpoint is reached through the host's [`net::Outbound`] client and must be
//! `https` (plain `http` only on loopback), since every request to it carries a secret.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use stage_classes::ErrorClass;
use stage_runtime::CredentialError;
use stage_runtime::net::{self, Egress, Timeouts};
use stage_store::google::GoogleRefreshToken;
use stage_store::{now_ms, sha256_hex};

/// Google's token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Tokens are renewed this long before Google says they expire.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);
/// Lifetime asked for in service-account assertions (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// Bounds each phase of a token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The fields of a service-account JSON key file that the grant needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub private_key_id: String,
    pub private_key: String,
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

/// How the server obtains Google tokens.
pub struct GoogleAuthConfig {
    /// Overrides the key's `token_uri` and Google's endpoint.
    pub token_url: Option<String>,
    pub service_account: Option<ServiceAccountKey>,
    /// User to impersonate with the service account (domain-wide delegation).
    pub subject: Option<String>,
    /// OAuth client for refresh tokens that do not name their own.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl GoogleAuthConfig {
    /// Reads a service-account JSON key file.
    pub fn read_service_account(path: &Path) -> anyhow::Result<ServiceAccountKey> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("{} is not a service-account JSON key", path.display()))
    }
}

struct ServiceAccount {
    key: ServiceAccountKey,
    signer: jsonwebtoken::EncodingKey,
}

#[derive(Clone)]
struct CachedToken {
    access_token: String,
    renew_at: Instant,
}

/// Obtains and caches access tokens.
pub struct GoogleAuth {
    token_url: Option<String>,
    service_account: Option<ServiceAccount>,
    subject: Option<String>,
    client: Option<(String, String)>,
    /// One slot per grant and scope set; the async lock makes concurrent callers share a request.
    tokens: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<CachedToken>>>>>,
    outbound: net::Outbound,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl GoogleAuth {
    /// Token requests go through `outbound`. Refuses a token endpoint that would receive
    /// secrets over plain `http` off loopback.
    pub fn new(config: GoogleAuthConfig, outbound: net::Outbound) -> anyhow::Result<GoogleAuth> {
        let service_account = config
            .service_account
            .map(|key| {
                let signer = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
                    .context("the service account's private_key is not an RSA PEM key")?;
                anyhow::Ok(ServiceAccount { key, signer })
            })
            .transpose()?;
        let client = match (config.client_id, config.client_secret) {
            (Some(id), Some(secret)) => Some((id, secret)),
            (None, None) => None,
            _ => anyhow::bail!("give both --google-client-id and --google-client-secret, or neither"),
        };
        let auth = GoogleAuth {
            token_url: config.token_url,
            service_account,
            subject: config.subject,
            client,
            tokens: Mutex::default(),
            outbound,
        };
        net::check_credential_url(auth.token_url())
            .map_err(|why| anyhow::anyhow!("the Google token endpoint {} {why}", auth.token_url()))?;
        Ok(auth)
    }

    /// An access token for `scopes`: from the app's refresh token when it has one, else
    /// from the server's service account. The error says what is missing or what Google said.
    pub async fn access_token(
        &self,
        refresh: Option<&GoogleRefreshToken>,
        scopes: &[String],
    ) -> Result<String, CredentialError> {
        let scope = scopes.join(" ");
        let slot_key = match refresh {
            Some(refresh) => format!("refresh:{}:{scope}", sha256_hex(refresh.refresh_token.as_bytes())),
            None if self.service_account.is_some() => format!("service-account:{scope}"),
            None => {
                return Err(CredentialError::refused(
                    "no Google credentials: configure a service account (--google-service-account) or store a \
                     refresh token for the app",
                ));
            }
        };
        let slot = self.tokens.lock().expect("token cache poisoned").entry(slot_key).or_default().clone();
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.renew_at > Instant::now()) {
            return Ok(token.access_token.clone());
        }
        let form = match refresh {
            Some(refresh) => self.refresh_form(refresh)?,
            None => self.assertion_form(&scope)?,
        };
        let token = self.request_token(form).await?;
        *cached = Some(token.clone());
        Ok(token.access_token)
    }

    fn token_url(&self) -> &str {
        self.token_url
            .as_deref()
            .or_else(|| self.service_account.as_ref().and_then(|sa| sa.key.token_uri.as_deref()))
            .unwrap_or(GOOGLE_TOKEN_URL)
    }

    fn assertion_form(&self, scope: &str) -> Result<Vec<(&'static str, String)>, String> {
        let account = self.service_account.as_ref().ok_or("no Google service account is configured")?;
        let iat = now_ms() / 1000;
        let claims = AssertionClaims {
            iss: &account.key.client_email,
            scope: scope.to_owned(),
            aud: self.token_url(),
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
            sub: self.subject.as_deref(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(account.key.private_key_id.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &account.signer)
            .map_err(|e| format!("signing the service-account assertion failed: {e}"))?;
        Ok(vec![("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".into()), ("assertion", assertion)])
    }

    fn refresh_form(&self, refresh: &GoogleRefreshToken) -> Result<Vec<(&'static str, String)>, String> {
        let (client_id, client_secret) = match (&refresh.client_id, &refresh.client_secret, &self.client) {
            (Some(id), Some(secret), _) => (id.clone(), secret.clone()),
            (_, _, Some((id, secret))) => (id.clone(), secret.clone()),
            _ => {
                return Err("the app's Google refresh token has no OAuth client: store clientId and clientSecret \
                            with it or configure --google-client-id and --google-client-secret"
                    .into());
            }
        };
        Ok(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.refresh_token.clone()),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
    }

    /// Asks the token endpoint for a token. An endpoint that cannot be reached, is
    /// overloaded or answers garbage is unavailable (a retry may succeed); one that refuses
    /// the grant is final.
    async fn request_token(&self, form: Vec<(&'static str, String)>) -> Result<CachedToken, CredentialError> {
        let url = self.token_url().to_owned();
        let body = serde_urlencoded::to_string(&form).map_err(|e| format!("encoding the token request: {e}"))?;
        let request = http::Request::post(&url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(Bytes::from(body))
            .map_err(|e| format!("the Google token URL {url} is not usable: {e}"))?;
        let asked_at = Instant::now();
        let timeouts = Timeouts::uniform(TOKEN_TIMEOUT);
        // The endpoint is the operator's (a flag, or the service account's key file).
        let sent = self.outbound.send(request, Egress::PrivateAllowed, timeouts, MAX_TOKEN_RESPONSE).await;
        let response = sent.map_err(|e| {
            CredentialError::unavailable(format!("the Google token endpoint {url} could not be reached: {e}"))
        })?;
        let status = response.status();
        if !status.is_success() {
            let detail = match serde_json::from_slice::<TokenError>(response.body()) {
                Ok(error) => match error.error_description {
                    Some(description) => format!("{}: {description}", error.error),
                    None => error.error,
                },
                Err(_) => String::from_utf8_lossy(response.body()).chars().take(200).collect(),
            };
            if ErrorClass::for_status(status.as_u16()).is_retryable() {
                return Err(CredentialError::unavailable(format!(
                    "the Google token endpoint is unavailable (HTTP {status}): {detail}"
                )));
            }
            return Err(CredentialError::refused(format!(
                "the Google token endpoint refused the grant (HTTP {status}): {detail}"
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(response.body()).map_err(|e| {
            CredentialError::unavailable(format!(
                "the Google token endpoint answered something that is not a token: {e}"
            ))
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        Ok(CachedToken {
            access_token: answer.access_token,
            renew_at: asked_at + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY),
        })
    }
}
