//! Convex-compatible function calls: every function of the original `stage` module with its
//! arguments, documents (`_id`, `_creationTime`, `sessionId`), ordering and error classes,
//! over the HTTP API in both value formats; then the same through the real `convex` npm
//! `ConvexHttpClient` (`convex_client.mjs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

/// Calls `stage:<function>` through `/api/<kind>` in the clean format; the HTTP status and body.
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
    body["value"].clone()
}

async fn query(server: &Server, function: &str, args: Value) -> Value {
    value(server, "query", function, args).await
}

async fn mutation(server: &Server, function: &str, args: Value) -> Value {
    value(server, "mutation", function, args).await
}

/// A failed call's body, with HTTP 200 as Convex answers function errors.
async fn failure(server: &Server, kind: &str, function: &str, args: Value) -> Value {
    let (status, body) = call(server, kind, function, args).await;
    assert_eq!(status, 200, "{function}: {body}");
    assert_eq!(body["status"], "error", "{function}: {body}");
    body
}

async fn new_session(server: &Server) -> String {
    mutation(server, "createSession", json!({})).await.as_str().expect("createSession answers the id").to_owned()
}

#[tokio::test]
async fn a_session_is_a_document_and_a_missing_one_is_null() {
    let server = Server::start();
    let session = new_session(&server).await;
    assert!(session.starts_with("ses_"), "{session}");

    let document = query(&server, "getSession", json!({ "sessionId": session })).await;
    assert_shape(
        &document,
        &json!({ "_id": session, "_creationTime": "<time>", "createdAt": "<time>", "lastAccessedAt": "<time>" }),
    );
    assert_eq!(document["_creationTime"], document["createdAt"]);
    assert_eq!(query(&server, "getSession", json!({ "sessionId": "ses_missing" })).await, Value::Null);
}

#[tokio::test]
async fn writing_identical_content_is_a_new_version_and_history_is_newest_first() {
    let server = Server::start();
    let session = new_session(&server).await;
    let write = |content: &'static str| json!({ "sessionId": session, "path": "/app/App.tsx", "content": content });

    assert_eq!(
        mutation(&server, "writeFile", write("same")).await,
        json!({ "path": "/app/App.tsx", "version": 1, "size": 4 })
    );
    assert_eq!(
        mutation(&server, "writeFile", write("same")).await,
        json!({ "path": "/app/App.tsx", "version": 2, "size": 4 })
    );
    mutation(&server, "writeFile", write("new")).await;

    let history = query(&server, "getFileHistory", json!({ "sessionId": session, "path": "/app/App.tsx" })).await;
    let document = |content: &str, version: i64| {
        json!({
            "_id": "<id:fil_>", "_creationTime": "<time>", "sessionId": session, "path": "/app/App.tsx",
            "content": content, "version": version, "createdAt": "<time>",
        })
    };
    assert_shape(&history, &json!([document("new", 3), document("same", 2), document("same", 1)]));
    let ids: Vec<&Value> = history.as_array().unwrap().iter().map(|d| &d["_id"]).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "each version is its own document: {ids:?}");

    let newest = query(&server, "readFile", json!({ "sessionId": session, "path": "/app/App.tsx" })).await;
    assert_eq!(newest, history[0]);
    let first = json!({ "sessionId": session, "path": "/app/App.tsx", "version": 1 });
    assert_eq!(query(&server, "readFileAtVersion", first).await, history[2]);
    let absent = json!({ "sessionId": session, "path": "/app/App.tsx", "version": 9 });
    assert_eq!(query(&server, "readFileAtVersion", absent).await, Value::Null);
    assert_eq!(query(&server, "readFile", json!({ "sessionId": session, "path": "/nope" })).await, Value::Null);
    assert_eq!(query(&server, "getFileHistory", json!({ "sessionId": session, "path": "/nope" })).await, json!([]));
}

