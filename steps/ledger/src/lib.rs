//! `ledger.audit`: appends an audit event to the hash-chained ledger
//! (`http://ledger.stage.internal/events`). The host attributes it to the running app.

use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, json, required_str, step};

fn audit(ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let mut event = json!({ "operation": required_str(&input, "operation")? });
    for field in ["source", "destination", "dataRefs", "status", "meta"] {
        if let Some(value) = input.get(field).filter(|v| !v.is_null()) {
            event[field] = value.clone();
        }
    }
    Request::post("http://ledger.stage.internal/events")
        .header("idempotency-key", &ctx.idempotency_key)
        .json(&event)
        .send()?
        .stage_data()
}

step!(audit);
