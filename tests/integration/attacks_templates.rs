//! Attacks through workflow templates (hardening finding 1 and 2): templates are tenant
//! code whose inputs an anonymous caller chooses. Each attack ends its run with a clear
//! error naming the step, and the server keeps its memory and keeps answering.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Server;

/// Far above the server's idle footprint, far below what the attacks used to take (a crash,
/// or 2.4 GB for one run).
const RSS_BOUND: u64 = 400 * 1024 * 1024;

/// A public workflow `w` whose only step answers `body`, with the given step options.
fn response_app(body: &str, options: Value) -> Value {
    let mut step = json!({ "response": { "body": body } });
    for (key, value) in options.as_object().unwrap() {
        step[key] = value.clone();
    }
    let workflows = json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": [step] } } });
    json!({ "/app/App.tsx": "export default () => null;", "/app/shift.workflows.json": workflows.to_string() })
}

/// Runs `w` of `sid` as an anonymous caller.
async fn run_anonymously(server: &Server, sid: &str, input: Value, headers: &[(&str, &str)]) -> crate::common::Answer {
    run_at(server.url(&format!("/api/v1/run/{sid}/w")), input, headers).await
}

async fn run_at(url: String, input: Value, headers: &[(&str, &str)]) -> crate::common::Answer {
    let mut request = reqwest::Client::new().post(url).json(&json!({ "input": input }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    // A forwarding header makes a loopback request a stranger's, not the local admin's.
    let response = request.header("x-forwarded-for", "203.0.113.9").send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    crate::common::Answer { status, body, headers }
}

/// Asserts a clear template error naming the response step.
fn assert_template_error(answer: &crate::common::Answer, code: &str, needle: &str) {
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{:?}", answer.body);
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("step 0 (#0, response): "), "{message}");
    assert!(message.contains(needle), "`{needle}` not in {message}");
    assert_eq!(answer.body["error"]["details"], json!({ "stepIndex": 0, "stepId": null, "kind": "response" }));
}

#[tokio::test]
async fn templates_that_would_exhaust_memory_fail_their_step_and_the_server_stays_small() {
    let server = Server::start();
    for (template, input, needle) in [
        ("{{ input | tojson(indent=1000000000) }}", json!({}), "needed more than 64 MiB of memory"),
        ("{{ 'a' | indent(input.n) }}", json!({ "n": 1_000_000_000u64 }), "needed more than 64 MiB of memory"),
        (
            "{{ (('x' * input.n) ~ ('x' * input.n) ~ ('x' * input.n)) | length }}",
            json!({ "n": 100_000_000 }),
            "needed more than 64 MiB of memory",
        ),
        ("{{ 'x' * input.n }}", json!({ "n": 5_000_000 }), "produced more than 4194304 bytes"),
    ] {
        let sid = server.publish(response_app(template, json!({}))).await;
        let answer = run_anonymously(&server, &sid, input, &[]).await;
        assert_template_error(&answer, "TEMPLATE_LIMIT", needle);
        assert!(answer.body["error"]["message"].as_str().unwrap().contains(template), "{:?}", answer.body);
    }
    // Sizes the sandbox cannot even address are refused as arguments.
    for (template, input) in [
        ("{{ input | tojson(indent=35184372088832) }}", json!({})),
        ("{{ 'a' | indent(input.n) }}", json!({ "n": 35184372088832u64 })),
    ] {
        let sid = server.publish(response_app(template, json!({}))).await;
        let answer = run_anonymously(&server, &sid, input, &[]).await;
        assert_eq!(answer.status, 422, "{template}: {:?}", answer.body);
        assert!(["TEMPLATE_LIMIT", "VALIDATION_FAILED"].contains(&answer.body["error"]["code"].as_str().unwrap()));
    }
    assert_eq!(server.get("/healthz").await.status, 200);
    let rss = server.rss_bytes();
    assert!(rss < RSS_BOUND, "the server holds {} MiB after the attacks", rss / (1024 * 1024));
}

#[tokio::test]
async fn constant_expressions_too_big_to_compile_are_refused_at_publish() {
    // minijinja folds constants when it compiles a template, so compiling is bounded too.
    let server = Server::start();
    let template = "{{ (('x' * 100000000) ~ ('x' * 100000000) ~ ('x' * 100000000)) | length }}";
    let session = server.new_session().await;
    let pushed = server
        .post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": response_app(template, json!({})) }))
        .await;
    assert_eq!(pushed.status, 200);
    let refused = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Folded" })).await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"]["details"]["problems"],
        json!([{ "path": "", "message": "checking the file's templates (1) needed more than 64 MiB of memory" }])
    );
    let rss = server.rss_bytes();
    assert!(rss < RSS_BOUND, "the server holds {} MiB after the attack", rss / (1024 * 1024));
}

#[tokio::test]
async fn a_lookup_larger_than_the_output_budget_is_refused_without_the_sandbox() {
    let server = Server::start();
    let sid = server.publish(response_app("{{ input.big }}", json!({}))).await;
    let answer = run_anonymously(&server, &sid, json!({ "big": "x".repeat(5 * 1024 * 1024) }), &[]).await;
    assert_template_error(&answer, "TEMPLATE_LIMIT", "`{{ input.big }}` produced more than 4194304 bytes");
    let small = run_anonymously(&server, &sid, json!({ "big": "fine" }), &[]).await;
    assert_eq!((small.status, &small.body), (200, &json!("fine")));
}

#[tokio::test]
async fn a_template_that_panics_fails_its_run_and_its_key_replays_the_failure() {
    let server = Server::start();
    let sid = server.publish(response_app("{{ 'a' | indent(input.n) }}", json!({}))).await;
    // 4e9 does not fit the sandbox's address space: the allocation panics inside it.
    let key = [("idempotency-key", "panic-1")];
    let first = run_anonymously(&server, &sid, json!({ "n": 4_000_000_000u64 }), &key).await;
    assert_template_error(&first, "TEMPLATE_LIMIT", "evaluation panicked (capacity overflow)");
    let run_id = first.headers["x-stage-run-id"].to_str().unwrap().to_owned();

    let replay = run_anonymously(&server, &sid, json!({ "n": 4_000_000_000u64 }), &key).await;
    assert_eq!((replay.status, &replay.body), (422, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");

    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(record.body["data"]["status"], "failed");
    assert_eq!(record.body["data"]["steps"][0]["status"], "failed");
    assert_eq!(record.body["data"]["steps"][0]["error"]["class"], "template-limit");
    assert_eq!(server.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn templates_that_burn_cpu_stop_at_the_step_deadline_while_the_server_keeps_answering() {
    let server = Server::start();
    let sid = server.publish(response_app("{{ ([1] * input.n) | sum }}", json!({ "timeoutMs": 2000 }))).await;
    let attacks: Vec<_> = (0..2)
        .map(|_| {
            let url = server.url(&format!("/api/v1/run/{sid}/w"));
            tokio::spawn(async move { run_at(url, json!({ "n": 100_000_000u64 }), &[]).await })
        })
        .collect();
    // The host keeps answering while both run.
    for _ in 0..10 {
        let health = server.send(Method::GET, "/healthz", None, None).await;
        assert_eq!(health.status, 200);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for attack in attacks {
        let answer = attack.await.unwrap();
        assert_template_error(&answer, "TEMPLATE_LIMIT", "took longer than 2000 ms");
    }
    let rss = server.rss_bytes();
    assert!(rss < RSS_BOUND, "the server holds {} MiB after the attack", rss / (1024 * 1024));
}
