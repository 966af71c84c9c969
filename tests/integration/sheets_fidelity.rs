//! The Sheets emulator against Google's documented behaviour: appends that find the table
//! below a bounded range, every `spreadsheets.values` method, `spreadsheets.batchUpdate`,
//! formulas, typed dates and currency, render options, grid data, `fields`, and Google's
//! errors and credentials under the emulator's prefix.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

const SHEETS: &str = "/api/v1/sheets/v4/spreadsheets";

/// Creates a spreadsheet with sheets of these titles; returns its id.
async fn create(server: &Server, titles: &[&str]) -> String {
    let sheets: Vec<Value> = titles.iter().map(|t| json!({ "properties": { "title": t } })).collect();
    let created = server.post(SHEETS, json!({ "properties": { "title": "Fidelity" }, "sheets": sheets })).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    created.body["spreadsheetId"].as_str().unwrap().to_owned()
}

fn values(id: &str, rest: &str) -> String {
    format!("{SHEETS}/{id}/values/{rest}")
}

fn google_error(code: u16, status: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message, "status": status } })
}

#[tokio::test]
async fn appends_to_a_bounded_range_land_after_the_whole_table() {
    let server = Server::start();
    for insert in ["OVERWRITE", "INSERT_ROWS"] {
        let id = create(&server, &["Events"]).await;
        let mut last = Value::Null;
        for row in ["r1", "r2", "r3", "r4"] {
            let append = values(&id, &format!("Events!A1:append?valueInputOption=RAW&insertDataOption={insert}"));
            last = server.post(&append, json!({ "values": [[row, 1]] })).await.body;
        }
        assert_eq!(last["tableRange"], "Events!A1:B3", "{insert}");
        assert_eq!(last["updates"]["updatedRange"], "Events!A4:B4", "{insert}");
        let read = server.get(&values(&id, "Events!A:A")).await;
        assert_eq!(read.body["values"], json!([["r1"], ["r2"], ["r3"], ["r4"]]), "{insert}");

        // A range naming only the header row finds the table too, and so does a cell in it.
        let append = values(&id, "Events!A1%3AB1:append?valueInputOption=RAW");
        let fifth = server.post(&append, json!({ "values": [["r5", 1]] })).await;
        assert_eq!(fifth.body["updates"]["updatedRange"], "Events!A5:B5", "{insert}");
    }
}

#[tokio::test]
async fn values_update_writes_from_the_top_left_of_its_range() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    let update = server
        .put(
            &values(&id, "Sheet1!B2:D3?valueInputOption=USER_ENTERED&includeValuesInResponse=true"),
            json!({ "range": "Sheet1!B2:D3", "majorDimension": "ROWS", "values": [["a", "1"], ["b", "=C2*2", true]] }),
        )
        .await;
    assert_eq!(update.status, 200, "{:?}", update.body);
    assert_eq!(
        update.body,
        json!({
            "spreadsheetId": id,
            "updatedRange": "Sheet1!B2:D3",
            "updatedRows": 2,
            "updatedColumns": 3,
            "updatedCells": 5,
            "updatedData": {
                "range": "Sheet1!B2:D3",
                "majorDimension": "ROWS",
                "values": [["a", "1"], ["b", "2", "TRUE"]]
            }
        })
    );

    // Values past a bounded range are refused, naming the row or column, and change nothing.
    let too_many_rows =
        server.put(&values(&id, "Sheet1!A1:B1?valueInputOption=RAW"), json!({ "values": [["x"], ["y"]] })).await;
    assert_eq!(
        (too_many_rows.status, too_many_rows.body),
        (
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "Requested writing within range ['Sheet1'!A1:B1], but tried writing to row [2]"
            )
        )
    );
    let too_wide =
        server.put(&values(&id, "Sheet1!A1:B1?valueInputOption=RAW"), json!({ "values": [["x", "y", "z"]] })).await;
    assert_eq!(
        too_wide.body["error"]["message"],
        "Requested writing within range ['Sheet1'!A1:B1], but tried writing to column [C]"
    );
    assert_eq!(server.get(&values(&id, "Sheet1!A1")).await.body.get("values"), None);

    // An open range takes any size; the body's range must be the URL's.
    let open =
        server.put(&values(&id, "Sheet1!F1?valueInputOption=RAW"), json!({ "values": [[1, 2, 3], [4, 5, 6]] })).await;
    assert_eq!(open.body["updatedRange"], "Sheet1!F1:H2");
    let mismatch = server
        .put(&values(&id, "Sheet1!A1?valueInputOption=RAW"), json!({ "range": "Sheet1!B1", "values": [["x"]] }))
        .await;
    assert_eq!(mismatch.status, 400, "{:?}", mismatch.body);
}

