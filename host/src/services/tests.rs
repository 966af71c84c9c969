//! The services router in-process, as the wasm runtime calls it: the caller comes from the
//! request's extensions, and an app's caller is confined to its own app.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{ServiceCaller, router};
use stage_runtime::Identity;
use stage_store::tenants::DEFAULT_TENANT;

async fn services() -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sealer = stage_store::sealed::Sealer::new(&stage_store::sealed::SecretKey::generate(), &[]);
    let store = stage_store::open(dir.path(), sealer).expect("store");
    store.bootstrap("admin@localhost").await.expect("bootstrap");
    (dir, router(super::ServiceState::new(store)))
}

fn tenant_caller() -> ServiceCaller {
    ServiceCaller(Identity {
        tenant_id: DEFAULT_TENANT.into(),
        app_sid: None,
        actor_email: Some("admin@localhost".into()),
    })
}

fn app_caller() -> ServiceCaller {
    ServiceCaller(Identity {
        tenant_id: DEFAULT_TENANT.into(),
        app_sid: Some("app_mine".into()),
        actor_email: Some("user@example.com".into()),
    })
}

async fn call(
    services: &Router,
    caller: Option<&ServiceCaller>,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let mut request = Request::builder().method(method).uri(uri).body(body).expect("request");
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller.clone());
    }
    let response = services.clone().oneshot(request).await.expect("answer");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_request_without_a_caller_is_unauthorized() {
    let (_dir, services) = services().await;
    for (method, uri) in [
        (Method::POST, "/pulse/events"),
        (Method::POST, "/pulse/events/batch"),
        (Method::GET, "/pulse/events"),
        (Method::POST, "/ledger/events"),
        (Method::GET, "/ledger/events"),
        (Method::GET, "/ledger/verify"),
    ] {
        let (status, body) = call(&services, None, method.clone(), uri, Some(json!({ "name": "x" }))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{method} {uri}");
    }
}

#[tokio::test]
async fn an_app_caller_writes_and_reads_only_its_own_records() {
    let (_dir, services) = services().await;
    let (tenant, app) = (tenant_caller(), app_caller());
    let other = json!({ "name": "elsewhere", "stageAppId": "app_other" });
    assert_eq!(call(&services, Some(&tenant), Method::POST, "/pulse/events", Some(other)).await.0, StatusCode::CREATED);

    let (status, mine) = call(&services, Some(&app), Method::POST, "/pulse/events", Some(json!({ "name": "x" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    assert_eq!(
        (&mine["data"]["stageAppId"], &mine["data"]["authorEmail"]),
        (&json!("app_mine"), &json!("user@example.com"))
    );
    let named = json!({ "name": "y", "stageAppId": "app_mine", "authorEmail": "given@example.com" });
    let (status, named) = call(&services, Some(&app), Method::POST, "/pulse/events", Some(named)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(named["data"]["authorEmail"], "given@example.com");

    let foreign = json!({ "name": "z", "stageAppId": "app_other" });
    let (status, refused) = call(&services, Some(&app), Method::POST, "/pulse/events", Some(foreign)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "FORBIDDEN");
    assert!(refused["error"]["message"].as_str().unwrap().starts_with("stageAppId "), "{refused}");
    let batch = json!({ "events": [{ "name": "a" }, { "name": "b", "stageAppId": "app_other" }] });
    let (status, refused) = call(&services, Some(&app), Method::POST, "/pulse/events/batch", Some(batch)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["details"], json!({ "index": 1, "field": "stageAppId" }));

    let (status, own) = call(&services, Some(&app), Method::GET, "/pulse/events", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&own["data"]["total"], &own["data"]["counts"]), (&json!(2), &json!({ "x": 1, "y": 1 })));
    let (status, _) = call(&services, Some(&app), Method::GET, "/pulse/events?stageAppId=app_other", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, everything) = call(&services, Some(&tenant), Method::GET, "/pulse/events", None).await;
    assert_eq!(everything["data"]["total"], 3, "the tenant sees every app's events");

    let audit = json!({ "operation": "write", "stageAppId": "app_other" });
    assert_eq!(
        call(&services, Some(&tenant), Method::POST, "/ledger/events", Some(audit)).await.0,
        StatusCode::CREATED
    );
    let (status, appended) =
        call(&services, Some(&app), Method::POST, "/ledger/events", Some(json!({ "operation": "read" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    assert_eq!(appended["data"]["seq"], 2);
    assert_eq!(appended["data"]["actor"], "user@example.com");
    assert_eq!(appended["data"]["stageAppId"], "app_mine");
    let by_service = json!({ "operation": "read", "actor": "sheets-step", "actorType": "service" });
    let (_, by_service) = call(&services, Some(&app), Method::POST, "/ledger/events", Some(by_service)).await;
    assert_eq!(
        (&by_service["data"]["actor"], &by_service["data"]["authorEmail"]),
        (&json!("sheets-step"), &json!("user@example.com"))
    );
    let (_, listed) = call(&services, Some(&app), Method::GET, "/ledger/events", None).await;
    let seqs: Vec<&Value> = listed["data"]["events"].as_array().unwrap().iter().map(|e| &e["seq"]).collect();
    assert_eq!(seqs, [&json!(2), &json!(3)]);
    let (_, verified) = call(&services, Some(&app), Method::GET, "/ledger/verify", None).await;
    assert_eq!(verified["data"], json!({ "ok": true, "count": 3, "firstBrokenSeq": null }));
}

#[tokio::test]
async fn without_a_known_user_the_ledger_needs_an_actor() {
    let (_dir, services) = services().await;
    let anonymous =
        ServiceCaller(Identity { tenant_id: DEFAULT_TENANT.into(), app_sid: Some("app_1".into()), actor_email: None });
    let (status, refused) =
        call(&services, Some(&anonymous), Method::POST, "/ledger/events", Some(json!({ "operation": "read" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused["error"]["message"].as_str().unwrap().starts_with("actor is required"), "{refused}");
    let (status, event) =
        call(&services, Some(&anonymous), Method::POST, "/pulse/events", Some(json!({ "name": "x" }))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(event["data"]["authorEmail"], Value::Null);
}
