//! Publishing sessions as apps, immutable versions, metadata.

use serde_json::json;

use crate::common::{Server, assert_shape};

fn app_shape(sid: &str, session: &str, version: i64) -> serde_json::Value {
    json!({
        "sid": sid, "sessionId": session, "name": "Form to sheet", "description": "Collects rows",
        "config": { "slackChannelId": "C123" }, "repository": null, "version": version,
        "createdAt": "<time>", "updatedAt": "<time>",
    })
}

#[tokio::test]
async fn publish_republish_list_get_and_pinned_snapshots() {
    let server = Server::start();
    let session = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": { "/app/App.tsx": "v1" } })).await;

    let published = server
        .post(
            "/api/v1/stage/apps",
            json!({ "sessionId": session, "name": "Form to sheet", "description": "Collects rows", "config": { "slackChannelId": "C123" } }),
        )
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("app_"));
    assert_shape(&published.body, &json!({ "success": true, "data": app_shape(&sid, &session, 1) }));

    // One app per session.
    let again = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Twice" })).await;
    assert_eq!(again.status, 409);
    assert!(again.body["error"]["message"].as_str().unwrap().contains(&sid));

    // Editing the session does not change version 1; republishing makes version 2.
    server
        .post(
            &format!("/api/v1/stage/sessions/{session}/push"),
            json!({ "files": { "/app/App.tsx": "v2", "/extra": "x" } }),
        )
        .await;
    let republished = server.post(&format!("/api/v1/stage/apps/{sid}/versions"), json!(null)).await;
    assert_eq!(republished.status, 201);
    assert_shape(
        &republished.body["data"],
        &json!({ "appSid": sid, "version": 2, "snapshotId": "<id:snap_>", "fileCount": 2, "createdAt": "<time>" }),
    );
    let versions = server.get(&format!("/api/v1/stage/apps/{sid}/versions")).await;
    let versions = versions.body["data"].as_array().unwrap().clone();
    assert_eq!(
        versions.iter().map(|v| (v["version"].as_i64().unwrap(), v["fileCount"].as_i64().unwrap())).collect::<Vec<_>>(),
        [(1, 1), (2, 2)]
    );
    let pinned: String = server
        .db()
        .query_row(
            "SELECT b.data FROM app_versions v JOIN snapshot_files f ON f.snapshot_id = v.snapshot_id JOIN blobs b ON b.hash = f.blob_hash
             WHERE v.app_sid = ?1 AND v.version = 1 AND f.path = '/app/App.tsx'",
            [&sid],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .map(|b| String::from_utf8(b).unwrap())
        .unwrap();
    assert_eq!(pinned, "v1");

    let got = server.get(&format!("/api/v1/stage/apps/{sid}")).await;
    assert_shape(&got.body["data"], &app_shape(&sid, &session, 2));
    let listed = server.get("/api/v1/stage/apps").await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let by_session = server.get(&format!("/api/v1/stage/apps?sessionId={session}")).await;
    assert_eq!(by_session.body["data"][0]["sid"], sid);
    let other = server.new_session().await;
    let none = server.get(&format!("/api/v1/stage/apps?sessionId={other}")).await;
    assert_eq!(none.body["data"], json!([]));

    // The app's sid stands for its session in session routes.
    let via_sid = server.get(&format!("/api/v1/stage/sessions/{sid}/files/extra")).await;
    assert_eq!(via_sid.body["data"]["content"], "x");
    let listed = server.get("/api/v1/stage/sessions").await;
    let entry = listed.body["data"].as_array().unwrap().iter().find(|s| s["id"] == session).unwrap().clone();
    assert_eq!(entry["appSid"], sid);

    // A published session cannot be deleted from under its versions.
    assert_eq!(server.delete(&format!("/api/v1/stage/sessions/{session}")).await.status, 409);
    assert_eq!(server.get("/api/v1/stage/apps/app_missing").await.status, 404);
    assert_eq!(server.post("/api/v1/stage/apps/app_missing/versions", json!(null)).await.status, 404);
}

#[tokio::test]
async fn patch_updates_metadata_and_links_and_unlinks_a_repository() {
    let server = Server::start();
    let session = server.new_session().await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "First" })).await;
    let sid = published.body["data"]["sid"].as_str().unwrap().to_owned();
    assert_eq!(published.body["data"]["config"], json!({}));
    assert_eq!(published.body["data"]["description"], json!(null));

    let repository = json!({
        "provider": "github", "owner": "acme", "name": "forms", "fullName": "acme/forms",
        "url": "https://github.com/acme/forms", "visibility": "private", "defaultBranch": "main",
        "remoteName": "origin", "linkedAt": 1_780_000_000_000_i64,
    });
    let patched = server
        .patch(
            &format!("/api/v1/stage/apps/{sid}"),
            json!({ "name": "Renamed", "description": "Now described", "config": { "a": 1 }, "repository": repository }),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["data"]["name"], "Renamed");
    assert_eq!(patched.body["data"]["description"], "Now described");
    assert_eq!(patched.body["data"]["config"], json!({ "a": 1 }));
    assert_eq!(patched.body["data"]["repository"], repository);

    // Absent fields stay; null clears the description and unlinks the repository.
    let cleared =
        server.patch(&format!("/api/v1/stage/apps/{sid}"), json!({ "description": null, "repository": null })).await;
    assert_eq!(cleared.body["data"]["name"], "Renamed");
    assert_eq!(cleared.body["data"]["description"], json!(null));
    assert_eq!(cleared.body["data"]["repository"], json!(null));
    let stored: Option<String> =
        server.db().query_row("SELECT repository FROM apps WHERE sid = ?1", [&sid], |r| r.get(0)).unwrap();
    assert_eq!(stored, None);

    // linkedAt defaults to now.
    let mut without_time = repository.clone();
    without_time.as_object_mut().unwrap().remove("linkedAt");
    let linked = server.patch(&format!("/api/v1/stage/apps/{sid}"), json!({ "repository": without_time })).await;
    assert!(linked.body["data"]["repository"]["linkedAt"].as_i64().unwrap() > 1_700_000_000_000);

    for (body, needle) in [
        (json!({ "name": "" }), "name"),
        (json!({ "name": null }), "name"),
        (json!({ "config": [1] }), "config"),
        (json!({ "colour": "red" }), "colour"),
        (json!({ "repository": { "provider": "github" } }), "repository.owner"),
        (json!({ "repository": repository_with("visibility", json!("secret")) }), "repository.visibility"),
        (json!({ "repository": repository_with("url", json!("ftp://x")) }), "repository.url"),
        (json!({ "repository": repository_with("stars", json!(3)) }), "repository.stars"),
    ] {
        let refused = server.patch(&format!("/api/v1/stage/apps/{sid}"), body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {:?}", refused.body);
        assert!(refused.body["error"]["message"].as_str().unwrap().contains(needle), "{body}: {:?}", refused.body);
    }
    let unchanged = server.get(&format!("/api/v1/stage/apps/{sid}")).await;
    assert_eq!(unchanged.body["data"]["name"], "Renamed");
}

fn repository_with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut repository = json!({
        "provider": "github", "owner": "acme", "name": "forms", "fullName": "acme/forms",
        "url": "https://github.com/acme/forms", "visibility": "private", "defaultBranch": "main", "remoteName": "origin",
    });
    repository[field] = value;
    repository
}
