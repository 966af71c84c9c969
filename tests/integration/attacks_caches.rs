//! Attacks on the host's memory through what it keeps between requests (finding 9 of the
//! hardening issue): parsed workflow files, compiled components with their linked
//! instances, backends and plugin kinds live in bounded caches, publishing a new version
//! drops the older versions' entries, and replacing or deleting a plugin drops its own.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::common::Server;

const MIB: u64 = 1024 * 1024;

/// A workflow file whose one `response` step has `templates` templated fields (~30 bytes
/// each: 20,000 make ~0.6 MB), `marker` making each version's bytes differ.
fn heavy_workflows(templates: usize, marker: usize) -> String {
    let body: Map<String, Value> =
        (0..templates).map(|i| (format!("f{i}"), json!(format!("{{{{ input.n }}}}-{marker}-{i}")))).collect();
    json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": [{ "response": { "body": body } }] } } })
        .to_string()
}

/// A workflow `w` answering `{"n": input.n}` after running `kind` (when given) in echo mode.
fn small_workflows(kind: Option<&str>) -> String {
    let mut steps = Vec::new();
    if let Some(kind) = kind {
        steps.push(json!({ "id": "c", kind: { "mode": "echo" } }));
    }
    steps.push(json!({ "response": { "body": { "n": "{{ input.n }}" } } }));
    json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": steps } } }).to_string()
}

/// Pushes `files` to the app's session and publishes them as the app's next version.
async fn republish(server: &Server, sid: &str, files: Value) -> i64 {
    let app = server.get(&format!("/api/v1/stage/apps/{sid}")).await;
    let session = app.body["data"]["sessionId"].as_str().unwrap().to_owned();
    let pushed = server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })).await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);
    let published = server.post(&format!("/api/v1/stage/apps/{sid}/versions"), Value::Null).await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    published.body["data"]["version"].as_i64().unwrap()
}

async fn run(server: &Server, sid: &str, n: i64) -> crate::common::Answer {
    server.post(&format!("/api/v1/run/{sid}/w"), json!({ "input": { "n": n } })).await
}

/// The counters of one cache (`workflows`, `components`, `backends`, `plugins`).
async fn cache(server: &Server, name: &str) -> Value {
    let stats = server.get("/api/v1/runtime").await;
    assert_eq!(stats.status, 200, "{:?}", stats.body);
    stats.body["data"]["caches"][name].clone()
}

fn counters(stats: &Value, names: &[&str]) -> Vec<u64> {
    names.iter().map(|name| stats[*name].as_u64().unwrap_or_else(|| panic!("{name} in {stats}"))).collect()
}

fn chaos_wasm() -> Vec<u8> {
    std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).expect("chaos fixture")
}

/// `wasm` with a custom section appended: the same component under another content hash.
fn with_custom_section(mut wasm: Vec<u8>, text: &str) -> Vec<u8> {
    let name = b"stage-test";
    let payload = [&[name.len() as u8][..], name, text.as_bytes()].concat();
    wasm.push(0);
    wasm.push(u8::try_from(payload.len()).expect("a short section"));
    wasm.extend(payload);
    wasm
}

async fn put_plugin(server: &Server, kind: &str, wasm: &[u8]) -> crate::common::Answer {
    let manifest = json!({ "kind": kind, "inputs": { "required": ["mode"], "additional": true }, "allow": [] });
    let component = base64::engine::general_purpose::STANDARD.encode(wasm);
    server.put(&format!("/api/v1/plugins/{kind}"), json!({ "manifest": manifest, "component": component })).await
}

#[tokio::test]
async fn republishing_a_huge_workflow_file_and_running_it_keeps_memory_bounded() {
    let server = Server::start();
    let sid = server.publish(json!({ "/app/shift.workflows.json": heavy_workflows(20_000, 0) })).await;
    let mut peak = server.rss_bytes();
    for cycle in 1..=6 {
        let version =
            republish(&server, &sid, json!({ "/app/shift.workflows.json": heavy_workflows(20_000, cycle) })).await;
        let ran = run(&server, &sid, cycle as i64).await;
        assert_eq!(ran.status, 200, "{:?}", ran.body["error"]);
        assert_eq!(ran.body["f19999"], format!("{cycle}-{cycle}-19999"));
        let rss = server.rss_bytes();
        peak = peak.max(rss);
        eprintln!("cycle {cycle} (version {version}): RSS {} MiB", rss / MIB);
        // Only the newest version stays parsed.
        let workflows = cache(&server, "workflows").await;
        assert_eq!(counters(&workflows, &["entries", "invalidations"]), [1, cycle as u64], "{workflows}");
        assert!(workflows["weight"].as_u64().unwrap() <= workflows["maxWeight"].as_u64().unwrap());
    }
    // Each parsed version of this file used to hold ~250 MiB (its compiled templates), and
    // keeping them all passed 1.3 GiB at the fourth cycle. Now templates are compiled only
    // in the template sandbox (a parsed file is ~14x its text) and one version is kept:
    // 126-158 MiB measured in a debug build.
    eprintln!("peak RSS {} MiB", peak / MIB);
    assert!(peak < 400 * MIB, "peak RSS {} MiB", peak / MIB);
}

