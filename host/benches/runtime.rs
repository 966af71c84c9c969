//! P1: one full step invocation through Stage's runtime (fresh store, limits, deadline,
//! captured output, outbound hooks) against a bare `instantiate_pre` + call of the same
//! component on the same engine, in the same run. Prints both and their ratio.
//!
//! Run: `cargo bench -p stage-host --bench runtime`

use std::sync::Arc;
use std::time::{Duration, Instant};

use stage_host::workflow::registry::builtins;
use stage_runtime::{Identity, Limits, NoServices, Policy, Runtime, RuntimeConfig, StepCall, StepContext};

const ITERATIONS: u32 = 20_000;
const INPUT: &str = r#"{"status":201,"body":{"ok":true}}"#;

fn main() {
    let runtime_threads = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        compiled_dir: dir.path().to_owned(),
        default_limits: Limits::default(),
        allow_private_egress: false,
        max_wall_time_ms: 60_000,
        quotas: stage_runtime::Quotas::default(),
        components: stage_cache::CacheLimits { max_entries: 16, max_weight: u64::MAX },
        reserved_instances: 0,
    };
    let runtime = Runtime::new(config, Arc::new(NoServices(stage_runtime::net::Outbound::new()))).unwrap();
    let response = builtins().into_iter().find(|s| s.manifest.kind == "response").unwrap();
    runtime_threads.block_on(async {
        let step =
            runtime.prepare_step("response", || async { anyhow::Ok(Arc::<[u8]>::from(response.wasm)) }).await.unwrap();
        let policy = Arc::new(Policy::default());
        let call = || StepCall {
            context: StepContext {
                run_id: "run_bench".into(),
                app_sid: "app_bench".into(),
                workflow: "bench".into(),
                step_id: "respond".into(),
                attempt: 1,
                idempotency_key: "stp_bench".into(),
            },
            input: INPUT.into(),
            identity: Identity { tenant_id: "default".into(), app_sid: Some("app_bench".into()), actor_email: None },
            policy: policy.clone(),
            limits: Limits::default(),
        };
        // Warm up both paths.
        for _ in 0..500 {
            runtime.invoke_step(&step, call()).await.outcome.unwrap();
            runtime.invoke_bare(&step, INPUT).await.unwrap();
        }
        let mut full = Vec::new();
        let mut bare = Vec::new();
        // Interleave rounds so that both see the same machine conditions.
        for _ in 0..10 {
            let started = Instant::now();
            for _ in 0..ITERATIONS / 10 {
                runtime.invoke_step(&step, call()).await.outcome.unwrap();
            }
            full.push(started.elapsed() / (ITERATIONS / 10));
            let started = Instant::now();
            for _ in 0..ITERATIONS / 10 {
                runtime.invoke_bare(&step, INPUT).await.unwrap();
            }
            bare.push(started.elapsed() / (ITERATIONS / 10));
        }
        let (full, bare) = (median(&mut full), median(&mut bare));
        println!("trivial step (`response`), {ITERATIONS} invocations each, median of 10 rounds");
        println!("  Stage runtime invoke_step : {:>8.1} µs", micros(full));
        println!("  bare instantiate_pre+call : {:>8.1} µs", micros(bare));
        println!("  ratio                     : {:.2}x", full.as_secs_f64() / bare.as_secs_f64());
    });
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
