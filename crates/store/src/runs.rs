//! Run records: one row per workflow run and one per step, and `Idempotency-Key`
//! reservations (a unique key per app, workflow, caller and key).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError, StoreResult, now_ms};

/// A run as recorded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub id: String,
    pub app_sid: String,
    pub app_version: i64,
    pub workflow: String,
    pub status: RunStatus,
    pub input: Value,
    pub auth: Value,
    /// What the caller was (or will be) answered: `{status, headers, body}`.
    pub answer: Option<Value>,
    pub error: Option<RunErrorRecord>,
    pub idempotency_key: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Empty in listings.
    pub steps: Vec<StepRecord>,
    #[serde(skip)]
    pub request_hash: Option<String>,
}

/// One step of a run as recorded.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub index: i64,
    pub id: Option<String>,
    pub kind: String,
    pub status: StepStatus,
    /// The resolved input, secrets redacted.
    pub input: Option<Value>,
    pub output: Option<Value>,
    /// Why the step failed, after its last attempt.
    pub error: Option<StepError>,
    pub attempts: Vec<Attempt>,
    pub stdout: String,
    pub stderr: String,
    pub log: Vec<LogEntry>,
    pub timings: StepTimings,
    pub started_at: i64,
    pub finished_at: i64,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Its `if` was false.
    Skipped,
}

/// Why a run failed: the code of its error answer and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunErrorRecord {
    pub code: String,
    pub message: String,
}

/// Why a step (or one attempt of it) failed: its failure class and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub class: String,
    pub message: String,
}

/// One attempt of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: u32,
    pub started_at: i64,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

/// A line a step logged, with the attempt that logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub attempt: u32,
    pub level: String,
    pub message: String,
}

/// Microseconds spent instantiating, executing (guest code plus host calls), and waiting
/// on host calls (outbound HTTP), summed over attempts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepTimings {
    pub instantiate_us: i64,
    pub execute_us: i64,
    pub host_us: i64,
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: String,
    pub tenant_id: String,
    pub app_sid: String,
    pub app_version: i64,
    pub workflow: String,
    pub input: Value,
    pub auth: Value,
    pub idempotency_key: Option<String>,
    /// Who the idempotency key belongs to: the same key of another caller is another run.
    pub idempotency_scope: Option<String>,
    /// Identifies the request body, so that a key reused for another request is caught.
    pub request_hash: String,
}

/// What starting a run found.
#[derive(Debug, Clone)]
pub enum RunStart {
    Started,
    /// A run with the same `Idempotency-Key` exists.
    Existing(Box<RunRecord>),
}

/// The end of a run.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub status: RunStatus,
    pub answer: Value,
    pub error: Option<RunErrorRecord>,
    pub steps: Vec<StepRecord>,
}

