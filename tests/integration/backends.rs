//! Published API backends: `/stage/:appSid/api/*` served by wasi:http components (the
//! `examples/backend-hello` crate and the `tests/fixtures/backend-chaos` fixture).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

fn example_wasm() -> Vec<u8> {
    std::fs::read(concat!(env!("OUT_DIR"), "/examples/backend-hello.wasm")).expect("backend-hello example")
}

fn chaos_wasm() -> Vec<u8> {
    std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/backend-chaos.wasm")).expect("backend-chaos fixture")
}

fn base64_file(bytes: &[u8]) -> Value {
    json!({ "content": base64::engine::general_purpose::STANDARD.encode(bytes), "encoding": "base64" })
}

/// Files of an app whose backend is `wasm`, with `manifest` as `/app/backend.json` if given.
fn backend_files(wasm: &[u8], manifest: Option<Value>) -> Value {
    let mut files = json!({ "/app/index.html": "<h1>app</h1>", "/app/backend.wasm": base64_file(wasm) });
    if let Some(manifest) = manifest {
        files["/app/backend.json"] = json!(manifest.to_string());
    }
    files
}

/// The example's `submit` workflow: track an event, answer 201 with what was received.
const EXAMPLE_WORKFLOWS: &str = include_str!("../../examples/backend-hello/app/shift.workflows.json");

