//! The Stage guest SDK: write a workflow step, or an app's API backend, as a plain Rust
//! function.
//!
//! A step is `fn(&StepContext, Value) -> Result<Value, StepError>` registered with
//! [`step!`]; the crate is built for `wasm32-wasip2` as a `cdylib`, which yields a
//! component of the `stage:platform/step` world (WIT in `guest-sdk/wit/`). The step's only
//! way out is HTTP through the host's capability policy, via [`http`].
//!
//! ```ignore
//! use stage_guest_sdk::{StepContext, StepError, Value, json, step};
//!
//! fn greet(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
//!     let name = input["name"].as_str().ok_or_else(|| StepError::InvalidInput("name is required".into()))?;
//!     Ok(json!({ "greeting": format!("Hello, {name}") }))
//! }
//!
//! step!(greet);
//! ```
//!
//! With the `backend` feature (and without the default `step` one), a crate is an API
//! backend instead: a `wasi:http/proxy` component of the `stage:platform/backend` world whose
//! handler is registered with [`backend!`] (see [`backend`]), and which may use
//! [`inference`], [`compute`] and [`utils`]. A component carries exactly one world's
//! bindings, because each world's exports are required of it.
//!
//! This crate also compiles for the host target (so that the workspace builds and tests
//! natively); there the host imports are unreachable stubs.

#[cfg(feature = "backend")]
pub mod backend;
#[cfg(feature = "backend")]
pub mod compute;
pub mod google;
pub mod http;
#[cfg(feature = "backend")]
pub mod inference;
pub mod log;
#[cfg(feature = "backend")]
pub mod utils;

pub use serde_json::{self, Map, Value, json};
/// The error classes of a step error and the HTTP status table, shared with the host.
pub use stage_classes::ErrorClass;

#[cfg(not(any(feature = "step", feature = "backend")))]
compile_error!("stage-guest-sdk needs the `step` or the `backend` feature");

#[cfg(feature = "step")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "step",
        pub_export_macro: true,
        export_macro_name: "export_step",
        default_bindings_module: "stage_guest_sdk::bindings",
        generate_all,
    });
}

#[cfg(feature = "backend")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod backend_bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "backend",
        pub_export_macro: true,
        export_macro_name: "export_backend",
        default_bindings_module: "stage_guest_sdk::backend_bindings",
        generate_all,
    });
}

#[cfg(all(feature = "backend", not(feature = "step")))]
pub(crate) use backend_bindings as world;
/// The WASI and Stage imports both worlds share (HTTP, log, error types), from whichever
/// world this build carries (the step world's when a native build enables both).
#[cfg(feature = "step")]
pub(crate) use bindings as world;

use world::stage::platform::types as wit;

/// Where and why a step runs (see the WIT `step-context`).
#[derive(Debug, Clone)]
pub struct StepContext {
    pub run_id: String,
    pub app_sid: String,
    pub workflow: String,
    pub step_id: String,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// Stable across retries and replays: send it as `Idempotency-Key` to services.
    pub idempotency_key: String,
}

/// How a step failed; the class ([`ErrorClass`]) decides whether the host retries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The input is wrong; never retried.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A passing failure; retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// Retried after this many milliseconds.
    #[error("rate limited: retry after {0} ms")]
    RateLimited(u64),
    /// Credentials or scopes missing or refused; never retried.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// Will not get better by retrying.
    #[error("{0}")]
    Permanent(String),
}

impl StepError {
    /// Its class, as the host records it.
    pub fn class(&self) -> ErrorClass {
        match self {
            StepError::InvalidInput(_) => ErrorClass::InvalidInput,
            StepError::Transient(_) => ErrorClass::Transient,
            StepError::RateLimited(_) => ErrorClass::RateLimited,
            StepError::Unauthorized(_) => ErrorClass::Unauthorized,
            StepError::Permanent(_) => ErrorClass::Permanent,
        }
    }
}

impl From<StepError> for wit::StepError {
    fn from(error: StepError) -> wit::StepError {
        match error {
            StepError::InvalidInput(m) => wit::StepError::InvalidInput(m),
            StepError::Transient(m) => wit::StepError::Transient(m),
            StepError::RateLimited(ms) => wit::StepError::RateLimited(ms),
            StepError::Unauthorized(m) => wit::StepError::Unauthorized(m),
            StepError::Permanent(m) => wit::StepError::Permanent(m),
        }
    }
}

impl From<wit::StepContext> for StepContext {
    fn from(ctx: wit::StepContext) -> StepContext {
        StepContext {
            run_id: ctx.run_id,
            app_sid: ctx.app_sid,
            workflow: ctx.workflow,
            step_id: ctx.step_id,
            attempt: ctx.attempt,
            idempotency_key: ctx.idempotency_key,
        }
    }
}

/// Reads a required string field of a step's input.
pub fn required_str<'a>(input: &'a Value, field: &str) -> Result<&'a str, StepError> {
    match input.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(Value::String(_)) => Err(StepError::InvalidInput(format!("`{field}` must not be empty"))),
        Some(other) => Err(StepError::InvalidInput(format!("`{field}` must be a string, got {other}"))),
        None => Err(StepError::InvalidInput(format!("`{field}` is required"))),
    }
}

#[cfg(feature = "step")]
/// The glue [`step!`] expands to: decodes the input JSON, runs the step, encodes the output.
#[doc(hidden)]
pub fn run_step(
    ctx: wit::StepContext,
    input: String,
    step: fn(&StepContext, Value) -> Result<Value, StepError>,
) -> Result<String, wit::StepError> {
    let input: Value = serde_json::from_str(&input)
        .map_err(|e| wit::StepError::InvalidInput(format!("the step input is not JSON: {e}")))?;
    let output = step(&StepContext::from(ctx), input)?;
    serde_json::to_string(&output).map_err(|e| wit::StepError::Permanent(format!("the step output is not JSON: {e}")))
}

/// Registers `fn(&StepContext, Value) -> Result<Value, StepError>` as the component's `run`.
#[cfg(feature = "step")]
#[macro_export]
macro_rules! step {
    ($run:path) => {
        struct StageStep;

        impl $crate::bindings::Guest for StageStep {
            fn run(
                ctx: $crate::bindings::stage::platform::types::StepContext,
                input: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::bindings::stage::platform::types::StepError> {
                $crate::run_step(ctx, input, $run)
            }
        }

        $crate::bindings::export_step!(StageStep with_types_in $crate::bindings);
    };
}
