//! Communication: registrations, the `communication.send` step, and the outbox delivering
//! to real local receivers (an HTTP server playing the Slack hook or a webhook, an SMTP
//! sink), with retries, tracking, and a crash in the middle.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hmac::Mac;
use serde_json::{Value, json};

use crate::common::{Answer, Server, assert_shape};

const APP_TSX: &str = "export default function App() { return <h1>Notify</h1>; }";

/// The reference's `communication.send` block, once for Slack and once for email.
fn notify_workflows() -> Value {
    let send = |channel: &str| {
        json!({ "communication.send": {
            "channelId": channel,
            "to": "{{ auth.email }}",
            "subject": "New signup",
            "text": "Hello {{ input.name }}",
            "html": "<p>Hello <b>{{ input.name }}</b></p>",
            "metadata": { "appSid": "{{ app.sid }}" }
        } })
    };
    let mut slack = send("{{ config.slackChannelId }}");
    slack["id"] = json!("slack");
    let mut email = send("mail");
    email["id"] = json!("email");
    json!({
        "version": 1,
        "config": { "slackChannelId": "C123" },
        "workflows": { "notify": { "steps": [slack, email] } }
    })
}

async fn publish(server: &Server) -> String {
    server
        .publish(json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": notify_workflows().to_string() }))
        .await
}

fn delivering_server() -> Server {
    Server::start_with(&["--allow-private-egress", "--delivery-retry-base-ms", "50"])
}

/// What a local HTTP receiver got: body, message id header and signature headers.
#[derive(Debug, Clone)]
struct Received {
    body: Value,
    message_id: String,
    timestamp: Option<String>,
    signature: Option<String>,
    at: std::time::Instant,
}

/// A local receiver answering from a script of statuses (the last one repeats), or
/// hanging while `hang` is set.
#[derive(Default)]
struct Receiver {
    script: Vec<(u16, Option<&'static str>)>,
    received: Vec<Received>,
    hang: bool,
}

type SharedReceiver = Arc<Mutex<Receiver>>;

async fn receive(State(receiver): State<SharedReceiver>, headers: HeaderMap, body: String) -> axum::response::Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, retry_after, hang) = {
        let mut receiver = receiver.lock().unwrap();
        receiver.received.push(Received {
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            message_id: header("x-stage-message-id").unwrap_or_default(),
            timestamp: header("x-stage-timestamp"),
            signature: header("x-stage-signature"),
            at: std::time::Instant::now(),
        });
        let index = (receiver.received.len() - 1).min(receiver.script.len().saturating_sub(1));
        let (status, retry_after) = receiver.script.get(index).copied().unwrap_or((200, None));
        (status, retry_after, receiver.hang)
    };
    if hang {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    let mut response =
        (StatusCode::from_u16(status).unwrap(), if status == 200 { "ok" } else { "invalid_payload" }).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert("retry-after", seconds.parse().unwrap());
    }
    response
}

