//! Starting runs: the run record, `Idempotency-Key` replays, the bounded synchronous wait
//! and the background execution that outlives it.
//!
//! An `Idempotency-Key` belongs to its caller ([`CallerKey`]): the same key sent by another
//! caller starts another run, and the steps' idempotency keys derive from both. A run that
//! crashes is settled as failed, so its key never answers "running" forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::definition::WorkflowFile;
use super::executor::Executor;
use super::outcome::{Answer, AnswerFormat, FailureReason, RunFailure, RunOutcome, RunResult};
use super::plan::{RunError, RunPlan, RunRequest};

use stage_store::runs::{FinishedRun, NewRun, RunStart, RunStatus};
use stage_store::{Store, StoreResult, new_id, now_ms, sha256_hex};

/// What the caller gets now.
#[derive(Debug, Clone)]
pub enum RunAnswer {
    /// The run finished (now, or earlier for a replay).
    Finished { run_id: String, answer: Answer, replayed: bool },
    /// Still running past the wait; follow it by id.
    Pending { run_id: String },
}

/// Starts runs and tracks those in progress.
pub struct Runner {
    store: Store,
    executor: Arc<Executor>,
    in_progress: Arc<Mutex<HashMap<String, watch::Receiver<Option<Answer>>>>>,
    /// How long a run may take from its request to its end.
    max_run: Duration,
    /// What callers are answered for each result.
    format: Arc<dyn AnswerFormat>,
}

impl Runner {
    pub fn new(store: Store, executor: Arc<Executor>, max_run: Duration, format: Arc<dyn AnswerFormat>) -> Runner {
        Runner { store, executor, in_progress: Arc::default(), max_run, format }
    }

    /// Settles the runs a previous process left running: failed, with the answer their
    /// `Idempotency-Key` replays from now on; returns how many.
    pub async fn settle_interrupted(&self) -> StoreResult<usize> {
        let format = self.format.clone();
        self.store
            .settle_interrupted_runs(move |run_id| {
                let message = format!(
                    "the server stopped while run {run_id} was in progress; steps it had started may have taken \
                     effect (see GET /api/v1/runs/{run_id}). Retrying with the same Idempotency-Key answers this again"
                );
                let failure = RunFailure { reason: FailureReason::Interrupted, message, step: None };
                let error = format.error(&failure);
                let answer = format.answer(run_id, &RunResult::Failed(failure));
                (serde_json::to_value(answer).unwrap_or(Value::Null), error)
            })
            .await
    }

