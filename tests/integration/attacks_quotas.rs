//! Attacks on the shared runtime (hardening finding 3): one tenant holding every instance
//! slot with long, spinning steps. A tenant gets its share and a queue, then 429 with
//! `Retry-After`; other tenants keep theirs; runs end at their deadline whether or not their
//! caller still waits; nobody may ask for more time than the operator allows.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Answer, Server};

fn chaos_wasm() -> String {
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).expect("chaos fixture");
    base64::engine::general_purpose::STANDARD.encode(wasm)
}

fn backend_chaos() -> Value {
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/backend-chaos.wasm")).expect("backend fixture");
    json!({ "content": base64::engine::general_purpose::STANDARD.encode(wasm), "encoding": "base64" })
}

/// Installs the chaos fixture as plugin `kind` for the tenant of `auth`, with `limits`.
async fn install_chaos(server: &Server, auth: &str, kind: &str, limits: Option<Value>) -> Answer {
    let mut manifest = json!({ "kind": kind, "inputs": { "required": ["mode"], "additional": true } });
    if let Some(limits) = limits {
        manifest["limits"] = limits;
    }
    let body = json!({ "manifest": manifest, "component": chaos_wasm() });
    server.send(Method::PUT, &format!("/api/v1/plugins/{kind}"), Some(body), Some(auth)).await
}

/// App files with a public workflow `go` of one step.
fn one_step_app(step: Value) -> Value {
    let workflows = json!({ "version": 1, "workflows": { "go": { "auth": "public", "steps": [step] } } });
    json!({ "/app/shift.workflows.json": workflows.to_string() })
}

async fn push_and_publish(server: &Server, auth: &str, files: Value) -> Answer {
    let created = server.send(Method::POST, "/api/v1/stage/sessions", None, Some(auth)).await;
    let session = created.body["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/stage/sessions/{session}/push");
    let pushed = server.send(Method::POST, &path, Some(json!({ "files": files })), Some(auth)).await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let publish = json!({ "sessionId": session, "name": "App" });
    server.send(Method::POST, "/api/v1/stage/apps", Some(publish), Some(auth)).await
}

/// Polls a run until it is no longer running (at most a minute).
async fn finished_run(server: &Server, auth: &str, run_id: &str) -> Value {
    for _ in 0..600 {
        let run = server.send(Method::GET, &format!("/api/v1/runs/{run_id}"), None, Some(auth)).await;
        if run.body["data"]["status"] != "running" {
            return run.body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run_id} never finished");
}

#[tokio::test]
async fn asking_for_more_time_than_the_operator_allows_is_refused_at_publish() {
    let server = Server::start_with(&["--max-timeout-ms", "60000"]);
    let admin = format!("Bearer {}", server.admin_key());
    assert_eq!(install_chaos(&server, &admin, "test.spin", None).await.status, 200);

    let step = json!({ "test.spin": { "mode": "spin" }, "timeoutMs": 3_600_000 });
    let refused = push_and_publish(&server, &admin, one_step_app(step)).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["details"]["problems"][0],
        json!({
            "path": "workflows.go.steps[0].timeoutMs",
            "message": "must be a whole number of milliseconds from 1 to 60000 (this server's ceiling)"
        })
    );

    let backend = json!({
        "/app/backend.wasm": backend_chaos(),
        "/app/backend.json": json!({ "limits": { "wallTimeMs": 3_600_000 } }).to_string(),
    });
    let refused = push_and_publish(&server, &admin, backend).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["details"]["problems"][0]["path"], "limits.wallTimeMs");
    assert_eq!(refused.body["error"]["details"]["problems"][0]["message"], "must be 1 to 60000");

    let plugin = install_chaos(&server, &admin, "test.slow", Some(json!({ "wallTimeMs": 3_600_000 }))).await;
    assert_eq!(plugin.status, 422, "{:?}", plugin.body);
    assert_eq!(
        plugin.body["error"]["message"],
        "manifest.limits.wallTimeMs is 3600000 but this server allows at most 60000 (--max-timeout-ms)"
    );
}

