//! Whole spreadsheets in the Sheets emulator: `spreadsheets.create`, `spreadsheets.get` and
//! `spreadsheets.getByDataFilter` (with `ranges` and grid data), the `Spreadsheet` JSON they
//! answer, and sheet properties as requests give them (shared with `batchUpdate`'s
//! `addSheet` and `updateSheetProperties`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::HeaderMap;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::a1::{self, Rect};
use super::book::{Book, BookResult, check_cell_limit};
use super::mask::Mask;
use super::methods::DataFilter;
use super::values::{Cell, Computed, Entered, Rendering, render};
use stage_store::Store;

use super::{GoogleError, GoogleResult, Params, SheetsState, json_body, read_book, spreadsheet_url};
use crate::services::ServiceCaller;
use stage_store::sheets::{SheetRecord, SpreadsheetRecord};

pub const DEFAULT_ROWS: u32 = 1000;
pub const DEFAULT_COLUMNS: u32 = 26;
pub const MAX_SHEETS: usize = 200;
/// What Google answers as every row's and column's size in grid data.
const ROW_PIXELS: u32 = 21;
const COLUMN_PIXELS: u32 = 100;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpreadsheetBody {
    #[serde(default)]
    properties: SpreadsheetProperties,
    #[serde(default)]
    sheets: Vec<SheetBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpreadsheetProperties {
    title: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SheetBody {
    #[serde(default)]
    properties: SheetProperties,
}

/// Google's `SheetProperties` as a request gives them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SheetProperties {
    pub sheet_id: Option<i64>,
    pub title: Option<String>,
    pub index: Option<i64>,
    pub sheet_type: Option<String>,
    #[serde(default)]
    pub grid_properties: GridProperties,
    /// Every other property (`hidden`, `tabColor`, `rightToLeft`, …): kept and returned.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GridProperties {
    pub row_count: Option<u32>,
    pub column_count: Option<u32>,
    /// `frozenRowCount`, `frozenColumnCount`, `hideGridlines`, …: kept and returned.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The properties a sheet record keeps besides its id, title, index and size.
pub fn kept_properties(properties: &SheetProperties) -> Map<String, Value> {
    let mut kept = properties.other.clone();
    if !properties.grid_properties.other.is_empty() {
        kept.insert("gridProperties".into(), Value::Object(properties.grid_properties.other.clone()));
    }
    kept
}

/// A new sheet from `properties`, checked against the spreadsheet's `existing` sheets;
/// `what` names the request in errors (`requests[0].addSheet`).
pub fn new_sheet(
    properties: SheetProperties,
    existing: &[SheetRecord],
    what: &str,
) -> Result<SheetRecord, GoogleError> {
    if let Some(kind) = properties.sheet_type.as_deref().filter(|k| *k != "GRID") {
        return Err(GoogleError::invalid(format!("Invalid {what}: only GRID sheets are supported, not {kind}")));
    }
    let title = match properties.title.clone().filter(|t| !t.trim().is_empty()) {
        Some(title) => title,
        None => (existing.len() + 1..)
            .map(|n| format!("Sheet{n}"))
            .find(|title| !existing.iter().any(|s| s.title.eq_ignore_ascii_case(title)))
            .unwrap_or_default(),
    };
    check_title(&title, existing, what)?;
    let sheet_id = match properties.sheet_id {
        Some(id) if !(0..=i64::from(i32::MAX)).contains(&id) => {
            return Err(GoogleError::invalid(format!("Invalid {what}: invalid sheetId {id}")));
        }
        Some(id) if existing.iter().any(|s| s.sheet_id == id) => {
            return Err(GoogleError::invalid(format!("Invalid {what}: A sheet with the id {id} already exists.")));
        }
        Some(id) => id,
        None if existing.is_empty() => 0,
        None => {
            let mut rng = rand::rng();
            loop {
                let id = rng.random_range(1..i64::from(i32::MAX));
                if !existing.iter().any(|s| s.sheet_id == id) {
                    break id;
                }
            }
        }
    };
    let row_count = properties.grid_properties.row_count.unwrap_or(DEFAULT_ROWS);
    let column_count = properties.grid_properties.column_count.unwrap_or(DEFAULT_COLUMNS);
    check_size(row_count, column_count, what)?;
    Ok(SheetRecord {
        sheet_id,
        title,
        row_count,
        column_count,
        properties: kept_properties(&properties),
        cell_bytes: 0,
    })
}

/// Titles are unique ignoring case, like Google's.
pub fn check_title(title: &str, others: &[SheetRecord], what: &str) -> Result<(), GoogleError> {
    if others.iter().any(|s| s.title.eq_ignore_ascii_case(title)) {
        return Err(GoogleError::invalid(format!(
            "Invalid {what}: A sheet with the name \"{title}\" already exists. Please enter another name."
        )));
    }
    Ok(())
}

pub fn check_size(row_count: u32, column_count: u32, what: &str) -> Result<(), GoogleError> {
    if row_count == 0 || column_count == 0 || column_count > a1::MAX_COLUMNS || row_count > a1::MAX_ROWS {
        return Err(GoogleError::invalid(format!(
            "Invalid {what}: gridProperties of {row_count} rows and {column_count} columns"
        )));
    }
    Ok(())
}

pub async fn create(
    State(store): State<Store>,
    caller: ServiceCaller,
    headers: HeaderMap,
    body: Bytes,
) -> GoogleResult {
    let body: SpreadsheetBody = json_body(&body)?;
    let spreadsheet = new_spreadsheet(body)?;
    store.create_spreadsheet(&caller.tenant_id, spreadsheet.clone()).await?;
    let url = spreadsheet_url(&headers, &spreadsheet.id);
    Ok(Json(spreadsheet_head(&spreadsheet, &url)))
}

/// A spreadsheet as `spreadsheets.create` makes it: one `Sheet1` (id 0) unless sheets are given.
fn new_spreadsheet(body: SpreadsheetBody) -> Result<SpreadsheetRecord, GoogleError> {
    let mut requested = body.sheets;
    if requested.is_empty() {
        requested.push(SheetBody::default());
    }
    if requested.len() > MAX_SHEETS {
        return Err(GoogleError::invalid(format!("A spreadsheet may have at most {MAX_SHEETS} sheets.")));
    }
    let mut sheets: Vec<SheetRecord> = Vec::with_capacity(requested.len());
    for (index, sheet) in requested.into_iter().enumerate() {
        let sheet = new_sheet(sheet.properties, &sheets, &format!("sheets[{index}].properties"))?;
        sheets.push(sheet);
    }
    check_cell_limit(&sheets)?;
    let properties = body.properties;
    let mut rng = rand::rng();
    Ok(SpreadsheetRecord {
        id: spreadsheet_id(&mut rng),
        title: properties.title.filter(|t| !t.is_empty()).unwrap_or_else(|| "Untitled spreadsheet".into()),
        locale: properties.locale.unwrap_or_else(|| "en_US".into()),
        time_zone: properties.time_zone.unwrap_or_else(|| "Etc/GMT".into()),
        sheets,
    })
}

/// 44 characters from Google's id alphabet, like real spreadsheet ids.
fn spreadsheet_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..44).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// A sheet's `SheetProperties`: its kept properties under the ones the emulator owns.
pub fn sheet_properties_json(sheet: &SheetRecord, index: usize, (row_count, column_count): (u32, u32)) -> Value {
    let mut properties = sheet.properties.clone();
    let mut grid = match properties.remove("gridProperties") {
        Some(Value::Object(grid)) => grid,
        _ => Map::new(),
    };
    grid.insert("rowCount".into(), json!(row_count));
    grid.insert("columnCount".into(), json!(column_count));
    let mut answer = Map::new();
    answer.insert("sheetId".into(), json!(sheet.sheet_id));
    answer.insert("title".into(), json!(sheet.title));
    answer.insert("index".into(), json!(index));
    answer.insert("sheetType".into(), json!("GRID"));
    answer.insert("gridProperties".into(), Value::Object(grid));
    for (key, value) in properties {
        answer.entry(key).or_insert(value);
    }
    Value::Object(answer)
}

/// The spreadsheet without grid data.
fn spreadsheet_head(spreadsheet: &SpreadsheetRecord, url: &str) -> Value {
    let sheets: Vec<Value> = spreadsheet
        .sheets
        .iter()
        .enumerate()
        .map(|(index, sheet)| {
            json!({ "properties": sheet_properties_json(sheet, index, (sheet.row_count, sheet.column_count)) })
        })
        .collect();
    json!({
        "spreadsheetId": spreadsheet.id,
        "properties": {
            "title": spreadsheet.title,
            "locale": spreadsheet.locale,
            "autoRecalc": "ON_CHANGE",
            "timeZone": spreadsheet.time_zone,
        },
        "sheets": sheets,
        "spreadsheetUrl": url,
    })
}

/// Which sheets and grid data a `Spreadsheet` answer holds.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Sheets and rectangles asked for (`ranges`); empty = every sheet, whole.
    pub ranges: Vec<(usize, Rect)>,
    pub grid_data: bool,
}

