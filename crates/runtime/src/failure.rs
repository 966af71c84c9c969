//! The one vocabulary of failures, for steps and backends alike: [`Failure`] says why an
//! invocation (or a workflow a backend ran) produced no output, its message naming what
//! failed; [`FailureClass`] is the class it is recorded with and [`FailureRecord`] the
//! record `{class, message}`. The conversions to and from the WIT `step-error` and from a
//! refused outbound request ([`Refusal`]) are here and nowhere else; the classification
//! of a guest that stopped is the sandbox's (`Sandbox::classify_trap`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stage_classes::ErrorClass;

use crate::outbound::Refusal;
use crate::wit::types::StepError;

/// How long a guest is told to wait when an upstream asked it to slow down without
/// saying for how long.
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// What failed: a workflow step or an app's backend. Messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Step,
    Backend,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Subject::Step => "step",
            Subject::Backend => "backend",
        }
    }

    /// What its answer is called.
    fn output(self) -> &'static str {
        match self {
            Subject::Step => "step's output",
            Subject::Backend => "backend's response body",
        }
    }
}

/// Why a step, a backend or a workflow run on a backend's behalf produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// An error of one of the WIT's classes: returned by a step, or said by the host on a
    /// guest's behalf (its input is not JSON, a workflow it ran through `compute` failed).
    #[error("{message}")]
    Classified { class: ErrorClass, message: String, retry_after: Option<Duration> },
    /// The capability policy refused an outbound request (the message names it).
    #[error("capability denied: {0}")]
    Denied(String),
    /// An outbound limit was reached.
    #[error("outbound limit reached: {0}")]
    OutboundLimit(String),
    /// The host could not provide credentials for a destination.
    #[error("{0}")]
    Credentials(String),
    /// The wall-time limit passed.
    #[error("the {} ran longer than {} ms", .subject.name(), .limit.as_millis())]
    Timeout { subject: Subject, limit: Duration },
    /// The guest tried to grow its memory past the limit.
    #[error("the {} exceeded its memory limit of {} MiB", .subject.name(), .limit / (1024 * 1024))]
    MemoryExceeded { subject: Subject, limit: usize },
    /// The step's output, or the backend's response body, was larger than allowed.
    #[error("the {} exceeds {limit} bytes", .subject.output())]
    OutputTooLarge { subject: Subject, limit: usize },
    /// The guest trapped (panicked, hit `unreachable`, …).
    #[error("the {} crashed: {why}", .subject.name())]
    Trap { subject: Subject, why: String },
    /// The component could not be instantiated.
    #[error("the {} could not start: {why}", .subject.name())]
    Instantiate { subject: Subject, why: String },
    /// A backend returned without a response, or answered with a wasi:http error code.
    #[error("the backend gave no response: {0}")]
    NoResponse(String),
}

/// The class a failure is recorded with (`error.class` of a step's record, of its
/// attempts, and of what later steps see of a step that continued on error): the WIT's
/// five, and the host's own for what the host stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    InvalidInput,
    Transient,
    RateLimited,
    Unauthorized,
    Permanent,
    /// The capability policy refused an outbound request.
    CapabilityDenied,
    /// A bound of the invocation was passed: outbound requests or bytes, memory, output.
    LimitExceeded,
    /// The step, or the run's deadline, ran out of time.
    Timeout,
    /// The guest trapped.
    Crashed,
    /// The component could not be started (an unknown or broken step kind).
    Unavailable,
    /// A template passed a bound of evaluation (memory, time, output).
    TemplateLimit,
}

impl FailureClass {
    /// The class's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::InvalidInput => "invalid-input",
            FailureClass::Transient => "transient",
            FailureClass::RateLimited => "rate-limited",
            FailureClass::Unauthorized => "unauthorized",
            FailureClass::Permanent => "permanent",
            FailureClass::CapabilityDenied => "capability-denied",
            FailureClass::LimitExceeded => "limit-exceeded",
            FailureClass::Timeout => "timeout",
            FailureClass::Crashed => "crashed",
            FailureClass::Unavailable => "unavailable",
            FailureClass::TemplateLimit => "template-limit",
        }
    }
}

