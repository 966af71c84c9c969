//! The formulas of the Sheets emulator as the host and the formula sandbox exchange them.
//!
//! The host sends a [`Job`] — every sheet's title and the cells that hold something, with
//! their number patterns — and gets an [`Answer`]: what each formula cell shows, and the
//! number pattern it takes. Both travel as JSON through the sandbox's `run` call.
//!
//! The evaluation itself ([`evaluate`], feature `engine`) runs only inside the formula sandbox
//! (`guests/formulas`), a wasm component the host runs under memory, time and output bounds.

use serde::{Deserialize, Serialize};

#[cfg(feature = "engine")]
mod engine;
#[cfg(feature = "engine")]
pub use engine::evaluate;

/// A spreadsheet to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The spreadsheet's IANA time zone (`TODAY()`, `NOW()`); UTC when unknown.
    pub time_zone: String,
    /// The sheets in the spreadsheet's order.
    pub sheets: Vec<JobSheet>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSheet {
    pub title: String,
    pub cells: Vec<JobCell>,
}

/// A cell that holds something, 0-based.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobCell {
    pub row: u32,
    pub col: u32,
    pub input: Input,
    /// The number pattern of the cell's own format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// What a cell holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Input {
    Number(f64),
    Text(String),
    Bool(bool),
    /// `=…`, as entered.
    Formula(String),
}

/// What the formulas of a [`Job`] show, one entry per formula cell the engine holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub cells: Vec<Evaluated>,
}

/// What one formula cell shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluated {
    /// The sheet's index in the job.
    pub sheet: u32,
    pub row: u32,
    pub col: u32,
    pub value: Shown,
    /// The number pattern it shows its value with (its own, or inferred from what it reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// A formula's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Shown {
    Number(f64),
    Text(String),
    Bool(bool),
    /// The engine's error text: `#REF!`, `#DIV/0!`, `#NAME?`, …
    Error(String),
}
