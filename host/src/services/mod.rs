//! Embedded platform services, each an axum router under `/<service>/…`.
//!
//! The API mounts [`router`] at `/api/v1` (so `/api/v1/pulse/events`) behind API-key
//! authentication; the wasm runtime serves `http://<service>.stage.internal/<path>` from the
//! same router in-process (path `/<service><path>`), with no socket. Either way the caller
//! is a [`ServiceCaller`] in the request's extensions, set by the trusted side that mounted
//! the router — never read from a client header.
//!
//! * [`pulse`] — analytics events: ingest, query with counts.
//! * [`ledger`] — audit events in a per-tenant hash chain, and its verification.
//! * [`sheets`] — an emulator of the Google Sheets v4 API subset the sheets steps use.
//! * [`billing`] — billing items, idempotent per key, optionally forwarded to Stripe.
//! * [`communication`] — channel registrations, messages, and the outbox that delivers them.
//! * [`inference`] — OpenAI-compatible calls of app backends, with per-app usage.
//!
//! Shared by them: [`idempotency`] (`Idempotency-Key` on writes), [`input`] (field checks
//! that name the field), [`time`] (ISO-8601 instants).

pub mod billing;
pub mod communication;
pub mod idempotency;
pub mod inference;
pub mod input;
pub mod ledger;
pub mod pulse;
pub mod sheets;
pub mod time;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use tokio::sync::Notify;

use crate::envelope::{ApiError, ErrorCode};
use input::Invalid;
use stage_runtime::Identity;
use stage_store::Store;

/// Who is calling a service, as established by the host: the [`Identity`] a step or
/// backend runs with (its `app_sid` set, so records are attributed to the app and the
/// caller cannot write for another one), or a tenant's user through the API (`app_sid`
/// unset). A newtype only so that handlers can extract it.
#[derive(Debug, Clone)]
pub struct ServiceCaller(pub Identity);

impl std::ops::Deref for ServiceCaller {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// Handlers take the caller from the request's extensions; a request without one was not
/// authenticated by whoever mounted the router, and answers 401.
impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<ServiceCaller>().cloned().ok_or_else(|| {
            ApiError::new(ErrorCode::Unauthorized, "missing credentials: this service needs an authenticated caller")
        })
    }
}

impl ServiceCaller {
    /// The app a record is attributed to (or a query is limited to): the calling app, which
    /// may not name another one; otherwise whichever app the request names.
    fn app_scope(&self, requested: Option<String>) -> Result<Option<String>, Invalid> {
        match (&self.app_sid, requested) {
            (Some(own), Some(other)) if *own != other => Err(Invalid::forbidden(
                "stageAppId",
                format!("is {other:?}, but the caller is app {own:?} and may only use its own records"),
            )),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, requested) => Ok(requested),
        }
    }

    /// The user a record names: the one the request gives, else the calling user.
    fn user_or_caller(&self, given: Option<String>) -> Option<String> {
        given.or_else(|| self.actor_email.clone())
    }
}

/// What the services share: the store, the upstreams the operator configured, and the
/// outbox dispatcher's wake-up.
#[derive(Clone)]
pub struct ServiceState {
    pub store: Store,
    /// The host's outbound client: Stripe, inference and deliveries go through it.
    pub outbound: stage_runtime::net::Outbound,
    /// Where billing items are forwarded, when Stripe is configured.
    pub stripe: Option<Arc<StripeUpstream>>,
    /// Where app backends' inference calls go, when configured.
    pub inference: Option<Arc<inference::InferenceUpstream>>,
    /// Notified when a message is queued, so that the dispatcher delivers it at once.
    pub outbox: Arc<Notify>,
    /// Whether delivery destinations (tenants' webhook URLs, SMTP servers) may be private,
    /// loopback or link-local addresses.
    pub allow_private_egress: bool,
    /// The Sheets emulator's formula sandbox.
    pub formulas: Arc<sheets::formulas::Formulas>,
}

impl ServiceState {
    /// What tenants' delivery destinations may reach.
    pub fn tenant_egress(&self) -> stage_runtime::net::Egress {
        stage_runtime::net::Egress::private_if(self.allow_private_egress)
    }
}

impl ServiceState {
    /// Services on `store` with no upstream and only public delivery destinations.
    pub fn new(store: Store) -> ServiceState {
        ServiceState {
            store,
            outbound: stage_runtime::net::Outbound::new(),
            stripe: None,
            inference: None,
            outbox: Arc::default(),
            allow_private_egress: false,
            formulas: Arc::new(sheets::formulas::Formulas::new(Default::default())),
        }
    }
}

impl FromRef<ServiceState> for Store {
    fn from_ref(state: &ServiceState) -> Store {
        state.store.clone()
    }
}

/// The Stripe API the billing service forwards items to; the host holds the key.
pub struct StripeUpstream {
    pub secret_key: String,
    /// `https://api.stripe.com`, or a Stripe-compatible server.
    pub base_url: String,
}

impl std::fmt::Debug for StripeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeUpstream").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// All embedded services, with their state applied.
pub fn router(state: ServiceState) -> Router {
    Router::new()
        .merge(pulse::router())
        .merge(ledger::router())
        .merge(sheets::router())
        .merge(billing::router())
        .merge(communication::router())
        .merge(inference::router())
        .with_state(state)
}