#[tokio::test]
async fn the_example_backend_serves_routes_with_the_prefix_stripped() {
    let server = Server::start();
    let mut files = backend_files(&example_wasm(), None);
    files["/app/shift.workflows.json"] = json!(EXAMPLE_WORKFLOWS);
    let sid = server.publish(files).await;
    let api = |path: &str| format!("/stage/{sid}/api{path}");

    let hello = server.get(&api("/hello")).await;
    assert_eq!(hello.status, 200, "{:?}", hello.body);
    assert_shape(
        &hello.body,
        &json!({ "message": "Hello, Admin!", "app": sid, "user": { "email": "admin@localhost", "id": "<any>" } }),
    );

    // A 1 MiB body both ways, the query string and the method reach the guest unchanged.
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let echoed = server
        .send_bytes(Method::POST, &api("/echo?x=1&y=a%20b"), &[("content-type", "application/x-test")], big.clone())
        .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body.len(), big.len());
    assert!(echoed.body == big, "the echoed body differs");
    assert_eq!(echoed.header("x-echo-method"), Some("POST"));
    assert_eq!(echoed.header("x-echo-path"), Some("/echo?x=1&y=a%20b"));
    assert_eq!(echoed.header("content-type"), Some("application/x-test"));
    assert!(echoed.header("x-request-id").is_some());

    // The guest's own statuses pass through.
    let wrong_method = server.send_bytes(Method::DELETE, &api("/echo"), &[], Vec::new()).await;
    assert_eq!((wrong_method.status, wrong_method.json()), (405, json!({ "error": "DELETE is not allowed here" })));
    let unknown = server.get(&api("/nope/deeper?q=1")).await;
    assert_eq!((unknown.status, unknown.body), (404, json!({ "error": "no route /nope/deeper" })));
    let root = server.get(&format!("/stage/{sid}/api")).await;
    assert_eq!((root.status, root.body), (404, json!({ "error": "no route /" })));

    // compute: the backend runs the app's workflow with the caller's identity.
    let submitted = server.post(&api("/submit"), json!({ "name": "ada" })).await;
    assert_eq!(submitted.status, 201, "{:?}", submitted.body);
    assert_eq!(submitted.body, json!({ "received": "ada", "event": "submitted", "caller": "admin@localhost" }));
    let run_id = submitted.headers["x-stage-run-id"].to_str().unwrap().to_owned();
    let run = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run.body["data"]["status"], "succeeded", "{:?}", run.body);
    let events = server.get(&format!("/api/v1/pulse/events?stageAppId={sid}&name=submitted")).await;
    assert_eq!(events.body["data"]["events"][0]["meta"], json!({ "who": "ada" }), "{:?}", events.body);

    // An app without a backend answers 404 in the envelope.
    let plain = server.publish(json!({ "/app/index.html": "<h1>x</h1>" })).await;
    let missing = server.get(&format!("/stage/{plain}/api/hello")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND");
    assert!(missing.body["error"]["message"].as_str().unwrap().contains("has no backend"), "{:?}", missing.body);
    let unknown_app = server.get("/stage/app_nope/api/hello").await;
    assert_eq!((unknown_app.status, unknown_app.body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
}

#[tokio::test]
async fn identity_headers_come_only_from_the_verified_caller() {
    let server = Server::start_with(&["--auth", "required", "--jwt-secret", "test-secret"]);
    let admin = format!("Bearer {}", server.admin_key());
    let session = server.send(Method::POST, "/api/v1/stage/sessions", None, Some(&admin)).await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let push = json!({ "files": backend_files(&chaos_wasm(), None) });
    let pushed =
        server.send(Method::POST, &format!("/api/v1/stage/sessions/{session}/push"), Some(push), Some(&admin)).await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let published = server
        .send(Method::POST, "/api/v1/stage/apps", Some(json!({ "sessionId": session, "name": "Who" })), Some(&admin))
        .await;
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let inspect = format!("/stage/{sid}/api/inspect?a=1");
    let spoof = [("x-stage-user-email", "evil@x.test"), ("x-stage-app-sid", "app_other"), ("x-custom", "kept")];

    let anonymous = server.send_bytes(Method::GET, &inspect, &spoof, Vec::new()).await.json();
    assert_eq!(anonymous["path"], "/inspect?a=1");
    let headers = &anonymous["headers"];
    assert_eq!(headers["x-stage-app-sid"], sid.as_str());
    assert_eq!(headers["x-custom"], "kept");
    assert!(headers.get("x-stage-user-email").is_none(), "a spoofed identity reached the guest: {headers}");

    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "user-7", "email": "end@user.test", "name": "End User", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret"),
    )
    .unwrap();
    let bearer = format!("Bearer {token}");
    let mut with_token = spoof.to_vec();
    with_token.push(("authorization", &bearer));
    let end_user = server.send_bytes(Method::GET, &inspect, &with_token, Vec::new()).await.json();
    let headers = &end_user["headers"];
    assert_eq!(headers["x-stage-user-email"], "end@user.test");
    assert_eq!(headers["x-stage-user-name"], "End User");
    assert_eq!(headers["x-stage-user-id"], "user-7");
    assert_eq!(headers["x-stage-app-sid"], sid.as_str());
    assert!(headers.get("authorization").is_none(), "the end-user token reached the guest");

    let keyed = server.send_bytes(Method::GET, &inspect, &[("authorization", &admin)], Vec::new()).await.json();
    assert_eq!(keyed["headers"]["x-stage-user-email"], "admin@localhost");
    assert!(keyed["headers"].get("authorization").is_none(), "the API key reached the guest");

    // A token that is not Stage's is the app's own business: it passes through, anonymously.
    let own = server.send_bytes(Method::GET, &inspect, &[("authorization", "Bearer app-token-1")], Vec::new()).await;
    assert_eq!(own.json()["headers"]["authorization"], "Bearer app-token-1");
    assert!(own.json()["headers"].get("x-stage-user-email").is_none());
    // An invalid Stage API key is refused.
    let bad_key =
        server.send_bytes(Method::GET, &inspect, &[("authorization", "Bearer stage_sk_nope")], Vec::new()).await;
    assert_eq!(bad_key.status, 401);

    // Another tenant's key does not see the app at all.
    let other = server
        .send(Method::POST, "/api/v1/admin/tenants", Some(json!({ "id": "other", "name": "Other" })), Some(&admin))
        .await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let foreign_key = format!("Bearer {}", other.body["data"]["apiKey"]["secret"].as_str().unwrap());
    let foreign = server.send_bytes(Method::GET, &inspect, &[("authorization", &foreign_key)], Vec::new()).await;
    assert_eq!(foreign.status, 404);
}

/// A local OpenAI-compatible server: answers chat completions and embeddings, checks the
/// key, and keeps what it was asked.
#[derive(Default)]
struct FakeOpenAi {
    requests: Vec<(String, Value)>,
    rate_limit_next: bool,
}

type SharedAi = Arc<Mutex<FakeOpenAi>>;

async fn completions(State(ai): State<SharedAi>, headers: HeaderMap, body: String) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test") {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": { "message": "bad key" } }))).into_response();
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    let mut ai = ai.lock().unwrap();
    ai.requests.push(("chat".into(), request.clone()));
    if std::mem::take(&mut ai.rate_limit_next) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "2")],
            axum::Json(json!({ "error": { "message": "slow down" } })),
        )
            .into_response();
    }
    let text = request["messages"][1]["content"].as_str().unwrap_or_default();
    axum::Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": format!("{}-2026", request["model"].as_str().unwrap()),
        "choices": [{ "index": 0, "finish_reason": "stop",
            "message": { "role": "assistant", "content": format!("Summary of {} words.", text.split_whitespace().count()) } }],
        "usage": { "prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17 }
    }))
    .into_response()
}

