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
