//! One spreadsheet as a request of the Sheets emulator works on it, inside the store's
//! transaction: its sheets, their grids (loaded when first used), formulas evaluated when a
//! read needs them, and the changes written back at the end — all of them or, when the
//! request fails, none.
//!
//! A request's work may run more than once: when it needs the formulas of the spreadsheet
//! as it then stands and the request has no evaluation of that state yet, the work stops
//! (its transaction changes nothing), the formulas are evaluated in the sandbox outside any
//! transaction ([`super::formulas`]), and the work runs again with the evaluation at hand.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::{Value, json};

use super::a1::{self, Area, Rect, SheetGrid};
use super::formulas::{Evaluation, Evaluations, FormulaJob};
use super::grid::{Grid, Room};
use super::values::{Cell, Effective, Entered, Rendering, render};
use super::values::{DateTimeOption, Dimension, RenderOption};
use super::{GoogleError, SheetsState};
use stage_store::StoreError;
use stage_store::sheets::{CellMap, Cells, SheetRecord, SpreadsheetRecord};

/// Google's limit on the cells of one spreadsheet.
pub const MAX_CELLS: u64 = 10_000_000;

/// The most a spreadsheet's cells may take, stored (their JSON): a request that would make
/// it larger is refused. Google bounds cells, not bytes; the emulator, which loads a
/// spreadsheet to work on it, bounds both.
pub const MAX_SPREADSHEET_BYTES: u64 = 128 * 1024 * 1024;

/// How many evaluations of its formulas one request may need; a request that needs more
/// (the spreadsheet kept changing under it) is refused and may be retried.
const MAX_EVALUATIONS: usize = 8;

/// Why a request on a spreadsheet stopped: storage failed, the request is refused with a
/// Google error, or it needs the formulas of the spreadsheet evaluated first (and nothing
/// it did is kept).
#[derive(Debug)]
pub enum BookError {
    Store(StoreError),
    Google(GoogleError),
    Evaluate(FormulaJob),
}

impl From<StoreError> for BookError {
    fn from(error: StoreError) -> BookError {
        BookError::Store(error)
    }
}

impl From<GoogleError> for BookError {
    fn from(error: GoogleError) -> BookError {
        BookError::Google(error)
    }
}

impl From<a1::RangeError> for BookError {
    fn from(error: a1::RangeError) -> BookError {
        BookError::Google(error.into())
    }
}

pub type BookResult<T> = Result<T, BookError>;

struct Loaded {
    before: CellMap,
    grid: Grid,
}

pub struct Book<'a> {
    cells: &'a Cells<'a>,
    pub spreadsheet: SpreadsheetRecord,
    grids: HashMap<i64, Loaded>,
    /// The evaluations this request has had, by the state they are of.
    evaluations: &'a Evaluations,
    evaluation: Option<Arc<Evaluation>>,
    /// What the request may still add to the spreadsheet.
    room: Rc<Room>,
}

/// How one run of a request's work ended.
enum Attempt {
    Done(Result<Value, GoogleError>),
    Evaluate(FormulaJob),
}

