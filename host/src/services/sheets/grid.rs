//! One sheet's cells and size for the Sheets emulator, and what the value methods and the
//! dimension requests do to them: finding the table an append extends, writing a block
//! (overwriting or inserting rows, growing the grid), clearing, inserting and deleting rows
//! and columns, and reading a rectangle back with Google's trimming of trailing empty rows
//! and cells.
//!
//! Positions and sizes are `u32`; arithmetic that could pass `u32::MAX` saturates instead of
//! wrapping. Requests that large are refused long before by the callers' cell limits.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::Value;

use super::a1::{Area, Rect};
use super::values::{Cell, CellWrite, Dimension, Entered};

/// One sheet's cells, sparse, keyed by (row, col) 0-based. A cell may hold only a format;
/// such a cell counts as empty for tables and reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grid {
    pub cells: BTreeMap<(u32, u32), Cell>,
    pub row_count: u32,
    pub column_count: u32,
    /// What the request changing the grid may still add to its spreadsheet (none: no bound).
    pub room: Option<Rc<Room>>,
}

/// Google's limit on the characters of one cell.
pub const MAX_CELL_CHARS: usize = 50_000;

/// What a request may still add to its spreadsheet, shared by the grids of its book. Every
/// change of a cell is measured — the bytes of the cell as stored — and a change that would
/// pass [`MAX_CELL_CHARS`] or the room left is not made: the first refusal is kept, and the
/// request answers it instead of saving anything. So a request never holds more than the
/// bound in memory, whatever it repeats over how many cells.
#[derive(Debug, PartialEq)]
pub struct Room {
    left: std::cell::Cell<i64>,
    refused: std::cell::RefCell<Option<String>>,
}

impl Room {
    /// Room for `bytes` more.
    pub fn new(bytes: i64) -> Room {
        Room { left: std::cell::Cell::new(bytes), refused: Default::default() }
    }

    /// Why a change was not made, once one was not.
    pub fn refused(&self) -> Option<String> {
        self.refused.borrow().clone()
    }

    fn refuse(&self, why: String) {
        self.refused.borrow_mut().get_or_insert(why);
    }
}

/// The bytes a cell takes stored (none for an empty one).
pub fn stored_bytes(cell: &Cell) -> i64 {
    if cell.is_empty() { 0 } else { cell.to_stored().to_string().len() as i64 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InsertDataOption {
    #[default]
    Overwrite,
    InsertRows,
}

impl InsertDataOption {
    /// `OVERWRITE` or `INSERT_ROWS`, exactly.
    pub fn parse(text: &str) -> Option<InsertDataOption> {
        match text {
            "OVERWRITE" => Some(InsertDataOption::Overwrite),
            "INSERT_ROWS" => Some(InsertDataOption::InsertRows),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InsertDataOption::Overwrite => "OVERWRITE",
            InsertDataOption::InsertRows => "INSERT_ROWS",
        }
    }
}

/// The outcome of an append, for the answer and for storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub table: Option<Rect>,
    /// Rectangle written (for updatedRange / updatedData).
    pub updated: Rect,
    pub updated_rows: u32,
    pub updated_columns: u32,
    pub updated_cells: u32,
}

/// The outcome of writing a block of values at a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// From the start cell across as many rows as the block has and as many columns as its
    /// widest row; the start cell alone when the block is empty.
    pub updated: Rect,
    /// Rows and columns holding at least one written (not skipped) cell.
    pub updated_rows: u32,
    pub updated_columns: u32,
    /// Cells written, clears included.
    pub updated_cells: u32,
}

