//! Google Sheets steps: the `examples/form-to-sheet` app on the embedded emulator, the
//! emulator's own HTTP API, session scopes, and host-injected OAuth against a local
//! Google-compatible server with a real token endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

const EXAMPLE_WORKFLOWS: &str = include_str!("../../examples/form-to-sheet/app/shift.workflows.json");
const EXAMPLE_APP: &str = include_str!("../../examples/form-to-sheet/app/App.tsx");
const SPREADSHEETS_SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets";

async fn publish_example(server: &Server) -> String {
    publish_example_with(server, EXAMPLE_WORKFLOWS).await
}

/// The example app with `workflows` as its workflows file.
async fn publish_example_with(server: &Server, workflows: &str) -> String {
    server.publish(json!({ "/app/App.tsx": EXAMPLE_APP, "/app/shift.workflows.json": workflows })).await
}

async fn run(server: &Server, sid: &str, workflow: &str, input: Value) -> crate::common::Answer {
    server.post(&format!("/api/v1/run/{sid}/{workflow}"), json!({ "input": input })).await
}

fn webhook_row(spreadsheet_id: &str, email: &str, amount_cents: i64) -> Value {
    json!({ "spreadsheetId": spreadsheet_id, "range": "Events!A:G", "customerEmail": email, "amountCents": amount_cents })
}

#[tokio::test]
async fn webhook_rows_land_in_the_emulated_sheet() {
    let server = Server::start();
    let sid = publish_example(&server).await;

    let setup = run(&server, &sid, "setup", json!({})).await;
    assert_eq!(setup.status, 201, "{:?}", setup.body);
    let spreadsheet_id = setup.body["spreadsheetId"].as_str().unwrap().to_owned();
    assert_eq!(spreadsheet_id.len(), 44);
    // A step reaches the emulator in-process: the URL is the emulator's, on the Stage server.
    assert_eq!(setup.body["spreadsheetUrl"], format!("/api/v1/sheets/v4/spreadsheets/{spreadsheet_id}"));

    let first = run(&server, &sid, "appendWebhookRow", webhook_row(&spreadsheet_id, "ada@example.com", 1500)).await;
    assert_eq!((first.status, &first.body), (201, &json!({ "updatedRange": "Events!A1:B1" })));
    let second = run(&server, &sid, "appendWebhookRow", webhook_row(&spreadsheet_id, "bob@example.com", 250)).await;
    assert_eq!((second.status, &second.body), (201, &json!({ "updatedRange": "Events!A2:B2" })));

    // The step's output is Google's AppendValuesResponse, as recorded in the run.
    let run_id = second.headers["x-stage-run-id"].to_str().unwrap();
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(
        record.body["data"]["steps"][0]["output"],
        json!({
            "spreadsheetId": spreadsheet_id,
            "tableRange": "Events!A1:B1",
            "updates": {
                "spreadsheetId": spreadsheet_id,
                "updatedRange": "Events!A2:B2",
                "updatedRows": 1,
                "updatedColumns": 2,
                "updatedCells": 2
            }
        })
    );

    // getValues answers Google's ValueRange; formatted values are strings.
    let rows = run(&server, &sid, "listRows", json!({ "spreadsheetId": spreadsheet_id })).await;
    assert_eq!(rows.status, 200, "{:?}", rows.body);
    let expected = json!({
        "range": "Events!A1:G1000",
        "majorDimension": "ROWS",
        "values": [["ada@example.com", "1500"], ["bob@example.com", "250"]]
    });
    assert_eq!(rows.body, expected);

    // The emulator's HTTP API shows the same rows, and the numbers kept their type.
    let values = format!("/api/v1/sheets/v4/spreadsheets/{spreadsheet_id}/values");
    assert_eq!(server.get(&format!("{values}/Events!A%3AG")).await.body, expected);
    let unformatted = server.get(&format!("{values}/Events?valueRenderOption=UNFORMATTED_VALUE")).await;
    assert_eq!(unformatted.body["range"], "Events!A1:Z1000");
    assert_eq!(unformatted.body["values"], json!([["ada@example.com", 1500], ["bob@example.com", 250]]));
    let columns = server.get(&format!("{values}/Events!A1:B2?majorDimension=COLUMNS")).await;
    assert_eq!(columns.body["values"], json!([["ada@example.com", "bob@example.com"], ["1500", "250"]]));

    let spreadsheet = server.get(&format!("/api/v1/sheets/v4/spreadsheets/{spreadsheet_id}")).await;
    assert_shape(
        &spreadsheet.body,
        &json!({
            "spreadsheetId": spreadsheet_id,
            "properties": { "title": "Form events", "locale": "en_US", "autoRecalc": "ON_CHANGE", "timeZone": "Etc/GMT" },
            "sheets": [{ "properties": {
                "sheetId": 0, "title": "Events", "index": 0, "sheetType": "GRID",
                "gridProperties": { "rowCount": 1000, "columnCount": 26 } } }],
            "spreadsheetUrl": "<string>"
        }),
    );
    let stored: i64 = server
        .db()
        .query_row("SELECT count(*) FROM sheets_cells WHERE spreadsheet_id = ?1", [&spreadsheet_id], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 4);
}

