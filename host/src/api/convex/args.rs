//! Arguments as the original functions' validators take them: each function reads its
//! arguments into a struct (unknown fields refused, as a Convex object validator does), with
//! the types here for `v.id(…)` and `v.number()`. A mismatch is Convex's
//! `ArgumentValidationError`, a system error.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::FunctionError;
use super::value::{ConvexValue, Format};

/// Reads a function's arguments, naming the offending field.
pub(super) fn parse<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, FunctionError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!("\nPath: .{path}") };
        FunctionError::System(format!("ArgumentValidationError: {}{at}", e.into_inner()))
    })
}

/// The arguments of a function that takes none.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoArgs {}

/// The arguments of a function that takes only `sessionId`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SessionArgs {
    pub session_id: SessionId,
}

/// `v.id("sessions")`: a session id (`ses_…`), or the sid of the app attached to a
/// session (`app_…`), which stands for it.
#[derive(Debug, Clone)]
pub(super) struct SessionId(pub String);

/// `v.id("snapshots")`: a snapshot id (`snap_…`).
#[derive(Debug, Clone)]
pub(super) struct SnapshotId(pub String);

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        id(deserializer, "sessions", &["ses_", "app_"]).map(SessionId)
    }
}

impl<'de> Deserialize<'de> for SnapshotId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        id(deserializer, "snapshots", &["snap_"]).map(SnapshotId)
    }
}

/// The tables whose ids have a prefix, to name the table of an id given for another.
const TABLES: [(&str, &str); 3] = [("ses_", "sessions"), ("app_", "apps"), ("snap_", "snapshots")];

/// An id of `table`: one of `prefixes` followed by base-36 characters.
fn id<'de, D: Deserializer<'de>>(deserializer: D, table: &str, prefixes: &[&str]) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    let shaped = |prefix: &str| {
        text.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    };
    if prefixes.iter().any(|p| shaped(p)) {
        return Ok(text);
    }
    match TABLES.iter().find(|(prefix, _)| shaped(prefix)) {
        Some((_, found)) => Err(D::Error::custom(format!(
            "Found ID \"{text}\" from table `{found}`, which does not match the table name in validator `v.id(\"{table}\")`."
        ))),
        None => Err(D::Error::custom(format!("Value does not match validator `v.id(\"{table}\")`."))),
    }
}

/// `v.number()`: a float64 (an int64 is refused, as Convex does). Written back as Convex
/// writes numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = ConvexValue::deserialize(deserializer)?;
        value.as_number().map(Number).ok_or_else(|| D::Error::custom("Value does not match validator `v.number()`."))
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ConvexValue::Float64(self.0).export(Format::Clean).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Args {
        session_id: SessionId,
        #[serde(default)]
        version: Option<Number>,
    }

    fn read(args: Value) -> Result<Args, String> {
        let Value::Object(args) = args else { unreachable!() };
        parse(args).map_err(|e| match e {
            FunctionError::System(message) => message,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn ids_must_be_of_their_table() {
        assert_eq!(read(json!({ "sessionId": "ses_0abc" })).unwrap().session_id.0, "ses_0abc");
        assert!(read(json!({ "sessionId": "app_0abc" })).is_ok(), "an app sid stands for its session");
        let wrong = read(json!({ "sessionId": "snap_0abc" })).unwrap_err();
        assert!(wrong.starts_with("ArgumentValidationError: Found ID \"snap_0abc\" from table `snapshots`"), "{wrong}");
        assert!(wrong.ends_with("Path: .sessionId"), "{wrong}");
        let garbage = read(json!({ "sessionId": "ses_../x" })).unwrap_err();
        assert!(garbage.contains("does not match validator `v.id(\"sessions\")`"), "{garbage}");
    }

    #[test]
    fn numbers_are_floats_and_fields_are_checked() {
        let int64 = json!({ "$integer": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, 3i64.to_le_bytes()) });
        assert!(read(json!({ "sessionId": "ses_1", "version": int64 })).unwrap_err().contains("v.number()"));
        assert_eq!(read(json!({ "sessionId": "ses_1", "version": 2 })).unwrap().version, Some(Number(2.0)));
        assert!(read(json!({ "sessionId": "ses_1", "version": "2" })).unwrap_err().contains("v.number()"));
        assert!(read(json!({})).unwrap_err().contains("missing field `sessionId`"));
        assert!(read(json!({ "sessionId": "ses_1", "other": 1 })).unwrap_err().contains("unknown field `other`"));
        assert_eq!(serde_json::to_value(Number(2.0)).unwrap(), json!(2));
    }
}