/// The `Spreadsheet` answer: properties, the selected sheets and, when asked, their grid data.
pub fn spreadsheet_json(book: &mut Book<'_>, url: &str, selection: &Selection) -> BookResult<Value> {
    let mut answer = spreadsheet_head(&book.spreadsheet, url);
    let mut sheets = Vec::new();
    for index in 0..book.spreadsheet.sheets.len() {
        let rects: Vec<Rect> = if selection.ranges.is_empty() {
            let (rows, columns) = book.size(index);
            vec![Rect { row0: 0, col0: 0, row1: rows.saturating_sub(1), col1: columns.saturating_sub(1) }]
        } else {
            selection.ranges.iter().filter(|(i, _)| *i == index).map(|(_, rect)| *rect).collect()
        };
        if rects.is_empty() {
            continue;
        }
        let mut sheet = json!({ "properties": sheet_properties_json(book.sheet(index), index, book.size(index)) });
        if selection.grid_data {
            let data = rects.into_iter().map(|rect| grid_data(book, index, rect)).collect::<Result<Vec<_>, _>>()?;
            sheet["data"] = Value::Array(data);
        }
        sheets.push(sheet);
    }
    answer["sheets"] = Value::Array(sheets);
    Ok(answer)
}

/// Google's `GridData` of a rectangle: the cells' data row by row (trailing empty rows and
/// cells left out, gaps as `{}`) and every row's and column's metadata.
fn grid_data(book: &mut Book<'_>, index: usize, rect: Rect) -> BookResult<Value> {
    book.prepare(index)?;
    let grid = book.loaded(index);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for (row, col, cell) in grid.all_cells_in(rect) {
        let (r, c) = ((row - rect.row0) as usize, (col - rect.col0) as usize);
        if rows.len() <= r {
            rows.resize(r + 1, Vec::new());
        }
        let line = &mut rows[r];
        line.resize(c, json!({}));
        line.push(cell_data(book, index, row, col, cell));
    }
    let row_data: Vec<Value> = rows
        .into_iter()
        .map(|values| if values.is_empty() { json!({}) } else { json!({ "values": values }) })
        .collect();
    let mut data = Map::new();
    if rect.row0 > 0 {
        data.insert("startRow".into(), json!(rect.row0));
    }
    if rect.col0 > 0 {
        data.insert("startColumn".into(), json!(rect.col0));
    }
    if !row_data.is_empty() {
        data.insert("rowData".into(), Value::Array(row_data));
    }
    let lines = |from: u32, to: u32, pixels: u32| -> Value {
        let count = to.saturating_sub(from).saturating_add(1) as usize;
        Value::Array(vec![json!({ "pixelSize": pixels }); count])
    };
    data.insert("rowMetadata".into(), lines(rect.row0, rect.row1, ROW_PIXELS));
    data.insert("columnMetadata".into(), lines(rect.col0, rect.col1, COLUMN_PIXELS));
    Ok(Value::Object(data))
}

