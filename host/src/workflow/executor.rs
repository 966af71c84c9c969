//! Runs one workflow: steps in order, each through the wasm runtime, with `if`, retries,
//! per-step timeouts, `continueOnError` and the run's deadline; produces how the run ended
//! ([`RunResult`]: the `response` step's answer, every step's output, or why it failed and
//! at which step) and the steps' records. What a caller is answered for it is not decided
//! here (see [`super::outcome`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::timeout_at;

use super::catalog::{ResolvedStep, StepKinds};
use super::definition::{RESPONSE_KIND, StepDef, WorkflowFile};
use super::outcome::{Answer, FailureReason, RunOutcome, RunResult, StepRef};
use super::plan::RunPlan;
use super::template::{EvaluationScope, TemplateContext, TemplateEngine, TemplateError, TemplateErrorKind};
use stage_runtime::{
    ErrorClass, Failure, FailureClass, FailureRecord, Identity, Invocation, Runtime, StepCall, StepContext, Subject,
};
use stage_store::runs::{Attempt, LogEntry, StepError, StepRecord, StepStatus, StepTimings};
use stage_store::{new_id, now_ms, sha256_hex};

/// Executes runs. One per server.
pub struct Executor {
    pub runtime: Arc<Runtime>,
    pub kinds: Arc<StepKinds>,
    pub templates: Arc<TemplateEngine>,
}

impl Executor {
    pub async fn execute(&self, file: &WorkflowFile, plan: &RunPlan) -> RunOutcome {
        let Some(workflow) = file.workflow(&plan.request.workflow) else {
            let message = format!("workflow {} not found in app {}", plan.request.workflow, plan.request.app_sid);
            return RunOutcome::failed(FailureReason::WorkflowNotFound, message, None, Vec::new());
        };
        let app =
            json!({ "sid": plan.request.app_sid, "name": plan.request.app_name, "version": plan.request.app_version });
        let run = json!({ "id": plan.run_id, "startedAt": plan.started_at });
        let request = &plan.request;
        let auth = serde_json::to_value(request.caller.auth()).unwrap_or(Value::Null);
        let mut context = TemplateContext::new(&request.input, &auth, &request.config, &app, &run);
        let identity = request.caller.identity(&request.tenant_id, &request.app_sid);
        let mut outputs = Map::new();
        let mut response: Option<Answer> = None;
        let mut records = Vec::with_capacity(workflow.steps.len());

        for step in &workflow.steps {
            let started_at = now_ms();
            let scope = self.evaluation_scope(step, plan, &identity);
            if let Some(condition) = step.compiled_condition() {
                let Ok(holds) = timeout_at(plan.deadline, self.templates.condition(condition, &context, &scope)).await
                else {
                    return deadline_failure(step, plan, started_at, records);
                };
                match holds {
                    Ok(true) => {}
                    Ok(false) => {
                        records.push(skipped(step, started_at));
                        continue;
                    }
                    Err(error) => return template_failure(step, &error, started_at, records),
                }
            }
            let resolving = self.templates.resolve(step.compiled_input(), &context, &scope);
            let input = match timeout_at(plan.deadline, resolving).await {
                Ok(Ok(input)) => input,
                Ok(Err(error)) => return template_failure(step, &error, started_at, records),
                Err(_) => return deadline_failure(step, plan, started_at, records),
            };
            let Ok(mut attempt) = timeout_at(plan.deadline, self.run_step(step, &input, plan, &identity)).await else {
                return deadline_failure(step, plan, started_at, records);
            };
            if step.kind == RESPONSE_KIND {
                attempt.result = attempt.result.and_then(|output| super::response::check_output(step, output));
            }
            let mut record = attempt.record(step, &input, started_at);
            match attempt.result {
                Ok(output) => {
                    if step.kind == RESPONSE_KIND {
                        response = Some(Answer::from_response_step(&output));
                    }
                    if let Some(id) = &step.id {
                        context.insert_step_output(id, &output);
                    }
                    outputs.insert(step.label(), output.clone());
                    record.output = Some(output);
                    records.push(record);
                }
                Err(failure) if step.continue_on_error => {
                    let error = failure.record();
                    if let Some(id) = &step.id {
                        context.insert_step_output(id, &json!({ "error": error }));
                    }
                    outputs.insert(step.label(), json!({ "error": error }));
                    records.push(record);
                }
                Err(failure) => {
                    records.push(record);
                    return step_failure(step, &failure, records);
                }
            }
        }
        let result = match response {
            Some(answer) => RunResult::Responded(answer),
            None => RunResult::Completed(outputs),
        };
        RunOutcome { result, steps: records }
    }