#[tokio::test]
async fn the_emulator_speaks_google_over_http() {
    let server = Server::start();
    let created = server
        .post(
            "/api/v1/sheets/v4/spreadsheets",
            json!({ "properties": { "title": "Runs" }, "sheets": [{ "properties": { "title": "My Sheet" } }] }),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let id = created.body["spreadsheetId"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/sheets/v4/spreadsheets/{id}/values");

    // Google's client libraries send the range URL-encoded; RAW keeps "=1+1" and "007" as text.
    let append = server
        .post(
            &format!("{base}/'My%20Sheet'!A1%3AC:append?valueInputOption=RAW&includeValuesInResponse=true"),
            json!({ "values": [["=1+1", "007", true], [null, 2.5]] }),
        )
        .await;
    assert_eq!(append.status, 200, "{:?}", append.body);
    assert_eq!(
        append.body,
        json!({
            "spreadsheetId": id,
            "updates": {
                "spreadsheetId": id,
                "updatedRange": "'My Sheet'!A1:C2",
                "updatedRows": 2,
                "updatedColumns": 3,
                "updatedCells": 4,
                "updatedData": {
                    "range": "'My Sheet'!A1:C2",
                    "majorDimension": "ROWS",
                    "values": [["=1+1", "007", "TRUE"], ["", "2.5"]]
                }
            }
        })
    );
    // USER_ENTERED parses what a person would type; INSERT_ROWS lands after the table.
    let typed = server
        .post(
            &format!("{base}/'My%20Sheet'!A:C:append?valueInputOption=USER_ENTERED&insertDataOption=INSERT_ROWS"),
            json!({ "values": [["=SUM(B1:B2)", "007", "false"]] }),
        )
        .await;
    assert_eq!(typed.status, 200, "{:?}", typed.body);
    assert_eq!(typed.body["tableRange"], "'My Sheet'!A1:C2");
    assert_eq!(typed.body["updates"]["updatedRange"], "'My Sheet'!A3:C3");
    let read = server.get(&format!("{base}/'My%20Sheet'!A3:C3?valueRenderOption=UNFORMATTED_VALUE")).await;
    assert_eq!(read.body["values"], json!([[2.5, 7, false]]), "the formula is computed; B1's \"007\" is text");
    let formulas = server.get(&format!("{base}/'My%20Sheet'!A3:C3?valueRenderOption=FORMULA")).await;
    assert_eq!(formulas.body["values"], json!([["=SUM(B1:B2)", 7, false]]));

    // Errors have Google's shape.
    let bad_range = server.get(&format!("{base}/Nope!A1")).await;
    assert_eq!(
        (bad_range.status, bad_range.body),
        (
            400,
            json!({ "error": { "code": 400, "message": "Unable to parse range: Nope!A1", "status": "INVALID_ARGUMENT" } })
        )
    );
    let unknown = server.get("/api/v1/sheets/v4/spreadsheets/nope/values/A1").await;
    assert_eq!(
        (unknown.status, unknown.body),
        (404, json!({ "error": { "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND" } }))
    );
    let missing_option = server.post(&format!("{base}/A1:append"), json!({ "values": [["x"]] })).await;
    assert_eq!(missing_option.status, 400);
    assert_eq!(missing_option.body["error"]["message"], "'valueInputOption' is required but not specified");
    // The INSERT_ROWS append above grew the grid by one row.
    let too_far = server.get(&format!("{base}/'My%20Sheet'!A1:B2000")).await;
    assert_eq!(
        too_far.body["error"]["message"],
        "Range ('My Sheet'!A1:B2000) exceeds grid limits. Max rows: 1001, max columns: 26"
    );

    // Another tenant does not see the spreadsheet.
    let other = server.post("/api/v1/admin/tenants", json!({ "id": "other" })).await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let key = other.body["data"]["apiKey"]["secret"].as_str().unwrap().to_owned();
    let hidden = server
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/sheets/v4/spreadsheets/{id}"),
            None,
            Some(&format!("Bearer {key}")),
        )
        .await;
    assert_eq!(hidden.status, 404);
}

#[tokio::test]
async fn sheets_steps_fail_clearly() {
    let server = Server::start();
    let sid = publish_example(&server).await;
    let setup = run(&server, &sid, "setup", json!({})).await;
    let spreadsheet_id = setup.body["spreadsheetId"].as_str().unwrap().to_owned();

    // A range Google cannot parse is the step's invalid input, named with Google's message.
    let mut input = webhook_row(&spreadsheet_id, "ada@example.com", 1);
    input["range"] = json!("Nope!A:G");
    let failed = run(&server, &sid, "appendWebhookRow", input).await;
    assert_eq!(failed.status, 502, "{:?}", failed.body);
    assert_eq!(failed.body["error"]["code"], "STEP_FAILED");
    assert_eq!(failed.body["error"]["details"]["kind"], "sheets.appendValues");
    assert_eq!(failed.body["error"]["details"]["error"]["class"], "invalid-input");
    let message = failed.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Unable to parse range: Nope!A:G"), "{message}");

    // A session that granted only read access: appends are refused naming the scope, reads work.
    let app = server.get(&format!("/api/v1/stage/apps/{sid}")).await;
    let session = app.body["data"]["sessionId"].as_str().unwrap().to_owned();
    let scopes = server
        .put(
            &format!("/api/v1/stage/sessions/{session}/google-scopes"),
            json!({ "scopes": [format!("{SPREADSHEETS_SCOPE}.readonly")] }),
        )
        .await;
    assert_eq!(scopes.status, 200, "{:?}", scopes.body);
    let refused = run(&server, &sid, "appendWebhookRow", webhook_row(&spreadsheet_id, "ada@example.com", 1)).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["details"]["error"]["class"], "unauthorized");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("needs the Google scope {SPREADSHEETS_SCOPE},")), "{message}");
    let rows = run(&server, &sid, "listRows", json!({ "spreadsheetId": spreadsheet_id })).await;
    assert_eq!(rows.status, 200, "{:?}", rows.body);
    assert!(rows.body.get("values").is_none(), "{:?}", rows.body);
}