/// Google's `CellData` of a stored cell.
fn cell_data(book: &Book<'_>, index: usize, row: u32, col: u32, cell: &Cell) -> Value {
    let mut data = Map::new();
    let mut effective_number_format = cell.number_format().cloned();
    if let Some(entered) = &cell.entered {
        data.insert("userEnteredValue".into(), entered_value(entered));
        let effective = book.effective(index, row, col, entered, cell);
        data.insert("effectiveValue".into(), computed_value(&effective.value));
        data.insert("formattedValue".into(), render(entered, &effective, Rendering::default()));
        effective_number_format = effective.format.or(effective_number_format);
    }
    if let Some(format) = cell.format.as_ref().filter(|f| !f.is_empty()) {
        data.insert("userEnteredFormat".into(), serde_json::to_value(format).unwrap_or_default());
    }
    let mut effective_format = cell.format.clone().unwrap_or_default();
    effective_format.number_format = effective_number_format;
    if !effective_format.is_empty() {
        data.insert("effectiveFormat".into(), serde_json::to_value(&effective_format).unwrap_or_default());
    }
    Value::Object(data)
}

/// Google's `ExtendedValue` of what a user entered.
pub fn entered_value(entered: &Entered) -> Value {
    match entered {
        Entered::Number(n) => json!({ "numberValue": super::values::number_value(*n) }),
        Entered::Text(text) => json!({ "stringValue": text }),
        Entered::Bool(b) => json!({ "boolValue": b }),
        Entered::Formula(text) => json!({ "formulaValue": text }),
    }
}