async fn embeddings(State(ai): State<SharedAi>, body: String) -> axum::response::Response {
    let request: Value = serde_json::from_str(&body).unwrap();
    ai.lock().unwrap().requests.push(("embed".into(), request.clone()));
    let data: Vec<Value> = (0..request["input"].as_array().map_or(1, Vec::len))
        .map(|index| json!({ "object": "embedding", "index": index, "embedding": [0.5, -0.25] }))
        .collect();
    axum::Json(json!({ "object": "list", "model": request["model"], "data": data,
                       "usage": { "prompt_tokens": 2, "total_tokens": 2 } }))
    .into_response()
}

async fn fake_openai() -> (String, SharedAi) {
    let ai = SharedAi::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .with_state(ai.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/v1"), ai)
}

#[tokio::test]
async fn inference_goes_through_the_host_with_its_key_and_records_usage() {
    let (base_url, ai) = fake_openai().await;
    let server = Server::start_with(&["--inference-base-url", &base_url, "--inference-api-key", "sk-test"]);
    let sid = server.publish(backend_files(&example_wasm(), None)).await;

    let summary = server.get(&format!("/stage/{sid}/api/summary?text=three+little+words&model=tiny")).await;
    assert_eq!(summary.status, 200, "{:?}", summary.body);
    assert_eq!(
        summary.body,
        json!({ "summary": "Summary of 3 words.", "model": "tiny-2026",
                "usage": { "prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17 } })
    );
    let asked = ai.lock().unwrap().requests[0].1.clone();
    assert_eq!(asked["model"], "tiny");
    assert_eq!(asked["messages"][1], json!({ "role": "user", "content": "three little words" }));

    ai.lock().unwrap().rate_limit_next = true;
    let limited = server.get(&format!("/stage/{sid}/api/summary?text=x")).await;
    assert_eq!(limited.status, 429, "{:?}", limited.body);

    let usage = server.get(&format!("/api/v1/inference/usage?appSid={sid}")).await;
    assert_eq!(usage.status, 200, "{:?}", usage.body);
    assert_eq!(
        usage.body["data"],
        json!({ "appSid": sid, "calls": 2, "failedCalls": 1, "promptTokens": 12, "completionTokens": 5, "totalTokens": 17,
                "byModel": [
                    { "kind": "chat", "model": "gpt-4o-mini", "calls": 1, "failedCalls": 1, "promptTokens": 0, "completionTokens": 0, "totalTokens": 0 },
                    { "kind": "chat", "model": "tiny-2026", "calls": 1, "failedCalls": 0, "promptTokens": 12, "completionTokens": 5, "totalTokens": 17 }
                ] })
    );
    let stored: i64 = server
        .db()
        .query_row("SELECT SUM(total_tokens) FROM inference_calls WHERE app_sid = ?1", [&sid], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 17);
    // Embeddings, from another app: its usage is its own.
    let chaos = server.publish(backend_files(&chaos_wasm(), None)).await;
    let embedded = server.get(&format!("/stage/{chaos}/api/embed")).await;
    assert_eq!(embedded.status, 200, "{:?}", embedded.body);
    assert_eq!(embedded.body["data"][1], json!({ "object": "embedding", "index": 1, "embedding": [0.5, -0.25] }));
    let chaos_usage = server.get(&format!("/api/v1/inference/usage?appSid={chaos}")).await.body;
    assert_shape(
        &chaos_usage["data"],
        &json!({ "appSid": chaos, "calls": 1, "failedCalls": 0, "promptTokens": 2, "completionTokens": 0, "totalTokens": 2,
                 "byModel": [{ "kind": "embed", "model": "emb-small", "calls": 1, "failedCalls": 0, "promptTokens": 2,
                               "completionTokens": 0, "totalTokens": 2 }] }),
    );
    assert_eq!(server.get("/api/v1/inference/usage").await.body["data"]["calls"], 3);

    // Inference counts against the backend's outbound limits like any request it makes.
    let asked_before = ai.lock().unwrap().requests.len();
    let frugal = server.publish(backend_files(&chaos_wasm(), Some(json!({ "limits": { "outboundBytes": 16 } })))).await;
    let refused = server.get(&format!("/stage/{frugal}/api/embed")).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    let why = refused.body["error"].as_str().unwrap();
    assert!(why.contains("outbound limit reached") && why.contains("inference.stage.internal/v1/embeddings"), "{why}");
    assert_eq!(ai.lock().unwrap().requests.len(), asked_before, "the refused call never left the host");
    let one_call =
        server.publish(backend_files(&chaos_wasm(), Some(json!({ "limits": { "outboundRequests": 0 } })))).await;
    let refused = server.get(&format!("/stage/{one_call}/api/embed")).await;
    assert!(refused.body["error"].as_str().unwrap().contains("more than 0 outbound requests"), "{:?}", refused.body);
    assert_eq!(ai.lock().unwrap().requests.len(), asked_before);

    // The chat endpoint is for backends only; the usage of an unknown app is a 404.
    let direct = server.post("/api/v1/inference/v1/chat/completions", json!({ "model": "x" })).await;
    assert_eq!(direct.status, 403);
    assert_eq!(server.get("/api/v1/inference/usage?appSid=app_nope").await.status, 404);

    // Without a configured upstream, inference fails clearly (the example answers 502).
    let unconfigured = Server::start();
    let sid = unconfigured.publish(backend_files(&example_wasm(), None)).await;
    let failed = unconfigured.get(&format!("/stage/{sid}/api/summary")).await;
    assert_eq!(failed.status, 502);
    assert!(failed.body["error"].as_str().unwrap().contains("--inference-base-url"), "{:?}", failed.body);
}

/// A local receiver for backends' outbound requests: answers 503 `fail_first` times, then
/// 200, counting hits.
async fn flaky_receiver(fail_first: usize) -> (u16, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0usize));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/data",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                let mut hits = counter.lock().unwrap();
                *hits += 1;
                if *hits <= fail_first {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy")
                } else {
                    (StatusCode::OK, "fresh data")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

/// POSTs `chunks` with `Transfer-Encoding: chunked` (no Content-Length) over a raw
/// connection; answers the status and the JSON body.
async fn chunked_post(server: &Server, path: &str, chunks: &[Vec<u8>]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    // The server may answer (and close) before reading everything.
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    // A chunked answer: the JSON sits between the chunk-size lines.
    let json = body.lines().find(|line| line.starts_with('{')).unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_are_isolated_and_limited() {
    let (port, hits) = flaky_receiver(2).await;
    let server = Server::start_with(&["--allow-private-egress"]);
    let manifest = json!({
        "allowedOutboundHosts": [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")],
        "limits": { "wallTimeMs": 1500, "memoryBytes": 33554432, "inputBytes": 2048, "outputBytes": 4096 }
    });
    let chaos = server.publish(backend_files(&chaos_wasm(), Some(manifest))).await;
    let hello = server.publish(backend_files(&example_wasm(), None)).await;
    let chaos_api = |path: &str| format!("/stage/{chaos}/api{path}");

    // No state survives between requests: every request gets a fresh instance.
    for _ in 0..3 {
        assert_eq!(server.get(&chaos_api("/counter")).await.body, json!({ "count": 1 }));
    }
    // No environment, arguments, filesystem or sockets.
    assert_eq!(
        server.get(&chaos_api("/sandbox")).await.body,
        json!({ "env": 0, "args": 0, "readRoot": false, "connect": false })
    );
    let utils = server.get(&chaos_api("/utils")).await.body;
    assert_eq!(utils["sha"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert!(utils["id"].as_str().unwrap().starts_with("x_"));
    assert!(utils["now"].as_u64().unwrap() > 1_600_000_000_000);

    // An infinite loop ends at the wall-time limit while another app keeps answering.
    let spinning = {
        let url = server.url(&chaos_api("/spin"));
        tokio::spawn(async move {
            let started = Instant::now();
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = server.get(&format!("/stage/{hello}/api/hello")).await;
    assert_eq!(during.status, 200);
    let (status, body, elapsed) = spinning.await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("BACKEND_TIMEOUT")), "{body}");
    assert!(elapsed < Duration::from_secs(10), "the loop ran for {elapsed:?}");

    // A trap is a 500 naming the request; the next request is served normally.
    let trapped = server.get(&chaos_api("/trap")).await;
    assert_eq!((trapped.status, trapped.body["error"]["code"].as_str()), (500, Some("BACKEND_ERROR")));
    let request_id = trapped.headers["x-request-id"].to_str().unwrap();
    assert_eq!(trapped.body["error"]["details"]["requestId"], request_id);
    assert!(trapped.body["error"]["message"].as_str().unwrap().contains(request_id));
    assert_eq!(server.get(&chaos_api("/counter")).await.status, 200);

    let hog = server.get(&chaos_api("/hog")).await;
    assert_eq!(hog.status, 500, "{:?}", hog.body);
    assert!(hog.body["error"]["message"].as_str().unwrap().contains("memory limit of 32 MiB"), "{:?}", hog.body);

    // Bodies past the limits are 413 both ways.
    let big_request = server.send_bytes(Method::POST, &chaos_api("/inspect"), &[], vec![0; 4096]).await;
    assert_eq!(big_request.status, 413);
    assert_eq!(server.send_bytes(Method::POST, &chaos_api("/inspect"), &[], vec![0; 2048]).await.status, 200);
    // Without a Content-Length the body streams in and is cut at the limit.
    let (status, _) = chunked_post(&server, &chaos_api("/inspect"), &[vec![b'a'; 1500], vec![b'b'; 1500]]).await;
    assert_eq!(status, 413);
    let (status, answer) = chunked_post(&server, &chaos_api("/inspect"), &[vec![b'a'; 1000], vec![b'b'; 24]]).await;
    assert_eq!((status, answer["bodyBytes"].as_u64()), (200, Some(1024)));
    let big_response = server.get(&chaos_api("/big?bytes=5000")).await;
    assert_eq!((big_response.status, big_response.body["error"]["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")));
    assert_eq!(server.send_bytes(Method::GET, &chaos_api("/big?bytes=4096"), &[], Vec::new()).await.body.len(), 4096);

    // Outbound: only the allowed hosts, and a name resolving to loopback is refused.
    let denied = server.get(&chaos_api("/fetch?url=http://example.com/")).await;
    assert_eq!(denied.status, 502);
    assert!(denied.body["error"].as_str().unwrap().contains("capability denied"), "{:?}", denied.body);
    let wasi_denied = server.get(&chaos_api("/wasi-fetch?url=http://example.com/")).await;
    assert!(wasi_denied.body["error"].as_str().unwrap().contains("refused"), "{:?}", wasi_denied.body);
    let by_name = server.get(&chaos_api(&format!("/fetch?url=http://localhost:{port}/data"))).await;
    assert!(by_name.body["error"].as_str().unwrap().contains("non-public"), "{:?}", by_name.body);
    assert_eq!(*hits.lock().unwrap(), 0);

    // utils.fetch retries 503s with backoff through the same policy.
    let fetched = server.get(&chaos_api(&format!("/fetch?url=http://127.0.0.1:{port}/data&retries=3"))).await;
    assert_eq!(fetched.body, json!({ "status": 200, "attempts": 3, "body": "fresh data" }));
    assert_eq!(*hits.lock().unwrap(), 3);

    // compute.run-step runs a built-in step for the app.
    let step = server.get(&chaos_api("/step")).await;
    assert_eq!(step.status, 200, "{:?}", step.body);
    assert_eq!(
        (step.body["name"].as_str(), step.body["stageAppId"].as_str()),
        (Some("backend.step"), Some(chaos.as_str()))
    );

    // The guest's log lines go to the server's request log.
    assert_eq!(server.get(&chaos_api("/log")).await.status, 204);
    let log = std::fs::read_to_string(server.data_dir.join("server.log")).unwrap();
    assert!(log.contains("a line from the guest"), "the guest's log line is not in the server log");

    // Each app reaches its own backend only.
    let own = server.get(&chaos_api("/inspect")).await;
    assert_eq!(own.body["headers"]["x-stage-app-sid"], chaos.as_str());
    assert_eq!(server.get(&format!("/stage/{hello}/api/inspect")).await.body, json!({ "error": "no route /inspect" }));
}

#[tokio::test]
async fn publishing_checks_the_backend() {
    let server = Server::start();
    let publish = |files: Value| {
        let server = &server;
        async move {
            let session = server.new_session().await;
            let pushed =
                server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })).await;
            assert_eq!(pushed.status, 200, "{:?}", pushed.body);
            server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "B" })).await
        }
    };

    let garbage = publish(json!({ "/app/backend.wasm": base64_file(b"\0asm not really") })).await;
    assert_eq!(garbage.status, 422, "{:?}", garbage.body);
    assert!(garbage.body["error"]["message"].as_str().unwrap().contains("/app/backend.wasm is not a usable backend"));

    // A step component is a component, but not a wasi:http proxy.
    let step = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).unwrap();
    let not_proxy = publish(json!({ "/app/backend.wasm": base64_file(&step) })).await;
    assert_eq!(not_proxy.status, 422, "{:?}", not_proxy.body);

    let bad_manifest = publish(backend_files(
        &example_wasm(),
        Some(json!({ "allowedOutboundHosts": ["ftp://x", "https://ok.example.com"], "limits": { "wallTimeMs": 0 }, "extra": 1 })),
    ))
    .await;
    assert_eq!(bad_manifest.status, 422);
    let paths: Vec<&str> = bad_manifest.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["extra", "allowedOutboundHosts[0]", "limits.wallTimeMs"]);

    let orphan = publish(json!({ "/app/backend.json": "{}" })).await;
    assert_eq!(orphan.status, 422);
    assert!(orphan.body["error"]["message"].as_str().unwrap().contains("/app/backend.wasm"), "{:?}", orphan.body);

    let good = publish(backend_files(&example_wasm(), Some(json!({ "allowedOutboundHosts": [] })))).await;
    assert_eq!(good.status, 201, "{:?}", good.body);
    // Publishing compiled the component: serving it compiles nothing more.
    let before = server.get("/api/v1/runtime").await.body["data"]["components"].clone();
    let sid = good.body["data"]["sid"].as_str().unwrap();
    assert_eq!(server.get(&format!("/stage/{sid}/api/hello")).await.status, 200);
    let after = server.get("/api/v1/runtime").await.body["data"]["components"].clone();
    assert_eq!(before, after);
}