#[tokio::test]
async fn values_clear_empties_values_and_answers_the_cleared_range() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    server
        .put(&values(&id, "Sheet1!A1?valueInputOption=USER_ENTERED"), json!({ "values": [["$5", "x"], ["y", "z"]] }))
        .await;
    let cleared = server.post(&values(&id, "Sheet1!A1:A2:clear"), json!({})).await;
    assert_eq!(cleared.body, json!({ "spreadsheetId": id, "clearedRange": "Sheet1!A1:A2" }));
    let read = server.get(&values(&id, "Sheet1")).await;
    assert_eq!(read.body["values"], json!([["", "x"], ["", "z"]]));
    // The format stays: a number typed into A1 again shows as currency.
    server.put(&values(&id, "Sheet1!A1?valueInputOption=RAW"), json!({ "values": [[7]] })).await;
    assert_eq!(server.get(&values(&id, "Sheet1!A1")).await.body["values"], json!([["$7"]]));
}

#[tokio::test]
async fn batch_get_answers_each_range_in_order() {
    let server = Server::start();
    let id = create(&server, &["Sheet1", "Other"]).await;
    server.put(&values(&id, "Sheet1!A1?valueInputOption=RAW"), json!({ "values": [[1, 2], [3, 4]] })).await;
    server.put(&values(&id, "Other!A1?valueInputOption=RAW"), json!({ "values": [["o"]] })).await;
    let batch = server
        .get(&format!(
            "{SHEETS}/{id}/values:batchGet?ranges=Sheet1!A1%3AB2&ranges=Other!A1&ranges=Sheet1!A:A&majorDimension=COLUMNS&valueRenderOption=UNFORMATTED_VALUE"
        ))
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    assert_eq!(
        batch.body,
        json!({
            "spreadsheetId": id,
            "valueRanges": [
                { "range": "Sheet1!A1:B2", "majorDimension": "COLUMNS", "values": [[1, 3], [2, 4]] },
                { "range": "Other!A1", "majorDimension": "COLUMNS", "values": [["o"]] },
                { "range": "Sheet1!A1:A1000", "majorDimension": "COLUMNS", "values": [[1, 3]] }
            ]
        })
    );
    let bad = server.get(&format!("{SHEETS}/{id}/values:batchGet?ranges=Nope!A1")).await;
    assert_eq!(bad.body, google_error(400, "INVALID_ARGUMENT", "Unable to parse range: Nope!A1"));
}

#[tokio::test]
async fn batch_update_writes_every_range_and_totals_them() {
    let server = Server::start();
    let id = create(&server, &["Sheet1", "Other"]).await;
    let batch = server
        .post(
            &format!("{SHEETS}/{id}/values:batchUpdate"),
            json!({
                "valueInputOption": "USER_ENTERED",
                "data": [
                    { "range": "Sheet1!A1", "values": [["1", "2"], ["3"]] },
                    { "range": "Other!B2", "majorDimension": "COLUMNS", "values": [["x", "y"]] }
                ],
                "includeValuesInResponse": true,
                "responseValueRenderOption": "UNFORMATTED_VALUE"
            }),
        )
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    assert_eq!(
        batch.body,
        json!({
            "spreadsheetId": id,
            "totalUpdatedRows": 4,
            "totalUpdatedColumns": 3,
            "totalUpdatedCells": 5,
            "totalUpdatedSheets": 2,
            "responses": [
                { "spreadsheetId": id, "updatedRange": "Sheet1!A1:B2", "updatedRows": 2, "updatedColumns": 2, "updatedCells": 3,
                  "updatedData": { "range": "Sheet1!A1:B2", "majorDimension": "ROWS", "values": [[1, 2], [3]] } },
                { "spreadsheetId": id, "updatedRange": "Other!B2:B3", "updatedRows": 2, "updatedColumns": 1, "updatedCells": 2,
                  "updatedData": { "range": "Other!B2:B3", "majorDimension": "ROWS", "values": [["x"], ["y"]] } }
            ]
        })
    );

    // One bad range refuses the whole batch: the first range is not written either.
    let refused = server
        .post(
            &format!("{SHEETS}/{id}/values:batchUpdate"),
            json!({ "valueInputOption": "RAW", "data": [
                { "range": "Sheet1!D1", "values": [["kept?"]] },
                { "range": "Nope!A1", "values": [["x"]] }
            ] }),
        )
        .await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(server.get(&values(&id, "Sheet1!D1")).await.body.get("values"), None);
    let no_option = server.post(&format!("{SHEETS}/{id}/values:batchUpdate"), json!({ "data": [] })).await;
    assert_eq!(no_option.body["error"]["message"], "'value_input_option' is required but not specified");
}

