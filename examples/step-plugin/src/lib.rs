//! `acme.slugify`: an example third-party step kind. A tenant pushes it with its manifest
//! (`step.json`) through `PUT /api/v1/plugins/acme.slugify`, and its workflows use it like a
//! built-in step. It reaches nothing (`"allow": []`): the sandbox gives it no network, files,
//! or environment, and only the destinations its manifest allows.
//!
//! Input `{"text", "separator"?}`; output `{"slug", "words"}`: the text's words (runs of
//! letters and digits), lower-cased, joined by the separator (`-` unless given).

use stage_guest_sdk::{StepContext, StepError, Value, json, step};

fn slugify(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let text = match input.get("text") {
        Some(Value::String(text)) => text,
        other => return Err(StepError::InvalidInput(format!("`text` must be a string, got {other:?}"))),
    };
    let separator = match input.get("separator") {
        None | Some(Value::Null) => "-",
        Some(Value::String(separator)) if separator.chars().count() == 1 => separator,
        Some(other) => return Err(StepError::InvalidInput(format!("`separator` must be one character, got {other}"))),
    };
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase).collect();
    Ok(json!({ "slug": words.join(separator), "words": words.len() }))
}

step!(slugify);