impl Store {
    /// Records a run as running (unless it is already recorded), or finds the run its
    /// caller's idempotency key already names.
    pub async fn start_run(&self, run: NewRun) -> StoreResult<RunStart> {
        self.write(move |c| {
            if let (Some(key), Some(scope)) = (&run.idempotency_key, &run.idempotency_scope) {
                let existing = c
                    .prepare_cached(&format!(
                        "{RUN_SELECT} WHERE tenant_id = ?1 AND app_sid = ?2 AND workflow = ?3
                                       AND idempotency_scope = ?4 AND idempotency_key = ?5"
                    ))?
                    .query_row(params![run.tenant_id, run.app_sid, run.workflow, scope, key], run_from_row)
                    .optional()?;
                if let Some(existing) = existing {
                    return Ok(RunStart::Existing(Box::new(existing)));
                }
            }
            c.prepare_cached(
                "INSERT OR IGNORE INTO runs (id, tenant_id, app_sid, app_version, workflow, status, input, auth,
                                             idempotency_key, idempotency_scope, request_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                run.id,
                run.tenant_id,
                run.app_sid,
                run.app_version,
                run.workflow,
                run.input.to_string(),
                run.auth.to_string(),
                run.idempotency_key,
                run.idempotency_scope,
                run.request_hash,
                now_ms()
            ])?;
            Ok(RunStart::Started)
        })
        .await
    }

    /// Records how a run ended, with its steps, in one transaction. The run's row is
    /// written now if [`Store::start_run`] was not needed (no idempotency key, answered in
    /// time), else completed.
    pub async fn finish_run(&self, run: NewRun, started_at: i64, finished: FinishedRun) -> StoreResult<()> {
        // JSON is written out here, not on the (single) writer thread.
        let (input, auth, answer) = (run.input.to_string(), run.auth.to_string(), finished.answer.to_string());
        let error = finished.error.as_ref().map(json_text);
        let steps: Vec<StepRow> = finished.steps.into_iter().map(StepRow::from).collect();
        self.write(move |c| {
            let now = now_ms();
            let run_id = run.id;
            c.prepare_cached(
                "INSERT INTO runs (id, tenant_id, app_sid, app_version, workflow, status, input, auth, answer, error,
                                   idempotency_key, idempotency_scope, request_hash, created_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, answer = excluded.answer,
                     error = excluded.error, finished_at = excluded.finished_at",
            )?
            .execute(params![
                run_id,
                run.tenant_id,
                run.app_sid,
                run.app_version,
                run.workflow,
                finished.status,
                input,
                auth,
                answer,
                error,
                run.idempotency_key,
                run.idempotency_scope,
                run.request_hash,
                started_at,
                now
            ])?;
            let mut insert = c.prepare_cached(
                "INSERT INTO run_steps (run_id, idx, step_id, kind, status, input, output, error_class, error_message,
                    attempts, stdout, stderr, log, instantiate_us, execute_us, host_us, started_at, finished_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?;
            for StepRow { step, input, output, class, message, attempts, log } in steps {
                insert.execute(params![
                    run_id,
                    step.index,
                    step.id,
                    step.kind,
                    step.status,
                    input,
                    output,
                    class,
                    message,
                    attempts,
                    step.stdout,
                    step.stderr,
                    log,
                    step.timings.instantiate_us,
                    step.timings.execute_us,
                    step.timings.host_us,
                    step.started_at,
                    step.finished_at
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// A run of the tenant with its steps.
    pub async fn get_run(&self, tenant_id: &str, run_id: &str) -> StoreResult<RunRecord> {
        let (tenant_id, run_id) = (tenant_id.to_owned(), run_id.to_owned());
        self.read(move |c| {
            let mut run = c
                .prepare_cached(&format!("{RUN_SELECT} WHERE id = ?1 AND tenant_id = ?2"))?
                .query_row(params![run_id, tenant_id], run_from_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("run {run_id} not found")))?;
            run.steps = steps_of(c, &run_id)?;
            Ok(run)
        })
        .await
    }

    /// Runs of an app, newest first, without their steps.
    pub async fn list_runs(&self, tenant_id: &str, app_sid: &str, limit: u32) -> StoreResult<Vec<RunRecord>> {
        let (tenant_id, app_sid) = (tenant_id.to_owned(), app_sid.to_owned());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{RUN_SELECT} WHERE app_sid = ?1 AND tenant_id = ?2 ORDER BY created_at DESC, rowid DESC LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![app_sid, tenant_id, limit], run_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Settles runs left `running` by a previous process, in one transaction: failed, with
    /// the answer and error `settle` gives for each run id (what their `Idempotency-Key`
    /// replays from now on); returns how many.
    pub async fn settle_interrupted_runs(
        &self,
        settle: impl Fn(&str) -> (Value, RunErrorRecord) + Send + 'static,
    ) -> StoreResult<usize> {
        self.write(move |c| {
            let interrupted: Vec<String> = c
                .prepare("SELECT id FROM runs WHERE status = 'running'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut update = c.prepare(
                "UPDATE runs SET status = 'failed', error = ?2, answer = ?3, finished_at = ?4 WHERE id = ?1",
            )?;
            for run_id in &interrupted {
                let (answer, error) = settle(run_id);
                update.execute(params![run_id, json_text(&error), answer.to_string(), now_ms()])?;
            }
            Ok(interrupted.len())
        })
        .await
    }
}

impl ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }))
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<RunStatus> {
        match value.as_str()? {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            other => Err(FromSqlError::Other(format!("unknown run status {other:?}").into())),
        }
    }
}

impl ToSql for StepStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }))
    }
}

