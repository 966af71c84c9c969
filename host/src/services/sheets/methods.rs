//! `spreadsheets.values.*` of the Sheets emulator: `get`, `update`, `append`, `clear`,
//! `batchGet`, `batchUpdate`, `batchClear` and the three `…ByDataFilter` variants, with
//! Google's parameters (`valueInputOption`, `insertDataOption`, `majorDimension`,
//! `valueRenderOption`, `dateTimeRenderOption`, `includeValuesInResponse`, …) and answers.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::a1::{self, Area, Rect};
use super::book::{Book, BookResult, rendering};
use super::grid::InsertDataOption;
use super::values::{self, CellWrite, DateTimeOption, Dimension, InputOption, RenderOption, Rendering};
use super::{GoogleError, GoogleResult, Params, SheetsState, enum_error, json_body, read_book, update_book};
use crate::services::ServiceCaller;

/// Google's `GridRange`: a rectangle of a sheet by id, 0-based, ends exclusive, missing
/// bounds open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GridRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_row_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_row_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_column_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column_index: Option<u32>,
}

impl GridRange {
    /// The sheet and area; `None` when the range is empty (a start equal to its end).
    pub fn resolve(&self, book: &Book<'_>, what: &str) -> Result<Option<(usize, Area)>, GoogleError> {
        let sheet_id = self.sheet_id.unwrap_or(0);
        let index = book
            .sheet_index(sheet_id)
            .ok_or_else(|| GoogleError::invalid(format!("Invalid {what}: No grid with id: {sheet_id}")))?;
        let span = |start: Option<u32>, end: Option<u32>, names: (&str, &str)| match (start, end) {
            (Some(start), Some(end)) if end < start => {
                Err(GoogleError::invalid(format!("Invalid {what}: {}[{start}] is after {}[{end}]", names.0, names.1)))
            }
            (Some(start), Some(end)) if end == start => Ok(None),
            (None, Some(0)) => Ok(None),
            (start, end) => Ok(Some((Some(start.unwrap_or(0)), end.map(|e| e - 1)))),
        };
        let Some((start_row, end_row)) =
            span(self.start_row_index, self.end_row_index, ("startRowIndex", "endRowIndex"))?
        else {
            return Ok(None);
        };
        let Some((start_col, end_col)) =
            span(self.start_column_index, self.end_column_index, ("startColumnIndex", "endColumnIndex"))?
        else {
            return Ok(None);
        };
        let area = Area { start_row, start_col, end_row, end_col };
        book.check_within(index, &area)?;
        Ok(Some((index, area)))
    }
}

/// Google's `DataFilter`; only `a1Range` and `gridRange` select anything in the emulator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a1_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_range: Option<GridRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_metadata_lookup: Option<Value>,
}

impl DataFilter {
    /// The sheet and area the filter selects (`None`: nothing); `what` names it in errors.
    pub fn area(&self, book: &Book<'_>, what: &str) -> Result<Option<(usize, Area)>, GoogleError> {
        match (&self.a1_range, &self.grid_range, &self.developer_metadata_lookup) {
            (Some(range), None, None) => book.resolve_within(range).map(Some),
            (None, Some(grid), None) => grid.resolve(book, what),
            (None, None, Some(_)) => Err(GoogleError::invalid(format!(
                "Invalid {what}: the emulator has no developer metadata; filter with a1Range or gridRange"
            ))),
            _ => Err(GoogleError::invalid(format!("Invalid {what}: exactly one of a1Range, gridRange must be set"))),
        }
    }

    /// The clipped rectangle the filter selects.
    pub fn resolve(&self, book: &Book<'_>, what: &str) -> Result<Option<(usize, Rect)>, GoogleError> {
        Ok(self.area(book, what)?.map(|(index, area)| (index, book.clip(index, &area))))
    }
}

/// A `ValueRange` in a request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueRangeBody {
    pub range: Option<String>,
    pub major_dimension: Option<String>,
    #[serde(default)]
    pub values: Vec<Value>,
}

/// What a write answers with its values (`includeValuesInResponse` and the response
/// render options).
#[derive(Debug, Clone, Copy, Default)]
struct ResponseValues {
    include: bool,
    rendering: Rendering,
}

