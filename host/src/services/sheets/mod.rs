//! Sheets: an emulator of the Google Sheets API v4 subset that steps use, so that apps run
//! offline with the same workflow files they use against Google.
//!
//! Routes (below `/sheets`, so `/api/v1/sheets/v4/…` over the API and
//! `https://sheets.googleapis.com/v4/…` from steps when the emulator is the upstream):
//! * `POST /v4/spreadsheets` — `spreadsheets.create`;
//! * `GET /v4/spreadsheets/{id}` — `spreadsheets.get` (without grid data);
//! * `GET /v4/spreadsheets/{id}/values/{range}` — `values.get`;
//! * `POST /v4/spreadsheets/{id}/values/{range}:append` — `values.append`.
//!
//! Answers and errors have Google's shapes (`{"error":{"code","message","status"}}`), so
//! that Google's client libraries work against it. Spreadsheets belong to the caller's
//! tenant. Formulas are kept as entered and not evaluated.
//!
//! [`a1`] parses and prints A1 ranges, [`values`] converts between JSON and cells, [`grid`]
//! finds tables, appends and reads; this module speaks HTTP and storage.

pub mod a1;
pub mod grid;
pub mod values;

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ServiceCaller, ServiceState};
use a1::{A1, Area, SheetGrid};
use grid::{Grid, InsertDataOption};
use stage_store::sheets::{CellMap, SheetRecord, SpreadsheetRecord};
use stage_store::{Store, StoreError};
use values::{Cell, CellWrite, Dimension, InputOption, RenderOption};

const DEFAULT_ROWS: u32 = 1000;
const DEFAULT_COLUMNS: u32 = 26;
/// Google's limit on the cells of one spreadsheet.
const MAX_CELLS: u64 = 10_000_000;
const MAX_SHEETS: usize = 200;

pub(super) fn router() -> Router<ServiceState> {
    Router::new()
        .route("/sheets/v4/spreadsheets", post(create))
        .route("/sheets/v4/spreadsheets/{id}", get(get_spreadsheet))
        .route("/sheets/v4/spreadsheets/{id}/values/{range}", get(get_values).post(append_values))
}

/// An error in Google's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleError {
    pub code: StatusCode,
    pub message: String,
}

impl GoogleError {
    pub fn invalid(message: impl Into<String>) -> GoogleError {
        GoogleError { code: StatusCode::BAD_REQUEST, message: message.into() }
    }

    fn not_found() -> GoogleError {
        GoogleError { code: StatusCode::NOT_FOUND, message: "Requested entity was not found.".into() }
    }

    fn status(&self) -> &'static str {
        match self.code.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            _ => "INTERNAL",
        }
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code.as_u16(), "message": self.message, "status": self.status() } });
        (self.code, Json(body)).into_response()
    }
}

impl From<StoreError> for GoogleError {
    fn from(error: StoreError) -> GoogleError {
        tracing::error!(%error, "sheets emulator storage failed");
        GoogleError { code: StatusCode::INTERNAL_SERVER_ERROR, message: "Internal error encountered.".into() }
    }
}

impl From<a1::RangeError> for GoogleError {
    fn from(error: a1::RangeError) -> GoogleError {
        GoogleError::invalid(error.0)
    }
}

type GoogleResult = Result<Json<Value>, GoogleError>;

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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SheetProperties {
    sheet_id: Option<i64>,
    title: Option<String>,
    #[serde(default)]
    grid_properties: GridProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GridProperties {
    row_count: Option<u32>,
    column_count: Option<u32>,
}

/// Parses a JSON body the way Google reports problems with one.
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, GoogleError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| GoogleError::invalid(format!("Invalid JSON payload received. {e}")))
}

