//! What the HTTP benchmarks share: starting the release `stage` binary, and a keep-alive
//! load generator that reports requests/s and latency percentiles.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// Creates a session holding `files` (path → text or `{content, encoding}`), publishes it,
/// and answers the app's sid.
pub async fn publish(client: &reqwest::Client, base: &str, files: serde_json::Value) -> String {
    publish_with(client, base, None, files).await
}

/// [`publish`] as the caller whose `Authorization` is `auth` (else the local admin).
pub async fn publish_with(
    client: &reqwest::Client,
    base: &str,
    auth: Option<&str>,
    files: serde_json::Value,
) -> String {
    let post = |path: String| {
        let request = client.post(format!("{base}{path}"));
        match auth {
            Some(auth) => request.header("authorization", auth),
            None => request,
        }
    };
    let session: serde_json::Value = post("/api/v1/stage/sessions".into()).send().await.unwrap().json().await.unwrap();
    let id = session["data"]["id"].as_str().unwrap();
    let pushed = post(format!("/api/v1/stage/sessions/{id}/push"))
        .json(&serde_json::json!({ "files": files }))
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 200);
    let app: serde_json::Value = post("/api/v1/stage/apps".into())
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
/// process, its base URL and the folder (removed when dropped). `STAGE_BENCH_BIN` runs
/// another build of `stage` instead (e.g. one with frame pointers, for profiling).
pub fn start_stage(args: &[&str]) -> (Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let binary = std::env::var("STAGE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_stage").to_owned());
    let mut server = Command::new(binary)
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

/// CPU time (user + system, all threads) the process `pid` has used so far, from
/// `/proc/<pid>/stat`; `None` off Linux. On a machine shared with the load generator, CPU
/// per request is steadier than requests/s.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    static TICKS_PER_SECOND: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let ticks_per_second = *TICKS_PER_SECOND.get_or_init(|| {
        let output = Command::new("getconf").arg("CLK_TCK").output().ok();
        output.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|t| t.trim().parse().ok()).unwrap_or(100.0)
    });
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Duration::from_secs_f64(ticks / ticks_per_second))
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

/// Drives `concurrency` keep-alive HTTP/1.1 connections sending `method url` (with `body`
/// as JSON) for `seconds`; every answer must have status `expected`.
///
/// The generator shares the machine's cores with the server, so it is kept as lean as wrk:
/// bare hyper connections (no pool, no redirects) on one thread with a single-threaded
/// runtime, so that answers do not cost cross-thread wake-ups.
pub async fn load(
    method: http::Method,
    url: &str,
    body: Option<String>,
    expected: u16,
    concurrency: usize,
    seconds: u64,
) -> Load {
    let uri: http::Uri = url.parse().unwrap();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(drive(method, uri, body.map(Bytes::from), expected, concurrency, seconds))
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap()
}

async fn drive(
    method: http::Method,
    uri: http::Uri,
    body: Option<Bytes>,
    expected: u16,
    concurrency: usize,
    seconds: u64,
) -> Load {
    let authority = uri.authority().unwrap().clone();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..concurrency {
        let stream = tokio::net::TcpStream::connect(authority.as_str()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        let (method, uri, body, stop, authority) =
            (method.clone(), uri.clone(), body.clone(), stop.clone(), authority.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let mut request = http::Request::builder()
                    .method(method.clone())
                    .uri(uri.path_and_query().unwrap().as_str())
                    .header(http::header::HOST, authority.as_str());
                if body.is_some() {
                    request = request.header(http::header::CONTENT_TYPE, "application/json");
                }
                let request = request.body(Full::new(body.clone().unwrap_or_default())).unwrap();
                sender.ready().await.unwrap();
                let answer = sender.send_request(request).await.unwrap();
                let status = answer.status().as_u16();
                let answer = answer.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(status, expected, "{}", String::from_utf8_lossy(&answer));
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    while let Some(worker) = workers.join_next().await {
        latencies.extend(worker.unwrap());
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
