//! Attacks on the HTTP surface, against the real binary: forging the local admin, splitting
//! responses, setting cookies for the whole origin, reading another caller's idempotent
//! answer, and idempotency keys left "running" by a crash.

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

/// Writes `bytes` on one fresh connection and reads until the server closes it.
async fn exchange(server: &Server, bytes: Vec<u8>) -> Vec<u8> {
    let address = server.base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.write_all(&bytes).expect("write");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("the server answers and closes the connection");
        received
    })
    .await
    .unwrap()
}

/// One response read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Splits what a connection received into responses, each framed by its `content-length`.
fn responses(mut bytes: &[u8]) -> Vec<Raw> {
    let mut found = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
        let head = std::str::from_utf8(&bytes[..end]).expect("a text head");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let lengths: Vec<usize> =
            headers.iter().filter(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap()).collect();
        assert_eq!(lengths.len(), 1, "one content-length per response: {head}");
        assert!(headers.iter().all(|(n, _)| n != "transfer-encoding"), "{head}");
        let body = bytes[end + 4..end + 4 + lengths[0]].to_vec();
        bytes = &bytes[end + 4 + lengths[0]..];
        found.push(Raw { status, headers, body });
    }
    found
}

/// A GET with `headers`, for requests the harness' helpers do not make.
async fn get_with(server: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn workflow_files(workflows: Value) -> Value {
    json!({ "/app/shift.workflows.json": workflows.to_string() })
}

/// A public workflow `w` of one `response` step.
fn responding(response: Value) -> Value {
    workflow_files(
        json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": [{ "response": response }] } } }),
    )
}

// --- --auth local: who is the local admin -------------------------------------------------

#[tokio::test]
async fn a_web_page_gets_no_admin_from_local_mode() {
    let server = Server::start();
    assert_eq!(get_with(&server, "/api/v1/me", &[]).await.1["data"]["admin"], true);
    assert_eq!(get_with(&server, "/api/v1/me", &[("sec-fetch-site", "none")]).await.1["data"]["admin"], true);

    for page in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("origin", "http://127.0.0.1:3000"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-origin"),
    ] {
        let (status, body) = get_with(&server, "/api/v1/me", &[page]).await;
        assert_eq!(status, 401, "{page:?}: {body}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    }
    let (_, body) = get_with(&server, "/api/v1/me", &[("origin", "http://evil.example")]).await;
    assert!(body["error"]["message"].as_str().unwrap().contains("Origin"), "{body}");

    // A page cannot create sessions in the admin's name either.
    let created =
        server.send_with(Method::POST, "/api/v1/stage/sessions", json!({}), &[("origin", "http://evil.example")]).await;
    assert_eq!(created.status, 401, "{:?}", created.body);
}

#[tokio::test]
async fn a_request_forwarded_by_a_proxy_gets_no_admin_from_local_mode() {
    let server = Server::start();
    for header in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-host", "stage.example.com"),
        ("x-forwarded-proto", "https"),
        ("via", "1.1 nginx"),
        ("cf-connecting-ip", "203.0.113.7"),
        ("true-client-ip", "203.0.113.7"),
        ("x-client-ip", "203.0.113.7"),
    ] {
        let (status, body) = get_with(&server, "/api/v1/me", &[header]).await;
        assert_eq!(status, 401, "{header:?}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("--auth required"), "{body}");
    }

    // On a public workflow such a request is simply anonymous.
    let sid = server.publish(responding(json!({ "body": { "email": "{{ auth.email }}" } }))).await;
    let path = format!("/api/v1/run/{sid}/w");
    let local = server.send_with(Method::POST, &path, json!({}), &[]).await;
    assert_eq!(local.body, json!({ "email": "admin@localhost" }));
    let forwarded = server.send_with(Method::POST, &path, json!({}), &[("x-forwarded-for", "203.0.113.7")]).await;
    assert_eq!(forwarded.body, json!({ "email": null }));
}

#[tokio::test]
async fn a_rebound_dns_name_is_refused_on_every_route_in_local_mode() {
    let server = Server::start();
    let sid = server.publish(responding(json!({ "body": "hi" }))).await;
    let run = format!("/api/v1/run/{sid}/w");
    let backend = format!("/stage/{sid}/api/x");
    for path in ["/healthz", "/api/v1/me", &run, &backend, "/nowhere"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
        let answers = responses(&exchange(&server, request.into_bytes()).await);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].status, 403, "{path}");
        let body: Value = serde_json::from_slice(&answers[0].body).unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("evil.example") && message.contains("--auth required"), "{message}");
    }
    // An authority in the request line is held to the same rule.
    let absolute = "GET http://evil.example/healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(responses(&exchange(&server, absolute.into()).await)[0].status, 403);
    // Loopback names, with any port, are served.
    for host in ["localhost", "localhost:3000", "app.localhost", "127.0.0.1", "127.0.0.2:8080", "[::1]:3000"] {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answers = responses(&exchange(&server, request.into_bytes()).await);
        assert_eq!((answers[0].status, answers[0].body.as_slice()), (200, &b"ok"[..]), "{host}");
    }

    // With --auth required, any name is served (keys, not addresses, authorise).
    let required = Server::start_with(&["--auth", "required"]);
    let request = "GET /healthz HTTP/1.1\r\nHost: stage.example.com\r\nConnection: close\r\n\r\n";
    assert_eq!(responses(&exchange(&required, request.into()).await)[0].status, 200);
}

