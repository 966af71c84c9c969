//! Attacks through the Sheets emulator's formulas and typed values (hardening): a formula
//! is tenant code. It may recurse without end, build strings of gigabytes, or loop for
//! hours; typed text may nest parentheses twenty-five thousand deep; one small request may
//! ask for a value repeated over every cell of a sheet. Each attack ends at a bound — its
//! formula cells show `#ERROR!`, or its request is refused whole with a 400 naming the
//! limit — and leaves the server alive and small and every other tenant answered as
//! before: formulas run in the formula sandbox, outside the store's writer.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Server;

const SHEETS: &str = "/api/v1/sheets/v4/spreadsheets";

/// Far above the server's idle footprint, far below what the attacks took in the host (a
/// crash, or gigabytes).
const RSS_BOUND: u64 = 600 * 1024 * 1024;

async fn create(server: &Server, auth: Option<&str>) -> String {
    let created = server.send(Method::POST, SHEETS, Some(json!({ "properties": { "title": "Attack" } })), auth).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    created.body["spreadsheetId"].as_str().unwrap().to_owned()
}

/// Writes `rows` to `range` as a user types them.
async fn type_in(server: &Server, auth: Option<&str>, id: &str, range: &str, rows: Value) {
    let path = format!("{SHEETS}/{id}/values/{range}?valueInputOption=USER_ENTERED");
    let written = server.send(Method::PUT, &path, Some(json!({ "values": rows })), auth).await;
    assert_eq!(written.status, 200, "{:?}", written.body);
}

async fn read(server: &Server, auth: Option<&str>, id: &str, range: &str) -> crate::common::Answer {
    server.send(Method::GET, &format!("{SHEETS}/{id}/values/{range}"), None, auth).await
}

/// What `range` shows, as a 200 answer's values.
async fn shown(server: &Server, auth: Option<&str>, id: &str, range: &str) -> Value {
    let answer = read(server, auth, id, range).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    answer.body["values"].clone()
}

/// The server still evaluates an honest spreadsheet.
async fn assert_formulas_still_work(server: &Server, auth: Option<&str>) {
    let id = create(server, auth).await;
    type_in(server, auth, &id, "A1", json!([[2, 3, "=A1*B1", "=SUM(A1:C1)"]])).await;
    assert_eq!(shown(server, auth, &id, "A1:D1").await, json!([["2", "3", "6", "11"]]));
}

#[tokio::test]
async fn formulas_nested_past_any_stack_show_error_and_the_server_lives() {
    let server = Server::start();
    let id = create(&server, None).await;
    // As deep as a cell's 50,000 characters allow.
    let deep = format!("={}1{}", "(".repeat(24_999), ")".repeat(24_999));
    type_in(&server, None, &id, "A1", json!([[deep, 7]])).await;
    // The formula's cell shows the error; its neighbour is its own value.
    assert_eq!(shown(&server, None, &id, "A1:B1").await, json!([["#ERROR!", "7"]]));
    // What was entered is kept.
    let formula = read(&server, None, &id, "A1?valueRenderOption=FORMULA").await;
    assert_eq!(formula.body["values"][0][0].as_str().map(str::len), Some(deep.len()));
    assert_formulas_still_work(&server, None).await;
}

#[tokio::test]
async fn a_lambda_that_calls_itself_forever_shows_error() {
    let server = Server::start();
    let id = create(&server, None).await;
    type_in(&server, None, &id, "A1", json!([["=LET(f, LAMBDA(g, x, g(g, x)), f(f, 1))", "=1+1", "kept"]])).await;
    // The evaluation of the spreadsheet ran out of stack: every formula of it shows the
    // error, its other cells their values.
    assert_eq!(shown(&server, None, &id, "A1:C1").await, json!([["#ERROR!", "#ERROR!", "kept"]]));
    assert_formulas_still_work(&server, None).await;
}

