//! The Sheets emulator's storage: spreadsheets of a tenant, their sheets (title, order, grid
//! size) and sparse cells, each cell's value kept as JSON chosen by the emulator.
//!
//! Reads and updates hand the caller the spreadsheet and a cell accessor inside one
//! transaction, so that an append's read-modify-write is atomic; what a cell means, and what
//! a sheet's other properties hold, is the emulator's business (`services::sheets`), not the
//! store's.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::{Store, StoreError, StoreResult, now_ms};

/// Cells of one sheet by (row, column), 0-based.
pub type CellMap = BTreeMap<(u32, u32), Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadsheetRecord {
    pub id: String,
    pub title: String,
    pub locale: String,
    pub time_zone: String,
    /// In display order.
    pub sheets: Vec<SheetRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRecord {
    pub sheet_id: i64,
    pub title: String,
    pub row_count: u32,
    pub column_count: u32,
    /// The sheet's other properties, as the emulator chose to keep them.
    pub properties: Map<String, Value>,
    /// The bytes of its stored cells (their JSON), as of its last save.
    pub cell_bytes: u64,
}

/// Cell access inside a spreadsheet read or update.
pub struct Cells<'c> {
    conn: &'c Connection,
    tenant_id: &'c str,
    spreadsheet_id: &'c str,
}

impl Cells<'_> {
    /// Every stored cell of a sheet.
    pub fn load(&self, sheet_id: i64) -> StoreResult<CellMap> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT row, col, value FROM sheets_cells WHERE tenant_id = ?1 AND spreadsheet_id = ?2 AND sheet_id = ?3",
        )?;
        let rows = stmt.query_map(params![self.tenant_id, self.spreadsheet_id, sheet_id], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut cells = CellMap::new();
        for row in rows {
            let (row, col, value) = row?;
            let value = serde_json::from_str(&value).map_err(|e| StoreError::Internal(format!("stored cell: {e}")))?;
            cells.insert((row, col), value);
        }
        Ok(cells)
    }

    /// Writes the difference between `before` (as loaded) and `after`.
    pub fn save(&self, sheet_id: i64, before: &CellMap, after: &CellMap) -> StoreResult<()> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO sheets_cells (tenant_id, spreadsheet_id, sheet_id, row, col, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, spreadsheet_id, sheet_id, row, col) DO UPDATE SET value = ?6",
        )?;
        for (&(row, col), value) in after {
            if before.get(&(row, col)) != Some(value) {
                upsert.execute(params![self.tenant_id, self.spreadsheet_id, sheet_id, row, col, value.to_string()])?;
            }
        }
        let mut delete = self.conn.prepare_cached(
            "DELETE FROM sheets_cells
             WHERE tenant_id = ?1 AND spreadsheet_id = ?2 AND sheet_id = ?3 AND row = ?4 AND col = ?5",
        )?;
        for &(row, col) in before.keys().filter(|key| !after.contains_key(key)) {
            delete.execute(params![self.tenant_id, self.spreadsheet_id, sheet_id, row, col])?;
        }
        Ok(())
    }
}

impl Store {
    /// Stores a new, empty spreadsheet.
    pub async fn create_spreadsheet(&self, tenant_id: &str, spreadsheet: SpreadsheetRecord) -> StoreResult<()> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT INTO sheets_spreadsheets (tenant_id, id, title, locale, time_zone, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    tenant_id,
                    spreadsheet.id,
                    spreadsheet.title,
                    spreadsheet.locale,
                    spreadsheet.time_zone,
                    now_ms()
                ],
            )?;
            save_sheets(c, &tenant_id, &spreadsheet)
        })
        .await
    }

    /// Runs `work` over a spreadsheet and its cells; `None` when the tenant has no such
    /// spreadsheet.
    pub async fn read_spreadsheet<T, F>(&self, tenant_id: &str, id: &str, work: F) -> StoreResult<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&SpreadsheetRecord, &Cells<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.read(move |c| {
            let Some(spreadsheet) = load(c, &tenant_id, &id)? else { return Ok(None) };
            let cells = Cells { conn: c, tenant_id: &tenant_id, spreadsheet_id: &id };
            work(&spreadsheet, &cells).map(Some)
        })
        .await
    }

    /// Like [`Store::read_spreadsheet`] in a write transaction: `work` may change the
    /// spreadsheet's sheets (add, delete, reorder, resize them) and save cells; an error
    /// leaves everything as it was.
    pub async fn update_spreadsheet<T, F>(&self, tenant_id: &str, id: &str, work: F) -> StoreResult<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut SpreadsheetRecord, &Cells<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (tenant_id, id) = (tenant_id.to_owned(), id.to_owned());
        self.write(move |c| {
            let Some(mut spreadsheet) = load(c, &tenant_id, &id)? else { return Ok(None) };
            let before = spreadsheet.sheets.clone();
            let cells = Cells { conn: c, tenant_id: &tenant_id, spreadsheet_id: &id };
            let answer = work(&mut spreadsheet, &cells)?;
            if spreadsheet.sheets != before {
                save_sheets(c, &tenant_id, &spreadsheet)?;
            }
            Ok(Some(answer))
        })
        .await
    }
}