/// A receiver on loopback that holds every request until [`Gate::open`]; returns its port.
struct Gate {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    async fn start() -> Gate {
        let (open, opened) = tokio::sync::watch::channel(false);
        let app = axum::Router::new().fallback(move || {
            let mut opened = opened.clone();
            async move {
                let _ = opened.wait_for(|open| *open).await;
                "through"
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Gate { port, open }
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

#[tokio::test]
async fn a_tenant_at_its_limit_gets_429_while_another_tenant_keeps_its_share() {
    let gate = Gate::start().await;
    let server =
        Server::start_with(&["--tenant-max-concurrency", "2", "--tenant-max-queued", "2", "--allow-private-egress"]);
    let acme = server.new_tenant("acme").await;
    // acme's step waits at the gate: each run holds one of acme's slots until it opens.
    let manifest = json!({
        "kind": "acme.wait", "inputs": { "required": ["mode"], "additional": true },
        "allow": [{ "scheme": "http", "host": "127.0.0.1", "port": gate.port, "private": true }],
    });
    let body = json!({ "manifest": manifest, "component": chaos_wasm() });
    let installed = server.send(Method::PUT, "/api/v1/plugins/acme.wait", Some(body), Some(&acme)).await;
    assert_eq!(installed.status, 200, "{:?}", installed.body);
    let url = format!("http://127.0.0.1:{}/", gate.port);
    let mut files = one_step_app(json!({ "acme.wait": { "mode": "fetch", "url": url } }));
    files["/app/backend.wasm"] = backend_chaos();
    let published = push_and_publish(&server, &acme, files).await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let waiting = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let run_path = format!("/api/v1/run/{waiting}/go?wait=100");
    let start = || server.send(Method::POST, &run_path, Some(json!({})), Some(&acme));

    // Two runs take acme's slots, two wait in its queue; the fifth is refused.
    let mut run_ids = Vec::new();
    for _ in 0..4 {
        let started = start().await;
        assert_eq!(started.status, 202, "{:?}", started.body);
        run_ids.push(started.body["data"]["runId"].as_str().unwrap().to_owned());
    }
    let refused = start().await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.body["error"]["code"], "RATE_LIMITED");
    assert_eq!(
        refused.body["error"]["message"],
        "tenant acme has 2 runs and backend requests in progress and 2 waiting; try again shortly"
    );
    // So is acme's backend: its slots and queue are full.
    let backend = server.send(Method::GET, &format!("/stage/{waiting}/api/counter"), None, Some(&acme)).await;
    assert_eq!(backend.status, 429, "{:?}", backend.body);
    assert_eq!(backend.headers["retry-after"], "1");

    // Meanwhile another tenant's runs and backend are served at once.
    let other = server.new_tenant("other").await;
    let mut files = one_step_app(json!({ "response": { "status": 201, "body": "{{ input.n }}" } }));
    files["/app/backend.wasm"] = backend_chaos();
    let published = push_and_publish(&server, &other, files).await;
    let quick = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let answered = server.post(&format!("/api/v1/run/{quick}/go"), json!({ "input": { "n": 7 } })).await;
    assert_eq!((answered.status, &answered.body), (201, &json!(7)));
    let counted = server.send(Method::GET, &format!("/stage/{quick}/api/counter"), None, Some(&other)).await;
    assert_eq!((counted.status, &counted.body), (200, &json!({ "count": 1 })));
    assert_eq!(server.get("/healthz").await.status, 200);
    let rss = server.rss_bytes();
    assert!(rss < 400 * 1024 * 1024, "the server holds {} MiB during the attack", rss / (1024 * 1024));

    // Once the gate opens, acme's runs all finish, the queued ones after the first two.
    gate.open();
    for run_id in &run_ids {
        let run = finished_run(&server, &acme, run_id).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["steps"][0]["output"]["body"], "through");
    }
    assert_eq!(start().await.status, 200, "acme has its slots again");
}

#[tokio::test]
async fn a_run_whose_caller_left_still_ends_at_the_run_deadline() {
    let server = Server::start_with(&["--max-run-ms", "1500"]);
    let admin = format!("Bearer {}", server.admin_key());
    assert_eq!(install_chaos(&server, &admin, "test.spin", None).await.status, 200);
    let step = json!({ "id": "forever", "test.spin": { "mode": "spin" }, "timeoutMs": 10_000 });
    let sid =
        push_and_publish(&server, &admin, one_step_app(step)).await.body["data"]["sid"].as_str().unwrap().to_owned();

    let started = server.post(&format!("/api/v1/run/{sid}/go?wait=100"), json!({})).await;
    assert_eq!(started.status, 202, "{:?}", started.body);
    let run_id = started.body["data"]["runId"].as_str().unwrap().to_owned();

    let run = finished_run(&server, &admin, &run_id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "STEP_TIMEOUT");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("step 0 (forever, test.spin) was stopped: the run reached its deadline"), "{message}");
    assert_eq!(run["steps"][0]["status"], "failed");
    assert_eq!(run["steps"][0]["error"]["class"], "timeout");
    assert_eq!(run["answer"]["status"], 504);
}
