//! Embedded platform services, each an axum router under `/<service>/…`.
//!
//! The API mounts [`router`] at `/api/v1` (so `/api/v1/pulse/events`) behind API-key
//! authentication; the wasm runtime serves `http://<service>.stage.internal/<path>` from the
//! same router in-process (path `/<service><path>`), with no socket. Either way the caller
//! is a [`ServiceCaller`] in the request's extensions, set by the trusted side that mounted
//! the router — never read from a client header.

use axum::Router;

use crate::store::Store;

/// Who is calling a service, as established by the host.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    pub tenant_id: String,
    /// Set when the call comes from a step or backend of an app: records are attributed to
    /// it and the caller cannot write for another app.
    pub app_sid: Option<String>,
    /// The acting user (API key's user, or the run's end user), when known.
    pub actor_email: Option<String>,
}

/// All embedded services, with their state applied.
pub fn router(store: Store) -> Router {
    let _ = store;
    Router::new()
}
