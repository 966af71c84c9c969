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
//! Run: `cargo bench -p stage-host --bench backends` (STAGE_BENCH_SECONDS, STAGE_BENCH_CONCURRENCY)

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::json;

use support::{Load, load, start_stage};

const BARE: &str = concat!(env!("OUT_DIR"), "/fixtures/backend-bare.wasm");
const EXAMPLE: &str = concat!(env!("OUT_DIR"), "/examples/backend-hello.wasm");

fn main() {
    let seconds: u64 = std::env::var("STAGE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = std::env::var("STAGE_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let (mut server, base, _dir) = start_stage(&[]);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        let bare = publish(&client, &base, BARE).await;
        let example = publish(&client, &base, EXAMPLE).await;
        let bare_url = format!("{base}/stage/{bare}/api/hello");
        let example_url = format!("{base}/stage/{example}/api/hello");
        for url in [&bare_url, &example_url] {
            for _ in 0..200 {
                assert_eq!(client.get(url).send().await.unwrap().status(), 200);
            }
        }

        let get = reqwest::Method::GET;
        let native = load(&client, get.clone(), &format!("{base}/healthz"), None, 200, concurrency, seconds).await;
        let stage = load(&client, get.clone(), &bare_url, None, 200, concurrency, seconds).await;
        let stage_example = load(&client, get.clone(), &example_url, None, 200, concurrency, seconds).await;
        let wasmtime = match wasmtime_serve() {
            Some((mut child, url)) => {
                let measured = load(&client, get.clone(), &url, None, 200, concurrency, seconds).await;
                let _ = child.kill();
                let _ = child.wait();
                Some(measured)
            }
            None => None,
        };

        println!("{concurrency} concurrent keep-alive clients, {seconds} s each");
        native.print("GET /healthz (native axum)");
        stage.print("Stage backend-bare /hello");
        stage_example.print("Stage backend-hello /hello");
        println!("  backend / native          : {:.3}x (goal >= 0.25x)", stage.per_second / native.per_second);
        match wasmtime {
            Some(wasmtime) => report_wasmtime(&stage, &wasmtime),
            None => {
                println!("  wasmtime serve            : skipped (set STAGE_BENCH_WASMTIME or put wasmtime 48 on PATH)")
            }
        }
    });
    let _ = server.kill();
    let _ = server.wait();
}

fn report_wasmtime(stage: &Load, wasmtime: &Load) {
    wasmtime.print("wasmtime serve /hello");
    println!("  Stage / wasmtime serve    : {:.3}x (goal >= 1.5x)", stage.per_second / wasmtime.per_second);
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
