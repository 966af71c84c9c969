//! Attacks through the Convex-compatible functions: another tenant reading a tenant's Stage
//! secrets or its sessions' state, and a secret finding its way into the server's log.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::Server;

/// Calls `stage:<function>` as the holder of `auth`; the body of the HTTP 200 answer.
async fn call(server: &Server, auth: &str, kind: &str, function: &str, args: Value) -> Value {
    let body = json!({ "path": format!("stage:{function}"), "args": args, "format": "json" });
    let answer = server.send(Method::POST, &format!("/api/{kind}"), Some(body), Some(auth)).await;
    assert_eq!(answer.status, 200, "{function}: {:?}", answer.body);
    answer.body
}

/// The value of a successful call.
async fn value(server: &Server, auth: &str, kind: &str, function: &str, args: Value) -> Value {
    let body = call(server, auth, kind, function, args).await;
    assert_eq!(body["status"], "success", "{function}: {body}");
    body["value"].clone()
}

/// A server with tenants `acme` and `evil`; their `Bearer` headers.
async fn two_tenants() -> (Server, String, String) {
    let server = Server::start_with(&["--auth", "required"]);
    let acme = server.new_tenant("acme").await;
    let evil = server.new_tenant("evil").await;
    (server, acme, evil)
}

#[tokio::test]
async fn another_tenant_reads_a_stage_secret_under_the_same_key() {
    let (server, acme, evil) = two_tenants().await;
    let secret = "sk-live-ACME-only-4242";
    value(&server, &acme, "mutation", "setSecret", json!({ "key": "OPENAI_KEY", "value": secret })).await;

    let stolen = value(&server, &evil, "query", "getSecret", json!({ "key": "OPENAI_KEY" })).await;
    assert_eq!(stolen, Value::Null);
    // Setting the same key gives evil a secret of its own; acme's is untouched.
    value(&server, &evil, "mutation", "setSecret", json!({ "key": "OPENAI_KEY", "value": "evil's" })).await;
    assert_eq!(value(&server, &evil, "query", "getSecret", json!({ "key": "OPENAI_KEY" })).await, json!("evil's"));
    assert_eq!(value(&server, &acme, "query", "getSecret", json!({ "key": "OPENAI_KEY" })).await, json!(secret));

    // At rest both are sealed, each to its own tenant and row.
    let db = server.db();
    let mut stmt = db.prepare("SELECT tenant_id, value FROM tenant_secrets ORDER BY tenant_id").unwrap();
    let rows: Vec<(String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["acme", "evil"]);
    for (_, stored) in &rows {
        assert!(stored.starts_with("sealed:v1:") && !stored.contains(secret) && !stored.contains("evil's"), "{stored}");
    }
}