#[tokio::test]
async fn typed_text_nested_twenty_five_thousand_deep_stays_text() {
    let server = Server::start();
    let id = create(&server, None).await;
    let typed = format!("-{}1{}", "(".repeat(24_999), ")".repeat(24_999));
    let also = format!("+{}", "(".repeat(49_999));
    type_in(&server, None, &id, "A1", json!([[typed, also, "-SUM(1,2)", "-$5", "+1,000"]])).await;
    let row = read(&server, None, &id, "A1:E1?valueRenderOption=UNFORMATTED_VALUE").await;
    assert_eq!(row.body["values"], json!([[typed, also, "-SUM(1,2)", -5, 1000]]));
    assert_formulas_still_work(&server, None).await;
}

#[tokio::test]
async fn strings_doubled_past_the_memory_bound_show_error_and_the_server_stays_small() {
    let server = Server::start_with(&["--sheets-formula-memory-bytes", "67108864"]);
    let id = create(&server, None).await;
    // A1 is a thousand characters; every cell below doubles the one above: 2^40 KB by A41.
    let mut rows = vec![json!(["=REPT(\"x\",1000)"])];
    for row in 2..=41 {
        rows.push(json!([format!("=A{0}&A{0}", row - 1)]));
    }
    type_in(&server, None, &id, "A1", Value::Array(rows)).await;
    type_in(&server, None, &id, "B1", json!([[5]])).await;
    let column = shown(&server, None, &id, "A41:B41").await;
    assert_eq!(column, json!([["#ERROR!"]]), "every formula of a spreadsheet past a bound shows #ERROR!");
    assert_eq!(shown(&server, None, &id, "B1").await, json!([["5"]]));
    assert!(server.rss_bytes() < RSS_BOUND, "the server holds {} bytes", server.rss_bytes());
    assert_formulas_still_work(&server, None).await;
}

/// A formula that computes for minutes with little memory: a million lambda calls, each
/// summing a thousand numbers.
const SLOW_FORMULA: &str = "=SUM(MAKEARRAY(1000,1000,LAMBDA(r,c,SUMPRODUCT(SEQUENCE(1000)))))";

#[tokio::test]
async fn a_formula_past_the_time_bound_shows_error() {
    let server = Server::start_with(&["--sheets-formula-time-ms", "300"]);
    let id = create(&server, None).await;
    type_in(&server, None, &id, "A1", json!([[SLOW_FORMULA, 1]])).await;
    assert_eq!(shown(&server, None, &id, "A1:B1").await, json!([["#ERROR!", "1"]]));
    assert_formulas_still_work(&server, None).await;
}

#[tokio::test]
async fn another_tenants_writes_go_on_while_a_spreadsheet_evaluates() {
    let server = Server::start_with(&["--sheets-formula-time-ms", "8000", "--sheets-tenant-formula-concurrency", "4"]);
    let attacker = server.new_tenant("attacker").await;
    let neighbour = server.new_tenant("neighbour").await;
    let id = create(&server, Some(&attacker)).await;
    // A write that asks for its values back: the formula it writes is evaluated before the
    // answer, which once happened on the store's only writer.
    let slow = {
        let path = "values/A1?valueInputOption=USER_ENTERED&includeValuesInResponse=true";
        let (url, auth) = (server.url(&format!("{SHEETS}/{id}/{path}")), attacker.clone());
        let body = json!({ "values": [[SLOW_FORMULA]] });
        tokio::spawn(
            async move { reqwest::Client::new().put(url).header("authorization", auth).json(&body).send().await },
        )
    };
    // The neighbour writes, reads its own formulas and is answered while the attacker's
    // evaluation still runs: no store writer or reader waits for a formula.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_formulas_still_work(&server, Some(&neighbour)).await;
    assert!(!slow.is_finished(), "the attacker's evaluation ran to its bound meanwhile");
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap()["updatedData"]["values"], json!([["#ERROR!"]]));
    // The write itself was kept.
    let formula = read(&server, Some(&attacker), &id, "A1?valueRenderOption=FORMULA").await;
    assert_eq!(formula.body["values"], json!([[SLOW_FORMULA]]));
}

