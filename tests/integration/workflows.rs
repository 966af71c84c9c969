//! Published workflows run end to end: real step components, real services, real records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

const APP_TSX: &str = "export default function App() { return <h1>Signup</h1>; }";

/// The pulse → ledger → response workflow of the acceptance tests.
fn signup_workflows() -> Value {
    json!({
        "version": 1,
        "config": { "plan": "free", "slackChannelId": "C123" },
        "workflows": {
            "signup": {
                "auth": "public",
                "steps": [
                    { "id": "event", "pulse.track": {
                        "name": "signup",
                        "userId": "{{ input.email }}",
                        "meta": { "amountCents": "{{ input.amountCents }}", "plan": "{{ config.plan }}" } } },
                    { "id": "audit", "ledger.audit": {
                        "operation": "write",
                        "destination": { "service": "signups", "location": "{{ app.sid }}" },
                        "dataRefs": [{ "field": "email", "classification": "pii" }],
                        "meta": { "eventId": "{{ steps.event.id }}" } } },
                    { "response": {
                        "status": 201,
                        "headers": { "x-plan": "{{ config.plan }}" },
                        "body": {
                            "amountCents": "{{ input.amountCents }}",
                            "greeting": "Welcome {{ input.email }} to {{ app.name }}",
                            "eventId": "{{ steps.event.id }}",
                            "seq": "{{ steps.audit.seq }}",
                            "app": "{{ app.sid }}",
                            "channel": "{{ config.slackChannelId }}"
                        } } }
                ]
            }
        }
    })
}

fn app_files(workflows: Value) -> Value {
    json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": workflows.to_string() })
}

async fn run(server: &Server, sid: &str, workflow: &str, input: Value) -> crate::common::Answer {
    server.post(&format!("/api/v1/run/{sid}/{workflow}"), json!({ "input": input })).await
}

#[tokio::test]
async fn pulse_ledger_response_workflow_runs_end_to_end() {
    let server = Server::start();
    let sid = server.publish(app_files(signup_workflows())).await;

    let answer = run(&server, &sid, "signup", json!({ "email": "ada@example.com", "amountCents": 1250 })).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.headers["x-plan"], "free");
    let run_id = answer.headers["x-stage-run-id"].to_str().unwrap().to_owned();
    assert_shape(
        &answer.body,
        &json!({
            "amountCents": 1250,
            "greeting": "Welcome ada@example.com to Test app",
            "eventId": "<id:evt_>",
            "seq": 1,
            "app": sid,
            "channel": "C123",
        }),
    );

    // What the services stored, attributed to the app.
    let events = server.get(&format!("/api/v1/pulse/events?stageAppId={sid}")).await;
    let event = &events.body["data"]["events"][0];
    assert_eq!(events.body["data"]["total"], 1);
    assert_eq!((event["name"].clone(), event["userId"].clone()), (json!("signup"), json!("ada@example.com")));
    assert_eq!(event["meta"], json!({ "amountCents": 1250, "plan": "free" }));
    assert_eq!(event["id"], answer.body["eventId"]);
    let ledger = server.get(&format!("/api/v1/ledger/events?stageAppId={sid}")).await;
    let entry = &ledger.body["data"]["events"][0];
    assert_eq!((entry["seq"].clone(), entry["operation"].clone()), (json!(1), json!("write")));
    assert_eq!(entry["destination"], json!({ "service": "signups", "location": sid }));
    assert_eq!(entry["meta"]["eventId"], answer.body["eventId"]);
    let verify = server.get("/api/v1/ledger/verify").await;
    assert_eq!(verify.body["data"], json!({ "ok": true, "count": 1, "firstBrokenSeq": null }));

    // The run record: every step with resolved input, output, attempts and timings.
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    let data = &record.body["data"];
    assert_eq!(
        (data["status"].clone(), data["workflow"].clone(), data["appVersion"].clone()),
        (json!("succeeded"), json!("signup"), json!(1))
    );
    assert_eq!(data["answer"]["status"], 201);
    let steps = data["steps"].as_array().unwrap();
    assert_eq!(
        steps.iter().map(|s| s["kind"].as_str().unwrap()).collect::<Vec<_>>(),
        ["pulse.track", "ledger.audit", "response"]
    );
    assert!(steps.iter().all(|s| s["status"] == "succeeded" && s["attempts"].as_array().unwrap().len() == 1));
    assert_eq!(steps[0]["input"]["meta"]["amountCents"], 1250);
    assert_eq!(steps[0]["output"]["id"], answer.body["eventId"]);
    assert!(steps[0]["timings"]["instantiateUs"].as_i64().unwrap() > 0);
    assert!(steps[0]["timings"]["hostUs"].as_i64().unwrap() > 0);
    let listed = server.get(&format!("/api/v1/stage/apps/{sid}/runs")).await;
    assert_eq!(listed.body["data"][0]["id"], json!(run_id));

    // Tampering with a stored ledger row is caught by verify, naming its seq.
    run(&server, &sid, "signup", json!({ "email": "bob@example.com", "amountCents": 5 })).await;
    let writable = rusqlite::Connection::open(server.data_dir.join("stage.db")).unwrap();
    writable.execute("UPDATE ledger_events SET operation = 'delete' WHERE seq = 1", []).unwrap();
    let verify = server.get("/api/v1/ledger/verify").await;
    assert_eq!(verify.body["data"], json!({ "ok": false, "count": 2, "firstBrokenSeq": 1 }));
}

