//! Secrets at rest (finding 12): a local user, or anyone holding a copy of the data folder
//! (a backup), reads its files. The folder is private to the server's user (0700, its files
//! 0600, tightened at startup), and every stored secret (webhook signing secrets, Slack
//! webhook URLs, SMTP URLs with passwords, apps' Google refresh tokens and client secrets)
//! is sealed with the secrets key; deliveries and token refreshes open them in memory only.
//! Real receivers run on loopback: an HTTP hook, an SMTP relay that demands the password,
//! and a Google-compatible token endpoint and Sheets API.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::Mac;
use serde_json::{Value, json};

use crate::common::{Server, spawn};

const WEBHOOK_SECRET: &str = "whsec-SEALED-webhook-0123456789";
const SLACK_TOKEN: &str = "slackhookSEALEDtoken42";
const SMTP_PASSWORD: &str = "smtpSEALEDpassword77";
const REFRESH_TOKEN: &str = "1//refresh-SEALED-token";
const CLIENT_SECRET: &str = "client-SEALED-secret-99";
const SECRETS: [&str; 5] = [WEBHOOK_SECRET, SLACK_TOKEN, SMTP_PASSWORD, REFRESH_TOKEN, CLIENT_SECRET];
const ACCESS_TOKEN: &str = "ya29.sealed-test-token";

const APP_TSX: &str = "export default function App() { return <h1>Secrets</h1>; }";
const SHEETS_WORKFLOWS: &str = include_str!("../../examples/form-to-sheet/app/shift.workflows.json");

// ---- the data folder, as a local user or a backup sees it ----

/// Every file under `dir`, with its bytes (files that vanish meanwhile, like a WAL at a
/// checkpoint, are skipped).
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else { continue };
        if metadata.is_dir() {
            files.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            files.push((path, bytes));
        }
    }
    files
}

#[track_caller]
fn assert_nowhere_in(dir: &Path, secrets: &[&str]) {
    let files = files_under(dir);
    assert!(files.iter().any(|(path, _)| path.ends_with("stage.db")), "no database in {}", dir.display());
    for (path, bytes) in &files {
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|window| window == secret.as_bytes()),
                "{secret:?} is readable in {}",
                path.display()
            );
        }
    }
}