// --- Responses are framed by the host -----------------------------------------------------

#[tokio::test]
async fn a_response_step_cannot_split_its_response_or_poison_the_next_one() {
    let server = Server::start();
    let injected = "ok\r\nHTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\npoisoned";
    let sid = server
        .publish(responding(json!({
            "headers": {
                "content-type": "text/plain",
                "content-length": "2",
                "transfer-encoding": "chunked",
                "connection": "keep-alive, x-hop",
                "x-hop": "1",
                "keep-alive": "timeout=1",
                "upgrade": "websocket",
                "x-kept": "yes"
            },
            "body": injected
        })))
        .await;

    // The run and a pipelined GET /healthz on the same connection.
    let body = json!({ "input": {} }).to_string();
    let pipelined = format!(
        "POST /api/v1/run/{sid}/w HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answers = responses(&exchange(&server, pipelined.into_bytes()).await);
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0].status, 200);
    assert_eq!(String::from_utf8_lossy(&answers[0].body), injected);
    assert_eq!(answers[0].header("content-length"), Some(injected.len().to_string().as_str()));
    assert_eq!(answers[0].header("x-kept"), Some("yes"));
    for dropped in ["x-hop", "keep-alive", "upgrade", "connection"] {
        assert_eq!(answers[0].header(dropped), None, "{dropped}");
    }
    assert_eq!((answers[1].status, answers[1].body.as_slice()), (200, &b"ok"[..]));
}

#[tokio::test]
async fn a_response_step_header_that_is_not_http_is_refused_at_publish() {
    let server = Server::start();
    let session = server.new_session().await;
    let files = responding(json!({ "headers": { "x-a": "1\r\nset-cookie: admin=1", "x b": "2" }, "body": "hi" }));
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })).await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Split" })).await;
    assert_eq!(published.status, 422, "{:?}", published.body);
    assert_eq!(published.body["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(
        published.body["error"]["details"]["problems"],
        json!([
            { "path": "workflows.w.steps[0].response.headers.x-a",
              "message": "header \"x-a\" has a value that is not valid HTTP (no control characters such as CR, LF or NUL)" },
            { "path": "workflows.w.steps[0].response.headers[\"x b\"]",
              "message": "header \"x b\" has a name that is not valid HTTP (a token: letters, digits and !#$%&'*+-.^_`|~)" },
        ])
    );
}

#[tokio::test]
async fn a_header_that_templating_makes_invalid_fails_the_run() {
    let server = Server::start();
    let sid = server.publish(responding(json!({ "headers": { "x-echo": "{{ input.v }}" }, "body": "hi" }))).await;
    let path = format!("/api/v1/run/{sid}/w");
    let fine = server.post(&path, json!({ "input": { "v": "plain" } })).await;
    assert_eq!(fine.headers["x-echo"], "plain");

    let split = server.post(&path, json!({ "input": { "v": "1\r\nset-cookie: admin=1" } })).await;
    assert_eq!(split.status, 502, "{:?}", split.body);
    assert!(split.headers.get("set-cookie").is_none());
    assert_eq!(split.body["error"]["code"], "STEP_FAILED");
    assert_eq!(split.body["error"]["details"]["kind"], "response");
    assert_eq!(split.body["error"]["details"]["stepIndex"], 0);
    let message = split.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("step 0 (#0, response) failed") && message.contains("x-echo"), "{message}");
}