/// Starts a receiver; returns its URL.
async fn start_receiver(receiver: SharedReceiver) -> String {
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Recipients and raw data of each accepted email.
type Mailbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

/// A real SMTP server in the test process that keeps every message it accepts.
#[derive(Clone, Default)]
struct SmtpSink {
    current: Vec<u8>,
    recipients: Vec<String>,
    messages: Mailbox,
}

impl mailin_embedded::Handler for SmtpSink {
    fn data_start(&mut self, _: &str, _: &str, _: bool, to: &[String]) -> mailin_embedded::Response {
        self.current.clear();
        self.recipients = to.to_vec();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let text = String::from_utf8_lossy(&self.current).into_owned();
        self.messages.lock().unwrap().push((self.recipients.clone(), text));
        mailin_embedded::response::OK
    }
}

/// Starts the SMTP sink on a free port; returns its `smtp://` URL.
fn start_smtp_sink(sink: SmtpSink) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let mut server = mailin_embedded::Server::new(sink);
    server.with_name("sink.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    url
}

async fn register(server: &Server, body: Value) -> Answer {
    server.post("/api/v1/communication/registrations", body).await
}

/// Waits until the message is delivered or failed, and returns it.
async fn settled(server: &Server, message_id: &str) -> Value {
    for _ in 0..400 {
        let message = server.get(&format!("/api/v1/communication/messages/{message_id}")).await;
        let status = message.body["data"]["status"].as_str().unwrap_or_default().to_owned();
        if status == "delivered" || status == "failed" {
            return message.body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {message_id} did not settle");
}

async fn send(server: &Server, sid: &str, channel: &str, text: &str) -> String {
    let sent = server
        .post(
            "/api/v1/communication/messages",
            json!({ "appSid": sid, "channelId": channel, "to": "ops@example.com", "text": text }),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    sent.body["data"]["messageId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notify_workflow_reaches_slack_and_email() {
    let hook = SharedReceiver::default();
    let hook_url = start_receiver(hook.clone()).await;
    let sink = SmtpSink::default();
    let smtp_url = start_smtp_sink(sink.clone());
    let server = delivering_server();
    let sid = publish(&server).await;

    let slack = register(
        &server,
        json!({ "appSid": sid, "channelId": "C123", "kind": "slack_webhook", "url": format!("{hook_url}?token=XXXXsecretabcd") }),
    )
    .await;
    assert_eq!(slack.status, 201, "{:?}", slack.body);
    assert_shape(
        &slack.body["data"],
        &json!({
            "id": "<id:reg_>", "appSid": sid, "channelId": "C123", "kind": "slack_webhook", "status": "active",
            "url": "http://127.0.0.1/****abcd", "createdAt": "<time>", "updatedAt": "<time>"
        }),
    );
    let email = register(
        &server,
        json!({ "appSid": sid, "channelId": "mail", "kind": "email_smtp", "smtpUrl": smtp_url, "from": "Stage <noreply@stage.test>" }),
    )
    .await;
    assert_eq!(email.status, 201, "{:?}", email.body);
    // An SMTP password is shown masked.
    let relay = register(
        &server,
        json!({ "appSid": sid, "channelId": "relay", "kind": "email_smtp",
                "smtpUrl": "smtp://mailer:hunter22secret@mail.example.com:587", "from": "noreply@stage.test" }),
    )
    .await;
    assert_eq!(relay.body["data"]["smtpUrl"], "smtp://mailer:****@mail.example.com:587");
    let duplicate =
        register(&server, json!({ "appSid": sid, "channelId": "C123", "kind": "slack_webhook", "url": hook_url }))
            .await;
    assert_eq!(duplicate.status, 409, "{:?}", duplicate.body);

    let run = server.post(&format!("/api/v1/run/{sid}/notify"), json!({ "input": { "name": "Ada" } })).await;
    assert_eq!(run.status, 200, "{:?}", run.body);
    let outputs = &run.body["data"]["outputs"];
    assert_eq!(outputs["slack"]["status"], "queued");
    let slack_id = outputs["slack"]["messageId"].as_str().unwrap().to_owned();
    let email_id = outputs["email"]["messageId"].as_str().unwrap().to_owned();

    let slack_message = settled(&server, &slack_id).await;
    assert_eq!(slack_message["status"], "delivered", "{slack_message}");
    assert_shape(
        &slack_message["attempts"],
        &json!([{ "attempt": 1, "startedAt": "<time>", "finishedAt": "<time>", "statusCode": 200, "error": null, "outcome": "delivered" }]),
    );
    {
        let hook = hook.lock().unwrap();
        assert_eq!(hook.received.len(), 1);
        assert_eq!(hook.received[0].body, json!({ "text": "*New signup*\nHello Ada" }));
        assert_eq!(hook.received[0].message_id, slack_id);
    }

    let email_message = settled(&server, &email_id).await;
    assert_eq!(email_message["status"], "delivered", "{email_message}");
    let messages = sink.messages.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let (recipients, data) = &messages[0];
    assert_eq!(recipients, &["admin@localhost"]);
    for expected in [
        "Subject: New signup",
        "To: admin@localhost",
        "From: Stage <noreply@stage.test>",
        &format!("Message-ID: <{email_id}@stage>"),
        "Content-Type: text/plain",
        "Hello Ada",
        "Content-Type: text/html",
        "<p>Hello <b>Ada</b></p>",
    ] {
        assert!(data.contains(expected), "{expected:?} missing from:\n{data}");
    }

    // No secret in any answer or run record.
    let run_id = run.headers["x-stage-run-id"].to_str().unwrap();
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    let listed = server.get(&format!("/api/v1/communication/registrations?appSid={sid}")).await;
    for answer in [record.body.to_string(), listed.body.to_string()] {
        assert!(!answer.contains("secretabcd") && !answer.contains("hunter22"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_retry_as_the_receiver_says() {
    let server = delivering_server();
    let sid = publish(&server).await;

    // 500, 500, 200: delivered on the third attempt, with the whole timeline; signed.
    let flaky = SharedReceiver::default();
    flaky.lock().unwrap().script = vec![(500, None), (500, None), (200, None)];
    let secret = "whsec_0123456789abcdef";
    let url = start_receiver(flaky.clone()).await;
    let registered = register(
        &server,
        json!({ "appSid": sid, "channelId": "flaky", "kind": "webhook", "url": url, "secret": secret }),
    )
    .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert_eq!(registered.body["data"]["secret"], "****cdef");
    let id = send(&server, &sid, "flaky", "third time lucky").await;
    let message = settled(&server, &id).await;
    assert_eq!(message["status"], "delivered");
    let outcomes: Vec<(Value, Value)> = message["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["statusCode"].clone(), a["outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [(json!(500), json!("retry")), (json!(500), json!("retry")), (json!(200), json!("delivered"))]
    );
    {
        let flaky = flaky.lock().unwrap();
        assert_eq!(flaky.received.len(), 3);
        for received in &flaky.received {
            assert_eq!(received.message_id, id, "every attempt carries the same message id");
            assert_eq!(received.body["text"], "third time lucky");
            let timestamp = received.timestamp.clone().unwrap();
            let body = serde_json::to_string(&received.body).unwrap();
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{timestamp}.{body}").as_bytes());
            assert_eq!(received.signature.clone().unwrap(), format!("v1={}", hex::encode(mac.finalize().into_bytes())));
        }
    }

    // 429 with Retry-After: 1 — the next attempt waits at least a second.
    let limited = SharedReceiver::default();
    limited.lock().unwrap().script = vec![(429, Some("1")), (200, None)];
    let url = start_receiver(limited.clone()).await;
    register(&server, json!({ "appSid": sid, "channelId": "limited", "kind": "slack_webhook", "url": url })).await;
    let id = send(&server, &sid, "limited", "slow down").await;
    assert_eq!(settled(&server, &id).await["status"], "delivered");
    {
        let limited = limited.lock().unwrap();
        assert_eq!(limited.received.len(), 2);
        let waited = limited.received[1].at - limited.received[0].at;
        assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    }

    // 400: failed at once, no retry.
    let refusing = SharedReceiver::default();
    refusing.lock().unwrap().script = vec![(400, None)];
    let url = start_receiver(refusing.clone()).await;
    register(&server, json!({ "appSid": sid, "channelId": "refusing", "kind": "slack_webhook", "url": url })).await;
    let id = send(&server, &sid, "refusing", "nope").await;
    let message = settled(&server, &id).await;
    assert_eq!(message["status"], "failed");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(message["attempts"][0]["error"], "HTTP 400: invalid_payload");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(refusing.lock().unwrap().received.len(), 1);

    // A receiver that never succeeds: attempts stop at the cap.
    let broken = SharedReceiver::default();
    broken.lock().unwrap().script = vec![(503, None)];
    let url = start_receiver(broken.clone()).await;
    let capped = Server::start_with(&[
        "--allow-private-egress",
        "--delivery-retry-base-ms",
        "10",
        "--delivery-max-attempts",
        "3",
    ]);
    let capped_sid = publish(&capped).await;
    register(&capped, json!({ "appSid": capped_sid, "channelId": "broken", "kind": "slack_webhook", "url": url }))
        .await;
    let id = send(&capped, &capped_sid, "broken", "never").await;
    let message = settled(&capped, &id).await;
    assert_eq!(message["status"], "failed");
    assert_eq!(message["attempts"].as_array().unwrap().len(), 3);
    assert!(message["attempts"][2]["error"].as_str().unwrap().contains("gave up after 3 attempts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_a_crash() {
    let receiver = SharedReceiver::default();
    receiver.lock().unwrap().hang = true;
    let url = start_receiver(receiver.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--allow-private-egress", "--delivery-retry-base-ms", "50"];
    let server = Server::start_in(dir.path(), &args);
    let sid = publish(&server).await;
    register(&server, json!({ "appSid": sid, "channelId": "ops", "kind": "slack_webhook", "url": url })).await;
    let mut ids = Vec::new();
    for index in 0..3 {
        ids.push(send(&server, &sid, "ops", &format!("message {index}")).await);
    }
    // Every message is in flight (the receiver holds them), then the server dies.
    for _ in 0..200 {
        if receiver.lock().unwrap().received.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(receiver.lock().unwrap().received.len(), 3);
    server.crash();

    receiver.lock().unwrap().hang = false;
    let server = Server::start_in(dir.path(), &args);
    for id in &ids {
        let message = settled(&server, id).await;
        assert_eq!(message["status"], "delivered", "{message}");
        assert_eq!(message["attempts"][0]["outcome"], "interrupted");
        assert_eq!(message["attempts"][1]["outcome"], "delivered");
    }
    let receiver = receiver.lock().unwrap();
    let mut delivered: Vec<String> = receiver.received[3..].iter().map(|r| r.message_id.clone()).collect();
    delivered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(delivered, expected, "each message delivered once after the restart");
    assert!(receiver.received.iter().all(|r| ids.contains(&r.message_id)), "duplicates carry the same ids");
}

#[tokio::test]
async fn missing_or_disabled_registrations_fail_the_step_clearly() {
    let server = Server::start();
    let sid = publish(&server).await;

    let missing = server.post(&format!("/api/v1/run/{sid}/notify"), json!({ "input": { "name": "Ada" } })).await;
    assert_eq!(missing.status, 502, "{:?}", missing.body);
    assert_eq!(missing.body["error"]["details"]["kind"], "communication.send");
    assert_eq!(missing.body["error"]["details"]["error"]["class"], "permanent");
    let message = missing.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("app {sid} has no registration for channel C123")), "{message}");

    let registered = register(
        &server,
        json!({ "appSid": sid, "channelId": "C123", "kind": "slack_webhook", "url": "https://hooks.slack.com/services/T0/B0/abcdefgh", "status": "disabled" }),
    )
    .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let disabled = server.post(&format!("/api/v1/run/{sid}/notify"), json!({ "input": { "name": "Ada" } })).await;
    assert_eq!(disabled.status, 502, "{:?}", disabled.body);
    let message = disabled.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("the registration of app {sid} for channel C123 is disabled")), "{message}");
    let stored: i64 = server.db().query_row("SELECT count(*) FROM comm_messages", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 0);

    // Bad registrations are refused naming the field.
    for (body, field) in [
        (json!({ "appSid": sid, "channelId": "x", "kind": "pager" }), "kind"),
        (
            json!({ "appSid": sid, "channelId": "x", "kind": "webhook", "url": "https://example.com/h", "secret": "short" }),
            "secret",
        ),
        (json!({ "appSid": sid, "channelId": "x", "kind": "slack_webhook", "url": "ftp://x" }), "url"),
        (
            json!({ "appSid": sid, "channelId": "x", "kind": "email_smtp", "smtpUrl": "smtp://127.0.0.1:25", "from": "nope" }),
            "from",
        ),
        (
            json!({ "appSid": "app_nope", "channelId": "x", "kind": "slack_webhook", "url": "https://example.com/h" }),
            "app",
        ),
    ] {
        let refused = register(&server, body).await;
        assert!(refused.status == 422 || refused.status == 404, "{field}: {:?}", refused.body);
        assert!(refused.body["error"]["message"].as_str().unwrap().contains(field), "{field}: {:?}", refused.body);
    }
    let stored: i64 = server.db().query_row("SELECT count(*) FROM comm_registrations", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, 1);
}