#[tokio::test]
async fn batch_clear_empties_every_range() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    server.put(&values(&id, "Sheet1!A1?valueInputOption=RAW"), json!({ "values": [[1, 2, 3], [4, 5, 6]] })).await;
    let cleared = server
        .post(&format!("{SHEETS}/{id}/values:batchClear"), json!({ "ranges": ["Sheet1!A1", "Sheet1!C:C"] }))
        .await;
    assert_eq!(cleared.body, json!({ "spreadsheetId": id, "clearedRanges": ["Sheet1!A1", "Sheet1!C1:C1000"] }));
    let read = server.get(&values(&id, "Sheet1?valueRenderOption=UNFORMATTED_VALUE")).await;
    assert_eq!(read.body["values"], json!([["", 2], [4, 5]]));
}

#[tokio::test]
async fn by_data_filter_methods_select_with_a1_and_grid_ranges() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    let grid_range = json!({ "gridRange": { "sheetId": 0, "startRowIndex": 1, "endRowIndex": 2, "startColumnIndex": 0, "endColumnIndex": 2 } });
    let update = server
        .post(
            &format!("{SHEETS}/{id}/values:batchUpdateByDataFilter"),
            json!({ "valueInputOption": "RAW", "data": [
                { "dataFilter": { "a1Range": "Sheet1!A1" }, "values": [["head", "er"]] },
                { "dataFilter": grid_range, "values": [[1, 2]] }
            ] }),
        )
        .await;
    assert_eq!(update.status, 200, "{:?}", update.body);
    assert_eq!(update.body["totalUpdatedCells"], 4);
    assert_eq!(update.body["responses"][1]["dataFilter"], grid_range);
    assert_eq!(update.body["responses"][1]["updatedRange"], "Sheet1!A2:B2");

    let get = server
        .post(
            &format!("{SHEETS}/{id}/values:batchGetByDataFilter"),
            json!({ "dataFilters": [grid_range, { "a1Range": "Sheet1!A1:B1" }], "valueRenderOption": "UNFORMATTED_VALUE" }),
        )
        .await;
    assert_eq!(
        get.body,
        json!({ "spreadsheetId": id, "valueRanges": [
            { "valueRange": { "range": "Sheet1!A2:B2", "majorDimension": "ROWS", "values": [[1, 2]] }, "dataFilters": [grid_range] },
            { "valueRange": { "range": "Sheet1!A1:B1", "majorDimension": "ROWS", "values": [["head", "er"]] },
              "dataFilters": [{ "a1Range": "Sheet1!A1:B1" }] }
        ] })
    );

    let clear = server
        .post(&format!("{SHEETS}/{id}/values:batchClearByDataFilter"), json!({ "dataFilters": [grid_range] }))
        .await;
    assert_eq!(clear.body, json!({ "spreadsheetId": id, "clearedRanges": ["Sheet1!A2:B2"] }));
    let metadata = server
        .post(
            &format!("{SHEETS}/{id}/values:batchGetByDataFilter"),
            json!({ "dataFilters": [{ "developerMetadataLookup": { "metadataKey": "k" } }] }),
        )
        .await;
    assert_eq!(metadata.status, 400, "{:?}", metadata.body);
}

