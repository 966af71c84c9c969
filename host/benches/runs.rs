//! P2: workflow runs per second over loopback HTTP, durable records on, against the release
//! `stage` binary: the pulse.track → ledger.audit → response workflow, driven by a
//! keep-alive load generator in this process. The same run measures `GET /healthz` (a bare
//! axum route on the same server) as the baseline. Prints runs/s, p50/p99 and ratios.
//!
//! Run: `cargo bench -p stage-host --bench runs` (STAGE_BENCH_SECONDS, STAGE_BENCH_CONCURRENCY)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn main() {
    let seconds: u64 = std::env::var("STAGE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = std::env::var("STAGE_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_stage"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("STAGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stage");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().trim_start_matches("listening on ").to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        let sid = publish(&client, &base).await;
        let run_url = format!("{base}/api/v1/run/{sid}/signup");
        let body = json!({ "input": { "email": "load@example.com", "amountCents": 1250 } }).to_string();

        // Warm up: compile the components, fill the caches.
        for _ in 0..200 {
            let answer = client.post(&run_url).body(body.clone()).send().await.unwrap();
            assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
        }
        let health =
            load(&client, reqwest::Method::GET, &format!("{base}/healthz"), None, 200, concurrency, seconds).await;
        let runs = load(&client, reqwest::Method::POST, &run_url, Some(body), 201, concurrency, seconds).await;
        println!("{concurrency} concurrent keep-alive clients, {seconds} s each");
        health.print("GET /healthz (bare axum route)");
        runs.print("POST run pulse→ledger→response");
        println!("  runs / healthz            : {:.3}x", runs.per_second / health.per_second);
    });
    let _ = server.kill();
    let _ = server.wait();
}

async fn publish(client: &reqwest::Client, base: &str) -> String {
    let workflows = json!({ "version": 1, "workflows": { "signup": { "auth": "public", "steps": [
        { "id": "event", "pulse.track": { "name": "signup", "userId": "{{ input.email }}", "meta": { "amountCents": "{{ input.amountCents }}" } } },
        { "id": "audit", "ledger.audit": { "operation": "write", "meta": { "eventId": "{{ steps.event.id }}" } } },
        { "response": { "status": 201, "body": { "eventId": "{{ steps.event.id }}", "seq": "{{ steps.audit.seq }}" } } }
    ] } } });
    let session: Value =
        client.post(format!("{base}/api/v1/stage/sessions")).send().await.unwrap().json().await.unwrap();
    let id = session["data"]["id"].as_str().unwrap();
    let files = json!({ "files": { "/app/App.tsx": "export default () => null", "/app/shift.workflows.json": workflows.to_string() } });
    client.post(format!("{base}/api/v1/stage/sessions/{id}/push")).json(&files).send().await.unwrap();
    let app: Value = client
        .post(format!("{base}/api/v1/stage/apps"))
        .json(&json!({ "sessionId": id, "name": "Bench" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app["data"]["sid"].as_str().unwrap().to_owned()
}

struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
}

impl Load {
    fn print(&self, what: &str) {
        println!(
            "  {what:<30}: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests)",
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests
        );
    }
}

async fn load(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<String>,
    expected: u16,
    concurrency: usize,
    seconds: u64,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    let started = Instant::now();
    for _ in 0..concurrency {
        let (client, method, url, body, stop) =
            (client.clone(), method.clone(), url.to_owned(), body.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let mut request = client.request(method.clone(), &url);
                if let Some(body) = &body {
                    request = request.header("content-type", "application/json").body(body.clone());
                }
                let answer = request.send().await.unwrap();
                assert_eq!(answer.status().as_u16(), expected);
                answer.bytes().await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Load {
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: latencies[latencies.len() / 2],
        p99: latencies[latencies.len() * 99 / 100],
        requests: latencies.len(),
    }
}
