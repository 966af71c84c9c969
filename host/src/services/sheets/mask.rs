//! Google's field masks for the Sheets emulator: the `fields` parameter that trims every
//! answer (partial responses: `spreadsheetId,sheets(properties(title,sheetId))`,
//! `sheets/properties/title`, `sheets.data.rowData`, `*`), and the `fields` of batchUpdate
//! requests that say which parts of a cell or of sheet properties to write.
//!
//! The grammar is tiny — names separated by commas, nested with `/` or `.` (one child) or
//! parentheses (several), `*` for every field — so it is parsed by hand here; no maintained
//! crate parses Google's partial-response syntax.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A parsed mask: the fields it selects, each with what it selects inside (an empty mask
/// inside means the whole field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mask {
    pub fields: BTreeMap<String, Mask>,
}

impl Mask {
    /// Parses a mask; the error is Google's message for it.
    pub fn parse(text: &str) -> Result<Mask, String> {
        let invalid = || format!("Invalid field selection {text}");
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        let mask = parse_list(&chars, &mut at).ok_or_else(invalid)?;
        if at != chars.len() || mask.fields.is_empty() {
            return Err(invalid());
        }
        Ok(mask)
    }

    /// Whether this mask selects everything below it.
    pub fn is_whole(&self) -> bool {
        self.fields.is_empty() || self.fields.get("*").is_some_and(Mask::is_whole)
    }

    /// The mask inside field `name`, if the mask selects it (`*` selects every field).
    pub fn get(&self, name: &str) -> Option<&Mask> {
        self.fields.get(name).or_else(|| self.fields.get("*"))
    }

    /// `value` with only the selected fields; arrays are trimmed element by element.
    pub fn apply(&self, value: &Value) -> Value {
        if self.is_whole() {
            return value.clone();
        }
        match value {
            Value::Object(map) => {
                let kept: Map<String, Value> =
                    map.iter().filter_map(|(key, inner)| Some((key.clone(), self.get(key)?.apply(inner)))).collect();
                Value::Object(kept)
            }
            Value::Array(items) => Value::Array(items.iter().map(|item| self.apply(item)).collect()),
            other => other.clone(),
        }
    }

    /// Whether the mask names `path` (or something inside it) explicitly, not through `*`.
    pub fn names(&self, path: &[&str]) -> bool {
        match path.split_first() {
            None => true,
            Some((first, rest)) => self.fields.get(*first).is_some_and(|inner| inner.names(rest)),
        }
    }
}

/// `item (',' item)*`, stopping before `)` or the end.
fn parse_list(chars: &[char], at: &mut usize) -> Option<Mask> {
    let mut mask = Mask::default();
    loop {
        let (name, inner) = parse_item(chars, at)?;
        match mask.fields.get_mut(&name) {
            Some(existing) => merge(existing, inner),
            None => {
                mask.fields.insert(name, inner);
            }
        }
        if chars.get(*at) == Some(&',') {
            *at += 1;
            continue;
        }
        return Some(mask);
    }
}

/// `name`, `name/item`, `name.item` or `name(list)`.
fn parse_item(chars: &[char], at: &mut usize) -> Option<(String, Mask)> {
    while chars.get(*at) == Some(&' ') {
        *at += 1;
    }
    let start = *at;
    while chars.get(*at).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '*') {
        *at += 1;
    }
    let name: String = chars[start..*at].iter().collect();
    if name.is_empty() || (name.contains('*') && name != "*") {
        return None;
    }
    let inner = match chars.get(*at) {
        Some('/' | '.') => {
            *at += 1;
            let (child, grandchildren) = parse_item(chars, at)?;
            Mask { fields: BTreeMap::from([(child, grandchildren)]) }
        }
        Some('(') => {
            *at += 1;
            let list = parse_list(chars, at)?;
            if chars.get(*at) != Some(&')') {
                return None;
            }
            *at += 1;
            list
        }
        _ => Mask::default(),
    };
    while chars.get(*at) == Some(&' ') {
        *at += 1;
    }
    Some((name, inner))
}

/// Adds what `other` selects to `mask`; a whole field stays whole.
fn merge(mask: &mut Mask, other: Mask) {
    if mask.fields.is_empty() || other.fields.is_empty() {
        mask.fields.clear();
        return;
    }
    for (name, inner) in other.fields {
        match mask.fields.get_mut(&name) {
            Some(existing) => merge(existing, inner),
            None => {
                mask.fields.insert(name, inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn trims_answers_to_the_selected_fields() {
        let spreadsheet = json!({
            "spreadsheetId": "x",
            "properties": { "title": "T", "locale": "en_US" },
            "sheets": [
                { "properties": { "sheetId": 0, "title": "A", "index": 0 }, "data": [1] },
                { "properties": { "sheetId": 7, "title": "B", "index": 1 } }
            ]
        });
        let trim = |mask: &str| Mask::parse(mask).unwrap().apply(&spreadsheet);
        assert_eq!(trim("spreadsheetId"), json!({ "spreadsheetId": "x" }));
        assert_eq!(
            trim("spreadsheetId,sheets(properties(title,sheetId))"),
            json!({ "spreadsheetId": "x", "sheets": [
                { "properties": { "sheetId": 0, "title": "A" } }, { "properties": { "sheetId": 7, "title": "B" } }
            ] })
        );
        assert_eq!(trim("sheets/properties/title"), trim("sheets.properties.title"));
        assert_eq!(
            trim("sheets.properties.title"),
            json!({ "sheets": [
            { "properties": { "title": "A" } }, { "properties": { "title": "B" } }
        ] })
        );
        assert_eq!(trim("*"), spreadsheet);
        assert_eq!(
            trim("properties.title,properties.locale"),
            json!({ "properties": { "title": "T", "locale": "en_US" } })
        );
        assert_eq!(trim("properties,properties.title"), json!({ "properties": { "title": "T", "locale": "en_US" } }));
        assert_eq!(trim("sheets(*)"), json!({ "sheets": spreadsheet["sheets"] }));
        assert_eq!(trim("nothing"), json!({}));
    }

    #[test]
    fn tells_what_a_mask_names() {
        let mask = Mask::parse("sheets(properties,data.rowData),spreadsheetId").unwrap();
        assert!(mask.names(&["sheets", "data"]));
        assert!(mask.names(&["sheets", "data", "rowData"]));
        assert!(!mask.names(&["sheets", "merges"]));
        assert!(!Mask::parse("*").unwrap().names(&["sheets", "data"]));
        assert_eq!(mask.get("spreadsheetId").map(Mask::is_whole), Some(true));
        assert!(Mask::parse("userEnteredFormat.backgroundColor").unwrap().get("userEnteredValue").is_none());
    }

    #[test]
    fn refuses_malformed_masks() {
        for bad in ["", ",", "a,", "a(b", "a()", "a)", "a//b", "a.", "a b", "*a", "a(b))"] {
            assert_eq!(Mask::parse(bad), Err(format!("Invalid field selection {bad}")), "{bad:?}");
        }
    }
}