fn load(c: &Connection, tenant_id: &str, id: &str) -> StoreResult<Option<SpreadsheetRecord>> {
    let Some((title, locale, time_zone)) = c
        .prepare_cached("SELECT title, locale, time_zone FROM sheets_spreadsheets WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant_id, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached(
        "SELECT sheet_id, title, row_count, column_count, properties, cell_bytes FROM sheets_sheets
         WHERE tenant_id = ?1 AND spreadsheet_id = ?2 ORDER BY idx",
    )?;
    let rows = stmt.query_map(params![tenant_id, id], |r| {
        let record = SheetRecord {
            sheet_id: r.get(0)?,
            title: r.get(1)?,
            row_count: r.get(2)?,
            column_count: r.get(3)?,
            properties: Map::new(),
            cell_bytes: r.get::<_, i64>(5)?.max(0) as u64,
        };
        Ok((record, r.get::<_, String>(4)?))
    })?;
    let mut sheets = Vec::new();
    for row in rows {
        let (mut record, properties) = row?;
        record.properties = serde_json::from_str(&properties)
            .map_err(|e| StoreError::Internal(format!("stored sheet properties: {e}")))?;
        sheets.push(record);
    }
    Ok(Some(SpreadsheetRecord { id: id.to_owned(), title, locale, time_zone, sheets }))
}

/// Stores the spreadsheet's sheets as they are now: sheets no longer there are deleted with
/// their cells, the others inserted or updated.
fn save_sheets(c: &Connection, tenant_id: &str, spreadsheet: &SpreadsheetRecord) -> StoreResult<()> {
    let stored: Vec<i64> = c
        .prepare_cached("SELECT sheet_id FROM sheets_sheets WHERE tenant_id = ?1 AND spreadsheet_id = ?2")?
        .query_map(params![tenant_id, spreadsheet.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for gone in stored.into_iter().filter(|id| !spreadsheet.sheets.iter().any(|s| s.sheet_id == *id)) {
        for table in ["sheets_cells", "sheets_sheets"] {
            c.execute(
                &format!("DELETE FROM {table} WHERE tenant_id = ?1 AND spreadsheet_id = ?2 AND sheet_id = ?3"),
                params![tenant_id, spreadsheet.id, gone],
            )?;
        }
    }
    let mut stmt = c.prepare_cached(
        "INSERT INTO sheets_sheets
             (tenant_id, spreadsheet_id, sheet_id, idx, title, row_count, column_count, properties, cell_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (tenant_id, spreadsheet_id, sheet_id)
         DO UPDATE SET idx = ?4, title = ?5, row_count = ?6, column_count = ?7, properties = ?8, cell_bytes = ?9",
    )?;
    for (index, sheet) in spreadsheet.sheets.iter().enumerate() {
        stmt.execute(params![
            tenant_id,
            spreadsheet.id,
            sheet.sheet_id,
            index as i64,
            sheet.title,
            sheet.row_count,
            sheet.column_count,
            Value::Object(sheet.properties.clone()).to_string(),
            i64::try_from(sheet.cell_bytes).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}