// --- An app's cookies stay under its path -------------------------------------------------

fn set_cookies(headers: &reqwest::header::HeaderMap) -> Vec<&str> {
    headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect()
}

#[tokio::test]
async fn a_backend_cannot_set_cookies_or_headers_for_the_whole_origin() {
    let server = Server::start();
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/backend-chaos.wasm")).unwrap();
    use base64::Engine;
    let files = json!({ "/app/backend.wasm": { "encoding": "base64",
        "content": base64::engine::general_purpose::STANDARD.encode(wasm) } });
    let sid = server.publish(files).await;

    let asked = json!({ "status": 200, "body": "hello", "headers": [
        ["set-cookie", "session=abc; Domain=127.0.0.1; Path=/; HttpOnly; SameSite=Lax"],
        ["set-cookie", "theme=dark"],
        ["set-cookie", "deep=1; Path=/stage/{sid}/api/x"],
        ["set-cookie", "__Host-admin=1; Path=/; Secure"],
        ["strict-transport-security", "max-age=63072000; includeSubDomains"],
        ["clear-site-data", "\"cookies\""],
        ["service-worker-allowed", "/"],
        ["x-kept", "yes"]
    ] });
    let asked: Value = serde_json::from_str(&asked.to_string().replace("{sid}", &sid)).unwrap();
    let answer = server
        .send_bytes(
            Method::POST,
            &format!("/stage/{sid}/api/respond"),
            &[("content-type", "application/json")],
            asked.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.body, b"hello");
    assert_eq!(answer.header("x-kept"), Some("yes"));
    assert_eq!(
        set_cookies(&answer.headers),
        [
            format!("session=abc; HttpOnly; SameSite=Lax; Path=/stage/{sid}/"),
            format!("theme=dark; Path=/stage/{sid}/"),
            format!("deep=1; Path=/stage/{sid}/api/x"),
        ]
    );
    for dropped in ["strict-transport-security", "clear-site-data", "service-worker-allowed"] {
        assert_eq!(answer.header(dropped), None, "{dropped}");
    }
}

#[tokio::test]
async fn a_workflow_cannot_set_cookies_for_the_whole_origin() {
    let server = Server::start();
    let sid = server
        .publish(responding(json!({ "headers": { "set-cookie": "sid=1; Path=/; Domain=localhost" }, "body": "hi" })))
        .await;
    let answer = server.post(&format!("/api/v1/run/{sid}/w"), json!({})).await;
    assert_eq!(set_cookies(&answer.headers), [format!("sid=1; Path=/stage/{sid}/")]);
}

// --- Idempotency keys belong to their caller ----------------------------------------------