impl FromSql for StepStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<StepStatus> {
        match value.as_str()? {
            "succeeded" => Ok(StepStatus::Succeeded),
            "failed" => Ok(StepStatus::Failed),
            "skipped" => Ok(StepStatus::Skipped),
            other => Err(FromSqlError::Other(format!("unknown step status {other:?}").into())),
        }
    }
}

/// `value` as the JSON text of a column.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A step record with its JSON columns written out.
struct StepRow {
    step: StepRecord,
    input: Option<String>,
    output: Option<String>,
    class: Option<String>,
    message: Option<String>,
    attempts: String,
    log: String,
}

impl From<StepRecord> for StepRow {
    fn from(step: StepRecord) -> StepRow {
        StepRow {
            input: step.input.as_ref().map(Value::to_string),
            output: step.output.as_ref().map(Value::to_string),
            class: step.error.as_ref().map(|error| error.class.clone()),
            message: step.error.as_ref().map(|error| error.message.clone()),
            attempts: json_text(&step.attempts),
            log: json_text(&step.log),
            step,
        }
    }
}

const RUN_SELECT: &str =
    "SELECT id, app_sid, app_version, workflow, status, input, auth, answer, error, idempotency_key,
        created_at, finished_at, request_hash FROM runs";

fn json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A JSON column read into its type; nothing when it is empty or not what was written.
fn typed<T: serde::de::DeserializeOwned>(text: Option<String>) -> Option<T> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: r.get(0)?,
        app_sid: r.get(1)?,
        app_version: r.get(2)?,
        workflow: r.get(3)?,
        status: r.get(4)?,
        input: json(r.get(5)?).unwrap_or(Value::Null),
        auth: json(r.get(6)?).unwrap_or(Value::Null),
        answer: json(r.get(7)?),
        error: typed(r.get(8)?),
        idempotency_key: r.get(9)?,
        created_at: r.get(10)?,
        finished_at: r.get(11)?,
        request_hash: r.get(12)?,
        steps: Vec::new(),
    })
}

fn steps_of(c: &Connection, run_id: &str) -> StoreResult<Vec<StepRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT idx, step_id, kind, status, input, output, error_class, error_message, attempts, stdout, stderr, log,
                instantiate_us, execute_us, host_us, started_at, finished_at
         FROM run_steps WHERE run_id = ?1 ORDER BY idx",
    )?;
    let rows = stmt.query_map([run_id], |r| {
        let class: Option<String> = r.get(6)?;
        let message: Option<String> = r.get(7)?;
        Ok(StepRecord {
            index: r.get(0)?,
            id: r.get(1)?,
            kind: r.get(2)?,
            status: r.get(3)?,
            input: json(r.get(4)?),
            output: json(r.get(5)?),
            error: class.map(|class| StepError { class, message: message.unwrap_or_default() }),
            attempts: typed(r.get(8)?).unwrap_or_default(),
            stdout: r.get(9)?,
            stderr: r.get(10)?,
            log: typed(r.get(11)?).unwrap_or_default(),
            timings: StepTimings { instantiate_us: r.get(12)?, execute_us: r.get(13)?, host_us: r.get(14)? },
            started_at: r.get(15)?,
            finished_at: r.get(16)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