#[tokio::test]
async fn without_a_response_step_the_run_answers_its_outputs_and_if_skips() {
    let server = Server::start();
    let workflows = json!({ "version": 1, "workflows": { "track": { "auth": "public", "steps": [
        { "id": "big", "if": "input.amount > 100", "pulse.track": { "name": "big" } },
        { "id": "small", "if": "{{ input.amount <= 100 }}", "pulse.track": { "name": "small" } }
    ] } } });
    let sid = server.publish(app_files(workflows)).await;
    let answer = run(&server, &sid, "track", json!({ "amount": 5 })).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_shape(
        &answer.body,
        &json!({ "success": true, "data": { "runId": "<id:run_>", "outputs": { "small": "<any>" } } }),
    );
    let record = server.get(&format!("/api/v1/runs/{}", answer.body["data"]["runId"].as_str().unwrap())).await;
    let statuses: Vec<&str> =
        record.body["data"]["steps"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["skipped", "succeeded"]);
    let events = server.get("/api/v1/pulse/events").await;
    assert_eq!(events.body["data"]["counts"], json!({ "small": 1 }));
}

#[tokio::test]
async fn publishing_lists_every_problem_and_an_app_without_workflows_publishes() {
    let server = Server::start();
    let broken = json!({ "version": 1, "workflows": { "w": { "steps": [
        { "id": "a", "sheets.nope": {} },
        { "pulse.track": { "userId": "x" } },
        { "response": { "body": "{{ steps.later.id }}" } },
        { "id": "later", "response": { "body": "{{ steps.ghost.id }}" } },
        { "response": { "body": "{{ input.x + }}" } },
        { "response": { "body": "{{ secrets.key }}" } }
    ] } } });
    let session = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": app_files(broken) })).await;
    let refused = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Broken" })).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(refused.body["error"]["code"], "VALIDATION_FAILED");
    let problems = refused.body["error"]["details"]["problems"].as_array().unwrap();
    let text = serde_json::to_string(problems).unwrap();
    for needle in ["sheets.nope", "name", "later", "ghost", "input.x +", "secrets"] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    assert_eq!(problems.len(), 6, "{text}");
    let apps = server.get("/api/v1/stage/apps").await;
    assert_eq!(apps.body["data"], json!([]), "nothing was published");

    let plain = server.publish(json!({ "/app/App.tsx": APP_TSX })).await;
    let none = run(&server, &plain, "anything", json!({})).await;
    assert_eq!(none.status, 404);
    assert!(none.body["error"]["message"].as_str().unwrap().contains("no workflows"));

    // Republishing validates too.
    let fixed = server.publish(app_files(signup_workflows())).await;
    let session =
        server.get(&format!("/api/v1/stage/apps/{fixed}")).await.body["data"]["sessionId"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/shift.workflows.json": "{ not json" } }),
        )
        .await;
    let again = server.post(&format!("/api/v1/stage/apps/{fixed}/versions"), json!(null)).await;
    assert_eq!(again.status, 422);
    // The published version keeps running what it pinned.
    let answer = run(&server, &fixed, "signup", json!({ "email": "a@b.c", "amountCents": 1 })).await;
    assert_eq!(answer.status, 201);
}

#[tokio::test]
async fn template_failures_and_unknown_targets_are_clear() {
    let server = Server::start();
    let sid = server.publish(app_files(signup_workflows())).await;
    let missing = run(&server, &sid, "signup", json!({ "email": "a@b.c" })).await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    let message = missing.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("amountCents") && message.contains("meta"), "{message}");
    assert_eq!(run(&server, &sid, "nope", json!({})).await.status, 404);
    assert_eq!(run(&server, "app_missing", "signup", json!({})).await.status, 404);
    let not_object = server.post(&format!("/api/v1/run/{sid}/signup"), json!({ "input": [1] })).await;
    assert_eq!(not_object.status, 422);
}

