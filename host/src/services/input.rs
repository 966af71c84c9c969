//! Reading client input for the services: the fields of a JSON event (each refusal names
//! the field, and in a batch the event's index) and query parameters.

use serde_json::{Map, Value, json};

use super::time::{INSTANT_FORMS, check_ms, format_iso, parse_iso};
use crate::envelope::extract::json_type;
use crate::envelope::{ApiError, ErrorCode};

/// Largest event, in bytes of compact JSON.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Longest free-text field (ids, names of services, emails, locations), in characters.
pub const MAX_TEXT_CHARS: usize = 512;
/// Most records a query answers, and how many when it does not say.
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 100;

/// A refused field of an event. `field` is its path inside the event (`meta.plan`,
/// `dataRefs[0].classification`), empty for the event as a whole.
#[derive(Debug)]
pub struct Invalid {
    code: ErrorCode,
    field: String,
    /// Completes the field's name into a sentence: "must be a string, got a number".
    problem: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
        Invalid { code: ErrorCode::ValidationFailed, field: field.into(), problem: problem.into() }
    }

    pub fn forbidden(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
        Invalid { code: ErrorCode::Forbidden, ..Invalid::new(field, problem) }
    }

    pub fn too_large(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
        Invalid { code: ErrorCode::PayloadTooLarge, ..Invalid::new(field, problem) }
    }

    /// The answer to a request whose body is the event.
    pub fn into_error(self) -> ApiError {
        let subject = if self.field.is_empty() { "the event".to_owned() } else { self.field.clone() };
        let details = json!({ "field": self.field });
        ApiError::new(self.code, format!("{subject} {}", self.problem)).with_details(details)
    }

    /// The answer to a batch request whose event number `index` is refused.
    pub fn in_batch(self, index: usize) -> ApiError {
        let subject = match self.field.as_str() {
            "" => format!("events[{index}]"),
            field if field.starts_with('[') => format!("events[{index}]{field}"),
            field => format!("events[{index}].{field}"),
        };
        let details = json!({ "index": index, "field": self.field });
        ApiError::new(self.code, format!("{subject} {}", self.problem)).with_details(details)
    }
}

/// Refuses an event whose compact JSON exceeds [`MAX_EVENT_BYTES`].
pub fn check_event_size(event: &Value) -> Result<(), Invalid> {
    let size = serde_json::to_vec(event).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_EVENT_BYTES {
        return Err(Invalid::too_large(
            "",
            format!("is {size} bytes of JSON; an event may be at most {MAX_EVENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The fields of one JSON object, read with checks that name the field on failure.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    /// Path of the object inside the event ("" for the event itself).
    path: String,
}

impl<'a> Fields<'a> {
    /// `value` must be an object holding no keys but `allowed`.
    pub fn new(value: &'a Value, path: &str, allowed: &[&str]) -> Result<Fields<'a>, Invalid> {
        let object = value
            .as_object()
            .ok_or_else(|| Invalid::new(path, format!("must be an object, got {}", json_type(value))))?;
        let fields = Fields { object, path: path.to_owned() };
        if let Some(unknown) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(Invalid::new(
                fields.path_of(unknown),
                format!("is not a known field; expected {}", allowed.join(", ")),
            ));
        }
        Ok(fields)
    }

    /// The path of `field` inside the event.
    pub fn path_of(&self, field: &str) -> String {
        if self.path.is_empty() { field.to_owned() } else { format!("{}.{field}", self.path) }
    }

    /// The value of `field`; `null` counts as absent.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|value| !value.is_null())
    }

    /// An optional string of at most `max_chars` characters.
    pub fn text(&self, field: &str, max_chars: usize) -> Result<Option<String>, Invalid> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(text)) if text.chars().count() <= max_chars => Ok(Some(text.clone())),
            Some(Value::String(_)) => {
                Err(Invalid::new(self.path_of(field), format!("must be at most {max_chars} characters")))
            }
            Some(other) => {
                Err(Invalid::new(self.path_of(field), format!("must be a string, got {}", json_type(other))))
            }
        }
    }

    /// An optional string that, when present, is not blank.
    pub fn non_blank_text(&self, field: &str, max_chars: usize) -> Result<Option<String>, Invalid> {
        match self.text(field, max_chars)? {
            Some(text) if text.trim().is_empty() => Err(Invalid::new(self.path_of(field), "must not be empty")),
            text => Ok(text),
        }
    }

    /// A string that must be present and not blank.
    pub fn required_text(&self, field: &str, max_chars: usize) -> Result<String, Invalid> {
        self.non_blank_text(field, max_chars)?.ok_or_else(|| {
            Invalid::new(
                self.path_of(field),
                format!("is required: a non-empty string of at most {max_chars} characters"),
            )
        })
    }

    /// One of `choices`; `default` when absent, required when there is no default.
    pub fn choice(&self, field: &str, choices: &[&str], default: Option<&str>) -> Result<String, Invalid> {
        let listed = || choices.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
        match (self.get(field), default) {
            (Some(Value::String(text)), _) if choices.contains(&text.as_str()) => Ok(text.clone()),
            (Some(other), _) => {
                Err(Invalid::new(self.path_of(field), format!("must be one of {}, got {other}", listed())))
            }
            (None, Some(default)) => Ok(default.to_owned()),
            (None, None) => Err(Invalid::new(self.path_of(field), format!("is required: one of {}", listed()))),
        }
    }

    /// An instant ([`INSTANT_FORMS`]), normalised to ISO-8601 UTC with milliseconds.
    pub fn instant(&self, field: &str) -> Result<Option<String>, Invalid> {
        let Some(value) = self.get(field) else { return Ok(None) };
        let ms = match value {
            Value::String(text) => parse_iso(text),
            Value::Number(number) => number.as_i64().and_then(check_ms),
            _ => None,
        };
        ms.map(|ms| Some(format_iso(ms)))
            .ok_or_else(|| Invalid::new(self.path_of(field), format!("must be {INSTANT_FORMS}, got {value}")))
    }

    /// An optional JSON object.
    pub fn object(&self, field: &str) -> Result<Option<&'a Map<String, Value>>, Invalid> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(object)) => Ok(Some(object)),
            Some(other) => {
                Err(Invalid::new(self.path_of(field), format!("must be an object, got {}", json_type(other))))
            }
        }
    }

    /// An optional JSON array.
    pub fn array(&self, field: &str) -> Result<Option<&'a Vec<Value>>, Invalid> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => {
                Err(Invalid::new(self.path_of(field), format!("must be an array, got {}", json_type(other))))
            }
        }
    }
}

/// A query parameter; an empty one counts as absent.
pub fn param(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// The `limit` query parameter: 1 to 1000, 100 when absent.
pub fn limit_param(limit: Option<String>) -> Result<u32, ApiError> {
    let Some(limit) = param(limit) else { return Ok(DEFAULT_LIMIT) };
    limit.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid query string: limit must be a whole number from 1 to {MAX_LIMIT}, got {limit:?}"
        ))
    })
}

/// A time query parameter (ISO-8601 or Unix milliseconds), normalised like stored times.
pub fn instant_param(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(value) = param(value) else { return Ok(None) };
    let ms = if value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<i64>().ok().and_then(check_ms)
    } else {
        parse_iso(&value)
    };
    ms.map(|ms| Some(format_iso(ms))).ok_or_else(|| {
        ApiError::bad_request(format!("invalid query string: {name} must be {INSTANT_FORMS}, got {value:?}"))
    })
}
