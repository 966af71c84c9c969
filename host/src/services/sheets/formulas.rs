//! Formulas of the Sheets emulator: when a request needs them, the whole spreadsheet goes
//! to the formula sandbox (a wasm component, `guests/formulas`), never to an engine in the
//! host. A formula is tenant code: it can recurse without end (`LET`/`LAMBDA`), build
//! strings of gigabytes (`REPT`), or loop over a whole grid (`MAKEARRAY`), so each
//! evaluation runs in a fresh instance under a memory, wall-time and output bound, at most
//! [`FormulaLimits::concurrency`] at once and [`FormulaLimits::tenant_concurrency`] per
//! tenant. A spreadsheet whose formulas pass a bound shows `#ERROR!` in its formula cells;
//! its other cells, and every other tenant, are untouched.
//!
//! Evaluation happens outside the store's transactions ([`super::book`]): a request that
//! needs it stops, leaves the [`FormulaJob`] of the spreadsheet as it then stood, and runs
//! again with the answer — so the store's single writer never waits for a formula.
//!
//! The sandbox itself is reached through [`FormulaEvaluator`], which the server wires to its
//! wasm runtime (`workflow::formulas`); services sit below the runtime and never call it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use stage_formulas::{Answer, Shown};
use tokio::sync::Semaphore;

use super::GoogleError;
use super::cell::{Computed, Effective, SheetError};
use super::format::NumberFormat;

/// Bounds of formula evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormulaLimits {
    /// Wall time of one evaluation of a spreadsheet.
    pub time_ms: u64,
    /// Linear memory of the formula sandbox.
    pub memory_bytes: usize,
    /// Bytes of the sandbox's answer (every formula's value, as JSON).
    pub output_bytes: usize,
    /// Evaluations running at once, across tenants.
    pub concurrency: usize,
    /// Evaluations one tenant may have running at once; more are refused with 429.
    pub tenant_concurrency: usize,
}

impl Default for FormulaLimits {
    fn default() -> FormulaLimits {
        FormulaLimits {
            time_ms: 10_000,
            memory_bytes: 256 * 1024 * 1024,
            output_bytes: 16 * 1024 * 1024,
            concurrency: 4,
            tenant_concurrency: 2,
        }
    }
}

/// Why the sandbox gave no answer: the bound it passed, or what else went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationFailure(pub String);

/// A future the evaluator answers with.
pub type Evaluating<'a> = Pin<Box<dyn Future<Output = Result<String, EvaluationFailure>> + Send + 'a>>;

/// Runs one [`stage_formulas::Job`] (as JSON) in the formula sandbox under `limits`,
/// answering the [`Answer`] as JSON.
pub trait FormulaEvaluator: Send + Sync {
    fn evaluate<'a>(&'a self, tenant_id: &'a str, job: String, limits: FormulaLimits) -> Evaluating<'a>;
}

/// The spreadsheet as it stood when a request needed its formulas: the job's JSON and its
/// content hash, which names the evaluation when the request runs again.
#[derive(Debug, Clone)]
pub struct FormulaJob {
    pub hash: String,
    pub json: String,
}

impl FormulaJob {
    pub fn new(job: &stage_formulas::Job) -> FormulaJob {
        let json = serde_json::to_string(job).expect("a formula job is plain data");
        FormulaJob { hash: stage_store::sha256_hex(json.as_bytes()), json }
    }
}

/// What a spreadsheet's formula cells show.
#[derive(Debug, Default)]
pub struct Evaluation {
    cells: HashMap<(usize, u32, u32), Effective>,
    /// Why the sandbox gave no answer, when it did not: every formula shows `#ERROR!`.
    failed: Option<String>,
}

impl Evaluation {
    fn from_answer(answer: Answer) -> Evaluation {
        let cells = answer
            .cells
            .into_iter()
            .map(|cell| {
                let value = match cell.value {
                    Shown::Number(n) if n.is_finite() => Computed::Number(n),
                    Shown::Number(_) => Computed::Error(SheetError::Num),
                    Shown::Text(text) => Computed::Text(text),
                    Shown::Bool(b) => Computed::Bool(b),
                    Shown::Error(text) => Computed::Error(SheetError::from_text(&text)),
                };
                let format = cell.pattern.as_deref().and_then(NumberFormat::from_pattern);
                ((cell.sheet as usize, cell.row, cell.col), Effective { value, format })
            })
            .collect();
        Evaluation { cells, failed: None }
    }