    /// Whose templates a step's are, and how long they may take: the step's own time limit.
    fn evaluation_scope(&self, step: &StepDef, plan: &RunPlan, identity: &Identity) -> EvaluationScope {
        EvaluationScope {
            identity: identity.clone(),
            run_id: plan.run_id.clone(),
            workflow: plan.request.workflow.clone(),
            step: step.label(),
            wall_time: Duration::from_millis(step.timeout_ms.unwrap_or(self.runtime.default_limits().wall_time_ms)),
        }
    }

    /// Runs one step kind once, outside any workflow (a backend's `compute.run-step`), with
    /// a fresh idempotency key.
    pub async fn run_single_step(&self, kind: &str, input: &Value, identity: Identity) -> Result<Value, Failure> {
        let invalid = |message: String| Failure::new(ErrorClass::InvalidInput, message);
        let resolved = self.kinds.resolve(&identity.tenant_id, kind).await.map_err(|e| invalid(e.to_string()))?;
        let run_id = new_id("run_");
        let call = StepCall {
            context: StepContext {
                run_id: run_id.clone(),
                app_sid: identity.app_sid.clone().unwrap_or_default(),
                workflow: String::new(),
                step_id: kind.to_owned(),
                attempt: 1,
                idempotency_key: run_step_key(&run_id, 0),
            },
            input: input.to_string(),
            identity,
            policy: resolved.policy.clone(),
            limits: resolved.limits,
        };
        let outcome = self.runtime.invoke_step(&resolved.prepared, call).await.outcome?;
        serde_json::from_str(&outcome)
            .map_err(|e| Failure::new(ErrorClass::Permanent, format!("the step's output is not JSON: {e}")))
    }

    /// Invokes a step until it succeeds, fails for good, or runs out of retries.
    async fn run_step(&self, step: &StepDef, input: &Value, plan: &RunPlan, identity: &Identity) -> Attempts {
        let mut attempts = Attempts::default();
        let resolved = match self.kinds.resolve(&plan.request.tenant_id, &step.kind).await {
            Ok(resolved) => resolved,
            Err(e) => {
                attempts.result = Err(Failure::Instantiate { subject: Subject::Step, why: e.to_string() });
                return attempts;
            }
        };
        let idempotency_key = step_idempotency_key(plan, step.index);
        let input_text = input.to_string();
        let mut attempt: u32 = 1;
        loop {
            let call = self.call(&resolved, step, plan, identity, attempt, &idempotency_key, &input_text);
            let invocation = self.runtime.invoke_step(&resolved.prepared, call).await;
            let failure = attempts.absorb(attempt, invocation);
            let Some(failure) = failure else { return attempts };
            let retry_after = match (&failure, &step.retry) {
                (Failure::Classified { class: ErrorClass::RateLimited, retry_after, .. }, Some(policy))
                    if policy.allows_retry(attempt) =>
                {
                    retry_after.unwrap_or_else(|| policy.delay_before_retry(attempt, &mut rand::rng()))
                }
                (Failure::Classified { class: ErrorClass::Transient, .. } | Failure::Timeout { .. }, Some(policy))
                    if policy.allows_retry(attempt) =>
                {
                    policy.delay_before_retry(attempt, &mut rand::rng())
                }
                _ => {
                    attempts.result = Err(failure);
                    return attempts;
                }
            };
            tokio::time::sleep(retry_after).await;
            attempt += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        resolved: &ResolvedStep,
        step: &StepDef,
        plan: &RunPlan,
        identity: &Identity,
        attempt: u32,
        idempotency_key: &str,
        input: &str,
    ) -> StepCall {
        let mut limits = resolved.limits;
        if let Some(timeout) = step.timeout_ms {
            limits.wall_time_ms = timeout;
        }
        StepCall {
            context: StepContext {
                run_id: plan.run_id.clone(),
                app_sid: plan.request.app_sid.clone(),
                workflow: plan.request.workflow.clone(),
                step_id: step.label(),
                attempt,
                idempotency_key: idempotency_key.to_owned(),
            },
            input: input.to_owned(),
            identity: identity.clone(),
            policy: resolved.policy.clone(),
            limits,
        }
    }
}

/// Stable per (app, version, workflow, caller's key or run id, step index). A run id is
/// unique and time-ordered, so the keys named after it are too, and the services' key
/// indexes grow at their end instead of splitting pages at random; a caller's key is
/// hashed together with what it is scoped to.
fn step_idempotency_key(plan: &RunPlan, index: usize) -> String {
    let Some(caller_key) = plan.caller_key() else { return run_step_key(&plan.run_id, index) };
    let material = format!(
        "{}\n{}\n{}\n{caller_key}\n{index}",
        plan.request.app_sid, plan.request.app_version, plan.request.workflow
    );
    format!("stp_{}", &sha256_hex(material.as_bytes())[..40])
}

/// The idempotency key of step `index` of run `run_id` when the caller gave none.
fn run_step_key(run_id: &str, index: usize) -> String {
    format!("stp_{run_id}_{index}")
}

/// The attempts of one step so far.
struct Attempts {
    result: Result<Value, Failure>,
    list: Vec<Attempt>,
    timings: StepTimings,
    stdout: String,
    stderr: String,
    log: Vec<LogEntry>,
}

impl Default for Attempts {
    fn default() -> Attempts {
        Attempts {
            result: Ok(Value::Null),
            list: Vec::new(),
            timings: StepTimings::default(),
            stdout: String::new(),
            stderr: String::new(),
            log: Vec::new(),
        }
    }
}

impl Attempts {
    /// Records an invocation; returns its failure, if any.
    fn absorb(&mut self, attempt: u32, invocation: Invocation) -> Option<Failure> {
        let started = now_ms() - (invocation.instantiate + invocation.execute).as_millis() as i64;
        self.timings.instantiate_us += invocation.instantiate.as_micros() as i64;
        self.timings.execute_us += invocation.execute.as_micros() as i64;
        self.timings.host_us += invocation.outbound.waiting.as_micros() as i64;
        self.stdout.push_str(&invocation.stdout);
        self.stderr.push_str(&invocation.stderr);
        self.log.extend(invocation.log.iter().map(|line| LogEntry {
            attempt,
            level: line.level.to_owned(),
            message: line.message.clone(),
        }));
        let duration_ms = (invocation.instantiate + invocation.execute).as_secs_f64() * 1000.0;
        let outcome = invocation.outcome.and_then(|text| {
            serde_json::from_str::<Value>(&text)
                .map_err(|e| Failure::new(ErrorClass::Permanent, format!("the step's output is not JSON: {e}")))
        });
        let error = outcome.as_ref().err().map(step_error);
        self.list.push(Attempt { attempt, started_at: started, duration_ms, error });
        match outcome {
            Ok(output) => {
                self.result = Ok(output);
                None
            }
            Err(failure) => Some(failure),
        }
    }

