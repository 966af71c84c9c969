//! Push benchmark: 1,000 files of 2 KB in one `push`, then `status`, over loopback HTTP
//! against the release `stage` binary — and, in the same run, the same rows inserted with
//! bare rusqlite in one transaction (same pragmas: WAL, synchronous=FULL). Prints both
//! medians and their ratio.
//!
//! Run: `cargo bench -p stage-host --bench push`

mod support;

use std::time::{Duration, Instant};

use rusqlite::params;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const FILES: usize = 1_000;
const FILE_BYTES: usize = 2 * 1024;
const ROUNDS: usize = 15;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (mut server, base, dir) = support::start_stage(&[]);

    let client = reqwest::Client::new();
    let mut stage = Vec::new();
    let mut bare = Vec::new();
    let mut pushes = Vec::new();
    for round in 0..ROUNDS + 1 {
        let files = files(round);

        // Stage: create a session, push, read status.
        let (push_only, elapsed) = runtime.block_on(async {
            let created: Value =
                client.post(format!("{base}/api/v1/stage/sessions")).send().await.unwrap().json().await.unwrap();
            let id = created["data"]["id"].as_str().unwrap().to_owned();
            let body: Map<String, Value> = files.iter().map(|(p, c)| (p.clone(), Value::String(c.clone()))).collect();
            let body = serde_json::to_vec(&json!({ "files": body })).unwrap();
            let started = Instant::now();
            let pushed =
                client.post(format!("{base}/api/v1/stage/sessions/{id}/push")).body(body).send().await.unwrap();
            assert_eq!(pushed.status(), 200);
            let pushed_in = started.elapsed();
            let status: Value = client
                .get(format!("{base}/api/v1/stage/sessions/{id}/status"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(status["data"]["files"].as_array().unwrap().len(), FILES);
            (pushed_in, started.elapsed())
        });

        // Baseline: the same rows, bare rusqlite, one transaction, hashes computed beforehand.
        let rows: Vec<(String, String, Vec<u8>)> = files
            .iter()
            .map(|(p, c)| (p.clone(), hex::encode(Sha256::digest(c.as_bytes())), c.clone().into_bytes()))
            .collect();
        let baseline = bare_insert(&dir.path().join(format!("bare-{round}.db")), &rows);

        if round > 0 {
            // Round 0 warms up both sides.
            stage.push(elapsed);
            pushes.push(push_only);
            bare.push(baseline);
        }
    }
    let _ = server.kill();
    let _ = server.wait();

    let (stage_median, bare_median) = (median(&mut stage), median(&mut bare));
    println!("push {FILES} files x {FILE_BYTES} B + status, {ROUNDS} rounds");
    println!("  stage over HTTP : median {:>8.2} ms (push alone {:.2} ms)", ms(stage_median), ms(median(&mut pushes)));
    println!("  bare rusqlite   : median {:>8.2} ms", ms(bare_median));
    println!("  ratio           : {:.2}x", stage_median.as_secs_f64() / bare_median.as_secs_f64());
}

/// 1,000 distinct 2 KB text files (distinct per round, so nothing deduplicates).
fn files(round: usize) -> Vec<(String, String)> {
    (0..FILES)
        .map(|i| {
            let head = format!("// round {round} file {i}\n");
            let body = "x".repeat(FILE_BYTES - head.len());
            (format!("/app/src/module_{i:04}.ts"), head + &body)
        })
        .collect()
}

fn bare_insert(path: &std::path::Path, rows: &[(String, String, Vec<u8>)]) -> Duration {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE blobs (hash TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL);
         CREATE TABLE file_versions (session_id TEXT NOT NULL, path TEXT NOT NULL, version INTEGER NOT NULL,
             blob_hash TEXT, size INTEGER NOT NULL, created_at INTEGER NOT NULL,
             PRIMARY KEY (session_id, path, version)) WITHOUT ROWID;",
    )
    .unwrap();
    let started = Instant::now();
    let tx = conn.transaction().unwrap();
    {
        let mut blob = tx.prepare("INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?1, ?2, ?3)").unwrap();
        let mut version = tx
            .prepare(
                "INSERT INTO file_versions (session_id, path, version, blob_hash, size, created_at) VALUES (?1, ?2, 1, ?3, ?4, ?5)",
            )
            .unwrap();
        for (path, hash, data) in rows {
            blob.execute(params![hash, data.len() as i64, data]).unwrap();
            version.execute(params!["ses_bench", path, hash, data.len() as i64, 0]).unwrap();
        }
    }
    tx.commit().unwrap();
    started.elapsed()
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