/// Height and width of `values` laid out as rows, whatever their major dimension.
fn block_size(values: &[Vec<CellWrite>], dimension: Dimension) -> (u32, u32) {
    let lines = saturating_u32(values.len());
    let longest = saturating_u32(values.iter().map(Vec::len).max().unwrap_or(0));
    match dimension {
        Dimension::Rows => (lines, longest),
        Dimension::Columns => (longest, lines),
    }
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The cells of `values` with their (row, col) offsets from the block's top-left.
fn block_cells(values: &[Vec<CellWrite>], dimension: Dimension) -> impl Iterator<Item = (u32, u32, &CellWrite)> {
    values.iter().enumerate().flat_map(move |(major, line)| {
        line.iter().enumerate().map(move |(minor, write)| {
            let (major, minor) = (saturating_u32(major), saturating_u32(minor));
            match dimension {
                Dimension::Rows => (major, minor, write),
                Dimension::Columns => (minor, major, write),
            }
        })
    })
}

impl Grid {
    /// An empty grid of `row_count` × `column_count`.
    pub fn new(row_count: u32, column_count: u32) -> Grid {
        Grid { cells: BTreeMap::new(), row_count, column_count, room: None }
    }

    /// The cells with a value inside `rect`, in row-major order.
    fn cells_in(&self, rect: Rect) -> impl Iterator<Item = (u32, u32, &Entered, &Cell)> {
        self.all_cells_in(rect).filter_map(|(row, col, cell)| Some((row, col, cell.entered.as_ref()?, cell)))
    }

    /// Every stored cell inside `rect` (formatted empty ones too), in row-major order.
    pub fn all_cells_in(&self, rect: Rect) -> impl Iterator<Item = (u32, u32, &Cell)> {
        // An inverted rectangle would make the map's range panic; it holds no cell anyway.
        let bounds = if rect.is_inverted() { None } else { Some((rect.row0, rect.col0)..=(rect.row1, rect.col1)) };
        bounds
            .into_iter()
            .flat_map(|bounds| self.cells.range(bounds))
            .filter(move |((_, col), _)| (rect.col0..=rect.col1).contains(col))
            .map(|(&(row, col), cell)| (row, col, cell))
    }

    /// The table an append into `within` extends, as Google finds it: it starts at the first
    /// non-empty row of `within` (across the non-empty cells of `within`'s columns in that
    /// row) and grows, past `within`'s bounds, down while the next row has a cell under the
    /// table and right while the next column has a cell beside it. So `A1` or `A1:C1` finds
    /// a whole table below its header, and an append after it never overwrites its rows.
    /// It never grows up or left of `within`: the appended values start in its columns.
    pub fn find_table(&self, within: Rect) -> Option<Rect> {
        let (row, _, _, _) = self.cells_in(within).next()?;
        let mut table: Option<Rect> = None;
        self.widen_within(&mut table, row, within);
        let mut table = table?;
        loop {
            let mut grew = false;
            while table.col1 < u32::MAX && self.any_in_column(table.col1 + 1, table.row0, table.row1) {
                table.col1 += 1;
                grew = true;
            }
            while table.row1 < u32::MAX && self.any_in_row(table.row1 + 1, table.col0, table.col1) {
                table.row1 += 1;
                let mut widened = Some(table);
                self.widen_within(&mut widened, table.row1, within);
                table = widened.unwrap_or(table);
                grew = true;
            }
            if !grew {
                return Some(table);
            }
        }
    }

    /// Widens `table` (or starts it) to the cells of `row` that lie in `within`'s columns.
    fn widen_within(&self, table: &mut Option<Rect>, row: u32, within: Rect) {
        let line = Rect { row0: row, row1: row, col0: within.col0, col1: within.col1 };
        for (row, col, _, _) in self.cells_in(line) {
            match table {
                None => *table = Some(Rect::cell(row, col)),
                Some(table) => {
                    table.col0 = table.col0.min(col);
                    table.col1 = table.col1.max(col);
                }
            }
        }
    }

    fn any_in_row(&self, row: u32, col0: u32, col1: u32) -> bool {
        self.cells.range((row, col0)..=(row, col1)).any(|(_, cell)| cell.entered.is_some())
    }

    fn any_in_column(&self, col: u32, row0: u32, row1: u32) -> bool {
        (row0..=row1).any(|row| self.cells.get(&(row, col)).is_some_and(|cell| cell.entered.is_some()))
    }

    /// The value of the cell at (`row`, `col`), if any.
    pub fn entered(&self, row: u32, col: u32) -> Option<&Entered> {
        self.cells.get(&(row, col))?.entered.as_ref()
    }

    /// Applies an append of `values` (already interpreted, in the body's major dimension) into
    /// `area`; mutates self (cells, row_count, column_count, shifting rows for INSERT_ROWS).
    ///
    /// The values go on the row after the table found in `area` (clipped to the grid),
    /// starting at the table's first column, or at the area's top-left when it holds no table.
    /// Empty values (`[]`, `[[]]`) change nothing and report the start cell with zero counts.
    pub fn append(
        &mut self,
        area: &Area,
        values: &[Vec<CellWrite>],
        dimension: Dimension,
        insert: InsertDataOption,
    ) -> Appended {
        let within = area.clip_to(self.row_count, self.column_count);
        let table = self.find_table(within);
        let (row, col) = match table {
            Some(table) => (table.row1.saturating_add(1), table.col0),
            None => (within.row0, within.col0),
        };
        let (height, width) = block_size(values, dimension);
        if insert == InsertDataOption::InsertRows && width > 0 {
            self.insert_rows(row, height);
        }
        let written = self.write(row, col, values, dimension);
        Appended {
            table,
            updated: written.updated,
            updated_rows: written.updated_rows,
            updated_columns: written.updated_columns,
            updated_cells: written.updated_cells,
        }
    }

    /// Moves every cell at or below `at` down by `count` rows and grows the grid by as many.
    pub fn insert_rows(&mut self, at: u32, count: u32) {
        if count == 0 {
            return;
        }
        let moved = self.cells.split_off(&(at, 0));
        self.cells.extend(moved.into_iter().map(|((row, col), cell)| ((row.saturating_add(count), col), cell)));
        self.row_count = self.row_count.saturating_add(count);
    }

    /// Writes `values` (in `dimension` order) with their top-left at (`row`, `col`): `Skip`
    /// leaves a cell, `Clear` empties it. The grid grows to hold the whole block.
    pub fn write(&mut self, row: u32, col: u32, values: &[Vec<CellWrite>], dimension: Dimension) -> Written {
        let (height, width) = block_size(values, dimension);
        if height == 0 || width == 0 {
            return Written { updated: Rect::cell(row, col), updated_rows: 0, updated_columns: 0, updated_cells: 0 };
        }
        let mut rows = BTreeSet::new();
        let mut columns = BTreeSet::new();
        let mut cells = 0u32;
        for (row_offset, col_offset, write) in block_cells(values, dimension) {
            let at = (row.saturating_add(row_offset), col.saturating_add(col_offset));
            if *write == CellWrite::Skip {
                continue;
            }
            self.update(at, |cell| write.apply(cell));
            rows.insert(row_offset);
            columns.insert(col_offset);
            cells = cells.saturating_add(1);
        }
        let updated =
            Rect { row0: row, col0: col, row1: row.saturating_add(height - 1), col1: col.saturating_add(width - 1) };
        self.row_count = self.row_count.max(updated.row1.saturating_add(1));
        self.column_count = self.column_count.max(updated.col1.saturating_add(1));
        Written {
            updated,
            updated_rows: saturating_u32(rows.len()),
            updated_columns: saturating_u32(columns.len()),
            updated_cells: cells,
        }
    }

    /// Changes the cell at `at` (an empty one when there is none), dropping it when it ends
    /// up empty.
    /// When the grid has a [`Room`], a change past it is not made.
    pub fn update(&mut self, at: (u32, u32), change: impl FnOnce(&mut Cell)) {
        let Some(room) = self.room.clone() else {
            let mut cell = self.cells.remove(&at).unwrap_or_default();
            change(&mut cell);
            if !cell.is_empty() {
                self.cells.insert(at, cell);
            }
            return;
        };
        let old = self.cells.get(&at).cloned().unwrap_or_default();
        let mut cell = old.clone();
        change(&mut cell);
        if let Some(Entered::Text(text) | Entered::Formula(text)) = &cell.entered
            && text.chars().count() > MAX_CELL_CHARS
        {
            room.refuse(format!(
                "Your input contains more than the maximum of {MAX_CELL_CHARS} characters in a single cell."
            ));
            return;
        }
        let growth = stored_bytes(&cell) - stored_bytes(&old);
        if growth > 0 && growth > room.left.get() {
            room.refuse(format!(
                "This action would make the spreadsheet larger than the emulator keeps ({} MiB of cells).",
                super::book::MAX_SPREADSHEET_BYTES / (1024 * 1024)
            ));
            return;
        }
        room.left.set(room.left.get() - growth);
        if cell.is_empty() {
            self.cells.remove(&at);
        } else {
            self.cells.insert(at, cell);
        }
    }

    /// Empties the values inside `rect` (formats stay, as with Google's `values.clear`).
    pub fn clear_values(&mut self, rect: Rect) {
        let inside: Vec<(u32, u32)> = self.cells_in(rect).map(|(row, col, _, _)| (row, col)).collect();
        for at in inside {
            self.update(at, |cell| cell.entered = None);
        }
    }

    /// Inserts `count` empty rows or columns before index `at`, shifting what follows and
    /// growing the grid.
    pub fn insert_lines(&mut self, dimension: Dimension, at: u32, count: u32) {
        if dimension == Dimension::Rows {
            return self.insert_rows(at, count);
        }
        if count == 0 {
            return;
        }
        let cells = std::mem::take(&mut self.cells);
        self.cells = cells
            .into_iter()
            .map(|((row, col), cell)| ((row, if col >= at { col.saturating_add(count) } else { col }), cell))
            .collect();
        self.column_count = self.column_count.saturating_add(count);
    }

    /// Deletes the rows or columns `start..end` (clipped to the grid), shifting what follows
    /// back and shrinking the grid.
    pub fn delete_lines(&mut self, dimension: Dimension, start: u32, end: u32) {
        let count = end.saturating_sub(start);
        if count == 0 {
            return;
        }
        let cells = std::mem::take(&mut self.cells);
        self.cells = cells
            .into_iter()
            .filter_map(|((row, col), cell)| {
                let line = if dimension == Dimension::Rows { row } else { col };
                let moved = match line {
                    line if line < start => line,
                    line if line < end => return None,
                    line => line - count,
                };
                Some((if dimension == Dimension::Rows { (moved, col) } else { (row, moved) }, cell))
            })
            .collect();
        match dimension {
            Dimension::Rows => self.row_count = self.row_count.saturating_sub(count),
            Dimension::Columns => self.column_count = self.column_count.saturating_sub(count),
        }
    }

    /// The last row holding a value, if any.
    pub fn last_row_with_values(&self) -> Option<u32> {
        self.cells.iter().rev().find(|(_, cell)| cell.entered.is_some()).map(|(&(row, _), _)| row)
    }

    /// Values of `rect` as `show` renders each cell with a value, in `dimension` order, with
    /// trailing empties trimmed (empty Vec when nothing). An empty line before a non-empty one
    /// is `[]`; an empty cell before a non-empty one in its line is `""`.
    pub fn read(
        &self,
        rect: Rect,
        dimension: Dimension,
        mut show: impl FnMut(u32, u32, &Entered, &Cell) -> Value,
    ) -> Vec<Vec<Value>> {
        let mut lines: BTreeMap<u32, Vec<(u32, Value)>> = BTreeMap::new();
        for (row, col, entered, cell) in self.cells_in(rect) {
            let shown = show(row, col, entered, cell);
            let (row, col) = (row - rect.row0, col - rect.col0);
            let (major, minor) = match dimension {
                Dimension::Rows => (row, col),
                Dimension::Columns => (col, row),
            };
            // Cells come in row-major order, so each line's minors arrive increasing either way.
            lines.entry(major).or_default().push((minor, shown));
        }
        let Some(&last) = lines.keys().next_back() else { return Vec::new() };
        let mut out = vec![Vec::new(); last as usize + 1];
        for (major, cells) in lines {
            let line = &mut out[major as usize];
            for (minor, shown) in cells {
                line.resize(minor as usize, Value::String(String::new()));
                line.push(shown);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::services::sheets::a1;
    use crate::services::sheets::values::{Effective, InputOption, Rendering, interpret, render};

    fn formatted(grid: &Grid, rect: Rect, dimension: Dimension) -> Vec<Vec<Value>> {
        grid.read(rect, dimension, |_, _, entered, cell| {
            render(entered, &Effective::plain(entered, cell.number_format()), Rendering::default())
        })
    }

    fn text_cell(text: &str) -> Cell {
        Cell::of(Entered::Text(text.to_owned()))
    }

    fn rect(row0: u32, col0: u32, row1: u32, col1: u32) -> Rect {
        Rect { row0, col0, row1, col1 }
    }

    /// A 1000 × 26 grid with `rows` (user-entered JSON) written from `top_left` (A1 text).
    fn grid_with(top_left: &str, rows: Value) -> Grid {
        let mut grid = Grid::new(1000, 26);
        let start = area(top_left);
        grid.write(start.start_row.unwrap(), start.start_col.unwrap(), &writes(rows), Dimension::Rows);
        grid
    }

    fn area(text: &str) -> Area {
        match a1::parse(text).unwrap() {
            a1::A1::Unqualified { area: Some(area), .. } => area,
            other => panic!("not an area: {other:?}"),
        }
    }

    fn writes(rows: Value) -> Vec<Vec<CellWrite>> {
        let rows = rows.as_array().unwrap();
        rows.iter()
            .enumerate()
            .map(|(r, line)| {
                let line = line.as_array().unwrap();
                line.iter().enumerate().map(|(c, v)| interpret(v, InputOption::UserEntered, r, c).unwrap()).collect()
            })
            .collect()
    }

    fn read_all(grid: &Grid) -> Vec<Vec<Value>> {
        formatted(grid, area("A:ZZZ").clip_to(grid.row_count, grid.column_count), Dimension::Rows)
    }

    fn table_in(grid: &Grid, text: &str) -> Option<Rect> {
        grid.find_table(area(text).clip_to(grid.row_count, grid.column_count))
    }

    #[test]
    fn parses_insert_data_option_names_exactly() {
        assert_eq!(InsertDataOption::parse("OVERWRITE"), Some(InsertDataOption::Overwrite));
        assert_eq!(InsertDataOption::parse("INSERT_ROWS"), Some(InsertDataOption::InsertRows));
        assert_eq!(InsertDataOption::parse("insert_rows"), None);
        assert_eq!(InsertDataOption::default(), InsertDataOption::Overwrite);
        for option in [InsertDataOption::Overwrite, InsertDataOption::InsertRows] {
            assert_eq!(InsertDataOption::parse(option.as_str()), Some(option));
        }
    }

    #[test]
    fn finds_no_table_in_an_empty_range() {
        assert_eq!(table_in(&Grid::new(1000, 26), "A:G"), None);
        let grid = grid_with("H1", json!([["x"], ["y"]]));
        assert_eq!(table_in(&grid, "A:G"), None, "cells outside the range's columns do not count");
    }

    #[test]
    fn finds_a_table_at_the_top() {
        let grid = grid_with("A1", json!([["a", "b", "c"], [1, 2, 3]]));
        assert_eq!(table_in(&grid, "A:G"), Some(rect(0, 0, 1, 2)));
        assert_eq!(table_in(&grid, "A1:Z1000"), Some(rect(0, 0, 1, 2)));
    }

    #[test]
    fn finds_a_table_after_blank_rows_and_stops_at_the_next_blank_row() {
        let mut grid = grid_with("B3", json!([["a", "b"], ["c", "d"]]));
        grid.write(9, 0, &writes(json!([["later"]])), Dimension::Rows);
        assert_eq!(table_in(&grid, "A:G"), Some(rect(2, 1, 3, 2)));
    }

    #[test]
    fn finds_a_ragged_table_spanning_its_widest_row() {
        let grid = grid_with("A1", json!([["a"], ["b", null, null, "d"], [null, "c"]]));
        assert_eq!(table_in(&grid, "A:G"), Some(rect(0, 0, 2, 3)));
    }

    #[test]
    fn finds_a_table_narrower_than_the_range() {
        let grid = grid_with("C1", json!([["a", "b"], ["c", "d"], ["e"]]));
        assert_eq!(table_in(&grid, "A:Z"), Some(rect(0, 2, 2, 3)));
    }

    #[test]
    fn finds_tables_only_within_the_range() {
        let grid = grid_with("A1", json!([["a", "b", "c", "d"], ["e", "f", "g", "h"], ["i"], ["j"]]));
        assert_eq!(table_in(&grid, "B:C"), Some(rect(0, 1, 1, 3)), "rows 3-4 have nothing under B:D");
        assert_eq!(table_in(&grid, "C5:D"), None);
        assert_eq!(table_in(&grid, "A2:B"), Some(rect(1, 0, 3, 3)));
    }

    #[test]
    fn a_bounded_range_finds_the_whole_table_below_and_beside_it() {
        let grid = grid_with("A1", json!([["h1", "h2", "h3"], ["a", "b"], [null, "c", "d"], ["e"]]));
        for range in ["A1", "A1:C1", "A1:A2", "Sheet1!A1"] {
            let range = range.trim_start_matches("Sheet1!");
            assert_eq!(table_in(&grid, range), Some(rect(0, 0, 3, 2)), "{range}");
        }
        assert_eq!(table_in(&grid, "B1"), Some(rect(0, 1, 2, 2)), "never grows left of the range");
        assert_eq!(table_in(&grid, "A6"), None, "nor up");
    }

    #[test]
    fn appends_to_a_bounded_range_lose_nothing() {
        for insert in [InsertDataOption::Overwrite, InsertDataOption::InsertRows] {
            let mut grid = Grid::new(1000, 26);
            for row in ["r1", "r2", "r3", "r4"] {
                grid.append(&area("A1"), &writes(json!([[row, 1]])), Dimension::Rows, insert);
            }
            let rows = read_all(&grid);
            let first: Vec<&Value> = rows.iter().map(|row| &row[0]).collect();
            assert_eq!(first, [&json!("r1"), &json!("r2"), &json!("r3"), &json!("r4")], "{insert:?}");
        }
    }

    #[test]
    fn appends_at_the_top_left_without_a_table() {
        let mut grid = Grid::new(1000, 26);
        let appended =
            grid.append(&area("A:G"), &writes(json!([["a", "b"]])), Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(
            appended,
            Appended { table: None, updated: rect(0, 0, 0, 1), updated_rows: 1, updated_columns: 2, updated_cells: 2 }
        );
        let appended =
            Grid::new(1000, 26).append(&area("C5:D"), &writes(json!([[1]])), Dimension::Rows, Default::default());
        assert_eq!(appended.updated, rect(4, 2, 4, 2));
        assert_eq!(appended.table, None);
    }

    #[test]
    fn appends_after_the_table_at_its_first_column() {
        let mut grid = grid_with("B2", json!([["name", "age"], ["ann", 30]]));
        let appended =
            grid.append(&area("A:G"), &writes(json!([["bob", 41]])), Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(appended.table, Some(rect(1, 1, 2, 2)));
        assert_eq!(appended.updated, rect(3, 1, 3, 2));
        assert_eq!(
            read_all(&grid),
            vec![
                vec![],
                vec![json!(""), json!("name"), json!("age")],
                vec![json!(""), json!("ann"), json!("30")],
                vec![json!(""), json!("bob"), json!("41")]
            ]
        );
        assert_eq!(a1::format_range("Sheet1", appended.table.unwrap()), "Sheet1!B2:C3", "the answer's tableRange");
    }

    #[test]
    fn overwrite_replaces_cells_below_the_table_and_keeps_rows() {
        let mut grid = grid_with("A1", json!([["h"], ["1"]]));
        grid.write(3, 0, &writes(json!([["below"]])), Dimension::Rows);
        grid.append(&area("A:A"), &writes(json!([["x"], ["y"]])), Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(read_all(&grid), vec![vec![json!("h")], vec![json!("1")], vec![json!("x")], vec![json!("y")]]);
        assert_eq!(grid.row_count, 1000);
    }

    #[test]
    fn insert_rows_shifts_everything_below_down() {
        let mut grid = grid_with("A1", json!([["h", "k"], ["1", "2"]]));
        grid.write(3, 0, &writes(json!([["below", null, "far"]])), Dimension::Rows);
        grid.write(2, 5, &writes(json!([["beside"]])), Dimension::Rows);
        let appended = grid.append(
            &area("A:B"),
            &writes(json!([["x"], ["y", "z"]])),
            Dimension::Rows,
            InsertDataOption::InsertRows,
        );
        assert_eq!(appended.table, Some(rect(0, 0, 1, 1)));
        assert_eq!(appended.updated, rect(2, 0, 3, 1));
        assert_eq!((appended.updated_rows, appended.updated_columns, appended.updated_cells), (2, 2, 3));
        assert_eq!(grid.row_count, 1002);
        assert_eq!(grid.cells.get(&(5, 0)), Some(&text_cell("below")));
        assert_eq!(grid.cells.get(&(5, 2)), Some(&text_cell("far")));
        assert_eq!(grid.cells.get(&(4, 5)), Some(&text_cell("beside")), "whole sheet rows are inserted");
        assert_eq!(grid.cells.get(&(2, 0)), Some(&text_cell("x")));
        assert_eq!(grid.cells.get(&(3, 1)), Some(&text_cell("z")));
        assert_eq!(grid.cells.len(), 4 + 3 + 3);
    }

    #[test]
    fn insert_rows_at_the_end_of_a_full_grid_grows_it() {
        let mut grid = Grid::new(2, 2);
        grid.write(0, 0, &writes(json!([["a"], ["b"]])), Dimension::Rows);
        let appended =
            grid.append(&Area::WHOLE, &writes(json!([["c"]])), Dimension::Rows, InsertDataOption::InsertRows);
        assert_eq!(appended.updated, rect(2, 0, 2, 0));
        assert_eq!((grid.row_count, grid.column_count), (3, 2));
    }

    #[test]
    fn appends_in_columns_dimension() {
        let mut grid = grid_with("A1", json!([["h1", "h2", "h3"]]));
        let columns = writes(json!([["a", "b", "c"], ["d"]]));
        let appended = grid.append(&area("A:C"), &columns, Dimension::Columns, InsertDataOption::Overwrite);
        assert_eq!(appended.updated, rect(1, 0, 3, 1));
        assert_eq!((appended.updated_rows, appended.updated_columns, appended.updated_cells), (3, 2, 4));
        assert_eq!(
            read_all(&grid),
            vec![
                vec![json!("h1"), json!("h2"), json!("h3")],
                vec![json!("a"), json!("d")],
                vec![json!("b")],
                vec![json!("c")]
            ]
        );
    }

    #[test]
    fn overwrite_grows_the_grid_past_its_edges() {
        let mut grid = Grid::new(2, 2);
        grid.write(0, 0, &writes(json!([["a", "b"], ["c", "d"]])), Dimension::Rows);
        let appended = grid.append(
            &Area::WHOLE,
            &writes(json!([[1, 2, 3], [4], [null, null, null, null]])),
            Dimension::Rows,
            InsertDataOption::Overwrite,
        );
        assert_eq!(appended.updated, rect(2, 0, 4, 3));
        assert_eq!((appended.updated_rows, appended.updated_columns, appended.updated_cells), (2, 3, 4));
        assert_eq!((grid.row_count, grid.column_count), (5, 4));
    }

    #[test]
    fn null_skips_and_empty_string_clears() {
        let mut grid = grid_with("A1", json!([["keep", "drop", "old"]]));
        let written = grid.write(0, 0, &writes(json!([[null, "", "new"]])), Dimension::Rows);
        assert_eq!((written.updated_rows, written.updated_columns, written.updated_cells), (1, 2, 2));
        assert_eq!(written.updated, rect(0, 0, 0, 2));
        assert_eq!(read_all(&grid), vec![vec![json!("keep"), json!(""), json!("new")]]);
    }

    #[test]
    fn counts_only_rows_and_columns_with_written_cells() {
        let mut grid = Grid::new(1000, 26);
        let values = writes(json!([[null, "a", null], [null, null, null], ["", null, "b"]]));
        let appended = grid.append(&area("A:Z"), &values, Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(appended.updated, rect(0, 0, 2, 2));
        assert_eq!((appended.updated_rows, appended.updated_columns, appended.updated_cells), (2, 3, 3));
    }

    #[test]
    fn empty_values_append_nothing() {
        for values in [json!([]), json!([[]]), json!([[], []])] {
            for insert in [InsertDataOption::Overwrite, InsertDataOption::InsertRows] {
                let mut grid = grid_with("A1", json!([["a"], ["b"]]));
                let before = grid.clone();
                let appended = grid.append(&area("A:B"), &writes(values.clone()), Dimension::Rows, insert);
                assert_eq!(
                    appended,
                    Appended {
                        table: Some(rect(0, 0, 1, 0)),
                        updated: Rect::cell(2, 0),
                        updated_rows: 0,
                        updated_columns: 0,
                        updated_cells: 0
                    },
                    "{values} {insert:?}"
                );
                assert_eq!(grid, before);
            }
        }
    }

    #[test]
    fn appends_below_a_range_starting_mid_sheet() {
        let mut grid = grid_with("C5", json!([["a", "b"], ["c"]]));
        grid.write(0, 2, &writes(json!([["above"]])), Dimension::Rows);
        let appended =
            grid.append(&area("C5:D"), &writes(json!([["e", "f"]])), Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(appended.table, Some(rect(4, 2, 5, 3)));
        assert_eq!(appended.updated, rect(6, 2, 6, 3));
    }

    #[test]
    fn appends_into_an_area_beyond_the_grid_and_grows_it() {
        let mut grid = Grid::new(10, 2);
        let appended =
            grid.append(&area("A20:B"), &writes(json!([["x"]])), Dimension::Rows, InsertDataOption::Overwrite);
        assert_eq!(appended.updated, Rect::cell(19, 0));
        assert_eq!(grid.row_count, 20);
    }

    #[test]
    fn reads_with_trailing_empties_trimmed_and_gaps_filled() {
        let grid = grid_with("A1", json!([["a", null, "c", null], [], [null, "x"], [null, null]]));
        assert_eq!(
            formatted(&grid, rect(0, 0, 999, 25), Dimension::Rows),
            vec![vec![json!("a"), json!(""), json!("c")], vec![], vec![json!(""), json!("x")]]
        );
        assert_eq!(
            formatted(&grid, rect(1, 1, 5, 5), Dimension::Rows),
            vec![vec![], vec![json!("x")]],
            "positions are relative to the rectangle"
        );
        assert!(formatted(&grid, rect(3, 0, 999, 25), Dimension::Rows).is_empty());
        assert!(formatted(&grid, rect(0, 3, 999, 25), Dimension::Rows).is_empty());
        assert!(formatted(&Grid::new(1000, 26), rect(0, 0, 999, 25), Dimension::Rows).is_empty());
    }

    #[test]
    fn reads_only_inside_the_rectangle() {
        let grid = grid_with("A1", json!([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]));
        assert_eq!(formatted(&grid, rect(1, 1, 1, 1), Dimension::Rows), vec![vec![json!("e")]]);
        assert_eq!(
            formatted(&grid, rect(0, 1, 2, 1), Dimension::Columns),
            vec![vec![json!("b"), json!("e"), json!("h")]]
        );
        assert!(formatted(&grid, rect(2, 2, 1, 1), Dimension::Rows).is_empty(), "inverted");
    }

    #[test]
    fn reads_ragged_rows_in_columns_dimension() {
        let grid = grid_with("A1", json!([["a", "b", "c"], ["d"], [null, null, "e"]]));
        assert_eq!(
            formatted(&grid, rect(0, 0, 999, 25), Dimension::Columns),
            vec![vec![json!("a"), json!("d")], vec![json!("b")], vec![json!("c"), json!(""), json!("e")]]
        );
        let grid = grid_with("B2", json!([["x"]]));
        assert_eq!(
            formatted(&grid, rect(0, 0, 999, 25), Dimension::Columns),
            vec![vec![], vec![json!(""), json!("x")]]
        );
    }

    #[test]
    fn format_only_cells_are_empty_for_tables_and_reads() {
        let mut grid = grid_with("A1", json!([["a"], ["b"]]));
        grid.update((2, 0), |cell| cell.format = Some(Default::default()));
        assert!(!grid.cells.contains_key(&(2, 0)), "an empty format is no cell");
        let date =
            crate::services::sheets::format::CellFormat::number(crate::services::sheets::format::NumberFormat::new(
                crate::services::sheets::format::NumberFormatType::Date,
                "yyyy-mm-dd",
            ));
        grid.update((2, 0), |cell| cell.format = Some(date.clone()));
        assert_eq!(table_in(&grid, "A:A"), Some(rect(0, 0, 1, 0)));
        assert_eq!(read_all(&grid), vec![vec![json!("a")], vec![json!("b")]]);
        grid.write(2, 0, &writes(json!([["2024-03-04"]])), Dimension::Rows);
        assert_eq!(read_all(&grid)[2], vec![json!("2024-03-04")]);
        grid.clear_values(rect(0, 0, 2, 0));
        assert!(read_all(&grid).is_empty());
        assert_eq!(grid.cells.len(), 1, "the formatted cell stays");
    }

    #[test]
    fn inserts_and_deletes_rows_and_columns() {
        let mut grid = grid_with("A1", json!([["a", "b", "c"], ["d", "e", "f"], ["g", "h", "i"]]));
        grid.insert_lines(Dimension::Columns, 1, 2);
        assert_eq!(grid.column_count, 28);
        assert_eq!(read_all(&grid)[0], vec![json!("a"), json!(""), json!(""), json!("b"), json!("c")]);
        grid.delete_lines(Dimension::Columns, 1, 3);
        assert_eq!(grid.column_count, 26);
        grid.delete_lines(Dimension::Rows, 0, 2);
        assert_eq!(grid.row_count, 998);
        assert_eq!(read_all(&grid), vec![vec![json!("g"), json!("h"), json!("i")]]);
        grid.insert_lines(Dimension::Rows, 0, 1);
        assert_eq!(read_all(&grid), vec![vec![], vec![json!("g"), json!("h"), json!("i")]]);
        assert_eq!(grid.last_row_with_values(), Some(1));
    }
}
