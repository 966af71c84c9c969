//! Convex-compatible function calls: every `stage:` function, both formats, array args and
//! the error shapes the `convex` npm client expects.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

/// Calls `stage:<function>` through `/api/<kind>` and returns the HTTP status and body.
async fn call(server: &Server, kind: &str, function: &str, args: Value) -> (u16, Value) {
    let body = json!({ "path": format!("stage:{function}"), "args": args, "format": "json" });
    let answer = server.send(Method::POST, &format!("/api/{kind}"), Some(body), None).await;
    (answer.status, answer.body)
}

/// The value of a successful call.
async fn value(server: &Server, kind: &str, function: &str, args: Value) -> Value {
    let (status, body) = call(server, kind, function, args).await;
    assert_eq!(status, 200, "{function}: {body}");
    assert_eq!(body["status"], "success", "{function}: {body}");
    assert_eq!(body["logLines"], json!([]));
    body["value"].clone()
}

#[tokio::test]
async fn every_stage_function_answers_like_convex() {
    let server = Server::start();

    let session = value(&server, "mutation", "createSession", json!({})).await;
    let session = session.as_str().expect("createSession returns the id string").to_owned();
    assert!(session.starts_with("ses_"));

    let written = value(
        &server,
        "mutation",
        "writeFile",
        json!({ "sessionId": session, "path": "/app/App.tsx", "content": "v1" }),
    )
    .await;
    assert_eq!(written, json!({ "path": "/app/App.tsx", "version": 1, "size": 2 }));
    let written = value(
        &server,
        "mutation",
        "writeFile",
        json!([{ "sessionId": session, "path": "app/App.tsx", "content": "v2" }]),
    )
    .await;
    assert_eq!(written, json!({ "path": "/app/App.tsx", "version": 2, "size": 2 }));

    let file = value(&server, "query", "readFile", json!({ "sessionId": session, "path": "/app/App.tsx" })).await;
    assert_shape(
        &file,
        &json!({ "path": "/app/App.tsx", "content": "v2", "version": 2, "size": 2, "createdAt": "<time>" }),
    );
    let missing = value(&server, "query", "readFile", json!({ "sessionId": session, "path": "/nope" })).await;
    assert_eq!(missing, Value::Null);
    let old = value(
        &server,
        "query",
        "readFileAtVersion",
        json!({ "sessionId": session, "path": "/app/App.tsx", "version": 1 }),
    )
    .await;
    assert_eq!(old["content"], "v1");

    let all = value(&server, "query", "getAllFiles", json!({ "sessionId": session })).await;
    assert_shape(
        &all,
        &json!([{ "path": "/app/App.tsx", "content": "v2", "version": 2, "size": 2, "createdAt": "<time>" }]),
    );

    let history =
        value(&server, "query", "getFileHistory", json!({ "sessionId": session, "path": "/app/App.tsx" })).await;
    assert_eq!(history.as_array().unwrap().iter().map(|h| h["version"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2]);

    assert_eq!(value(&server, "query", "getRenderState", json!({ "sessionId": session })).await, Value::Null);
    let render = value(&server, "mutation", "triggerRender", json!({ "sessionId": session })).await;
    assert_eq!(render, json!({ "entry": "/app/App.tsx", "version": 1 }));
    let state = value(&server, "query", "getRenderState", json!({ "sessionId": session })).await;
    assert_shape(&state, &json!({ "entry": "/app/App.tsx", "version": 1, "error": null, "renderedAt": "<time>" }));

    let status = value(&server, "query", "getStatus", json!({ "sessionId": session })).await;
    let rest = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
    assert_eq!(status["files"], rest.body["data"]["files"]);
    assert_eq!(status["render"], rest.body["data"]["render"]);

    let snapshot = value(&server, "mutation", "createSnapshot", json!({ "sessionId": session, "name": "s1" })).await;
    assert_shape(
        &snapshot,
        &json!({ "id": "<id:snap_>", "sessionId": session, "name": "s1", "fileCount": 1, "createdAt": "<time>" }),
    );
    let snapshots = value(&server, "query", "getSnapshots", json!({ "sessionId": session })).await;
    assert_eq!(snapshots.as_array().unwrap().len(), 1);
    value(&server, "mutation", "writeFile", json!({ "sessionId": session, "path": "/app/App.tsx", "content": "v3" }))
        .await;
    let restored =
        value(&server, "mutation", "restoreSnapshot", json!({ "sessionId": session, "snapshotId": snapshot["id"] }))
            .await;
    assert_eq!(restored, json!({ "snapshotId": snapshot["id"], "restored": 1, "deleted": 0 }));

    assert_eq!(
        value(&server, "query", "getGoogleScopes", json!({ "sessionId": session })).await,
        json!({ "scopes": [], "updatedAt": null })
    );
    let scopes = json!(["https://www.googleapis.com/auth/spreadsheets"]);
    let set = value(&server, "mutation", "setGoogleScopes", json!({ "sessionId": session, "scopes": scopes })).await;
    assert_shape(&set, &json!({ "scopes": scopes, "updatedAt": "<time>" }));
    assert_eq!(value(&server, "query", "getGoogleScopes", json!({ "sessionId": session })).await, set);

    let sessions = value(&server, "query", "listSessions", json!({})).await;
    assert_eq!(sessions[0]["id"], session);

    assert_eq!(value(&server, "query", "listApps", json!({})).await, json!([]));
    assert_eq!(value(&server, "query", "getAppBySession", json!({ "sessionId": session })).await, Value::Null);
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Demo" })).await;
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let app = value(&server, "query", "getApp", json!({ "sid": sid })).await;
    assert_eq!(app, published.body["data"]);
    assert_eq!(value(&server, "query", "getAppBySession", json!({ "sessionId": session })).await, app);
    assert_eq!(value(&server, "query", "listApps", json!({})).await, json!([app]));
    assert_eq!(value(&server, "query", "getApp", json!({ "sid": "app_missing" })).await, Value::Null);
    let updated =
        value(&server, "mutation", "updateApp", json!({ "sid": sid, "name": "Renamed", "config": { "k": "v" } })).await;
    assert_eq!((updated["name"].clone(), updated["config"].clone()), (json!("Renamed"), json!({ "k": "v" })));

    // The app's sid stands for the session.
    let via_sid = value(&server, "query", "readFile", json!({ "sessionId": sid, "path": "/app/App.tsx" })).await;
    assert_eq!(via_sid["content"], "v2");

    // Actions may call any function.
    let through_action = value(&server, "action", "getStatus", json!({ "sessionId": session })).await;
    let rest = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
    assert_eq!(through_action["files"], rest.body["data"]["files"]);
}

#[tokio::test]
async fn the_encoded_format_carries_integers_and_bytes() {
    let server = Server::start();
    let session = value(&server, "mutation", "createSession", json!({})).await;
    let bytes = [0u8, 159, 146, 150, 255];
    let encoded = BASE64.encode(bytes);
    let body = json!({
        "path": "stage:writeFile",
        "args": { "sessionId": session, "path": "/bin.dat", "content": { "$bytes": encoded } },
        "format": "convex_encoded_json",
    });
    let written = server.send(Method::POST, "/api/mutation", Some(body), None).await;
    assert_eq!(written.body["value"], json!({ "path": "/bin.dat", "version": 1, "size": 5 }));

    let version = json!({ "$integer": BASE64.encode(1i64.to_le_bytes()) });
    let read = json!({
        "path": "stage:readFileAtVersion",
        "args": [{ "sessionId": session, "path": "/bin.dat", "version": version }],
        "format": "convex_encoded_json",
    });
    let answer = server.send(Method::POST, "/api/query", Some(read), None).await;
    assert_eq!(answer.body["status"], "success", "{}", answer.body);
    assert_eq!(answer.body["value"]["content"], json!({ "$bytes": encoded }));

    // The plain JSON format answers bytes as a base64 string.
    let plain = value(&server, "query", "readFile", json!({ "sessionId": session, "path": "/bin.dat" })).await;
    assert_eq!((plain["content"].clone(), plain["encoding"].clone()), (json!(encoded), json!("base64")));
}

#[tokio::test]
async fn function_errors_are_http_200_and_malformed_requests_are_bad_format() {
    let server = Server::start();

    for (kind, function, args, needle) in [
        ("query", "getStatus", json!({ "sessionId": "ses_missing" }), "not found"),
        ("query", "nope", json!({}), "Could not find public function for 'stage:nope'"),
        ("query", "writeFile", json!({}), "defined as Mutation"),
        ("mutation", "writeFile", json!({ "sessionId": "x" }), "missing field `path`"),
        ("query", "listSessions", json!({ "extra": 1 }), "unknown field `extra`"),
        ("mutation", "writeFile", json!({ "sessionId": "x", "path": "/../a", "content": "" }), "escapes the root"),
    ] {
        let (status, body) = call(&server, kind, function, args).await;
        assert_eq!(status, 200, "{function}: {body}");
        assert_eq!(body["status"], "error", "{function}: {body}");
        assert!(body["errorMessage"].as_str().unwrap().contains(needle), "{function}: {body}");
    }

    for raw in [
        b"{".to_vec(),
        b"[]".to_vec(),
        br#"{"args":{}}"#.to_vec(),
        br#"{"path":7}"#.to_vec(),
        br#"{"path":"stage:listSessions","args":[{},{}]}"#.to_vec(),
        br#"{"path":"stage:listSessions","args":"x"}"#.to_vec(),
        br#"{"path":"stage:listSessions","format":"xml"}"#.to_vec(),
        br#"{"path":"stage:readFileAtVersion","args":{"version":{"$integer":"AA=="}},"format":"convex_encoded_json"}"#
            .to_vec(),
    ] {
        let answer = server.send_raw(Method::POST, "/api/query", raw.clone()).await;
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(&raw));
        assert_eq!(answer.body["code"], "BadFormat", "{}", String::from_utf8_lossy(&raw));
        assert!(answer.body["message"].is_string());
    }
    // Nothing was created by any of it.
    let sessions: i64 = server.db().query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 0);
}