#[tokio::test]
async fn user_entered_formulas_are_computed_and_dates_and_currency_become_numbers() {
    let server = Server::start();
    let id = create(&server, &["Sheet1", "Rates"]).await;
    server.put(&values(&id, "Rates!A1?valueInputOption=RAW"), json!({ "values": [[0.5]] })).await;
    let row = json!([["=1+1", "2024-03-04", "$1,000", "=C1*Rates!A1", "=1/0", "=NOPE(1)", "=Gone!A1", "12%", "=B1+1"]]);
    let written = server.put(&values(&id, "Sheet1!A1?valueInputOption=USER_ENTERED"), json!({ "values": row })).await;
    assert_eq!(written.status, 200, "{:?}", written.body);

    let read = |option: &'static str| {
        let server = &server;
        let id = id.clone();
        async move { server.get(&values(&id, &format!("Sheet1!A1:I1?{option}"))).await.body["values"][0].clone() }
    };
    assert_eq!(
        read("valueRenderOption=FORMATTED_VALUE").await,
        json!(["2", "2024-03-04", "$1,000", "$500", "#DIV/0!", "#NAME?", "#REF!", "12%", "2024-03-05"])
    );
    assert_eq!(
        read("valueRenderOption=UNFORMATTED_VALUE").await,
        json!([2, 45355, 1000, 500, "#DIV/0!", "#NAME?", "#REF!", 0.12, 45356])
    );
    assert_eq!(
        read("valueRenderOption=UNFORMATTED_VALUE&dateTimeRenderOption=FORMATTED_STRING").await,
        json!([2, "2024-03-04", 1000, 500, "#DIV/0!", "#NAME?", "#REF!", 0.12, "2024-03-05"])
    );
    assert_eq!(
        read("valueRenderOption=FORMULA").await,
        json!(["=1+1", 45355, 1000, "=C1*Rates!A1", "=1/0", "=NOPE(1)", "=Gone!A1", 0.12, "=B1+1"])
    );
    // RAW keeps every one of them as text.
    server.put(&values(&id, "Sheet1!A2?valueInputOption=RAW"), json!({ "values": row })).await;
    let raw = server.get(&values(&id, "Sheet1!A2:I2?valueRenderOption=UNFORMATTED_VALUE")).await;
    assert_eq!(raw.body["values"], row);
}

#[tokio::test]
async fn formulas_follow_the_cells_they_read() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    server
        .put(
            &values(&id, "Sheet1!D1?valueInputOption=USER_ENTERED"),
            json!({ "values": [["=SUM(A:A)", "=COUNTA(A:A)", "=AVERAGE(A:A)", "=IF(D1>10,\"big\",\"small\")", "=CONCATENATE(\"n=\",E1)&\"!\"", "=ROUND(F1,1)", "=MAX(A:A)-MIN(A:A)", "=COUNT(A:A)"]] }),
        )
        .await;
    let row = |id: String| {
        let server = &server;
        async move {
            server.get(&values(&id, "Sheet1!D1:K1?valueRenderOption=UNFORMATTED_VALUE")).await.body["values"][0].clone()
        }
    };
    assert_eq!(row(id.clone()).await, json!([0, 0, "#DIV/0!", "small", "n=0!", "#DIV/0!", 0, 0]));
    for n in [json!(4), json!(8), json!(0.25)] {
        server.post(&values(&id, "Sheet1!A:A:append?valueInputOption=RAW"), json!({ "values": [[n]] })).await;
    }
    assert_eq!(row(id).await, json!([12.25, 3, 4.083_333_333_333_333, "big", "n=3!", 4.1, 7.75, 3]));
}

#[tokio::test]
async fn today_and_now_are_dates() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    server
        .put(&values(&id, "Sheet1!A1?valueInputOption=USER_ENTERED"), json!({ "values": [["=TODAY()", "=NOW()"]] }))
        .await;
    let read = server.get(&values(&id, "Sheet1!A1:B1?valueRenderOption=UNFORMATTED_VALUE")).await;
    let days = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400 + 25_569;
    let (today, now) = (read.body["values"][0][0].as_f64().unwrap(), read.body["values"][0][1].as_f64().unwrap());
    assert_eq!(today, days as f64);
    assert!(now >= today && now < today + 1.0, "{now}");
    let shown = server.get(&values(&id, "Sheet1!A1")).await;
    let text = shown.body["values"][0][0].as_str().unwrap().to_owned();
    assert_eq!(text.split('/').count(), 3, "TODAY() shows as a date, got {text}");
}

