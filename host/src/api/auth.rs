//! Who is calling: API keys (`Authorization: Bearer <key>` or `Convex <key>`), or the local
//! admin for credential-less requests made on this machine in `--auth local` mode.
//!
//! "Made on this machine" is more than a loopback peer: a reverse proxy on the same machine
//! connects from loopback too, and so does a web page the local user visits. A request is
//! the local admin only from a loopback peer, without a proxy's forwarding header
//! ([`FORWARDING_HEADERS`]) and without the marks of a web page (`Origin`, or a
//! `Sec-Fetch-Site` other than `none`); anything else is unauthenticated. And in local
//! mode the server answers only requests whose `Host` names loopback
//! ([`loopback_host_only`]), so a page cannot reach it through a rebinding DNS name.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::AuthMode;
use crate::envelope::{ApiError, ErrorCode};
use crate::workflow::caller::{Caller, EndUser};
use stage_store::tenants::Principal;

/// The authenticated user of a request (an API key's, or the local admin).
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(Authenticated)
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
        None => match local_admin(parts, state) {
            Ok(()) => state.local_admin.clone(),
            Err(why) => {
                let hint = why.hint();
                return Err(unauthorized(&format!(
                    "missing credentials: send `Authorization: Bearer <api key>`{hint}"
                )));
            }
        },
    };
    tracing::Span::current().record("tenant", principal.tenant_id.as_str());
    Ok(principal)
}

/// The caller of a backend request, and whether the host consumed its `Authorization`.
///
/// A Stage API key must be valid (else 401) and a verifiable end-user token identifies the
/// user; both are consumed. Any other `Authorization` (a token of the app's own, or one this
/// server cannot verify) leaves the caller anonymous and passes through to the backend,
/// which may have its own scheme.
pub async fn backend_caller(parts: &Parts, state: &AppState) -> Result<(Caller, bool), ApiError> {
    let token = parts.headers.get(AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(presented_key);
    match token {
        Some(token) if token.starts_with(API_KEY_PREFIX) => Ok((Caller::User(authenticate(parts, state).await?), true)),
        Some(token) => match state.tokens.as_ref().map(|verifier| verifier.verify(token)) {
            Some(Ok(user)) => Ok((Caller::EndUser(user), true)),
            _ => Ok((Caller::Anonymous, false)),
        },
        None if parts.headers.contains_key(AUTHORIZATION) => Ok((Caller::Anonymous, false)),
        None => Ok((local_admin_or_anonymous(parts, state), false)),
    }
}

/// The local admin for a credential-less request made on this machine in `--auth local`
/// mode, else nobody.
fn local_admin_or_anonymous(parts: &Parts, state: &AppState) -> Caller {
    match local_admin(parts, state) {
        Ok(()) => Caller::User(state.local_admin.clone()),
        Err(_) => Caller::Anonymous,
    }
}

/// Headers a reverse proxy, load balancer or CDN adds when it forwards a request (with
/// every `x-forwarded-*`): a request carrying one comes from elsewhere, whatever its peer.
pub const FORWARDING_HEADERS: [&str; 13] = [
    "forwarded",
    "via",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
    "x-original-host",
    "x-envoy-external-address",
    "x-proxyuser-ip",
];

/// Why a credential-less request is not the local admin.
enum NotLocalAdmin {
    /// `--auth required`, or a peer that is not loopback.
    Elsewhere,
    Forwarded,
    FromWebPage,
}

impl NotLocalAdmin {
    /// What the 401 message adds.
    fn hint(&self) -> &'static str {
        match self {
            NotLocalAdmin::Elsewhere => "",
            NotLocalAdmin::Forwarded => {
                " (a request forwarded by a proxy is never the local admin: run the server with `--auth required`)"
            }
            NotLocalAdmin::FromWebPage => {
                " (a request from a web page, with an Origin header or a Sec-Fetch-Site other than none, is never the local admin)"
            }
        }
    }
}

/// Whether a credential-less request is the local admin.
fn local_admin(parts: &Parts, state: &AppState) -> Result<(), NotLocalAdmin> {
    let loopback = parts.extensions.get::<ConnectInfo<SocketAddr>>().is_some_and(|peer| peer.0.ip().is_loopback());
    if state.config.auth != AuthMode::Local || !loopback {
        Err(NotLocalAdmin::Elsewhere)
    } else if is_forwarded(&parts.headers) {
        Err(NotLocalAdmin::Forwarded)
    } else if is_from_web_page(&parts.headers) {
        Err(NotLocalAdmin::FromWebPage)
    } else {
        Ok(())
    }
}

fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        FORWARDING_HEADERS.contains(&name) || name.starts_with("x-forwarded-")
    })
}

/// Browsers send `Origin` with every request a page makes but simple GETs, and
/// `Sec-Fetch-Site: none` only when the user made the request (address bar, bookmark).
fn is_from_web_page(headers: &HeaderMap) -> bool {
    headers.contains_key(ORIGIN) || headers.get("sec-fetch-site").is_some_and(|site| site != "none")
}

/// In `--auth local` mode, refuses (403) every request whose `Host` (and request-target
/// authority, if any) does not name loopback: a web page that rebinds its own DNS name to
/// 127.0.0.1 sends its own name, and must not reach the local admin.
pub async fn loopback_host_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.config.auth != AuthMode::Local || addressed_to_loopback(request.headers(), request.uri()) {
        return next.run(request).await;
    }
    let host = request.headers().get(HOST).map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned());
    let named = host.map_or_else(|| "no Host".to_owned(), |host| format!("Host {host:?}"));
    ApiError::new(
        ErrorCode::Forbidden,
        format!(
            "this server runs with `--auth local` and answers only requests addressed to a loopback name \
             (localhost, *.localhost, 127.x.x.x, [::1]); this one has {named}. To serve other names (behind a \
             reverse proxy, or to other machines), run it with `--auth required` and send API keys"
        ),
    )
    .into_response()
}

/// Whether every `Host` and the request target's authority (if any) name loopback, and
/// there is at least one of them.
fn addressed_to_loopback(headers: &HeaderMap, uri: &Uri) -> bool {
    let hosts: Vec<&[u8]> = headers
        .get_all(HOST)
        .iter()
        .map(|h| h.as_bytes())
        .chain(uri.authority().map(|a| a.as_str().as_bytes()))
        .collect();
    !hosts.is_empty() && hosts.into_iter().all(names_loopback)
}

/// `localhost`, `*.localhost`, `127.x.x.x` or `[::1]`, with any port.
fn names_loopback(host: &[u8]) -> bool {
    let Ok(authority) = http::uri::Authority::try_from(host) else { return false };
    let name = authority.host().to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let address = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    address.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
}

impl FromRequestParts<AppState> for Caller {
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
                Ok(Caller::EndUser(user))
            }
            None if parts.headers.get(AUTHORIZATION).is_none() => Ok(local_admin_or_anonymous(parts, state)),
            _ => authenticate(parts, state).await.map(Caller::User),
        }
    }
}

/// Every API key starts with this; other bearer tokens are end-user JWTs.
pub const API_KEY_PREFIX: &str = "stage_sk_";

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
    use super::{names_loopback, presented_key};

    #[test]
    fn loopback_names() {
        for host in [
            "localhost",
            "LOCALHOST:3000",
            "app.localhost",
            "localhost.",
            "127.0.0.1",
            "127.9.8.7:80",
            "[::1]",
            "[::1]:3000",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(names_loopback(host.as_bytes()), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "",
            "user@evil.example",
            "evil.example:80",
        ] {
            assert!(!names_loopback(host.as_bytes()), "{host}");
        }
    }

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