/// Publishes `files` with the admin key of a `--auth required` server.
async fn publish_as(server: &Server, auth: &str, files: Value) -> String {
    let session = server.send(Method::POST, "/api/v1/stage/sessions", None, Some(auth)).await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let push = format!("/api/v1/stage/sessions/{session}/push");
    assert_eq!(server.send(Method::POST, &push, Some(json!({ "files": files })), Some(auth)).await.status, 200);
    let published = server
        .send(Method::POST, "/api/v1/stage/apps", Some(json!({ "sessionId": session, "name": "Orders" })), Some(auth))
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    published.body["data"]["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_idempotency_key_never_replays_another_callers_answer() {
    let server = Server::start_with(&["--auth", "required", "--jwt-secret", "test-secret"]);
    let owner = format!("Bearer {}", server.admin_key());
    let sid = publish_as(
        &server,
        &owner,
        workflow_files(json!({ "version": 1, "workflows": { "order": { "auth": "public", "steps": [
            { "id": "event", "pulse.track": { "name": "order", "userId": "{{ input.order }}" } },
            { "response": { "body": {
                "email": "{{ auth.email }}", "private": "data of {{ auth.email }}", "eventId": "{{ steps.event.id }}" } } }
        ] } } })),
    )
    .await;
    let mallory = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "mallory", "email": "mallory@example.com", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret"),
    )
    .unwrap();
    let mallory = format!("Bearer {mallory}");
    let path = format!("/api/v1/run/{sid}/order");
    let input = json!({ "input": { "order": "1" } });
    let run = |auth: Option<String>| {
        let mut headers = vec![("idempotency-key", "order-1".to_owned())];
        headers.extend(auth.map(|auth| ("authorization", auth)));
        let (server, path, input) = (&server, &path, input.clone());
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            server.send_with(Method::POST, path, input, &headers).await
        }
    };

    let owners = run(Some(owner.clone())).await;
    assert_shape(
        &owners.body,
        &json!({ "email": "admin@localhost", "private": "data of admin@localhost", "eventId": "<id:evt_>" }),
    );
    let again = run(Some(owner.clone())).await;
    assert_eq!((again.headers["idempotent-replayed"].to_str().unwrap(), &again.body), ("true", &owners.body));

    let mallorys = run(Some(mallory)).await;
    let anonymous = run(None).await;
    for (theirs, email) in [(&mallorys, json!("mallory@example.com")), (&anonymous, Value::Null)] {
        assert_eq!(theirs.status, 200, "{:?}", theirs.body);
        assert!(theirs.headers.get("idempotent-replayed").is_none());
        assert_ne!(theirs.headers["x-stage-run-id"], owners.headers["x-stage-run-id"]);
        assert_eq!(theirs.body["email"], email);
        // Their steps had keys of their own: the event was tracked again, not replayed.
        assert_ne!(theirs.body["eventId"], owners.body["eventId"]);
    }
    let runs: i64 = server.db().query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0)).unwrap();
    assert_eq!(runs, 3);
}

// --- Idempotency keys after a crash -------------------------------------------------------

#[tokio::test]
async fn a_key_whose_run_died_with_the_server_replays_the_settled_failure() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    server.install_chaos("test.chaos", json!([])).await;
    let files = workflow_files(json!({ "version": 1, "workflows": { "slow": { "auth": "public", "steps": [
        { "test.chaos": { "mode": "spin" }, "timeoutMs": 60000 } ] } } }));
    let sid = server.publish(files).await;
    let path = format!("/api/v1/run/{sid}/slow?wait=200");
    let key = [("idempotency-key", "slow-1")];
    let accepted = server.send_with(Method::POST, &path, json!({ "input": {} }), &key).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let run_id = accepted.body["data"]["runId"].as_str().unwrap().to_owned();

    server.crash();
    let server = Server::start_in(dir.path(), &[]);
    let replay = server.send_with(Method::POST, &path, json!({ "input": {} }), &key).await;
    assert_eq!(replay.status, 500, "{:?}", replay.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.headers["x-stage-run-id"].to_str().unwrap(), run_id);
    assert_eq!(replay.body["success"], false);
    assert_eq!(replay.body["error"]["code"], "INTERNAL");
    assert_eq!(replay.body["error"]["details"], json!({ "runId": run_id }));
    assert!(replay.body["error"]["message"].as_str().unwrap().contains("server stopped"), "{:?}", replay.body);
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(record.body["data"]["status"], "failed");
    assert_eq!(record.body["data"]["answer"]["status"], 500);
}

#[tokio::test]
async fn a_run_that_crashes_the_executor_does_not_leave_its_key_running() {
    let server = Server::start();
    // This template panicked the run's task (capacity overflow) when the finding was made.
    let sid = server.publish(responding(json!({ "body": "{{ 'a'|indent(9223372036854775808) }}" }))).await;
    let path = format!("/api/v1/run/{sid}/w");
    let key = [("idempotency-key", "crash-1")];
    let first = server.send_with(Method::POST, &path, json!({ "input": {} }), &key).await;
    assert!(first.status >= 400, "{} {:?}", first.status, first.body);
    assert_eq!(first.body["success"], false);
    let replay = server.send_with(Method::POST, &path, json!({ "input": {} }), &key).await;
    assert_eq!((replay.status, &replay.body), (first.status, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(server.get("/healthz").await.status, 200);
}