/// A workflow with one chaos step of `kind`, with the given step options.
fn chaos_app(kind: &str, step_input: Value, options: Value) -> Value {
    let mut step = json!({ "id": "chaos", kind: step_input });
    for (key, value) in options.as_object().unwrap() {
        step[key] = value.clone();
    }
    app_files(json!({ "version": 1, "workflows": { "go": { "auth": "public", "steps": [step] } } }))
}

#[tokio::test]
async fn retries_follow_the_error_class() {
    let server = Server::start();
    server.install_chaos("test.chaos", json!([])).await;
    let retry = json!({ "retry": { "maxAttempts": 3, "intervalMs": 10, "backoffRate": 2.0 } });

    let flaky =
        server.publish(chaos_app("test.chaos", json!({ "mode": "flaky", "failTimes": 2 }), retry.clone())).await;
    let answer = run(&server, &flaky, "go", json!({})).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["data"]["outputs"]["chaos"]["succeededOnAttempt"], 3);
    let record = server.get(&format!("/api/v1/runs/{}", answer.body["data"]["runId"].as_str().unwrap())).await;
    let attempts = record.body["data"]["steps"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0]["error"]["class"], "transient");
    assert!(attempts[2].get("error").is_none());

    let too_flaky =
        server.publish(chaos_app("test.chaos", json!({ "mode": "flaky", "failTimes": 5 }), retry.clone())).await;
    let answer = run(&server, &too_flaky, "go", json!({})).await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "STEP_FAILED");
    assert_eq!(
        answer.body["error"]["details"],
        json!({ "stepIndex": 0, "stepId": "chaos", "kind": "test.chaos",
        "error": { "class": "transient", "message": "attempt 4 fails on purpose" } })
    );

    for class in ["permanent", "invalid-input", "unauthorized"] {
        let failing =
            server.publish(chaos_app("test.chaos", json!({ "mode": "fail", "class": class }), retry.clone())).await;
        let answer = run(&server, &failing, "go", json!({})).await;
        assert_eq!(answer.status, 502, "{class}: {:?}", answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("step 0 (chaos, test.chaos)") && message.contains("attempt 1"), "{message}");
        let record = server.get(&format!("/api/v1/runs/{}", answer.headers["x-stage-run-id"].to_str().unwrap())).await;
        assert_eq!(
            record.body["data"]["steps"][0]["attempts"].as_array().unwrap().len(),
            1,
            "{class} is never retried"
        );
    }

    let limited = server
        .publish(chaos_app("test.chaos", json!({ "mode": "fail", "class": "rate-limited", "retryAfterMs": 30 }), retry))
        .await;
    let answer = run(&server, &limited, "go", json!({})).await;
    let record = server.get(&format!("/api/v1/runs/{}", answer.headers["x-stage-run-id"].to_str().unwrap())).await;
    assert_eq!(record.body["data"]["steps"][0]["attempts"].as_array().unwrap().len(), 4, "rate-limited is retried");

    // continueOnError: the failure is recorded and the next step sees it.
    let files = app_files(json!({ "version": 1, "workflows": { "go": { "auth": "public", "steps": [
        { "id": "broken", "continueOnError": true, "test.chaos": { "mode": "fail" } },
        { "response": { "body": { "saw": "{{ steps.broken.error.class }}" } } }
    ] } } }));
    let tolerant = server.publish(files).await;
    let answer = run(&server, &tolerant, "go", json!({})).await;
    assert_eq!((answer.status, answer.body.clone()), (200, json!({ "saw": "permanent" })));
}

