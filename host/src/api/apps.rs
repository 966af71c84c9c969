//! `/api/v1/stage/apps`: publishing sessions as apps, versions, metadata.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::AppState;
use super::auth::Authenticated;
use super::sessions::check_name;
use crate::envelope::extract::{JsonBody, PathParams, Query, json_type};
use crate::envelope::{ApiError, ApiResult, created, ok};
use crate::workflow::backends::VersionBackend;
use crate::workflow::loader::VersionFile;
use stage_store::apps::{App, AppPatch, AppVersion, FileGuard, NewApp};
use stage_store::google::{GoogleCredentialStatus, GoogleRefreshToken};
use stage_store::now_ms;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/apps", post(publish).get(list))
        .route("/apps/{sid}", get(get_app).patch(update))
        .route("/apps/{sid}/versions", post(republish).get(versions))
        .route(
            "/apps/{sid}/google-credentials",
            axum::routing::put(set_google_credentials).get(google_credentials).delete(delete_google_credentials),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GoogleCredentialsRequest {
    refresh_token: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
}

/// Stores the app's Google refresh token, used (instead of the server's service account)
/// for its steps' Google calls. The answer never repeats the secrets.
async fn set_google_credentials(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
    JsonBody(request): JsonBody<GoogleCredentialsRequest>,
) -> ApiResult<GoogleCredentialStatus> {
    let field = |value: Option<String>, name: &str| match value {
        Some(text) if text.trim().is_empty() || text.len() > 4096 => {
            Err(ApiError::validation(format!("{name} must be a non-empty string of at most 4096 bytes")))
        }
        other => Ok(other),
    };
    let token = GoogleRefreshToken {
        refresh_token: field(Some(request.refresh_token), "refreshToken")?.unwrap_or_default(),
        client_id: field(request.client_id, "clientId")?,
        client_secret: field(request.client_secret, "clientSecret")?,
    };
    if token.client_id.is_some() != token.client_secret.is_some() {
        return Err(ApiError::validation("give clientId and clientSecret together, or neither"));
    }
    Ok(ok(state.store.set_app_google_token(&caller.tenant_id, &sid, token).await?))
}

async fn google_credentials(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
) -> ApiResult<GoogleCredentialStatus> {
    state.store.get_app(&caller.tenant_id, &sid).await?;
    Ok(ok(state.store.app_google_status(&caller.tenant_id, &sid).await?))
}

async fn delete_google_credentials(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
) -> ApiResult<GoogleCredentialStatus> {
    state.store.get_app(&caller.tenant_id, &sid).await?;
    state.store.delete_app_google_token(&caller.tenant_id, &sid).await?;
    Ok(ok(state.store.app_google_status(&caller.tenant_id, &sid).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PublishRequest {
    session_id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    config: Option<Value>,
}

async fn publish(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    JsonBody(request): JsonBody<PublishRequest>,
) -> ApiResult<App> {
    let app = NewApp {
        name: check_name(&request.name, "name")?,
        description: request.description.map(|d| check_description(&d)).transpose()?,
        config: check_config(request.config.unwrap_or_else(|| Value::Object(Map::new())))?,
    };
    let (guard, checked) = check_session(&state, &caller.tenant_id, &request.session_id).await?;
    let app = state.store.publish_app(&caller.tenant_id, &request.session_id, app, guard).await?;
    checked.published(&state, &app.sid, app.version);
    Ok(created(app))
}

async fn republish(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
) -> ApiResult<AppVersion> {
    let app = state.store.get_app(&caller.tenant_id, &sid).await?;
    let (guard, checked) = check_session(&state, &caller.tenant_id, &app.session_id).await?;
    let version = state.store.republish_app(&caller.tenant_id, &sid, guard).await?;
    checked.published(&state, &sid, version.version);
    Ok(created(version))
}

/// What publishing a session would run, checked: its workflow file and its backend.
struct Checked {
    workflows: VersionFile,
    backend: VersionBackend,
}

impl Checked {
    /// Makes the checked files the cached ones of the new version, dropping the app's older
    /// versions from memory (runs and requests in flight keep what they hold), and tells
    /// the app's preview pages (`/s/:appSid`), which then show the new version.
    fn published(self, state: &AppState, sid: &str, version: i64) {
        state.workflows.published(sid, version, self.workflows);
        state.backends.published(sid, version, self.backend);
        state.previews.events.publish(crate::preview::PublishEvent { app_sid: sid.to_owned(), version });
    }
}

/// Checks what publishing a session would run; the guard fails the publish if any checked
/// file changes before the snapshot.
async fn check_session(state: &AppState, tenant_id: &str, session: &str) -> Result<(FileGuard, Checked), ApiError> {
    let (workflows_guard, workflows) = state.workflows.check_session(tenant_id, session).await?;
    let (backend_guard, backend) = state.backends.check_session(tenant_id, session).await?;
    Ok((workflows_guard.and(backend_guard), Checked { workflows, backend }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    session_id: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Query(query): Query<ListQuery>,
) -> ApiResult<Vec<App>> {
    Ok(ok(state.store.list_apps(&caller.tenant_id, query.session_id).await?))
}

async fn get_app(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
) -> ApiResult<App> {
    Ok(ok(state.store.get_app(&caller.tenant_id, &sid).await?))
}

async fn versions(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
) -> ApiResult<Vec<AppVersion>> {
    Ok(ok(state.store.app_versions(&caller.tenant_id, &sid).await?))
}

async fn update(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(sid): PathParams<String>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> ApiResult<App> {
    let patch = parse_patch(body)?;
    Ok(ok(state.store.update_app(&caller.tenant_id, &sid, patch).await?))
}

/// Reads a metadata patch. Absent fields stay; `description: null` clears the description
/// and `repository: null` unlinks the repository.
pub(super) fn parse_patch(body: Map<String, Value>) -> Result<AppPatch, ApiError> {
    let mut patch = AppPatch::default();
    for (field, value) in body {
        match field.as_str() {
            "name" => match value {
                Value::String(name) => patch.name = Some(check_name(&name, "name")?),
                other => return Err(wrong_type("name", "a string", &other)),
            },
            "description" => match value {
                Value::Null => patch.description = Some(None),
                Value::String(text) => patch.description = Some(Some(check_description(&text)?)),
                other => return Err(wrong_type("description", "a string or null", &other)),
            },
            "config" => patch.config = Some(check_config(value)?),
            "repository" => match value {
                Value::Null => patch.repository = Some(None),
                Value::Object(repository) => patch.repository = Some(Some(check_repository(repository)?)),
                other => return Err(wrong_type("repository", "an object or null", &other)),
            },
            unknown => {
                return Err(ApiError::validation(format!(
                    "unknown field `{unknown}`; expected name, description, config, repository"
                )));
            }
        }
    }
    Ok(patch)
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::validation(format!("{field} must be {expected}, got {}", json_type(got)))
}

fn check_description(text: &str) -> Result<String, ApiError> {
    if text.chars().count() > 2000 {
        return Err(ApiError::validation("description must be at most 2000 characters"));
    }
    Ok(text.to_owned())
}

/// An app's configuration: a JSON object of at most 64 KiB.
fn check_config(config: Value) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(wrong_type("config", "an object", &config));
    }
    if config.to_string().len() > 64 * 1024 {
        return Err(ApiError::validation("config must be at most 65536 bytes of JSON"));
    }
    Ok(config)
}

const REPOSITORY_TEXT_FIELDS: [&str; 7] =
    ["provider", "owner", "name", "fullName", "url", "defaultBranch", "remoteName"];

/// A repository link: the text fields are required; `visibility` is public, private or
/// internal; `linkedAt` (Unix ms) defaults to now.
fn check_repository(mut repository: Map<String, Value>) -> Result<Value, ApiError> {
    for field in repository.keys() {
        if !REPOSITORY_TEXT_FIELDS.contains(&field.as_str()) && field != "visibility" && field != "linkedAt" {
            return Err(ApiError::validation(format!(
                "unknown field `repository.{field}`; expected provider, owner, name, fullName, url, visibility, defaultBranch, remoteName, linkedAt"
            )));
        }
    }
    for field in REPOSITORY_TEXT_FIELDS {
        match repository.get(field) {
            Some(Value::String(text)) if !text.trim().is_empty() && text.len() <= 512 => {}
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "repository.{field} must be a non-empty string of at most 512 bytes, got {}",
                    json_type(other)
                )));
            }
            None => return Err(ApiError::validation(format!("repository.{field} is required"))),
        }
    }
    let url = repository["url"].as_str().unwrap_or_default();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::validation(format!("repository.url must be an http(s) URL, got {url:?}")));
    }
    match repository.get("visibility") {
        Some(Value::String(v)) if ["public", "private", "internal"].contains(&v.as_str()) => {}
        Some(other) => {
            return Err(ApiError::validation(format!(
                "repository.visibility must be \"public\", \"private\" or \"internal\", got {other}"
            )));
        }
        None => return Err(ApiError::validation("repository.visibility is required")),
    }
    match repository.get("linkedAt") {
        None | Some(Value::Null) => {
            repository.insert("linkedAt".into(), Value::from(now_ms()));
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|t| t >= 0) => {}
        Some(other) => {
            return Err(ApiError::validation(format!(
                "repository.linkedAt must be a time in Unix milliseconds, got {other}"
            )));
        }
    }
    Ok(Value::Object(repository))
}
