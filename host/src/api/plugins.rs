//! `/api/v1/plugins`: a tenant's third-party step kinds (a manifest and a wasm component).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::Authenticated;
use crate::envelope::extract::{JsonBody, PathParams};
use crate::envelope::{ApiError, ApiResult, ok};
use crate::workflow::registry::StepManifest;
use stage_store::StoreError;
use stage_store::plugins::Plugin;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/plugins", get(list)).route("/plugins/{kind}", get(get_plugin).put(put).delete(delete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPlugin {
    manifest: Value,
    /// The wasm component, base64-encoded.
    component: String,
}

/// Largest plugin component accepted.
const MAX_COMPONENT_BYTES: usize = 20 * 1024 * 1024;

async fn put(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(kind): PathParams<String>,
    JsonBody(request): JsonBody<PutPlugin>,
) -> ApiResult<Plugin> {
    let manifest_text = serde_json::to_vec(&request.manifest).unwrap_or_default();
    let manifest =
        StepManifest::parse(&manifest_text).map_err(|why| ApiError::validation(format!("manifest: {why}")))?;
    if manifest.kind != kind {
        return Err(ApiError::validation(format!("manifest.kind is {:?} but the URL names {kind:?}", manifest.kind)));
    }
    if !kind.contains('.') || state.kinds.is_builtin(&kind) {
        return Err(ApiError::validation(format!(
            "plugin kinds are namespaced (like acme.notify) and may not reuse a built-in kind; got {kind:?}"
        )));
    }
    if !state.config.steps.allow_private_egress
        && let Some(index) = manifest.allow.iter().position(|d| d.private)
    {
        return Err(ApiError::validation(format!(
            "manifest.allow[{index}] is private, but this server does not allow private egress (--allow-private-egress)"
        )));
    }
    let ceiling = state.runtime.max_wall_time_ms();
    if let Some(limits) = manifest.limits.filter(|limits| limits.wall_time_ms > ceiling) {
        return Err(ApiError::validation(format!(
            "manifest.limits.wallTimeMs is {} but this server allows at most {ceiling} (--max-timeout-ms)",
            limits.wall_time_ms
        )));
    }
    let wasm = BASE64
        .decode(request.component.trim())
        .map_err(|e| ApiError::validation(format!("component is not valid base64: {e}")))?;
    if wasm.len() > MAX_COMPONENT_BYTES {
        return Err(ApiError::too_large(format!(
            "component is {} bytes; the limit is {MAX_COMPONENT_BYTES}",
            wasm.len()
        )));
    }
    state.kinds.check_component(&manifest, &wasm).await.map_err(|e| ApiError::validation(e.to_string()))?;
    let manifest = serde_json::to_value(&manifest).unwrap_or(Value::Null);
    let previous = previous_hash(&state, &caller.tenant_id, &kind).await?;
    let plugin = state.store.put_plugin(&caller.tenant_id, &kind, manifest, wasm).await?;
    state.kinds.forget_plugin(&caller.tenant_id, &kind, previous.as_deref()).await;
    Ok(ok(plugin))
}

async fn list(State(state): State<AppState>, Authenticated(caller): Authenticated) -> ApiResult<Vec<Plugin>> {
    Ok(ok(state.store.list_plugins(&caller.tenant_id).await?))
}

async fn get_plugin(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(kind): PathParams<String>,
) -> ApiResult<Plugin> {
    Ok(ok(state.store.get_plugin(&caller.tenant_id, &kind).await?))
}

async fn delete(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    PathParams(kind): PathParams<String>,
) -> ApiResult<Value> {
    let previous = previous_hash(&state, &caller.tenant_id, &kind).await?;
    state.store.delete_plugin(&caller.tenant_id, &kind).await?;
    state.kinds.forget_plugin(&caller.tenant_id, &kind, previous.as_deref()).await;
    Ok(ok(json!({ "kind": kind, "deleted": true })))
}

/// The component hash a tenant's plugin has before it is replaced or deleted, so that its
/// cached component can be dropped once no plugin uses it.
async fn previous_hash(state: &AppState, tenant_id: &str, kind: &str) -> Result<Option<String>, ApiError> {
    match state.store.get_plugin(tenant_id, kind).await {
        Ok(plugin) => Ok(Some(plugin.hash)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
