//! `sheets.getValues`: reads a range with Google's `values.get`
//! (`GET …/v4/spreadsheets/{id}/values/{range}`), optionally with `majorDimension` and
//! `valueRenderOption`. The output is Google's ValueRange (`range`, `majorDimension`,
//! `values`; formatted values are strings).

use stage_guest_sdk::google::{google_json, path_segment};
use stage_guest_sdk::http::Request;
use stage_guest_sdk::{StepContext, StepError, Value, required_str, step};

fn get(_ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let spreadsheet_id = required_str(&input, "spreadsheetId")?;
    let range = required_str(&input, "range")?;
    let mut query = Vec::new();
    for field in ["majorDimension", "valueRenderOption"] {
        if input.get(field).is_some_and(|v| !v.is_null()) {
            query.push(format!("{field}={}", path_segment(required_str(&input, field)?)));
        }
    }
    let mut url = format!(
        "https://sheets.googleapis.com/v4/spreadsheets/{}/values/{}",
        path_segment(spreadsheet_id),
        path_segment(range)
    );
    if !query.is_empty() {
        url = format!("{url}?{}", query.join("&"));
    }
    google_json(&Request::get(&url).send()?, "Google Sheets")
}

step!(get);
