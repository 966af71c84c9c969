//! Who is calling: API keys (`Authorization: Bearer <key>` or `Convex <key>`), or the local
//! admin for credential-less loopback requests in `--auth local` mode.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use crate::config::AuthMode;
use crate::envelope::{ApiError, ErrorCode};
use crate::store::tenants::Principal;

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(Caller)
    }
}

/// A caller who must be a platform administrator (manages tenants and keys).
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = authenticate(parts, state).await?;
        if !principal.admin {
            return Err(ApiError::new(ErrorCode::Forbidden, "this route needs an admin API key"));
        }
        Ok(Admin(principal))
    }
}

/// Resolves the caller of a request, recording its tenant in the request's log span.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message);
    let principal = match parts.headers.get(AUTHORIZATION) {
        Some(header) => {
            let header = header.to_str().map_err(|_| unauthorized("the Authorization header is not readable text"))?;
            let key = presented_key(header).ok_or_else(|| {
                unauthorized("the Authorization header must be `Bearer <api key>` or `Convex <api key>`")
            })?;
            state
                .store
                .principal_for_secret(key)
                .await?
                .ok_or_else(|| unauthorized("the API key is invalid or revoked"))?
        }
        None => {
            let loopback =
                parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|peer| peer.0.ip().is_loopback());
            if state.config.auth != AuthMode::Local || !loopback {
                return Err(unauthorized("missing credentials: send `Authorization: Bearer <api key>`"));
            }
            state.local_admin.clone()
        }
    };
    tracing::Span::current().record("tenant", principal.tenant_id.as_str());
    Ok(principal)
}

/// A caller of a workflow run: an API key's user, a verified end user, or nobody.
#[derive(Debug, Clone)]
pub enum RunCaller {
    Key(Principal),
    EndUser(EndUser),
    Anonymous,
}

impl RunCaller {
    /// `{email, name, userId}` as workflow templates see `auth`.
    pub fn auth_json(&self) -> serde_json::Value {
        match self {
            RunCaller::Key(p) => serde_json::json!({ "email": p.email, "name": p.name, "userId": p.user_id }),
            RunCaller::EndUser(u) => serde_json::json!({ "email": u.email, "name": u.name, "userId": u.user_id }),
            RunCaller::Anonymous => serde_json::json!({ "email": null, "name": null, "userId": null }),
        }
    }

    /// The caller of a backend request, and whether the host consumed its `Authorization`.
    ///
    /// A Stage API key must be valid (else 401) and a verifiable end-user token identifies
    /// the user; both are consumed. Any other `Authorization` (a token of the app's own, or
    /// one this server cannot verify) leaves the caller anonymous and passes through to the
    /// backend, which may have its own scheme.
    pub async fn for_backend(parts: &Parts, state: &AppState) -> Result<(RunCaller, bool), ApiError> {
        let token = parts.headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(presented_key);
        match token {
            Some(token) if token.starts_with(API_KEY_PREFIX) => {
                Ok((RunCaller::Key(authenticate(parts, state).await?), true))
            }
            Some(token) => match state.tokens.as_ref().map(|verifier| verifier.verify(token)) {
                Some(Ok(user)) => Ok((RunCaller::EndUser(user), true)),
                _ => Ok((RunCaller::Anonymous, false)),
            },
            None if parts.headers.contains_key(AUTHORIZATION) => Ok((RunCaller::Anonymous, false)),
            None => Ok((local_admin_or_anonymous(parts, state), false)),
        }
    }
}

/// The local admin for a credential-less loopback request in `--auth local` mode, else
/// nobody.
fn local_admin_or_anonymous(parts: &Parts, state: &AppState) -> RunCaller {
    let loopback = parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|peer| peer.0.ip().is_loopback());
    if state.config.auth == AuthMode::Local && loopback {
        RunCaller::Key(state.local_admin.clone())
    } else {
        RunCaller::Anonymous
    }
}

impl FromRequestParts<AppState> for RunCaller {
    type Rejection = ApiError;

    /// API keys start with `stage_sk_`; any other bearer token must be an end-user JWT.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts.headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(presented_key);
        match token {
            Some(token) if !token.starts_with(API_KEY_PREFIX) => {
                let verifier = state.tokens.as_ref().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Unauthorized,
                        "end-user tokens are not accepted: the server has no JWT key configured",
                    )
                })?;
                let user = verifier.verify(token).map_err(|why| ApiError::new(ErrorCode::Unauthorized, why))?;
                tracing::Span::current().record("tenant", "end-user");
                Ok(RunCaller::EndUser(user))
            }
            None if parts.headers.get(AUTHORIZATION).is_none() => Ok(local_admin_or_anonymous(parts, state)),
            _ => authenticate(parts, state).await.map(RunCaller::Key),
        }
    }
}

/// Every API key starts with this; other bearer tokens are end-user JWTs.
pub const API_KEY_PREFIX: &str = "stage_sk_";

/// A verified end user, from the claims of their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub user_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Verifies end-user JWTs with the configured key (HS256 secret or RS256 public key).
pub struct TokenVerifier {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl TokenVerifier {
    /// The verifier the configuration asks for, if any.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Option<TokenVerifier>> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        let (key, algorithm) = match (&config.jwt_secret, &config.jwt_public_key) {
            (Some(secret), _) => (DecodingKey::from_secret(secret.as_bytes()), Algorithm::HS256),
            (None, Some(key)) => {
                let pem = if key.trim_start().starts_with("-----BEGIN") {
                    key.clone()
                } else {
                    std::fs::read_to_string(key)
                        .map_err(|e| anyhow::anyhow!("reading the JWT public key {key}: {e}"))?
                };
                (DecodingKey::from_rsa_pem(pem.as_bytes())?, Algorithm::RS256)
            }
            (None, None) => return Ok(None),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Some(TokenVerifier { key, validation }))
    }

    pub fn verify(&self, token: &str) -> Result<EndUser, String> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| format!("the end-user token is not valid: {e}"))?
            .claims;
        Ok(EndUser { user_id: claims.sub, email: claims.email, name: claims.name })
    }
}

/// The key of an `Authorization` value with scheme `Bearer` or `Convex` (any case).
fn presented_key(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    let key = key.trim();
    let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("convex");
    (known && !key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::presented_key;

    #[test]
    fn accepts_bearer_and_convex_schemes() {
        assert_eq!(presented_key("Bearer abc"), Some("abc"));
        assert_eq!(presented_key("bearer  abc "), Some("abc"));
        assert_eq!(presented_key("Convex abc"), Some("abc"));
        assert_eq!(presented_key("Basic abc"), None);
        assert_eq!(presented_key("Bearer"), None);
        assert_eq!(presented_key("Bearer "), None);
    }
}