#[tokio::test]
async fn another_tenant_reads_or_changes_a_session_through_convex_functions() {
    let (server, acme, evil) = two_tenants().await;
    let session = value(&server, &acme, "mutation", "createSession", json!({})).await;
    let s = session.as_str().unwrap();
    // A component that compiles, so that acme's render has no error of its own.
    let file = json!({ "sessionId": s, "path": "/app/App.tsx", "content": ACME_CODE });
    value(&server, &acme, "mutation", "writeFile", file).await;
    value(&server, &acme, "mutation", "triggerRender", json!({ "sessionId": s })).await;
    let snapshot = value(&server, &acme, "mutation", "createSnapshot", json!({ "sessionId": s })).await;
    value(&server, &acme, "mutation", "kvSet", json!({ "sessionId": s, "key": "k", "value": "acme's" })).await;
    value(&server, &acme, "mutation", "setLiveData", json!({ "sessionId": s, "data": "acme's" })).await;
    value(&server, &acme, "mutation", "sendMessage", json!({ "sessionId": s, "text": "acme's", "sender": "user" }))
        .await;
    value(&server, &acme, "mutation", "setGoogleScopes", json!({ "sessionId": s, "scopes": ["openid"] })).await;
    let auth = json!({
        "sessionId": s, "email": "ada@acme.test", "name": "Ada", "picture": "", "passportAuthorizationId": "pa",
        "scopes": [],
    });
    value(&server, &acme, "mutation", "setUserAuth", auth).await;
    let feedback = json!({
        "sid": "fb_acme", "appSid": "app_x", "appVersionSid": "v", "authorEmail": "ada@acme.test", "comment": "c",
        "annotations": [],
    });
    value(&server, &acme, "mutation", "createFeedback", feedback).await;
    let before = value(&server, &acme, "query", "getStatus", json!({ "sessionId": s })).await;

    // Reads answer as for a session that does not exist.
    let path = json!({ "sessionId": s, "path": "/app/App.tsx" });
    for (function, args, nothing) in [
        ("getSession", json!({ "sessionId": s }), Value::Null),
        ("readFile", path.clone(), Value::Null),
        ("readFileAtVersion", json!({ "sessionId": s, "path": "/app/App.tsx", "version": 1 }), Value::Null),
        ("getFileHistory", path, json!([])),
        ("getAllFiles", json!({ "sessionId": s }), json!([])),
        ("getSnapshots", json!({ "sessionId": s }), json!([])),
        ("getRenderState", json!({ "sessionId": s }), Value::Null),
        ("getStatus", json!({ "sessionId": s }), json!({ "session": null, "render": null, "files": [] })),
        ("kvGet", json!({ "sessionId": s, "key": "k" }), Value::Null),
        ("getLiveData", json!({ "sessionId": s }), Value::Null),
        ("getMessages", json!({ "sessionId": s }), json!([])),
        ("getGoogleScopes", json!({ "sessionId": s }), Value::Null),
        ("getUserAuth", json!({ "sessionId": s, "email": "ada@acme.test" }), Value::Null),
        ("getFeedback", json!({ "sid": "fb_acme" }), Value::Null),
        ("listFeedback", json!({}), json!([])),
    ] {
        assert_eq!(value(&server, &evil, "query", function, args).await, nothing, "{function}");
    }

    // Writes are refused as not found, or change nothing.
    for (function, args) in [
        ("writeFile", json!({ "sessionId": s, "path": "/app/App.tsx", "content": "evil" })),
        ("triggerRender", json!({ "sessionId": s })),
        ("createSnapshot", json!({ "sessionId": s })),
        ("restoreSnapshot", json!({ "snapshotId": snapshot })),
        ("kvSet", json!({ "sessionId": s, "key": "k", "value": "evil" })),
        ("setLiveData", json!({ "sessionId": s, "data": "evil" })),
        ("sendMessage", json!({ "sessionId": s, "text": "evil", "sender": "evil" })),
        ("setGoogleScopes", json!({ "sessionId": s, "scopes": ["evil"] })),
        ("updateFeedbackStatus", json!({ "sid": "fb_acme", "status": "dismissed" })),
    ] {
        let body = call(&server, &evil, "mutation", function, args).await;
        assert_eq!(body["errorData"]["code"], "NOT_FOUND", "{function}: {body}");
    }
    for (function, args) in
        [("reportError", json!({ "sessionId": s, "error": "evil" })), ("clearMessages", json!({ "sessionId": s }))]
    {
        assert_eq!(value(&server, &evil, "mutation", function, args).await, Value::Null, "{function}");
    }

    assert_eq!(value(&server, &acme, "query", "getStatus", json!({ "sessionId": s })).await, before);
    let read = value(&server, &acme, "query", "readFile", json!({ "sessionId": s, "path": "/app/App.tsx" })).await;
    assert_eq!(read["content"], ACME_CODE);
    assert!(value(&server, &acme, "query", "getRenderState", json!({ "sessionId": s })).await.get("error").is_none());
    assert_eq!(value(&server, &acme, "query", "getMessages", json!({ "sessionId": s })).await[0]["text"], "acme's");
    assert_eq!(value(&server, &acme, "query", "kvGet", json!({ "sessionId": s, "key": "k" })).await, "acme's");
    assert_eq!(value(&server, &acme, "query", "getFeedback", json!({ "sid": "fb_acme" })).await["status"], "pending");
}

const ACME_CODE: &str = "export default () => \"acme's code\";";

/// `stage serve` logging at debug level; killed when dropped.
struct DebugServer {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl DebugServer {
    fn start() -> DebugServer {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_stage"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--compiled-dir", concat!(env!("CARGO_TARGET_TMPDIR"), "/compiled")])
            .env_remove("STAGE_LISTEN")
            .env_remove("STAGE_DATA_DIR")
            .env_remove("STAGE_AUTH")
            .env("STAGE_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("stage starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        let base = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{first}")).to_owned();
        DebugServer { child, base, dir }
    }

    async fn call(&self, kind: &str, function: &str, args: Value) -> Value {
        let body = json!({ "path": format!("stage:{function}"), "args": args, "format": "json" });
        let answer = reqwest::Client::new().post(format!("{}/api/{kind}", self.base)).json(&body).send().await.unwrap();
        answer.json().await.unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap()
    }
}

impl Drop for DebugServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_secret_sent_to_failing_secret_calls_does_not_reach_the_log() {
    let server = DebugServer::start();
    let secret = "sk-live-NEVER-LOGGED-7777";
    let large = format!("{secret}{}", "x".repeat(70 * 1024));
    for (kind, args) in [
        ("mutation", json!({ "key": "K", "value": large })),
        ("mutation", json!({ "key": "K", "valeu": secret })),
        ("mutation", json!({ "key": secret, "value": 7 })),
        ("query", json!({ "key": "K", "value": secret })),
    ] {
        let function = if kind == "mutation" { "setSecret" } else { "getSecret" };
        let answer = server.call(kind, function, args).await;
        assert_eq!(answer["status"], "error", "{answer}");
    }
    value_set(&server, secret).await;
    // Other functions' failures are logged at this level, so the log would show a leak.
    let failed = server.call("query", "kvGet", json!({ "sessionId": "ses_x" })).await;
    assert_eq!(failed["status"], "error", "{failed}");
    let log = server.log();
    assert!(log.contains("convex function failed"), "debug logging is on:\n{log}");
    assert!(!log.contains(secret), "{log}");
}

/// Sets and reads back the secret, which succeeds without logging it either.
async fn value_set(server: &DebugServer, secret: &str) {
    let set = server.call("mutation", "setSecret", json!({ "key": "K", "value": secret })).await;
    assert_eq!(set["status"], "success", "{set}");
    let got = server.call("query", "getSecret", json!({ "key": "K" })).await;
    assert_eq!(got["value"], secret);
}
