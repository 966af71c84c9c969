//! Cell values for the Sheets emulator: what a JSON value in a request's `values` does to a
//! cell under `valueInputOption`, how a cell reads back under `valueRenderOption` and
//! `dateTimeRenderOption`, the enum parameters that choose those, and the JSON form cells are
//! stored in.
//!
//! `USER_ENTERED` text is read as if typed into the Sheets UI with the `en_US` locale: plain
//! numbers (`12`, `-3.5`, `.5`, `007`, `1e3`, surrounding spaces allowed), `TRUE`/`FALSE` in
//! any case, formulas (`=…`, evaluated when read: [`super::engine`]), the leading apostrophe
//! that forces text, and — with the number format Google gives them — grouped numbers
//! (`1,234`), percentages (`12%`), currency (`$1,000.50`, `€5`), dates (`2024-03-04`,
//! `3/4/2024`, `2024/03/04`), times (`10:30`, `9:05:10 PM`) and both together
//! (`2024-03-04 10:30`). Dates and times are numbers of days since 1899-12-30, as in Google.

use serde_json::Value;

pub use super::cell::{Cell, Computed, Effective, Entered, SheetError};
use super::engine;
use super::format::{CellFormat, NumberFormat, NumberFormatType};

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
pub enum DateTimeOption {
    #[default]
    SerialNumber,
    FormattedString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dimension {
    #[default]
    Rows,
    Columns,
}

/// How a read shows cells: `valueRenderOption` and `dateTimeRenderOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rendering {
    pub value: RenderOption,
    pub date_time: DateTimeOption,
}

/// What writing one JSON value does to a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellWrite {
    /// `null`: the cell is left as it is.
    Skip,
    /// `""`: the cell's value is emptied (its format stays).
    Clear,
    /// The value, and the number format typing it implies (`$5` is currency); without one the
    /// cell keeps its format.
    Set(Entered, Option<NumberFormat>),
}