    fn failed(why: String) -> Evaluation {
        Evaluation { cells: HashMap::new(), failed: Some(why) }
    }

    /// What the formula at (`row`, `col`) of sheet `index` shows; `None` when the engine
    /// does not hold it (past its grid).
    pub fn effective(&self, index: usize, row: u32, col: u32) -> Option<Effective> {
        if self.failed.is_some() {
            return Some(Effective { value: Computed::Error(SheetError::Error), format: None });
        }
        self.cells.get(&(index, row, col)).cloned()
    }
}

/// Evaluations a request has had, by job hash; it lives as long as the request.
pub type Evaluations = HashMap<String, Arc<Evaluation>>;

/// The formula sandbox as the Sheets emulator uses it: the evaluator (wired once the
/// runtime exists), the bounds, and the places evaluations run in.
pub struct Formulas {
    evaluator: OnceLock<Arc<dyn FormulaEvaluator>>,
    limits: FormulaLimits,
    places: Arc<Semaphore>,
    /// Evaluations running per tenant.
    running: Mutex<HashMap<String, usize>>,
}

impl Formulas {
    pub fn new(limits: FormulaLimits) -> Formulas {
        Formulas {
            evaluator: OnceLock::new(),
            places: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            limits,
            running: Mutex::default(),
        }
    }

    pub fn limits(&self) -> FormulaLimits {
        self.limits
    }

    /// Gives the sandbox; done once, when the server starts.
    pub fn wire(&self, evaluator: Arc<dyn FormulaEvaluator>) {
        let _ = self.evaluator.set(evaluator);
    }

    /// Evaluates `job` for the tenant. A job that passes a bound (or a sandbox that is not
    /// there) gives an evaluation in which every formula is `#ERROR!`; a tenant with too many
    /// evaluations running is refused.
    pub async fn evaluate(&self, tenant_id: &str, job: FormulaJob) -> Result<Evaluation, GoogleError> {
        let _running = self.enter(tenant_id)?;
        let Some(evaluator) = self.evaluator.get() else {
            return Ok(Evaluation::failed("the formula sandbox is not running".into()));
        };
        let _place = self.places.acquire().await.map_err(|_| GoogleError::from(closed()))?;
        let answer = match evaluator.evaluate(tenant_id, job.json, self.limits).await {
            Ok(text) => serde_json::from_str::<Answer>(&text)
                .map_err(|e| EvaluationFailure(format!("the formula sandbox answered garbage: {e}"))),
            Err(failure) => Err(failure),
        };
        Ok(match answer {
            Ok(answer) => Evaluation::from_answer(answer),
            Err(EvaluationFailure(why)) => {
                tracing::warn!(tenant = tenant_id, why, "a spreadsheet's formulas passed a bound");
                Evaluation::failed(why)
            }
        })
    }

    /// Counts an evaluation of the tenant's until the guard drops.
    fn enter(&self, tenant_id: &str) -> Result<TenantGuard<'_>, GoogleError> {
        let mut running = self.running.lock().expect("formula counters poisoned");
        let count = running.entry(tenant_id.to_owned()).or_default();
        if *count >= self.limits.tenant_concurrency.max(1) {
            return Err(GoogleError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Quota exceeded: this tenant already has {} formula evaluations running; try again when one ends.",
                    *count
                ),
            ));
        }
        *count += 1;
        Ok(TenantGuard { formulas: self, tenant_id: tenant_id.to_owned() })
    }
}

struct TenantGuard<'a> {
    formulas: &'a Formulas,
    tenant_id: String,
}

impl Drop for TenantGuard<'_> {
    fn drop(&mut self) {
        let mut running = self.formulas.running.lock().expect("formula counters poisoned");
        if let Some(count) = running.get_mut(&self.tenant_id) {
            *count -= 1;
            if *count == 0 {
                running.remove(&self.tenant_id);
            }
        }
    }
}

fn closed() -> stage_store::StoreError {
    stage_store::StoreError::Internal("the formula sandbox is shut down".into())
}
