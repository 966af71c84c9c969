//! `pulse.track`: records an analytics event with the pulse service
//! (`http://pulse.stage.internal/events`). The host attributes it to the running app.

use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, json, required_str, step};

fn track(ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let mut event = json!({ "name": required_str(&input, "name")?, "source": "workflow" });
    for field in ["userId", "meta"] {
        if let Some(value) = input.get(field).filter(|v| !v.is_null()) {
            event[field] = value.clone();
        }
    }
    Request::post("http://pulse.stage.internal/events")
        .header("idempotency-key", &ctx.idempotency_key)
        .json(&event)
        .send()?
        .stage_data()
}

step!(track);
