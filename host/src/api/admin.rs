//! `/api/v1/admin`: tenants and API keys (admin keys only), and `/api/v1/me`.

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Admin, Authenticated};
use super::sessions::check_name;
use crate::envelope::extract::{JsonBody, PathParams};
use crate::envelope::{ApiError, ApiResult, created, ok};
use stage_store::tenants::{ApiKey, DEFAULT_TENANT, NewApiKey, Tenant};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", post(create_tenant).get(list_tenants))
        .route("/admin/tenants/{tenant}/keys", post(create_key).get(list_keys))
        .route("/admin/keys/{key}", delete(revoke_key))
        .route("/me", get(me))
}

/// Who the caller is, as the API sees it.
async fn me(Authenticated(caller): Authenticated) -> ApiResult<Value> {
    Ok(ok(json!({
        "tenantId": caller.tenant_id,
        "userId": caller.user_id,
        "email": caller.email,
        "name": caller.name,
        "keyId": caller.key_id,
        "admin": caller.admin,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NewTenantRequest {
    id: String,
    #[serde(default)]
    name: Option<String>,
    /// The tenant's first user, who receives the first key.
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewTenant {
    tenant: Tenant,
    /// Shown once: the secret is not stored.
    api_key: NewApiKey,
}

async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(request): JsonBody<NewTenantRequest>,
) -> ApiResult<NewTenant> {
    let id = check_tenant_id(&request.id)?;
    let name = request.name.map(|n| check_name(&n, "name")).transpose()?.unwrap_or_else(|| id.clone());
    let email = check_email(&request.email.unwrap_or_else(|| format!("admin@{id}")), "email")?;
    let tenant = state.store.create_tenant(&id, &name).await?;
    let api_key = state.store.create_api_key(&id, &email, None, Some("first key".into()), false).await?;
    Ok(created(NewTenant { tenant, api_key }))
}

async fn list_tenants(State(state): State<AppState>, _: Admin) -> ApiResult<Vec<Tenant>> {
    Ok(ok(state.store.list_tenants().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeyRequest {
    email: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    admin: bool,
}

async fn create_key(
    State(state): State<AppState>,
    _: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(request): JsonBody<NewKeyRequest>,
) -> ApiResult<NewApiKey> {
    if request.admin && tenant != DEFAULT_TENANT {
        return Err(ApiError::validation(format!(
            "admin keys belong to the `{DEFAULT_TENANT}` tenant, not `{tenant}`"
        )));
    }
    let email = check_email(&request.email, "email")?;
    let name = request.name.map(|n| check_name(&n, "name")).transpose()?;
    let label = request.label.map(|l| check_name(&l, "label")).transpose()?;
    Ok(created(state.store.create_api_key(&tenant, &email, name, label, request.admin).await?))
}

async fn list_keys(
    State(state): State<AppState>,
    _: Admin,
    PathParams(tenant): PathParams<String>,
) -> ApiResult<Vec<ApiKey>> {
    Ok(ok(state.store.list_api_keys(&tenant).await?))
}

async fn revoke_key(State(state): State<AppState>, _: Admin, PathParams(key): PathParams<String>) -> ApiResult<ApiKey> {
    Ok(ok(state.store.revoke_api_key(&key).await?))
}

/// Tenant ids are slugs: 1–63 of `a-z`, `0-9`, `-`, starting with a letter or digit.
fn check_tenant_id(id: &str) -> Result<String, ApiError> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(ApiError::validation(format!(
            "id must be 1-63 characters of a-z, 0-9 and '-', not starting with '-', got {id:?}"
        )));
    }
    Ok(id.to_owned())
}

fn check_email(email: &str, field: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(ApiError::validation(format!("{field} must be an email address, got {email:?}")));
    }
    Ok(email.to_owned())
}
