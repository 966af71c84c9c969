//! `spreadsheets.batchUpdate` in the Sheets emulator: the requests `addSheet`,
//! `deleteSheet`, `updateSheetProperties`, `appendCells`, `updateCells`, `insertDimension`,
//! `deleteDimension` and `repeatCell`, applied in order and all or nothing, with Google's
//! replies and `updatedSpreadsheet`.
//!
//! Cell data writes `userEnteredValue` and `userEnteredFormat` under the request's `fields`
//! mask (`userEnteredFormat.numberFormat`, `userEnteredValue`, `*`); other cell fields
//! (notes, hyperlinks, data validation) are not kept. Formulas are not rewritten when rows
//! or columns move.

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::book::{Book, BookResult};
use super::format::CellFormat;
use super::mask::Mask;
use super::methods::GridRange;
use super::spreadsheet::{self, MAX_SHEETS, Selection, SheetProperties, check_size, check_title};
use super::values::{Cell, Dimension, Entered};
use super::{GoogleError, GoogleResult, SheetsState, json_body, spreadsheet_url, update_book};
use crate::services::ServiceCaller;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchUpdateBody {
    #[serde(default)]
    requests: Vec<Value>,
    #[serde(default)]
    include_spreadsheet_in_response: bool,
    #[serde(default)]
    response_ranges: Vec<String>,
    #[serde(default)]
    response_include_grid_data: bool,
}

