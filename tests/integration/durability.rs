//! Crash safety, concurrent writers and shutdown, against the spawned binary.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::Mutex;

use crate::common::Server;

#[tokio::test]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Server::start_in(dir.path(), &[]));
    let session = server.new_session().await;
    // (path, version-less content) pairs the server acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));

    let mut writers = Vec::new();
    for writer in 0..6 {
        let (server, session, acknowledged) = (server.clone(), session.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let content = format!("writer {writer} write {n}");
                // Two files per request: a push is one transaction, so both or neither land.
                let files = json!({ format!("/w{writer}/{n}.txt"): content, format!("/pair/{writer}-a"): content, format!("/pair/{writer}-b"): content });
                let answer = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": files })),
                )
                .await;
                match answer {
                    Ok(answer) if answer.status == 200 => acknowledged.lock().await.push((format!("/w{writer}/{n}.txt"), content)),
                    _ => break,
                }
            }
        }));
    }
    while acknowledged.lock().await.len() < 150 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Crash while requests are in flight.
    server.crash();
    for writer in writers {
        let _ = writer.await;
    }
    let acknowledged = acknowledged.lock().await.clone();

    let server = Server::start_in(dir.path(), &[]);
    let integrity: String = server.db().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
    for (path, content) in &acknowledged {
        let file = server.get(&format!("/api/v1/stage/sessions/{session}/files{path}")).await;
        assert_eq!(file.status, 200, "acknowledged {path} lost after kill -9");
        assert_eq!(file.body["data"]["content"], *content);
    }
    // No torn pushes: each pair's two files hold the same content and version.
    for writer in 0..6 {
        let a = server.get(&format!("/api/v1/stage/sessions/{session}/files/pair/{writer}-a")).await;
        let b = server.get(&format!("/api/v1/stage/sessions/{session}/files/pair/{writer}-b")).await;
        assert_eq!(a.body["data"]["content"], b.body["data"]["content"]);
        assert_eq!(a.body["data"]["version"], b.body["data"]["version"]);
        let written = acknowledged.iter().filter(|(p, _)| p.starts_with(&format!("/w{writer}/"))).count() as i64;
        // The last acknowledged push is there; at most the one in flight landed beyond it.
        let version = a.body["data"]["version"].as_i64().unwrap_or(0);
        assert!(
            version == written || version == written + 1,
            "writer {writer}: version {version}, acknowledged {written}"
        );
    }
}

#[tokio::test]
async fn fifty_parallel_writes_to_one_path_make_versions_1_to_50() {
    let server = Arc::new(Server::start());
    let session = server.new_session().await;
    let mut writes = Vec::new();
    for n in 0..50 {
        let (server, session) = (server.clone(), session.clone());
        writes.push(tokio::spawn(async move {
            server
                .post(
                    &format!("/api/v1/stage/sessions/{session}/push"),
                    json!({ "files": { "/same.txt": format!("write {n}") } }),
                )
                .await
        }));
    }
    for write in writes {
        let answer = write.await.unwrap();
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(answer.body["data"]["count"], 1);
    }
    let history = server.get(&format!("/api/v1/stage/sessions/{session}/history/same.txt")).await;
    let versions: Vec<i64> =
        history.body["data"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=50).collect::<Vec<_>>());
    let mut contents = HashSet::new();
    for version in 1..=50 {
        let file = server.get(&format!("/api/v1/stage/sessions/{session}/files/same.txt?version={version}")).await;
        contents.insert(file.body["data"]["content"].as_str().unwrap().to_owned());
    }
    assert_eq!(contents, (0..50).map(|n| format!("write {n}")).collect::<HashSet<_>>());
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_remains() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_in(dir.path(), &[]);
    let session = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": { "/kept": "yes" } })).await;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");

    let server = Server::start_in(dir.path(), &[]);
    let file = server.get(&format!("/api/v1/stage/sessions/{session}/files/kept")).await;
    assert_eq!(file.body["data"]["content"], "yes");
}
