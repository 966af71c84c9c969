//! `response`: makes the run's HTTP answer. Its output `{status, headers, body}` is what
//! the caller of the run receives.

use stage_guest_sdk::{Map, StepContext, StepError, Value, json, step};

fn respond(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let status = match input.get("status") {
        None | Some(Value::Null) => 200,
        Some(value) => value.as_u64().filter(|s| (200..=599).contains(s)).ok_or_else(|| {
            StepError::InvalidInput(format!("`status` must be a final HTTP status 200-599, got {value}"))
        })?,
    };
    let mut headers = Map::new();
    match input.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (name, value) in given {
                // An HTTP token (RFC 9110 §5.6.2), as the host checks it.
                let valid_name = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => return Err(StepError::InvalidInput(format!("header `{name}` must be text, got {other}"))),
                };
                let valid_value = value.chars().all(|c| c == '\t' || !c.is_ascii_control());
                if !valid_name || !valid_value {
                    return Err(StepError::InvalidInput(format!("`{name}: {value}` is not a valid HTTP header")));
                }
                headers.insert(name.to_ascii_lowercase(), Value::String(value));
            }
        }
        Some(other) => return Err(StepError::InvalidInput(format!("`headers` must be an object, got {other}"))),
    }
    let body = input.get("body").cloned().unwrap_or(Value::Null);
    Ok(json!({ "status": status, "headers": headers, "body": body }))
}

step!(respond);
