//! Inference calls of app backends: one row per call, summed into per-app usage.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreResult, now_ms};

/// One call to the inference upstream, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceCall {
    pub app_sid: String,
    /// `chat` or `embed`.
    pub kind: &'static str,
    pub model: String,
    /// The upstream's HTTP status (0 when it could not be reached).
    pub status: u16,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

/// Token and call counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotals {
    pub calls: i64,
    /// Calls the upstream did not answer with a 2xx.
    pub failed_calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

/// Usage of one model through one interface function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub kind: String,
    pub model: String,
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// An app's (or a whole tenant's) inference usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceUsage {
    pub app_sid: Option<String>,
    #[serde(flatten)]
    pub totals: UsageTotals,
    pub by_model: Vec<ModelUsage>,
}

impl Store {
    pub async fn record_inference_call(&self, tenant_id: &str, call: InferenceCall) -> StoreResult<()> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO inference_calls (tenant_id, app_sid, kind, model, status, prompt_tokens,
                     completion_tokens, total_tokens, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                tenant_id,
                call.app_sid,
                call.kind,
                call.model,
                call.status,
                call.prompt_tokens,
                call.completion_tokens,
                call.total_tokens,
                now_ms()
            ])?;
            Ok(())
        })
        .await
    }

    /// The usage of `app_sid` (checked to be the tenant's), or of every app of the tenant.
    pub async fn inference_usage(&self, tenant_id: &str, app_sid: Option<String>) -> StoreResult<InferenceUsage> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            if let Some(sid) = &app_sid {
                super::apps::get(c, &tenant_id, sid)?;
            }
            let mut statement = c.prepare_cached(
                "SELECT kind, model, COUNT(*), SUM(status NOT BETWEEN 200 AND 299), SUM(prompt_tokens),
                        SUM(completion_tokens), SUM(total_tokens)
                 FROM inference_calls WHERE tenant_id = ?1 AND (?2 IS NULL OR app_sid = ?2)
                 GROUP BY kind, model ORDER BY kind, model",
            )?;
            let by_model = statement
                .query_map(params![tenant_id, app_sid], |r| {
                    Ok(ModelUsage {
                        kind: r.get(0)?,
                        model: r.get(1)?,
                        totals: UsageTotals {
                            calls: r.get(2)?,
                            failed_calls: r.get(3)?,
                            prompt_tokens: r.get(4)?,
                            completion_tokens: r.get(5)?,
                            total_tokens: r.get(6)?,
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut totals = UsageTotals::default();
            for usage in &by_model {
                totals.calls += usage.totals.calls;
                totals.failed_calls += usage.totals.failed_calls;
                totals.prompt_tokens += usage.totals.prompt_tokens;
                totals.completion_tokens += usage.totals.completion_tokens;
                totals.total_tokens += usage.totals.total_tokens;
            }
            Ok(InferenceUsage { app_sid, totals, by_model })
        })
        .await
    }
}