#[tokio::test]
async fn a_sheets_step_reaches_no_other_host() {
    let server = Server::start();
    // The chaos fixture under the sheets steps' own capability policy.
    let manifest: Value = serde_json::from_str(include_str!("../../steps/sheets-append-values/step.json")).unwrap();
    server.install_chaos("acme.sheetsLike", manifest["allow"].clone()).await;
    let workflows = json!({ "version": 1, "workflows": { "fetch": { "auth": "public", "steps": [
        { "acme.sheetsLike": { "mode": "fetch", "url": "{{ input.url }}", "method": "POST" } }
    ] } } });
    let sid = server
        .publish(json!({ "/app/App.tsx": EXAMPLE_APP, "/app/shift.workflows.json": workflows.to_string() }))
        .await;
    for url in [
        "https://example.com/v4/spreadsheets/x/values/A1:append",
        "https://sheets.googleapis.com.evil.example/v4/spreadsheets/x",
        "http://sheets.googleapis.com/v4/spreadsheets/x",
        "https://oauth2.googleapis.com/token",
        "http://127.0.0.1:9/v4/spreadsheets/x",
    ] {
        let answer = run(&server, &sid, "fetch", json!({ "url": url })).await;
        assert_eq!(answer.status, 403, "{url}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["code"], "CAPABILITY_DENIED", "{url}");
    }
}

/// A local stand-in for Google: an OAuth token endpoint that verifies service-account
/// assertions with the test key and answers refresh grants, and a Sheets `values.append`
/// that only accepts the token it issued last.
#[derive(Default)]
struct FakeGoogle {
    token_requests: Vec<HashMap<String, String>>,
    /// Claims and header `kid` of each verified assertion.
    assertions: Vec<(Value, Option<String>)>,
    issued: Vec<String>,
    appends: Vec<String>,
    expires_in: u64,
    /// The audience assertions must name.
    token_url: String,
    /// How many token requests to answer 503 (overloaded) before serving them.
    unavailable: u32,
}

type Shared = Arc<Mutex<FakeGoogle>>;

async fn token_endpoint(State(google): State<Shared>, body: String) -> axum::response::Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    let mut google = google.lock().unwrap();
    google.token_requests.push(form.clone());
    if google.unavailable > 0 {
        google.unavailable -= 1;
        let error = json!({ "error": "temporarily_unavailable", "error_description": "try again" });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(error)).into_response();
    }
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let key =
                jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!("../keys/google-test-public.pem")).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            validation.set_audience(&[google.token_url.as_str()]);
            match jsonwebtoken::decode::<Value>(&form["assertion"], &key, &validation) {
                Ok(data) => google.assertions.push((data.claims, data.header.kid)),
                Err(e) => {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({ "error": "invalid_grant", "error_description": e.to_string() })),
                    )
                        .into_response();
                }
            }
        }
        Some("refresh_token") if form.get("refresh_token").map(String::as_str) == Some("1//refresh-me") => {}
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_grant", "error_description": "Bad Request" })),
            )
                .into_response();
        }
    }
    let token = format!("ya29.fake-token-{}", google.issued.len() + 1);
    google.issued.push(token.clone());
    axum::Json(json!({ "access_token": token, "expires_in": google.expires_in, "token_type": "Bearer", "scope": SPREADSHEETS_SCOPE }))
        .into_response()
}

