//! Mounts the embedded platform services ([`crate::services`]) in the API at `/api/v1`:
//! each service route authenticates like the rest of the API (API keys, or the local admin
//! in `--auth local` mode) and acts for the key's tenant and user.
//!
//! The Sheets emulator also takes the key the way Google's clients send an API key
//! (`x-goog-api-key`, `?key=`, `?access_token=`), and its authentication errors are in
//! Google's shape, so that Google's client libraries work against it.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, StatusCode};

use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::authenticate;
use crate::services::sheets::{self, GoogleError};
use crate::services::{self, ServiceCaller};
use stage_runtime::Identity;

pub(super) fn router(state: &AppState) -> Router<AppState> {
    services::router(state.services.clone())
        // A route layer, so that unknown paths and methods keep their 404 and 405 answers.
        .route_layer(middleware::from_fn_with_state(state.clone(), attach_caller))
        .with_state(())
}

/// Authenticates the request and hands the services its caller.
async fn attach_caller(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let google = sheets::owns_path(parts.uri.path());
    if google
        && !parts.headers.contains_key(AUTHORIZATION)
        && let Some(key) = google_api_key(&parts)
    {
        parts.headers.insert(AUTHORIZATION, key);
    }
    let principal = match authenticate(&parts, &state).await {
        Ok(principal) => principal,
        Err(error) if google => {
            let code = error.code.status();
            let message = if code == StatusCode::UNAUTHORIZED {
                format!(
                    "Request had invalid authentication credentials: {}. The Sheets emulator takes a Stage API key \
                     as `Authorization: Bearer <key>`, `x-goog-api-key: <key>` or `?key=<key>` (a Google client's \
                     developerKey).",
                    error.message
                )
            } else {
                error.message
            };
            return GoogleError::new(code, message).into_response();
        }
        Err(error) => return error.into_response(),
    };
    parts.extensions.insert(ServiceCaller(Identity {
        tenant_id: principal.tenant_id,
        app_sid: None,
        actor_email: Some(principal.email),
    }));
    next.run(Request::from_parts(parts, body)).await
}

/// A key sent the way Google's clients send API keys, as the `Authorization` header it
/// stands for.
fn google_api_key(parts: &axum::http::request::Parts) -> Option<HeaderValue> {
    let from_header = parts.headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let from_query = || {
        let query = parts.uri.query()?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        pairs.into_iter().find(|(name, _)| name == "key" || name == "access_token").map(|(_, value)| value)
    };
    let key = from_header.or_else(from_query).filter(|key| !key.is_empty())?;
    let mut value = HeaderValue::try_from(format!("Bearer {key}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}
