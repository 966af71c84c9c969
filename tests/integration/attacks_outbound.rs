//! Attacks on the host's outbound path (issue 18, findings 5, 6 and 10): a tenant aiming
//! deliveries at the host's own network through SMTP URLs another parser reads
//! differently, through IPv6 spellings of loopback, and a step making the host send its
//! Google credentials over plain HTTP. Receivers listen on loopback and count what reaches
//! them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};

use crate::common::{Answer, Server};

const APP_TSX: &str = "export default function App() { return <h1>Outbound</h1>; }";

async fn publish(server: &Server) -> String {
    let workflows = json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": [{ "response": { "body": "ok" } }] } } });
    server.publish(json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": workflows.to_string() })).await
}

async fn register(server: &Server, body: Value) -> Answer {
    server.post("/api/v1/communication/registrations", body).await
}

/// A TCP listener on loopback that counts the connections it accepts (and closes them).
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, accepted)
}

/// Asserts a 422 naming `field`, with a message containing each of `parts`.
#[track_caller]
fn assert_refused(answer: &Answer, field: &str, parts: &[&str], what: &str) {
    assert_eq!(answer.status, 422, "{what}: {:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "VALIDATION_FAILED", "{what}");
    assert_eq!(answer.body["error"]["details"]["field"], field, "{what}: {:?}", answer.body);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{field} ")), "{what}: {message}");
    for part in parts {
        assert!(message.contains(part), "{what}: {message:?} does not say {part:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_urls_another_parser_reads_differently_are_refused_at_registration() {
    let (port, accepted) = counting_listener().await;
    let server = Server::start_with(&["--delivery-retry-base-ms", "50"]);
    let sid = publish(&server).await;

    for (smtp_url, says) in [
        (format!("smtp://127.0.0.1:{port} "), "must not contain spaces"),
        (format!("smtp://a{{b@127.0.0.1:{port}"), "is not a well-formed URL"),
        (format!("smtp://127.0.0.1:{port}/x y"), "must not contain spaces"),
        (format!("smtp://127.0.0.1:{port}/x"), "must not have a path"),
        (format!("\tsmtp://127.0.0.1:{port}"), "must not contain spaces"),
        (format!("SMTP://127.0.0.1:{port}"), "is not a well-formed URL"),
    ] {
        let refused = register(
            &server,
            json!({ "appSid": sid, "channelId": "mail", "kind": "email_smtp", "smtpUrl": smtp_url, "from": "noreply@stage.test" }),
        )
        .await;
        assert_refused(&refused, "smtpUrl", &[says], &smtp_url);
    }

    // Well-formed, but loopback: refused too, naming the address and its range.
    for (smtp_url, says) in [
        (format!("smtp://127.0.0.1:{port}"), "127.0.0.1 is a non-public address (loopback, 127.0.0.0/8)"),
        (format!("smtps://user:pw@[::1]:{port}"), "::1 is a non-public address (loopback, ::1/128)"),
        (format!("smtp://localhost:{port}?tls=required"), "localhost resolves to the non-public address"),
    ] {
        let refused = register(
            &server,
            json!({ "appSid": sid, "channelId": "mail", "kind": "email_smtp", "smtpUrl": smtp_url, "from": "noreply@stage.test" }),
        )
        .await;
        assert_refused(
            &refused,
            "smtpUrl",
            &[says, "does not allow private egress (--allow-private-egress)"],
            &smtp_url,
        );
    }

    // A PATCH cannot smuggle one in either.
    let relay = register(
        &server,
        json!({ "appSid": sid, "channelId": "mail", "kind": "email_smtp",
                "smtpUrl": "smtp://mailer:pw@mail.stage-relay.invalid:587", "from": "noreply@stage.test" }),
    )
    .await;
    assert_eq!(relay.status, 201, "{:?}", relay.body);
    let id = relay.body["data"]["id"].as_str().unwrap();
    for smtp_url in [format!("smtp://127.0.0.1:{port} "), format!("smtp://127.0.0.1:{port}")] {
        let patched =
            server.patch(&format!("/api/v1/communication/registrations/{id}"), json!({ "smtpUrl": smtp_url })).await;
        assert_refused(&patched, "smtpUrl", &[], &smtp_url);
    }
    let kept = server.get(&format!("/api/v1/communication/registrations/{id}")).await;
    assert_eq!(kept.body["data"]["smtpUrl"], "smtp://mailer:****@mail.stage-relay.invalid:587");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing connected to the loopback SMTP listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_aimed_at_the_hosts_own_network_are_refused_at_registration() {
    let (port, accepted) = counting_listener().await;
    let server = Server::start();
    let sid = publish(&server).await;

    let cases = [
        (format!("http://127.0.0.1:{port}/hook"), "127.0.0.1 is a non-public address (loopback, 127.0.0.0/8)"),
        (format!("http://localhost:{port}/hook"), "localhost resolves to the non-public address"),
        (format!("http://[::1]:{port}/hook"), "::1 is a non-public address (loopback, ::1/128)"),
        (
            format!("http://[64:ff9b::7f00:1]:{port}/hook"),
            "64:ff9b::7f00:1 is a non-public address (NAT64, 64:ff9b::/96)",
        ),
        (format!("http://[2002:7f00:1::]:{port}/hook"), "2002:7f00:1:: is a non-public address (6to4, 2002::/16)"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/hook"),
            "::ffff:127.0.0.1 is a non-public address (IPv4-mapped, ::ffff:0:0/96)",
        ),
        (
            format!("http://[::127.0.0.1]:{port}/hook"),
            "::7f00:1 is a non-public address (IPv4-compatible (deprecated), ::/96)",
        ),
        ("http://169.254.169.254/latest/meta-data".to_owned(), "(link-local, 169.254.0.0/16)"),
        ("https://10.1.2.3/hook".to_owned(), "(private use, 10.0.0.0/8)"),
        (format!("http://[fd00::1]:{port}/hook"), "(unique local, fc00::/7)"),
    ];
    for kind in ["webhook", "slack_webhook"] {
        for (url, says) in &cases {
            let mut body = json!({ "appSid": sid, "channelId": "hook", "kind": kind, "url": url });
            if kind == "webhook" {
                body["secret"] = json!("whsec_0123456789abcdef");
            }
            let refused = register(&server, body).await;
            assert_refused(&refused, "url", &[says, "does not allow private egress"], &format!("{kind} {url}"));
        }
    }

    let hook = register(
        &server,
        json!({ "appSid": sid, "channelId": "hook", "kind": "slack_webhook", "url": "https://hooks.stage-test.invalid/services/T/B/X" }),
    )
    .await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    let id = hook.body["data"]["id"].as_str().unwrap();
    let patched = server
        .patch(
            &format!("/api/v1/communication/registrations/{id}"),
            json!({ "url": format!("http://[64:ff9b::7f00:1]:{port}/hook") }),
        )
        .await;
    assert_refused(&patched, "url", &["(NAT64, 64:ff9b::/96)"], "PATCH");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing connected to the loopback receiver");
}

/// What a loopback webhook receiver got.
type Hits = Arc<Mutex<Vec<Value>>>;

async fn hook(State(hits): State<Hits>, body: String) -> &'static str {
    hits.lock().unwrap().push(serde_json::from_str(&body).unwrap_or(Value::Null));
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_private_egress_allowed_a_loopback_webhook_still_delivers() {
    let hits = Hits::default();
    let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = Server::start_with(&["--allow-private-egress", "--delivery-retry-base-ms", "50"]);
    let sid = publish(&server).await;

    let registered = register(
        &server,
        json!({ "appSid": sid, "channelId": "hook", "kind": "webhook", "url": url, "secret": "whsec_0123456789abcdef" }),
    )
    .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let sent = server
        .post(
            "/api/v1/communication/messages",
            json!({ "appSid": sid, "channelId": "hook", "to": "ops@example.com", "text": "hello" }),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let message_id = sent.body["data"]["messageId"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..200 {
        let message = server.get(&format!("/api/v1/communication/messages/{message_id}")).await;
        status = message.body["data"]["status"].clone();
        if status == "delivered" || status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "delivered");
    let hits = hits.lock().unwrap();
    assert_eq!((hits.len(), &hits[0]["messageId"]), (1, &json!(message_id)));
}

/// A local stand-in for Google: a token endpoint that issues a token for any grant, and
/// every other request recorded with its `Authorization` header.
#[derive(Default)]
struct FakeGoogle {
    token_requests: usize,
    requests: Vec<(String, Option<String>)>,
}

type SharedGoogle = Arc<Mutex<FakeGoogle>>;

async fn google_token(State(google): State<SharedGoogle>) -> axum::Json<Value> {
    google.lock().unwrap().token_requests += 1;
    axum::Json(json!({ "access_token": "ya29.operator-token", "expires_in": 3599, "token_type": "Bearer" }))
}

async fn google_api(State(google): State<SharedGoogle>, uri: Uri, headers: HeaderMap) -> axum::Json<Value> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    google.lock().unwrap().requests.push((uri.to_string(), authorization));
    axum::Json(json!({ "spreadsheetId": "x" }))
}

async fn start_fake_google(google: SharedGoogle) -> String {
    let app =
        axum::Router::new().route("/token", axum::routing::post(google_token)).fallback(google_api).with_state(google);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn service_account_file(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let key = json!({
        "type": "service_account",
        "private_key_id": "test-key-1",
        "private_key": include_str!("../keys/google-test-private.pem"),
        "client_email": "stage-runner@stage-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    let path = dir.join("service-account.json");
    std::fs::write(&path, key.to_string()).unwrap();
    path
}

/// Publishes an app whose `fetch` workflow POSTs to `input.url` from a plugin allowed to
/// reach the Sheets host over https, plain http, and https on another port.
async fn publish_sheets_prober(server: &Server) -> String {
    let allow = json!([
        { "scheme": "https", "host": "sheets.googleapis.com" },
        { "scheme": "http", "host": "sheets.googleapis.com" },
        { "scheme": "https", "host": "sheets.googleapis.com", "port": 8443 },
    ]);
    server.install_chaos("acme.sheetsProbe", allow).await;
    let workflows = json!({ "version": 1, "workflows": { "fetch": { "auth": "public", "steps": [
        { "acme.sheetsProbe": { "mode": "fetch", "url": "{{ input.url }}", "method": "POST" } }
    ] } } });
    server.publish(json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": workflows.to_string() })).await
}

const APPEND: &str = "/v4/spreadsheets/x/values/A1:append";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_cannot_make_the_host_send_google_credentials_over_http_or_another_port() {
    let google = SharedGoogle::default();
    let base = start_fake_google(google.clone()).await;
    let keys = tempfile::tempdir().unwrap();
    let key_file = service_account_file(keys.path(), &format!("{base}/token"));
    let key_file = key_file.to_str().unwrap();

    for upstream in ["google", base.as_str()] {
        let server = Server::start_with(&["--sheets-upstream", upstream, "--google-service-account", key_file]);
        let sid = publish_sheets_prober(&server).await;
        for url in
            [format!("http://sheets.googleapis.com{APPEND}"), format!("https://sheets.googleapis.com:8443{APPEND}")]
        {
            let refused = server.post(&format!("/api/v1/run/{sid}/fetch"), json!({ "input": { "url": url } })).await;
            assert_eq!(refused.status, 502, "{upstream} {url}: {:?}", refused.body);
            assert_eq!(refused.body["error"]["details"]["error"]["class"], "unauthorized", "{upstream} {url}");
            let message = refused.body["error"]["message"].as_str().unwrap();
            assert!(
                message
                    .contains("go only to https://sheets.googleapis.com (port 443), the one origin Google credentials"),
                "{upstream} {url}: {message}"
            );
        }
        {
            let google = google.lock().unwrap();
            assert_eq!(google.token_requests, 0, "{upstream}: no token was even asked for");
            assert!(google.requests.is_empty(), "{upstream}: {:?}", google.requests);
        }
        if upstream == base {
            // The origin the credentials belong to gets them, through the configured upstream.
            let url = format!("https://sheets.googleapis.com{APPEND}");
            let sent = server.post(&format!("/api/v1/run/{sid}/fetch"), json!({ "input": { "url": url } })).await;
            assert_eq!(sent.status, 200, "{:?}", sent.body);
            let google = google.lock().unwrap();
            assert_eq!(google.requests, [(APPEND.to_owned(), Some("Bearer ya29.operator-token".to_owned()))]);
        }
    }
}

#[test]
fn an_operator_upstream_that_would_carry_a_secret_over_plain_http_is_refused_at_startup() {
    for args in [
        ["--stripe-secret-key", "sk_test_1", "--stripe-base-url", "http://stripe.stage-test.invalid"],
        ["--inference-api-key", "key-1", "--inference-base-url", "http://llm.stage-test.invalid/v1"],
        ["--sheets-upstream", "http://sheets.stage-test.invalid", "--google-subject", "a@b.c"],
        ["--google-token-url", "http://oauth.stage-test.invalid/token", "--google-subject", "a@b.c"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let failed = crate::common::spawn(dir.path(), &args).expect_err("the server started");
        assert!(
            failed.contains("must be an https:// URL (plain http:// only to a loopback address)"),
            "{args:?}: {failed}"
        );
    }
    // Without a secret to carry, or on loopback, plain http is fine.
    for args in [
        ["--inference-base-url", "http://llm.stage-test.invalid/v1", "--google-subject", "a@b.c"],
        ["--stripe-secret-key", "sk_test_1", "--stripe-base-url", "http://127.0.0.1:9"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, _) = crate::common::spawn(dir.path(), &args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
