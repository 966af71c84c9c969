//! A cell of the Sheets emulator: what was entered in it and its format, what it computes
//! to once formulas are evaluated (with Google's error values), and the JSON form cells
//! are stored in. Shared by the values ([`super::values`]) and the formula engine
//! ([`super::engine`]).

use serde_json::{Map, Value};

use super::format::{CellFormat, NumberFormat};

/// What a user entered in a cell (Google's `userEnteredValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum Entered {
    /// Always finite.
    Number(f64),
    Text(String),
    Bool(bool),
    /// The formula as entered, `=` included.
    Formula(String),
}

/// A stored cell: its entered value and its format; a cell with neither is no cell at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub entered: Option<Entered>,
    pub format: Option<CellFormat>,
}

impl Cell {
    /// A cell holding `entered`, without a format.
    pub fn of(entered: Entered) -> Cell {
        Cell { entered: Some(entered), format: None }
    }

    pub fn number_format(&self) -> Option<&NumberFormat> {
        self.format.as_ref()?.number_format.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.entered.is_none() && self.format.as_ref().is_none_or(CellFormat::is_empty)
    }
}

/// A cell's value once formulas are evaluated (Google's `effectiveValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum Computed {
    Number(f64),
    Text(String),
    Bool(bool),
    Error(SheetError),
}

/// Google's error values, as formulas give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetError {
    /// `#ERROR!`: the formula does not parse.
    Error,
    Null,
    DivideByZero,
    Value,
    Ref,
    Name,
    Num,
    NotAvailable,
}

impl SheetError {
    /// The text a cell shows: `#DIV/0!`, `#REF!`, …
    pub fn as_str(self) -> &'static str {
        match self {
            SheetError::Error => "#ERROR!",
            SheetError::Null => "#NULL!",
            SheetError::DivideByZero => "#DIV/0!",
            SheetError::Value => "#VALUE!",
            SheetError::Ref => "#REF!",
            SheetError::Name => "#NAME?",
            SheetError::Num => "#NUM!",
            SheetError::NotAvailable => "#N/A",
        }
    }

    /// Google's `ErrorValue.type`.
    pub fn kind(self) -> &'static str {
        match self {
            SheetError::Error => "ERROR",
            SheetError::Null => "NULL_VALUE",
            SheetError::DivideByZero => "DIVIDE_BY_ZERO",
            SheetError::Value => "VALUE",
            SheetError::Ref => "REF",
            SheetError::Name => "NAME",
            SheetError::Num => "NUM",
            SheetError::NotAvailable => "N_A",
        }
    }

    /// Google's `ErrorValue.message`, in the spirit of the UI's tooltip.
    pub fn message(self) -> &'static str {
        match self {
            SheetError::Error => "Formula parse error.",
            SheetError::Null => "The intersection of the ranges is empty.",
            SheetError::DivideByZero => "Function DIVIDE parameter 2 cannot be zero.",
            SheetError::Value => "A value in the formula is of the wrong type.",
            SheetError::Ref => "Reference does not exist or there is a circular dependency.",
            SheetError::Name => "Unknown function or range name.",
            SheetError::Num => "The result is not a valid number.",
            SheetError::NotAvailable => "No value is available.",
        }
    }

    /// The error a cell text stands for, as the formula engine writes them; anything it gives
    /// that Google does not have (a circular reference, an unsupported function) maps onto
    /// Google's nearest.
    pub fn from_text(text: &str) -> SheetError {
        match text {
            "#NULL!" => SheetError::Null,
            "#DIV/0!" => SheetError::DivideByZero,
            "#VALUE!" => SheetError::Value,
            "#REF!" | "#CIRC!" => SheetError::Ref,
            "#NAME?" | "#N/IMPL!" => SheetError::Name,
            "#NUM!" => SheetError::Num,
            "#N/A" => SheetError::NotAvailable,
            _ => SheetError::Error,
        }
    }
}

/// A cell as shown: its computed value and the number format it is shown with.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub value: Computed,
    pub format: Option<NumberFormat>,
}

impl Effective {
    /// What a cell without a formula shows: its own value in its own format.
    pub fn plain(entered: &Entered, format: Option<&NumberFormat>) -> Effective {
        let value = match entered {
            Entered::Number(n) => Computed::Number(*n),
            Entered::Text(text) => Computed::Text(text.clone()),
            Entered::Bool(b) => Computed::Bool(*b),
            // Only reached when formulas are not evaluated (a cell past the engine's grid).
            Entered::Formula(text) => Computed::Text(text.clone()),
        };
        Effective { value, format: format.cloned() }
    }
}

/// The key of the stored form of a formula, `{"formula": "=A1"}`.
const FORMULA_KEY: &str = "formula";
/// The keys of the stored form of a cell with a format, `{"value": …, "format": {…}}`.
const VALUE_KEY: &str = "value";
const FORMAT_KEY: &str = "format";

impl Entered {
    /// The value as the storage layer keeps it: numbers, texts and booleans as themselves,
    /// formulas as `{"formula": text}` (so that a text starting with `=` stays text).
    fn to_stored(&self) -> Value {
        match self {
            Entered::Number(n) => Value::from(*n),
            Entered::Text(text) => Value::String(text.clone()),
            Entered::Bool(b) => Value::Bool(*b),
            Entered::Formula(text) => {
                Value::Object(Map::from_iter([(FORMULA_KEY.to_owned(), Value::String(text.clone()))]))
            }
        }
    }

    fn from_stored(value: &Value) -> Option<Entered> {
        match value {
            Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(Entered::Number),
            Value::String(text) => Some(Entered::Text(text.clone())),
            Value::Bool(b) => Some(Entered::Bool(*b)),
            Value::Object(map) if map.len() == 1 => {
                map.get(FORMULA_KEY)?.as_str().map(|f| Entered::Formula(f.to_owned()))
            }
            _ => None,
        }
    }
}

impl Cell {
    /// The cell as the storage layer keeps it: a value without a format as the value alone
    /// (see [`Entered`]), a formatted cell as `{"value"?: …, "format": CellFormat}`.
    pub fn to_stored(&self) -> Value {
        match (&self.entered, self.format.as_ref().filter(|f| !f.is_empty())) {
            (Some(entered), None) => entered.to_stored(),
            (entered, format) => {
                let mut map = Map::new();
                if let Some(entered) = entered {
                    map.insert(VALUE_KEY.to_owned(), entered.to_stored());
                }
                let format = format.map(|f| serde_json::to_value(f).unwrap_or_default()).unwrap_or_default();
                map.insert(FORMAT_KEY.to_owned(), format);
                Value::Object(map)
            }
        }
    }

    /// The cell [`Cell::to_stored`] made `value` from; `None` for anything it cannot have made.
    pub fn from_stored(value: &Value) -> Option<Cell> {
        match value {
            Value::Object(map) if map.contains_key(FORMAT_KEY) => {
                let entered = match map.get(VALUE_KEY) {
                    Some(value) => Some(Entered::from_stored(value)?),
                    None => None,
                };
                let known = usize::from(map.contains_key(VALUE_KEY)) + 1;
                if map.len() != known {
                    return None;
                }
                let format: CellFormat = serde_json::from_value(map[FORMAT_KEY].clone()).ok()?;
                Some(Cell { entered, format: Some(format).filter(|f| !f.is_empty()) })
            }
            value => Entered::from_stored(value).map(Cell::of),
        }
    }
}
