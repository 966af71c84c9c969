//! Published API backends: `ANY /stage/:appSid/api` and `ANY /stage/:appSid/api/*` are
//! served by the app version's backend, a `wasi:http/proxy` component pushed as
//! `/app/backend.wasm` (with an optional [`manifest`], `/app/backend.json`).
//!
//! The prefix is stripped (`/stage/app_1/api/users?x=1` reaches the guest as `/users?x=1`);
//! method and headers pass through, and the body streams in, bounded by the backend's limits. Hop-by-hop
//! headers are dropped, and so is every client-sent `x-stage-*` header: the host sets
//! `x-stage-app-sid` and `x-stage-user-email|name|id` from the verified caller. A Stage
//! credential (API key or end-user token) is consumed here and never reaches the guest;
//! any other `Authorization` passes through for the backend's own use. The response is
//! framed by the host and its cookies are scoped to the app ([`app_headers::sanitize`]).
//!
//! Publishing validates and precompiles the backend, so a broken component fails publish
//! (422) and the first request does not compile. A version's backend settings (component
//! hash, policy, limits) are kept in a bounded [`Cache`]; the compiled component is asked
//! of the runtime by hash for each request (a hit in memory, else its artifact on disk,
//! else the version's bytes), and publishing a version drops the app's older versions.

mod compute;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use wasmtime_wasi_http::Error as HttpError;

use self::compute::AppCompute;
use super::AppState;
use super::auth::backend_caller;
use crate::envelope::app_headers::{self, HOP_BY_HOP};
use crate::envelope::{ApiError, ErrorCode};
use crate::workflow::backends::{BackendError, WASM_PATH, manifest};
use crate::workflow::plan::RunError;
use stage_runtime::{BackendCall, Failure, RequestBody};

/// Prefix of the headers only the host may set.
const HOST_HEADER_PREFIX: &str = "x-stage-";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/stage/{app}/api", any(serve))
        .route("/stage/{app}/api/", any(serve))
        .route("/stage/{app}/api/{*rest}", any(serve))
}

async fn serve(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (sid, rest) = split_path(parts.uri.path())
        .ok_or_else(|| ApiError::not_found(format!("no route for {}", parts.uri.path())))?;
    let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (caller, consumed_authorization) = backend_caller(&parts, &state).await?;
    let (tenant_id, app, caller) = state.runs.find_app(&sid, caller).await?;
    let backend = state.backends.of_version(&sid, app.version).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "app {sid} (version {}) has no backend: push {WASM_PATH} to its session and publish",
            app.version
        ))
    })?;

    // One of the tenant's slots for the whole request (and what it starts through compute).
    let deadline = tokio::time::Instant::now() + backend.limits.wall_time();
    let _slot = state.runtime.admission().admit(&tenant_id, deadline).await.map_err(RunError::Busy)?;

    // The body streams into the guest, bounded: past the limit the guest's read fails and
    // the client gets 413 whatever the guest answers.
    let limit = backend.limits.input_bytes;
    let too_large = || ApiError::too_large(format!("the request body exceeds the backend's limit of {limit} bytes"));
    let declared = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let oversized = Arc::new(AtomicBool::new(false));
    let flag = oversized.clone();
    let body: RequestBody = Limited::new(body, limit)
        .map_err(move |error| {
            if error.is::<LengthLimitError>() {
                flag.store(true, Ordering::Relaxed);
                HttpError::HttpRequestBodySize(Some(limit as u64))
            } else {
                HttpError::ConnectionTerminated
            }
        })
        .boxed_unsync();
    let uri = guest_uri(&parts.headers, &rest, parts.uri.query())?;
    let mut headers = forwarded_headers(&parts.headers, consumed_authorization);
    let auth = caller.auth();
    let identity_headers = [
        ("x-stage-app-sid", Some(sid.as_str())),
        ("x-stage-user-email", auth.email.as_deref()),
        ("x-stage-user-name", auth.name.as_deref()),
        ("x-stage-user-id", auth.user_id.as_deref()),
    ];
    for (name, value) in identity_headers {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let mut guest_request = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("the request cannot be passed to the backend: {e}")))?;
    *guest_request.headers_mut() = headers;

    let identity = caller.identity(&tenant_id, &sid);
    let wait = backend.limits.wall_time();
    let compute = Arc::new(AppCompute { state: state.clone(), tenant_id, app_sid: app.sid, caller, wait });
    let call = BackendCall {
        request: guest_request,
        identity,
        policy: backend.policy.clone(),
        limits: backend.limits,
        compute,
    };
    let answer = state.runtime.serve_backend(&backend.prepared, call).await;
    if oversized.load(Ordering::Relaxed) {
        return Err(too_large());
    }
    // The request log (this request's span, with its id) keeps what the guest logged.
    for line in &answer.log {
        tracing::info!(app = %sid, level = line.level, message = %line.message, "backend log");
    }
    if !answer.stdout.is_empty() || !answer.stderr.is_empty() {
        tracing::info!(app = %sid, stdout = %answer.stdout, stderr = %answer.stderr, "backend output");
    }
    match answer.outcome {
        Ok(response) => client_response(response, &sid, &request_id),
        Err(failure) => {
            tracing::warn!(app = %sid, error = %failure, "backend request failed");
            Err(failure_error(&failure, &request_id))
        }
    }
}