#[tokio::test]
async fn sandboxed_steps_cannot_hurt_the_server() {
    // A loopback HTTP server the steps may or may not reach.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello from loopback" }));
        axum::serve(listener, app).await.unwrap();
    });

    let server = Arc::new(Server::start_with(&[
        "--allow-private-egress",
        "--step-timeout-ms",
        "800",
        "--step-memory-bytes",
        "33554432",
    ]));
    server.install_chaos("test.chaos", json!([{ "scheme": "http", "host": "allowed.example" }])).await;
    server
        .install_chaos("test.local", json!([{ "scheme": "http", "host": "127.0.0.1", "port": port, "private": true }]))
        .await;
    server.install_chaos("test.literal", json!([{ "scheme": "http", "host": "127.0.0.1", "port": port }])).await;
    let spin = server.publish(chaos_app("test.chaos", json!({ "mode": "spin" }), json!({}))).await;
    let hog = server.publish(chaos_app("test.chaos", json!({ "mode": "hog" }), json!({}))).await;
    let egress = server
        .publish(chaos_app("test.chaos", json!({ "mode": "fetch", "url": "http://forbidden.example/x" }), json!({})))
        .await;
    let url = format!("http://127.0.0.1:{port}/hello");
    let literal = server.publish(chaos_app("test.literal", json!({ "mode": "fetch", "url": url }), json!({}))).await;
    let allowed = server.publish(chaos_app("test.local", json!({ "mode": "fetch", "url": url }), json!({}))).await;

    // Healthy requests keep being answered while the misbehaving runs go on.
    let (server_, stop) = (server.clone(), Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let stop_ = stop.clone();
    let pinger = tokio::spawn(async move {
        let mut answered = 0;
        while !stop_.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(server_.get("/api/v1/stage/sessions").await.status, 200);
            answered += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        answered
    });

    let started = Instant::now();
    let timed_out = run(&server, &spin, "go", json!({})).await;
    assert_eq!(timed_out.status, 504, "{:?}", timed_out.body);
    assert_eq!(timed_out.body["error"]["code"], "STEP_TIMEOUT");
    assert!(started.elapsed() < Duration::from_secs(10));

    let bomb = run(&server, &hog, "go", json!({})).await;
    assert_eq!(bomb.status, 502, "{:?}", bomb.body);
    assert!(bomb.body["error"]["message"].as_str().unwrap().contains("memory limit of 32 MiB"), "{:?}", bomb.body);

    let denied = run(&server, &egress, "go", json!({})).await;
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    assert_eq!(denied.body["error"]["code"], "CAPABILITY_DENIED");
    assert!(denied.body["error"]["message"].as_str().unwrap().contains("forbidden.example"));

    let private = run(&server, &literal, "go", json!({})).await;
    assert_eq!(private.body["error"]["code"], "CAPABILITY_DENIED", "{:?}", private.body);
    assert!(private.body["error"]["message"].as_str().unwrap().contains("non-public"));

    let fetched = run(&server, &allowed, "go", json!({})).await;
    assert_eq!(fetched.status, 200, "{:?}", fetched.body);
    assert_eq!(fetched.body["data"]["outputs"]["chaos"], json!({ "status": 200, "body": "hello from loopback" }));

    // The guest sees no environment, arguments, files or sockets.
    let probe = server.publish(chaos_app("test.chaos", json!({ "mode": "probe" }), json!({}))).await;
    let seen = run(&server, &probe, "go", json!({})).await;
    let seen = &seen.body["data"]["outputs"]["chaos"];
    assert_eq!((seen["env"].clone(), seen["args"].clone()), (json!([]), json!([])), "{seen}");
    assert!(seen["files"]["error"].is_string(), "{seen}");
    assert!(seen["socket"]["error"].is_string(), "{seen}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(pinger.await.unwrap() > 3);

    // Private destinations need the operator's consent.
    let strict = Server::start();
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).unwrap();
    use base64::Engine;
    let body = json!({ "manifest": { "kind": "test.local", "inputs": {}, "allow": [{ "scheme": "http", "host": "127.0.0.1", "private": true }] },
                       "component": base64::engine::general_purpose::STANDARD.encode(&wasm) });
    let refused = strict.put("/api/v1/plugins/test.local", body).await;
    assert_eq!(refused.status, 422);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("private"));
    let garbage = strict
        .put(
            "/api/v1/plugins/test.bad",
            json!({ "manifest": { "kind": "test.bad", "inputs": {} }, "component": "AGFzbQ==" }),
        )
        .await;
    assert_eq!(garbage.status, 422, "{:?}", garbage.body);
}

#[tokio::test]
async fn idempotency_key_replays_the_answer_without_side_effects() {
    let server = Server::start();
    let sid = server.publish(app_files(signup_workflows())).await;
    let input = json!({ "input": { "email": "ada@example.com", "amountCents": 700 } });
    let headers = [("idempotency-key", "signup-ada-1")];
    let first = server.send_with(Method::POST, &format!("/api/v1/run/{sid}/signup"), input.clone(), &headers).await;
    let second = server.send_with(Method::POST, &format!("/api/v1/run/{sid}/signup"), input.clone(), &headers).await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.body, second.body);
    assert_eq!(first.headers["x-stage-run-id"], second.headers["x-stage-run-id"]);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    let events = server.get("/api/v1/pulse/events").await;
    assert_eq!(events.body["data"]["total"], 1);
    let ledger = server.get("/api/v1/ledger/events").await;
    assert_eq!(ledger.body["data"]["events"].as_array().unwrap().len(), 1);

    let other = json!({ "input": { "email": "eve@example.com", "amountCents": 1 } });
    let reused = server.send_with(Method::POST, &format!("/api/v1/run/{sid}/signup"), other, &headers).await;
    assert_eq!(reused.status, 409);
    assert_eq!(reused.body["error"]["code"], "CONFLICT");
}

