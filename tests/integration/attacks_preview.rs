//! What an app's code in a preview page (or whoever copies the page's token) can try
//! against the server, and what now happens.

use reqwest::Method;
use serde_json::json;

use crate::common::Server;
use crate::preview::{app_files, page_config};

async fn rendered_session(server: &Server) -> (String, String) {
    let session = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{session}/push"), json!({ "files": app_files() })).await;
    server.post(&format!("/api/v1/stage/sessions/{session}/render"), json!({})).await;
    let page = server.send_bytes(Method::GET, &format!("/s/{session}"), &[], Vec::new()).await;
    let token = page_config(&String::from_utf8(page.body).unwrap())["token"].as_str().unwrap().to_owned();
    (session, token)
}

#[tokio::test]
async fn a_pages_script_calling_an_admin_route_without_a_key_is_refused() {
    let server = Server::start();
    let (session, _) = rendered_session(&server).await;
    let page_origin = server.base.clone();
    // What `fetch` from the page sends: an Origin (cross-origin or not GET), or
    // Sec-Fetch-Site (same-origin GET).
    for headers in [
        vec![("origin", page_origin.as_str())],
        vec![("sec-fetch-site", "same-origin")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
    ] {
        let tenants = server.send_with(Method::POST, "/api/v1/admin/tenants", json!({ "id": "evil" }), &headers).await;
        assert_eq!(tenants.status, 401, "{headers:?}: {:?}", tenants.body);
        assert_eq!(tenants.body["error"]["code"], "UNAUTHORIZED");
        let status = server
            .send_with(Method::GET, &format!("/api/v1/stage/sessions/{session}/status"), json!(null), &headers)
            .await;
        assert_eq!(status.status, 401, "{headers:?}");
    }
    // The same request from a terminal (no Origin) is the local admin.
    assert_eq!(server.get("/api/v1/admin/tenants").await.status, 200);
}

#[tokio::test]
async fn a_page_token_used_as_an_api_key_opens_nothing() {
    let server = Server::start_with(&["--auth", "required"]);
    let key = format!("Bearer {}", server.admin_key());
    let session = {
        let created = server.send(Method::POST, "/api/v1/stage/sessions", None, Some(&key)).await;
        created.body["data"]["id"].as_str().unwrap().to_owned()
    };
    server
        .send(
            Method::POST,
            &format!("/api/v1/stage/sessions/{session}/push"),
            Some(json!({ "files": app_files() })),
            Some(&key),
        )
        .await;
    server.send(Method::POST, &format!("/api/v1/stage/sessions/{session}/render"), Some(json!({})), Some(&key)).await;
    let page = server.send_bytes(Method::GET, &format!("/s/{session}"), &[], Vec::new()).await;
    assert_eq!(page.status, 200, "a page is viewable by its link");
    let token = page_config(&String::from_utf8(page.body).unwrap())["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    for (method, path) in [
        (Method::GET, format!("/api/v1/stage/sessions/{session}/status")),
        (Method::GET, format!("/api/v1/stage/sessions/{session}/files/app/App.tsx")),
        (Method::POST, format!("/api/v1/stage/sessions/{session}/render")),
        (Method::GET, "/api/v1/admin/tenants".to_owned()),
        (Method::GET, "/api/v1/stage/sessions".to_owned()),
    ] {
        let answer = server.send(method.clone(), &path, Some(json!({})), Some(&bearer)).await;
        assert_eq!(answer.status, 401, "{method} {path}: {:?}", answer.body);
    }
    // What it is good for: this session's render events.
    let events = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/stage/sessions/{session}/events?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
}

#[tokio::test]
async fn one_sessions_token_does_not_open_anothers_events() {
    let server = Server::start();
    let (_, token) = rendered_session(&server).await;
    let (other, _) = rendered_session(&server).await;
    let refused = server.get(&format!("/api/v1/stage/sessions/{other}/events?token={token}")).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"]["message"], "the preview token is not this session's");
    let forged = server.get(&format!("/api/v1/stage/sessions/{other}/events?token=stage_pv_AAAA")).await;
    assert_eq!(forged.status, 401);
}

#[tokio::test]
async fn an_app_pages_token_opens_neither_its_sessions_events_nor_its_render_error() {
    let server = Server::start();
    let (session, _) = rendered_session(&server).await;
    let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Published" })).await;
    let app = published.body["data"]["sid"].as_str().unwrap().to_owned();
    let page = server.send_bytes(Method::GET, &format!("/s/{app}"), &[], Vec::new()).await;
    let token = page_config(&String::from_utf8(page.body).unwrap())["token"].as_str().unwrap().to_owned();

    let events = server.get(&format!("/api/v1/stage/sessions/{session}/events?token={token}")).await;
    assert_eq!(events.status, 401);
    assert_eq!(events.body["error"]["message"], "the preview token is not this session's");
    let bearer = format!("Bearer {token}");
    for id in [&session, &app] {
        let reported = server
            .send(
                Method::POST,
                &format!("/api/v1/stage/sessions/{id}/render/error"),
                Some(json!({ "error": "from the published page" })),
                Some(&bearer),
            )
            .await;
        assert_eq!(reported.status, 401, "{id}: {:?}", reported.body);
    }
    let status = server.get(&format!("/api/v1/stage/sessions/{session}/status")).await;
    assert_eq!(status.body["data"]["render"]["error"], serde_json::Value::Null);
}

#[tokio::test]
async fn one_apps_token_does_not_open_anothers_events() {
    let server = Server::start();
    let mut tokens = Vec::new();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let (session, _) = rendered_session(&server).await;
        let published = server.post("/api/v1/stage/apps", json!({ "sessionId": session, "name": "Published" })).await;
        let app = published.body["data"]["sid"].as_str().unwrap().to_owned();
        let page = server.send_bytes(Method::GET, &format!("/s/{app}"), &[], Vec::new()).await;
        tokens.push(page_config(&String::from_utf8(page.body).unwrap())["token"].as_str().unwrap().to_owned());
        apps.push(app);
    }
    let refused = server.get(&format!("/api/v1/stage/apps/{}/events?token={}", apps[1], tokens[0])).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"]["message"], "the preview token is not this app's");
}
