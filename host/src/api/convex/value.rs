//! Convex values and their two JSON forms.
//!
//! Arguments always arrive in the encoded form (`{"$integer": base64 LE}` for an int64,
//! `{"$float": …}` for a float JSON cannot write, `{"$bytes": base64}`; every JSON number is
//! a float64; field names starting with `$` are reserved). Values go back in the form the
//! request names: encoded (`convex_encoded_json`, what the npm client asks for) or clean
//! (`json`: int64 as a decimal string, bytes as base64, non-finite floats as strings).
//! Objects keep their fields sorted, as Convex does.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// How values are written in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `json`: readable and lossy.
    Clean,
    /// `convex_encoded_json`: every value comes back as it was.
    Encoded,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ConvexValue {
    Null,
    Int64(i64),
    Float64(f64),
    Boolean(bool),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<ConvexValue>),
    Object(BTreeMap<String, ConvexValue>),
}

/// Largest float64 below which every integer is exact: such floats are written without a
/// fraction (`1`, not `1.0`), which JavaScript reads as the same number.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

impl ConvexValue {
    /// Reads a value in its encoded JSON form.
    pub(super) fn from_encoded(json: Value) -> Result<ConvexValue, String> {
        Ok(match json {
            Value::Null => ConvexValue::Null,
            Value::Bool(b) => ConvexValue::Boolean(b),
            Value::Number(n) => ConvexValue::Float64(n.as_f64().ok_or_else(|| format!("{n} is not a number"))?),
            Value::String(s) => ConvexValue::String(s),
            Value::Array(items) => {
                ConvexValue::Array(items.into_iter().map(ConvexValue::from_encoded).collect::<Result<_, _>>()?)
            }
            Value::Object(object) => match special(&object) {
                Some(("$integer", encoded)) => {
                    ConvexValue::Int64(i64::from_le_bytes(eight_bytes("$integer", encoded)?))
                }
                Some(("$float", encoded)) => ConvexValue::Float64(f64::from_le_bytes(eight_bytes("$float", encoded)?)),
                Some(("$bytes", encoded)) => {
                    ConvexValue::Bytes(BASE64.decode(encoded).map_err(|e| format!("`$bytes` must hold base64: {e}"))?)
                }
                _ => {
                    let mut fields = BTreeMap::new();
                    for (key, value) in object {
                        if key.starts_with('$') {
                            return Err(format!("field name `{key}` starts with a '$', which is reserved"));
                        }
                        fields.insert(key, ConvexValue::from_encoded(value)?);
                    }
                    ConvexValue::Object(fields)
                }
            },
        })
    }

    /// The value in `format`.
    pub(super) fn export(&self, format: Format) -> Value {
        match self {
            ConvexValue::Null => Value::Null,
            ConvexValue::Boolean(b) => Value::Bool(*b),
            ConvexValue::String(s) => Value::String(s.clone()),
            ConvexValue::Int64(n) => match format {
                Format::Encoded => special_json("$integer", BASE64.encode(n.to_le_bytes())),
                Format::Clean => Value::String(n.to_string()),
            },
            ConvexValue::Float64(f) => float(*f, format),
            ConvexValue::Bytes(bytes) => match format {
                Format::Encoded => special_json("$bytes", BASE64.encode(bytes)),
                Format::Clean => Value::String(BASE64.encode(bytes)),
            },
            ConvexValue::Array(items) => Value::Array(items.iter().map(|v| v.export(format)).collect()),
            ConvexValue::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), v.export(format))).collect())
            }
        }
    }

    /// The number this value holds, for an argument validated as `v.number()`: a float64
    /// only (Convex refuses an int64 there, which `v.int64()` takes).
    pub(super) fn as_number(&self) -> Option<f64> {
        match self {
            ConvexValue::Float64(f) => Some(*f),
            _ => None,
        }
    }
}

/// A value as an argument of type `v.any()`: read from its encoded form.
impl<'de> Deserialize<'de> for ConvexValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConvexValue::from_encoded(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A float64 in `format`: finite ones as JSON numbers (integral ones without a fraction).
fn float(f: f64, format: Format) -> Value {
    if f.is_finite() && !(f == 0.0 && f.is_sign_negative()) {
        if f.fract() == 0.0 && f.abs() < EXACT_INTEGERS {
            return Value::from(f as i64);
        }
        if let Some(n) = serde_json::Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    match format {
        Format::Encoded => special_json("$float", BASE64.encode(f.to_le_bytes())),
        Format::Clean if f.is_nan() => Value::String("NaN".into()),
        Format::Clean if f == f64::INFINITY => Value::String("Infinity".into()),
        Format::Clean if f == f64::NEG_INFINITY => Value::String("-Infinity".into()),
        // Negative zero.
        Format::Clean => Value::from(0),
    }
}

/// `{"$integer": …}`, `{"$float": …}` or `{"$bytes": …}`: the key and its string.
fn special(object: &Map<String, Value>) -> Option<(&str, &str)> {
    if object.len() != 1 {
        return None;
    }
    let (key, value) = object.iter().next()?;
    matches!(key.as_str(), "$integer" | "$float" | "$bytes").then_some((key.as_str(), value.as_str()?))
}

fn special_json(key: &str, encoded: String) -> Value {
    Value::Object(Map::from_iter([(key.to_owned(), Value::String(encoded))]))
}

fn eight_bytes(key: &str, encoded: &str) -> Result<[u8; 8], String> {
    BASE64
        .decode(encoded)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("`{key}` must hold 8 base64-encoded bytes"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_encoded_form_and_writes_both_forms() {
        let encoded = json!({
            "big": { "$integer": BASE64.encode(7i64.to_le_bytes()) },
            "raw": { "$bytes": "AAE=" },
            "n": 1.5,
            "whole": 2,
            "list": [null, true, "s"],
        });
        let value = ConvexValue::from_encoded(encoded.clone()).unwrap();
        assert_eq!(value.export(Format::Encoded), encoded);
        assert_eq!(
            value.export(Format::Clean),
            json!({ "big": "7", "raw": "AAE=", "n": 1.5, "whole": 2, "list": [null, true, "s"] })
        );
        let keys: Vec<String> = value.export(Format::Clean).as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["big", "list", "n", "raw", "whole"], "fields sorted as Convex keeps them");
    }

    #[test]
    fn floats_json_cannot_write_round_trip_encoded() {
        for f in [f64::NAN, f64::INFINITY, -0.0] {
            let written = ConvexValue::Float64(f).export(Format::Encoded);
            let back = ConvexValue::from_encoded(written).unwrap();
            let ConvexValue::Float64(back) = back else { panic!("{back:?}") };
            assert_eq!(back.to_bits(), f.to_bits());
        }
        assert_eq!(ConvexValue::Float64(f64::NEG_INFINITY).export(Format::Clean), json!("-Infinity"));
    }

    #[test]
    fn refuses_malformed_encodings_and_reserved_names() {
        assert!(ConvexValue::from_encoded(json!({ "$integer": "AAE=" })).is_err());
        assert!(ConvexValue::from_encoded(json!({ "$bytes": "%%" })).is_err());
        assert!(ConvexValue::from_encoded(json!({ "a": { "$other": 1 } })).unwrap_err().contains("reserved"));
    }
}