#[tokio::test]
async fn publishing_a_new_version_drops_the_old_versions_workflow_and_backend_entries() {
    let server = Server::start();
    let backend = std::fs::read(concat!(env!("OUT_DIR"), "/examples/backend-hello.wasm")).unwrap();
    let files = json!({
        "/app/shift.workflows.json": small_workflows(None),
        "/app/backend.wasm": { "content": base64::engine::general_purpose::STANDARD.encode(&backend), "encoding": "base64" },
    });
    let sid = server.publish(files.clone()).await;
    let other = server.publish(files.clone()).await;
    assert_eq!(run(&server, &sid, 1).await.status, 200);
    assert_eq!(server.get(&format!("/stage/{sid}/api/hello")).await.status, 200);
    let fields = ["entries", "hits", "loads", "invalidations"];
    // Publishing kept the checked version of each app: serving them loaded nothing.
    assert_eq!(counters(&cache(&server, "workflows").await, &fields), [2, 1, 0, 0]);
    assert_eq!(counters(&cache(&server, "backends").await, &fields), [2, 1, 0, 0]);

    assert_eq!(republish(&server, &sid, files.clone()).await, 2);
    assert_eq!(counters(&cache(&server, "workflows").await, &fields), [2, 1, 0, 1]);
    assert_eq!(counters(&cache(&server, "backends").await, &fields), [2, 1, 0, 1]);
    assert_eq!(republish(&server, &sid, files).await, 3);
    assert_eq!(run(&server, &sid, 2).await.body, json!({ "n": 2 }));
    assert_eq!(run(&server, &other, 3).await.body, json!({ "n": 3 }));
    assert_eq!(server.get(&format!("/stage/{sid}/api/hello")).await.status, 200);
    assert_eq!(counters(&cache(&server, "workflows").await, &fields), [2, 3, 0, 2]);
    assert_eq!(counters(&cache(&server, "backends").await, &fields), [2, 2, 0, 2]);
}