impl From<ErrorClass> for FailureClass {
    fn from(class: ErrorClass) -> FailureClass {
        match class {
            ErrorClass::InvalidInput => FailureClass::InvalidInput,
            ErrorClass::Transient => FailureClass::Transient,
            ErrorClass::RateLimited => FailureClass::RateLimited,
            ErrorClass::Unauthorized => FailureClass::Unauthorized,
            ErrorClass::Permanent => FailureClass::Permanent,
        }
    }
}

/// A failure as recorded and as later steps see it: `{"class": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    /// An error of `class` with no wait asked for.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Failure {
        Failure::Classified { class, message: message.into(), retry_after: None }
    }

    pub fn class(&self) -> FailureClass {
        match self {
            Failure::Classified { class, .. } => (*class).into(),
            Failure::Denied(_) => FailureClass::CapabilityDenied,
            Failure::OutboundLimit(_) | Failure::MemoryExceeded { .. } | Failure::OutputTooLarge { .. } => {
                FailureClass::LimitExceeded
            }
            Failure::Credentials(_) => FailureClass::Unauthorized,
            Failure::Timeout { .. } => FailureClass::Timeout,
            Failure::Trap { .. } | Failure::NoResponse(_) => FailureClass::Crashed,
            Failure::Instantiate { .. } => FailureClass::Unavailable,
        }
    }

    pub fn record(&self) -> FailureRecord {
        FailureRecord { class: self.class(), message: self.to_string() }
    }

    /// A refused outbound request explains a failure better than what the guest made of it
    /// (the error it returned, or its crash); the host's own verdicts (time, memory,
    /// output) stand.
    pub fn explained_by(self, refusal: Option<&Refusal>) -> Failure {
        match (refusal, &self) {
            (Some(refusal), Failure::Classified { .. } | Failure::Trap { .. } | Failure::Instantiate { .. }) => {
                refusal.into()
            }
            _ => self,
        }
    }

    /// The failure a guest's `step-error` says.
    pub(crate) fn from_wit(error: StepError) -> Failure {
        let (class, message) = match error {
            StepError::InvalidInput(message) => (ErrorClass::InvalidInput, message),
            StepError::Transient(message) => (ErrorClass::Transient, message),
            StepError::RateLimited(ms) => {
                let message = format!("rate limited: retry after {ms} ms");
                return Failure::Classified {
                    class: ErrorClass::RateLimited,
                    message,
                    retry_after: Some(Duration::from_millis(ms)),
                };
            }
            StepError::Unauthorized(message) => (ErrorClass::Unauthorized, message),
            StepError::Permanent(message) => (ErrorClass::Permanent, message),
        };
        Failure::new(class, message)
    }

    /// The `step-error` a guest is given for this failure (of a host call it made): a
    /// timeout is transient, missing credentials unauthorized, any other failure of the
    /// host's permanent.
    pub(crate) fn to_wit(&self) -> StepError {
        let message = self.to_string();
        match self {
            Failure::Classified { class, retry_after, .. } => match class {
                ErrorClass::InvalidInput => StepError::InvalidInput(message),
                ErrorClass::Transient => StepError::Transient(message),
                ErrorClass::RateLimited => {
                    StepError::RateLimited(retry_after.unwrap_or(DEFAULT_RATE_LIMIT_WAIT).as_millis() as u64)
                }
                ErrorClass::Unauthorized => StepError::Unauthorized(message),
                ErrorClass::Permanent => StepError::Permanent(message),
            },
            Failure::Timeout { .. } => StepError::Transient(message),
            Failure::Credentials(_) => StepError::Unauthorized(message),
            _ => StepError::Permanent(message),
        }
    }
}

