//! Mounts the embedded platform services ([`crate::services`]) in the API at `/api/v1`:
//! each service route authenticates like the rest of the API (API keys, or the local admin
//! in `--auth local` mode) and acts for the key's tenant and user.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::authenticate;
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
    let principal = match authenticate(&parts, &state).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    parts.extensions.insert(ServiceCaller(Identity {
        tenant_id: principal.tenant_id,
        app_sid: None,
        actor_email: Some(principal.email),
    }));
    next.run(Request::from_parts(parts, body)).await
}