    /// The executor runs go through (also for single steps outside a workflow).
    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    /// Runs `request` with `file`, answering once it finishes or after `wait`.
    ///
    /// A run is recorded when it ends; it is recorded earlier only when that is needed: an
    /// `Idempotency-Key` is reserved before anything runs, and a caller about to be told
    /// 202 gets the answer only once the running record is durable.
    pub async fn run(
        &self,
        file: Arc<WorkflowFile>,
        request: RunRequest,
        wait: Duration,
    ) -> Result<RunAnswer, RunError> {
        let deadline = tokio::time::Instant::now() + self.max_run;
        // A place in the tenant's queue first: a full queue refuses before anything is recorded.
        let ticket = match request.within_slot {
            true => None,
            false => Some(self.executor.runtime.admission().enqueue(&request.tenant_id)?),
        };
        let request_hash = sha256_hex(json!([request.workflow, request.input]).to_string().as_bytes());
        let run_id = new_id("run_");
        let record = NewRun {
            id: run_id.clone(),
            tenant_id: request.tenant_id.clone(),
            app_sid: request.app_sid.clone(),
            app_version: request.app_version,
            workflow: request.workflow.clone(),
            input: request.input.clone(),
            auth: serde_json::to_value(request.caller.auth()).unwrap_or(Value::Null),
            idempotency_key: request.idempotency_key.as_ref().map(|k| k.key.clone()),
            idempotency_scope: request.idempotency_key.as_ref().map(|k| k.caller.clone()),
            request_hash: request_hash.clone(),
        };
        if record.idempotency_key.is_some()
            && let RunStart::Existing(existing) = self.store.start_run(record.clone()).await?
        {
            if existing.request_hash.as_deref() != Some(request_hash.as_str()) {
                return Err(RunError::KeyReused { run_id: existing.id });
            }
            if let Some(answer) = existing.answer.and_then(|a| serde_json::from_value::<Answer>(a).ok()) {
                return Ok(RunAnswer::Finished { run_id: existing.id, answer, replayed: true });
            }
            return Ok(self.wait_for(&existing.id, wait, true).await);
        }

        let plan = RunPlan { run_id: run_id.clone(), started_at: now_ms(), deadline, request };
        let (done, watcher) = watch::channel(None);
        self.in_progress.lock().expect("runner poisoned").insert(run_id.clone(), watcher.clone());
        let (store, executor, in_progress) = (self.store.clone(), self.executor.clone(), self.in_progress.clone());
        let format = self.format.clone();
        let final_record = record.clone();
        // The run goes on in its own task, so that a caller who stops waiting (or hangs up)
        // does not stop it.
        tokio::spawn(async move {
            let slot = match ticket {
                Some(ticket) => ticket.admit(deadline).await.map(Some),
                None => Ok(None),
            };
            let outcome = match slot {
                Ok(_slot) => {
                    // Executed in a task of its own, so that a panic in it is caught here and
                    // the run is still settled and its waiters answered.
                    let execution = {
                        let plan = plan.clone();
                        tokio::spawn(async move { executor.execute(&file, &plan).await })
                    };
                    execution.await.unwrap_or_else(|crash| crashed(&plan.run_id, &crash))
                }
                Err(busy) => RunOutcome::failed(
                    FailureReason::NoSlot { retry_after: busy.retry_after },
                    busy.to_string(),
                    None,
                    Vec::new(),
                ),
            };
            let answer = format.answer(&plan.run_id, &outcome.result);
            let error = match &outcome.result {
                RunResult::Failed(failure) => Some(format.error(failure)),
                _ => None,
            };
            let finished = FinishedRun {
                status: if outcome.result.succeeded() { RunStatus::Succeeded } else { RunStatus::Failed },
                answer: serde_json::to_value(&answer).unwrap_or(Value::Null),
                error,
                steps: outcome.steps,
            };
            if let Err(e) = store.finish_run(final_record, plan.started_at, finished).await {
                tracing::error!(run = %plan.run_id, error = %e, "could not record the end of a run");
            }
            let _ = done.send(Some(answer));
            in_progress.lock().expect("runner poisoned").remove(&plan.run_id);
        });
        match wait_on(watcher.clone(), &run_id, wait, false).await {
            RunAnswer::Pending { run_id } => {
                self.store.start_run(record).await?;
                Ok(wait_on(watcher, &run_id, Duration::ZERO, false).await)
            }
            finished => Ok(finished),
        }
    }

    /// Waits up to `wait` for a run of this process to finish.
    async fn wait_for(&self, run_id: &str, wait: Duration, replayed: bool) -> RunAnswer {
        let watcher = self.in_progress.lock().expect("runner poisoned").get(run_id).cloned();
        match watcher {
            Some(watcher) => wait_on(watcher, run_id, wait, replayed).await,
            None => RunAnswer::Pending { run_id: run_id.to_owned() },
        }
    }
}

/// How a run whose execution panicked ended: failed, saying so.
fn crashed(run_id: &str, crash: &tokio::task::JoinError) -> RunOutcome {
    tracing::error!(run = %run_id, error = %crash, "a run crashed");
    let message = format!(
        "run {run_id} stopped on an internal error (the server logged it); steps it had started may have taken \
         effect (see GET /api/v1/runs/{run_id})"
    );
    RunOutcome::failed(FailureReason::Crashed, message, None, Vec::new())
}

/// Waits up to `wait` for the answer a run's watcher will carry.
async fn wait_on(
    mut watcher: watch::Receiver<Option<Answer>>,
    run_id: &str,
    wait: Duration,
    replayed: bool,
) -> RunAnswer {
    let finished = tokio::time::timeout(wait, watcher.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|a| a.clone());
    let answer = finished.flatten().or_else(|| watcher.borrow().clone());
    match answer {
        Some(answer) => RunAnswer::Finished { run_id: run_id.to_owned(), answer, replayed },
        None => RunAnswer::Pending { run_id: run_id.to_owned() },
    }
}