#[tokio::test]
async fn batch_update_adds_renames_and_deletes_sheets() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    let batch = server
        .post(
            &format!("{SHEETS}/{id}:batchUpdate"),
            json!({ "requests": [
                { "addSheet": { "properties": { "title": "Data", "sheetId": 42, "gridProperties": { "rowCount": 10, "columnCount": 3, "frozenRowCount": 1 }, "tabColor": { "red": 1 } } } },
                { "addSheet": {} },
                { "updateSheetProperties": { "properties": { "sheetId": 0, "title": "Summary", "index": 2 }, "fields": "title,index" } }
            ], "includeSpreadsheetInResponse": true }),
        )
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    assert_eq!(
        batch.body["replies"][0],
        json!({ "addSheet": { "properties": {
            "sheetId": 42, "title": "Data", "index": 1, "sheetType": "GRID",
            "gridProperties": { "rowCount": 10, "columnCount": 3, "frozenRowCount": 1 }, "tabColor": { "red": 1 }
        } } })
    );
    assert_eq!(batch.body["replies"][1]["addSheet"]["properties"]["title"], "Sheet3");
    assert_eq!(batch.body["replies"][2], json!({}));
    let titles: Vec<&str> = batch.body["updatedSpreadsheet"]["sheets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["properties"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Data", "Sheet3", "Summary"]);

    // Kept properties survive the round trip through storage.
    let got = server.get(&format!("{SHEETS}/{id}?fields=sheets.properties(title,gridProperties,tabColor)")).await;
    assert_eq!(
        got.body["sheets"][0],
        json!({ "properties": { "title": "Data", "gridProperties": { "rowCount": 10, "columnCount": 3, "frozenRowCount": 1 }, "tabColor": { "red": 1 } } })
    );

    // All or nothing: the second request fails, so the first (deleting Data) is not kept.
    let refused = server
        .post(
            &format!("{SHEETS}/{id}:batchUpdate"),
            json!({ "requests": [
                { "deleteSheet": { "sheetId": 42 } },
                { "updateSheetProperties": { "properties": { "sheetId": 0, "title": "sheet3" }, "fields": "title" } }
            ] }),
        )
        .await;
    assert_eq!(
        refused.body,
        google_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid requests[1].updateSheetProperties: A sheet with the name \"sheet3\" already exists. Please enter another name."
        )
    );
    assert_eq!(server.get(&format!("{SHEETS}/{id}")).await.body["sheets"].as_array().unwrap().len(), 3);

    for sheet_id in [42, 0] {
        let sheet_ids = server.get(&format!("{SHEETS}/{id}?fields=sheets.properties.sheetId")).await;
        let remaining: Vec<i64> = sheet_ids.body["sheets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["properties"]["sheetId"].as_i64().unwrap())
            .collect();
        assert!(remaining.contains(&sheet_id));
        let deleted = server
            .post(
                &format!("{SHEETS}/{id}:batchUpdate"),
                json!({ "requests": [{ "deleteSheet": { "sheetId": sheet_id } }] }),
            )
            .await;
        assert_eq!(deleted.status, 200, "{:?}", deleted.body);
    }
    let last = server.get(&format!("{SHEETS}/{id}?fields=sheets.properties.sheetId")).await;
    let last_id = last.body["sheets"][0]["properties"]["sheetId"].as_i64().unwrap();
    let refused = server
        .post(&format!("{SHEETS}/{id}:batchUpdate"), json!({ "requests": [{ "deleteSheet": { "sheetId": last_id } }] }))
        .await;
    assert_eq!(
        refused.body["error"]["message"],
        "Invalid requests[0].deleteSheet: You can't remove all the sheets in a document."
    );
    let unsupported =
        server.post(&format!("{SHEETS}/{id}:batchUpdate"), json!({ "requests": [{ "mergeCells": {} }] })).await;
    assert_eq!(unsupported.status, 501, "{:?}", unsupported.body);
    assert_eq!(unsupported.body["error"]["status"], "UNIMPLEMENTED");
}

