//! Attacks on the host's memory through its caches (finding 9 of the hardening issue):
//! parsed workflow files, compiled components and linked instances are bounded, and
//! publishing a new version or deleting a plugin frees the old entries.

use serde_json::{Map, Value, json};

use crate::common::Server;

/// A workflow file whose one `response` step has `templates` templated fields (~30 bytes
/// each, so 20,000 make ~0.6 MB), `marker` making each version's bytes differ.
fn heavy_workflows(templates: usize, marker: usize) -> String {
    let body: Map<String, Value> =
        (0..templates).map(|i| (format!("f{i}"), json!(format!("{{{{ input.n }}}}-{marker}-{i}")))).collect();
    json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": [{ "response": { "body": body } }] } } })
        .to_string()
}

/// Pushes `workflows` to the app's session and publishes it as the app's next version.
async fn republish(server: &Server, sid: &str, workflows: String) -> i64 {
    let app = server.get(&format!("/api/v1/stage/apps/{sid}")).await;
    let session = app.body["data"]["sessionId"].as_str().unwrap().to_owned();
    let pushed = server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/shift.workflows.json": workflows } }),
        )
        .await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let published = server.post(&format!("/api/v1/stage/apps/{sid}/versions"), Value::Null).await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    published.body["data"]["version"].as_i64().unwrap()
}

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn republishing_a_huge_workflow_file_and_running_it_keeps_memory_bounded() {
    let server = Server::start();
    let sid = server.publish(json!({ "/app/shift.workflows.json": heavy_workflows(20_000, 0) })).await;
    eprintln!("file: {} bytes", heavy_workflows(20_000, 0).len());
    let baseline = server.rss_bytes();
    let mut peak = baseline;
    for cycle in 1..=6 {
        let version = republish(&server, &sid, heavy_workflows(20_000, cycle)).await;
        let ran = server.post(&format!("/api/v1/run/{sid}/w"), json!({ "input": { "n": cycle } })).await;
        assert_eq!(ran.status, 200, "{:?}", ran.body["error"]);
        assert_eq!(ran.body["f19999"], format!("{cycle}-{cycle}-19999"));
        let rss = server.rss_bytes();
        peak = peak.max(rss);
        eprintln!("cycle {cycle} (version {version}): RSS {} MiB", rss / MIB);
    }
    eprintln!("RSS after publish {} MiB, peak {} MiB", baseline / MIB, peak / MIB);
}
