//! Canonical JSON: the one byte form of a JSON value that is hashed, by the ledger's hash
//! chain and by idempotency fingerprints.
//!
//! Object keys are sorted (recursively, by their UTF-8 bytes), there is no whitespace, and
//! strings and numbers are written as serde_json writes them. serde_json is built with
//! `preserve_order` here, so a `Map` keeps insertion order and the sorting must be done
//! explicitly: two values that differ only in key order give the same text.

use serde_json::Value;

/// The canonical text of `value`.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::canonical_json;

    #[test]
    fn sorts_keys_recursively_and_drops_whitespace() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": { "z": [ { "y": 2, "x": 1 } ], "c": null }, "A": true }"#).unwrap();
        assert_eq!(canonical_json(&value), r#"{"A":true,"a":{"c":null,"z":[{"x":1,"y":2}]},"b":1}"#);
    }

    #[test]
    fn key_order_of_the_input_does_not_matter() {
        let one = json!({ "operation": "read", "meta": { "k2": 2, "k1": 1 } });
        let two: serde_json::Value = serde_json::from_str(r#"{"meta":{"k1":1,"k2":2},"operation":"read"}"#).unwrap();
        assert_eq!(canonical_json(&one), canonical_json(&two));
    }

    #[test]
    fn array_order_is_kept() {
        assert_eq!(canonical_json(&json!([3, 1, 2])), "[3,1,2]");
    }

    #[test]
    fn strings_and_numbers_use_serde_json_formatting() {
        let value = json!({ "s": "quote \" backslash \\ newline \n tab \t ctrl \u{1} é 😀", "n": [0, -7, 1.5, 1e21, 12345678901234567890u64] });
        assert_eq!(
            canonical_json(&value),
            r#"{"n":[0,-7,1.5,1e+21,12345678901234567890],"s":"quote \" backslash \\ newline \n tab \t ctrl \u0001 é 😀"}"#
        );
    }

    #[test]
    fn keys_sort_by_utf8_bytes_and_are_escaped() {
        let value = json!({ "é": 1, "z": 2, "\"q": 3, "": 4 });
        assert_eq!(canonical_json(&value), r#"{"":4,"\"q":3,"z":2,"é":1}"#);
    }

    #[test]
    fn scalars_and_empty_containers() {
        assert_eq!(canonical_json(&json!(null)), "null");
        assert_eq!(canonical_json(&json!(false)), "false");
        assert_eq!(canonical_json(&json!({})), "{}");
        assert_eq!(canonical_json(&json!([])), "[]");
        assert_eq!(canonical_json(&json!("x")), r#""x""#);
    }
}