/// One request of a batch, typed.
#[derive(Debug, Clone)]
enum Request {
    AddSheet(AddSheet),
    DeleteSheet(DeleteSheet),
    UpdateSheetProperties(UpdateSheetProperties),
    AppendCells(AppendCells),
    UpdateCells(UpdateCells),
    InsertDimension(InsertDimension),
    DeleteDimension(DeleteDimension),
    RepeatCell(RepeatCell),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddSheet {
    #[serde(default)]
    properties: SheetProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteSheet {
    #[serde(default)]
    sheet_id: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateSheetProperties {
    #[serde(default)]
    properties: Map<String, Value>,
    #[serde(default)]
    fields: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppendCells {
    #[serde(default)]
    sheet_id: i64,
    #[serde(default)]
    rows: Vec<RowData>,
    #[serde(default)]
    fields: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateCells {
    #[serde(default)]
    rows: Vec<RowData>,
    #[serde(default)]
    fields: String,
    start: Option<GridCoordinate>,
    range: Option<GridRange>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InsertDimension {
    range: DimensionRange,
    #[serde(default)]
    #[allow(dead_code)]
    inherit_from_before: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteDimension {
    range: DimensionRange,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepeatCell {
    range: GridRange,
    #[serde(default)]
    cell: CellData,
    #[serde(default)]
    fields: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RowData {
    #[serde(default)]
    values: Vec<CellData>,
}

/// Google's `CellData` as a request writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CellData {
    user_entered_value: Option<ExtendedValue>,
    user_entered_format: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtendedValue {
    number_value: Option<f64>,
    string_value: Option<String>,
    bool_value: Option<bool>,
    formula_value: Option<String>,
    error_value: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GridCoordinate {
    sheet_id: Option<i64>,
    #[serde(default)]
    row_index: u32,
    #[serde(default)]
    column_index: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DimensionRange {
    sheet_id: Option<i64>,
    dimension: String,
    start_index: Option<u32>,
    end_index: Option<u32>,
}

/// Google's request kinds the emulator does not carry out.
const KNOWN_ELSEWHERE: &[&str] = &[
    "updateSpreadsheetProperties",
    "updateDimensionProperties",
    "updateEmbeddedObjectPosition",
    "updateEmbeddedObjectBorder",
    "updateBorders",
    "updateFilterView",
    "addFilterView",
    "deleteFilterView",
    "duplicateFilterView",
    "duplicateSheet",
    "findReplace",
    "moveDimension",
    "autoFill",
    "cutPaste",
    "copyPaste",
    "mergeCells",
    "unmergeCells",
    "setDataValidation",
    "setBasicFilter",
    "clearBasicFilter",
    "addConditionalFormatRule",
    "updateConditionalFormatRule",
    "deleteConditionalFormatRule",
    "sortRange",
    "addNamedRange",
    "updateNamedRange",
    "deleteNamedRange",
    "addProtectedRange",
    "updateProtectedRange",
    "deleteProtectedRange",
    "autoResizeDimensions",
    "addChart",
    "updateChartSpec",
    "addBanding",
    "updateBanding",
    "deleteBanding",
    "createDeveloperMetadata",
    "updateDeveloperMetadata",
    "deleteDeveloperMetadata",
    "randomizeRange",
    "addDimensionGroup",
    "deleteDimensionGroup",
    "updateDimensionGroup",
    "trimWhitespace",
    "deleteDuplicates",
    "addSlicer",
    "updateSlicerSpec",
    "addDataSource",
    "updateDataSource",
    "deleteDataSource",
    "refreshDataSource",
    "cancelDataSourceRefresh",
    "appendDimension",
    "insertRange",
    "deleteRange",
    "pasteData",
    "textToColumns",
    "deleteEmbeddedObject",
    "addTable",
    "updateTable",
    "deleteTable",
];

/// The typed request at `requests[position]`.
fn parse_request(position: usize, request: &Value) -> Result<(String, Request), GoogleError> {
    let invalid = |message: String| GoogleError::invalid(format!("Invalid requests[{position}]: {message}"));
    let Some(map) = request.as_object() else {
        return Err(invalid("expected an object with one request kind".into()));
    };
    let mut kinds = map.iter();
    let (Some((kind, inner)), None) = (kinds.next(), kinds.next()) else {
        return Err(invalid(format!("expected exactly one request kind, got {}", map.len())));
    };
    fn typed<T: DeserializeOwned>(position: usize, kind: &str, inner: &Value) -> Result<T, GoogleError> {
        serde_json::from_value(inner.clone())
            .map_err(|e| GoogleError::invalid(format!("Invalid requests[{position}].{kind}: {e}")))
    }
    let request = match kind.as_str() {
        "addSheet" => Request::AddSheet(typed(position, kind, inner)?),
        "deleteSheet" => Request::DeleteSheet(typed(position, kind, inner)?),
        "updateSheetProperties" => Request::UpdateSheetProperties(typed(position, kind, inner)?),
        "appendCells" => Request::AppendCells(typed(position, kind, inner)?),
        "updateCells" => Request::UpdateCells(typed(position, kind, inner)?),
        "insertDimension" => Request::InsertDimension(typed(position, kind, inner)?),
        "deleteDimension" => Request::DeleteDimension(typed(position, kind, inner)?),
        "repeatCell" => Request::RepeatCell(typed(position, kind, inner)?),
        other if KNOWN_ELSEWHERE.contains(&other) => {
            return Err(GoogleError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "Invalid requests[{position}].{other}: the Sheets emulator does not carry out {other} requests"
                ),
            ));
        }
        other => {
            return Err(GoogleError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{other}\" at 'requests[{position}]': Cannot find field."
            )));
        }
    };
    Ok((kind.clone(), request))
}

pub async fn batch_update(
    sheets: &SheetsState,
    caller: &ServiceCaller,
    headers: &HeaderMap,
    id: &str,
    body: &Bytes,
) -> GoogleResult {
    let body: BatchUpdateBody = json_body(body)?;
    let requests = body
        .requests
        .iter()
        .enumerate()
        .map(|(position, request)| parse_request(position, request))
        .collect::<Result<Vec<_>, _>>()?;
    let url = spreadsheet_url(headers, id);
    let Json(answer) = update_book(sheets, &caller.tenant_id, id, move |book| {
        let mut replies = Vec::with_capacity(requests.len());
        for (position, (kind, request)) in requests.iter().cloned().enumerate() {
            let what = format!("requests[{position}].{kind}");
            replies.push(apply(book, request, &what)?);
        }
        let mut answer = json!({ "spreadsheetId": book.id(), "replies": replies });
        if body.include_spreadsheet_in_response {
            let mut selection = Selection { ranges: Vec::new(), grid_data: body.response_include_grid_data };
            for range in &body.response_ranges {
                let (index, area) = book.resolve_within(range)?;
                selection.ranges.push((index, book.clip(index, &area)));
            }
            answer["updatedSpreadsheet"] = spreadsheet::spreadsheet_json(book, &url, &selection)?;
        }
        Ok(answer)
    })
    .await?;
    Ok(Json(answer))
}

fn invalid(what: &str, message: impl std::fmt::Display) -> GoogleError {
    GoogleError::invalid(format!("Invalid {what}: {message}"))
}

fn sheet_index(book: &Book<'_>, sheet_id: i64, what: &str) -> Result<usize, GoogleError> {
    book.sheet_index(sheet_id).ok_or_else(|| invalid(what, format!("No grid with id: {sheet_id}")))
}

fn mask(fields: &str, what: &str) -> Result<Mask, GoogleError> {
    if fields.trim().is_empty() {
        return Err(invalid(what, "At least one field must be updated, but no fields were specified."));
    }
    Mask::parse(fields).map_err(|message| invalid(what, message))
}

/// Carries out one request; its reply (`{}` for kinds without one).
fn apply(book: &mut Book<'_>, request: Request, what: &str) -> BookResult<Value> {
    match request {
        Request::AddSheet(add) => {
            if book.spreadsheet.sheets.len() >= MAX_SHEETS {
                return Err(invalid(what, format!("a spreadsheet may have at most {MAX_SHEETS} sheets")).into());
            }
            let at = match add.properties.index {
                Some(index) if index < 0 => return Err(invalid(what, format!("invalid index {index}")).into()),
                Some(index) => (index as usize).min(book.spreadsheet.sheets.len()),
                None => book.spreadsheet.sheets.len(),
            };
            let sheet = spreadsheet::new_sheet(add.properties, &book.spreadsheet.sheets, what)?;
            book.add_sheet(at, sheet);
            let properties = spreadsheet::sheet_properties_json(book.sheet(at), at, book.size(at));
            Ok(json!({ "addSheet": { "properties": properties } }))
        }
        Request::DeleteSheet(delete) => {
            let index = sheet_index(book, delete.sheet_id, what)?;
            if book.spreadsheet.sheets.len() == 1 {
                return Err(invalid(what, "You can't remove all the sheets in a document.").into());
            }
            book.delete_sheet(index);
            Ok(json!({}))
        }
        Request::UpdateSheetProperties(update) => {
            update_sheet_properties(book, update, what)?;
            Ok(json!({}))
        }
        Request::AppendCells(append) => {
            let mask = mask(&append.fields, what)?;
            let index = sheet_index(book, append.sheet_id, what)?;
            let grid = book.grid_mut(index)?;
            let start = grid.last_row_with_values().map_or(0, |row| row.saturating_add(1));
            write_rows(book, index, start, 0, &append.rows, &mask, what)?;
            Ok(json!({}))
        }
        Request::UpdateCells(update) => {
            let mask = mask(&update.fields, what)?;
            match (update.start, update.range) {
                (Some(start), None) => {
                    let index = sheet_index(book, start.sheet_id.unwrap_or(0), what)?;
                    write_rows(book, index, start.row_index, start.column_index, &update.rows, &mask, what)?;
                }
                (None, Some(range)) => {
                    let Some((index, area)) = range.resolve(book, what)? else { return Ok(json!({})) };
                    let rect = book.clip(index, &area);
                    // Cells of the range the rows do not cover are cleared under the mask.
                    let empty = CellData::default();
                    for row in rect.row0..=rect.row1 {
                        let given = update.rows.get((row - rect.row0) as usize);
                        for col in rect.col0..=rect.col1 {
                            let data = given.and_then(|r| r.values.get((col - rect.col0) as usize)).unwrap_or(&empty);
                            write_cell(book, index, (row, col), data, &mask, what)?;
                        }
                    }
                }
                _ => return Err(invalid(what, "exactly one of start, range must be set").into()),
            }
            Ok(json!({}))
        }
        Request::InsertDimension(insert) => {
            let (index, dimension, start, end) = dimension_range(book, &insert.range, what)?;
            let count = match dimension {
                Dimension::Rows => book.size(index).0,
                Dimension::Columns => book.size(index).1,
            };
            if start > count {
                return Err(
                    invalid(what, format!("range.startIndex[{start}] is after the last index [{count}]")).into()
                );
            }
            book.grid_mut(index)?.insert_lines(dimension, start, end - start);
            Ok(json!({}))
        }
        Request::DeleteDimension(delete) => {
            let (index, dimension, start, end) = dimension_range(book, &delete.range, what)?;
            let (rows, columns) = book.size(index);
            let count = if dimension == Dimension::Rows { rows } else { columns };
            let end = end.min(count);
            if start == 0 && end >= count {
                let lines = if dimension == Dimension::Rows { "rows" } else { "columns" };
                return Err(invalid(what, format!("You can't delete all the {lines} in the sheet.")).into());
            }
            book.grid_mut(index)?.delete_lines(dimension, start, end);
            Ok(json!({}))
        }
        Request::RepeatCell(repeat) => {
            let mask = mask(&repeat.fields, what)?;
            let Some((index, area)) = repeat.range.resolve(book, what)? else { return Ok(json!({})) };
            let rect = book.clip(index, &area);
            for row in rect.row0..=rect.row1 {
                for col in rect.col0..=rect.col1 {
                    write_cell(book, index, (row, col), &repeat.cell, &mask, what)?;
                }
            }
            Ok(json!({}))
        }
    }
}

/// `(sheet index, dimension, start, end)` of a `DimensionRange`, end exclusive and after
/// start.
fn dimension_range(
    book: &Book<'_>,
    range: &DimensionRange,
    what: &str,
) -> Result<(usize, Dimension, u32, u32), GoogleError> {
    let index = sheet_index(book, range.sheet_id.unwrap_or(0), what)?;
    let dimension = Dimension::parse(&range.dimension)
        .ok_or_else(|| invalid(what, format!("range.dimension must be ROWS or COLUMNS, not {:?}", range.dimension)))?;
    let start = range.start_index.unwrap_or(0);
    let end = range.end_index.ok_or_else(|| invalid(what, "range.endIndex is required"))?;
    if end <= start {
        return Err(invalid(what, format!("range.startIndex[{start}] must be before range.endIndex[{end}]")));
    }
    Ok((index, dimension, start, end))
}

/// Writes rows of cell data from (`row`, `col`), growing the grid to hold them.
fn write_rows(
    book: &mut Book<'_>,
    index: usize,
    row: u32,
    col: u32,
    rows: &[RowData],
    mask: &Mask,
    what: &str,
) -> BookResult<()> {
    for (r, line) in rows.iter().enumerate() {
        for (c, data) in line.values.iter().enumerate() {
            let at = (row.saturating_add(r as u32), col.saturating_add(c as u32));
            write_cell(book, index, at, data, mask, what)?;
        }
    }
    let grid = book.grid_mut(index)?;
    if let Some(widest) = rows.iter().map(|r| r.values.len()).max().filter(|w| *w > 0) {
        grid.row_count = grid.row_count.max(row.saturating_add(rows.len() as u32));
        grid.column_count = grid.column_count.max(col.saturating_add(widest as u32));
    }
    Ok(())
}

/// Writes the parts of `data` that `mask` selects into the cell at `at`.
fn write_cell(
    book: &mut Book<'_>,
    index: usize,
    at: (u32, u32),
    data: &CellData,
    mask: &Mask,
    what: &str,
) -> BookResult<()> {
    let entered = match mask.get("userEnteredValue") {
        Some(_) => Some(data.user_entered_value.as_ref().map(|value| entered(value, what)).transpose()?),
        None => None,
    };
    let format_mask = mask.get("userEnteredFormat");
    let mut failure = None;
    book.grid_mut(index)?.update(at, |cell| {
        if let Some(entered) = entered {
            cell.entered = entered;
        }
        if let Some(format_mask) = format_mask
            && let Err(error) = write_format(cell, data.user_entered_format.as_ref(), format_mask, what)
        {
            failure = Some(error);
        }
    });
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

fn write_format(
    cell: &mut Cell,
    given: Option<&Map<String, Value>>,
    mask: &Mask,
    what: &str,
) -> Result<(), GoogleError> {
    let given = Value::Object(given.cloned().unwrap_or_default());
    let mut current = serde_json::to_value(cell.format.clone().unwrap_or_default()).unwrap_or_else(|_| json!({}));
    if mask.is_whole() {
        current = given;
    } else {
        copy_masked(&mut current, &given, mask);
    }
    let format: CellFormat =
        serde_json::from_value(current).map_err(|e| invalid(what, format!("userEnteredFormat: {e}")))?;
    cell.format = Some(format).filter(|f| !f.is_empty());
    Ok(())
}

/// Copies the fields `mask` selects from `given` into `target` (objects); a selected field
/// `given` lacks is removed.
fn copy_masked(target: &mut Value, given: &Value, mask: &Mask) {
    if !target.is_object() {
        *target = json!({});
    }
    for (name, inner) in &mask.fields {
        if name == "*" {
            *target = given.clone();
            continue;
        }
        let Value::Object(map) = target else { return };
        let from = given.get(name);
        if inner.is_whole() {
            match from {
                Some(value) => {
                    map.insert(name.clone(), value.clone());
                }
                None => {
                    map.remove(name);
                }
            }
        } else {
            let slot = map.entry(name.clone()).or_insert_with(|| json!({}));
            copy_masked(slot, from.unwrap_or(&Value::Null), inner);
            if slot.as_object().is_some_and(Map::is_empty) {
                map.remove(name);
            }
        }
    }
}

fn entered(value: &ExtendedValue, what: &str) -> Result<Entered, GoogleError> {
    match value {
        ExtendedValue {
            number_value: Some(n),
            string_value: None,
            bool_value: None,
            formula_value: None,
            error_value: None,
        } => {
            if n.is_finite() {
                Ok(Entered::Number(*n))
            } else {
                Err(invalid(what, "userEnteredValue.numberValue must be finite"))
            }
        }
        ExtendedValue {
            number_value: None,
            string_value: Some(text),
            bool_value: None,
            formula_value: None,
            error_value: None,
        } => Ok(Entered::Text(text.clone())),
        ExtendedValue {
            number_value: None,
            string_value: None,
            bool_value: Some(b),
            formula_value: None,
            error_value: None,
        } => Ok(Entered::Bool(*b)),
        ExtendedValue {
            number_value: None,
            string_value: None,
            bool_value: None,
            formula_value: Some(text),
            error_value: None,
        } => {
            if text.starts_with('=') && text.len() > 1 {
                Ok(Entered::Formula(text.clone()))
            } else {
                Err(invalid(what, format!("userEnteredValue.formulaValue must start with '=': {text:?}")))
            }
        }
        ExtendedValue { error_value: Some(_), .. } => {
            Err(invalid(what, "userEnteredValue.errorValue cannot be written"))
        }
        _ => Err(invalid(
            what,
            "userEnteredValue must have exactly one of numberValue, stringValue, boolValue, formulaValue",
        )),
    }
}

/// Changes a sheet's properties under `fields`: title (unique), index (the sheet moves),
/// grid size (shrinking drops the cells beyond), and any other property, kept as given.
fn update_sheet_properties(book: &mut Book<'_>, update: UpdateSheetProperties, what: &str) -> BookResult<()> {
    let mask = mask(&update.fields, what)?;
    let sheet_id = update.properties.get("sheetId").and_then(Value::as_i64).unwrap_or(0);
    let index = sheet_index(book, sheet_id, what)?;
    let size = book.size(index);
    let mut current = spreadsheet::sheet_properties_json(book.sheet(index), index, size);
    copy_masked(&mut current, &Value::Object(update.properties), &mask);
    let properties: SheetProperties =
        serde_json::from_value(current).map_err(|e| invalid(what, format!("properties: {e}")))?;
    if properties.sheet_id != Some(sheet_id) {
        return Err(invalid(what, "properties.sheetId cannot be changed").into());
    }
    if properties.sheet_type.as_deref().is_some_and(|kind| kind != "GRID") {
        return Err(invalid(what, "properties.sheetType cannot be changed").into());
    }
    let title = properties
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid(what, "properties.title cannot be empty"))?;
    let others: Vec<_> =
        book.spreadsheet.sheets.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, s)| s.clone()).collect();
    check_title(&title, &others, what)?;
    let rows = properties.grid_properties.row_count.unwrap_or(size.0);
    let columns = properties.grid_properties.column_count.unwrap_or(size.1);
    check_size(rows, columns, what)?;
    if (rows, columns) != size {
        let grid = book.grid_mut(index)?;
        if rows < size.0 {
            grid.delete_lines(Dimension::Rows, rows, size.0);
        }
        if columns < size.1 {
            grid.delete_lines(Dimension::Columns, columns, size.1);
        }
        (grid.row_count, grid.column_count) = (rows, columns);
    }
    let mut kept = spreadsheet::kept_properties(&properties);
    for owned in ["sheetId", "title", "index", "sheetType"] {
        kept.remove(owned);
    }
    let sheet = &mut book.spreadsheet.sheets[index];
    sheet.title = title;
    sheet.properties = kept;
    let target = properties.index.map_or(index, |i| (i.max(0) as usize).min(book.spreadsheet.sheets.len() - 1));
    if target != index {
        let sheet = book.spreadsheet.sheets.remove(index);
        book.spreadsheet.sheets.insert(target, sheet);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_the_masked_fields() {
        let mut target = json!({ "numberFormat": { "type": "DATE" }, "textFormat": { "bold": true, "italic": true } });
        let given = json!({ "backgroundColor": { "red": 1 }, "textFormat": { "bold": false } });
        copy_masked(&mut target, &given, &Mask::parse("backgroundColor,textFormat.bold").unwrap());
        assert_eq!(
            target,
            json!({ "numberFormat": { "type": "DATE" }, "textFormat": { "bold": false, "italic": true }, "backgroundColor": { "red": 1 } })
        );
        copy_masked(&mut target, &json!({}), &Mask::parse("numberFormat").unwrap());
        assert!(target.get("numberFormat").is_none(), "a selected field the request lacks is cleared");
        copy_masked(&mut target, &json!({ "a": 1 }), &Mask::parse("*").unwrap());
        assert_eq!(target, json!({ "a": 1 }));
    }

    #[test]
    fn names_unsupported_and_unknown_request_kinds() {
        let merge = parse_request(2, &json!({ "mergeCells": {} })).unwrap_err();
        assert_eq!(merge.code, StatusCode::NOT_IMPLEMENTED);
        assert!(merge.message.starts_with("Invalid requests[2].mergeCells:"), "{}", merge.message);
        let unknown = parse_request(0, &json!({ "fooBar": {} })).unwrap_err();
        assert_eq!(
            unknown.message,
            "Invalid JSON payload received. Unknown name \"fooBar\" at 'requests[0]': Cannot find field."
        );
        let two = parse_request(0, &json!({ "addSheet": {}, "deleteSheet": {} })).unwrap_err();
        assert_eq!(two.code, StatusCode::BAD_REQUEST);
        assert!(
            matches!(parse_request(0, &json!({ "addSheet": {} })), Ok((kind, Request::AddSheet(_))) if kind == "addSheet")
        );
    }

    #[test]
    fn reads_extended_values() {
        let value = |v: Value| entered(&serde_json::from_value(v).unwrap(), "r");
        assert_eq!(value(json!({ "numberValue": 2.5 })).unwrap(), Entered::Number(2.5));
        assert_eq!(value(json!({ "stringValue": "=1" })).unwrap(), Entered::Text("=1".into()));
        assert_eq!(value(json!({ "boolValue": true })).unwrap(), Entered::Bool(true));
        assert_eq!(value(json!({ "formulaValue": "=1+1" })).unwrap(), Entered::Formula("=1+1".into()));
        assert!(value(json!({ "formulaValue": "1+1" })).is_err());
        assert!(value(json!({})).is_err());
        assert!(value(json!({ "numberValue": 1, "stringValue": "x" })).is_err());
    }
}
