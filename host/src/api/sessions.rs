//! `/api/v1/stage/sessions`: sessions, their files, renders, snapshots and Google scopes.
//!
//! `:id` is a session id or the sid of the app attached to the session. The decoding and
//! checking helpers here are shared with the Convex-compatible functions in `convex/`.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post, put};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::AppState;
use super::auth::Authenticated;
use super::file_path::normalize;
use crate::config::Limits;
use crate::envelope::extract::{JsonBody, PathParams, Query, json_type};
use crate::envelope::{ApiError, ApiResult, created, ok};
use stage_store::files::{FileContent, FileHead, FileRevision, NewFile, Restored, Snapshot, WrittenFile};
use stage_store::sessions::{GoogleScopes, RenderState, SessionStatus, SessionSummary};

/// The entry rendered when a render request names none.
pub const DEFAULT_ENTRY: &str = "/app/App.tsx";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", post(create_session).get(list_sessions))
        .route("/sessions/{id}", axum::routing::delete(delete_session))
        .route("/sessions/{id}/push", post(push))
        .route("/sessions/{id}/render", post(render))
        .route("/sessions/{id}/status", get(status))
        .route("/sessions/{id}/files", get(list_files))
        .route("/sessions/{id}/files/{*path}", get(read_file).delete(delete_file))
        .route("/sessions/{id}/history/{*path}", get(file_history))
        .route("/sessions/{id}/snapshots", post(create_snapshot).get(list_snapshots))
        .route("/sessions/{id}/snapshots/{snapshot}/restore", post(restore_snapshot))
        .route("/sessions/{id}/google-scopes", put(set_google_scopes).get(google_scopes))
}

#[derive(Serialize)]
struct CreatedSession {
    id: String,
}

async fn create_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<CreatedSession> {
    let id = state.store.create_session(&caller.tenant_id).await?;
    Ok(created(CreatedSession { id }))
}

async fn list_sessions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> ApiResult<Vec<SessionSummary>> {
    Ok(ok(state.store.list_sessions(&caller.tenant_id).await?))
}

