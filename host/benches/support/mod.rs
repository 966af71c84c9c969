//! What the HTTP benchmarks share: starting the release `stage` binary, and a keep-alive
//! load generator that reports requests/s and latency percentiles.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Creates a session holding `files` (path → text or `{content, encoding}`), publishes it,
/// and answers the app's sid.
pub async fn publish(client: &reqwest::Client, base: &str, files: serde_json::Value) -> String {
    let session: serde_json::Value =
        client.post(format!("{base}/api/v1/stage/sessions")).send().await.unwrap().json().await.unwrap();
    let id = session["data"]["id"].as_str().unwrap();
    let pushed = client
        .post(format!("{base}/api/v1/stage/sessions/{id}/push"))
        .json(&serde_json::json!({ "files": files }))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    let app: serde_json::Value = client
        .post(format!("{base}/api/v1/stage/apps"))
        .json(&serde_json::json!({ "sessionId": id, "name": "Bench" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app["data"]["sid"].as_str().expect("published").to_owned()
}

/// Starts `stage serve` on a free port in a fresh data folder with `args`; answers the
/// process, its base URL and the folder (removed when dropped).
pub fn start_stage(args: &[&str]) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_stage"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env("STAGE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stage");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().trim_start_matches("listening on ").to_owned();
    (server, base, dir)
}

pub struct Load {
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub requests: usize,
}

impl Load {
    pub fn print(&self, what: &str) {
        println!(
            "  {what:<30}: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests)",
            self.per_second,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.requests
        );
    }
}

/// Drives `concurrency` keep-alive clients sending `method url` for `seconds`; every answer
/// must have status `expected`.
pub async fn load(
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
