//! The auth matrix: local vs required mode, Bearer vs Convex header, the admin key file,
//! tenants and cross-tenant isolation.

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::json;

use crate::common::{Server, spawn};

#[tokio::test]
async fn local_mode_trusts_loopback_without_credentials_but_not_bad_keys() {
    let server = Server::start();
    assert_eq!(server.get("/api/v1/stage/sessions").await.status, 200);
    let me = server.get("/api/v1/me").await;
    assert_eq!(me.body["data"]["email"], "admin@localhost");
    assert_eq!(me.body["data"]["admin"], true);
    assert_eq!(me.body["data"]["tenantId"], "default");

    let bad = server.send(Method::GET, "/api/v1/stage/sessions", None, Some("Bearer stage_sk_wrong")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"]["code"], "UNAUTHORIZED");
    let garbled = server.send(Method::GET, "/api/v1/stage/sessions", None, Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(garbled.status, 401);
}

#[tokio::test]
async fn the_admin_key_file_is_private_and_works_with_both_schemes() {
    let server = Server::start_with(&["--auth", "required", "--admin-email", "owner@example.com"]);
    let mode = std::fs::metadata(server.data_dir.join("admin-key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = server.admin_key();
    assert!(key.starts_with("stage_sk_"));

    let anonymous = server.get("/api/v1/stage/sessions").await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body["error"]["code"], "UNAUTHORIZED");

    for scheme in ["Bearer", "Convex"] {
        let me = server.send(Method::GET, "/api/v1/me", None, Some(&format!("{scheme} {key}"))).await;
        assert_eq!(me.status, 200, "{scheme}");
        assert_eq!(me.body["data"]["email"], "owner@example.com");
    }
    // Only the hash of the key is stored.
    let hashes: Vec<String> = server
        .db()
        .prepare("SELECT key_hash FROM api_keys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!hashes.is_empty() && hashes.iter().all(|h| h.len() == 64 && !h.contains(&key)));

    // A convex call authenticates the same way and refuses without a key.
    let call = json!({ "path": "stage:listSessions", "args": {}, "format": "json" });
    let refused = server.send(Method::POST, "/api/query", Some(call.clone()), None).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "Unauthenticated");
    let allowed = server.send(Method::POST, "/api/query", Some(call), Some(&format!("Convex {key}"))).await;
    assert_eq!(allowed.body["status"], "success");
}

#[tokio::test]
async fn tenants_are_isolated_and_keys_can_be_revoked() {
    let server = Server::start_with(&["--auth", "required"]);
    let admin = format!("Bearer {}", server.admin_key());
    let admin = Some(admin.as_str());

    let acme =
        server.send(Method::POST, "/api/v1/admin/tenants", Some(json!({ "id": "acme", "name": "Acme" })), admin).await;
    assert_eq!(acme.status, 201, "{:?}", acme.body);
    assert_eq!(acme.body["data"]["tenant"]["id"], "acme");
    let acme_key = format!("Bearer {}", acme.body["data"]["apiKey"]["secret"].as_str().unwrap());
    let acme_key = Some(acme_key.as_str());
    let duplicate = server.send(Method::POST, "/api/v1/admin/tenants", Some(json!({ "id": "acme" })), admin).await;
    assert_eq!(duplicate.status, 409);

    // A tenant key is not an admin key.
    let forbidden = server.send(Method::GET, "/api/v1/admin/tenants", None, acme_key).await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.body["error"]["code"], "FORBIDDEN");

    // The default tenant's session is invisible to acme, on every route.
    let created = server.send(Method::POST, "/api/v1/stage/sessions", None, admin).await;
    let session = created.body["data"]["id"].as_str().unwrap().to_owned();
    server
        .send(
            Method::POST,
            &format!("/api/v1/stage/sessions/{session}/push"),
            Some(json!({ "files": { "/a": "secret" } })),
            admin,
        )
        .await;
    let published = server
        .send(Method::POST, "/api/v1/stage/apps", Some(json!({ "sessionId": session, "name": "Mine" })), admin)
        .await;
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/stage/sessions/{session}/status"), None),
        (Method::GET, format!("/api/v1/stage/sessions/{session}/files/a"), None),
        (Method::POST, format!("/api/v1/stage/sessions/{session}/push"), Some(json!({ "files": { "/b": "x" } }))),
        (Method::DELETE, format!("/api/v1/stage/sessions/{session}"), None),
        (Method::GET, format!("/api/v1/stage/sessions/{sid}/status"), None),
        (Method::GET, format!("/api/v1/stage/apps/{sid}"), None),
        (Method::PATCH, format!("/api/v1/stage/apps/{sid}"), Some(json!({ "name": "Theirs" }))),
        (Method::POST, format!("/api/v1/stage/apps/{sid}/versions"), None),
        (Method::POST, "/api/v1/stage/apps".to_owned(), Some(json!({ "sessionId": session, "name": "Stolen" }))),
    ] {
        let answer = server.send(method.clone(), &path, body, acme_key).await;
        assert_eq!(answer.status, 404, "{method} {path}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["code"], "NOT_FOUND");
    }
    let theirs = server.send(Method::GET, "/api/v1/stage/sessions", None, acme_key).await;
    assert_eq!(theirs.body["data"], json!([]));
    let apps = server.send(Method::GET, "/api/v1/stage/apps", None, acme_key).await;
    assert_eq!(apps.body["data"], json!([]));
    let convex = server
        .send(
            Method::POST,
            "/api/query",
            Some(json!({ "path": "stage:getStatus", "args": { "sessionId": session } })),
            acme_key,
        )
        .await;
    // As the original getStatus answers for a session that does not exist.
    assert_eq!(convex.body["value"], json!({ "session": null, "render": null, "files": [] }));

    // Keys: create for a user, list without secrets, revoke.
    let key = server
        .send(
            Method::POST,
            "/api/v1/admin/tenants/acme/keys",
            Some(json!({ "email": "dev@acme.test", "label": "ci" })),
            admin,
        )
        .await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    let secret = key.body["data"]["secret"].as_str().unwrap().to_owned();
    let key_id = key.body["data"]["id"].as_str().unwrap().to_owned();
    let listed = server.send(Method::GET, "/api/v1/admin/tenants/acme/keys", None, admin).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    assert!(!listed.body.to_string().contains(&secret));
    let bearer = format!("Bearer {secret}");
    assert_eq!(
        server.send(Method::GET, "/api/v1/me", None, Some(&bearer)).await.body["data"]["email"],
        "dev@acme.test"
    );
    let revoked = server.send(Method::DELETE, &format!("/api/v1/admin/keys/{key_id}"), None, admin).await;
    assert!(revoked.body["data"]["revokedAt"].is_i64());
    assert_eq!(server.send(Method::GET, "/api/v1/me", None, Some(&bearer)).await.status, 401);
    let not_admin_in_tenant = server
        .send(
            Method::POST,
            "/api/v1/admin/tenants/acme/keys",
            Some(json!({ "email": "x@acme.test", "admin": true })),
            admin,
        )
        .await;
    assert_eq!(not_admin_in_tenant.status, 422);
    let no_tenant =
        server.send(Method::POST, "/api/v1/admin/tenants/nope/keys", Some(json!({ "email": "x@y.z" })), admin).await;
    assert_eq!(no_tenant.status, 404);
}

#[test]
fn local_mode_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let refused = spawn(dir.path(), &["--listen", "0.0.0.0:0"]);
    let log = refused.expect_err("must not start");
    assert!(log.contains("--auth local"), "{log}");
    // With keys required it starts.
    let (mut child, _) = spawn(dir.path(), &["--listen", "0.0.0.0:0", "--auth", "required"]).expect("starts");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn environment_variables_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stage"))
        .arg("serve")
        .env("STAGE_DATA_DIR", dir.path())
        .env("STAGE_LISTEN", "0.0.0.0:0")
        .env("STAGE_AUTH", "local")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--auth local"));
}
