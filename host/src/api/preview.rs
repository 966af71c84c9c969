//! The preview page and what it loads: `GET /s/:id` (the page; `:id` is a session id or
//! the sid of the app attached to it), `GET /s/:id/state` (its render and build, as JSON),
//! `GET /s/:id/b/:build/*path` (a compiled module of a build), `GET /_stage/preview/*file`
//! (the page's script and style, the UI kit, the `@stage/*` modules),
//! `GET /api/v1/stage/sessions/:id/events` (render events, server-sent) and
//! `GET /api/v1/stage/apps/:sid/events` (an app's new versions, server-sent).
//!
//! By a session id the page shows the session's working copy: its current files from its
//! last render's entry, again at each render. By an app sid it shows the app's published
//! (active) version: the files the version pinned, from the entry the session rendered when
//! it was published; editing or rendering the session does not change it, publishing a new
//! version does (the page hears of it and shows it). What breaks on an app's page is shown
//! there and not recorded: the session's render error is the working copy's.
//!
//! A page is viewable by whoever has its link, as in the original Stage: the session id
//! (or app sid) is the capability. What the page's code may call with its token is in
//! [`crate::preview::PreviewTokens`].

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, REFERRER_POLICY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;

use super::AppState;
use super::auth::authenticate;
use super::sessions::DEFAULT_ENTRY;
use crate::envelope::extract::{PathParams, Query};
use crate::envelope::{ApiError, ErrorCode};
use crate::preview::page::{self, PageInput, PageState, PublishedState};
use crate::preview::{Build, BuildError, PreviewEvent, TokenScope};
use stage_store::preview::PreviewTarget;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/s/{id}", get(preview_page))
        .route("/s/{id}/state", get(preview_state))
        .route("/s/{id}/b/{build}/{*path}", get(module))
        .route("/_stage/preview/{*file}", get(asset))
        .route("/api/v1/stage/sessions/{id}/events", get(events))
        .route("/api/v1/stage/apps/{sid}/events", get(app_events))
        .route("/api/v1/stage/sessions/{id}/render/error", axum::routing::post(report_error).delete(clear_error))
}

/// Longest error text a page may report.
pub const MAX_REPORTED_ERROR_BYTES: usize = 16 * 1024;

/// Who may act on a session's preview: an API key (or the local admin) of its tenant, or
/// the session's own preview token.
async fn preview_caller(
    state: &AppState,
    parts: &axum::http::request::Parts,
    target: &PreviewTarget,
    query_token: Option<&str>,
) -> Result<(), ApiError> {
    let scope = TokenScope::Session(&target.session_id);
    let unknown = || ApiError::not_found(format!("no session or app {}", target.session_id));
    token_or_key(state, parts, scope, &target.tenant_id, query_token, unknown).await
}