impl ResponseValues {
    fn from_params(params: &Params) -> Result<ResponseValues, GoogleError> {
        Ok(ResponseValues {
            include: params.boolean("includeValuesInResponse")?,
            rendering: rendering(
                params.enumerated("responseValueRenderOption", "ValueRenderOption", RenderOption::parse)?,
                params.enumerated("responseDateTimeRenderOption", "DateTimeRenderOption", DateTimeOption::parse)?,
            ),
        })
    }
}

fn dimension(text: Option<&str>, field: &str) -> Result<Dimension, GoogleError> {
    match text {
        None | Some("DIMENSION_UNSPECIFIED") => Ok(Dimension::Rows),
        Some(text) => Dimension::parse(text).ok_or_else(|| enum_error(field, "Dimension", text)),
    }
}

fn input_option(text: Option<&str>, field: &str) -> Result<InputOption, GoogleError> {
    match text {
        None | Some("INPUT_VALUE_OPTION_UNSPECIFIED") => {
            Err(GoogleError::invalid(format!("'{field}' is required but not specified")))
        }
        Some(text) => InputOption::parse(text).ok_or_else(|| enum_error(field, "ValueInputOption", text)),
    }
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

/// `'Sheet1'!A1:B2`, the way Google quotes a requested range in its errors.
fn quoted_range(book: &Book<'_>, index: usize, area: &Area) -> String {
    let title = book.sheet(index).title.replace('\'', "''");
    let area = a1::format_area(area);
    if area.is_empty() { format!("'{title}'") } else { format!("'{title}'!{area}") }
}

/// Writes `writes` from the area's top-left, refusing values past a bounded area (a single
/// cell only anchors them), and
/// answers Google's `UpdateValuesResponse`.
fn write_area(
    book: &mut Book<'_>,
    index: usize,
    area: &Area,
    writes: &[Vec<CellWrite>],
    dimension: Dimension,
    response: ResponseValues,
) -> BookResult<Map<String, Value>> {
    let (row, col) = (area.start_row.unwrap_or(0), area.start_col.unwrap_or(0));
    let lines = writes.len();
    let longest = writes.iter().map(Vec::len).max().unwrap_or(0);
    let (height, width) = match dimension {
        Dimension::Rows => (lines, longest),
        Dimension::Columns => (longest, lines),
    };
    // A single cell is where the values start, as with Google; a larger range bounds them.
    let single_cell = area.start_row == area.end_row && area.start_col == area.end_col;
    if let Some(end) = area.end_row.filter(|_| !single_cell)
        && height > 0
        && u64::from(row) + height as u64 - 1 > u64::from(end)
    {
        return Err(GoogleError::invalid(format!(
            "Requested writing within range [{}], but tried writing to row [{}]",
            quoted_range(book, index, area),
            u64::from(end) + 2
        ))
        .into());
    }
    if let Some(end) = area.end_col.filter(|_| !single_cell)
        && width > 0
        && u64::from(col) + width as u64 - 1 > u64::from(end)
    {
        let beyond = end.saturating_add(1);
        return Err(GoogleError::invalid(format!(
            "Requested writing within range [{}], but tried writing to column [{}]",
            quoted_range(book, index, area),
            a1::column_letters(beyond)
        ))
        .into());
    }
    let written = book.grid_mut(index)?.write(row, col, writes, dimension);
    let mut answer = Map::new();
    answer.insert("spreadsheetId".into(), json!(book.id()));
    answer.insert("updatedRange".into(), json!(book.range_name(index, written.updated)));
    answer.insert("updatedRows".into(), json!(written.updated_rows));
    answer.insert("updatedColumns".into(), json!(written.updated_columns));
    answer.insert("updatedCells".into(), json!(written.updated_cells));
    if response.include {
        let data = book.value_range(index, written.updated, Dimension::Rows, response.rendering)?;
        answer.insert("updatedData".into(), data);
    }
    Ok(answer)
}

pub async fn get(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    Path((id, range)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> GoogleResult {
    let params = Params::of(&uri)?;
    let dimension = dimension(params.get("majorDimension"), "major_dimension")?;
    let rendering = read_rendering(&params)?;
    read_book(&sheets, &caller.tenant_id, &id, move |book| {
        let (index, area) = book.resolve_within(&range)?;
        let rect = book.clip(index, &area);
        book.value_range(index, rect, dimension, rendering)
    })
    .await
}

fn read_rendering(params: &Params) -> Result<Rendering, GoogleError> {
    Ok(rendering(
        params.enumerated("valueRenderOption", "ValueRenderOption", RenderOption::parse)?,
        params.enumerated("dateTimeRenderOption", "DateTimeRenderOption", DateTimeOption::parse)?,
    ))
}

pub async fn update(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    Path((id, range)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> GoogleResult {
    let params = Params::of(&uri)?;
    let input = input_option(params.get("valueInputOption"), "valueInputOption")?;
    let response = ResponseValues::from_params(&params)?;
    let body: ValueRangeBody = json_body(&body)?;
    if let Some(given) = body.range.as_deref().filter(|given| *given != range) {
        return Err(GoogleError::invalid(format!(
            "Requested entity range [{range}] does not match the range in the request body [{given}]"
        )));
    }
    let dimension = dimension(body.major_dimension.as_deref(), "data.major_dimension")?;
    let writes = interpret_values(&body.values, input)?;
    update_book(&sheets, &caller.tenant_id, &id, move |book| {
        let (index, area) = book.resolve_within(&range)?;
        Ok(Value::Object(write_area(book, index, &area, &writes, dimension, response)?))
    })
    .await
}

/// `POST …/values/{range}:append` and `…:clear`.
pub async fn range_verb(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    Path((id, range_and_verb)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> GoogleResult {
    let params = Params::of(&uri)?;
    match range_and_verb.rsplit_once(':') {
        Some((range, "append")) => append(&sheets, &caller, &id, range.to_owned(), &params, &body).await,
        Some((range, "clear")) => {
            let range = range.to_owned();
            update_book(&sheets, &caller.tenant_id, &id, move |book| {
                let (index, area) = book.resolve_within(&range)?;
                let rect = book.clip(index, &area);
                book.grid_mut(index)?.clear_values(rect);
                Ok(json!({ "spreadsheetId": book.id(), "clearedRange": book.range_name(index, rect) }))
            })
            .await
        }
        _ => Err(GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: POST {}", uri.path()))),
    }
}

async fn append(
    sheets: &SheetsState,
    caller: &ServiceCaller,
    id: &str,
    range: String,
    params: &Params,
    body: &Bytes,
) -> GoogleResult {
    let input = input_option(params.get("valueInputOption"), "valueInputOption")?;
    let insert =
        params.enumerated("insertDataOption", "InsertDataOption", InsertDataOption::parse)?.unwrap_or_default();
    let response = ResponseValues::from_params(params)?;
    let body: ValueRangeBody = json_body(body)?;
    let dimension = dimension(body.major_dimension.as_deref(), "data.major_dimension")?;
    let writes = interpret_values(&body.values, input)?;
    update_book(sheets, &caller.tenant_id, id, move |book| {
        let (index, area) = book.resolve(&range)?;
        let appended = book.grid_mut(index)?.append(&area, &writes, dimension, insert);
        let updated_range = book.range_name(index, appended.updated);
        let mut updates = json!({
            "spreadsheetId": book.id(),
            "updatedRange": updated_range,
            "updatedRows": appended.updated_rows,
            "updatedColumns": appended.updated_columns,
            "updatedCells": appended.updated_cells,
        });
        if response.include {
            updates["updatedData"] = book.value_range(index, appended.updated, Dimension::Rows, response.rendering)?;
        }
        let mut answer = Map::new();
        answer.insert("spreadsheetId".into(), json!(book.id()));
        if let Some(table) = appended.table {
            answer.insert("tableRange".into(), json!(book.range_name(index, table)));
        }
        answer.insert("updates".into(), updates);
        Ok(Value::Object(answer))
    })
    .await
}

/// `GET …/values:batchGet`.
pub async fn collection_get(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    Path((id, verb)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
) -> GoogleResult {
    if verb != "values:batchGet" {
        return Err(GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: GET {}", uri.path())));
    }
    let params = Params::of(&uri)?;
    let dimension = dimension(params.get("majorDimension"), "major_dimension")?;
    let rendering = read_rendering(&params)?;
    let ranges = params.all("ranges");
    read_book(&sheets, &caller.tenant_id, &id, move |book| {
        let mut value_ranges = Vec::with_capacity(ranges.len());
        for range in &ranges {
            let (index, area) = book.resolve_within(range)?;
            let rect = book.clip(index, &area);
            value_ranges.push(book.value_range(index, rect, dimension, rendering)?);
        }
        let mut answer = json!({ "spreadsheetId": book.id() });
        if !value_ranges.is_empty() {
            answer["valueRanges"] = Value::Array(value_ranges);
        }
        Ok(answer)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchUpdateBody {
    value_input_option: Option<String>,
    #[serde(default)]
    data: Vec<ValueRangeBody>,
    #[serde(default)]
    include_values_in_response: bool,
    response_value_render_option: Option<String>,
    response_date_time_render_option: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataFilterValueRange {
    #[serde(default)]
    data_filter: DataFilter,
    major_dimension: Option<String>,
    #[serde(default)]
    values: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchUpdateByDataFilterBody {
    value_input_option: Option<String>,
    #[serde(default)]
    data: Vec<DataFilterValueRange>,
    #[serde(default)]
    include_values_in_response: bool,
    response_value_render_option: Option<String>,
    response_date_time_render_option: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchClearBody {
    #[serde(default)]
    ranges: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataFiltersBody {
    #[serde(default)]
    data_filters: Vec<DataFilter>,
    major_dimension: Option<String>,
    value_render_option: Option<String>,
    date_time_render_option: Option<String>,
}

fn body_response(include: bool, value: Option<&str>, date_time: Option<&str>) -> Result<ResponseValues, GoogleError> {
    let value = value
        .map(|text| {
            RenderOption::parse(text)
                .ok_or_else(|| enum_error("response_value_render_option", "ValueRenderOption", text))
        })
        .transpose()?;
    let date_time = date_time
        .map(|text| {
            DateTimeOption::parse(text)
                .ok_or_else(|| enum_error("response_date_time_render_option", "DateTimeRenderOption", text))
        })
        .transpose()?;
    Ok(ResponseValues { include, rendering: rendering(value, date_time) })
}

/// Totals of a batch of writes, as `BatchUpdateValuesResponse` sums them.
fn batch_totals(book: &Book<'_>, responses: Vec<Value>, sheets: &[usize]) -> Value {
    let total = |key: &str| responses.iter().filter_map(|r| r[key].as_u64()).sum::<u64>();
    let mut distinct: Vec<usize> = sheets.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    json!({
        "spreadsheetId": book.id(),
        "totalUpdatedRows": total("updatedRows"),
        "totalUpdatedColumns": total("updatedColumns"),
        "totalUpdatedCells": total("updatedCells"),
        "totalUpdatedSheets": distinct.len(),
        "responses": responses,
    })
}

/// `POST …/values:batchUpdate`, `…:batchClear` and the `…ByDataFilter` methods.
pub async fn collection_post(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    Path((id, verb)): Path<(String, String)>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> GoogleResult {
    let tenant = caller.tenant_id.clone();
    match verb.as_str() {
        "values:batchUpdate" => {
            let body: BatchUpdateBody = json_body(&body)?;
            let input = input_option(body.value_input_option.as_deref(), "value_input_option")?;
            let response = body_response(
                body.include_values_in_response,
                body.response_value_render_option.as_deref(),
                body.response_date_time_render_option.as_deref(),
            )?;
            let mut data = Vec::with_capacity(body.data.len());
            for (position, range) in body.data.into_iter().enumerate() {
                let target = range
                    .range
                    .ok_or_else(|| GoogleError::invalid(format!("Invalid data[{position}]: range is required")))?;
                let dimension =
                    dimension(range.major_dimension.as_deref(), &format!("data[{position}].major_dimension"))?;
                data.push((target, dimension, interpret_values(&range.values, input)?));
            }
            update_book(&sheets, &tenant, &id, move |book| {
                let (mut responses, mut sheets) = (Vec::new(), Vec::new());
                for (range, dimension, writes) in &data {
                    let (index, area) = book.resolve_within(range)?;
                    let answer = write_area(book, index, &area, writes, *dimension, response)?;
                    if answer["updatedCells"].as_u64() > Some(0) {
                        sheets.push(index);
                    }
                    responses.push(Value::Object(answer));
                }
                Ok(batch_totals(book, responses, &sheets))
            })
            .await
        }
        "values:batchUpdateByDataFilter" => {
            let body: BatchUpdateByDataFilterBody = json_body(&body)?;
            let input = input_option(body.value_input_option.as_deref(), "value_input_option")?;
            let response = body_response(
                body.include_values_in_response,
                body.response_value_render_option.as_deref(),
                body.response_date_time_render_option.as_deref(),
            )?;
            let mut data = Vec::with_capacity(body.data.len());
            for (position, range) in body.data.into_iter().enumerate() {
                let dimension =
                    dimension(range.major_dimension.as_deref(), &format!("data[{position}].major_dimension"))?;
                data.push((range.data_filter, dimension, interpret_values(&range.values, input)?));
            }
            update_book(&sheets, &tenant, &id, move |book| {
                let (mut responses, mut sheets) = (Vec::new(), Vec::new());
                for (position, (filter, dimension, writes)) in data.iter().enumerate() {
                    let Some((index, area)) = filter.area(book, &format!("data[{position}].data_filter"))? else {
                        continue;
                    };
                    let mut answer = write_area(book, index, &area, writes, *dimension, response)?;
                    if answer["updatedCells"].as_u64() > Some(0) {
                        sheets.push(index);
                    }
                    answer.remove("spreadsheetId");
                    answer.insert("dataFilter".into(), serde_json::to_value(filter).unwrap_or_default());
                    responses.push(Value::Object(answer));
                }
                Ok(batch_totals(book, responses, &sheets))
            })
            .await
        }
        "values:batchClear" => {
            let body: BatchClearBody = json_body(&body)?;
            update_book(&sheets, &tenant, &id, move |book| {
                let mut cleared = Vec::with_capacity(body.ranges.len());
                for range in &body.ranges {
                    let (index, area) = book.resolve_within(range)?;
                    let rect = book.clip(index, &area);
                    book.grid_mut(index)?.clear_values(rect);
                    cleared.push(book.range_name(index, rect));
                }
                Ok(json!({ "spreadsheetId": book.id(), "clearedRanges": cleared }))
            })
            .await
        }
        "values:batchClearByDataFilter" => {
            let body: DataFiltersBody = json_body(&body)?;
            update_book(&sheets, &tenant, &id, move |book| {
                let mut cleared = Vec::new();
                for (position, filter) in body.data_filters.iter().enumerate() {
                    if let Some((index, rect)) = filter.resolve(book, &format!("data_filters[{position}]"))? {
                        book.grid_mut(index)?.clear_values(rect);
                        cleared.push(book.range_name(index, rect));
                    }
                }
                Ok(json!({ "spreadsheetId": book.id(), "clearedRanges": cleared }))
            })
            .await
        }
        "values:batchGetByDataFilter" => {
            let body: DataFiltersBody = json_body(&body)?;
            let dimension = dimension(body.major_dimension.as_deref(), "major_dimension")?;
            let value = body
                .value_render_option
                .as_deref()
                .map(|text| {
                    RenderOption::parse(text)
                        .ok_or_else(|| enum_error("value_render_option", "ValueRenderOption", text))
                })
                .transpose()?;
            let date_time = body
                .date_time_render_option
                .as_deref()
                .map(|text| {
                    DateTimeOption::parse(text)
                        .ok_or_else(|| enum_error("date_time_render_option", "DateTimeRenderOption", text))
                })
                .transpose()?;
            let rendering = rendering(value, date_time);
            read_book(&sheets, &tenant, &id, move |book| {
                let mut value_ranges = Vec::new();
                for (position, filter) in body.data_filters.iter().enumerate() {
                    if let Some((index, rect)) = filter.resolve(book, &format!("data_filters[{position}]"))? {
                        let value_range = book.value_range(index, rect, dimension, rendering)?;
                        value_ranges.push(json!({ "valueRange": value_range, "dataFilters": [filter] }));
                    }
                }
                let mut answer = json!({ "spreadsheetId": book.id() });
                if !value_ranges.is_empty() {
                    answer["valueRanges"] = Value::Array(value_ranges);
                }
                Ok(answer)
            })
            .await
        }
        _ => Err(GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: POST {}", uri.path()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_range_bounds_are_exclusive_and_open_when_missing() {
        let range =
            GridRange { sheet_id: Some(3), start_row_index: Some(1), end_row_index: Some(3), ..Default::default() };
        let json = serde_json::to_value(&range).unwrap();
        assert_eq!(json, json!({ "sheetId": 3, "startRowIndex": 1, "endRowIndex": 3 }));
        let back: GridRange = serde_json::from_value(json).unwrap();
        assert_eq!(back, range);
    }

    #[test]
    fn input_option_is_required() {
        assert_eq!(
            input_option(None, "valueInputOption"),
            Err(GoogleError::invalid("'valueInputOption' is required but not specified"))
        );
        assert_eq!(input_option(Some("RAW"), "x"), Ok(InputOption::Raw));
        assert_eq!(input_option(Some("raw"), "value_input_option").unwrap_err().code, StatusCode::BAD_REQUEST);
    }
}
