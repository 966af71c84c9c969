//! P2: workflow runs per second over loopback HTTP, durable records on, against the release
//! `stage` binary: the pulse.track → ledger.audit → response workflow, driven by a
//! keep-alive load generator in this process. The same run measures `GET /healthz` (a bare
//! axum route on the same server) as the baseline. Prints runs/s, p50/p99 and ratios.
//!
//! Run: `cargo bench -p stage-host --bench runs` (STAGE_BENCH_SECONDS, STAGE_BENCH_CONCURRENCY,
//! STAGE_BENCH_STEPS=response|pulse for a shorter workflow, =expressions for one response
//! step whose templates are not plain lookups, STAGE_BENCH_BIN for another build)

mod support;

use serde_json::json;

use support::{cpu_time, load, start_stage};

fn main() {
    let seconds: u64 = std::env::var("STAGE_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = std::env::var("STAGE_BENCH_CONCURRENCY").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let (mut server, base, _dir) = start_stage(&[]);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
        // STAGE_BENCH_STEPS=response|pulse measures a shorter workflow, to tell what each
        // step of the full one costs.
        let variant = std::env::var("STAGE_BENCH_STEPS").ok();
        let sid = publish(&client, &base, variant.as_deref()).await;
        let run_url = format!("{base}/api/v1/run/{sid}/signup");
        let body = json!({ "input": { "email": "load@example.com", "amountCents": 1250 } }).to_string();

        // Warm up: compile the components, fill the caches.
        for _ in 0..200 {
            let answer = client.post(&run_url).body(body.clone()).send().await.unwrap();
            assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
        }
        let health = load(http::Method::GET, &format!("{base}/healthz"), None, 200, concurrency, seconds).await;
        let cpu_before = cpu_time(server.id());
        let runs = load(http::Method::POST, &run_url, Some(body), 201, concurrency, seconds).await;
        let cpu_used = cpu_time(server.id()).zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
        println!("{concurrency} concurrent keep-alive clients, {seconds} s each");
        health.print("GET /healthz (bare axum route)");
        runs.print(&format!("POST run {}", variant.as_deref().unwrap_or("pulse→ledger→response")));
        println!("  runs / healthz            : {:.3}x", runs.per_second / health.per_second);
        if let Some(cpu) = cpu_used {
            println!(
                "  server CPU per run        : {:.0} µs ({:.2} cores busy)",
                cpu.as_secs_f64() * 1e6 / runs.requests as f64,
                cpu.as_secs_f64() / seconds as f64
            );
        }
    });
    let _ = server.kill();
    let _ = server.wait();
}

async fn publish(client: &reqwest::Client, base: &str, variant: Option<&str>) -> String {
    let event = json!({ "id": "event", "pulse.track": { "name": "signup", "userId": "{{ input.email }}", "meta": { "amountCents": "{{ input.amountCents }}" } } });
    let audit = json!({ "id": "audit", "ledger.audit": { "operation": "write", "meta": { "eventId": "{{ steps.event.id }}" } } });
    let steps = match variant {
        Some("response") => json!([{ "response": { "status": 201, "body": { "email": "{{ input.email }}" } } }]),
        Some("pulse") => {
            json!([event, { "response": { "status": 201, "body": { "eventId": "{{ steps.event.id }}" } } }])
        }
        // Templates that are not plain lookups: evaluated by the template engine (in the
        // template sandbox since the hardening issue, in the host before).
        Some("expressions") => json!([{ "response": { "status": 201, "body": {
            "email": "{{ input.email | lower }}", "cents": "{{ input.amountCents * 2 }}"
        } } }]),
        _ => {
            json!([event, audit, { "response": { "status": 201, "body": { "eventId": "{{ steps.event.id }}", "seq": "{{ steps.audit.seq }}" } } }])
        }
    };
    let workflows = json!({ "version": 1, "workflows": { "signup": { "auth": "public", "steps": steps } } });
    let files =
        json!({ "/app/App.tsx": "export default () => null", "/app/shift.workflows.json": workflows.to_string() });
    support::publish(client, base, files).await
}