impl CellWrite {
    /// Applies the write to `cell`; `Skip` leaves it.
    pub fn apply(&self, cell: &mut Cell) {
        match self {
            CellWrite::Skip => {}
            CellWrite::Clear => cell.entered = None,
            CellWrite::Set(entered, number_format) => {
                cell.entered = Some(entered.clone());
                if let Some(number_format) = number_format {
                    cell.format.get_or_insert_with(CellFormat::default).number_format = Some(number_format.clone());
                }
            }
        }
    }
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

impl DateTimeOption {
    /// `SERIAL_NUMBER` or `FORMATTED_STRING`, exactly.
    pub fn parse(text: &str) -> Option<DateTimeOption> {
        match text {
            "SERIAL_NUMBER" => Some(DateTimeOption::SerialNumber),
            "FORMATTED_STRING" => Some(DateTimeOption::FormattedString),
            _ => None,
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
        Value::Bool(b) => Ok(CellWrite::Set(Entered::Bool(*b), None)),
        Value::Number(n) => match n.as_f64().filter(|f| f.is_finite()) {
            Some(f) => Ok(CellWrite::Set(Entered::Number(f), None)),
            None => Err(invalid(&format!("number_value: {n}"))),
        },
        Value::String(s) if s.is_empty() => Ok(CellWrite::Clear),
        Value::String(s) => Ok(match option {
            InputOption::Raw => CellWrite::Set(Entered::Text(s.clone()), None),
            InputOption::UserEntered => typed(s),
        }),
        Value::Array(_) => Err(invalid("list_value")),
        Value::Object(_) => Err(invalid("struct_value")),
    }
}

/// Non-empty text as if typed into a cell.
pub fn typed(text: &str) -> CellWrite {
    if let Some(forced) = text.strip_prefix('\'') {
        // A lone apostrophe is how one types an empty cell.
        return if forced.is_empty() {
            CellWrite::Clear
        } else {
            CellWrite::Set(Entered::Text(forced.to_owned()), None)
        };
    }
    if text.len() > 1 && text.starts_with('=') {
        return CellWrite::Set(Entered::Formula(text.to_owned()), None);
    }
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("TRUE") {
        CellWrite::Set(Entered::Bool(true), None)
    } else if trimmed.eq_ignore_ascii_case("FALSE") {
        CellWrite::Set(Entered::Bool(false), None)
    } else if let Some(number) = plain_number(trimmed) {
        CellWrite::Set(Entered::Number(number), None)
    } else if let Some((number, format)) = engine::parse_formatted(trimmed) {
        CellWrite::Set(Entered::Number(number), Some(format))
    } else {
        CellWrite::Set(Entered::Text(text.to_owned()), None)
    }
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

/// A cell as a read answers it: `entered` is what the cell holds, `shown` its evaluated value
/// and number format.
pub fn render(entered: &Entered, shown: &Effective, rendering: Rendering) -> Value {
    if let (RenderOption::Formula, Entered::Formula(text)) = (rendering.value, entered) {
        return Value::String(text.clone());
    }
    match (&shown.value, rendering.value) {
        (Computed::Number(n), RenderOption::Formatted) => Value::String(show_number(*n, shown.format.as_ref())),
        (Computed::Number(n), RenderOption::Unformatted | RenderOption::Formula) => {
            match (&shown.format, rendering.date_time) {
                (Some(format), DateTimeOption::FormattedString) if format.is_date_time() => {
                    Value::String(show_number(*n, Some(format)))
                }
                _ => number_value(*n),
            }
        }
        (Computed::Bool(b), RenderOption::Formatted) => Value::String(if *b { "TRUE" } else { "FALSE" }.to_owned()),
        (Computed::Bool(b), RenderOption::Unformatted | RenderOption::Formula) => Value::Bool(*b),
        (Computed::Text(text), _) => Value::String(text.clone()),
        (Computed::Error(error), _) => Value::String(error.as_str().to_owned()),
    }
}

/// A number as a cell in `format` shows it (Sheets' automatic format without one).
pub fn show_number(n: f64, format: Option<&NumberFormat>) -> String {
    match format.and_then(NumberFormat::effective_pattern) {
        Some(pattern) if format.is_some_and(|f| f.kind != NumberFormatType::Text) => {
            engine::format_number(n, pattern).unwrap_or_else(|| format_number(n))
        }
        _ => format_number(n),
    }
}

/// Integers below 2^53 in magnitude are exact in an `f64`, so they print as JSON integers.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// A number as a JSON number: integral values as integers (42, not 42.0).
pub fn number_value(n: f64) -> Value {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(entered: Entered) -> Result<CellWrite, String> {
        Ok(CellWrite::Set(entered, None))
    }

    fn text(s: &str) -> Entered {
        Entered::Text(s.to_owned())
    }

    fn formatted(n: f64, kind: NumberFormatType, pattern: &str) -> Result<CellWrite, String> {
        Ok(CellWrite::Set(Entered::Number(n), Some(NumberFormat::new(kind, pattern))))
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
        assert_eq!(DateTimeOption::parse("SERIAL_NUMBER"), Some(DateTimeOption::SerialNumber));
        assert_eq!(DateTimeOption::parse("FORMATTED_STRING"), Some(DateTimeOption::FormattedString));
        assert_eq!(DateTimeOption::parse("serial_number"), None);
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
        assert_eq!(DateTimeOption::default(), DateTimeOption::SerialNumber);
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
        assert_eq!(raw(json!("$5")), set(text("$5")));
        assert_eq!(raw(json!("2024-03-04")), set(text("2024-03-04")));
        assert_eq!(raw(json!(12)), set(Entered::Number(12.0)));
        assert_eq!(raw(json!(-3.5)), set(Entered::Number(-3.5)));
        assert_eq!(raw(json!(true)), set(Entered::Bool(true)));
        assert_eq!(raw(json!(null)), Ok(CellWrite::Skip));
        assert_eq!(raw(json!("")), Ok(CellWrite::Clear));
    }

    #[test]
    fn user_entered_reads_strings_as_typed() {
        let typed = |s: &str| interpret(&json!(s), InputOption::UserEntered, 0, 0);
        assert_eq!(typed("12"), set(Entered::Number(12.0)));
        assert_eq!(typed("-3.5"), set(Entered::Number(-3.5)));
        assert_eq!(typed("+4"), set(Entered::Number(4.0)));
        assert_eq!(typed(".5"), set(Entered::Number(0.5)));
        assert_eq!(typed("5."), set(Entered::Number(5.0)));
        assert_eq!(typed("007"), set(Entered::Number(7.0)));
        assert_eq!(typed("1e3"), set(Entered::Number(1000.0)));
        assert_eq!(typed("2.5E-2"), set(Entered::Number(0.025)));
        assert_eq!(typed(" 42 "), set(Entered::Number(42.0)));
        assert_eq!(typed("TRUE"), set(Entered::Bool(true)));
        assert_eq!(typed("false"), set(Entered::Bool(false)));
        assert_eq!(typed("True "), set(Entered::Bool(true)));
        assert_eq!(typed("=A1+1"), set(Entered::Formula("=A1+1".into())));
        assert_eq!(typed("=SUM(A:A)"), set(Entered::Formula("=SUM(A:A)".into())));
        assert_eq!(typed("'123"), set(text("123")));
        assert_eq!(typed("'=A1"), set(text("=A1")));
        assert_eq!(typed("'TRUE"), set(text("TRUE")));
        assert_eq!(typed("'$5"), set(text("$5")));
        assert_eq!(typed("'"), Ok(CellWrite::Clear));
        assert_eq!(typed(""), Ok(CellWrite::Clear));
        let stays_text = [
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
            "1,2,3",
            "March 4",
            "25:99",
            "2024-13-45",
        ];
        for s in stays_text {
            assert_eq!(typed(s), set(text(s)), "{s:?}");
        }
        assert_eq!(interpret(&json!(7), InputOption::UserEntered, 0, 0), set(Entered::Number(7.0)));
        assert_eq!(interpret(&json!(false), InputOption::UserEntered, 0, 0), set(Entered::Bool(false)));
        assert_eq!(interpret(&json!(null), InputOption::UserEntered, 0, 0), Ok(CellWrite::Skip));
    }

    #[test]
    fn user_entered_parses_dates_currency_and_percentages_with_their_format() {
        let typed = |s: &str| interpret(&json!(s), InputOption::UserEntered, 0, 0);
        use NumberFormatType::*;
        assert_eq!(typed("2024-03-04"), formatted(45355.0, Date, "yyyy-mm-dd"));
        assert_eq!(typed("3/4/2024"), formatted(45355.0, Date, "m/d/yyyy"));
        assert_eq!(typed("$1,000"), formatted(1000.0, Currency, "$#,##0"));
        assert_eq!(typed("$1,000.50"), formatted(1000.5, Currency, "$#,##0.00"));
        assert_eq!(typed("-$5"), formatted(-5.0, Currency, "$#,##0"));
        assert_eq!(typed("12%"), formatted(0.12, Percent, "#,##0%"));
        assert_eq!(typed("1,234"), formatted(1234.0, Number, "#,##0"));
        assert_eq!(typed("10:30"), formatted(0.4375, Time, "h:mm"));
        assert_eq!(typed("9:05:10 PM"), formatted(75_910.0 / 86_400.0, Time, "h:mm:ss AM/PM"));
        assert_eq!(typed("2024-03-04 10:30"), formatted(45355.4375, DateTime, "yyyy-mm-dd h:mm"));
    }

    #[test]
    fn nested_values_are_errors_naming_their_position() {
        for option in [InputOption::Raw, InputOption::UserEntered] {
            assert_eq!(interpret(&json!([1, 2]), option, 1, 2), Err("Invalid values[1][2]: list_value".to_owned()));
            assert_eq!(interpret(&json!([]), option, 0, 0), Err("Invalid values[0][0]: list_value".to_owned()));
            assert_eq!(interpret(&json!({"a": 1}), option, 3, 0), Err("Invalid values[3][0]: struct_value".to_owned()));
        }
    }

    fn shown(entered: &Entered, format: Option<NumberFormat>, rendering: Rendering) -> Value {
        render(entered, &Effective::plain(entered, format.as_ref()), rendering)
    }

    fn option(value: RenderOption) -> Rendering {
        Rendering { value, date_time: DateTimeOption::SerialNumber }
    }

    #[test]
    fn renders_formatted_values_as_strings() {
        let formatted = |entered: Entered| shown(&entered, None, option(RenderOption::Formatted));
        assert_eq!(formatted(Entered::Number(42.0)), json!("42"));
        assert_eq!(formatted(Entered::Number(1.5)), json!("1.5"));
        assert_eq!(formatted(Entered::Number(-0.25)), json!("-0.25"));
        assert_eq!(formatted(Entered::Number(-0.0)), json!("0"));
        assert_eq!(formatted(Entered::Number(0.1 + 0.2)), json!("0.3"));
        assert_eq!(formatted(Entered::Number(123_456_789_012_345.0)), json!("123456789012345"));
        assert_eq!(formatted(Entered::Number(1.5e20)), json!("1.5E+20"));
        assert_eq!(formatted(Entered::Number(1e-7)), json!("1E-7"));
        assert_eq!(formatted(Entered::Number(0.000_123)), json!("0.000123"));
        assert_eq!(formatted(Entered::Bool(true)), json!("TRUE"));
        assert_eq!(formatted(Entered::Bool(false)), json!("FALSE"));
        assert_eq!(formatted(text("hi")), json!("hi"));
        assert_eq!(format_number(f64::NAN), "#NUM!");
    }

    #[test]
    fn renders_numbers_in_their_format() {
        use NumberFormatType::*;
        let date = Some(NumberFormat::new(Date, "yyyy-mm-dd"));
        let at = |format: Option<NumberFormat>, n: f64, rendering| shown(&Entered::Number(n), format, rendering);
        assert_eq!(at(date.clone(), 45355.0, option(RenderOption::Formatted)), json!("2024-03-04"));
        assert_eq!(at(date.clone(), 45355.0, option(RenderOption::Unformatted)), json!(45355));
        let strings = Rendering { value: RenderOption::Unformatted, date_time: DateTimeOption::FormattedString };
        assert_eq!(at(date.clone(), 45355.0, strings), json!("2024-03-04"));
        assert_eq!(at(date, 45355.0, Rendering { value: RenderOption::Formula, ..strings }), json!("2024-03-04"));
        let currency = Some(NumberFormat::new(Currency, "$#,##0.00"));
        assert_eq!(at(currency.clone(), 1000.5, option(RenderOption::Formatted)), json!("$1,000.50"));
        assert_eq!(at(currency, 1000.5, strings), json!(1000.5), "only dates and times become strings");
        let percent = Some(NumberFormat { kind: Percent, pattern: None });
        assert_eq!(at(percent, 0.125, option(RenderOption::Formatted)), json!("12.50%"));
        let as_text = Some(NumberFormat { kind: Text, pattern: None });
        assert_eq!(at(as_text, 7.0, option(RenderOption::Formatted)), json!("7"));
    }

    #[test]
    fn renders_errors_and_formulas() {
        let formula = Entered::Formula("=1/0".into());
        let error = Effective { value: Computed::Error(SheetError::DivideByZero), format: None };
        assert_eq!(render(&formula, &error, option(RenderOption::Formatted)), json!("#DIV/0!"));
        assert_eq!(render(&formula, &error, option(RenderOption::Unformatted)), json!("#DIV/0!"));
        assert_eq!(render(&formula, &error, option(RenderOption::Formula)), json!("=1/0"));
        let sum = Entered::Formula("=SUM(A1:A2)".into());
        let three = Effective { value: Computed::Number(3.0), format: None };
        assert_eq!(render(&sum, &three, option(RenderOption::Formatted)), json!("3"));
        assert_eq!(render(&sum, &three, option(RenderOption::Unformatted)), json!(3));
        assert_eq!(render(&sum, &three, option(RenderOption::Formula)), json!("=SUM(A1:A2)"));
        assert_eq!(SheetError::from_text("#CIRC!"), SheetError::Ref);
        assert_eq!(SheetError::from_text("#NAME?").as_str(), "#NAME?");
        assert_eq!(SheetError::from_text("#SPILL!"), SheetError::Error);
    }

    #[test]
    fn renders_unformatted_and_formula_values_as_json() {
        for value in [RenderOption::Unformatted, RenderOption::Formula] {
            let rendered = |entered: Entered| shown(&entered, None, option(value));
            assert_eq!(rendered(Entered::Number(42.0)), json!(42));
            assert_eq!(rendered(Entered::Number(42.0)).to_string(), "42", "integral numbers print without .0");
            assert_eq!(rendered(Entered::Number(-7.0)).to_string(), "-7");
            assert_eq!(rendered(Entered::Number(1.5)), json!(1.5));
            assert_eq!(rendered(Entered::Number(1e300)), json!(1e300));
            assert_eq!(rendered(Entered::Bool(true)), json!(true));
            assert_eq!(rendered(text("123")), json!("123"));
        }
    }

    #[test]
    fn writes_keep_or_set_the_number_format() {
        let mut cell = Cell::default();
        CellWrite::Set(Entered::Number(1.0), Some(NumberFormat::new(NumberFormatType::Currency, "$0")))
            .apply(&mut cell);
        CellWrite::Set(Entered::Number(2.0), None).apply(&mut cell);
        assert_eq!(cell.number_format(), Some(&NumberFormat::new(NumberFormatType::Currency, "$0")));
        CellWrite::Clear.apply(&mut cell);
        assert_eq!(cell.entered, None);
        assert!(!cell.is_empty(), "clearing a value keeps the format");
        CellWrite::Skip.apply(&mut cell);
        assert_eq!(cell.entered, None);
    }

    #[test]
    fn stored_form_round_trips() {
        let date = CellFormat::number(NumberFormat::new(NumberFormatType::Date, "yyyy-mm-dd"));
        let cells = [
            Cell::of(Entered::Number(42.0)),
            Cell::of(Entered::Number(-0.1)),
            Cell::of(Entered::Number(0.1 + 0.2)),
            Cell::of(Entered::Number(1e300)),
            Cell::of(Entered::Number(f64::MIN_POSITIVE)),
            Cell::of(Entered::Number(9_007_199_254_740_993.0)),
            Cell::of(text("")),
            Cell::of(text("=A1")),
            Cell::of(text("{\"formula\":\"x\"}")),
            Cell::of(text("{\"format\":{}}")),
            Cell::of(Entered::Bool(false)),
            Cell::of(Entered::Formula("=A1".into())),
            Cell { entered: Some(Entered::Number(45355.0)), format: Some(date.clone()) },
            Cell { entered: Some(Entered::Formula("=A1".into())), format: Some(date.clone()) },
            Cell { entered: None, format: Some(date) },
        ];
        for cell in cells {
            let stored = cell.to_stored();
            let through_text: Value = serde_json::from_str(&stored.to_string()).unwrap();
            assert_eq!(Cell::from_stored(&through_text), Some(cell.clone()), "{stored}");
        }
        assert_eq!(Cell::of(Entered::Formula("=A1".into())).to_stored(), json!({"formula": "=A1"}));
        assert_eq!(Cell::of(text("=A1")).to_stored(), json!("=A1"));
        assert_eq!(
            Cell {
                entered: Some(Entered::Number(1.0)),
                format: Some(CellFormat::number(NumberFormat::new(NumberFormatType::Percent, "0%")))
            }
            .to_stored(),
            json!({"value": 1.0, "format": {"numberFormat": {"type": "PERCENT", "pattern": "0%"}}})
        );
        assert_eq!(Cell::from_stored(&json!(null)), None);
        assert_eq!(Cell::from_stored(&json!([1])), None);
        assert_eq!(Cell::from_stored(&json!({"formula": 1})), None);
        assert_eq!(Cell::from_stored(&json!({"formula": "=A1", "extra": 1})), None);
        assert_eq!(Cell::from_stored(&json!({"format": {}, "extra": 1})), None);
        assert_eq!(Cell::from_stored(&json!({"value": [1], "format": {}})), None);
    }
}