async fn delete_session(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
) -> ApiResult<Value> {
    let id = state.store.delete_session(&caller.tenant_id, &id).await?;
    Ok(ok(json!({ "id": id, "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushRequest {
    files: Map<String, Value>,
    #[serde(default)]
    encoding: Option<Value>,
}

#[derive(Serialize)]
struct PushResult {
    count: usize,
}

async fn push(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
    JsonBody(request): JsonBody<PushRequest>,
) -> ApiResult<PushResult> {
    let limits = &state.config.limits;
    let default_encoding = match &request.encoding {
        None => Encoding::Utf8,
        Some(value) => Encoding::parse(value, "encoding")?,
    };
    if request.files.len() > limits.max_files_per_session {
        return Err(ApiError::validation(format!(
            "the request holds {} files; a session holds at most {}",
            request.files.len(),
            limits.max_files_per_session
        )));
    }
    let mut files = Vec::with_capacity(request.files.len());
    for (path, value) in &request.files {
        files.push(decode_file(path, value, default_encoding, limits)?);
    }
    let written = state.store.push_files(&caller.tenant_id, &id, files, limits.max_files_per_session).await?;
    Ok(ok(PushResult { count: written.len() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderRequest {
    #[serde(default)]
    entry: Option<String>,
}

/// `{entry, version, error, problems}`: the render recorded, and what its compilation found.
#[derive(Serialize)]
struct RenderResult {
    entry: String,
    version: i64,
    error: Option<String>,
    problems: Vec<stage_store::sessions::RenderProblem>,
}

async fn render(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
    JsonBody(request): JsonBody<RenderRequest>,
) -> ApiResult<RenderResult> {
    let render = render_entry(&state, &caller.tenant_id, &id, request.entry.as_deref()).await?;
    Ok(ok(RenderResult {
        entry: render.entry,
        version: render.version,
        error: render.error,
        problems: render.problems,
    }))
}

/// Renders `entry` (default [`DEFAULT_ENTRY`]): compiles the session's files from it (the
/// preview's build) and records the render with what the compilation found, whatever it
/// found, then tells the session's preview pages.
pub(super) async fn render_entry(
    state: &AppState,
    tenant_id: &str,
    session: &str,
    entry: Option<&str>,
) -> Result<RenderState, ApiError> {
    let entry = normalize(entry.unwrap_or(DEFAULT_ENTRY), state.config.limits.max_path_bytes)?;
    let heads = state.store.list_files(tenant_id, session).await?;
    let session_id = state
        .store
        .find_session(tenant_id, session)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session {session} not found")))?
        .id;
    let build = state.previews.build(&state.store, tenant_id, &session_id, &entry, &heads).await?;
    let render = state.store.render(tenant_id, &session_id, &entry, build.outcome()).await?;
    state.previews.events.publish(crate::preview::RenderEvent {
        session_id,
        entry: render.entry.clone(),
        version: render.version,
        error: render.error.clone(),
    });
    Ok(render)
}

/// `status`: `{ session:{createdAt,lastAccessedAt}, render, files:[{path,version,size}] }`.
#[derive(Serialize)]
struct StatusView {
    session: SessionTimes,
    render: Option<RenderState>,
    files: Vec<FileEntry>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionTimes {
    created_at: i64,
    last_accessed_at: i64,
}

#[derive(Serialize)]
struct FileEntry {
    path: String,
    version: i64,
    size: i64,
}

impl From<SessionStatus> for StatusView {
    fn from(status: SessionStatus) -> StatusView {
        StatusView {
            session: SessionTimes { created_at: status.created_at, last_accessed_at: status.last_accessed_at },
            render: status.render,
            files: status
                .files
                .into_iter()
                .map(|f| FileEntry { path: f.path, version: f.version, size: f.size })
                .collect(),
        }
    }
}

async fn status(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
) -> ApiResult<StatusView> {
    Ok(ok(state.store.session_status(&caller.tenant_id, &id).await?.into()))
}

async fn list_files(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
) -> ApiResult<Vec<FileHead>> {
    Ok(ok(state.store.list_files(&caller.tenant_id, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    version: Option<i64>,
}

async fn read_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((id, path)): PathParams<(String, String)>,
    Query(query): Query<ReadQuery>,
) -> ApiResult<FileView> {
    let path = normalize(&path, state.config.limits.max_path_bytes)?;
    if let Some(version) = query.version
        && version < 1
    {
        return Err(ApiError::bad_request(format!("invalid query string: version must be 1 or more, got {version}")));
    }
    let content = state.store.read_file(&caller.tenant_id, &id, &path, query.version).await?;
    let content = content.ok_or_else(|| match query.version {
        Some(version) => ApiError::not_found(format!("file {path} has no version {version} in session {id}")),
        None => ApiError::not_found(format!("file {path} not found in session {id}")),
    })?;
    Ok(ok(FileView::new(content)))
}

async fn delete_file(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((id, path)): PathParams<(String, String)>,
) -> ApiResult<Value> {
    let path = normalize(&path, state.config.limits.max_path_bytes)?;
    let WrittenFile { path, version, .. } = state.store.delete_file(&caller.tenant_id, &id, &path).await?;
    Ok(ok(json!({ "path": path, "version": version, "deleted": true })))
}

async fn file_history(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((id, path)): PathParams<(String, String)>,
) -> ApiResult<Vec<FileRevision>> {
    let path = normalize(&path, state.config.limits.max_path_bytes)?;
    Ok(ok(state.store.file_history(&caller.tenant_id, &id, &path).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    #[serde(default)]
    name: Option<String>,
}

async fn create_snapshot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
    JsonBody(request): JsonBody<SnapshotRequest>,
) -> ApiResult<Snapshot> {
    let name = request.name.map(|n| check_name(&n, "name")).transpose()?;
    Ok(created(state.store.create_snapshot(&caller.tenant_id, &id, name).await?))
}

async fn list_snapshots(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
) -> ApiResult<Vec<Snapshot>> {
    Ok(ok(state.store.list_snapshots(&caller.tenant_id, &id).await?))
}

async fn restore_snapshot(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams((id, snapshot)): PathParams<(String, String)>,
) -> ApiResult<Restored> {
    Ok(ok(state.store.restore_snapshot(&caller.tenant_id, &id, &snapshot).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScopesRequest {
    pub scopes: Vec<String>,
}

async fn set_google_scopes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
    JsonBody(request): JsonBody<ScopesRequest>,
) -> ApiResult<GoogleScopes> {
    let scopes = check_scopes(request.scopes)?;
    Ok(ok(state.store.set_google_scopes(&caller.tenant_id, &id, scopes).await?))
}

async fn google_scopes(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(id): PathParams<String>,
) -> ApiResult<Value> {
    let scopes = state.store.google_scopes(&caller.tenant_id, &id).await?;
    Ok(ok(scopes_view(scopes)))
}

/// A session's scopes; never set reads as `{"scopes":[],"updatedAt":null}`.
fn scopes_view(scopes: Option<GoogleScopes>) -> Value {
    match scopes {
        Some(scopes) => json!(scopes),
        None => json!({ "scopes": [], "updatedAt": null }),
    }
}

/// Most scopes a session may hold, and the longest scope accepted.
const MAX_SCOPES: usize = 64;
const MAX_SCOPE_BYTES: usize = 512;

/// Validates OAuth scopes (non-empty tokens without spaces), dropping duplicates in order.
pub(super) fn check_scopes(scopes: Vec<String>) -> Result<Vec<String>, ApiError> {
    if scopes.len() > MAX_SCOPES {
        return Err(ApiError::validation(format!("scopes holds {} entries; the limit is {MAX_SCOPES}", scopes.len())));
    }
    let mut kept: Vec<String> = Vec::with_capacity(scopes.len());
    for (index, scope) in scopes.into_iter().enumerate() {
        if scope.is_empty()
            || scope.len() > MAX_SCOPE_BYTES
            || scope.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ApiError::validation(format!(
                "scopes[{index}] must be a scope such as https://www.googleapis.com/auth/spreadsheets, got {scope:?}"
            )));
        }
        if !kept.contains(&scope) {
            kept.push(scope);
        }
    }
    Ok(kept)
}

/// Checks a display name: trimmed, non-empty, at most 200 characters.
pub(super) fn check_name(name: &str, field: &str) -> Result<String, ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ApiError::validation(format!("{field} must not be empty")));
    }
    if trimmed.chars().count() > 200 {
        return Err(ApiError::validation(format!("{field} must be at most 200 characters")));
    }
    Ok(trimmed.to_owned())
}

/// How file content is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    Utf8,
    Base64,
}

impl Encoding {
    pub(super) fn parse(value: &Value, field: &str) -> Result<Encoding, ApiError> {
        match value.as_str() {
            Some("utf8" | "utf-8") => Ok(Encoding::Utf8),
            Some("base64") => Ok(Encoding::Base64),
            _ => Err(ApiError::validation(format!("{field} must be \"utf8\" or \"base64\", got {value}"))),
        }
    }
}

/// Decodes one pushed file: `"text"` or `{ "content": "…", "encoding": "utf8"|"base64" }`.
fn decode_file(raw_path: &str, value: &Value, default: Encoding, limits: &Limits) -> Result<NewFile, ApiError> {
    let path = normalize(raw_path, limits.max_path_bytes)?;
    let field = format!("files[{raw_path:?}]");
    let (content, encoding) = match value {
        Value::String(content) => (content.as_str(), default),
        Value::Object(object) => {
            if let Some(unknown) = object.keys().find(|k| *k != "content" && *k != "encoding") {
                return Err(ApiError::validation(format!(
                    "{field}: unknown field `{unknown}`; expected content, encoding"
                )));
            }
            let content = object
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::validation(format!("{field}.content must be a string")))?;
            let encoding = match object.get("encoding") {
                Some(value) => Encoding::parse(value, &format!("{field}.encoding"))?,
                None => default,
            };
            (content, encoding)
        }
        other => {
            return Err(ApiError::validation(format!(
                "{field} must be a string or an object {{content, encoding}}, got {}",
                json_type(other)
            )));
        }
    };
    let bytes = decode_content(&path, content, encoding, limits.max_file_bytes)?;
    Ok(NewFile::new(path, bytes))
}

/// Decodes file content, refusing it with 413 past `max_bytes`.
pub(super) fn decode_content(
    path: &str,
    content: &str,
    encoding: Encoding,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let bytes = match encoding {
        Encoding::Utf8 => content.as_bytes().to_vec(),
        Encoding::Base64 => BASE64
            .decode(content.trim())
            .map_err(|e| ApiError::validation(format!("content of {path} is not valid base64: {e}")))?,
    };
    if bytes.len() > max_bytes {
        return Err(ApiError::too_large(format!("file {path} is {} bytes; the limit is {max_bytes}", bytes.len())));
    }
    Ok(bytes)
}

/// A file as answered: `{ path, content, version, size, createdAt }`, plus
/// `encoding: "base64"` when the bytes are not UTF-8 text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileView {
    path: String,
    content: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    version: i64,
    size: i64,
    created_at: i64,
}

impl FileView {
    fn new(file: FileContent) -> FileView {
        let (content, encoding) = match String::from_utf8(file.bytes) {
            Ok(text) => (Value::String(text), None),
            Err(e) => (Value::String(BASE64.encode(e.as_bytes())), Some("base64")),
        };
        FileView {
            path: file.path,
            content,
            encoding,
            version: file.version,
            size: file.size,
            created_at: file.created_at,
        }
    }
}
