//! The hardening issue's attacks against the release `stage` binary, measured while they
//! run: the server's peak RSS and the latency of `GET /healthz` (and of another tenant's
//! run) sampled from another connection. Timings are printed, never asserted.
//!
//! * templates: anonymous callers running templates that burn CPU (`([1] * n) | sum`) and
//!   ones that ask for gigabytes (`'a' | indent(n)`, `'x' * n`), 4 at a time;
//! * pool: one tenant's spinning plugin with the longest allowed `timeoutMs`, started 260
//!   times at once with `?wait=1`, while another tenant runs a workflow.
//!
//! Run: `cargo bench -p stage-host --bench attacks` (STAGE_BENCH_SECONDS per attack,
//! default 10; STAGE_BENCH_BIN for another build)

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use support::{publish, publish_with, start_stage};

fn main() {
    let seconds: u64 = std::env::var("STAGE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        templates(seconds).await;
        pool(seconds).await;
    });
}

/// What a probe saw while an attack ran.
struct Watch {
    latencies: Vec<Duration>,
    failures: usize,
    peak_rss: u64,
}

impl Watch {
    fn print(&self, what: &str) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)));
        let ms = |d: Option<&Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
        println!(
            "  {what:<34}: {} probes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} failed; server peak RSS {} MiB",
            sorted.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(sorted.last()),
            self.failures,
            self.peak_rss / (1024 * 1024)
        );
    }
}

/// Sends `probe` every 20 ms and samples the RSS of `pid` until `stop`.
async fn watch(
    pid: u32,
    stop: Arc<AtomicBool>,
    probe: impl Fn() -> reqwest::RequestBuilder + Send + 'static,
    expected: u16,
) -> Watch {
    let mut watch = Watch { latencies: Vec::new(), failures: 0, peak_rss: 0 };
    while !stop.load(Ordering::Relaxed) {
        watch.peak_rss = watch.peak_rss.max(rss(pid));
        let sent = Instant::now();
        match probe().timeout(Duration::from_secs(30)).send().await {
            Ok(answer) if answer.status().as_u16() == expected => watch.latencies.push(sent.elapsed()),
            _ => watch.failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch
}

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

fn workflow_file(steps: Value) -> Value {
    let file = json!({ "version": 1, "workflows": { "w": { "auth": "public", "steps": steps } } });
    json!({ "/app/shift.workflows.json": file.to_string() })
}

async fn templates(seconds: u64) {
    let (mut server, base, _dir) = start_stage(&[]);
    let client = reqwest::Client::new();
    let mut attacks = Vec::new();
    for (template, input) in [
        ("{{ ([1] * input.n) | sum }}", json!({ "n": 100_000_000 })),
        ("{{ 'a' | indent(input.n) }}", json!({ "n": 1_000_000_000 })),
        ("{{ (('x' * input.n) ~ ('x' * input.n)) | length }}", json!({ "n": 100_000_000 })),
        ("{{ input | tojson(indent=input.n) }}", json!({ "n": 1_000_000_000 })),
    ] {
        let sid = publish(&client, &base, workflow_file(json!([{ "response": { "body": template } }]))).await;
        attacks.push((format!("{base}/api/v1/run/{sid}/w"), json!({ "input": input })));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for (url, body) in attacks {
        let (stop, answered, client) = (stop.clone(), answered.clone(), client.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // A forwarding header: an anonymous stranger, not the local admin.
                let sent = client.post(&url).header("x-forwarded-for", "203.0.113.9").json(&body).send().await;
                assert_eq!(sent.map(|a| a.status().as_u16()).unwrap_or(0), 422, "a template attack must fail clearly");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let health = format!("{base}/healthz");
    let probe = tokio::spawn(watch(server.id(), stop.clone(), move || reqwest::Client::new().get(&health), 200));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        attacker.await.unwrap();
    }
    println!("template attacks, 4 anonymous attackers in a loop for {seconds} s:");
    println!("  attack runs answered 422     : {}", answered.load(Ordering::Relaxed));
    probe.await.unwrap().print("GET /healthz meanwhile");
    let _ = server.kill();
    let _ = server.wait();
}

async fn pool(seconds: u64) {
    let (mut server, base, dir) = start_stage(&[]);
    let admin = format!("Bearer {}", std::fs::read_to_string(dir.path().join("admin-key")).unwrap().trim());
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/v1/admin/tenants"))
        .header("authorization", &admin)
        .json(&json!({ "id": "hostile" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hostile = format!("Bearer {}", created["data"]["apiKey"]["secret"].as_str().unwrap());
    let wasm = std::fs::read(concat!(env!("OUT_DIR"), "/fixtures/chaos.wasm")).unwrap();
    let plugin = json!({
        "manifest": { "kind": "hostile.spin", "inputs": { "required": ["mode"], "additional": true } },
        "component": base64::engine::general_purpose::STANDARD.encode(wasm),
    });
    let installed = client
        .put(format!("{base}/api/v1/plugins/hostile.spin"))
        .header("authorization", &hostile)
        .json(&plugin)
        .send()
        .await
        .unwrap();
    assert_eq!(installed.status(), 200);
    let spin = json!([{ "hostile.spin": { "mode": "spin" }, "timeoutMs": 60_000 }]);
    let hostile_app = publish_with(&client, &base, Some(&hostile), workflow_file(spin)).await;
    let quick = publish(&client, &base, workflow_file(json!([{ "response": { "body": "{{ input.n }}" } }]))).await;

    // 260 runs at once, each waiting 1 ms.
    let statuses: Vec<u16> = join_all(
        (0..260)
            .map(|_| {
                let (client, url, auth) =
                    (client.clone(), format!("{base}/api/v1/run/{hostile_app}/w?wait=1"), hostile.clone());
                tokio::spawn(async move {
                    client
                        .post(url)
                        .header("authorization", auth)
                        .json(&json!({}))
                        .send()
                        .await
                        .map_or(0, |a| a.status().as_u16())
                })
            })
            .collect(),
    )
    .await;
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    println!("pool attack: one tenant starts 260 spinning runs (timeoutMs 60000) at once:");
    println!(
        "  answered 202 (running or queued): {}, 429: {}, other: {}",
        count(202),
        count(429),
        260 - count(202) - count(429)
    );

    let stop = Arc::new(AtomicBool::new(false));
    let health = format!("{base}/healthz");
    let health_probe = tokio::spawn(watch(server.id(), stop.clone(), move || reqwest::Client::new().get(&health), 200));
    let run_url = format!("{base}/api/v1/run/{quick}/w");
    let run_probe = tokio::spawn(watch(
        server.id(),
        stop.clone(),
        move || reqwest::Client::new().post(&run_url).json(&json!({ "input": { "n": 1 } })),
        200,
    ));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    health_probe.await.unwrap().print("GET /healthz meanwhile");
    run_probe.await.unwrap().print("another tenant's run meanwhile");
    let _ = server.kill();
    let _ = server.wait();
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<u16>>) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(tasks.len());
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}