/// `("app_1", "/users")` from `/stage/app_1/api/users`; `"/"` when nothing follows `api`.
fn split_path(path: &str) -> Option<(String, String)> {
    let (sid, tail) = path.strip_prefix("/stage/")?.split_once('/')?;
    let rest = tail.strip_prefix("api")?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some((sid.to_owned(), if rest.is_empty() { "/".to_owned() } else { rest.to_owned() }))
}

/// The URI the guest sees: the client's host, the path after the prefix, the query.
fn guest_uri(headers: &HeaderMap, rest: &str, query: Option<&str>) -> Result<Uri, ApiError> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.parse::<http::uri::Authority>().is_ok())
        .unwrap_or("localhost");
    let uri = match query {
        Some(query) => format!("http://{host}{rest}?{query}"),
        None => format!("http://{host}{rest}"),
    };
    uri.parse().map_err(|_| ApiError::bad_request(format!("the path {rest:?} cannot be passed to the backend")))
}

/// The client's headers minus hop-by-hop ones (also those the `Connection` header names),
/// client-set `x-stage-*` ones, and the Stage credential when the host consumed it.
fn forwarded_headers(headers: &HeaderMap, consumed_authorization: bool) -> HeaderMap {
    let named_by_connection = app_headers::named_by_connection(headers);
    let mut forwarded = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str();
        let dropped = HOP_BY_HOP.contains(&lower)
            || named_by_connection.contains(name)
            || lower.starts_with(HOST_HEADER_PREFIX)
            || (consumed_authorization && name == http::header::AUTHORIZATION);
        if !dropped {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

/// The guest's response for the client, with the headers only the host may set removed
/// and its cookies scoped to the app ([`app_headers::sanitize`]): the server frames the
/// body it has. An informational status (1xx) would hand the connection to the guest.
fn client_response(response: http::Response<bytes::Bytes>, sid: &str, request_id: &str) -> Result<Response, ApiError> {
    let (mut parts, body) = response.into_parts();
    if app_headers::final_status(parts.status.as_u16()).is_none() {
        tracing::warn!(app = %sid, status = %parts.status, "backend answered an informational status");
        return Err(ApiError::new(
            ErrorCode::BackendError,
            format!("the backend answered status {}, which cannot end a response (request {request_id})", parts.status),
        )
        .with_details(json!({ "requestId": request_id })));
    }
    app_headers::sanitize(&mut parts.headers, sid);
    Ok(Response::from_parts(parts, Body::from(body)).into_response())
}

fn failure_error(failure: &Failure, request_id: &str) -> ApiError {
    ApiError::new(failure.into(), format!("{failure} (request {request_id})"))
        .with_details(json!({ "requestId": request_id }))
}

/// A backend that cannot be used, as its answer.
impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> ApiError {
        match error {
            BackendError::InvalidManifest(problems) => super::file_problems(manifest::MANIFEST_PATH, &problems),
            BackendError::Store(error) => error.into(),
            BackendError::Unavailable(message) => ApiError::internal(message),
            error @ (BackendError::ManifestWithoutComponent | BackendError::NotABackend(_)) => {
                ApiError::validation(error.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_prefix() {
        assert_eq!(split_path("/stage/app_1/api"), Some(("app_1".into(), "/".into())));
        assert_eq!(split_path("/stage/app_1/api/"), Some(("app_1".into(), "/".into())));
        assert_eq!(split_path("/stage/app_1/api/users/7"), Some(("app_1".into(), "/users/7".into())));
        assert_eq!(split_path("/stage/app_1/apix"), None);
    }

    #[test]
    fn drops_hop_by_hop_stage_and_consumed_headers() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-custom-hop"),
            ("keep-alive", "timeout=5"),
            ("x-custom-hop", "1"),
            ("x-stage-user-email", "spoof@example.com"),
            ("X-Stage-App-Sid", "app_other"),
            ("authorization", "Bearer stage_sk_x"),
            ("accept", "application/json"),
            ("x-trace", "a"),
        ] {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static(value));
        }
        let kept = |consumed| {
            let mut names: Vec<String> =
                forwarded_headers(&headers, consumed).keys().map(|n| n.as_str().to_owned()).collect();
            names.sort();
            names
        };
        assert_eq!(kept(true), ["accept", "x-trace"]);
        assert_eq!(kept(false), ["accept", "authorization", "x-trace"]);
    }
}