/// A caller with the preview token of `scope`, or an API key (or the local admin) of
/// `tenant_id`; another tenant's key gets `unknown` (as if there were nothing there).
async fn token_or_key(
    state: &AppState,
    parts: &axum::http::request::Parts,
    scope: TokenScope<'_>,
    tenant_id: &str,
    query_token: Option<&str>,
    unknown: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    let bearer = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(crate::preview::TOKEN_PREFIX));
    match query_token.or(bearer) {
        Some(token) if state.previews.tokens.verify(token, scope) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            match scope {
                TokenScope::Session(_) => "the preview token is not this session's",
                TokenScope::App(_) => "the preview token is not this app's",
            },
        )),
        None => {
            let principal = authenticate(parts, state).await?;
            if principal.tenant_id == tenant_id { Ok(()) } else { Err(unknown()) }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportedError {
    error: String,
}

#[derive(serde::Serialize)]
struct ErrorRecorded {
    error: Option<String>,
    /// `false` before the session's first render (there is no render state to hold it).
    recorded: bool,
}

/// `POST …/render/error {error}`: what the page saw go wrong (the REST twin of
/// `stage:reportError`).
async fn report_error(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    request: axum::extract::Request,
) -> crate::envelope::ApiResult<ErrorRecorded> {
    let (parts, body) = request.into_parts();
    let target = target(&state, &id).await?;
    preview_caller(&state, &parts, &target, None).await?;
    let bytes = axum::body::to_bytes(body, MAX_REPORTED_ERROR_BYTES + 1024)
        .await
        .map_err(|_| ApiError::too_large(format!("the error may be at most {MAX_REPORTED_ERROR_BYTES} bytes")))?;
    let reported: ReportedError = crate::envelope::extract::parse_json(&bytes)?;
    if reported.error.len() > MAX_REPORTED_ERROR_BYTES {
        return Err(ApiError::too_large(format!(
            "the error is {} bytes; it may be at most {MAX_REPORTED_ERROR_BYTES}",
            reported.error.len()
        )));
    }
    let recorded =
        state.store.set_render_error(&target.tenant_id, &target.session_id, Some(reported.error.clone())).await?;
    Ok(crate::envelope::ok(ErrorRecorded { error: Some(reported.error), recorded }))
}

/// `DELETE …/render/error`: the twin of `stage:clearError`.
async fn clear_error(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    request: axum::extract::Request,
) -> crate::envelope::ApiResult<ErrorRecorded> {
    let (parts, _) = request.into_parts();
    let target = target(&state, &id).await?;
    preview_caller(&state, &parts, &target, None).await?;
    let recorded = state.store.set_render_error(&target.tenant_id, &target.session_id, None).await?;
    Ok(crate::envelope::ok(ErrorRecorded { error: None, recorded }))
}

impl From<BuildError> for ApiError {
    fn from(error: BuildError) -> ApiError {
        match error {
            BuildError::Store(e) => e.into(),
            BuildError::Unknown(_) => ApiError::not_found(error.to_string()),
            BuildError::Crashed(_) => ApiError::internal(error.to_string()),
        }
    }
}

async fn target(state: &AppState, id: &str) -> Result<PreviewTarget, ApiError> {
    state.store.preview_target(id).await?.ok_or_else(|| ApiError::not_found(format!("no session or app {id}")))
}

/// The render state and the build the page shows: the session's last render, or on an
/// app's page its active version.
async fn page_state(state: &AppState, id: &str, target: &PreviewTarget) -> Result<PageState, ApiError> {
    if let Some(sid) = target.published_app() {
        let (published, build) = published_build(state, target, sid).await?;
        return Ok(PageState {
            entry_url: Some(module_url(id, &build.id, &published.entry)),
            build: Some(build.id.clone()),
            problems: build.report.clone(),
            render: None,
            published: Some(published),
        });
    }
    let status = state.store.session_status(&target.tenant_id, &target.session_id).await?;
    let Some(render) = status.render else {
        return Ok(PageState { render: None, published: None, build: None, entry_url: None, problems: None });
    };
    let build =
        state.previews.build(&state.store, &target.tenant_id, &target.session_id, &render.entry, &status.files).await?;
    Ok(PageState {
        entry_url: Some(module_url(id, &build.id, &render.entry)),
        build: Some(build.id.clone()),
        problems: build.report.clone(),
        render: Some(render),
        published: None,
    })
}

/// The app's active version and its build.
async fn published_build(
    state: &AppState,
    target: &PreviewTarget,
    sid: &str,
) -> Result<(PublishedState, std::sync::Arc<Build>), ApiError> {
    let published = state
        .store
        .published_version(&target.tenant_id, sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no session or app {sid}")))?;
    let entry = published.entry.clone().unwrap_or_else(|| DEFAULT_ENTRY.to_owned());
    let build = state.previews.build_published(&state.store, &published, &entry).await?;
    let shown = PublishedState { version: published.version, entry, published_at: published.published_at };
    Ok((shown, build))
}

/// Characters escaped in a module URL's path segments.
const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'#').add(b'%').add(b'?').add(b'<').add(b'>').add(b'`');

fn module_url(id: &str, build: &str, path: &str) -> String {
    let encoded: Vec<String> = path.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
    format!("/s/{id}/b/{build}{}", encoded.join("/"))
}

async fn preview_page(State(state): State<AppState>, PathParams(id): PathParams<String>) -> Result<Response, ApiError> {
    let target = target(&state, &id).await?;
    let page_state = page_state(&state, &id, &target).await?;
    let nonce = stage_ids::random_token(24);
    let input = PageInput { id: &id, target: &target, state: page_state, nonce: &nonce };
    let (html, csp) = page::render(&state.previews, &input);
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers
        .insert(CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).map_err(|e| ApiError::internal(e.to_string()))?);
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok((headers, html).into_response())
}

async fn preview_state(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let target = target(&state, &id).await?;
    let page_state = page_state(&state, &id, &target).await?;
    Ok(([(CACHE_CONTROL, "no-store")], axum::Json(page_state)).into_response())
}

async fn module(
    State(state): State<AppState>,
    PathParams((id, build, path)): PathParams<(String, String, String)>,
) -> Result<Response, ApiError> {
    let target = target(&state, &id).await?;
    let build = find_build(&state, &target, &build).await?;
    let path = format!("/{}", path.trim_start_matches('/'));
    let module = build
        .modules
        .get(&path)
        .ok_or_else(|| ApiError::not_found(format!("build {} has no module {path}", build.id)))?;
    Ok((
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8".to_owned()),
            // A build's URL names its content: it never changes.
            (CACHE_CONTROL, "private, max-age=31536000, immutable".to_owned()),
            (ETAG, format!("\"{}\"", module.hash)),
        ],
        module.code.clone(),
    )
        .into_response())
}