#[tokio::test]
async fn batch_update_edits_cells_and_dimensions() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    let batch = server
        .post(
            &format!("{SHEETS}/{id}:batchUpdate"),
            json!({ "requests": [
                { "appendCells": { "sheetId": 0, "fields": "userEnteredValue", "rows": [
                    { "values": [{ "userEnteredValue": { "stringValue": "when" } }, { "userEnteredValue": { "stringValue": "amount" } }] },
                    { "values": [{ "userEnteredValue": { "numberValue": 45355 } }, { "userEnteredValue": { "numberValue": 1500 } }] }
                ] } },
                { "appendCells": { "sheetId": 0, "fields": "*", "rows": [
                    { "values": [{ "userEnteredValue": { "numberValue": 45356 } }, { "userEnteredValue": { "formulaValue": "=B2*2" } }] }
                ] } },
                { "repeatCell": {
                    "range": { "sheetId": 0, "startRowIndex": 1, "endRowIndex": 3, "startColumnIndex": 0, "endColumnIndex": 1 },
                    "cell": { "userEnteredFormat": { "numberFormat": { "type": "DATE", "pattern": "yyyy-mm-dd" }, "textFormat": { "bold": true } } },
                    "fields": "userEnteredFormat(numberFormat,textFormat)"
                } },
                { "repeatCell": {
                    "range": { "sheetId": 0, "startRowIndex": 1, "startColumnIndex": 1, "endColumnIndex": 2 },
                    "cell": { "userEnteredFormat": { "numberFormat": { "type": "CURRENCY", "pattern": "\"$\"#,##0.00" } } },
                    "fields": "userEnteredFormat.numberFormat"
                } },
                { "insertDimension": { "range": { "sheetId": 0, "dimension": "ROWS", "startIndex": 1, "endIndex": 2 } } },
                { "updateCells": { "start": { "sheetId": 0, "rowIndex": 1, "columnIndex": 0 }, "fields": "userEnteredValue",
                    "rows": [{ "values": [{ "userEnteredValue": { "stringValue": "(inserted)" } }] }] } },
                { "insertDimension": { "range": { "sheetId": 0, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 1 } } },
                { "deleteDimension": { "range": { "sheetId": 0, "dimension": "COLUMNS", "startIndex": 0, "endIndex": 1 } } }
            ] }),
        )
        .await;
    assert_eq!(batch.status, 200, "{:?}", batch.body);
    assert_eq!(batch.body, json!({ "spreadsheetId": id, "replies": [{}, {}, {}, {}, {}, {}, {}, {}] }));
    let read = server.get(&values(&id, "Sheet1")).await;
    // The formula still reads B2 (formulas are not rewritten when rows move): now the
    // inserted row's empty B2.
    assert_eq!(
        read.body["values"],
        json!([["when", "amount"], ["(inserted)"], ["2024-03-04", "$1,500.00"], ["2024-03-05", "$0.00"]])
    );
    let spreadsheet = server.get(&format!("{SHEETS}/{id}")).await;
    assert_eq!(
        spreadsheet.body["sheets"][0]["properties"]["gridProperties"],
        json!({ "rowCount": 1001, "columnCount": 26 })
    );

    // The format is kept and returned as given, with the value it shows.
    let grid = server.get(&format!("{SHEETS}/{id}?ranges=Sheet1!A3%3AB3&includeGridData=true")).await;
    assert_eq!(grid.status, 200, "{:?}", grid.body);
    assert_eq!(
        grid.body["sheets"][0]["data"],
        json!([{
            "startRow": 2,
            "rowData": [{ "values": [
                {
                    "userEnteredValue": { "numberValue": 45355 },
                    "effectiveValue": { "numberValue": 45355 },
                    "formattedValue": "2024-03-04",
                    "userEnteredFormat": { "numberFormat": { "type": "DATE", "pattern": "yyyy-mm-dd" }, "textFormat": { "bold": true } },
                    "effectiveFormat": { "numberFormat": { "type": "DATE", "pattern": "yyyy-mm-dd" }, "textFormat": { "bold": true } }
                },
                {
                    "userEnteredValue": { "numberValue": 1500 },
                    "effectiveValue": { "numberValue": 1500 },
                    "formattedValue": "$1,500.00",
                    "userEnteredFormat": { "numberFormat": { "type": "CURRENCY", "pattern": "\"$\"#,##0.00" } },
                    "effectiveFormat": { "numberFormat": { "type": "CURRENCY", "pattern": "\"$\"#,##0.00" } }
                }
            ] }],
            "rowMetadata": [{ "pixelSize": 21 }],
            "columnMetadata": [{ "pixelSize": 100 }, { "pixelSize": 100 }]
        }])
    );

    let bad_delete = server
        .post(
            &format!("{SHEETS}/{id}:batchUpdate"),
            json!({ "requests": [{ "deleteDimension": { "range": { "sheetId": 0, "dimension": "ROWS", "startIndex": 0, "endIndex": 5000 } } }] }),
        )
        .await;
    assert_eq!(
        bad_delete.body["error"]["message"],
        "Invalid requests[0].deleteDimension: You can't delete all the rows in the sheet."
    );
}