async fn create(State(store): State<Store>, caller: ServiceCaller, body: Bytes) -> GoogleResult {
    let body: SpreadsheetBody = json_body(&body)?;
    let spreadsheet = new_spreadsheet(body)?;
    store.create_spreadsheet(&caller.tenant_id, spreadsheet.clone()).await?;
    Ok(Json(spreadsheet_json(&spreadsheet)))
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
    let mut rng = rand::rng();
    let mut sheets: Vec<SheetRecord> = Vec::with_capacity(requested.len());
    for (index, sheet) in requested.into_iter().enumerate() {
        let properties = sheet.properties;
        let title = properties.title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| format!("Sheet{}", index + 1));
        if sheets.iter().any(|s| s.title.eq_ignore_ascii_case(&title)) {
            return Err(GoogleError::invalid(format!(
                "Invalid requests[{index}].addSheet: A sheet with the name \"{title}\" already exists. Please enter another name."
            )));
        }
        let sheet_id = match properties.sheet_id {
            Some(id) if id < 0 => {
                return Err(GoogleError::invalid(format!("Invalid sheets[{index}].properties.sheetId: {id}")));
            }
            Some(id) if sheets.iter().any(|s| s.sheet_id == id) => {
                return Err(GoogleError::invalid(format!(
                    "Invalid requests[{index}].addSheet: A sheet with the id {id} already exists."
                )));
            }
            Some(id) => id,
            None if index == 0 => 0,
            None => loop {
                let id = rng.random_range(1..i64::from(i32::MAX));
                if !sheets.iter().any(|s| s.sheet_id == id) {
                    break id;
                }
            },
        };
        let row_count = properties.grid_properties.row_count.unwrap_or(DEFAULT_ROWS);
        let column_count = properties.grid_properties.column_count.unwrap_or(DEFAULT_COLUMNS);
        if row_count == 0 || column_count == 0 || column_count > a1::MAX_COLUMNS || row_count > a1::MAX_ROWS {
            return Err(GoogleError::invalid(format!(
                "Invalid sheets[{index}].properties.gridProperties: {row_count} rows and {column_count} columns"
            )));
        }
        sheets.push(SheetRecord { sheet_id, title, row_count, column_count });
    }
    check_cell_limit(&sheets)?;
    let properties = body.properties;
    Ok(SpreadsheetRecord {
        id: spreadsheet_id(&mut rng),
        title: properties.title.filter(|t| !t.is_empty()).unwrap_or_else(|| "Untitled spreadsheet".into()),
        locale: properties.locale.unwrap_or_else(|| "en_US".into()),
        time_zone: properties.time_zone.unwrap_or_else(|| "Etc/GMT".into()),
        sheets,
    })
}

/// Google's limit on the size of a spreadsheet's grids.
fn check_cell_limit(sheets: &[SheetRecord]) -> Result<(), GoogleError> {
    let cells: u64 = sheets.iter().map(|s| u64::from(s.row_count) * u64::from(s.column_count)).sum();
    if cells > MAX_CELLS {
        return Err(GoogleError::invalid(format!(
            "This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells."
        )));
    }
    Ok(())
}

/// 44 characters from Google's id alphabet, like real spreadsheet ids.
fn spreadsheet_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..44).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

fn spreadsheet_json(spreadsheet: &SpreadsheetRecord) -> Value {
    let sheets: Vec<Value> = spreadsheet
        .sheets
        .iter()
        .enumerate()
        .map(|(index, sheet)| {
            json!({ "properties": {
                "sheetId": sheet.sheet_id,
                "title": sheet.title,
                "index": index,
                "sheetType": "GRID",
                "gridProperties": { "rowCount": sheet.row_count, "columnCount": sheet.column_count },
            } })
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
        "spreadsheetUrl": format!("https://docs.google.com/spreadsheets/d/{}/edit", spreadsheet.id),
    })
}

async fn get_spreadsheet(State(store): State<Store>, caller: ServiceCaller, Path(id): Path<String>) -> GoogleResult {
    let found =
        store.read_spreadsheet(&caller.tenant_id, &id, |spreadsheet, _| Ok(spreadsheet_json(spreadsheet))).await?;
    found.map(Json).ok_or_else(GoogleError::not_found)
}