/// The build `id` of the page's owner (the session, or on an app's page the app): from
/// memory, or compiled again when it is the owner's current one (after a restart, or once
/// evicted).
async fn find_build(state: &AppState, target: &PreviewTarget, id: &str) -> Result<std::sync::Arc<Build>, ApiError> {
    let owner = target.published_app().unwrap_or(&target.session_id);
    match state.previews.cached_build(owner, id).await {
        Ok(build) => return Ok(build),
        Err(BuildError::Unknown(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(sid) = target.published_app() {
        let (_, build) = published_build(state, target, sid).await?;
        return if build.id == id {
            Ok(build)
        } else {
            Err(ApiError::not_found(format!("build {id} is gone: the app has a new version since (reload the page)")))
        };
    }
    let status = state.store.session_status(&target.tenant_id, &target.session_id).await?;
    let gone = || ApiError::not_found(format!("build {id} is gone: the session has changed since (reload the page)"));
    let render = status.render.ok_or_else(gone)?;
    let build =
        state.previews.build(&state.store, &target.tenant_id, &target.session_id, &render.entry, &status.files).await?;
    if build.id == id { Ok(build) } else { Err(gone()) }
}

async fn asset(State(state): State<AppState>, PathParams(file): PathParams<String>) -> Result<Response, ApiError> {
    let javascript = "text/javascript; charset=utf-8";
    let (content_type, body, immutable): (&str, String, bool) = match file.as_str() {
        "page.js" => (javascript, include_str!("../preview/client/page.js").to_owned(), false),
        "page.css" => ("text/css; charset=utf-8", include_str!("../preview/client/page.css").to_owned(), false),
        "stage/app.js" => (javascript, include_str!("../preview/client/stage/app.js").to_owned(), false),
        "stage/kv.js" => (javascript, include_str!("../preview/client/stage/kv.js").to_owned(), false),
        "stage/runtime.js" => (javascript, include_str!("../preview/client/stage/runtime.js").to_owned(), false),
        "stage/utils.js" => (javascript, include_str!("../preview/client/stage/utils.js").to_owned(), false),
        other => {
            let kit = other
                .strip_prefix("ui/")
                .and_then(|f| f.strip_suffix(".js"))
                .and_then(|hash| state.previews.kit.values().find(|m| m.hash == hash));
            match kit {
                Some(module) => (javascript, module.code.clone(), true),
                None => return Err(ApiError::not_found(format!("no preview file {other}"))),
            }
        }
    };
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    Ok(([(CONTENT_TYPE, content_type), (CACHE_CONTROL, cache)], body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    token: Option<String>,
}

/// Render events of a session: `event: ready` first, then `event: render` with
/// `{entry, version, error}` at each render. Callers: an API key (or the local admin) of the
/// session's tenant, or the session's preview token in `?token=` (an `EventSource` cannot
/// send headers).
async fn events(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    Query(query): Query<EventsQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let target = target(&state, &id).await?;
    let (parts, _) = request.into_parts();
    preview_caller(&state, &parts, &target, query.token.as_deref()).await?;
    let session = target.session_id.clone();
    Ok(event_stream(&state, "render", move |event| match event {
        PreviewEvent::Render(render) if render.session_id == session => Some(named_event("render", render)),
        _ => None,
    }))
}

/// An app's new versions: `event: ready` first, then `event: publish` with `{version}` at
/// each version published. Callers: an API key (or the local admin) of the app's tenant,
/// or the preview token of the app's page in `?token=`.
async fn app_events(
    State(state): State<AppState>,
    PathParams(sid): PathParams<String>,
    Query(query): Query<EventsQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let unknown = || ApiError::not_found(format!("app {sid} not found"));
    let (tenant_id, app) = state.store.find_app(&sid).await?.ok_or_else(unknown)?;
    let (parts, _) = request.into_parts();
    let scope = TokenScope::App(&app.sid);
    token_or_key(&state, &parts, scope, &tenant_id, query.token.as_deref(), unknown).await?;
    Ok(event_stream(&state, "publish", move |event| match event {
        PreviewEvent::Publish(published) if published.app_sid == app.sid => Some(named_event("publish", published)),
        _ => None,
    }))
}

/// Server-sent events: `event: ready`, then each preview event `pick` keeps. A listener
/// that fell behind hears an empty event of its `kind`, to look again.
fn event_stream(
    state: &AppState,
    kind: &'static str,
    pick: impl Fn(&PreviewEvent) -> Option<Event> + Send + 'static,
) -> Response {
    let receiver = state.previews.events.subscribe();
    let first = Event::default().event("ready").data("{}");
    let stream =
        futures_util::stream::unfold((Some(first), receiver, pick), move |(first, mut receiver, pick)| async move {
            if let Some(first) = first {
                return Some((Ok::<Event, Infallible>(first), (None, receiver, pick)));
            }
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Some(event) = pick(&event) {
                            return Some((Ok(event), (None, receiver, pick)));
                        }
                    }
                    // Fell behind: tell the listener to look again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(Event::default().event(kind).data("{}")), (None, receiver, pick)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    (StatusCode::OK, [(CACHE_CONTROL, "no-store")], sse).into_response()
}

fn named_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned()))
}
