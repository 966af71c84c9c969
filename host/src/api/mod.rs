//! HTTP API: one router per resource, composed here, all answering in the envelope.
//!
//! Handlers are thin: parse (extractors in [`crate::envelope::extract`]), authorise
//! ([`auth`]), call one store operation, answer ([`crate::envelope`]).

pub mod auth;
pub mod file_path;

mod admin;
mod apps;
mod backends;
mod convex;
mod plugins;
mod preview;
mod runs;

pub use runs::RunAnswers;
mod services;
mod sessions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, Method, Request, Response, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use self::auth::{Admin, TokenVerifier};
use crate::config::Config;
use crate::envelope::extract::BodyLimit;
use crate::envelope::{ApiError, ErrorCode};
use crate::envelope::{ApiResult, ok};
use crate::workflow::catalog::StepKinds;
use crate::workflow::loader::Workflows;
use crate::workflow::runs::Runs;
use axum::extract::State;
use stage_runtime::Runtime;
use stage_store::tenants::Principal;
use stage_store::{Store, new_id};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The embedded services' shared state (mounted at `/api/v1/<service>`).
    pub services: crate::services::ServiceState,
    pub config: Arc<Config>,
    /// The identity of credential-less loopback requests in `--auth local` mode.
    pub local_admin: Principal,
    pub runtime: Arc<Runtime>,
    pub kinds: Arc<StepKinds>,
    pub workflows: Arc<Workflows>,
    /// Runs of apps' workflows for callers.
    pub runs: Arc<Runs>,
    /// App versions' API backends.
    pub backends: Arc<crate::workflow::backends::Backends>,
    /// Verifies end-user tokens when a JWT key is configured.
    pub tokens: Option<Arc<TokenVerifier>>,
    /// The preview page: builds, the UI kit, page tokens, render events.
    pub previews: Arc<crate::preview::Previews>,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .nest("/stage", sessions::router().merge(apps::router()))
        .merge(admin::router())
        .merge(runs::router())
        .merge(plugins::router())
        .route("/runtime", get(runtime_stats))
        .merge(services::router(&state));
    Router::new()
        .nest("/api/v1", v1)
        .merge(convex::router())
        .merge(backends::router())
        .merge(preview::router())
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(axum::Extension(BodyLimit(state.config.limits.max_request_bytes)))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::loopback_host_only))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("internal error: the request handler crashed").into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(|response: &Response<_>, latency: Duration, span: &Span| {
                    span.record("status", response.status().as_u16());
                    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                    tracing::info!("request finished");
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .with_state(state)
}

/// One span per request: id, method, route, and (once authenticated) tenant, then status
/// and latency.
fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path().to_owned(), |p| p.as_str().to_owned());
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!(
        "request",
        id,
        method = %request.method(),
        route,
        tenant = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    )
}

#[derive(Clone)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        new_id("req_").parse().ok().map(RequestId::new)
    }
}

/// Counters of the wasm runtime and of the in-memory caches (admin only).
async fn runtime_stats(State(state): State<AppState>, _: Admin) -> ApiResult<serde_json::Value> {
    Ok(ok(serde_json::json!({
        "components": state.runtime.component_stats(),
        "caches": {
            "workflows": state.workflows.cache_stats(),
            "components": state.runtime.cache_stats(),
            "backends": state.backends.cache_stats(),
            "plugins": state.kinds.cache_stats(),
            "apps": state.store.app_cache_stats(),
            "previewBuilds": state.previews.cache_stats(),
        },
    })))
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{} does not accept {method}", uri.path()))
}

/// 422 for an app file with problems: the first in the message, every one (with its JSON
/// path) in `details.problems`.
fn file_problems(path: &str, problems: &[crate::workflow::Problem]) -> ApiError {
    let first = problems.first().map(ToString::to_string).unwrap_or_default();
    ApiError::validation(format!("{path} has {} problem(s): {first}", problems.len()))
        .with_details(serde_json::json!({ "problems": problems }))
}
