//! A sweep of bad input over every route: each answers a clear 4xx in the envelope (never
//! a 5xx), names what was wrong, and writes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Server;

/// Everything the store holds except access times, which reads may refresh.
fn stored_state(server: &Server) -> Vec<String> {
    let db = server.db();
    let mut state = Vec::new();
    for query in [
        "SELECT id, tenant_id, created_at, render_entry, render_version, render_error, rendered_at, google_scopes, google_scopes_updated_at FROM sessions ORDER BY id",
        "SELECT session_id, path, version, blob_hash, size, created_at FROM file_versions ORDER BY 1, 2, 3",
        "SELECT hash, size FROM blobs ORDER BY hash",
        "SELECT id, session_id, name, file_count, created_at FROM snapshots ORDER BY id",
        "SELECT snapshot_id, path, version, blob_hash FROM snapshot_files ORDER BY 1, 2",
        "SELECT sid, name, description, config, repository, active_version, updated_at FROM apps ORDER BY sid",
        "SELECT app_sid, version, snapshot_id FROM app_versions ORDER BY 1, 2",
        "SELECT id, name FROM tenants ORDER BY id",
        "SELECT id, tenant_id, email, name FROM users ORDER BY id",
        "SELECT id, key_hash, revoked_at FROM api_keys ORDER BY id",
    ] {
        let mut stmt = db.prepare(query).unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut row = Vec::new();
                for i in 0..columns {
                    row.push(format!("{:?}", r.get_ref(i)?));
                }
                Ok(row.join("|"))
            })
            .unwrap();
        state.extend(rows.map(Result::unwrap));
    }
    state
}