#[tokio::test]
async fn get_honours_include_grid_data_ranges_and_fields() {
    let server = Server::start();
    let id = create(&server, &["Sheet1", "Other"]).await;
    server.put(&values(&id, "Sheet1!A1?valueInputOption=USER_ENTERED"), json!({ "values": [["x", "=1/0"]] })).await;

    let plain = server.get(&format!("{SHEETS}/{id}")).await;
    assert!(plain.body["sheets"][0].get("data").is_none(), "{:?}", plain.body);

    let only = server
        .get(&format!(
            "{SHEETS}/{id}?ranges=Sheet1!A1%3AB1&includeGridData=true&fields=sheets(properties.title,data.rowData)"
        ))
        .await;
    assert_eq!(
        only.body,
        json!({ "sheets": [{ "properties": { "title": "Sheet1" }, "data": [{ "rowData": [{ "values": [
            { "userEnteredValue": { "stringValue": "x" }, "effectiveValue": { "stringValue": "x" }, "formattedValue": "x" },
            { "userEnteredValue": { "formulaValue": "=1/0" },
              "effectiveValue": { "errorValue": { "type": "DIVIDE_BY_ZERO", "message": "Function DIVIDE parameter 2 cannot be zero." } },
              "formattedValue": "#DIV/0!" }
        ] }] }] }] })
    );
    // A mask naming sheets.data asks for grid data by itself, as with Google.
    let by_mask = server.get(&format!("{SHEETS}/{id}?ranges=Other!A1&fields=sheets.data.rowMetadata")).await;
    assert_eq!(by_mask.body, json!({ "sheets": [{ "data": [{ "rowMetadata": [{ "pixelSize": 21 }] }] }] }));
    let masked = server.get(&format!("{SHEETS}/{id}?fields=spreadsheetId,properties/title")).await;
    assert_eq!(masked.body, json!({ "spreadsheetId": id, "properties": { "title": "Fidelity" } }));
    let values_masked = server.get(&values(&id, "Sheet1!A1?fields=range")).await;
    assert_eq!(values_masked.body, json!({ "range": "Sheet1!A1" }));
    let bad_mask = server.get(&format!("{SHEETS}/{id}?fields=sheets(")).await;
    assert_eq!(bad_mask.body, google_error(400, "INVALID_ARGUMENT", "Invalid field selection sheets("));
    let by_filter = server
        .post(&format!("{SHEETS}/{id}:getByDataFilter"), json!({ "dataFilters": [{ "a1Range": "Other!A1" }] }))
        .await;
    assert_eq!(by_filter.body["sheets"].as_array().unwrap().len(), 1);
    assert_eq!(by_filter.body["sheets"][0]["properties"]["title"], "Other");
}

#[tokio::test]
async fn errors_under_the_emulator_prefix_are_googles() {
    let server = Server::start();
    let id = create(&server, &["Sheet1"]).await;
    let unknown = server.get(&format!("{SHEETS}/{id}/nothing/here")).await;
    assert_eq!(unknown.status, 404);
    assert_shape(&unknown.body, &json!({ "error": { "code": 404, "message": "<string>", "status": "NOT_FOUND" } }));
    let verb = server.post(&format!("{SHEETS}/{id}:explode"), json!({})).await;
    assert_eq!(verb.body["error"]["status"], "NOT_FOUND");
    let wrong_method = server.delete(&format!("{SHEETS}/{id}")).await;
    assert_eq!(wrong_method.status, 404);
    assert_eq!(
        wrong_method.body,
        google_error(404, "NOT_FOUND", &format!("Method not found: DELETE /api/v1/sheets/v4/spreadsheets/{id}"))
    );
    let bad_json = server.send_raw(Method::POST, SHEETS, b"{nope".to_vec()).await;
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.body["error"]["message"].as_str().unwrap().starts_with("Invalid JSON payload received."));
    let bad_enum = server.get(&values(&id, "A1?valueRenderOption=PRETTY")).await;
    assert_eq!(
        bad_enum.body["error"]["message"],
        "Invalid value at 'value_render_option' (type.googleapis.com/google.apps.sheets.v4.ValueRenderOption), \"PRETTY\""
    );
    // Outside the emulator, Stage's own envelope as before.
    let elsewhere = server.get("/api/v1/nothing").await;
    assert_eq!(elsewhere.body["success"], false);
}

