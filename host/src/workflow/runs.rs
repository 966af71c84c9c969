//! Runs of an app's workflows for a caller: the one entry point `POST /api/v1/run/…` and a
//! backend's `compute.run-workflow` share. [`Runs::start`] finds the app as the caller may
//! see it, the workflow of its active version, checks the caller and the input, and hands
//! the run to the [`Runner`]. Every way it can refuse is a [`RunError`]; the API layer
//! answers each with its status, the backend interface with an error class.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use stage_store::Store;
use stage_store::apps::App;

use super::caller::Caller;
use super::definition::AuthPolicy;
use super::loader::Workflows;
use super::plan::{CallerKey, RunError, RunRequest};

use super::runner::{RunAnswer, Runner};

/// A run someone asks for.
#[derive(Debug, Clone)]
pub struct RunOrder {
    pub app_sid: String,
    pub workflow: String,
    pub caller: Caller,
    pub input: Value,
    pub idempotency_key: Option<String>,
    /// How long to wait for the run before answering that it is still running.
    pub wait: Duration,
    /// The run executes inside a slot its caller already holds (a backend's `compute`).
    pub within_slot: bool,
}

/// Starts runs for callers.
pub struct Runs {
    store: Store,
    workflows: Arc<Workflows>,
    runner: Arc<Runner>,
}

impl Runs {
    pub fn new(store: Store, workflows: Arc<Workflows>, runner: Arc<Runner>) -> Runs {
        Runs { store, workflows, runner }
    }

    /// The runner runs go through (also for single steps outside a workflow).
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// The published app `sid`, its tenant, and `caller` as that app sees it (see
    /// [`Caller::visiting`]): another tenant's key does not find the app at all.
    pub async fn find_app(&self, sid: &str, caller: Caller) -> Result<(String, App, Caller), RunError> {
        let not_found = || RunError::AppNotFound(sid.to_owned());
        let (tenant_id, app) = self.store.find_app(sid).await?.ok_or_else(not_found)?;
        let caller = caller.visiting(&tenant_id).ok_or_else(not_found)?;
        Ok((tenant_id, app, caller))
    }

    /// Starts the run `order` asks for, answering once it finishes or after its wait.
    pub async fn start(&self, order: RunOrder) -> Result<RunAnswer, RunError> {
        let (tenant_id, app, caller) = self.find_app(&order.app_sid, order.caller).await?;
        let sid = &app.sid;
        let file = self
            .workflows
            .of_version(&tenant_id, sid, app.version)
            .await?
            .ok_or_else(|| RunError::NoWorkflows { sid: sid.clone(), version: app.version })?;
        let workflow = file.workflow(&order.workflow).ok_or_else(|| RunError::WorkflowNotFound {
            name: order.workflow.clone(),
            sid: sid.clone(),
            known: file.workflows.keys().cloned().collect(),
        })?;
        if workflow.auth == AuthPolicy::Required && caller.is_anonymous() {
            return Err(RunError::Unauthorized(order.workflow));
        }
        if !order.input.is_object() {
            return Err(RunError::InputNotObject);
        }
        let mut config = file.config.clone();
        if let Value::Object(overrides) = &app.config {
            config.extend(overrides.clone());
        }
        let request = RunRequest {
            tenant_id,
            app_sid: sid.clone(),
            app_name: app.name.clone(),
            app_version: app.version,
            config: Value::Object(config),
            workflow: order.workflow,
            input: order.input,
            idempotency_key: order.idempotency_key.map(|key| CallerKey { caller: caller.idempotency_scope(), key }),
            caller,
            within_slot: order.within_slot,
        };
        self.runner.run(file, request, order.wait).await
    }
}