#[tokio::test]
async fn deleting_a_plugin_drops_its_entries_and_a_later_run_of_it_fails_clearly() {
    let server = Server::start();
    server.install_chaos("acme.chaos", json!([])).await;
    let sid = server.publish(json!({ "/app/shift.workflows.json": small_workflows(Some("acme.chaos")) })).await;
    assert_eq!(run(&server, &sid, 1).await.body, json!({ "n": 1 }));
    let components = cache(&server, "components").await;
    assert_eq!(counters(&cache(&server, "plugins").await, &["entries", "invalidations"]), [1, 0]);

    assert_eq!(server.delete("/api/v1/plugins/acme.chaos").await.status, 200);
    assert_eq!(counters(&cache(&server, "plugins").await, &["entries", "invalidations"]), [0, 1]);
    let dropped = cache(&server, "components").await;
    assert_eq!(dropped["entries"].as_u64().unwrap(), components["entries"].as_u64().unwrap() - 1);
    assert_eq!(dropped["invalidations"].as_u64().unwrap(), components["invalidations"].as_u64().unwrap() + 1);

    let failed = run(&server, &sid, 2).await;
    assert_eq!(failed.status, 502, "{:?}", failed.body);
    assert_eq!(failed.body["error"]["code"], "STEP_FAILED");
    assert_eq!(
        failed.body["error"]["message"],
        "step 0 (c, acme.chaos) failed: the step could not start: unknown step kind acme.chaos"
    );

    // Installed again, it is loaded from its artifact on disk, not compiled again.
    let before = server.get("/api/v1/runtime").await.body["data"]["components"].clone();
    server.install_chaos("acme.chaos", json!([])).await;
    assert_eq!(run(&server, &sid, 3).await.body, json!({ "n": 3 }));
    let after = server.get("/api/v1/runtime").await.body["data"]["components"].clone();
    assert_eq!(after["compiled"], before["compiled"]);
    assert_eq!(after["loadedFromDisk"].as_u64().unwrap(), before["loadedFromDisk"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn replacing_a_plugin_drops_its_old_component_but_not_one_another_kind_still_uses() {
    let server = Server::start();
    let chaos = chaos_wasm();
    assert_eq!(put_plugin(&server, "acme.one", &chaos).await.status, 200);
    assert_eq!(put_plugin(&server, "acme.two", &chaos).await.status, 200);
    let one = server.publish(json!({ "/app/shift.workflows.json": small_workflows(Some("acme.one")) })).await;
    let two = server.publish(json!({ "/app/shift.workflows.json": small_workflows(Some("acme.two")) })).await;
    assert_eq!(run(&server, &one, 1).await.status, 200);
    assert_eq!(run(&server, &two, 1).await.status, 200);
    let fields = ["entries", "loads", "invalidations"];
    let [entries, loads, invalidations] = counters(&cache(&server, "components").await, &fields)[..] else {
        unreachable!()
    };

    // acme.one gets other bytes: its old component stays, since acme.two uses it.
    let replaced = put_plugin(&server, "acme.one", &with_custom_section(chaos.clone(), "v2")).await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_ne!(replaced.body["data"]["hash"], json!(null));
    assert_eq!(counters(&cache(&server, "components").await, &fields), [entries + 1, loads + 1, invalidations]);
    assert_eq!(run(&server, &one, 2).await.body, json!({ "n": 2 }));
    assert_eq!(run(&server, &two, 2).await.body, json!({ "n": 2 }));
    assert_eq!(counters(&cache(&server, "components").await, &fields), [entries + 1, loads + 1, invalidations]);

    // acme.two gets other bytes too: nothing uses the original component any more.
    let replaced = put_plugin(&server, "acme.two", &with_custom_section(chaos, "v3")).await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    assert_eq!(counters(&cache(&server, "components").await, &fields), [entries + 1, loads + 2, invalidations + 1]);
    assert_eq!(run(&server, &two, 3).await.body, json!({ "n": 3 }));
}

#[tokio::test]
async fn a_component_evicted_from_memory_is_loaded_again_from_disk() {
    let server = Server::start_with(&["--cache-component-entries", "1"]);
    let sid = server
        .publish(json!({ "/app/shift.workflows.json": json!({ "version": 1, "workflows": { "w": {
        "auth": "public",
        "steps": [
            { "pulse.track": { "name": "ping" } },
            { "response": { "body": { "n": "{{ input.n }}" } } },
        ] } } }).to_string() }))
        .await;
    for n in 1..=2 {
        assert_eq!(run(&server, &sid, n).await.body, json!({ "n": n }));
    }
    // Each step's component pushes the other one out; both keep working. (The template
    // sandbox, loaded at startup, was the first one pushed out; the engine keeps its handle.)
    let components = cache(&server, "components").await;
    assert_eq!(counters(&components, &["entries", "hits", "loads", "evictions"]), [1, 0, 5, 4], "{components}");
    let compiled = server.get("/api/v1/runtime").await.body["data"]["components"].clone();
    assert!(compiled["loadedFromDisk"].as_u64().unwrap() >= 2, "{compiled}");
    assert_eq!(compiled["compiled"].as_u64().unwrap() + compiled["loadedFromDisk"].as_u64().unwrap(), 5);
}

#[tokio::test]
async fn many_apps_share_a_bounded_workflow_cache() {
    let server = Server::start_with(&["--cache-workflow-entries", "2"]);
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(server.publish(json!({ "/app/shift.workflows.json": small_workflows(None) })).await);
    }
    for (n, sid) in apps.iter().enumerate() {
        assert_eq!(run(&server, sid, n as i64).await.body, json!({ "n": n }));
    }
    // Publishing the third app pushed out the first; then each run, in publishing order,
    // loads its file and pushes out the least recently used one.
    let workflows = cache(&server, "workflows").await;
    assert_eq!(counters(&workflows, &["entries", "maxEntries", "hits", "loads", "evictions"]), [2, 2, 0, 3, 4]);
}

#[tokio::test]
async fn a_workflow_file_heavier_than_the_budget_is_parsed_for_each_run_and_never_kept() {
    let server = Server::start_with(&["--cache-workflow-bytes", "1000"]);
    let sid = server.publish(json!({ "/app/shift.workflows.json": small_workflows(None) })).await;
    for n in 1..=2 {
        assert_eq!(run(&server, &sid, n).await.body, json!({ "n": n }));
    }
    let workflows = cache(&server, "workflows").await;
    assert_eq!(counters(&workflows, &["entries", "weight", "loads", "evictions"]), [0, 0, 2, 3]);
}
