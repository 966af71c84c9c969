//! The five error classes of the WIT `step-error` (`stage:platform/types`), and the one
//! table that classifies an HTTP answer's status: shared by the host (the runtime's
//! `inference` and `utils.fetch`, the services' retries) and the guest SDK
//! (`Response::error_for_status`), so that a status means the same on both sides.
//!
//! | Status | Class | Retried |
//! |---|---|---|
//! | 400, 422 | `invalid-input` | no |
//! | 401, 403 | `unauthorized` | no |
//! | 408, 5xx | `transient` | yes |
//! | 429 | `rate-limited` | yes, not before `Retry-After` |
//! | anything else (404, 409, 413, …) | `permanent` | no |
//!
//! The table is the one the guest SDK has always had, because guests already depend on
//! it (a step may act on `invalid-input`). The host's own copy used to call 404, 409 and
//! 413 `invalid-input` as well; they are `permanent` here: only a request the caller must
//! fix is `invalid-input` (400 names bad syntax, 422 bad content), while a 404 or 409 from
//! an upstream usually describes the upstream's state (the record is gone, the resource
//! changed) and a 413 the upstream's own bound. None of the three is retried either way.
//!
//! ```
//! use stage_classes::ErrorClass;
//!
//! assert_eq!(ErrorClass::for_status(422), ErrorClass::InvalidInput);
//! assert_eq!(ErrorClass::for_status(404), ErrorClass::Permanent);
//! assert!(ErrorClass::for_status(503).is_retryable());
//! assert_eq!(ErrorClass::RateLimited.as_str(), "rate-limited");
//! ```
//!
//! No dependency but serde: guests link it too.

use serde::{Deserialize, Serialize};

/// The class of an error: what the caller can do about it. The variants and their
/// kebab-case names are the WIT `step-error`'s cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// The input is wrong; the same input fails again.
    InvalidInput,
    /// A failure for now (unreachable, overloaded, timed out); a retry may succeed.
    Transient,
    /// Asked to slow down; a retry after the wait may succeed.
    RateLimited,
    /// Credentials are missing or refused.
    Unauthorized,
    /// Fails again whatever is retried.
    Permanent,
}

impl ErrorClass {
    /// The class of an HTTP answer with `status`, for a status that is not a success (the
    /// table in the [crate] docs).
    pub fn for_status(status: u16) -> ErrorClass {
        match status {
            400 | 422 => ErrorClass::InvalidInput,
            401 | 403 => ErrorClass::Unauthorized,
            408 | 500..=599 => ErrorClass::Transient,
            429 => ErrorClass::RateLimited,
            _ => ErrorClass::Permanent,
        }
    }

    /// Whether trying again may succeed (`transient` and `rate-limited`).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::RateLimited)
    }

    /// The kebab-case name, as in the WIT and in run records.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::InvalidInput => "invalid-input",
            ErrorClass::Transient => "transient",
            ErrorClass::RateLimited => "rate-limited",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_one_class() {
        let classes: Vec<(u16, ErrorClass)> =
            [400, 401, 403, 404, 408, 409, 413, 418, 422, 429, 500, 502, 503, 599, 301]
                .into_iter()
                .map(|status| (status, ErrorClass::for_status(status)))
                .collect();
        use ErrorClass::*;
        assert_eq!(
            classes,
            [
                (400, InvalidInput),
                (401, Unauthorized),
                (403, Unauthorized),
                (404, Permanent),
                (408, Transient),
                (409, Permanent),
                (413, Permanent),
                (418, Permanent),
                (422, InvalidInput),
                (429, RateLimited),
                (500, Transient),
                (502, Transient),
                (503, Transient),
                (599, Transient),
                (301, Permanent),
            ]
        );
    }

    #[test]
    fn only_transient_and_rate_limited_are_retried() {
        let retried: Vec<u16> = (400..600).filter(|&status| ErrorClass::for_status(status).is_retryable()).collect();
        assert_eq!(retried, [408, 429].into_iter().chain(500..600).collect::<Vec<_>>());
    }

    #[test]
    fn names_are_the_wit_cases() {
        for class in [
            ErrorClass::InvalidInput,
            ErrorClass::Transient,
            ErrorClass::RateLimited,
            ErrorClass::Unauthorized,
            ErrorClass::Permanent,
        ] {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
            assert_eq!(serde_json::from_value::<ErrorClass>(class.as_str().into()).unwrap(), class);
        }
    }
}