/// Runs `work` on the tenant's spreadsheet `id` without changing it.
pub async fn read<F>(sheets: &SheetsState, tenant_id: &str, id: &str, work: F) -> Result<Value, GoogleError>
where
    F: Fn(&mut Book<'_>) -> BookResult<Value> + Send + Sync + 'static,
{
    let work = Arc::new(work);
    with_formulas(sheets, tenant_id, |evaluations| {
        let work = work.clone();
        sheets.store.read_spreadsheet(tenant_id, id, move |spreadsheet, cells| {
            let mut book = Book::new(spreadsheet.clone(), cells, &evaluations);
            settle(work(&mut book))
        })
    })
    .await
}

/// Runs `work` on the tenant's spreadsheet `id` and keeps what it changed when it succeeds.
pub async fn update<F>(sheets: &SheetsState, tenant_id: &str, id: &str, work: F) -> Result<Value, GoogleError>
where
    F: Fn(&mut Book<'_>) -> BookResult<Value> + Send + Sync + 'static,
{
    let work = Arc::new(work);
    with_formulas(sheets, tenant_id, |evaluations| {
        let work = work.clone();
        sheets.store.update_spreadsheet(tenant_id, id, move |spreadsheet, cells| {
            let mut book = Book::new(spreadsheet.clone(), cells, &evaluations);
            let answer = match work(&mut book) {
                Ok(answer) => answer,
                // Nothing is saved: the transaction changes nothing.
                stopped => return settle(stopped),
            };
            if let Some(why) = book.room.refused() {
                return settle(Err(GoogleError::invalid(why).into()));
            }
            settle(book.save(spreadsheet).map(|()| answer))
        })
    })
    .await
}

/// Runs `attempt` until it is done, evaluating the formulas it asks for in between.
async fn with_formulas<A, Fut>(sheets: &SheetsState, tenant_id: &str, attempt: A) -> Result<Value, GoogleError>
where
    A: Fn(Evaluations) -> Fut,
    Fut: Future<Output = Result<Option<Attempt>, StoreError>>,
{
    let mut evaluations = Evaluations::new();
    for _ in 0..=MAX_EVALUATIONS {
        match attempt(evaluations.clone()).await?.ok_or_else(GoogleError::not_found)? {
            Attempt::Done(answer) => return answer,
            Attempt::Evaluate(job) => {
                let hash = job.hash.clone();
                let evaluation = sheets.formulas.evaluate(tenant_id, job).await?;
                evaluations.insert(hash, Arc::new(evaluation));
            }
        }
    }
    Err(GoogleError::new(
        axum::http::StatusCode::CONFLICT,
        format!(
            "The spreadsheet changed while its formulas were evaluated ({MAX_EVALUATIONS} times); try the request again."
        ),
    ))
}

fn settle(result: BookResult<Value>) -> Result<Attempt, StoreError> {
    match result {
        Ok(answer) => Ok(Attempt::Done(Ok(answer))),
        Err(BookError::Google(error)) => Ok(Attempt::Done(Err(error))),
        Err(BookError::Evaluate(job)) => Ok(Attempt::Evaluate(job)),
        Err(BookError::Store(error)) => Err(error),
    }
}

impl<'a> Book<'a> {
    pub fn new(spreadsheet: SpreadsheetRecord, cells: &'a Cells<'a>, evaluations: &'a Evaluations) -> Book<'a> {
        let stored: u64 = spreadsheet.sheets.iter().map(|sheet| sheet.cell_bytes).sum();
        let room = Rc::new(Room::new(MAX_SPREADSHEET_BYTES as i64 - stored.min(i64::MAX as u64) as i64));
        Book { cells, spreadsheet, grids: HashMap::new(), evaluations, evaluation: None, room }
    }

    pub fn id(&self) -> &str {
        &self.spreadsheet.id
    }

    pub fn sheet(&self, index: usize) -> &SheetRecord {
        &self.spreadsheet.sheets[index]
    }

    /// The index of the sheet with id `sheet_id`.
    pub fn sheet_index(&self, sheet_id: i64) -> Option<usize> {
        self.spreadsheet.sheets.iter().position(|s| s.sheet_id == sheet_id)
    }

    pub fn sheet_grids(&self) -> Vec<SheetGrid> {
        self.spreadsheet
            .sheets
            .iter()
            .enumerate()
            .map(|(index, sheet)| {
                let (row_count, column_count) = self.size(index);
                SheetGrid { title: sheet.title.clone(), row_count, column_count }
            })
            .collect()
    }

    /// A sheet's size: its grid's when loaded (it may have grown), else the stored one.
    pub fn size(&self, index: usize) -> (u32, u32) {
        let sheet = &self.spreadsheet.sheets[index];
        match self.grids.get(&sheet.sheet_id) {
            Some(loaded) => (loaded.grid.row_count, loaded.grid.column_count),
            None => (sheet.row_count, sheet.column_count),
        }
    }

    /// The sheet and area an A1 range names.
    pub fn resolve(&self, range: &str) -> Result<(usize, Area), GoogleError> {
        let parsed = a1::parse(range)?;
        Ok(a1::resolve(&parsed, &self.sheet_grids(), range)?)
    }

    /// Like [`Book::resolve`], refusing an area whose closed ends lie outside the grid.
    pub fn resolve_within(&self, range: &str) -> Result<(usize, Area), GoogleError> {
        let (index, area) = self.resolve(range)?;
        self.check_within(index, &area)?;
        Ok((index, area))
    }

    pub fn check_within(&self, index: usize, area: &Area) -> Result<(), GoogleError> {
        let grid = &self.sheet_grids()[index];
        if area.exceeds(grid) {
            return Err(GoogleError::invalid(a1::exceeds_message(grid, area)));
        }
        Ok(())
    }

    /// The area clipped to the sheet's grid.
    pub fn clip(&self, index: usize, area: &Area) -> Rect {
        let (rows, columns) = self.size(index);
        area.clip_to(rows, columns)
    }

    /// `Sheet1!A1:B2` for a rectangle of sheet `index`.
    pub fn range_name(&self, index: usize, rect: Rect) -> String {
        a1::format_range(&self.spreadsheet.sheets[index].title, rect)
    }

    fn load(&mut self, index: usize) -> Result<(), StoreError> {
        let sheet = &self.spreadsheet.sheets[index];
        if self.grids.contains_key(&sheet.sheet_id) {
            return Ok(());
        }
        let before = self.cells.load(sheet.sheet_id)?;
        let cells = before.iter().filter_map(|(&at, value)| Cell::from_stored(value).map(|cell| (at, cell))).collect();
        let grid =
            Grid { cells, row_count: sheet.row_count, column_count: sheet.column_count, room: Some(self.room.clone()) };
        self.grids.insert(sheet.sheet_id, Loaded { before, grid });
        Ok(())
    }

    pub fn grid(&mut self, index: usize) -> Result<&Grid, StoreError> {
        self.load(index)?;
        Ok(&self.grids[&self.spreadsheet.sheets[index].sheet_id].grid)
    }

    /// The grid of sheet `index`, once loaded ([`Book::grid`], [`Book::prepare`]).
    pub fn loaded(&self, index: usize) -> &Grid {
        &self.grids[&self.spreadsheet.sheets[index].sheet_id].grid
    }

    /// The grid of sheet `index`, to change; formulas are evaluated afresh afterwards.
    pub fn grid_mut(&mut self, index: usize) -> Result<&mut Grid, StoreError> {
        self.load(index)?;
        self.evaluation = None;
        let sheet_id = self.spreadsheet.sheets[index].sheet_id;
        Ok(&mut self.grids.get_mut(&sheet_id).expect("loaded above").grid)
    }

    /// Adds a sheet (already checked) with an empty grid.
    pub fn add_sheet(&mut self, at: usize, sheet: SheetRecord) {
        let grid = Grid { room: Some(self.room.clone()), ..Grid::new(sheet.row_count, sheet.column_count) };
        self.grids.insert(sheet.sheet_id, Loaded { before: CellMap::new(), grid });
        self.spreadsheet.sheets.insert(at, sheet);
        self.evaluation = None;
    }

    /// Removes sheet `index` and its cells.
    pub fn delete_sheet(&mut self, index: usize) {
        let sheet = self.spreadsheet.sheets.remove(index);
        self.grids.remove(&sheet.sheet_id);
        self.evaluation = None;
    }

    /// Makes sure the cells of sheet `index` can be shown: its grid is loaded and, when it
    /// holds a formula, the whole spreadsheet is evaluated — or the request stops to have it
    /// evaluated ([`BookError::Evaluate`]).
    pub fn prepare(&mut self, index: usize) -> BookResult<()> {
        self.load(index)?;
        if self.evaluation.is_some() {
            return Ok(());
        }
        let has_formula = |grid: &Grid| grid.cells.values().any(|c| matches!(c.entered, Some(Entered::Formula(_))));
        if !has_formula(&self.grids[&self.spreadsheet.sheets[index].sheet_id].grid) {
            return Ok(());
        }
        for other in 0..self.spreadsheet.sheets.len() {
            self.load(other)?;
        }
        let job = FormulaJob::new(&self.formula_job());
        match self.evaluations.get(&job.hash) {
            Some(evaluation) => {
                self.evaluation = Some(evaluation.clone());
                Ok(())
            }
            None => Err(BookError::Evaluate(job)),
        }
    }

    /// Every sheet's title and filled cells, as the formula sandbox takes them.
    fn formula_job(&self) -> stage_formulas::Job {
        let sheets = self
            .spreadsheet
            .sheets
            .iter()
            .map(|sheet| {
                let grid = &self.grids[&sheet.sheet_id].grid;
                let cells = grid
                    .cells
                    .iter()
                    .filter_map(|(&(row, col), cell)| {
                        let input = match cell.entered.as_ref()? {
                            Entered::Number(n) => stage_formulas::Input::Number(*n),
                            Entered::Text(text) => stage_formulas::Input::Text(text.clone()),
                            Entered::Bool(b) => stage_formulas::Input::Bool(*b),
                            Entered::Formula(text) => stage_formulas::Input::Formula(text.clone()),
                        };
                        let pattern = cell.number_format().and_then(|f| f.effective_pattern()).map(str::to_owned);
                        Some(stage_formulas::JobCell { row, col, input, pattern })
                    })
                    .collect();
                stage_formulas::JobSheet { title: sheet.title.clone(), cells }
            })
            .collect();
        stage_formulas::Job { time_zone: self.spreadsheet.time_zone.clone(), sheets }
    }

    /// What the cell shows, once [`Book::prepare`]d.
    pub fn effective(&self, index: usize, row: u32, col: u32, entered: &Entered, cell: &Cell) -> Effective {
        let evaluated = match (entered, &self.evaluation) {
            (Entered::Formula(_), Some(evaluation)) => evaluation.effective(index, row, col),
            _ => None,
        };
        evaluated.unwrap_or_else(|| Effective::plain(entered, cell.number_format()))
    }

    /// The values of `rect` on sheet `index`, rendered (Google's `values` of a ValueRange).
    pub fn read_values(
        &mut self,
        index: usize,
        rect: Rect,
        dimension: Dimension,
        rendering: Rendering,
    ) -> BookResult<Vec<Vec<Value>>> {
        // Formulas read as their text need no evaluation.
        if rendering.value == RenderOption::Formula {
            self.load(index)?;
        } else {
            self.prepare(index)?;
        }
        let grid = &self.grids[&self.spreadsheet.sheets[index].sheet_id].grid;
        Ok(grid.read(rect, dimension, |row, col, entered, cell| {
            render(entered, &self.effective(index, row, col, entered, cell), rendering)
        }))
    }

    /// A ValueRange: `{"range", "majorDimension", "values"?}` (no `values` when empty).
    pub fn value_range(
        &mut self,
        index: usize,
        rect: Rect,
        dimension: Dimension,
        rendering: Rendering,
    ) -> BookResult<Value> {
        let mut answer = json!({ "range": self.range_name(index, rect), "majorDimension": dimension.as_str() });
        let rows = self.read_values(index, rect, dimension, rendering)?;
        if !rows.is_empty() {
            answer["values"] = json!(rows);
        }
        Ok(answer)
    }

    /// Writes the changes back: sizes of grown or shrunk sheets, added and deleted sheets,
    /// and every changed cell. Refused past Google's cell limit, changing nothing.
    fn save(mut self, target: &mut SpreadsheetRecord) -> BookResult<()> {
        for sheet in &mut self.spreadsheet.sheets {
            if let Some(loaded) = self.grids.get(&sheet.sheet_id) {
                (sheet.row_count, sheet.column_count) = (loaded.grid.row_count, loaded.grid.column_count);
            }
        }
        check_cell_limit(&self.spreadsheet.sheets)?;
        for sheet in &mut self.spreadsheet.sheets {
            let Some(loaded) = self.grids.get(&sheet.sheet_id) else { continue };
            let after: CellMap = loaded.grid.cells.iter().map(|(&at, cell)| (at, cell.to_stored())).collect();
            if after != loaded.before {
                self.cells.save(sheet.sheet_id, &loaded.before, &after)?;
                sheet.cell_bytes = after.values().map(|value| value.to_string().len() as u64).sum();
            }
        }
        *target = self.spreadsheet;
        Ok(())
    }
}

/// Google's limit on the size of a spreadsheet's grids.
pub fn check_cell_limit(sheets: &[SheetRecord]) -> Result<(), GoogleError> {
    let cells: u64 = sheets.iter().map(|s| u64::from(s.row_count) * u64::from(s.column_count)).sum();
    if cells > MAX_CELLS {
        return Err(GoogleError::invalid(format!(
            "This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."
        )));
    }
    Ok(())
}

/// The rendering of a read from its query or body parameters.
pub fn rendering(value: Option<RenderOption>, date_time: Option<DateTimeOption>) -> Rendering {
    Rendering { value: value.unwrap_or_default(), date_time: date_time.unwrap_or_default() }
}