/// A query parameter that must be one of an enum's names, reported like Google does.
fn enum_param<T>(
    query: &HashMap<String, String>,
    name: &str,
    field: &str,
    type_name: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, GoogleError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => parse(text).map(Some).ok_or_else(|| {
            GoogleError::invalid(format!(
                "Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.{type_name}), \"{text}\""
            ))
        }),
    }
}

fn bool_param(query: &HashMap<String, String>, name: &str) -> Result<bool, GoogleError> {
    match query.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => Err(GoogleError::invalid(format!("Invalid value at '{name}' (TYPE_BOOL), \"{other}\""))),
    }
}

fn sheet_grids(spreadsheet: &SpreadsheetRecord) -> Vec<SheetGrid> {
    spreadsheet
        .sheets
        .iter()
        .map(|s| SheetGrid { title: s.title.clone(), row_count: s.row_count, column_count: s.column_count })
        .collect()
}

fn grid_of(sheet: &SheetRecord, stored: &CellMap) -> Grid {
    let cells = stored.iter().filter_map(|(&at, value)| Cell::from_stored(value).map(|cell| (at, cell))).collect();
    Grid { cells, row_count: sheet.row_count, column_count: sheet.column_count }
}

fn stored_cells(grid: &Grid) -> CellMap {
    grid.cells.iter().map(|(&at, cell)| (at, cell.to_stored())).collect()
}