fn computed_value(computed: &Computed) -> Value {
    match computed {
        Computed::Number(n) => json!({ "numberValue": super::values::number_value(*n) }),
        Computed::Text(text) => json!({ "stringValue": text }),
        Computed::Bool(b) => json!({ "boolValue": b }),
        Computed::Error(error) => {
            json!({ "errorValue": { "type": error.kind(), "message": error.message() } })
        }
    }
}

/// Whether a `fields` mask asks for grid data (`sheets.data…`), which Google then returns
/// without `includeGridData`.
fn mask_wants_grid_data(params: &Params) -> bool {
    params.get("fields").and_then(|text| Mask::parse(text).ok()).is_some_and(|mask| mask.names(&["sheets", "data"]))
}

pub async fn get(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    headers: HeaderMap,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> GoogleResult {
    let params = Params::of(&uri)?;
    let grid_data = params.boolean("includeGridData")? || mask_wants_grid_data(&params);
    let ranges = params.all("ranges");
    let url = spreadsheet_url(&headers, &id);
    read_book(&sheets, &caller.tenant_id, &id, move |book| {
        let mut selection = Selection { ranges: Vec::new(), grid_data };
        for range in &ranges {
            let (index, area) = book.resolve_within(range)?;
            selection.ranges.push((index, book.clip(index, &area)));
        }
        spreadsheet_json(book, &url, &selection)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetByDataFilterBody {
    #[serde(default)]
    data_filters: Vec<DataFilter>,
    #[serde(default)]
    include_grid_data: bool,
}

/// `spreadsheets.getByDataFilter`.
pub async fn get_by_data_filter(
    sheets: &SheetsState,
    caller: &ServiceCaller,
    headers: &HeaderMap,
    id: &str,
    body: &Bytes,
) -> GoogleResult {
    let body: GetByDataFilterBody = json_body(body)?;
    let url = spreadsheet_url(headers, id);
    read_book(sheets, &caller.tenant_id, id, move |book| {
        let mut selection = Selection { ranges: Vec::new(), grid_data: body.include_grid_data };
        for (position, filter) in body.data_filters.iter().enumerate() {
            if let Some(found) = filter.resolve(book, &format!("data_filters[{position}]"))? {
                selection.ranges.push(found);
            }
        }
        spreadsheet_json(book, &url, &selection)
    })
    .await
}