#[tokio::test]
async fn the_emulator_takes_stage_keys_the_way_google_clients_send_them() {
    let server = Server::start_with(&["--auth", "required"]);
    let key = server.admin_key();
    let bearer = format!("Bearer {key}");
    let created = server.send(Method::POST, SHEETS, Some(json!({})), Some(&bearer)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["spreadsheetId"].as_str().unwrap().to_owned();
    let resource = format!("{SHEETS}/{id}");

    let by_query = server.get(&format!("{resource}?key={key}&alt=json&prettyPrint=false")).await;
    assert_eq!(by_query.status, 200, "{:?}", by_query.body);
    let by_header = server.send_with(Method::GET, &resource, Value::Null, &[("x-goog-api-key", &key)]).await;
    assert_eq!(by_header.status, 200, "{:?}", by_header.body);

    let none = server.get(&resource).await;
    assert_eq!(none.status, 401);
    assert_shape(&none.body, &json!({ "error": { "code": 401, "message": "<string>", "status": "UNAUTHENTICATED" } }));
    let message = none.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("Request had invalid authentication credentials"), "{message}");
    assert!(message.contains("?key=<key>"), "{message}");
    for wrong in [
        server.send(Method::GET, &resource, None, Some("Bearer ya29.a-google-token")).await,
        server.get(&format!("{resource}?key=AIzaNotAStageKey")).await,
        server.get(&format!("{SHEETS}/{id}/no/such/route")).await,
    ] {
        assert_eq!(wrong.status, 401, "{:?}", wrong.body);
        assert_eq!(wrong.body["error"]["status"], "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn spreadsheet_url_points_at_the_emulator() {
    let server = Server::start();
    let created = server.post(SHEETS, json!({})).await;
    let id = created.body["spreadsheetId"].as_str().unwrap();
    let url = created.body["spreadsheetUrl"].as_str().unwrap();
    assert_eq!(url, server.url(&format!("{SHEETS}/{id}")));
    let fetched = reqwest::get(url).await.unwrap();
    assert_eq!(fetched.status(), 200);
}

/// Runs `program` with `args`; its output when it succeeds, else why not.
fn run(program: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{} could not start: {e}", program.display()))?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("{} {args:?} failed ({}):\n{text}", program.display(), output.status))
    }
}

/// Google's own Python client (`google-api-python-client`, static discovery, pointed at the
/// emulator with the README's recipe) drives every values method, batchUpdate, get with grid
/// data and fields, and the errors it shows (`sheets_client.py`). Needs python3 with venv
/// and PyPI; without them the test says why and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_works_against_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let python3 = std::path::Path::new("python3");
    if let Err(why) = run(python3, &["-m", "venv", venv.to_str().unwrap()]) {
        eprintln!("SKIPPED googles_python_client_works_against_the_emulator: no python3 with venv here: {why}");
        return;
    }
    let pip = venv.join("bin/pip");
    let install = ["install", "--quiet", "--disable-pip-version-check", "google-api-python-client"];
    if let Err(why) = run(&pip, &install) {
        eprintln!("SKIPPED googles_python_client_works_against_the_emulator: pip could not install the client: {why}");
        return;
    }
    let script = dir.path().join("sheets_client.py");
    std::fs::write(&script, include_str!("sheets_client.py")).unwrap();

    let server = Server::start_with(&["--auth", "required"]);
    let output = run(&venv.join("bin/python"), &[script.to_str().unwrap(), &server.base, &server.admin_key()])
        .unwrap_or_else(|failure| panic!("the Python client failed against the emulator:\n{failure}"));
    assert!(output.trim_end().ends_with("ALL OK"), "{output}");
    assert!(output.contains("ok append tableRange"), "{output}");
}
