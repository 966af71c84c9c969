//! Cell values for the Sheets emulator: what a JSON value in a request's `values` does to a
//! cell under `valueInputOption`, how a cell reads back under `valueRenderOption`, the enum
//! parameters that choose those, and the JSON form cells are stored in.
//!
//! `USER_ENTERED` text is read as if typed into the Sheets UI with the `en_US` locale, but only
//! for forms whose meaning does not depend on a number format: plain decimal numbers (`12`,
//! `-3.5`, `.5`, `007`, `1e3`, surrounding spaces allowed), `TRUE`/`FALSE` in any case,
//! formulas (`=…`, kept as entered: the emulator does not evaluate them) and the leading
//! apostrophe that forces text. Grouped (`1,234`), percent (`12%`), currency (`$5`) and date
//! texts stay text: Google would turn them into numbers *with a number format* that the
//! emulator does not keep, so keeping the text makes `FORMATTED_VALUE` read back exactly what
//! was typed, at the cost of `UNFORMATTED_VALUE` returning that text rather than a number.

use serde_json::{Map, Value};

/// A stored cell's content; an empty cell is no cell at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Always finite.
    Number(f64),
    Text(String),
    Bool(bool),
    /// The formula as entered, `=` included.
    Formula(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputOption {
    Raw,
    UserEntered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenderOption {
    #[default]
    Formatted,
    Unformatted,
    Formula,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dimension {
    #[default]
    Rows,
    Columns,
}

/// What writing one JSON value does to a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellWrite {
    /// `null`: the cell is left as it is.
    Skip,
    /// `""`: the cell is emptied.
    Clear,
    Set(Cell),
}

impl InputOption {
    /// `RAW` or `USER_ENTERED`, exactly.
    pub fn parse(text: &str) -> Option<InputOption> {
        match text {
            "RAW" => Some(InputOption::Raw),
            "USER_ENTERED" => Some(InputOption::UserEntered),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InputOption::Raw => "RAW",
            InputOption::UserEntered => "USER_ENTERED",
        }
    }
}

impl RenderOption {
    /// `FORMATTED_VALUE`, `UNFORMATTED_VALUE` or `FORMULA`, exactly.
    pub fn parse(text: &str) -> Option<RenderOption> {
        match text {
            "FORMATTED_VALUE" => Some(RenderOption::Formatted),
            "UNFORMATTED_VALUE" => Some(RenderOption::Unformatted),
            "FORMULA" => Some(RenderOption::Formula),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RenderOption::Formatted => "FORMATTED_VALUE",
            RenderOption::Unformatted => "UNFORMATTED_VALUE",
            RenderOption::Formula => "FORMULA",
        }
    }
}

impl Dimension {
    /// `ROWS` or `COLUMNS`, exactly.
    pub fn parse(text: &str) -> Option<Dimension> {
        match text {
            "ROWS" => Some(Dimension::Rows),
            "COLUMNS" => Some(Dimension::Columns),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dimension::Rows => "ROWS",
            Dimension::Columns => "COLUMNS",
        }
    }
}

/// What `value` does to its cell under `option`. `row`/`col` are the positions in the
/// request's `values` array, used in the error text (`Invalid values[1][2]: list_value`).
pub fn interpret(value: &Value, option: InputOption, row: usize, col: usize) -> Result<CellWrite, String> {
    let invalid = |what: &str| format!("Invalid values[{row}][{col}]: {what}");
    match value {
        Value::Null => Ok(CellWrite::Skip),
        Value::Bool(b) => Ok(CellWrite::Set(Cell::Bool(*b))),
        Value::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
            Some(f) => Ok(CellWrite::Set(Cell::Number(f))),
            None => Err(invalid(&format!("number_value: {n}"))),
        },
        Value::String(s) if s.is_empty() => Ok(CellWrite::Clear),
        Value::String(s) => Ok(match option {
            InputOption::Raw => CellWrite::Set(Cell::Text(s.clone())),
            InputOption::UserEntered => typed(s),
        }),
        Value::Array(_) => Err(invalid("list_value")),
        Value::Object(_) => Err(invalid("struct_value")),
    }
}

/// Non-empty text as if typed into a cell.
fn typed(text: &str) -> CellWrite {
    if let Some(forced) = text.strip_prefix('\'') {
        // A lone apostrophe is how one types an empty cell.
        return if forced.is_empty() { CellWrite::Clear } else { CellWrite::Set(Cell::Text(forced.to_owned())) };
    }
    if text.len() > 1 && text.starts_with('=') {
        return CellWrite::Set(Cell::Formula(text.to_owned()));
    }
    let trimmed = text.trim();
    let cell = if trimmed.eq_ignore_ascii_case("TRUE") {
        Cell::Bool(true)
    } else if trimmed.eq_ignore_ascii_case("FALSE") {
        Cell::Bool(false)
    } else if let Some(number) = plain_number(trimmed) {
        Cell::Number(number)
    } else {
        Cell::Text(text.to_owned())
    };
    CellWrite::Set(cell)
}

/// `[+-]digits[.digits][e[+-]digits]` (either side of the point may be empty, not both), as a
/// finite number. Checked by hand because `f64::from_str` also takes `inf`, `NaN` and the like.
fn plain_number(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    let digits_from = |at: usize| bytes[at.min(bytes.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut at = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let integer = digits_from(at);
    at += integer;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits_from(at + 1);
        at += 1 + fraction;
    }
    if integer + fraction == 0 {
        return None;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1 + usize::from(matches!(bytes.get(at + 1), Some(b'+' | b'-')));
        let exponent = digits_from(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != bytes.len() {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A cell as `values.get` answers it under `option`.
pub fn render(cell: &Cell, option: RenderOption) -> Value {
    match (cell, option) {
        (Cell::Number(n), RenderOption::Formatted) => Value::String(format_number(*n)),
        (Cell::Number(n), RenderOption::Unformatted | RenderOption::Formula) => number_value(*n),
        (Cell::Bool(b), RenderOption::Formatted) => Value::String(if *b { "TRUE" } else { "FALSE" }.to_owned()),
        (Cell::Bool(b), RenderOption::Unformatted | RenderOption::Formula) => Value::Bool(*b),
        (Cell::Text(text) | Cell::Formula(text), _) => Value::String(text.clone()),
    }
}

/// Integers below 2^53 in magnitude are exact in an `f64`, so they print as JSON integers.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A number as a JSON number: integral values as integers (42, not 42.0).
fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < EXACT_INTEGER_LIMIT {
        return Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// A number as Sheets' default format shows it: 15 significant digits, integral values
/// without decimals, scientific notation (`1.5E+20`, `1E-7`) for very large or small values.
pub fn format_number(n: f64) -> String {
    if !n.is_finite() {
        return "#NUM!".to_owned();
    }
    // Rounding to 15 significant digits hides binary noise: 0.1 + 0.2 shows as 0.3.
    let n: f64 = format!("{n:.14e}").parse().unwrap_or(n);
    if n == 0.0 {
        return "0".to_owned();
    }
    let magnitude = n.abs();
    if n.fract() == 0.0 && magnitude < 1e15 {
        return format!("{}", n as i64);
    }
    if (1e-6..1e15).contains(&magnitude) {
        return n.to_string();
    }
    let scientific = format!("{n:E}");
    match scientific.split_once('E') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => format!("{mantissa}E+{exponent}"),
        _ => scientific,
    }
}

/// The key of the stored form of a formula, `{"formula": "=A1"}`.
const FORMULA_KEY: &str = "formula";

impl Cell {
    /// The cell as the storage layer keeps it: numbers, texts and booleans as themselves,
    /// formulas as `{"formula": text}` (so that a text starting with `=` stays text).
    pub fn to_stored(&self) -> Value {
        match self {
            Cell::Number(n) => Value::from(*n),
            Cell::Text(text) => Value::String(text.clone()),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Formula(text) => {
                Value::Object(Map::from_iter([(FORMULA_KEY.to_owned(), Value::String(text.clone()))]))
            }
        }
    }

    /// The cell [`Cell::to_stored`] made `value` from; `None` for anything it cannot have made.
    pub fn from_stored(value: &Value) -> Option<Cell> {
        match value {
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Cell::Number),
            Value::String(text) => Some(Cell::Text(text.clone())),
            Value::Bool(b) => Some(Cell::Bool(*b)),
            Value::Object(map) if map.len() == 1 => map.get(FORMULA_KEY)?.as_str().map(|f| Cell::Formula(f.to_owned())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(cell: Cell) -> Result<CellWrite, String> {
        Ok(CellWrite::Set(cell))
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }

    #[test]
    fn parses_option_names_exactly() {
        assert_eq!(InputOption::parse("RAW"), Some(InputOption::Raw));
        assert_eq!(InputOption::parse("USER_ENTERED"), Some(InputOption::UserEntered));
        assert_eq!(InputOption::parse("raw"), None);
        assert_eq!(InputOption::parse("INPUT_VALUE_OPTION_UNSPECIFIED"), None);
        assert_eq!(RenderOption::parse("FORMATTED_VALUE"), Some(RenderOption::Formatted));
        assert_eq!(RenderOption::parse("UNFORMATTED_VALUE"), Some(RenderOption::Unformatted));
        assert_eq!(RenderOption::parse("FORMULA"), Some(RenderOption::Formula));
        assert_eq!(RenderOption::parse("formula"), None);
        assert_eq!(Dimension::parse("ROWS"), Some(Dimension::Rows));
        assert_eq!(Dimension::parse("COLUMNS"), Some(Dimension::Columns));
        assert_eq!(Dimension::parse("Rows"), None);
        for option in [InputOption::Raw, InputOption::UserEntered] {
            assert_eq!(InputOption::parse(option.as_str()), Some(option));
        }
        for option in [RenderOption::Formatted, RenderOption::Unformatted, RenderOption::Formula] {
            assert_eq!(RenderOption::parse(option.as_str()), Some(option));
        }
        for dimension in [Dimension::Rows, Dimension::Columns] {
            assert_eq!(Dimension::parse(dimension.as_str()), Some(dimension));
        }
        assert_eq!(RenderOption::default(), RenderOption::Formatted);
        assert_eq!(Dimension::default(), Dimension::Rows);
    }

    #[test]
    fn raw_keeps_strings_as_text() {
        let raw = |value: Value| interpret(&value, InputOption::Raw, 0, 0);
        assert_eq!(raw(json!("123")), set(text("123")));
        assert_eq!(raw(json!("=A1")), set(text("=A1")));
        assert_eq!(raw(json!("TRUE")), set(text("TRUE")));
        assert_eq!(raw(json!("'x")), set(text("'x")));
        assert_eq!(raw(json!(" 1 ")), set(text(" 1 ")));
        assert_eq!(raw(json!(12)), set(Cell::Number(12.0)));
        assert_eq!(raw(json!(-3.5)), set(Cell::Number(-3.5)));
        assert_eq!(raw(json!(true)), set(Cell::Bool(true)));
        assert_eq!(raw(json!(null)), Ok(CellWrite::Skip));
        assert_eq!(raw(json!("")), Ok(CellWrite::Clear));
    }

    #[test]
    fn user_entered_reads_strings_as_typed() {
        let typed = |s: &str| interpret(&json!(s), InputOption::UserEntered, 0, 0);
        assert_eq!(typed("12"), set(Cell::Number(12.0)));
        assert_eq!(typed("-3.5"), set(Cell::Number(-3.5)));
        assert_eq!(typed("+4"), set(Cell::Number(4.0)));
        assert_eq!(typed(".5"), set(Cell::Number(0.5)));
        assert_eq!(typed("5."), set(Cell::Number(5.0)));
        assert_eq!(typed("007"), set(Cell::Number(7.0)));
        assert_eq!(typed("1e3"), set(Cell::Number(1000.0)));
        assert_eq!(typed("2.5E-2"), set(Cell::Number(0.025)));
        assert_eq!(typed(" 42 "), set(Cell::Number(42.0)));
        assert_eq!(typed("TRUE"), set(Cell::Bool(true)));
        assert_eq!(typed("false"), set(Cell::Bool(false)));
        assert_eq!(typed("True "), set(Cell::Bool(true)));
        assert_eq!(typed("=A1+1"), set(Cell::Formula("=A1+1".into())));
        assert_eq!(typed("=SUM(A:A)"), set(Cell::Formula("=SUM(A:A)".into())));
        assert_eq!(typed("'123"), set(text("123")));
        assert_eq!(typed("'=A1"), set(text("=A1")));
        assert_eq!(typed("'TRUE"), set(text("TRUE")));
        assert_eq!(typed("'"), Ok(CellWrite::Clear));
        assert_eq!(typed(""), Ok(CellWrite::Clear));
        let stays_text = [
            "1,234",
            "12%",
            "$5",
            "2024-01-31",
            "1e",
            "1e+",
            "e3",
            ".",
            "-",
            "+",
            "1.2.3",
            "0x10",
            "inf",
            "NaN",
            "infinity",
            "1e999",
            "1_000",
            "=",
            "hello",
            "TRUEish",
            " ",
            "１２",
        ];
        for s in stays_text {
            assert_eq!(typed(s), set(text(s)), "{s:?}");
        }
        assert_eq!(interpret(&json!(7), InputOption::UserEntered, 0, 0), set(Cell::Number(7.0)));
        assert_eq!(interpret(&json!(false), InputOption::UserEntered, 0, 0), set(Cell::Bool(false)));
        assert_eq!(interpret(&json!(null), InputOption::UserEntered, 0, 0), Ok(CellWrite::Skip));
    }

    #[test]
    fn nested_values_are_errors_naming_their_position() {
        for option in [InputOption::Raw, InputOption::UserEntered] {
            assert_eq!(interpret(&json!([1, 2]), option, 1, 2), Err("Invalid values[1][2]: list_value".to_owned()));
            assert_eq!(interpret(&json!([]), option, 0, 0), Err("Invalid values[0][0]: list_value".to_owned()));
            assert_eq!(interpret(&json!({"a": 1}), option, 3, 0), Err("Invalid values[3][0]: struct_value".to_owned()));
        }
    }

    #[test]
    fn renders_formatted_values_as_strings() {
        let formatted = |cell: Cell| render(&cell, RenderOption::Formatted);
        assert_eq!(formatted(Cell::Number(42.0)), json!("42"));
        assert_eq!(formatted(Cell::Number(1.5)), json!("1.5"));
        assert_eq!(formatted(Cell::Number(-0.25)), json!("-0.25"));
        assert_eq!(formatted(Cell::Number(-0.0)), json!("0"));
        assert_eq!(formatted(Cell::Number(0.1 + 0.2)), json!("0.3"));
        assert_eq!(formatted(Cell::Number(123_456_789_012_345.0)), json!("123456789012345"));
        assert_eq!(formatted(Cell::Number(1.5e20)), json!("1.5E+20"));
        assert_eq!(formatted(Cell::Number(1e-7)), json!("1E-7"));
        assert_eq!(formatted(Cell::Number(0.000_123)), json!("0.000123"));
        assert_eq!(formatted(Cell::Bool(true)), json!("TRUE"));
        assert_eq!(formatted(Cell::Bool(false)), json!("FALSE"));
        assert_eq!(formatted(text("hi")), json!("hi"));
        assert_eq!(formatted(Cell::Formula("=A1".into())), json!("=A1"));
        assert_eq!(format_number(f64::NAN), "#NUM!");
    }

    #[test]
    fn renders_unformatted_and_formula_values_as_json() {
        for option in [RenderOption::Unformatted, RenderOption::Formula] {
            let rendered = |cell: Cell| render(&cell, option);
            assert_eq!(rendered(Cell::Number(42.0)), json!(42));
            assert_eq!(rendered(Cell::Number(42.0)).to_string(), "42", "integral numbers print without .0");
            assert_eq!(rendered(Cell::Number(-7.0)).to_string(), "-7");
            assert_eq!(rendered(Cell::Number(1.5)), json!(1.5));
            assert_eq!(rendered(Cell::Number(1e300)), json!(1e300));
            assert_eq!(rendered(Cell::Bool(true)), json!(true));
            assert_eq!(rendered(text("123")), json!("123"));
            assert_eq!(rendered(Cell::Formula("=SUM(A1:A3)".into())), json!("=SUM(A1:A3)"));
        }
    }

    #[test]
    fn stored_form_round_trips() {
        let cells = [
            Cell::Number(42.0),
            Cell::Number(-0.1),
            Cell::Number(0.1 + 0.2),
            Cell::Number(1e300),
            Cell::Number(f64::MIN_POSITIVE),
            Cell::Number(9_007_199_254_740_993.0),
            text(""),
            text("=A1"),
            text("{\"formula\":\"x\"}"),
            Cell::Bool(false),
            Cell::Formula("=A1".into()),
        ];
        for cell in cells {
            let stored = cell.to_stored();
            let through_text: Value = serde_json::from_str(&stored.to_string()).unwrap();
            assert_eq!(Cell::from_stored(&through_text), Some(cell.clone()), "{stored}");
        }
        assert_eq!(Cell::Formula("=A1".into()).to_stored(), json!({"formula": "=A1"}));
        assert_eq!(text("=A1").to_stored(), json!("=A1"));
        assert_eq!(Cell::from_stored(&json!(null)), None);
        assert_eq!(Cell::from_stored(&json!([1])), None);
        assert_eq!(Cell::from_stored(&json!({"formula": 1})), None);
        assert_eq!(Cell::from_stored(&json!({"formula": "=A1", "extra": 1})), None);
    }
}
