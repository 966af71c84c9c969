//! API backends: hello-world requests/s and p50/p99 latency over loopback HTTP through
//! Stage's backend path (`GET /stage/<app>/api/hello`, a fresh wasm instance per request),
//! in one run against
//! * `GET /healthz`, a native axum route of the same server (goal: backend ≥ 0.25×), and
//! * `wasmtime serve` running the same component (goal: Stage ≥ 1.5×), when a wasmtime 48
//!   binary is available (`STAGE_BENCH_WASMTIME=/path/to/wasmtime`, or `wasmtime` on PATH).
//!
//! The component is `tests/fixtures/backend-bare`, which imports only WASI so that
//! `wasmtime serve` can run it; `examples/backend-hello` is measured too.
//!
//! Run: `cargo bench -p stage-host --bench backends` (STAGE_BENCH_SECONDS per round and target,
//! STAGE_BENCH_ROUNDS, STAGE_BENCH_CONCURRENCY)

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use support::{Load, load, start_stage};

const BARE: &str = concat!(env!("OUT_DIR"), "/fixtures/backend-bare.wasm");
const EXAMPLE: &str = concat!(env!("OUT_DIR"), "/examples/backend-hello.wasm");

fn main() {
    let seconds: u64 = std::env::var("STAGE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let rounds: usize = std::env::var("STAGE_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let concurrency: usize = std::env::var("STAGE_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let (mut server, base, _dir) = start_stage(&[]);
    let mut wasmtime = wasmtime_serve();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        let bare = publish(&client, &base, BARE).await;
        let example = publish(&client, &base, EXAMPLE).await;
        let mut targets = vec![
            ("GET /healthz (native axum)", format!("{base}/healthz")),
            ("Stage backend-bare /hello", format!("{base}/stage/{bare}/api/hello")),
            ("Stage backend-hello /hello", format!("{base}/stage/{example}/api/hello")),
        ];
        if let Some((_, url)) = &wasmtime {
            targets.push(("wasmtime serve /hello", url.clone()));
        }
        for (_, url) in &targets {
            for _ in 0..200 {
                assert_eq!(client.get(url).send().await.unwrap().status(), 200);
            }
        }

        // Rounds alternate the targets, so that drift in the machine's speed hits all alike;
        // ratios are taken within a round, then the median across rounds is reported.
        let mut measured: Vec<Vec<Load>> = targets.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (index, (_, url)) in targets.iter().enumerate() {
                measured[index].push(load(http::Method::GET, url, None, 200, concurrency, seconds).await);
            }
        }

        println!(
            "{concurrency} concurrent keep-alive clients, {rounds} rounds of {seconds} s per target (median round)"
        );
        for ((label, _), loads) in targets.iter().zip(&measured) {
            median_by(loads, |load| load.per_second).print(label);
        }
        let ratio = |a: usize, b: usize| {
            let per_round: Vec<f64> =
                measured[a].iter().zip(&measured[b]).map(|(x, y)| x.per_second / y.per_second).collect();
            *median_by(&per_round, |r| *r)
        };
        println!("  backend / native          : {:.3}x (goal >= 0.25x)", ratio(1, 0));
        if wasmtime.is_some() {
            println!("  Stage / wasmtime serve    : {:.3}x (goal >= 1.5x)", ratio(1, 3));
        } else {
            println!("  wasmtime serve            : skipped (set STAGE_BENCH_WASMTIME or put wasmtime 48 on PATH)");
        }
    });
    if let Some((child, _)) = &mut wasmtime {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// The median element of `items` by `key`.
fn median_by<T>(items: &[T], key: impl Fn(&T) -> f64) -> &T {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by(|a, b| key(a).total_cmp(&key(b)));
    sorted[sorted.len() / 2]
}

/// Publishes an app whose backend is the component at `wasm`; answers its sid.
async fn publish(client: &reqwest::Client, base: &str, wasm: &str) -> String {
    let wasm = std::fs::read(wasm).expect("the benchmark's components are built by host/build.rs");
    let content = base64::engine::general_purpose::STANDARD.encode(wasm);
    support::publish(client, base, json!({ "/app/backend.wasm": { "content": content, "encoding": "base64" } })).await
}

/// `wasmtime serve` on the bare component, once it accepts connections.
fn wasmtime_serve() -> Option<(std::process::Child, String)> {
    let binary = std::env::var("STAGE_BENCH_WASMTIME").unwrap_or_else(|_| "wasmtime".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new(&binary)
        .args(["serve", "-S", "cli=y", "--addr", &format!("127.0.0.1:{port}"), BARE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((child, format!("http://127.0.0.1:{port}/hello")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