#[tokio::test]
async fn a_short_wait_answers_202_and_the_run_can_be_followed() {
    let server = Server::start();
    server.install_chaos("test.chaos", json!([])).await;
    let retry = json!({ "retry": { "maxAttempts": 2, "intervalMs": 300 } });
    let slow = server.publish(chaos_app("test.chaos", json!({ "mode": "flaky", "failTimes": 1 }), retry)).await;
    let accepted = server.post(&format!("/api/v1/run/{slow}/go?wait=10"), json!({ "input": {} })).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_shape(&accepted.body, &json!({ "success": true, "data": { "runId": "<id:run_>", "status": "running" } }));
    let run_id = accepted.body["data"]["runId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
        if record.body["data"]["status"] == "succeeded" {
            assert_eq!(record.body["data"]["answer"]["status"], 200);
            break;
        }
        assert!(Instant::now() < deadline, "the run did not finish: {:?}", record.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn required_workflows_take_api_keys_or_end_user_tokens() {
    let server = Server::start_with(&["--auth", "required", "--jwt-secret", "test-secret"]);
    let admin = format!("Bearer {}", server.admin_key());
    let workflows = json!({ "version": 1, "workflows": { "whoami": { "steps": [
        { "response": { "body": { "email": "{{ auth.email }}", "name": "{{ auth.name }}", "userId": "{{ auth.userId }}" } } }
    ] } } });
    let session = server.send(Method::POST, "/api/v1/stage/sessions", None, Some(&admin)).await.body["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .send(
            Method::POST,
            &format!("/api/v1/stage/sessions/{session}/push"),
            Some(json!({ "files": app_files(workflows) })),
            Some(&admin),
        )
        .await;
    let sid = server
        .send(Method::POST, "/api/v1/stage/apps", Some(json!({ "sessionId": session, "name": "Who" })), Some(&admin))
        .await
        .body["data"]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/run/{sid}/whoami");

    let anonymous = server.send(Method::POST, &path, Some(json!({})), None).await;
    assert_eq!(anonymous.status, 401);
    let with_key = server.send(Method::POST, &path, Some(json!({})), Some(&admin)).await;
    assert_eq!(with_key.body["email"], "admin@localhost");

    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "user-7", "email": "end@user.test", "name": "End User", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"test-secret"),
    )
    .unwrap();
    let with_token = server.send(Method::POST, &path, Some(json!({})), Some(&format!("Bearer {token}"))).await;
    assert_eq!(with_token.body, json!({ "email": "end@user.test", "name": "End User", "userId": "user-7" }));
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "email": "admin@localhost", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"wrong-secret"),
    )
    .unwrap();
    let refused = server.send(Method::POST, &path, Some(json!({})), Some(&format!("Bearer {forged}"))).await;
    assert_eq!(refused.status, 401);
    // A spoofed identity header changes nothing.
    let spoofed = server
        .send_with(Method::POST, &path, json!({}), &[("authorization", &admin), ("x-stage-user-email", "evil@x")])
        .await;
    assert_eq!(spoofed.body["email"], "admin@localhost");
}

#[tokio::test]
async fn a_restart_loads_compiled_components_instead_of_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = dir.path().join("compiled");
    let args = ["--compiled-dir", compiled.to_str().unwrap()];
    let server = Server::start_in(dir.path(), &args);
    let sid = server.publish(app_files(signup_workflows())).await;
    assert_eq!(run(&server, &sid, "signup", json!({ "email": "a@b.c", "amountCents": 1 })).await.status, 201);
    let stats = server.get("/api/v1/runtime").await;
    // The three steps' components and the template sandbox.
    assert_eq!(stats.body["data"]["components"], json!({ "compiled": 4, "loadedFromDisk": 0, "inMemory": 4 }));
    server.terminate();

    let server = Server::start_in(dir.path(), &args);
    assert_eq!(run(&server, &sid, "signup", json!({ "email": "b@b.c", "amountCents": 2 })).await.status, 201);
    let stats = server.get("/api/v1/runtime").await;
    assert_eq!(stats.body["data"]["components"], json!({ "compiled": 0, "loadedFromDisk": 4, "inMemory": 4 }));
}
