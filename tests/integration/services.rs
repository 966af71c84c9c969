//! The embedded pulse (analytics) and ledger (audit) services at `/api/v1`: ingest and query
//! shapes, batch atomicity, idempotency keys, the ledger's hash chain and its tamper
//! evidence, tenant isolation, auth, and a sweep of bad input.

use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Answer, Server, assert_shape};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Sends a JSON request with extra headers (the harness's `send` sets only `Authorization`).
async fn send_with_headers(
    server: &Server,
    method: Method,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new().request(method, server.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = serde_json::from_slice(&response.bytes().await.expect("body")).unwrap_or(Value::Null);
    Answer { status, body, headers }
}

fn count_rows(server: &Server, table: &str) -> i64 {
    server.db().query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

/// The text a ledger event's hash covers, computed independently of the server: the
/// canonical JSON (keys sorted, no whitespace) of the event without `hash`.
fn record_text(event: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect::<Map<_, _>>())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut record = event.clone();
    record.as_object_mut().unwrap().remove("hash");
    serde_json::to_string(&sorted(&record)).unwrap()
}

/// The documented hash: SHA-256 of the record text followed by `prevHash`, in hex.
fn expected_hash(event: &Value) -> String {
    let prev_hash = event["prevHash"].as_str().unwrap();
    hex::encode(Sha256::digest(format!("{}{prev_hash}", record_text(event)).as_bytes()))
}

#[tokio::test]
async fn pulse_ingests_events_and_answers_queries_with_counts_filters_and_buckets() {
    let server = Server::start();

    let one = server
        .post(
            "/api/v1/pulse/events",
            json!({
                "name": "signup", "userId": "u1", "timestamp": "2025-01-31T12:00:00Z", "stageAppId": "app_a",
                "meta": { "plan": "pro", "seats": 3, "trial": true },
            }),
        )
        .await;
    assert_eq!(one.status, 201, "{:?}", one.body);
    assert_shape(
        &one.body,
        &json!({ "success": true, "data": {
            "id": "<id:evt_>", "name": "signup", "serviceId": null, "sessionId": null, "userId": "u1",
            "source": null, "timestamp": "2025-01-31T12:00:00.000Z", "meta": { "plan": "pro", "seats": 3, "trial": true },
            "stageAppId": "app_a", "authorEmail": "admin@localhost", "receivedAt": "<time>",
        }}),
    );

    let batch = server
        .post(
            "/api/v1/pulse/events/batch",
            json!({ "events": [
                { "name": "signup", "timestamp": "2025-01-31T12:30:00Z", "stageAppId": "app_b", "serviceId": "web",
                  "sessionId": "s1", "source": "landing" },
                { "name": "view", "timestamp": "2025-01-31T13:05:00+01:00", "stageAppId": "app_a" },
                { "name": "view", "timestamp": 1_738_328_400_000_i64, "stageAppId": "app_a" },
                { "name": "view", "timestamp": "2025-02-01T09:00:00Z", "stageAppId": "app_a",
                  "authorEmail": "someone@example.com" },
            ]}),
        )
        .await;
    assert_eq!(batch.status, 201, "{:?}", batch.body);
    assert_shape(
        &batch.body,
        &json!({ "success": true, "data": {
            "count": 4, "ids": ["<id:evt_>", "<id:evt_>", "<id:evt_>", "<id:evt_>"],
        }}),
    );

    let all = server.get("/api/v1/pulse/events").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let data = &all.body["data"];
    assert_eq!(data["total"], 5);
    assert_eq!(data["counts"], json!({ "signup": 2, "view": 3 }));
    let times: Vec<&str> =
        data["events"].as_array().unwrap().iter().map(|e| e["timestamp"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2025-02-01T09:00:00.000Z",
            "2025-01-31T13:00:00.000Z",
            "2025-01-31T12:30:00.000Z",
            "2025-01-31T12:05:00.000Z",
            "2025-01-31T12:00:00.000Z"
        ],
        "newest first, offsets and Unix ms normalised to UTC"
    );
    assert_shape(
        &data["events"][2],
        &json!({
            "id": batch.body["data"]["ids"][0], "name": "signup", "serviceId": "web", "sessionId": "s1",
            "userId": null, "source": "landing", "timestamp": "2025-01-31T12:30:00.000Z", "meta": {},
            "stageAppId": "app_b", "authorEmail": "admin@localhost", "receivedAt": "<time>",
        }),
    );
    assert_eq!(data["events"][0]["authorEmail"], "someone@example.com", "a given authorEmail is kept");
    assert_eq!(data["events"][4], one.body["data"], "a stored event reads back as it was answered");
    assert!(data.get("buckets").is_none());

    let query = |path: &'static str| {
        let server = &server;
        async move {
            let answer = server.get(path).await;
            assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
            answer.body["data"].clone()
        }
    };
    let names = |data: &Value| -> Vec<String> {
        data["events"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_owned()).collect()
    };

    let views = query("/api/v1/pulse/events?name=view").await;
    assert_eq!((views["total"].clone(), views["counts"].clone()), (json!(3), json!({ "view": 3 })));
    assert_eq!(names(&views), ["view", "view", "view"]);

    let app_a = query("/api/v1/pulse/events?stageAppId=app_a").await;
    assert_eq!((app_a["total"].clone(), app_a["counts"].clone()), (json!(4), json!({ "signup": 1, "view": 3 })));

    // `since` is inclusive, `until` exclusive.
    let window = query("/api/v1/pulse/events?since=2025-01-31T12:05:00Z&until=2025-01-31T13:00:00Z").await;
    assert_eq!(names(&window), ["signup", "view"]);
    assert_eq!((window["total"].clone(), window["counts"].clone()), (json!(2), json!({ "signup": 1, "view": 1 })));
    let since_ms = query("/api/v1/pulse/events?since=1738328400000").await;
    assert_eq!(since_ms["total"], 2);
    let until_day = query("/api/v1/pulse/events?until=2025-02-01&name=view").await;
    assert_eq!(until_day["total"], 2);

    // The page is limited; counts and total cover every match.
    let page = query("/api/v1/pulse/events?limit=2").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!((page["total"].clone(), page["counts"].clone()), (json!(5), json!({ "signup": 2, "view": 3 })));

    let hours = query("/api/v1/pulse/events?bucket=hour").await;
    assert_eq!(
        hours["buckets"],
        json!([
            { "start": "2025-01-31T12:00:00.000Z", "counts": { "signup": 2, "view": 1 } },
            { "start": "2025-01-31T13:00:00.000Z", "counts": { "view": 1 } },
            { "start": "2025-02-01T09:00:00.000Z", "counts": { "view": 1 } },
        ])
    );
    let days = query("/api/v1/pulse/events?bucket=day&stageAppId=app_a").await;
    assert_eq!(
        days["buckets"],
        json!([
            { "start": "2025-01-31T00:00:00.000Z", "counts": { "signup": 1, "view": 2 } },
            { "start": "2025-02-01T00:00:00.000Z", "counts": { "view": 1 } },
        ])
    );
    let minutes = query("/api/v1/pulse/events?bucket=minute&name=signup").await;
    assert_eq!(
        minutes["buckets"],
        json!([
            { "start": "2025-01-31T12:00:00.000Z", "counts": { "signup": 1 } },
            { "start": "2025-01-31T12:30:00.000Z", "counts": { "signup": 1 } },
        ])
    );

    // What was stored.
    assert_eq!(count_rows(&server, "pulse_events"), 5);
    let (tenant, meta, stamp): (String, String, String) = server
        .db()
        .query_row(
            "SELECT tenant_id, meta, timestamp FROM pulse_events WHERE id = ?1",
            [one.body["data"]["id"].as_str().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(tenant, "default");
    assert_eq!(serde_json::from_str::<Value>(&meta).unwrap(), json!({ "plan": "pro", "seats": 3, "trial": true }));
    assert_eq!(stamp, "2025-01-31T12:00:00.000Z");
}

#[tokio::test]
async fn a_pulse_event_without_a_timestamp_is_stamped_now() {
    let server = Server::start();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let event = server.post("/api/v1/pulse/events", json!({ "name": "ping" })).await;
    assert_eq!(event.status, 201, "{:?}", event.body);
    let stamp = event.body["data"]["timestamp"].as_str().unwrap();
    assert!(stamp.ends_with('Z') && stamp.len() == "2025-01-31T12:00:00.000Z".len(), "{stamp}");
    let received = event.body["data"]["receivedAt"].as_i64().unwrap();
    assert!(received >= before, "{received} < {before}");
}

#[tokio::test]
async fn one_bad_event_refuses_the_whole_batch_naming_its_index() {
    let server = Server::start();
    let refused = server
        .post(
            "/api/v1/pulse/events/batch",
            json!({ "events": [{ "name": "a" }, { "name": "b" }, { "name": "c", "meta": { "nested": { "x": 1 } } }] }),
        )
        .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    assert_shape(
        &refused.body,
        &json!({ "success": false, "error": {
            "code": "VALIDATION_FAILED",
            "message": "events[2].meta.nested must be a string, number or boolean, got an object",
            "details": { "index": 2, "field": "meta.nested" },
        }}),
    );

    let missing_name = server.post("/api/v1/pulse/events/batch", json!({ "events": [{ "name": "a" }, {}] })).await;
    assert_eq!(missing_name.status, 422);
    assert_eq!(missing_name.body["error"]["details"], json!({ "index": 1, "field": "name" }));
    assert!(missing_name.body["error"]["message"].as_str().unwrap().starts_with("events[1].name is required"));

    let oversize = json!({ "name": "big", "meta": { "blob": "x".repeat(33 * 1024) } });
    let too_big = server.post("/api/v1/pulse/events/batch", json!({ "events": [{ "name": "a" }, oversize] })).await;
    assert_eq!(too_big.status, 413, "{:?}", too_big.body);
    assert_eq!(too_big.body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(too_big.body["error"]["details"], json!({ "index": 1, "field": "" }));
    assert!(too_big.body["error"]["message"].as_str().unwrap().starts_with("events[1] is "));

    let too_many: Vec<Value> = (0..501).map(|i| json!({ "name": format!("e{i}") })).collect();
    let refused = server.post("/api/v1/pulse/events/batch", json!({ "events": too_many })).await;
    assert_eq!(refused.status, 413, "{:?}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("at most 500"));

    assert_eq!(count_rows(&server, "pulse_events"), 0, "a refused batch stores nothing");

    // The largest batch is accepted whole.
    let most: Vec<Value> = (0..500).map(|i| json!({ "name": format!("e{}", i % 3) })).collect();
    let accepted = server.post("/api/v1/pulse/events/batch", json!({ "events": most })).await;
    assert_eq!(accepted.status, 201, "{:?}", accepted.body);
    assert_eq!(accepted.body["data"]["count"], 500);
    assert_eq!(count_rows(&server, "pulse_events"), 500);
    let empty = server.post("/api/v1/pulse/events/batch", json!({ "events": [] })).await;
    assert_eq!(empty.status, 201);
    assert_eq!(empty.body["data"], json!({ "count": 0, "ids": [] }));
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_a_different_body() {
    let server = Server::start();
    let key = [("idempotency-key", "step-run_1-track-0")];
    // No timestamp: the replay must answer the first stamp, not a new one.
    let body = json!({ "name": "checkout", "meta": { "cart": 3, "coupon": "X" } });

    let first = send_with_headers(&server, Method::POST, "/api/v1/pulse/events", &body, &key).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    // The same request with its keys in another order is the same request.
    let reordered = json!({ "meta": { "coupon": "X", "cart": 3 }, "name": "checkout" });
    let replay = send_with_headers(&server, Method::POST, "/api/v1/pulse/events", &reordered, &key).await;
    assert_eq!(replay.status, 200, "{:?}", replay.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, first.body);
    assert_eq!(count_rows(&server, "pulse_events"), 1);

    let different = json!({ "name": "checkout", "meta": { "cart": 4 } });
    let conflict = send_with_headers(&server, Method::POST, "/api/v1/pulse/events", &different, &key).await;
    assert_eq!(conflict.status, 409, "{:?}", conflict.body);
    assert_eq!(conflict.body["error"]["code"], "CONFLICT");
    assert!(conflict.body["error"]["message"].as_str().unwrap().contains("step-run_1-track-0"));
    assert_eq!(count_rows(&server, "pulse_events"), 1);

    // Keys are per route: the batch route has its own.
    let batch = json!({ "events": [{ "name": "a" }, { "name": "b" }] });
    let first_batch = send_with_headers(&server, Method::POST, "/api/v1/pulse/events/batch", &batch, &key).await;
    assert_eq!(first_batch.status, 201, "{:?}", first_batch.body);
    let batch_replay = send_with_headers(&server, Method::POST, "/api/v1/pulse/events/batch", &batch, &key).await;
    assert_eq!((batch_replay.status, &batch_replay.body), (200, &first_batch.body));
    assert_eq!(count_rows(&server, "pulse_events"), 3);

    // The ledger: a replay appends nothing and answers the same seq and hash.
    let audit = json!({ "operation": "export", "dataRefs": [{ "field": "email", "classification": "pii" }] });
    let appended = send_with_headers(&server, Method::POST, "/api/v1/ledger/events", &audit, &key).await;
    assert_eq!(appended.status, 201, "{:?}", appended.body);
    let again = send_with_headers(&server, Method::POST, "/api/v1/ledger/events", &audit, &key).await;
    assert_eq!((again.status, &again.body), (200, &appended.body));
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let other = json!({ "operation": "delete" });
    let conflict = send_with_headers(&server, Method::POST, "/api/v1/ledger/events", &other, &key).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(count_rows(&server, "ledger_events"), 1);
    let next = server.post("/api/v1/ledger/events", json!({ "operation": "read" })).await;
    assert_eq!(next.body["data"]["seq"], 2, "the replay did not take a seq");

    // Malformed keys are refused before anything is stored.
    let long = "k".repeat(256);
    for bad in [long.as_str(), "   "] {
        let refused =
            send_with_headers(&server, Method::POST, "/api/v1/pulse/events", &body, &[("idempotency-key", bad)]).await;
        assert_eq!(refused.status, 400, "{bad:?}: {:?}", refused.body);
        assert!(refused.body["error"]["message"].as_str().unwrap().contains("Idempotency-Key"));
    }
    assert_eq!(count_rows(&server, "pulse_events"), 3);
    assert_eq!(count_rows(&server, "service_idempotency_keys"), 3);
}

#[tokio::test]
async fn the_ledger_chains_events_and_verify_names_the_first_tampered_seq() {
    let server = Server::start();
    let first = server
        .post(
            "/api/v1/ledger/events",
            json!({
                "operation": "read", "actor": "alice@example.com", "timestamp": "2025-01-31T12:00:00Z",
                "source": { "service": "sheets", "location": "Sheet1!A1:B2" }, "destination": { "service": "billing" },
                "dataRefs": [{ "field": "email", "classification": "pii" }, { "field": "total", "classification": "internal" }],
                "status": "warn", "meta": { "rows": 2, "note": { "nested": ["ok"] } }, "stageAppId": "app_a",
            }),
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_shape(
        &first.body,
        &json!({ "success": true, "data": {
            "seq": 1, "operation": "read", "serviceId": "stage", "actor": "alice@example.com", "actorType": "user",
            "timestamp": "2025-01-31T12:00:00.000Z",
            "source": { "service": "sheets", "location": "Sheet1!A1:B2" }, "destination": { "service": "billing" },
            "dataRefs": [{ "field": "email", "classification": "pii" }, { "field": "total", "classification": "internal" }],
            "status": "warn", "meta": { "rows": 2, "note": { "nested": ["ok"] } }, "stageAppId": "app_a",
            "authorEmail": "admin@localhost", "receivedAt": "<time>", "prevHash": GENESIS, "hash": "<string>",
        }}),
    );
    assert_eq!(first.body["data"]["hash"], expected_hash(&first.body["data"]));

    // Defaults: the caller is the actor, serviceId "stage", status pass, empty refs and meta.
    let second = server.post("/api/v1/ledger/events", json!({ "operation": "write", "serviceId": "billing" })).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_shape(
        &second.body["data"],
        &json!({
            "seq": 2, "operation": "write", "serviceId": "billing", "actor": "admin@localhost", "actorType": "user",
            "timestamp": "<string>", "source": null, "destination": null, "dataRefs": [], "status": "pass", "meta": {},
            "stageAppId": null, "authorEmail": "admin@localhost", "receivedAt": "<time>",
            "prevHash": first.body["data"]["hash"], "hash": "<string>",
        }),
    );
    let third = server
        .post("/api/v1/ledger/events", json!({ "operation": "share", "actorType": "service", "meta": { "to": "x" } }))
        .await;
    assert_eq!(third.status, 201, "{:?}", third.body);

    let listed = server.get("/api/v1/ledger/events").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let events = listed.body["data"]["events"].as_array().unwrap().clone();
    assert_eq!(events.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(events[0], first.body["data"], "an event reads back as it was answered");
    assert_eq!(events[0]["prevHash"], GENESIS);
    for pair in events.windows(2) {
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"], "each event links to the one before");
    }
    for event in &events {
        assert_eq!(event["hash"], expected_hash(event), "seq {}", event["seq"]);
    }
    let of_app = server.get("/api/v1/ledger/events?stageAppId=app_a").await;
    assert_eq!(of_app.body["data"]["events"], json!([events[0]]));
    let page = server.get("/api/v1/ledger/events?afterSeq=1&limit=1").await;
    assert_eq!(page.body["data"]["events"], json!([events[1]]));

    let verified = server.get("/api/v1/ledger/verify").await;
    assert_eq!(verified.status, 200);
    assert_shape(
        &verified.body,
        &json!({ "success": true, "data": { "ok": true, "count": 3, "firstBrokenSeq": null } }),
    );

    // Tampering with any column of a stored row breaks the chain at that row.
    let db = rusqlite::Connection::open(server.data_dir.join("stage.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let verify = || async {
        let answer = server.get("/api/v1/ledger/verify").await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        answer.body["data"].clone()
    };
    let tamper = |sql: &str| db.execute(sql, []).unwrap();
    let broken_at = |seq: i64| json!({ "ok": false, "count": 3, "firstBrokenSeq": seq });

    tamper("UPDATE ledger_events SET operation = 'delete' WHERE tenant_id = 'default' AND seq = 2");
    assert_eq!(verify().await, broken_at(2));
    tamper("UPDATE ledger_events SET operation = 'write' WHERE tenant_id = 'default' AND seq = 2");
    assert_eq!(verify().await, json!({ "ok": true, "count": 3, "firstBrokenSeq": null }), "restoring the value heals");

    tamper(r#"UPDATE ledger_events SET meta = '{"to":"y"}' WHERE tenant_id = 'default' AND seq = 3"#);
    assert_eq!(verify().await, broken_at(3));
    tamper(r#"UPDATE ledger_events SET meta = '{"to":"x"}' WHERE tenant_id = 'default' AND seq = 3"#);

    tamper("UPDATE ledger_events SET actor = 'mallory@example.com' WHERE tenant_id = 'default' AND seq = 1");
    assert_eq!(verify().await, broken_at(1));
    tamper("UPDATE ledger_events SET actor = 'alice@example.com' WHERE tenant_id = 'default' AND seq = 1");

    tamper(r#"UPDATE ledger_events SET data_refs = '[]' WHERE tenant_id = 'default' AND seq = 1"#);
    assert_eq!(verify().await, broken_at(1));
    tamper(&format!(
        "UPDATE ledger_events SET data_refs = '{}' WHERE tenant_id = 'default' AND seq = 1",
        events[0]["dataRefs"]
    ));
    assert_eq!(verify().await["ok"], true);

    // Rewriting a row's record and re-hashing it consistently breaks the next row's link.
    let mut forged = events[1].clone();
    forged["operation"] = json!("delete");
    let forged_hash = expected_hash(&forged);
    let original: (String, String, String) = db
        .query_row(
            "SELECT operation, record, hash FROM ledger_events WHERE tenant_id = 'default' AND seq = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    db.execute(
        "UPDATE ledger_events SET operation = 'delete', record = ?1, hash = ?2 WHERE tenant_id = 'default' AND seq = 2",
        rusqlite::params![record_text(&forged), forged_hash],
    )
    .unwrap();
    assert_eq!(verify().await, broken_at(3));
    db.execute(
        "UPDATE ledger_events SET operation = ?1, record = ?2, hash = ?3 WHERE tenant_id = 'default' AND seq = 2",
        rusqlite::params![original.0, original.1, original.2],
    )
    .unwrap();
    assert_eq!(verify().await["ok"], true);

    // A removed row breaks the chain where it was.
    tamper("DELETE FROM ledger_events WHERE tenant_id = 'default' AND seq = 2");
    assert_eq!(verify().await, json!({ "ok": false, "count": 2, "firstBrokenSeq": 2 }));
}

#[tokio::test]
async fn tenants_have_separate_events_chains_and_keys_and_credentials_are_required() {
    let server = Server::start_with(&["--auth", "required"]);
    let admin_key = format!("Bearer {}", server.admin_key());
    let admin = Some(admin_key.as_str());

    // Without credentials every service route answers 401 and stores nothing.
    for (method, path, body) in [
        (Method::POST, "/api/v1/pulse/events", Some(json!({ "name": "x" }))),
        (Method::POST, "/api/v1/pulse/events/batch", Some(json!({ "events": [{ "name": "x" }] }))),
        (Method::GET, "/api/v1/pulse/events", None),
        (Method::POST, "/api/v1/ledger/events", Some(json!({ "operation": "read", "actor": "a" }))),
        (Method::GET, "/api/v1/ledger/events", None),
        (Method::GET, "/api/v1/ledger/verify", None),
    ] {
        let refused = server.send(method.clone(), path, body.clone(), None).await;
        assert_eq!(refused.status, 401, "{method} {path}: {:?}", refused.body);
        assert_eq!(refused.body["error"]["code"], "UNAUTHORIZED");
        let bad_key = server.send(method.clone(), path, body, Some("Bearer stage_sk_wrong")).await;
        assert_eq!(bad_key.status, 401, "{method} {path}");
    }
    assert_eq!(count_rows(&server, "pulse_events") + count_rows(&server, "ledger_events"), 0);
    // Unknown paths and methods keep their answers.
    assert_eq!(server.get("/api/v1/pulse/nope").await.status, 404);
    assert_eq!(server.send(Method::DELETE, "/api/v1/ledger/events", None, admin).await.status, 405);

    let acme = server.send(Method::POST, "/api/v1/admin/tenants", Some(json!({ "id": "acme" })), admin).await;
    assert_eq!(acme.status, 201, "{:?}", acme.body);
    let acme_key = format!("Bearer {}", acme.body["data"]["apiKey"]["secret"].as_str().unwrap());
    let acme = Some(acme_key.as_str());

    for operation in ["read", "write"] {
        let appended =
            server.send(Method::POST, "/api/v1/ledger/events", Some(json!({ "operation": operation })), admin).await;
        assert_eq!(appended.status, 201, "{:?}", appended.body);
    }
    let tracked = server.send(Method::POST, "/api/v1/pulse/events", Some(json!({ "name": "home" })), admin).await;
    assert_eq!(tracked.status, 201);

    // The other tenant's chain starts at seq 1 from the genesis hash.
    let theirs = server.send(Method::POST, "/api/v1/ledger/events", Some(json!({ "operation": "export" })), acme).await;
    assert_eq!(theirs.status, 201, "{:?}", theirs.body);
    assert_eq!(theirs.body["data"]["seq"], 1);
    assert_eq!(theirs.body["data"]["prevHash"], GENESIS);
    assert_eq!(theirs.body["data"]["actor"], "admin@acme");
    assert_eq!(theirs.body["data"]["hash"], expected_hash(&theirs.body["data"]));

    let their_list = server.send(Method::GET, "/api/v1/ledger/events", None, acme).await;
    assert_eq!(their_list.body["data"]["events"], json!([theirs.body["data"]]));
    let their_pulse = server.send(Method::GET, "/api/v1/pulse/events", None, acme).await;
    assert_eq!(their_pulse.body["data"], json!({ "events": [], "counts": {}, "total": 0 }));
    let ours = server.send(Method::GET, "/api/v1/pulse/events", None, admin).await;
    assert_eq!(ours.body["data"]["total"], 1);

    // Tampering with one tenant's chain leaves the other's intact.
    let db = rusqlite::Connection::open(server.data_dir.join("stage.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute("UPDATE ledger_events SET status = 'fail' WHERE tenant_id = 'default' AND seq = 1", []).unwrap();
    let our_verify = server.send(Method::GET, "/api/v1/ledger/verify", None, admin).await;
    assert_eq!(our_verify.body["data"], json!({ "ok": false, "count": 2, "firstBrokenSeq": 1 }));
    let their_verify = server.send(Method::GET, "/api/v1/ledger/verify", None, acme).await;
    assert_eq!(their_verify.body["data"], json!({ "ok": true, "count": 1, "firstBrokenSeq": null }));

    // The same idempotency key in two tenants names two different writes.
    let key = [("idempotency-key", "shared-key")];
    let body = json!({ "name": "signup" });
    let ours = send_with_headers(
        &server,
        Method::POST,
        "/api/v1/pulse/events",
        &body,
        &[key[0], ("authorization", admin_key.as_str())],
    )
    .await;
    let theirs = send_with_headers(
        &server,
        Method::POST,
        "/api/v1/pulse/events",
        &body,
        &[key[0], ("authorization", acme_key.as_str())],
    )
    .await;
    assert_eq!((ours.status, theirs.status), (201, 201));
    assert_ne!(ours.body["data"]["id"], theirs.body["data"]["id"]);
    let tenants: Vec<String> = server
        .db()
        .prepare("SELECT tenant_id FROM pulse_events ORDER BY tenant_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(tenants, ["acme", "default", "default"]);
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_naming_the_field_and_stores_nothing() {
    let server = Server::start();
    let big = "x".repeat(33 * 1024);
    let pulse = "/api/v1/pulse/events";
    let batch = "/api/v1/pulse/events/batch";
    let ledger = "/api/v1/ledger/events";
    let read = |extra: Value| {
        let mut event = json!({ "operation": "read", "actor": "a@example.com" });
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        event
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        // Pulse events.
        (pulse, json!({}), 422, "name is required"),
        (pulse, json!({ "name": 5 }), 422, "name must be a string"),
        (pulse, json!({ "name": "  " }), 422, "name must not be empty"),
        (pulse, json!({ "name": "n".repeat(201) }), 422, "name must be at most 200"),
        (pulse, json!({ "name": "a", "userId": 7 }), 422, "userId must be a string"),
        (pulse, json!({ "name": "a", "sessionId": ["s"] }), 422, "sessionId"),
        (pulse, json!({ "name": "a", "timestamp": "yesterday" }), 422, "timestamp must be an ISO-8601"),
        (pulse, json!({ "name": "a", "timestamp": true }), 422, "timestamp"),
        (pulse, json!({ "name": "a", "timestamp": -5 }), 422, "timestamp"),
        (pulse, json!({ "name": "a", "timestamp": "2025-01-31T12:00:00" }), 422, "timestamp"),
        (
            pulse,
            json!({ "name": "a", "meta": { "deep": { "x": 1 } } }),
            422,
            "meta.deep must be a string, number or boolean",
        ),
        (pulse, json!({ "name": "a", "meta": { "list": [1] } }), 422, "meta.list"),
        (pulse, json!({ "name": "a", "meta": { "nothing": null } }), 422, "meta.nothing"),
        (pulse, json!({ "name": "a", "meta": [1] }), 422, "meta must be an object"),
        (pulse, json!({ "name": "a", "properties": {} }), 422, "properties is not a known field"),
        (pulse, json!({ "name": "a", "meta": { "blob": big } }), 413, "an event may be at most 32768 bytes"),
        // Pulse batches.
        (batch, json!({}), 422, "events is required"),
        (batch, json!({ "events": { "name": "a" } }), 422, "events must be an array"),
        (batch, json!({ "events": [{ "name": "a" }, 3] }), 422, "events[1] must be an object"),
        (batch, json!({ "events": [{ "name": "a", "meta": { "k": {} } }] }), 422, "events[0].meta.k"),
        (batch, json!({ "events": [], "batch": [] }), 422, "batch is not a known field"),
        // Ledger events.
        (ledger, json!({}), 422, "operation is required"),
        (ledger, json!({ "operation": "steal" }), 422, "operation must be one of"),
        (ledger, json!({ "operation": 1 }), 422, "operation"),
        (ledger, read(json!({ "actor": "" })), 422, "actor must not be empty"),
        (ledger, read(json!({ "actorType": "robot" })), 422, "actorType must be one of"),
        (ledger, read(json!({ "status": "ok" })), 422, "status must be one of"),
        (ledger, read(json!({ "serviceId": 3 })), 422, "serviceId must be a string"),
        (ledger, read(json!({ "timestamp": "2025-13-01T00:00:00Z" })), 422, "timestamp"),
        (ledger, read(json!({ "source": "sheets" })), 422, "source must be an object"),
        (ledger, read(json!({ "source": { "location": "A1" } })), 422, "source.service is required"),
        (ledger, read(json!({ "destination": { "service": "x", "path": "/" } })), 422, "destination.path"),
        (ledger, read(json!({ "dataRefs": {} })), 422, "dataRefs must be an array"),
        (ledger, read(json!({ "dataRefs": [{ "field": "email" }] })), 422, "dataRefs[0].classification is required"),
        (
            ledger,
            read(
                json!({ "dataRefs": [{ "field": "a", "classification": "pii" }, { "field": "b", "classification": "secret" }] }),
            ),
            422,
            "dataRefs[1].classification must be one of",
        ),
        (ledger, read(json!({ "dataRefs": [{ "field": "", "classification": "pii" }] })), 422, "dataRefs[0].field"),
        (ledger, read(json!({ "meta": "x" })), 422, "meta must be an object"),
        (ledger, read(json!({ "hash": "00" })), 422, "hash is not a known field"),
        (ledger, read(json!({ "meta": { "blob": big } })), 413, "32768"),
    ];
    for (path, body, status, needle) in cases {
        let answer = server.post(path, body.clone()).await;
        assert_eq!(answer.status, status, "{path} {body}: {:?}", answer.body);
        assert_eq!(answer.body["success"], false);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path} {body}: {message:?} should contain {needle:?}");
    }

    for (path, needle) in [
        ("/api/v1/pulse/events?limit=0", "limit"),
        ("/api/v1/pulse/events?limit=1001", "limit"),
        ("/api/v1/pulse/events?limit=ten", "limit"),
        ("/api/v1/pulse/events?since=yesterday", "since"),
        ("/api/v1/pulse/events?until=2025-02-30", "until"),
        ("/api/v1/pulse/events?bucket=week", "bucket"),
        ("/api/v1/pulse/events?colour=red", "colour"),
        ("/api/v1/ledger/events?afterSeq=-1", "afterSeq"),
        ("/api/v1/ledger/events?limit=5000", "limit"),
        ("/api/v1/ledger/events?colour=red", "colour"),
    ] {
        let answer = server.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {:?}", answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path}: {message:?} should name {needle:?}");
    }

    for path in [pulse, batch, ledger] {
        for raw in [&b"{"[..], b"not json", b"{\"name\":\"a\"} trailing", b"\xff\xfe"] {
            let answer = server.send_raw(Method::POST, path, raw.to_vec()).await;
            assert_eq!(answer.status, 400, "{path} {raw:?}: {:?}", answer.body);
            assert_eq!(answer.body["error"]["code"], "BAD_REQUEST");
        }
        for raw in [&b"[]"[..], b"null", b"42", b"\"event\""] {
            let answer = server.send_raw(Method::POST, path, raw.to_vec()).await;
            assert_eq!(answer.status, 422, "{path} {raw:?}: {:?}", answer.body);
        }
    }

    assert_eq!(count_rows(&server, "pulse_events"), 0);
    assert_eq!(count_rows(&server, "ledger_events"), 0);
    assert_eq!(count_rows(&server, "service_idempotency_keys"), 0);
    // The services still work after the sweep.
    assert_eq!(server.post(pulse, json!({ "name": "ok" })).await.status, 201);
    assert_eq!(server.post(ledger, read(json!({}))).await.status, 201);
}

#[tokio::test]
async fn concurrent_appends_form_one_chain_and_a_contended_key_writes_once() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let mut appends = tokio::task::JoinSet::new();
    for i in 0..24 {
        let request =
            client.post(server.url("/api/v1/ledger/events")).json(&json!({ "operation": "write", "meta": { "i": i } }));
        appends.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    while let Some(status) = appends.join_next().await {
        assert_eq!(status.unwrap(), 201);
    }
    let verified = server.get("/api/v1/ledger/verify").await;
    assert_eq!(verified.body["data"], json!({ "ok": true, "count": 24, "firstBrokenSeq": null }));
    let seqs: Vec<i64> = server
        .db()
        .prepare("SELECT seq FROM ledger_events WHERE tenant_id = 'default' ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seqs, (1..=24).collect::<Vec<_>>());

    let mut contended = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = client
            .post(server.url("/api/v1/pulse/events"))
            .header("idempotency-key", "same-step")
            .json(&json!({ "name": "once" }));
        contended.spawn(async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json")["data"].clone())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = contended.join_next().await {
        answers.push(answer.unwrap());
    }
    assert_eq!(answers.iter().filter(|(status, _)| *status == 201).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|(status, data)| matches!(status, 200 | 201) && *data == answers[0].1));
    assert_eq!(count_rows(&server, "pulse_events"), 1);
}