async fn get_values(
    State(store): State<Store>,
    caller: ServiceCaller,
    Path((id, range)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> GoogleResult {
    let dimension = enum_param(&query, "majorDimension", "major_dimension", "Dimension", Dimension::parse)?;
    let render =
        enum_param(&query, "valueRenderOption", "value_render_option", "ValueRenderOption", RenderOption::parse)?;
    let (dimension, render) = (dimension.unwrap_or_default(), render.unwrap_or_default());
    let parsed = a1::parse(&range)?;
    let answer = store
        .read_spreadsheet(&caller.tenant_id, &id, move |spreadsheet, cells| {
            let grids = sheet_grids(spreadsheet);
            let (index, area) = match a1::resolve(&parsed, &grids, &range) {
                Ok(found) => found,
                Err(error) => return Ok(Err(error.into())),
            };
            let sheet = &spreadsheet.sheets[index];
            let grid_size = &grids[index];
            if area.exceeds(grid_size) {
                return Ok(Err(GoogleError::invalid(a1::exceeds_message(grid_size, &area))));
            }
            let rect = area.clip(grid_size);
            let grid = grid_of(sheet, &cells.load(sheet.sheet_id)?);
            let mut answer =
                json!({ "range": a1::format_range(&sheet.title, rect), "majorDimension": dimension.as_str() });
            let rows = grid.read(rect, dimension, render);
            if !rows.is_empty() {
                answer["values"] = json!(rows);
            }
            Ok(Ok(answer))
        })
        .await?;
    answer.ok_or_else(GoogleError::not_found)?.map(Json)
}

fn resolve(parsed: &A1, spreadsheet: &SpreadsheetRecord, original: &str) -> Result<(usize, Area), GoogleError> {
    Ok(a1::resolve(parsed, &sheet_grids(spreadsheet), original)?)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValueRangeBody {
    major_dimension: Option<String>,
    #[serde(default)]
    values: Vec<Value>,
}

async fn append_values(
    State(store): State<Store>,
    caller: ServiceCaller,
    Path((id, range_and_verb)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> GoogleResult {
    let Some(range) = range_and_verb.strip_suffix(":append").map(str::to_owned) else {
        return Err(GoogleError { code: StatusCode::NOT_FOUND, message: "Method not found.".into() });
    };
    let input = enum_param(&query, "valueInputOption", "value_input_option", "ValueInputOption", InputOption::parse)?
        .ok_or_else(|| GoogleError::invalid("'valueInputOption' is required but not specified"))?;
    let insert =
        enum_param(&query, "insertDataOption", "insert_data_option", "InsertDataOption", InsertDataOption::parse)?
            .unwrap_or_default();
    let include_values = bool_param(&query, "includeValuesInResponse")?;
    let response_render = enum_param(
        &query,
        "responseValueRenderOption",
        "response_value_render_option",
        "ValueRenderOption",
        RenderOption::parse,
    )?
    .unwrap_or_default();
    let body: ValueRangeBody = json_body(&body)?;
    let dimension = match body.major_dimension.as_deref() {
        None | Some("DIMENSION_UNSPECIFIED") => Dimension::Rows,
        Some(text) => Dimension::parse(text).ok_or_else(|| {
            GoogleError::invalid(format!(
                "Invalid value at 'data.major_dimension' (type.googleapis.com/google.apps.sheets.v4.Dimension), \"{text}\""
            ))
        })?,
    };
    let writes = interpret_values(&body.values, input)?;
    let parsed = a1::parse(&range)?;
    let spreadsheet_id = id.clone();
    let answer = store
        .update_spreadsheet(&caller.tenant_id, &id, move |spreadsheet, cells| {
            let (index, area) = match resolve(&parsed, spreadsheet, &range) {
                Ok(found) => found,
                Err(error) => return Ok(Err(error)),
            };
            let before = cells.load(spreadsheet.sheets[index].sheet_id)?;
            let mut grid = grid_of(&spreadsheet.sheets[index], &before);
            let appended = grid.append(&area, &writes, dimension, insert);
            // Checked before anything changes: an error must leave the spreadsheet as it was.
            let mut grown = spreadsheet.sheets.clone();
            (grown[index].row_count, grown[index].column_count) = (grid.row_count, grid.column_count);
            if let Err(error) = check_cell_limit(&grown) {
                return Ok(Err(error));
            }
            spreadsheet.sheets = grown;
            let sheet = &spreadsheet.sheets[index];
            cells.save(sheet.sheet_id, &before, &stored_cells(&grid))?;

            let updated_range = a1::format_range(&sheet.title, appended.updated);
            let mut updates = json!({
                "spreadsheetId": spreadsheet_id,
                "updatedRange": updated_range,
                "updatedRows": appended.updated_rows,
                "updatedColumns": appended.updated_columns,
                "updatedCells": appended.updated_cells,
            });
            if include_values {
                let mut data = json!({ "range": updated_range, "majorDimension": "ROWS" });
                let rows = grid.read(appended.updated, Dimension::Rows, response_render);
                if !rows.is_empty() {
                    data["values"] = json!(rows);
                }
                updates["updatedData"] = data;
            }
            let mut answer = Map::new();
            answer.insert("spreadsheetId".into(), json!(spreadsheet_id));
            if let Some(table) = appended.table {
                answer.insert("tableRange".into(), json!(a1::format_range(&sheet.title, table)));
            }
            answer.insert("updates".into(), updates);
            Ok(Ok(Value::Object(answer)))
        })
        .await?;
    answer.ok_or_else(GoogleError::not_found)?.map(Json)
}

/// The body's `values` as cell writes, in the body's major dimension.
fn interpret_values(values: &[Value], input: InputOption) -> Result<Vec<Vec<CellWrite>>, GoogleError> {
    values
        .iter()
        .enumerate()
        .map(|(row, line)| match line {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(col, item)| values::interpret(item, input, row, col).map_err(GoogleError::invalid))
                .collect(),
            other => Err(GoogleError::invalid(format!(
                "Invalid values[{row}]: expected a list of cell values, got {}",
                crate::envelope::extract::json_type(other)
            ))),
        })
        .collect()
}