#[tokio::test]
async fn a_tenant_gets_only_its_share_of_evaluations() {
    let server = Server::start_with(&["--sheets-formula-time-ms", "4000", "--sheets-tenant-formula-concurrency", "1"]);
    let tenant = server.new_tenant("greedy").await;
    let id = create(&server, Some(&tenant)).await;
    type_in(&server, Some(&tenant), &id, "A1", json!([[SLOW_FORMULA]])).await;
    let reads: Vec<_> = (0..3)
        .map(|_| {
            let (url, auth) = (server.url(&format!("{SHEETS}/{id}/values/A1")), tenant.clone());
            tokio::spawn(async move {
                let answer = reqwest::Client::new().get(url).header("authorization", auth).send().await.unwrap();
                (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers: Vec<(u16, Value)> = Vec::new();
    for read in reads {
        answers.push(read.await.unwrap());
    }
    let refused: Vec<&Value> = answers.iter().filter(|(status, _)| *status == 429).map(|(_, body)| body).collect();
    assert!(!refused.is_empty(), "{answers:?}");
    assert_eq!(refused[0]["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(refused[0]["error"]["message"].as_str().unwrap().contains("formula evaluations running"), "{refused:?}");
    assert!(answers.iter().any(|(status, _)| *status == 200), "{answers:?}");
}

#[tokio::test]
async fn a_value_repeated_over_a_sheet_past_the_spreadsheet_bound_is_refused_whole() {
    let server = Server::start();
    let id = create(&server, None).await;
    type_in(&server, None, &id, "A1", json!([["kept"]])).await;
    // One request of 40 KB asking for a gigabyte: 40,000 characters in each of the sheet's
    // 26,000 cells.
    let text = "x".repeat(40_000);
    let repeat = json!({ "requests": [{ "repeatCell": {
        "range": { "sheetId": 0 },
        "cell": { "userEnteredValue": { "stringValue": text } },
        "fields": "userEnteredValue"
    } }] });
    let refused = server.send(Method::POST, &format!("{SHEETS}/{id}:batchUpdate"), Some(repeat), None).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(
        refused.body["error"]["message"],
        "This action would make the spreadsheet larger than the emulator keeps (128 MiB of cells)."
    );
    // Nothing of it was kept.
    assert_eq!(shown(&server, None, &id, "A1:B2").await, json!([["kept"]]));
    assert!(server.rss_bytes() < RSS_BOUND, "the server holds {} bytes", server.rss_bytes());
}

#[tokio::test]
async fn a_cell_of_more_than_fifty_thousand_characters_is_refused() {
    let server = Server::start();
    let id = create(&server, None).await;
    let path = format!("{SHEETS}/{id}/values/A1?valueInputOption=RAW");
    let refused = server.send(Method::PUT, &path, Some(json!({ "values": [["y".repeat(50_001)]] })), None).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["message"],
        "Your input contains more than the maximum of 50000 characters in a single cell."
    );
    let fits = server.send(Method::PUT, &path, Some(json!({ "values": [["y".repeat(50_000)]] })), None).await;
    assert_eq!(fits.status, 200, "{:?}", fits.body);
}

#[tokio::test]
async fn spreadsheets_grow_request_by_request_only_up_to_the_bound() {
    let server = Server::start();
    let sheet = json!({ "properties": { "gridProperties": { "rowCount": 6000, "columnCount": 26 } } });
    let created = server.post(SHEETS, json!({ "sheets": [sheet] })).await;
    let id = created.body["spreadsheetId"].as_str().unwrap().to_owned();
    // Each request fills 1,000 rows of 26 cells with 1,200 characters: 31 MB stored.
    let mut statuses = Vec::new();
    for block in 0..6 {
        let repeat = json!({ "requests": [{ "repeatCell": {
            "range": { "sheetId": 0, "startRowIndex": block * 1000, "endRowIndex": block * 1000 + 1000 },
            "cell": { "userEnteredValue": { "stringValue": "z".repeat(1_200) } },
            "fields": "userEnteredValue"
        } }] });
        statuses.push(server.post(&format!("{SHEETS}/{id}:batchUpdate"), repeat).await.status);
    }
    // Four fit under 128 MiB; a fifth would pass it, and so would a sixth.
    assert_eq!(statuses, [200, 200, 200, 200, 400, 400]);
    let stored = server
        .db()
        .query_row("SELECT cell_bytes FROM sheets_sheets WHERE spreadsheet_id = ?1", [&id], |r| r.get::<_, i64>(0));
    assert_eq!(stored.unwrap(), 4 * 26_000 * 1_202, "the JSON of each cell is its text in quotes");
}
