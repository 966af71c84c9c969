//! Cell formats for the Sheets emulator: Google's `CellFormat` as a cell keeps it
//! (`userEnteredFormat`), with its `numberFormat` typed because the emulator reads it — to
//! show numbers (`FORMATTED_VALUE`), to tell dates from numbers (`dateTimeRenderOption`) —
//! and the rest (colours, text format, alignment, borders, …) kept and returned as given.
//!
//! Patterns are Google's (`yyyy-mm-dd`, `"$"#,##0.00`, `0.00%`); the formula engine
//! ([`super::engine`]) formats with them, as it reads Excel's dialect of the same syntax.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Google's `CellFormat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellFormat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_format: Option<NumberFormat>,
    /// Every other field of `CellFormat`, kept and returned as given: the emulator does not
    /// draw cells, so it has no use for them beyond giving them back.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CellFormat {
    pub fn is_empty(&self) -> bool {
        self.number_format.is_none() && self.other.is_empty()
    }

    /// The format with only a number format.
    pub fn number(number_format: NumberFormat) -> CellFormat {
        CellFormat { number_format: Some(number_format), other: Map::new() }
    }
}

/// Google's `NumberFormat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberFormat {
    #[serde(rename = "type")]
    pub kind: NumberFormatType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NumberFormatType {
    NumberFormatTypeUnspecified,
    Text,
    Number,
    Percent,
    Currency,
    Date,
    Time,
    DateTime,
    Scientific,
}

impl NumberFormat {
    pub fn new(kind: NumberFormatType, pattern: &str) -> NumberFormat {
        NumberFormat { kind, pattern: Some(pattern.to_owned()) }
    }

    /// The pattern numbers are shown with: the given one, else the `en_US` default of the type
    /// (`None` for the automatic format).
    pub fn effective_pattern(&self) -> Option<&str> {
        if let Some(pattern) = self.pattern.as_deref().filter(|p| !p.is_empty()) {
            return Some(pattern);
        }
        match self.kind {
            NumberFormatType::NumberFormatTypeUnspecified => None,
            NumberFormatType::Text => Some("@"),
            NumberFormatType::Number => Some("#,##0.00"),
            NumberFormatType::Percent => Some("0.00%"),
            NumberFormatType::Currency => Some("\"$\"#,##0.00"),
            NumberFormatType::Date => Some("M/d/yyyy"),
            NumberFormatType::Time => Some("h:mm:ss AM/PM"),
            NumberFormatType::DateTime => Some("M/d/yyyy H:mm:ss"),
            NumberFormatType::Scientific => Some("0.00E+00"),
        }
    }

    /// Whether numbers in this format are dates or times (what `dateTimeRenderOption`
    /// applies to).
    pub fn is_date_time(&self) -> bool {
        matches!(self.kind, NumberFormatType::Date | NumberFormatType::Time | NumberFormatType::DateTime)
    }

    /// The number format a pattern of the formula engine stands for (`None` for its
    /// automatic `general`).
    pub fn from_pattern(pattern: &str) -> Option<NumberFormat> {
        if pattern.is_empty() || pattern.eq_ignore_ascii_case("general") {
            return None;
        }
        Some(NumberFormat { kind: kind_of(pattern), pattern: Some(pattern.to_owned()) })
    }
}

/// What a pattern shows, judged from its tokens outside quoted literals.
fn kind_of(pattern: &str) -> NumberFormatType {
    let mut bare = String::new();
    let mut quoted = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => {
                chars.next();
            }
            c if !quoted => bare.push(c.to_ascii_lowercase()),
            _ => {}
        }
    }
    let literal_currency = pattern.contains('$') || pattern.contains('€') || pattern.contains('£');
    let date = bare.contains('y') || bare.contains('d');
    let time = bare.contains('h') || bare.contains('s') || bare.contains("am/pm");
    match (date, time) {
        (true, true) => NumberFormatType::DateTime,
        (true, false) => NumberFormatType::Date,
        (false, true) => NumberFormatType::Time,
        _ if bare.contains('%') => NumberFormatType::Percent,
        _ if literal_currency => NumberFormatType::Currency,
        _ if bare.contains("e+") || bare.contains("e-") => NumberFormatType::Scientific,
        _ if bare == "@" => NumberFormatType::Text,
        _ => NumberFormatType::Number,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_and_writes_googles_cell_format() {
        let given = json!({
            "numberFormat": { "type": "DATE", "pattern": "yyyy-mm-dd" },
            "backgroundColor": { "red": 1 },
            "textFormat": { "bold": true }
        });
        let format: CellFormat = serde_json::from_value(given.clone()).unwrap();
        assert_eq!(format.number_format, Some(NumberFormat::new(NumberFormatType::Date, "yyyy-mm-dd")));
        assert_eq!(format.other.len(), 2);
        assert_eq!(serde_json::to_value(&format).unwrap(), given);
        assert!(CellFormat::default().is_empty());
        let bad: Result<CellFormat, _> = serde_json::from_value(json!({ "numberFormat": { "type": "MONEY" } }));
        assert!(bad.is_err());
    }

    #[test]
    fn tells_the_kind_of_a_pattern() {
        let cases = [
            ("yyyy-mm-dd", NumberFormatType::Date),
            ("m/d/yyyy", NumberFormatType::Date),
            ("h:mm:ss AM/PM", NumberFormatType::Time),
            ("m/d/yyyy h:mm", NumberFormatType::DateTime),
            ("#,##0%", NumberFormatType::Percent),
            ("$#,##0", NumberFormatType::Currency),
            ("\"$\"#,##0.00", NumberFormatType::Currency),
            ("€#,##0", NumberFormatType::Currency),
            ("0.00E+00", NumberFormatType::Scientific),
            ("#,##0", NumberFormatType::Number),
            ("\"days\" 0", NumberFormatType::Number),
            ("@", NumberFormatType::Text),
        ];
        for (pattern, kind) in cases {
            assert_eq!(NumberFormat::from_pattern(pattern).map(|f| f.kind), Some(kind), "{pattern}");
        }
        assert_eq!(NumberFormat::from_pattern("general"), None);
    }

    #[test]
    fn types_without_a_pattern_use_the_default_one() {
        let date = NumberFormat { kind: NumberFormatType::Date, pattern: None };
        assert_eq!(date.effective_pattern(), Some("M/d/yyyy"));
        assert!(date.is_date_time());
        let unspecified = NumberFormat { kind: NumberFormatType::NumberFormatTypeUnspecified, pattern: None };
        assert_eq!(unspecified.effective_pattern(), None);
        assert!(!NumberFormat::new(NumberFormatType::Currency, "$0").is_date_time());
    }
}
