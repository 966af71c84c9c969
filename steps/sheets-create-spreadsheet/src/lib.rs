//! `sheets.createSpreadsheet`: creates a spreadsheet with Google's `spreadsheets.create`
//! (`POST https://sheets.googleapis.com/v4/spreadsheets`). `sheets` lists sheet titles (or
//! Google's sheet objects). The output is Google's Spreadsheet JSON.

use stage_guest_sdk::google::google_json;
use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, json, required_str, step};

fn create(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let mut properties = json!({ "title": required_str(&input, "title")? });
    for field in ["locale", "timeZone"] {
        if let Some(value) = input.get(field).filter(|v| !v.is_null()) {
            properties[field] = value.clone();
        }
    }
    let mut spreadsheet = json!({ "properties": properties });
    match input.get("sheets") {
        None | Some(Value::Null) => {}
        Some(Value::Array(sheets)) => {
            let sheets = sheets
                .iter()
                .enumerate()
                .map(|(index, sheet)| match sheet {
                    Value::String(title) => Ok(json!({ "properties": { "title": title } })),
                    Value::Object(_) => Ok(sheet.clone()),
                    other => Err(StepError::InvalidInput(format!(
                        "`sheets[{index}]` must be a sheet title or a sheet object, got {other}"
                    ))),
                })
                .collect::<Result<Vec<Value>, StepError>>()?;
            spreadsheet["sheets"] = Value::Array(sheets);
        }
        Some(other) => {
            return Err(StepError::InvalidInput(format!("`sheets` must be a list of sheet titles, got {other}")));
        }
    }
    let answer = Request::post("https://sheets.googleapis.com/v4/spreadsheets").json(&spreadsheet).send()?;
    google_json(&answer, "Google Sheets")
}

step!(create);