#[track_caller]
fn assert_somewhere_in(dir: &Path, secret: &str) {
    let found = files_under(dir).iter().any(|(_, bytes)| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(found, "{secret:?} is in no file of {}", dir.display());
}

/// Mode bits of `path`, `None` when it vanished.
fn mode(path: &Path) -> Option<u32> {
    std::fs::symlink_metadata(path).ok().map(|metadata| metadata.permissions().mode() & 0o7777)
}

/// The folder and every folder under it are 0700, every file 0600.
#[track_caller]
fn assert_private(dir: &Path) {
    assert_eq!(mode(dir), Some(0o700), "{}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Ok(metadata) = std::fs::symlink_metadata(&path) else { continue };
        if metadata.is_dir() {
            assert_private(&path);
        } else if let Some(mode) = mode(&path) {
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
        }
    }
}

/// Every value of a secret column, as stored.
fn stored_secrets(data: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open_with_flags(data.join("stage.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut values = Vec::new();
    for sql in [
        "SELECT settings FROM comm_registrations",
        "SELECT refresh_token FROM app_google_credentials",
        "SELECT client_secret FROM app_google_credentials WHERE client_secret IS NOT NULL",
    ] {
        let mut stmt = db.prepare(sql).unwrap();
        values.extend(stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
    }
    values
}

/// The key id every stored secret is sealed under (all the same one).
#[track_caller]
fn sealed_key_id(data: &Path) -> String {
    let values = stored_secrets(data);
    assert!(!values.is_empty());
    let ids: Vec<&str> = values
        .iter()
        .map(|value| {
            let rest = value.strip_prefix("sealed:v1:").unwrap_or_else(|| panic!("not sealed: {value}"));
            rest.split(':').next().unwrap()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    ids[0].to_owned()
}

fn server_log(data: &Path) -> String {
    std::fs::read_to_string(data.join("server.log")).unwrap_or_default()
}

// ---- receivers ----

/// What the local HTTP hook received.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    timestamp: Option<String>,
    signature: Option<String>,
    body: String,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

async fn record(State(hits): State<Hits>, uri: Uri, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    hits.lock().unwrap().push(Hit {
        path: uri.path().to_owned(),
        timestamp: header("x-stage-timestamp"),
        signature: header("x-stage-signature"),
        body,
    });
    StatusCode::OK
}

/// Starts an HTTP hook accepting any path; returns its base URL.
async fn start_hook(hits: Hits) -> String {
    let app = axum::Router::new().fallback(record).with_state(hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Whether `hit` carries a valid signature under `secret`.
fn signed_with(hit: &Hit, secret: &str) -> bool {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", hit.timestamp.clone().unwrap_or_default(), hit.body).as_bytes());
    hit.signature.as_deref() == Some(&format!("v1={}", hex::encode(mac.finalize().into_bytes())))
}

/// What the SMTP relay saw: each login (user, password) and each accepted message.
#[derive(Default)]
struct Relay {
    logins: Vec<(String, String)>,
    messages: Vec<String>,
}

type SharedRelay = Arc<Mutex<Relay>>;

/// Starts a plain-text SMTP relay on loopback that offers `AUTH PLAIN` and accepts mail
/// only after the login `mailer` / [`SMTP_PASSWORD`] (mailin-embedded offers AUTH over TLS
/// only, so this one speaks the few commands lettre sends itself); returns its port.
fn start_smtp_relay(relay: SharedRelay) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let relay = relay.clone();
            std::thread::spawn(move || {
                let _ = smtp_session(stream, &relay);
            });
        }
    });
    port
}

fn smtp_session(stream: TcpStream, relay: &SharedRelay) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut next_line = move || -> std::io::Result<Option<String>> {
        let mut line = String::new();
        Ok((reader.read_line(&mut line)? > 0).then(|| line.trim_end_matches(['\r', '\n']).to_owned()))
    };
    writer.write_all(b"220 relay.test ESMTP\r\n")?;
    let mut authenticated = false;
    while let Some(command) = next_line()? {
        let mut words = command.split(' ');
        let verb = words.next().unwrap_or_default().to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => writer.write_all(b"250-relay.test\r\n250 AUTH PLAIN\r\n")?,
            "AUTH" => {
                let initial = words.nth(1).map(str::to_owned);
                let encoded = match initial {
                    Some(encoded) => encoded,
                    None => {
                        writer.write_all(b"334 \r\n")?;
                        next_line()?.unwrap_or_default()
                    }
                };
                let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
                let parts: Vec<String> =
                    String::from_utf8_lossy(&decoded).split('\0').map(str::to_owned).collect::<Vec<_>>();
                let (user, password) =
                    (parts.get(1).cloned().unwrap_or_default(), parts.get(2).cloned().unwrap_or_default());
                authenticated = user == "mailer" && password == SMTP_PASSWORD;
                relay.lock().unwrap().logins.push((user, password));
                writer.write_all(if authenticated {
                    b"235 2.7.0 accepted\r\n"
                } else {
                    b"535 5.7.8 bad credentials\r\n"
                })?;
            }
            "MAIL" if !authenticated => writer.write_all(b"530 5.7.0 authentication required\r\n")?,
            "MAIL" | "RCPT" | "RSET" | "NOOP" => writer.write_all(b"250 OK\r\n")?,
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let mut message = String::new();
                while let Some(line) = next_line()? {
                    if line == "." {
                        break;
                    }
                    message.push_str(&line);
                    message.push('\n');
                }
                relay.lock().unwrap().messages.push(message);
                writer.write_all(b"250 OK queued\r\n")?;
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => writer.write_all(b"502 not implemented\r\n")?,
        }
    }
    Ok(())
}

/// A Google stand-in: the token endpoint grants [`ACCESS_TOKEN`] for [`REFRESH_TOKEN`]
/// with [`CLIENT_SECRET`] only; `values.append` accepts that access token only.
#[derive(Default)]
struct Google {
    grants: Vec<HashMap<String, String>>,
    appends: usize,
}

type SharedGoogle = Arc<Mutex<Google>>;

async fn token_endpoint(State(google): State<SharedGoogle>, body: String) -> axum::response::Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    google.lock().unwrap().grants.push(form.clone());
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") == Some("refresh_token")
        && field("refresh_token") == Some(REFRESH_TOKEN)
        && field("client_secret") == Some(CLIENT_SECRET)
    {
        axum::Json(json!({ "access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer" })).into_response()
    } else {
        (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": "invalid_grant", "error_description": "Bad Request" })))
            .into_response()
    }
}

async fn sheets_append(
    State(google): State<SharedGoogle>,
    UrlPath((id, _range)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> axum::response::Response {
    let presented = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if presented != format!("Bearer {ACCESS_TOKEN}") {
        let error = json!({ "error": { "code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let row = {
        let mut google = google.lock().unwrap();
        google.appends += 1;
        google.appends
    };
    let range = format!("Events!A{row}:B{row}");
    axum::Json(json!({
        "spreadsheetId": id,
        "updates": { "spreadsheetId": id, "updatedRange": range, "updatedRows": 1, "updatedColumns": 2, "updatedCells": 2 }
    }))
    .into_response()
}

/// Starts the Google stand-in; returns its base URL.
async fn start_google(google: SharedGoogle) -> String {
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token_endpoint))
        .route("/v4/spreadsheets/{id}/values/{range}", axum::routing::post(sheets_append))
        .with_state(google);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

// ---- the API ----

async fn register(server: &Server, body: Value) -> String {
    let registered = server.post("/api/v1/communication/registrations", body).await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let shown = registered.body.to_string();
    for secret in SECRETS {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
    registered.body["data"]["id"].as_str().unwrap().to_owned()
}

/// Sends a message on `channel` and waits until it settles; returns the message.
async fn deliver(server: &Server, sid: &str, channel: &str) -> Value {
    let sent = server
        .post(
            "/api/v1/communication/messages",
            json!({ "appSid": sid, "channelId": channel, "to": "ops@example.com", "subject": "Hi", "text": "sealed" }),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let id = sent.body["data"]["messageId"].as_str().unwrap().to_owned();
    for _ in 0..400 {
        let message = server.get(&format!("/api/v1/communication/messages/{id}")).await;
        if matches!(message.body["data"]["status"].as_str(), Some("delivered" | "failed")) {
            return message.body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {id} did not settle");
}

#[track_caller]
fn assert_delivered(message: &Value) {
    assert_eq!(message["status"], "delivered", "{message}");
}

async fn append_row(server: &Server, sid: &str) -> crate::common::Answer {
    let input = json!({ "spreadsheetId": "sheet-1", "range": "Events!A:G", "customerEmail": "a@example.com", "amountCents": 1 });
    server.post(&format!("/api/v1/run/{sid}/appendWebhookRow"), json!({ "input": input })).await
}

/// A webhook registration signed with `secret` on a fresh app; returns (app sid, registration id).
async fn app_with_webhook(server: &Server, hook: &str, secret: &str) -> (String, String) {
    let sid = server.publish(json!({ "/app/App.tsx": APP_TSX })).await;
    let id = register(
        server,
        json!({ "appSid": sid, "channelId": "signed", "kind": "webhook", "url": format!("{hook}/signed"), "secret": secret }),
    )
    .await;
    (sid, id)
}

fn delivering() -> Vec<String> {
    vec!["--allow-private-egress".into(), "--delivery-retry-base-ms".into(), "50".into()]
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

// ---- the attacks ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_user_reading_every_file_of_the_data_folder_finds_no_secret() {
    let hits = Hits::default();
    let hook = start_hook(hits.clone()).await;
    let relay = SharedRelay::default();
    let smtp_port = start_smtp_relay(relay.clone());
    let google = SharedGoogle::default();
    let google_base = start_google(google.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    // Compiled components live in the data folder too (the default), to check their modes.
    let mut flags = delivering();
    flags.extend([
        "--sheets-upstream".into(),
        google_base.clone(),
        "--google-token-url".into(),
        format!("{google_base}/token"),
        "--compiled-dir".into(),
        data.join("compiled").display().to_string(),
    ]);
    let server = Server::start_in(&data, &args(&flags));

    let sid = server.publish(json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": SHEETS_WORKFLOWS })).await;
    register(
        &server,
        json!({ "appSid": sid, "channelId": "slack", "kind": "slack_webhook", "url": format!("{hook}/services/T0/B0/{SLACK_TOKEN}") }),
    )
    .await;
    register(
        &server,
        json!({ "appSid": sid, "channelId": "signed", "kind": "webhook", "url": format!("{hook}/signed"), "secret": WEBHOOK_SECRET }),
    )
    .await;
    register(
        &server,
        json!({ "appSid": sid, "channelId": "mail", "kind": "email_smtp",
                "smtpUrl": format!("smtp://mailer:{SMTP_PASSWORD}@127.0.0.1:{smtp_port}"), "from": "noreply@stage.test" }),
    )
    .await;
    let credentials = server
        .put(
            &format!("/api/v1/stage/apps/{sid}/google-credentials"),
            json!({ "refreshToken": REFRESH_TOKEN, "clientId": "client-1.apps.googleusercontent.com", "clientSecret": CLIENT_SECRET }),
        )
        .await;
    assert_eq!(credentials.status, 200, "{:?}", credentials.body);

    // Each secret still works: opened in memory for the delivery or the token refresh.
    for channel in ["slack", "signed", "mail"] {
        assert_delivered(&deliver(&server, &sid, channel).await);
    }
    {
        let hits = hits.lock().unwrap();
        assert_eq!(hits[0].path, format!("/services/T0/B0/{SLACK_TOKEN}"));
        assert_eq!(hits[1].path, "/signed");
        assert!(signed_with(&hits[1], WEBHOOK_SECRET), "{:?}", hits[1]);
        let relay = relay.lock().unwrap();
        assert_eq!(relay.logins, [("mailer".to_owned(), SMTP_PASSWORD.to_owned())]);
        assert_eq!(relay.messages.len(), 1);
    }
    let appended = append_row(&server, &sid).await;
    assert_eq!(appended.status, 201, "{:?}", appended.body);
    assert_eq!(appended.body["updatedRange"], "Events!A1:B1");
    assert_eq!(google.lock().unwrap().grants[0]["refresh_token"], REFRESH_TOKEN);

    // Stored sealed: no file of the folder (database, WAL, shared memory, compiled
    // components, keys, log) holds any of them, and the folder is the server user's only.
    let key_id = sealed_key_id(&data);
    assert_eq!(stored_secrets(&data).len(), 5);
    assert_nowhere_in(&data, &SECRETS);
    assert_private(&data);
    assert_eq!(mode(&data.join("compiled")), Some(0o700), "made by the server under umask 077");
    assert!(std::fs::read_dir(data.join("compiled")).unwrap().next().is_some(), "a component was compiled");
    assert_eq!(mode(&data.join("secrets-key")), Some(0o600));

    // After a clean restart: still nowhere, still private, still working.
    assert!(server.terminate().success());
    assert_nowhere_in(&data, &SECRETS);
    assert_private(&data);
    let server = Server::start_in(&data, &args(&flags));
    assert_eq!(sealed_key_id(&data), key_id, "the same key, read back from its file");
    assert_delivered(&deliver(&server, &sid, "signed").await);
    assert!(signed_with(hits.lock().unwrap().last().unwrap(), WEBHOOK_SECRET));
    let appended = append_row(&server, &sid).await;
    assert_eq!(appended.status, 201, "{:?}", appended.body);
    assert_eq!(google.lock().unwrap().grants.len(), 2, "the new process refreshed with the stored token");
    assert_nowhere_in(&data, &SECRETS);
    assert_private(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_left_readable_to_others_is_made_private_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let loosen =
        |path: &Path, mode: u32| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::create_dir(&data).unwrap();
    std::fs::create_dir(data.join("old")).unwrap();
    std::fs::write(data.join("old").join("notes.txt"), "left by hand").unwrap();
    loosen(&data.join("old").join("notes.txt"), 0o644);
    loosen(&data.join("old"), 0o755);
    loosen(&data, 0o755);

    let server = Server::start_in(&data, &[]);
    assert_private(&data);
    let log = server_log(&data);
    assert!(log.contains("took group and other access off an entry of the data folder"), "{log}");
    assert!(log.contains("notes.txt") && log.contains("from=644") && log.contains("to=600"), "{log}");

    // What a first start of an older version left readable is tightened too, the
    // database's WAL and shared memory included (SQLite gives them the database's mode).
    assert!(server.terminate().success());
    for file in ["stage.db", "stage.db-wal", "stage.db-shm", "admin-key", "secrets-key"] {
        if data.join(file).exists() {
            loosen(&data.join(file), 0o644);
        }
    }
    loosen(&data, 0o755);
    let server = Server::start_in(&data, &[]);
    assert_eq!(server.get("/healthz").await.status, 200);
    assert!(data.join("stage.db-wal").exists() && data.join("stage.db-shm").exists());
    assert_private(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_secrets_key_with_the_old_one_as_previous_reseals_everything_and_still_delivers() {
    let hits = Hits::default();
    let hook = start_hook(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let server = Server::start_in(&data, &args(&delivering()));
    let (sid, _) = app_with_webhook(&server, &hook, WEBHOOK_SECRET).await;
    let stored = server
        .put(
            &format!("/api/v1/stage/apps/{sid}/google-credentials"),
            json!({ "refreshToken": REFRESH_TOKEN, "clientId": "client-1", "clientSecret": CLIENT_SECRET }),
        )
        .await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    let old_id = sealed_key_id(&data);
    assert!(server.terminate().success());

    // The operator moves to a key kept outside the folder, naming the old one as previous.
    let old_key = std::fs::read_to_string(data.join("secrets-key")).unwrap().trim().to_owned();
    let new_key = "a1b2c3d4".repeat(8);
    let mut rotating = delivering();
    rotating.extend(["--secrets-key".into(), new_key.clone(), "--secrets-previous-keys".into(), old_key]);
    let server = Server::start_in(&data, &args(&rotating));
    let new_id = sealed_key_id(&data);
    assert_ne!(new_id, old_id, "every secret is sealed under the new key");
    let log = server_log(&data);
    assert!(log.contains("rotated=3"), "{log}");
    assert!(log.contains("not used"), "the old key file is pointed out: {log}");
    assert_delivered(&deliver(&server, &sid, "signed").await);
    assert!(signed_with(hits.lock().unwrap().last().unwrap(), WEBHOOK_SECRET));
    assert!(server.terminate().success());

    // The old key is no longer needed.
    let mut rotated = delivering();
    rotated.extend(["--secrets-key".into(), new_key]);
    let server = Server::start_in(&data, &args(&rotated));
    assert_eq!(sealed_key_id(&data), new_id);
    assert_delivered(&deliver(&server, &sid, "signed").await);
    assert_eq!(hits.lock().unwrap().len(), 2);
    assert_nowhere_in(&data, &[WEBHOOK_SECRET, REFRESH_TOKEN, CLIENT_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_given_the_wrong_secrets_key_refuses_to_start_and_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let server = Server::start_in(&data, &[]);
    let (_, registration) = app_with_webhook(&server, "http://1.1.1.1:9", WEBHOOK_SECRET).await;
    assert!(server.terminate().success());
    let before = stored_secrets(&data);

    let Err(log) = spawn(&data, &["--secrets-key", &"0f".repeat(32)]) else { panic!("started with the wrong key") };
    assert!(
        log.contains(&format!("the secret in comm_registrations.settings of row {registration} (tenant default)")),
        "{log}"
    );
    assert!(log.contains("is neither the current key"), "{log}");
    assert!(log.contains("--secrets-previous-keys"), "{log}");
    assert_eq!(stored_secrets(&data), before, "nothing was changed");

    // A key that is not a key is refused without being repeated.
    let Err(log) = spawn(&data, &["--secrets-key", "NOTAKEY-hunter2"]) else { panic!("started with a malformed key") };
    assert!(log.contains("--secrets-key is neither 64 hex digits nor base64"), "{log}");
    assert!(!log.contains("NOTAKEY-hunter2"), "{log}");

    // The key file lost: a new key cannot open the old secrets, and the error says so.
    std::fs::remove_file(data.join("secrets-key")).unwrap();
    let Err(log) = spawn(&data, &[]) else { panic!("started without its key") };
    assert!(log.contains("there was no secrets-key file, so a new secrets key was made"), "{log}");
    assert_eq!(stored_secrets(&data), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_secret_copied_onto_another_row_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let server = Server::start_in(&data, &[]);
    let (sid, _) = app_with_webhook(&server, "http://1.1.1.1:9", WEBHOOK_SECRET).await;
    let victim = register(
        &server,
        json!({ "appSid": sid, "channelId": "other", "kind": "webhook", "url": "http://1.1.1.1:9/other", "secret": "whsec-other-0123456789" }),
    )
    .await;
    assert!(server.terminate().success());

    // Someone with write access to the database swaps one row's sealed settings for another's.
    let db = rusqlite::Connection::open(data.join("stage.db")).unwrap();
    db.execute(
        "UPDATE comm_registrations SET settings = (SELECT settings FROM comm_registrations WHERE channel_id = 'signed')
         WHERE id = ?1",
        [&victim],
    )
    .unwrap();
    drop(db);
    let Err(log) = spawn(&data, &[]) else { panic!("started with a moved secret") };
    assert!(log.contains(&format!("comm_registrations.settings of row {victim}")), "{log}");
    assert!(log.contains("it was altered, or copied from another row"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_stored_in_plain_text_before_sealing_is_sealed_at_the_next_start() {
    let hits = Hits::default();
    let hook = start_hook(hits.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_owned();
    let server = Server::start_in(&data, &args(&delivering()));
    let (sid, registration) = app_with_webhook(&server, &hook, WEBHOOK_SECRET).await;
    assert!(server.terminate().success());

    // Rows as an older version wrote them: plain text.
    let legacy_secret = "whsec-LEGACY-plain-0123456789";
    let legacy_refresh = "1//LEGACY-plain-refresh";
    let legacy_client_secret = "LEGACY-plain-client-secret";
    let db = rusqlite::Connection::open(data.join("stage.db")).unwrap();
    let settings = json!({ "url": format!("{hook}/signed"), "secret": legacy_secret }).to_string();
    db.execute("UPDATE comm_registrations SET settings = ?1 WHERE id = ?2", [&settings, &registration]).unwrap();
    db.execute(
        "INSERT INTO app_google_credentials (app_sid, tenant_id, refresh_token, client_id, client_secret, updated_at)
         VALUES (?1, 'default', ?2, 'client-1', ?3, 0)",
        [&sid, legacy_refresh, legacy_client_secret],
    )
    .unwrap();
    drop(db);
    assert_somewhere_in(&data, legacy_refresh);

    let server = Server::start_in(&data, &args(&delivering()));
    sealed_key_id(&data);
    assert!(server_log(&data).contains("newly_sealed=3"), "{}", server_log(&data));
    assert_nowhere_in(&data, &[legacy_secret, legacy_refresh, legacy_client_secret]);
    assert_delivered(&deliver(&server, &sid, "signed").await);
    assert!(signed_with(hits.lock().unwrap().last().unwrap(), legacy_secret));
    let status = server.get(&format!("/api/v1/stage/apps/{sid}/google-credentials")).await;
    assert_eq!(status.body["data"]["configured"], true, "{:?}", status.body);
}