#[tokio::test]
async fn all_files_are_the_newest_versions_in_the_order_paths_were_first_written() {
    let server = Server::start();
    let session = new_session(&server).await;
    for (path, content) in [("/z.ts", "z1"), ("/a.ts", "a1"), ("/z.ts", "z2"), ("/m.ts", "m1")] {
        mutation(&server, "writeFile", json!({ "sessionId": session, "path": path, "content": content })).await;
    }
    let all = query(&server, "getAllFiles", json!({ "sessionId": session })).await;
    let summary: Vec<(&str, &str, i64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["content"].as_str().unwrap(), f["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(summary, [("/z.ts", "z2", 2), ("/a.ts", "a1", 1), ("/m.ts", "m1", 1)]);
    assert_shape(
        &all[0],
        &json!({
            "_id": "<id:fil_>", "_creationTime": "<time>", "sessionId": session, "path": "/z.ts", "content": "z2",
            "version": 2, "createdAt": "<time>",
        }),
    );

    // getStatus lists every version written, in write order, with its size.
    let status = query(&server, "getStatus", json!({ "sessionId": session })).await;
    assert_shape(
        &status,
        &json!({
            "session": { "createdAt": "<time>", "lastAccessedAt": "<time>" },
            "render": null,
            "files": [
                { "path": "/z.ts", "version": 1, "size": 2 },
                { "path": "/a.ts", "version": 1, "size": 2 },
                { "path": "/z.ts", "version": 2, "size": 2 },
                { "path": "/m.ts", "version": 1, "size": 2 },
            ],
        }),
    );
    assert_eq!(query(&server, "getAllFiles", json!({ "sessionId": "ses_missing" })).await, json!([]));
    let missing = query(&server, "getStatus", json!({ "sessionId": "ses_missing" })).await;
    assert_eq!(missing, json!({ "session": null, "render": null, "files": [] }));
}

#[tokio::test]
async fn render_state_is_a_document_whose_error_comes_and_goes() {
    let server = Server::start();
    let session = new_session(&server).await;
    assert_eq!(query(&server, "getRenderState", json!({ "sessionId": session })).await, Value::Null);
    // Before a render, reporting an error changes nothing.
    assert_eq!(mutation(&server, "reportError", json!({ "sessionId": session, "error": "early" })).await, Value::Null);
    assert_eq!(query(&server, "getRenderState", json!({ "sessionId": session })).await, Value::Null);

    for path in ["/app/App.tsx", "/app/Other.tsx"] {
        let component = "export default () => null;";
        mutation(&server, "writeFile", json!({ "sessionId": session, "path": path, "content": component })).await;
    }
    let rendered = mutation(&server, "triggerRender", json!({ "sessionId": session })).await;
    assert_eq!(rendered, json!({ "entry": "/app/App.tsx", "version": 1 }));
    let state = query(&server, "getRenderState", json!({ "sessionId": session })).await;
    assert_shape(
        &state,
        &json!({
            "_id": "<id:rnd_>", "_creationTime": "<time>", "sessionId": session, "entry": "/app/App.tsx",
            "version": 1, "renderedAt": "<time>",
        }),
    );

    assert_eq!(mutation(&server, "reportError", json!({ "sessionId": session, "error": "boom" })).await, Value::Null);
    let failed = query(&server, "getRenderState", json!({ "sessionId": session })).await;
    assert_eq!(failed["error"], "boom");
    let status = query(&server, "getStatus", json!({ "sessionId": session })).await;
    assert_shape(
        &status["render"],
        &json!({ "entry": "/app/App.tsx", "version": 1, "error": "boom", "renderedAt": "<time>" }),
    );

    assert_eq!(mutation(&server, "clearError", json!({ "sessionId": session })).await, Value::Null);
    assert_eq!(query(&server, "getRenderState", json!({ "sessionId": session })).await, state);

    let again = mutation(&server, "triggerRender", json!({ "sessionId": session, "entry": "/app/Other.tsx" })).await;
    assert_eq!(again, json!({ "entry": "/app/Other.tsx", "version": 2 }));
    let second = query(&server, "getRenderState", json!({ "sessionId": session })).await;
    assert_eq!((&second["_id"], &second["_creationTime"]), (&state["_id"], &state["_creationTime"]), "one document");
    assert_eq!(second["version"], 2);
}

#[tokio::test]
async fn snapshots_are_documents_newest_first_and_restoring_writes_new_versions() {
    let server = Server::start();
    let session = new_session(&server).await;
    for (path, content) in [("/b.ts", "b1"), ("/a.ts", "a1")] {
        mutation(&server, "writeFile", json!({ "sessionId": session, "path": path, "content": content })).await;
    }
    let named = mutation(&server, "createSnapshot", json!({ "sessionId": session, "name": "first" })).await;
    let named = named.as_str().expect("createSnapshot answers the id").to_owned();
    assert!(named.starts_with("snap_"), "{named}");
    mutation(&server, "writeFile", json!({ "sessionId": session, "path": "/b.ts", "content": "b2" })).await;
    mutation(&server, "writeFile", json!({ "sessionId": session, "path": "/c.ts", "content": "c1" })).await;
    let unnamed = mutation(&server, "createSnapshot", json!({ "sessionId": session })).await;

    let snapshots = query(&server, "getSnapshots", json!({ "sessionId": session })).await;
    assert_shape(
        &snapshots,
        &json!([
            {
                "_id": unnamed, "_creationTime": "<time>", "sessionId": session, "createdAt": "<time>",
                "files": [
                    { "path": "/b.ts", "content": "b2", "version": 2 },
                    { "path": "/a.ts", "content": "a1", "version": 1 },
                    { "path": "/c.ts", "content": "c1", "version": 1 },
                ],
            },
            {
                "_id": named, "_creationTime": "<time>", "sessionId": session, "createdAt": "<time>", "name": "first",
                "files": [
                    { "path": "/b.ts", "content": "b1", "version": 1 },
                    { "path": "/a.ts", "content": "a1", "version": 1 },
                ],
            },
        ]),
    );

    // Every file of the snapshot becomes a new version (unchanged ones too); others stay.
    assert_eq!(mutation(&server, "restoreSnapshot", json!({ "snapshotId": named })).await, json!({ "restored": 2 }));
    let all = query(&server, "getAllFiles", json!({ "sessionId": session })).await;
    let summary: Vec<(&str, &str, i64)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["content"].as_str().unwrap(), f["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(summary, [("/b.ts", "b1", 3), ("/a.ts", "a1", 2), ("/c.ts", "c1", 1)]);
}

#[tokio::test]
async fn key_values_live_data_and_messages_keep_convex_values() {
    let server = Server::start();
    let session = new_session(&server).await;
    let value_in = json!({ "list": [1, 2.5, "x", true, null], "nested": { "k": "v" } });
    let set = json!({ "sessionId": session, "key": "prefs", "value": value_in });
    assert_eq!(mutation(&server, "kvSet", set).await, Value::Null);
    assert_eq!(query(&server, "kvGet", json!({ "sessionId": session, "key": "prefs" })).await, value_in);
    assert_eq!(
        mutation(&server, "kvSet", json!({ "sessionId": session, "key": "prefs", "value": 7 })).await,
        Value::Null
    );
    assert_eq!(query(&server, "kvGet", json!({ "sessionId": session, "key": "prefs" })).await, json!(7));
    assert_eq!(query(&server, "kvGet", json!({ "sessionId": session, "key": "other" })).await, Value::Null);

    assert_eq!(query(&server, "getLiveData", json!({ "sessionId": session })).await, Value::Null);
    let data = json!({ "cursor": { "x": 3, "y": 4 } });
    assert_eq!(mutation(&server, "setLiveData", json!({ "sessionId": session, "data": data })).await, Value::Null);
    assert_eq!(query(&server, "getLiveData", json!({ "sessionId": session })).await, data);

    for (text, sender) in [("hello", "user"), ("hi there", "agent")] {
        let sent =
            mutation(&server, "sendMessage", json!({ "sessionId": session, "text": text, "sender": sender })).await;
        assert_eq!(sent, Value::Null);
    }
    let message = |text: &str, sender: &str| {
        json!({
            "_id": "<id:chat_>", "_creationTime": "<time>", "sessionId": session, "text": text, "sender": sender,
            "createdAt": "<time>",
        })
    };
    let messages = query(&server, "getMessages", json!({ "sessionId": session })).await;
    assert_shape(&messages, &json!([message("hello", "user"), message("hi there", "agent")]));
    assert_eq!(mutation(&server, "clearMessages", json!({ "sessionId": session })).await, Value::Null);
    assert_eq!(query(&server, "getMessages", json!({ "sessionId": session })).await, json!([]));
}

#[tokio::test]
async fn google_scopes_are_a_list_and_user_auth_a_document() {
    let server = Server::start();
    let session = new_session(&server).await;
    assert_eq!(query(&server, "getGoogleScopes", json!({ "sessionId": session })).await, Value::Null);
    let scopes = json!(["https://www.googleapis.com/auth/spreadsheets", "openid"]);
    let set = mutation(&server, "setGoogleScopes", json!({ "sessionId": session, "scopes": scopes })).await;
    assert_eq!(set, Value::Null);
    assert_eq!(query(&server, "getGoogleScopes", json!({ "sessionId": session })).await, scopes);

    let auth = |name: &str| {
        json!({
            "sessionId": session, "email": "ada@example.com", "name": name, "picture": "https://p/ada.png",
            "passportAuthorizationId": "pa_1", "scopes": ["openid"],
        })
    };
    assert_eq!(mutation(&server, "setUserAuth", auth("Ada")).await, Value::Null);
    let lookup = json!({ "sessionId": session, "email": "ada@example.com" });
    let first = query(&server, "getUserAuth", lookup.clone()).await;
    assert_shape(
        &first,
        &json!({
            "_id": "<id:uau_>", "_creationTime": "<time>", "sessionId": session, "email": "ada@example.com",
            "name": "Ada", "picture": "https://p/ada.png", "passportAuthorizationId": "pa_1", "scopes": ["openid"],
            "status": "active", "createdAt": "<time>", "updatedAt": "<time>",
        }),
    );
    mutation(&server, "setUserAuth", auth("Ada Lovelace")).await;
    let second = query(&server, "getUserAuth", lookup).await;
    assert_eq!(
        (&second["_id"], &second["createdAt"], &second["name"]),
        (&first["_id"], &first["createdAt"], &json!("Ada Lovelace"))
    );
    let other = json!({ "sessionId": session, "email": "bob@example.com" });
    assert_eq!(query(&server, "getUserAuth", other).await, Value::Null);
}

#[tokio::test]
async fn secrets_read_back_and_are_sealed_at_rest() {
    let server = Server::start();
    let secret = "sk-live-CONVEX-secret-0123456789";
    assert_eq!(mutation(&server, "setSecret", json!({ "key": "OPENAI_KEY", "value": secret })).await, Value::Null);
    assert_eq!(query(&server, "getSecret", json!({ "key": "OPENAI_KEY" })).await, json!(secret));
    assert_eq!(query(&server, "getSecret", json!({ "key": "OTHER" })).await, Value::Null);
    let stored: String = server.db().query_row("SELECT value FROM tenant_secrets", [], |r| r.get(0)).unwrap();
    assert!(stored.starts_with("sealed:v1:") && !stored.contains(secret), "{stored}");
}

#[tokio::test]
async fn feedback_is_kept_listed_and_moved_through_its_statuses() {
    let server = Server::start();
    let session = new_session(&server).await;
    let given = json!({
        "sid": "fb_1", "appSid": "app_demo", "appVersionSid": "ver_1", "sessionId": session,
        "authorEmail": "ada@example.com", "comment": "The button is off",
        "annotations": [{
            "elementSelector": "#buy", "elementTag": "button",
            "boundingBox": { "x": 1, "y": 2, "width": 30.5, "height": 10 },
        }],
    });
    assert_eq!(mutation(&server, "createFeedback", given).await, json!("fb_1"));
    let document = query(&server, "getFeedback", json!({ "sid": "fb_1" })).await;
    assert_shape(
        &document,
        &json!({
            "_id": "<id:fbk_>", "_creationTime": "<time>", "sid": "fb_1", "appSid": "app_demo",
            "appVersionSid": "ver_1", "sessionId": session, "authorEmail": "ada@example.com",
            "status": "pending", "comment": "The button is off",
            "annotations": [{
                "elementSelector": "#buy", "elementTag": "button",
                "boundingBox": { "x": 1, "y": 2, "width": 30.5, "height": 10 },
            }],
            "createdAt": "<time>", "updatedAt": "<time>",
        }),
    );
    assert_eq!(query(&server, "listFeedback", json!({ "appSid": "app_demo" })).await, json!([document]));
    assert_eq!(query(&server, "listFeedback", json!({ "status": "resolved" })).await, json!([]));

    let update = json!({ "sid": "fb_1", "status": "resolved", "studioSessionSid": "studio_1" });
    assert_eq!(mutation(&server, "updateFeedbackStatus", update).await, Value::Null);
    let resolved = query(&server, "getFeedback", json!({ "sid": "fb_1" })).await;
    assert_eq!((&resolved["status"], &resolved["studioSessionSid"]), (&json!("resolved"), &json!("studio_1")));
    assert!(resolved["resolvedAt"].is_i64() && resolved["sentToStudioAt"].is_i64(), "{resolved}");
    assert_eq!(query(&server, "listFeedback", json!({ "status": "resolved" })).await.as_array().unwrap().len(), 1);
    assert_eq!(query(&server, "getFeedback", json!({ "sid": "fb_missing" })).await, Value::Null);
}

#[tokio::test]
async fn the_platform_functions_answer_apps_as_rest_does() {
    let server = Server::start();
    let session = new_session(&server).await;
    let sessions = query(&server, "listSessions", json!({})).await;
    assert_eq!(sessions[0]["id"], session);
    assert_eq!(query(&server, "listApps", json!({})).await, json!([]));
    assert_eq!(query(&server, "getAppBySession", json!({ "sessionId": session })).await, Value::Null);

    mutation(&server, "writeFile", json!({ "sessionId": session, "path": "/app/App.tsx", "content": "x" })).await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Demo" })).await;
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let app = query(&server, "getApp", json!({ "sid": sid })).await;
    assert_eq!(app, published.body["data"]);
    assert_eq!(query(&server, "getAppBySession", json!({ "sessionId": session })).await, app);
    assert_eq!(query(&server, "listApps", json!({})).await, json!([app]));
    assert_eq!(query(&server, "getApp", json!({ "sid": "app_missing" })).await, Value::Null);
    let updated =
        mutation(&server, "updateApp", json!({ "sid": sid, "name": "Renamed", "config": { "k": "v" } })).await;
    assert_eq!((&updated["name"], &updated["config"]), (&json!("Renamed"), &json!({ "k": "v" })));

    // The app's sid stands for its session; actions may call any function.
    let via_sid = query(&server, "readFile", json!({ "sessionId": sid, "path": "/app/App.tsx" })).await;
    assert_eq!(via_sid["sessionId"], session);
    let through_action = value(&server, "action", "getStatus", json!({ "sessionId": session })).await;
    assert_eq!(through_action, query(&server, "getStatus", json!({ "sessionId": session })).await);
}

/// Calls a function in the encoded format, with `args` as a one-element array as the npm
/// client sends them; the whole body.
async fn encoded(server: &Server, kind: &str, function: &str, args: Value) -> Value {
    let body = json!({ "path": format!("stage:{function}"), "args": [args], "format": "convex_encoded_json" });
    let answer = server.send(Method::POST, &format!("/api/{kind}"), Some(body), None).await;
    assert_eq!((answer.status, &answer.body["status"]), (200, &json!("success")), "{function}: {:?}", answer.body);
    answer.body["value"].clone()
}

#[tokio::test]
async fn the_encoded_format_carries_int64s_and_bytes() {
    let server = Server::start();
    let session = new_session(&server).await;
    let bytes = BASE64.encode([0u8, 159, 146, 150, 255]);
    let write = json!({ "sessionId": session, "path": "/bin.dat", "content": { "$bytes": bytes } });
    assert_eq!(
        encoded(&server, "mutation", "writeFile", write).await,
        json!({ "path": "/bin.dat", "version": 1, "size": 5 })
    );
    let read = json!({ "sessionId": session, "path": "/bin.dat", "version": 1 });
    assert_eq!(encoded(&server, "query", "readFileAtVersion", read).await["content"], json!({ "$bytes": bytes }));
    // The clean format answers such bytes as base64 text, named by `encoding`.
    let plain = query(&server, "readFile", json!({ "sessionId": session, "path": "/bin.dat" })).await;
    assert_eq!((&plain["content"], &plain["encoding"]), (&json!(bytes), &json!("base64")));

    let int64 = json!({ "$integer": BASE64.encode(5i64.to_le_bytes()) });
    let value_in = json!({ "n": int64, "raw": { "$bytes": "AAE=" } });
    encoded(&server, "mutation", "kvSet", json!({ "sessionId": session, "key": "k", "value": value_in })).await;
    assert_eq!(encoded(&server, "query", "kvGet", json!({ "sessionId": session, "key": "k" })).await, value_in);
    let clean = query(&server, "kvGet", json!({ "sessionId": session, "key": "k" })).await;
    assert_eq!(clean, json!({ "n": "5", "raw": "AAE=" }));
}

#[tokio::test]
async fn stage_refusals_are_convex_errors_with_error_data() {
    let server = Server::start();
    let session = new_session(&server).await;
    let bad_path = json!({ "sessionId": session, "path": "/../a", "content": "" });
    let no_session = json!({ "sessionId": "ses_missing", "path": "/a", "content": "" });
    let no_feedback = json!({ "sid": "fb_missing", "status": "resolved" });
    for (kind, function, args, code, needle) in [
        ("mutation", "restoreSnapshot", json!({ "snapshotId": "snap_missing" }), "NOT_FOUND", "Snapshot not found"),
        ("mutation", "writeFile", bad_path, "BAD_REQUEST", "escapes the root"),
        ("mutation", "writeFile", no_session, "NOT_FOUND", "session ses_missing not found"),
        ("mutation", "updateFeedbackStatus", no_feedback, "NOT_FOUND", "feedback fb_missing not found"),
    ] {
        let body = failure(&server, kind, function, args).await;
        assert_eq!(body["errorData"]["code"], code, "{function}: {body}");
        let message = body["errorData"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{function}: {body}");
        assert!(body["errorMessage"].as_str().unwrap().contains(&format!("Uncaught ConvexError: {message}")), "{body}");
    }
}

#[tokio::test]
async fn bad_arguments_and_unknown_functions_are_system_errors_without_error_data() {
    let server = Server::start();
    let session = new_session(&server).await;
    let int64 = json!({ "$integer": BASE64.encode(1i64.to_le_bytes()) });
    for (kind, function, args, needle) in [
        ("mutation", "writeFile", json!({ "sessionId": session, "path": "/a" }), "ArgumentValidationError"),
        (
            "query",
            "getSession",
            json!({ "sessionId": "snap_0abc" }),
            "ArgumentValidationError: Found ID \"snap_0abc\" from table `snapshots`",
        ),
        ("query", "readFileAtVersion", json!({ "sessionId": session, "path": "/a", "version": int64 }), "v.number()"),
        ("query", "listSessions", json!({ "extra": 1 }), "unknown field `extra`"),
        ("query", "nope", json!({}), "Could not find public function for 'stage:nope'"),
        ("query", "writeFile", json!({}), "Trying to execute stage:writeFile as Query, but it is defined as Mutation"),
    ] {
        let body = failure(&server, kind, function, args).await;
        assert!(body.get("errorData").is_none(), "{function}: {body}");
        assert!(body["errorMessage"].as_str().unwrap().contains(needle), "{function}: {body}");
    }
    let other_module = json!({ "path": "other:getSession", "args": {}, "format": "json" });
    let answer = server.send(Method::POST, "/api/query", Some(other_module), None).await;
    assert_eq!((answer.status, answer.body.get("errorData")), (200, None), "{:?}", answer.body);
}

#[tokio::test]
async fn malformed_requests_are_refused_with_4xx_before_any_function_runs() {
    let server = Server::start();
    for (raw, code) in [
        (&b"{"[..], "BadFormat"),
        (b"[]", "BadFormat"),
        (br#"{"args":{}}"#, "BadFormat"),
        (br#"{"path":7}"#, "BadFormat"),
        (br#"{"path":"stage:createSession","args":[{},{}]}"#, "BadFormat"),
        (br#"{"path":"stage:createSession","args":"x"}"#, "BadFormat"),
        (br#"{"path":"stage:createSession","format":"xml"}"#, "BadFormat"),
        (br#"{"path":"stage:kvGet","args":{"key":{"$integer":"AA=="}},"format":"convex_encoded_json"}"#, "BadFormat"),
        (br#"{"path":"stage:","args":{}}"#, "BadConvexFunctionIdentifier"),
        (br#"{"path":"../stage:createSession","args":{}}"#, "BadConvexFunctionIdentifier"),
    ] {
        let answer = server.send_raw(Method::POST, "/api/mutation", raw.to_vec()).await;
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(answer.status, 400, "{shown}: {:?}", answer.body);
        assert_shape(&answer.body, &json!({ "code": code, "message": "<string>" }));
    }
    let sessions: i64 = server.db().query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(sessions, 0, "nothing ran");
}

// ---- the `convex` npm client ----

/// Runs `program` with `args`; its standard output when it succeeds, else why not.
fn run(program: &str, args: &[&str], dir: &std::path::Path) -> Result<String, String> {
    let output = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("{program} could not start: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{program} {args:?} failed ({}):\n{stderr}", output.status))
    }
}

/// A temporary folder with the `convex` npm package installed, or why there is none.
fn convex_package() -> Result<tempfile::TempDir, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    run("node", &["--version"], dir.path())?;
    std::fs::write(dir.path().join("package.json"), r#"{"name":"convex-client-test","private":true,"type":"module"}"#)
        .map_err(|e| e.to_string())?;
    run("npm", &["install", "--silent", "--no-audit", "--no-fund", "convex@1"], dir.path())?;
    std::fs::write(dir.path().join("convex_client.mjs"), include_str!("convex_client.mjs"))
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

/// Every function of the `stage` module, called by the real `ConvexHttpClient` as a client
/// written for the original would call it: exact shapes (documents with `_id`,
/// `_creationTime` and `sessionId`), ordering, a new version on an identical write, and
/// error classes (`ConvexError` with `data` for Stage's refusals, a plain `Error` for a bad
/// argument or an unknown function). Needs node and npm with the registry; without them the
/// test says why and passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_convex_npm_client_calls_every_function_like_the_original() {
    const TEST: &str = "the_convex_npm_client_calls_every_function_like_the_original";
    let package = match convex_package() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("SKIPPED {TEST}: {why}");
            return;
        }
    };
    let server = Server::start_with(&["--auth", "required"]);
    let other = server.new_tenant("other").await;
    let other = other.trim_start_matches("Bearer ");

    // An app published over REST, for the platform functions.
    let admin = format!("Bearer {}", server.admin_key());
    let admin = Some(admin.as_str());
    let published_session = server.send(Method::POST, "/api/v1/stage/sessions", Some(json!({})), admin).await;
    let published_session = published_session.body["data"]["id"].as_str().unwrap().to_owned();
    let push = json!({ "files": { "/app/App.tsx": "app" } });
    server.send(Method::POST, &format!("/api/v1/stage/sessions/{published_session}/push"), Some(push), admin).await;
    let app = server
        .send(
            Method::POST,
            "/api/v1/stage/apps",
            Some(json!({ "sessionId": published_session, "name": "Demo" })),
            admin,
        )
        .await;
    let app = app.body["data"].clone();
    let sid = app["sid"].as_str().unwrap();

    let s = "@session";
    let app_file = |content: &str| json!({ "sessionId": s, "path": "/app/App.tsx", "content": content });
    let step = |name: &str, call: &str, function: &str, args: Value| json!({ "as": name, "call": call, "fn": format!("stage:{function}"), "args": args });
    const Q: &str = "query";
    const M: &str = "mutation";
    const A: &str = "action";
    let program = vec![
        step("session", M, "createSession", json!({})),
        step("getSession", Q, "getSession", json!({ "sessionId": s })),
        step("write1", M, "writeFile", app_file("same")),
        step("write2", M, "writeFile", app_file("same")),
        step("writeUtil", M, "writeFile", json!({ "sessionId": s, "path": "/app/util.ts", "content": "util" })),
        step("write3", M, "writeFile", app_file("v3")),
        step("readFile", Q, "readFile", json!({ "sessionId": s, "path": "/app/App.tsx" })),
        step("readMissing", Q, "readFile", json!({ "sessionId": s, "path": "/nope" })),
        step("readAt1", Q, "readFileAtVersion", json!({ "sessionId": s, "path": "/app/App.tsx", "version": 1 })),
        step("readAt9", Q, "readFileAtVersion", json!({ "sessionId": s, "path": "/app/App.tsx", "version": 9 })),
        step("history", Q, "getFileHistory", json!({ "sessionId": s, "path": "/app/App.tsx" })),
        step("allFiles", Q, "getAllFiles", json!({ "sessionId": s })),
        step("renderBefore", Q, "getRenderState", json!({ "sessionId": s })),
        step("render", M, "triggerRender", json!({ "sessionId": s })),
        step("reportError", M, "reportError", json!({ "sessionId": s, "error": "boom" })),
        step("renderFailed", Q, "getRenderState", json!({ "sessionId": s })),
        step("status", Q, "getStatus", json!({ "sessionId": s })),
        step("clearError", M, "clearError", json!({ "sessionId": s })),
        step("renderCleared", Q, "getRenderState", json!({ "sessionId": s })),
        step("snapshot", M, "createSnapshot", json!({ "sessionId": s, "name": "first" })),
        step("write4", M, "writeFile", app_file("v4")),
        step("snapshot2", M, "createSnapshot", json!({ "sessionId": s })),
        step("snapshots", Q, "getSnapshots", json!({ "sessionId": s })),
        step("restore", M, "restoreSnapshot", json!({ "snapshotId": "@snapshot" })),
        step("restoredFile", Q, "readFile", json!({ "sessionId": s, "path": "/app/App.tsx" })),
        step(
            "kvSet",
            M,
            "kvSet",
            json!({ "sessionId": s, "key": "prefs", "value": { "n": 1.5, "big": { "$bigint": "9007199254740993" }, "raw": { "$bytes": "AAE=" }, "list": ["x", true, null] } }),
        ),
        step("kvGet", Q, "kvGet", json!({ "sessionId": s, "key": "prefs" })),
        step("kvMissing", Q, "kvGet", json!({ "sessionId": s, "key": "nope" })),
        step("setLiveData", M, "setLiveData", json!({ "sessionId": s, "data": { "x": 3 } })),
        step("getLiveData", Q, "getLiveData", json!({ "sessionId": s })),
        step("send1", M, "sendMessage", json!({ "sessionId": s, "text": "hello", "sender": "user" })),
        step("send2", M, "sendMessage", json!({ "sessionId": s, "text": "hi", "sender": "agent" })),
        step("messages", Q, "getMessages", json!({ "sessionId": s })),
        step("clearMessages", M, "clearMessages", json!({ "sessionId": s })),
        step("messagesCleared", Q, "getMessages", json!({ "sessionId": s })),
        step("scopesBefore", Q, "getGoogleScopes", json!({ "sessionId": s })),
        step("setScopes", M, "setGoogleScopes", json!({ "sessionId": s, "scopes": ["openid"] })),
        step("scopes", Q, "getGoogleScopes", json!({ "sessionId": s })),
        step(
            "setUserAuth",
            M,
            "setUserAuth",
            json!({ "sessionId": s, "email": "ada@example.com", "name": "Ada", "picture": "https://p/a.png", "passportAuthorizationId": "pa_1", "scopes": ["openid"] }),
        ),
        step("userAuth", Q, "getUserAuth", json!({ "sessionId": s, "email": "ada@example.com" })),
        step("userAuthMissing", Q, "getUserAuth", json!({ "sessionId": s, "email": "bob@example.com" })),
        step("setSecret", M, "setSecret", json!({ "key": "OPENAI_KEY", "value": "sk-npm-secret" })),
        step("getSecret", Q, "getSecret", json!({ "key": "OPENAI_KEY" })),
        json!({ "as": "otherTenantSecret", "client": "other", "call": "query", "fn": "stage:getSecret", "args": { "key": "OPENAI_KEY" } }),
        step(
            "createFeedback",
            M,
            "createFeedback",
            json!({ "sid": "fb_1", "appSid": sid, "appVersionSid": "ver_1", "authorEmail": "ada@example.com", "comment": "Nice", "annotations": [{ "elementSelector": "#a", "elementTag": "a" }] }),
        ),
        step("getFeedback", Q, "getFeedback", json!({ "sid": "fb_1" })),
        step("listFeedback", Q, "listFeedback", json!({ "appSid": sid })),
        step("updateFeedbackStatus", M, "updateFeedbackStatus", json!({ "sid": "fb_1", "status": "in_progress" })),
        step("listInProgress", Q, "listFeedback", json!({ "status": "in_progress" })),
        step("listSessions", Q, "listSessions", json!({})),
        step("listApps", Q, "listApps", json!({})),
        step("getApp", Q, "getApp", json!({ "sid": sid })),
        step("getAppBySession", Q, "getAppBySession", json!({ "sessionId": published_session })),
        step("getAppBySessionNone", Q, "getAppBySession", json!({ "sessionId": s })),
        step("updateApp", M, "updateApp", json!({ "sid": sid, "name": "Renamed" })),
        step("statusByAction", A, "getStatus", json!({ "sessionId": s })),
        step("restoreMissing", M, "restoreSnapshot", json!({ "snapshotId": "snap_missing" })),
        step("badPath", M, "writeFile", json!({ "sessionId": s, "path": "/../x", "content": "" })),
        step("missingArgument", M, "writeFile", json!({ "sessionId": s, "path": "/x" })),
        step(
            "bigintVersion",
            Q,
            "readFileAtVersion",
            json!({ "sessionId": s, "path": "/app/App.tsx", "version": { "$bigint": "1" } }),
        ),
        step("wrongTable", Q, "getSession", json!({ "sessionId": "@snapshot" })),
        step("unknownFunction", Q, "nope", json!({})),
        step("mutationAsQuery", Q, "writeFile", app_file("x")),
    ];
    let program_file = package.path().join("program.json");
    std::fs::write(&program_file, Value::Array(program).to_string()).unwrap();
    let keys = [format!("main={}", server.admin_key()), format!("other={other}")];
    let script = package.path().join("convex_client.mjs");
    let output = run(
        "node",
        &[script.to_str().unwrap(), &server.base, program_file.to_str().unwrap(), &keys[0], &keys[1]],
        package.path(),
    )
    .unwrap_or_else(|failure| panic!("the convex client failed:\n{failure}"));
    let answers: Value = serde_json::from_str(&output).unwrap_or_else(|e| panic!("{e}: {output}"));
    let value = |step: &str| -> Value {
        let answer = &answers[step];
        assert!(answer.get("value").is_some(), "{step}: {answer}");
        answer["value"].clone()
    };
    let error = |step: &str| -> Value {
        let answer = &answers[step];
        assert!(answer.get("error").is_some(), "{step}: {answer}");
        answer["error"].clone()
    };

    let session = value("session");
    let session = session.as_str().unwrap();
    assert!(session.starts_with("ses_"), "{session}");
    assert_shape(
        &value("getSession"),
        &json!({ "_id": session, "_creationTime": "<time>", "createdAt": "<time>", "lastAccessedAt": "<time>" }),
    );

    // Files: every write a version, identical content too; documents; newest first.
    assert_eq!(value("write1"), json!({ "path": "/app/App.tsx", "version": 1, "size": 4 }));
    assert_eq!(value("write2"), json!({ "path": "/app/App.tsx", "version": 2, "size": 4 }));
    assert_eq!(value("writeUtil"), json!({ "path": "/app/util.ts", "version": 1, "size": 4 }));
    assert_eq!(value("write3"), json!({ "path": "/app/App.tsx", "version": 3, "size": 2 }));
    let file = |path: &str, content: &str, version: i64| {
        json!({
            "_id": "<id:fil_>", "_creationTime": "<time>", "sessionId": session, "path": path, "content": content,
            "version": version, "createdAt": "<time>",
        })
    };
    assert_shape(&value("readFile"), &file("/app/App.tsx", "v3", 3));
    assert_eq!(value("readMissing"), Value::Null);
    assert_shape(&value("readAt1"), &file("/app/App.tsx", "same", 1));
    assert_eq!(value("readAt9"), Value::Null);
    let history = value("history");
    assert_shape(
        &history,
        &json!([file("/app/App.tsx", "v3", 3), file("/app/App.tsx", "same", 2), file("/app/App.tsx", "same", 1)]),
    );
    assert_eq!(history[0], value("readFile"));
    assert_eq!(history[2], value("readAt1"));
    assert_shape(&value("allFiles"), &json!([file("/app/App.tsx", "v3", 3), file("/app/util.ts", "util", 1)]));

    // Render state.
    assert_eq!(value("renderBefore"), Value::Null);
    assert_eq!(value("render"), json!({ "entry": "/app/App.tsx", "version": 1 }));
    assert_eq!(value("reportError"), Value::Null);
    let render_state = json!({
        "_id": "<id:rnd_>", "_creationTime": "<time>", "sessionId": session, "entry": "/app/App.tsx", "version": 1,
        "renderedAt": "<time>",
    });
    let mut failed = render_state.clone();
    failed["error"] = json!("boom");
    assert_shape(&value("renderFailed"), &failed);
    assert_shape(
        &value("status"),
        &json!({
            "session": { "createdAt": "<time>", "lastAccessedAt": "<time>" },
            "render": { "entry": "/app/App.tsx", "version": 1, "error": "boom", "renderedAt": "<time>" },
            "files": [
                { "path": "/app/App.tsx", "version": 1, "size": 4 },
                { "path": "/app/App.tsx", "version": 2, "size": 4 },
                { "path": "/app/util.ts", "version": 1, "size": 4 },
                { "path": "/app/App.tsx", "version": 3, "size": 2 },
            ],
        }),
    );
    assert_eq!(value("clearError"), Value::Null);
    assert_shape(&value("renderCleared"), &render_state);

    // Snapshots: the id; documents newest first; restoring writes new versions.
    let snapshot = value("snapshot");
    assert!(snapshot.as_str().unwrap().starts_with("snap_"), "{snapshot}");
    assert_shape(
        &value("snapshots"),
        &json!([
            {
                "_id": value("snapshot2"), "_creationTime": "<time>", "sessionId": session, "createdAt": "<time>",
                "files": [
                    { "path": "/app/App.tsx", "content": "v4", "version": 4 },
                    { "path": "/app/util.ts", "content": "util", "version": 1 },
                ],
            },
            {
                "_id": snapshot, "_creationTime": "<time>", "sessionId": session, "createdAt": "<time>", "name": "first",
                "files": [
                    { "path": "/app/App.tsx", "content": "v3", "version": 3 },
                    { "path": "/app/util.ts", "content": "util", "version": 1 },
                ],
            },
        ]),
    );
    assert_eq!(value("restore"), json!({ "restored": 2 }));
    assert_shape(&value("restoredFile"), &file("/app/App.tsx", "v3", 5));

    // Session state, with Convex values (an int64 and bytes) as they went in.
    assert_eq!(value("kvSet"), Value::Null);
    assert_eq!(
        value("kvGet"),
        json!({ "n": 1.5, "big": { "$bigint": "9007199254740993" }, "raw": { "$bytes": "AAE=" }, "list": ["x", true, null] })
    );
    assert_eq!(value("kvMissing"), Value::Null);
    assert_eq!((value("setLiveData"), value("getLiveData")), (Value::Null, json!({ "x": 3 })));
    assert_eq!((value("send1"), value("send2")), (Value::Null, Value::Null));
    let message = |text: &str, sender: &str| {
        json!({
            "_id": "<id:chat_>", "_creationTime": "<time>", "sessionId": session, "text": text, "sender": sender,
            "createdAt": "<time>",
        })
    };
    assert_shape(&value("messages"), &json!([message("hello", "user"), message("hi", "agent")]));
    assert_eq!((value("clearMessages"), value("messagesCleared")), (Value::Null, json!([])));

    // End users' Google access.
    assert_eq!(
        (value("scopesBefore"), value("setScopes"), value("scopes")),
        (Value::Null, Value::Null, json!(["openid"]))
    );
    assert_eq!(value("setUserAuth"), Value::Null);
    assert_shape(
        &value("userAuth"),
        &json!({
            "_id": "<id:uau_>", "_creationTime": "<time>", "sessionId": session, "email": "ada@example.com",
            "name": "Ada", "picture": "https://p/a.png", "passportAuthorizationId": "pa_1", "scopes": ["openid"],
            "status": "active", "createdAt": "<time>", "updatedAt": "<time>",
        }),
    );
    assert_eq!(value("userAuthMissing"), Value::Null);

    // Secrets: the tenant's own; another tenant reads nothing under the same key.
    assert_eq!((value("setSecret"), value("getSecret")), (Value::Null, json!("sk-npm-secret")));
    assert_eq!(value("otherTenantSecret"), Value::Null);

    // Feedback.
    assert_eq!(value("createFeedback"), json!("fb_1"));
    let feedback = json!({
        "_id": "<id:fbk_>", "_creationTime": "<time>", "sid": "fb_1", "appSid": sid, "appVersionSid": "ver_1",
        "authorEmail": "ada@example.com", "status": "pending", "comment": "Nice",
        "annotations": [{ "elementSelector": "#a", "elementTag": "a" }], "createdAt": "<time>", "updatedAt": "<time>",
    });
    assert_shape(&value("getFeedback"), &feedback);
    assert_shape(&value("listFeedback"), &json!([feedback]));
    assert_eq!(value("updateFeedbackStatus"), Value::Null);
    assert_eq!(value("listInProgress")[0]["status"], "in_progress");

    // The platform's functions answer apps as REST does.
    let sessions = value("listSessions");
    assert!(sessions.as_array().unwrap().iter().any(|s| s["id"] == session), "{sessions}");
    assert_eq!(value("listApps"), json!([app]));
    assert_eq!(value("getApp"), app);
    assert_eq!(value("getAppBySession"), app);
    assert_eq!(value("getAppBySessionNone"), Value::Null);
    assert_eq!(value("updateApp")["name"], "Renamed");
    // Restoring wrote both files of the snapshot: seven versions in all.
    assert_eq!(value("statusByAction")["files"].as_array().unwrap().len(), 7);

    // Error classes: Stage's refusals are ConvexErrors with data; the rest plain Errors.
    let refused = error("restoreMissing");
    assert_eq!(refused["class"], "ConvexError");
    assert_eq!(refused["data"], json!({ "code": "NOT_FOUND", "message": "Snapshot not found" }));
    let bad_path = error("badPath");
    assert_eq!((&bad_path["class"], &bad_path["data"]["code"]), (&json!("ConvexError"), &json!("BAD_REQUEST")));
    for (step, needle) in [
        ("missingArgument", "ArgumentValidationError"),
        ("bigintVersion", "ArgumentValidationError"),
        ("wrongTable", "ArgumentValidationError"),
        ("unknownFunction", "Could not find public function for 'stage:nope'"),
        ("mutationAsQuery", "defined as Mutation"),
    ] {
        let system = error(step);
        assert_eq!(system["class"], "Error", "{step}: {system}");
        assert!(system.get("data").is_none(), "{step}: {system}");
        assert!(system["message"].as_str().unwrap().contains(needle), "{step}: {system}");
    }
}