async fn sheets_append(
    State(google): State<Shared>,
    Path((id, range)): Path<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    let mut google = google.lock().unwrap();
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if google.issued.last().map(|t| format!("Bearer {t}")) != Some(presented.clone()) {
        let error = json!({ "error": { "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    google.appends.push(presented);
    let row = google.appends.len();
    let sheet = range.trim_end_matches(":append").split('!').next().unwrap_or_default().to_owned();
    axum::Json(json!({
        "spreadsheetId": id,
        "updates": { "spreadsheetId": id, "updatedRange": format!("{sheet}!A{row}:B{row}"), "updatedRows": 1, "updatedColumns": 2, "updatedCells": 2 }
    }))
    .into_response()
}

/// Starts the fake Google; returns its base URL.
async fn start_fake_google(google: Shared) -> String {
    let app = axum::Router::new()
        .route("/token", post(token_endpoint))
        .route("/v4/spreadsheets/{id}/values/{range}", post(sheets_append))
        .with_state(google.clone());
    let google_state = google;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    google_state.lock().unwrap().token_url = format!("{base}/token");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn service_account_file(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let key = json!({
        "type": "service_account",
        "project_id": "stage-test",
        "private_key_id": "test-key-1",
        "private_key": include_str!("../keys/google-test-private.pem"),
        "client_email": "stage-runner@stage-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    });
    let path = dir.join("service-account.json");
    std::fs::write(&path, key.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_injected_by_the_host_and_cached() {
    let google = Shared::default();
    google.lock().unwrap().expires_in = 3599;
    let base = start_fake_google(google.clone()).await;
    let keys = tempfile::tempdir().unwrap();
    let token_url = format!("{base}/token");
    let key_file = service_account_file(keys.path(), &token_url);
    let server =
        Server::start_with(&["--sheets-upstream", &base, "--google-service-account", key_file.to_str().unwrap()]);
    let sid = publish_example(&server).await;

    let mut run_ids = Vec::new();
    for (index, email) in ["a@example.com", "b@example.com", "c@example.com"].iter().enumerate() {
        let answer = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", email, 100)).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        assert_eq!(answer.body["updatedRange"], format!("Events!A{}:B{}", index + 1, index + 1));
        run_ids.push(answer.headers["x-stage-run-id"].to_str().unwrap().to_owned());
    }

    {
        let google = google.lock().unwrap();
        assert_eq!(google.token_requests.len(), 1, "one token serves every append until it expires");
        assert_eq!(google.appends, vec!["Bearer ya29.fake-token-1"; 3]);
        let (claims, kid) = &google.assertions[0];
        assert_eq!(kid.as_deref(), Some("test-key-1"));
        assert_eq!(claims["iss"], "stage-runner@stage-test.iam.gserviceaccount.com");
        assert_eq!(claims["scope"], SPREADSHEETS_SCOPE);
        assert_eq!(claims["aud"], token_url);
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!(exp > iat && exp - iat <= 3600, "{claims}");
    }

    // The token is nowhere in the run records, nor anywhere in the database.
    for run_id in &run_ids {
        let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
        assert!(!record.body.to_string().contains("ya29."), "{:?}", record.body);
    }
    let database = std::fs::read(server.data_dir.join("stage.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("stage.db-wal")).unwrap_or_default();
    for bytes in [database, wal] {
        assert!(!bytes.windows(5).any(|w| w == b"ya29."), "a token was stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_outage_is_transient_and_retried() {
    let google = Shared::default();
    google.lock().unwrap().expires_in = 3599;
    let base = start_fake_google(google.clone()).await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = service_account_file(keys.path(), &format!("{base}/token"));
    let mut workflows: Value = serde_json::from_str(EXAMPLE_WORKFLOWS).unwrap();
    workflows["workflows"]["appendWebhookRow"]["steps"][0]["retry"] = json!({ "maxAttempts": 1, "intervalMs": 10 });
    let workflows = workflows.to_string();
    // A fresh server each time, so that no token is cached from before.
    let start = || async {
        let server =
            Server::start_with(&["--sheets-upstream", &base, "--google-service-account", key_file.to_str().unwrap()]);
        let sid = publish_example_with(&server, &workflows).await;
        (server, sid)
    };
    let (server, sid) = start().await;

    // One 503 from the token endpoint: the first attempt fails as transient, the retry
    // gets a token and appends.
    google.lock().unwrap().unavailable = 1;
    let answer = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", "a@example.com", 1)).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let run_id = answer.headers["x-stage-run-id"].to_str().unwrap().to_owned();
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    let attempts = &record.body["data"]["steps"][0]["attempts"];
    assert_eq!(attempts.as_array().unwrap().len(), 2, "{attempts}");
    assert_eq!(attempts[0]["error"]["class"], "transient", "{attempts}");
    assert!(attempts[0]["error"]["message"].as_str().unwrap().contains("HTTP 503"), "{attempts}");
    assert_eq!(attempts[1].get("error"), None, "{attempts}");
    assert_eq!(google.lock().unwrap().appends, ["Bearer ya29.fake-token-1"]);

    // Still down past the retries: the run fails with the transient class, not unauthorized.
    let (server, sid) = start().await;
    google.lock().unwrap().unavailable = 2;
    let failed = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", "b@example.com", 1)).await;
    assert_eq!(failed.status, 502, "{:?}", failed.body);
    assert_eq!(failed.body["error"]["details"]["error"]["class"], "transient", "{:?}", failed.body);
    assert_eq!(google.lock().unwrap().appends.len(), 1, "nothing was appended without a token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_refresh_token_is_exchanged_and_renewed_when_it_expires() {
    let google = Shared::default();
    // Renewed a minute before expiry: this token is good for one second.
    google.lock().unwrap().expires_in = 61;
    let base = start_fake_google(google.clone()).await;
    let server = Server::start_with(&[
        "--sheets-upstream",
        &base,
        "--google-token-url",
        &format!("{base}/token"),
        "--google-client-id",
        "client-1.apps.googleusercontent.com",
        "--google-client-secret",
        "client-secret-1",
    ]);
    let sid = publish_example(&server).await;

    // Without any credential the step is unauthorized, and Google was not asked.
    let refused = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", "a@example.com", 1)).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["details"]["error"]["class"], "unauthorized");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("no Google credentials"), "{:?}", refused.body);
    assert!(google.lock().unwrap().token_requests.is_empty());

    let credentials = format!("/api/v1/stage/apps/{sid}/google-credentials");
    let stored = server.put(&credentials, json!({ "refreshToken": "1//refresh-me" })).await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    assert_shape(&stored.body["data"], &json!({ "configured": true, "updatedAt": "<time>" }));
    let shown = server.get(&credentials).await;
    assert!(!shown.body.to_string().contains("refresh-me"), "{:?}", shown.body);
    let bad = server.put(&credentials, json!({ "refreshToken": "", "clientId": "x" })).await;
    assert_eq!(bad.status, 422, "{:?}", bad.body);

    for email in ["a@example.com", "b@example.com"] {
        let answer = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", email, 1)).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }
    {
        let google = google.lock().unwrap();
        assert_eq!(google.token_requests.len(), 1);
        let form = &google.token_requests[0];
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "1//refresh-me");
        assert_eq!(form["client_id"], "client-1.apps.googleusercontent.com");
        assert_eq!(form["client_secret"], "client-secret-1");
    }

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let answer = run(&server, &sid, "appendWebhookRow", webhook_row("sheet-1", "c@example.com", 1)).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let google = google.lock().unwrap();
    assert_eq!(google.token_requests.len(), 2, "an expired token is renewed");
    assert_eq!(google.appends, ["Bearer ya29.fake-token-1", "Bearer ya29.fake-token-1", "Bearer ya29.fake-token-2"]);
}

#[tokio::test]
async fn an_append_past_the_cell_limit_changes_nothing() {
    let server = Server::start();
    let created = server.post("/api/v1/sheets/v4/spreadsheets", json!({ "properties": { "title": "Big" } })).await;
    let id = created.body["spreadsheetId"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/sheets/v4/spreadsheets/{id}/values");
    // Row 9,999,999 of 26 columns would take the grid far past Google's ten million cells.
    let refused =
        server.post(&format!("{base}/A9999999:append?valueInputOption=RAW"), json!({ "values": [["x"]] })).await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("above the limit of 10000000 cells"), "{message}");
    let spreadsheet = server.get(&format!("/api/v1/sheets/v4/spreadsheets/{id}")).await;
    assert_eq!(spreadsheet.body["sheets"][0]["properties"]["gridProperties"]["rowCount"], 1000);
    let empty = server.get(&format!("{base}/Sheet1")).await;
    assert_eq!(empty.body, json!({ "range": "Sheet1!A1:Z1000", "majorDimension": "ROWS" }));
}