    fn record(&self, step: &StepDef, input: &Value, started_at: i64) -> StepRecord {
        let (status, error) = match &self.result {
            Ok(_) => (StepStatus::Succeeded, None),
            Err(failure) => (StepStatus::Failed, Some(step_error(failure))),
        };
        StepRecord {
            index: step.index as i64,
            id: step.id.clone(),
            kind: step.kind.clone(),
            status,
            input: Some(redact(input)),
            output: None,
            error,
            attempts: self.list.clone(),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            log: self.log.clone(),
            timings: self.timings,
            started_at,
            finished_at: now_ms(),
        }
    }
}

fn skipped(step: &StepDef, at: i64) -> StepRecord {
    StepRecord {
        index: step.index as i64,
        id: step.id.clone(),
        kind: step.kind.clone(),
        status: StepStatus::Skipped,
        input: None,
        output: None,
        error: None,
        attempts: Vec::new(),
        stdout: String::new(),
        stderr: String::new(),
        log: Vec::new(),
        timings: StepTimings::default(),
        started_at: at,
        finished_at: at,
    }
}

/// A failure as a step record keeps it.
fn step_error(failure: &Failure) -> StepError {
    recorded(failure.record())
}

fn recorded(record: FailureRecord) -> StepError {
    StepError { class: record.class.as_str().to_owned(), message: record.message }
}

/// `step` recorded as failed with `record`, after its templates or the deadline stopped it.
fn stopped(step: &StepDef, started_at: i64, record: FailureRecord) -> StepRecord {
    StepRecord {
        status: StepStatus::Failed,
        error: Some(recorded(record)),
        finished_at: now_ms(),
        ..skipped(step, started_at)
    }
}

/// A step whose `if` or input templates failed: recorded as failed, and the run with it.
fn template_failure(step: &StepDef, error: &TemplateError, started_at: i64, mut steps: Vec<StepRecord>) -> RunOutcome {
    let class = match error.kind {
        TemplateErrorKind::Invalid => FailureClass::InvalidInput,
        TemplateErrorKind::Limit => FailureClass::TemplateLimit,
    };
    let message = format!("step {} ({}, {}): {error}", step.index, step.label(), step.kind);
    steps.push(stopped(step, started_at, FailureRecord { class, message: error.to_string() }));
    RunOutcome::failed(FailureReason::Template(error.kind), message, Some(StepRef::of(step)), steps)
}

/// The run's deadline passed during `step`: the step is recorded as timed out, and the run
/// fails with it.
fn deadline_failure(step: &StepDef, plan: &RunPlan, started_at: i64, mut steps: Vec<StepRecord>) -> RunOutcome {
    let message = format!(
        "step {} ({}, {}) was stopped: the run reached its deadline, {} ms after it was requested",
        step.index,
        step.label(),
        step.kind,
        now_ms() - plan.started_at
    );
    steps.push(stopped(step, started_at, FailureRecord { class: FailureClass::Timeout, message: message.clone() }));
    RunOutcome::failed(FailureReason::Deadline, message, Some(StepRef::of(step)), steps)
}

fn step_failure(step: &StepDef, failure: &Failure, steps: Vec<StepRecord>) -> RunOutcome {
    let message = format!("step {} ({}, {}) failed: {failure}", step.index, step.label(), step.kind);
    let at = StepRef { error: Some(failure.record()), ..StepRef::of(step) };
    RunOutcome::failed(FailureReason::Step(failure.clone()), message, Some(at), steps)
}

/// Field names whose values are hidden in run records.
const SECRET_WORDS: [&str; 6] = ["password", "secret", "token", "apikey", "api_key", "authorization"];

/// The value with every field whose name suggests a secret replaced by `"[redacted]"`.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| {
                    let lower = name.to_ascii_lowercase().replace('-', "_");
                    let secret = SECRET_WORDS.iter().any(|word| lower.contains(word));
                    (name.clone(), if secret { json!("[redacted]") } else { redact(value) })
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// How long to wait at most for a run before answering 202.
pub fn bounded_wait(requested_ms: Option<u64>) -> Duration {
    Duration::from_millis(requested_ms.unwrap_or(30_000).min(300_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::caller::Caller;
    use crate::workflow::plan::{CallerKey, RunRequest};

    #[test]
    fn step_idempotency_keys() {
        let request = RunRequest {
            tenant_id: "t".into(),
            app_sid: "app_1".into(),
            app_name: "A".into(),
            app_version: 2,
            config: json!({}),
            workflow: "signup".into(),
            input: json!({}),
            caller: Caller::Anonymous,
            idempotency_key: None,
            within_slot: false,
        };
        let plan = RunPlan { run_id: "run_0abc".into(), started_at: 0, deadline: tokio::time::Instant::now(), request };
        let with = |change: &dyn Fn(&mut RunRequest)| {
            let mut plan = plan.clone();
            change(&mut plan.request);
            plan
        };
        // Without a caller's key, keys follow the run id (time-ordered) and the step index.
        assert_eq!(step_idempotency_key(&plan, 0), "stp_run_0abc_0");
        assert_eq!(step_idempotency_key(&plan, 2), "stp_run_0abc_2");

        // With one, they depend on it and on what it is scoped to, not on the run.
        let order_7 = CallerKey { caller: "anonymous".into(), key: "order-7".into() };
        let keyed = with(&|request| request.idempotency_key = Some(order_7.clone()));
        let key = step_idempotency_key(&keyed, 1);
        assert!(key.starts_with("stp_") && key.len() == 44, "{key}");
        assert_eq!(step_idempotency_key(&RunPlan { run_id: "run_other".into(), ..keyed.clone() }, 1), key);
        assert_ne!(step_idempotency_key(&keyed, 0), key);
        let other_workflow = with(&|request| {
            request.idempotency_key = Some(order_7.clone());
            request.workflow = "other".into();
        });
        assert_ne!(step_idempotency_key(&other_workflow, 1), key);
        let other_version = with(&|request| {
            request.idempotency_key = Some(order_7.clone());
            request.app_version = 3;
        });
        assert_ne!(step_idempotency_key(&other_version, 1), key);
    }

    #[test]
    fn redacts_secret_fields() {
        let value = json!({ "name": "x", "apiKey": "k", "nested": [{ "Authorization": "Bearer t", "ok": 1 }], "client_secret": "s" });
        assert_eq!(
            redact(&value),
            json!({ "name": "x", "apiKey": "[redacted]", "nested": [{ "Authorization": "[redacted]", "ok": 1 }], "client_secret": "[redacted]" })
        );
    }
}
