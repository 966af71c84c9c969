//! `communication.send`: hands a message to the communication service
//! (`http://communication.stage.internal/messages`), which resolves the app's active
//! registration for the channel, queues the message durably and delivers it with retries.
//! The output is `{messageId, status}`; the step's idempotency key makes a retried or
//! replayed step queue the message once.

use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, json, required_str, step};

fn send(ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let mut message = json!({
        "channelId": required_str(&input, "channelId")?,
        "to": required_str(&input, "to")?,
        "text": required_str(&input, "text")?,
    });
    for field in ["subject", "html", "metadata"] {
        if let Some(value) = input.get(field).filter(|v| !v.is_null()) {
            message[field] = value.clone();
        }
    }
    let queued = Request::post("http://communication.stage.internal/messages")
        .header("idempotency-key", &ctx.idempotency_key)
        .json(&message)
        .send()?
        .stage_data()?;
    Ok(json!({ "messageId": queued["messageId"], "status": queued["status"] }))
}

step!(send);
