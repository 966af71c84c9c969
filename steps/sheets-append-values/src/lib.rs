//! `sheets.appendValues`: appends rows after the table found in a range with Google's
//! `values.append` (`POST …/v4/spreadsheets/{id}/values/{range}:append`). The range is
//! URL-encoded into the path; `valueInputOption` defaults to `USER_ENTERED`. The output is
//! Google's AppendValuesResponse (`tableRange`, `updates{updatedRange,…}`).

use stage_guest_sdk::google::{google_json, path_segment};
use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, json, required_str, step};

fn append(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let spreadsheet_id = required_str(&input, "spreadsheetId")?;
    let range = required_str(&input, "range")?;
    let values = match input.get("values") {
        Some(Value::Array(rows)) => {
            if let Some(index) = rows.iter().position(|row| !row.is_array()) {
                return Err(StepError::InvalidInput(format!(
                    "`values[{index}]` must be a list of cell values, got {}",
                    rows[index]
                )));
            }
            rows
        }
        Some(other) => return Err(StepError::InvalidInput(format!("`values` must be a list of rows, got {other}"))),
        None => return Err(StepError::InvalidInput("`values` is required".into())),
    };
    let mut query =
        format!("valueInputOption={}", path_segment(option(&input, "valueInputOption")?.unwrap_or("USER_ENTERED")));
    if let Some(insert) = option(&input, "insertDataOption")? {
        query.push_str(&format!("&insertDataOption={}", path_segment(insert)));
    }
    match input.get("includeValuesInResponse") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(include)) => query.push_str(&format!("&includeValuesInResponse={include}")),
        Some(other) => {
            return Err(StepError::InvalidInput(format!(
                "`includeValuesInResponse` must be true or false, got {other}"
            )));
        }
    }
    let body = json!({
        "range": range,
        "majorDimension": option(&input, "majorDimension")?.unwrap_or("ROWS"),
        "values": values,
    });
    let url = format!(
        "https://sheets.googleapis.com/v4/spreadsheets/{}/values/{}:append?{query}",
        path_segment(spreadsheet_id),
        path_segment(range)
    );
    google_json(&Request::post(&url).json(&body).send()?, "Google Sheets")
}

/// An optional string field (Google validates the value itself).
fn option<'a>(input: &'a Value, field: &str) -> Result<Option<&'a str>, StepError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_str(input, field).map(Some),
    }
}

step!(append);