#[tokio::test]
async fn bad_input_on_every_route_is_a_clear_4xx_and_writes_nothing() {
    let server = Server::start_with(&[
        "--max-file-bytes",
        "1000",
        "--max-request-bytes",
        "20000",
        "--max-files-per-session",
        "3",
        "--max-path-bytes",
        "64",
    ]);
    let session = server.new_session().await;
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/App.tsx": "ok", "/b": "b" } }),
        )
        .await;
    let app = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "App" })).await;
    let sid = app.body["data"]["sid"].as_str().unwrap().to_owned();
    let snap = server.post(&format!("/api/v1/stage/sessions/{session}/snapshots"), json!({})).await;
    let snapshot = snap.body["data"]["id"].as_str().unwrap().to_owned();
    // Let background access-time refreshes settle before taking the picture.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = stored_state(&server);

    let s = format!("/api/v1/stage/sessions/{session}");
    let big = "x".repeat(1001);
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        // Sessions and files.
        (Method::POST, format!("{s}/push"), Some(json!({})), 422, "files"),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": [] })), 422, "files"),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": { "/a": 1 } })), 422, "/a"),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": { "/a": { "content": 1 } } })), 422, "content"),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/a": { "content": "x", "mode": 1 } } })),
            422,
            "mode",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/a": "x" }, "encoding": "hex" })),
            422,
            "encoding",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/a": "!!" }, "encoding": "base64" })),
            422,
            "base64",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/ok": "x", "/../etc/passwd": "x" } })),
            400,
            "escapes the root",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/ok": "x", "/a//b": "x" } })),
            400,
            "empty segment",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/ok": "x", "/a\u{0}b": "x" } })),
            400,
            "control character",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/ok": "x", "/a\nb": "x" } })),
            400,
            "control character",
        ),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": { "/ok": "x", "": "x" } })), 400, "empty"),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { format!("/{}", "p".repeat(64)): "x" } })),
            422,
            "limit is 64",
        ),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": { "/ok": "x", "/big": big } })), 413, "/big"),
        (Method::POST, format!("{s}/push"), Some(json!({ "files": { "/1": "1", "/2": "2" } })), 422, "limit is 3"),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/1": "1", "/2": "2", "/3": "3", "/4": "4" } })),
            422,
            "at most 3",
        ),
        (
            Method::POST,
            format!("{s}/push"),
            Some(json!({ "files": { "/x": "y".repeat(900) }, "pad": "z".repeat(20_000) })),
            413,
            "limit of 20000",
        ),
        (
            Method::POST,
            "/api/v1/stage/sessions/ses_missing/push".into(),
            Some(json!({ "files": { "/a": "x" } })),
            404,
            "ses_missing",
        ),
        (Method::POST, format!("{s}/render"), Some(json!({ "entry": 5 })), 422, "entry"),
        (Method::POST, format!("{s}/render"), Some(json!({ "entry": "/../x" })), 400, "escapes"),
        (Method::GET, format!("{s}/files/nope.txt"), None, 404, "/nope.txt"),
        (Method::GET, format!("{s}/files/app/App.tsx?version=0"), None, 400, "version"),
        (Method::GET, format!("{s}/files/app/App.tsx?version=abc"), None, 400, "version"),
        (Method::GET, format!("{s}/files/app/App.tsx?colour=1"), None, 400, "colour"),
        (Method::GET, format!("{s}/files/app/%00x"), None, 400, "control character"),
        (Method::GET, format!("{s}/history/nope"), None, 404, "/nope"),
        (Method::DELETE, format!("{s}/files/nope"), None, 404, "/nope"),
        (Method::DELETE, format!("{s}/files/a/..%2F..%2Fb"), None, 400, "escapes"),
        (Method::POST, format!("{s}/snapshots"), Some(json!({ "name": "" })), 422, "name"),
        (Method::POST, format!("{s}/snapshots"), Some(json!({ "name": 1 })), 422, "name"),
        (Method::POST, format!("{s}/snapshots/snap_missing/restore"), None, 404, "snap_missing"),
        (Method::PUT, format!("{s}/google-scopes"), Some(json!({})), 422, "scopes"),
        (Method::PUT, format!("{s}/google-scopes"), Some(json!({ "scopes": "x" })), 422, "scopes"),
        (Method::PUT, format!("{s}/google-scopes"), Some(json!({ "scopes": ["a b"] })), 422, "scopes[0]"),
        (Method::PUT, format!("{s}/google-scopes"), Some(json!({ "scopes": [""] })), 422, "scopes[0]"),
        (
            Method::PUT,
            "/api/v1/stage/sessions/ses_missing/google-scopes".into(),
            Some(json!({ "scopes": [] })),
            404,
            "ses_missing",
        ),
        (Method::GET, "/api/v1/stage/sessions/ses_missing/status".into(), None, 404, "ses_missing"),
        (Method::DELETE, "/api/v1/stage/sessions/ses_missing".into(), None, 404, "ses_missing"),
        (Method::DELETE, s.clone(), None, 409, &sid),
        // Apps.
        (Method::POST, "/api/v1/stage/apps".into(), Some(json!({ "name": "x" })), 422, "sessionId"),
        (Method::POST, "/api/v1/stage/apps".into(), Some(json!({ "sessionId": session, "name": "  " })), 422, "name"),
        (
            Method::POST,
            "/api/v1/stage/apps".into(),
            Some(json!({ "sessionId": session, "name": "x", "config": 3 })),
            422,
            "config",
        ),
        (
            Method::POST,
            "/api/v1/stage/apps".into(),
            Some(json!({ "sessionId": session, "name": "x", "extra": 3 })),
            422,
            "extra",
        ),
        (
            Method::POST,
            "/api/v1/stage/apps".into(),
            Some(json!({ "sessionId": "ses_missing", "name": "x" })),
            404,
            "ses_missing",
        ),
        (Method::POST, "/api/v1/stage/apps".into(), Some(json!({ "sessionId": session, "name": "x" })), 409, &sid),
        (Method::GET, "/api/v1/stage/apps?sessionId=ses_missing".into(), None, 404, "ses_missing"),
        (Method::GET, "/api/v1/stage/apps?limit=3".into(), None, 400, "limit"),
        (Method::PATCH, format!("/api/v1/stage/apps/{sid}"), Some(json!({ "name": 3 })), 422, "name"),
        (
            Method::PATCH,
            format!("/api/v1/stage/apps/{sid}"),
            Some(json!({ "description": "d", "repository": "x" })),
            422,
            "repository",
        ),
        (Method::PATCH, format!("/api/v1/stage/apps/{sid}"), Some(json!([1])), 422, "body"),
        (Method::PATCH, "/api/v1/stage/apps/app_missing".into(), Some(json!({ "name": "x" })), 404, "app_missing"),
        (Method::POST, "/api/v1/stage/apps/app_missing/versions".into(), None, 404, "app_missing"),
        // Admin.
        (Method::POST, "/api/v1/admin/tenants".into(), Some(json!({ "id": "Bad Id" })), 422, "id"),
        (Method::POST, "/api/v1/admin/tenants".into(), Some(json!({ "id": "default" })), 409, "default"),
        (Method::POST, "/api/v1/admin/tenants/default/keys".into(), Some(json!({ "email": "nope" })), 422, "email"),
        (Method::POST, "/api/v1/admin/tenants/missing/keys".into(), Some(json!({ "email": "a@b.c" })), 404, "missing"),
        (Method::DELETE, "/api/v1/admin/keys/key_missing".into(), None, 404, "key_missing"),
        // Routing.
        (Method::GET, "/api/v1/nope".into(), None, 404, "/api/v1/nope"),
        (Method::PUT, format!("{s}/push"), Some(json!({})), 405, "PUT"),
    ];
    for (method, path, body, status, needle) in cases {
        let answer = server.send(method.clone(), &path, body.clone(), None).await;
        assert_eq!(answer.status, status, "{method} {path} {body:?}: {:?}", answer.body);
        assert_eq!(answer.body["success"], false, "{method} {path}");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{method} {path}: {message:?} should name {needle:?}");
        assert!(answer.body["error"]["code"].is_string());
    }

    // Raw bodies that are not JSON at all, or the wrong JSON type.
    for raw in [&b"{"[..], b"not json", b"{\"files\":{}} trailing", b"\xff\xfe", b"[]", b"null", b"42"] {
        for path in [format!("{s}/push"), format!("{s}/render"), format!("{s}/snapshots"), "/api/v1/stage/apps".into()]
        {
            let answer = server.send_raw(Method::POST, &path, raw.to_vec()).await;
            assert!(matches!(answer.status, 400 | 422), "{path} {raw:?}: {} {:?}", answer.status, answer.body);
            assert_eq!(answer.body["success"], false);
        }
    }
    let snapshot_restore = server.send(Method::POST, &format!("{s}/snapshots/{snapshot}/restore"), None, None).await;
    assert_eq!(snapshot_restore.status, 200, "the sweep left the session usable");
    assert_eq!(snapshot_restore.body["data"]["restored"], 0);

    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(stored_state(&server), before, "a refused request wrote something");
}
