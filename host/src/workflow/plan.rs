//! What a run is: the request the API layer resolved ([`RunRequest`]), the plan the runner
//! makes of it ([`RunPlan`]), which the executor follows, and why a run is refused
//! ([`RunError`]).

use serde_json::{Value, json};
use stage_runtime::Busy;
use stage_store::StoreError;

use super::caller::Caller;
use super::loader::LoadError;

/// A request to run a workflow, authorised and resolved by the caller.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub tenant_id: String,
    pub app_sid: String,
    pub app_name: String,
    pub app_version: i64,
    pub config: Value,
    pub workflow: String,
    pub input: Value,
    pub caller: Caller,
    pub idempotency_key: Option<CallerKey>,
    /// The run executes inside a slot its caller already holds (a backend's `compute`),
    /// rather than taking one of the tenant's.
    pub within_slot: bool,
}

/// A caller's `Idempotency-Key` with the caller it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerKey {
    /// Who sent the key: an API key's user (with its tenant), an end user, or anonymous.
    pub caller: String,
    pub key: String,
}

impl CallerKey {
    /// What the steps' idempotency keys derive from: the key and its caller, unambiguously.
    pub fn step_material(&self) -> String {
        json!([self.caller, self.key]).to_string()
    }
}

/// A run about to execute: its request, with the id and times the runner gave it.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub run_id: String,
    pub started_at: i64,
    /// When the run must have ended, whatever its steps and retries ask for.
    pub deadline: tokio::time::Instant,
    pub request: RunRequest,
}

impl RunPlan {
    /// What the steps' idempotency keys derive from when the caller sent a key: the key
    /// and its caller. A replayed request gives every step the key it had the first time,
    /// and two callers' runs never share a step key.
    pub fn caller_key(&self) -> Option<String> {
        self.request.idempotency_key.as_ref().map(CallerKey::step_material)
    }
}

/// Why a run was not started (or its key not replayed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("app {0} not found")]
    AppNotFound(String),
    #[error("app {sid} (version {version}) has no workflows")]
    NoWorkflows { sid: String, version: i64 },
    #[error("workflow {name} not found in app {sid}; it has: {}", known.join(", "))]
    WorkflowNotFound { name: String, sid: String, known: Vec<String> },
    #[error("workflow {0} requires an API key or an end-user token (Authorization: Bearer …)")]
    Unauthorized(String),
    #[error("input must be a JSON object")]
    InputNotObject,
    /// The `Idempotency-Key` was used for a different request.
    #[error("Idempotency-Key was already used for a different request (run {run_id})")]
    KeyReused { run_id: String },
    /// The tenant's slots and queue are full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The version's workflow file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
