//! `@stage/inference`: OpenAI-compatible chat and embeddings through the host, which holds
//! the key, picks the upstream and records the app's usage.
//!
//! ```ignore
//! let answer = inference::chat(&json!({
//!     "model": "gpt-4o-mini",
//!     "messages": [{ "role": "user", "content": "Summarise: …" }],
//! }))?;
//! let text = answer["choices"][0]["message"]["content"].as_str();
//! ```

use serde_json::Value;

use crate::StepError;
use crate::backend::step_error;
use crate::backend_bindings::stage::platform::inference as wit;

/// A chat completion: `request` is the body of `POST /v1/chat/completions`; the answer is
/// the upstream's JSON.
pub fn chat(request: &Value) -> Result<Value, StepError> {
    call(wit::chat, request)
}

/// Embeddings: `request` is the body of `POST /v1/embeddings`; the answer is the
/// upstream's JSON.
pub fn embed(request: &Value) -> Result<Value, StepError> {
    call(wit::embed, request)
}

/// The text of the first choice of a chat answer.
pub fn first_message(answer: &Value) -> Option<&str> {
    answer["choices"][0]["message"]["content"].as_str()
}

type HostCall = fn(&str) -> Result<String, crate::backend_bindings::stage::platform::types::StepError>;

fn call(function: HostCall, request: &Value) -> Result<Value, StepError> {
    let answer = function(&request.to_string()).map_err(step_error)?;
    serde_json::from_str(&answer).map_err(|e| StepError::Permanent(format!("the inference answer is not JSON: {e}")))
}