/// What a refused outbound request means: a credential source that is down for now makes
/// the failure transient (retried per its policy); missing or refused credentials make it
/// unauthorized.
impl From<&Refusal> for Failure {
    fn from(refusal: &Refusal) -> Failure {
        match refusal {
            Refusal::Denied(what) => Failure::Denied(what.clone()),
            Refusal::Limit(what) => Failure::OutboundLimit(what.clone()),
            Refusal::Credentials(error) if error.transient => Failure::new(ErrorClass::Transient, &error.message),
            Refusal::Credentials(error) => Failure::Credentials(error.message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::CredentialError;

    #[test]
    fn messages_name_what_failed() {
        let messages: Vec<String> = [
            Failure::Timeout { subject: Subject::Step, limit: Duration::from_millis(500) },
            Failure::Timeout { subject: Subject::Backend, limit: Duration::from_millis(500) },
            Failure::MemoryExceeded { subject: Subject::Step, limit: 16 * 1024 * 1024 },
            Failure::OutputTooLarge { subject: Subject::Step, limit: 10 },
            Failure::OutputTooLarge { subject: Subject::Backend, limit: 10 },
            Failure::Trap { subject: Subject::Backend, why: "boom".into() },
            Failure::Instantiate { subject: Subject::Step, why: "no".into() },
            Failure::Denied("GET http://x/".into()),
            Failure::new(ErrorClass::Permanent, "as said"),
        ]
        .iter()
        .map(Failure::to_string)
        .collect();
        assert_eq!(
            messages,
            [
                "the step ran longer than 500 ms",
                "the backend ran longer than 500 ms",
                "the step exceeded its memory limit of 16 MiB",
                "the step's output exceeds 10 bytes",
                "the backend's response body exceeds 10 bytes",
                "the backend crashed: boom",
                "the step could not start: no",
                "capability denied: GET http://x/",
                "as said",
            ]
        );
    }

    #[test]
    fn class_names_are_their_serialized_names() {
        for class in [
            FailureClass::InvalidInput,
            FailureClass::Transient,
            FailureClass::RateLimited,
            FailureClass::Unauthorized,
            FailureClass::Permanent,
            FailureClass::CapabilityDenied,
            FailureClass::LimitExceeded,
            FailureClass::Timeout,
            FailureClass::Crashed,
            FailureClass::Unavailable,
            FailureClass::TemplateLimit,
        ] {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
    }

    #[test]
    fn records_carry_the_class() {
        let record = Failure::OutboundLimit("more than 1 outbound requests".into()).record();
        assert_eq!(
            serde_json::to_value(record).unwrap(),
            serde_json::json!({ "class": "limit-exceeded", "message": "outbound limit reached: more than 1 outbound requests" })
        );
        let crashed = Failure::Trap { subject: Subject::Step, why: "x".into() };
        assert_eq!(serde_json::to_value(crashed.class()).unwrap(), "crashed");
        assert_eq!(serde_json::to_value(FailureClass::TemplateLimit).unwrap(), "template-limit");
    }

    #[test]
    fn the_wit_error_round_trips() {
        let limited = Failure::from_wit(StepError::RateLimited(250));
        assert_eq!(limited.to_string(), "rate limited: retry after 250 ms");
        assert!(matches!(limited.to_wit(), StepError::RateLimited(250)));
        assert!(
            matches!(Failure::from_wit(StepError::InvalidInput("x".into())).to_wit(), StepError::InvalidInput(m) if m == "x")
        );
        let timeout = Failure::Timeout { subject: Subject::Step, limit: Duration::from_millis(5) };
        assert!(matches!(timeout.to_wit(), StepError::Transient(_)));
        assert!(matches!(Failure::Credentials("no token".into()).to_wit(), StepError::Unauthorized(_)));
    }

    #[test]
    fn a_refusal_explains_what_the_guest_made_of_it() {
        let refused = Refusal::Denied("GET http://x/".into());
        let crash = Failure::Trap { subject: Subject::Step, why: "unwrap on Err".into() };
        assert_eq!(crash.explained_by(Some(&refused)), Failure::Denied("GET http://x/".into()));
        let timeout = Failure::Timeout { subject: Subject::Step, limit: Duration::from_millis(5) };
        assert_eq!(timeout.clone().explained_by(Some(&refused)), timeout);
        let down = Refusal::Credentials(CredentialError::unavailable("the token endpoint is down"));
        assert_eq!(Failure::from(&down).class(), FailureClass::Transient);
    }
}
