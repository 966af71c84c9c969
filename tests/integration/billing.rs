//! The billing service at `/api/v1/billing` and the `billing.createItem` step: item shape,
//! validation, idempotency keys, tenant isolation, and forwarding to a local Stripe-compatible
//! receiver whose answers (success, 5xx, 429, 4xx) drive the step's retries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Answer, Server, assert_shape};

const ITEMS: &str = "/api/v1/billing/items";
const STRIPE_KEY: &str = "sk_test_stage_51Hx9";
const APP_TSX: &str = "export default function App() { return <h1>Billing</h1>; }";

fn count_items(server: &Server) -> i64 {
    server.db().query_row("SELECT COUNT(*) FROM billing_items", [], |r| r.get(0)).unwrap()
}

async fn create(server: &Server, body: Value, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|key| ("idempotency-key", key)).into_iter().collect();
    server.send_with(Method::POST, ITEMS, body, &headers).await
}

/// An app whose `charge` workflow is the DESIGN §4 billing step followed by a response.
/// `step_options` are merged into the billing step (e.g. a retry policy).
fn billing_app(step_options: Value) -> Value {
    let mut charge = json!({ "id": "charge", "billing.createItem": {
        "customer": "{{ input.customerEmail }}",
        "amountCents": "{{ input.amountCents }}",
        "currency": "usd",
        "metadata": { "plan": "pro", "seats": 3, "trial": false } } });
    for (key, value) in step_options.as_object().unwrap() {
        charge[key] = value.clone();
    }
    let workflows = json!({ "version": 1, "workflows": { "charge": { "auth": "public", "steps": [
        charge,
        { "response": { "status": 201, "body": {
            "itemId": "{{ steps.charge.id }}",
            "stripeId": "{{ steps.charge.stripeId }}",
            "amountCents": "{{ steps.charge.amountCents }}" } } }
    ] } } });
    json!({ "/app/App.tsx": APP_TSX, "/app/shift.workflows.json": workflows.to_string() })
}

async fn charge(server: &Server, sid: &str, customer: &str, amount_cents: i64, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|key| ("idempotency-key", key)).into_iter().collect();
    let input = json!({ "input": { "customerEmail": customer, "amountCents": amount_cents } });
    server.send_with(Method::POST, &format!("/api/v1/run/{sid}/charge"), input, &headers).await
}

async fn run_record(server: &Server, answer: &Answer) -> Value {
    let run_id = answer.headers["x-stage-run-id"].to_str().unwrap();
    let record = server.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(record.status, 200, "{:?}", record.body);
    record.body["data"].clone()
}

#[tokio::test]
async fn items_are_created_listed_and_read_over_the_api() {
    let server = Server::start();
    let ada = create(
        &server,
        json!({ "customer": "cus_ada", "amountCents": 1250, "currency": "usd", "description": "Pro plan",
                "metadata": { "plan": "pro", "seats": 3, "trial": true } }),
        None,
    )
    .await;
    assert_eq!(ada.status, 201, "{:?}", ada.body);
    assert_shape(
        &ada.body,
        &json!({ "success": true, "data": {
            "id": "<id:bi_>", "appSid": null, "customer": "cus_ada", "amountCents": 1250, "currency": "usd",
            "description": "Pro plan", "quantity": 1, "metadata": { "plan": "pro", "seats": 3, "trial": true },
            "stripeId": null, "createdAt": "<time>",
        }}),
    );
    let credit = create(
        &server,
        json!({ "customer": "cus_bob", "amountCents": -300, "currency": "eur", "quantity": 2, "appSid": "app_a" }),
        None,
    )
    .await;
    assert_eq!(credit.status, 201, "{:?}", credit.body);
    assert_shape(
        &credit.body["data"],
        &json!({
            "id": "<id:bi_>", "appSid": "app_a", "customer": "cus_bob", "amountCents": -300, "currency": "eur",
            "description": null, "quantity": 2, "metadata": {}, "stripeId": null, "createdAt": "<time>",
        }),
    );
    let again = create(
        &server,
        json!({ "customer": "cus_ada", "amountCents": 99, "currency": "usd", "appSid": "app_a" }),
        None,
    )
    .await;
    assert_eq!(again.status, 201, "{:?}", again.body);

    // Listings are newest first and filter by app and customer.
    let ids = |answer: &Answer| -> Vec<String> {
        let items = answer.body["data"]["items"].as_array().unwrap();
        items.iter().map(|item| item["id"].as_str().unwrap().to_owned()).collect()
    };
    let id_of = |answer: &Answer| answer.body["data"]["id"].as_str().unwrap().to_owned();
    let (ada_id, credit_id, again_id) = (id_of(&ada), id_of(&credit), id_of(&again));
    let all = server.get(ITEMS).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    assert_eq!(ids(&all), [again_id.as_str(), credit_id.as_str(), ada_id.as_str()]);
    assert_eq!(all.body["data"]["items"][2], ada.body["data"]);
    assert_eq!(ids(&server.get(&format!("{ITEMS}?customer=cus_ada")).await), [again_id.as_str(), ada_id.as_str()]);
    assert_eq!(ids(&server.get(&format!("{ITEMS}?appSid=app_a")).await), [again_id.as_str(), credit_id.as_str()]);
    assert_eq!(ids(&server.get(&format!("{ITEMS}?appSid=app_a&customer=cus_bob")).await), [credit_id.as_str()]);
    assert_eq!(ids(&server.get(&format!("{ITEMS}?limit=1")).await), [again_id.as_str()]);
    assert!(ids(&server.get(&format!("{ITEMS}?customer=cus_nobody")).await).is_empty());
    assert_eq!(server.get(&format!("{ITEMS}?limit=0")).await.status, 400);
    assert_eq!(server.get(&format!("{ITEMS}?colour=red")).await.status, 400);

    // One item by id; unknown ids and other tenants' items are not found.
    let one = server.get(&format!("{ITEMS}/{credit_id}")).await;
    assert_eq!((one.status, &one.body), (200, &credit.body));
    let missing = server.get(&format!("{ITEMS}/bi_missing")).await;
    assert_eq!((missing.status, missing.body["error"]["code"].clone()), (404, json!("NOT_FOUND")));

    let other = server.post("/api/v1/admin/tenants", json!({ "id": "other" })).await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let other_key = format!("Bearer {}", other.body["data"]["apiKey"]["secret"].as_str().unwrap());
    let hidden = server.send(Method::GET, &format!("{ITEMS}/{ada_id}"), None, Some(&other_key)).await;
    assert_eq!((hidden.status, hidden.body["error"]["code"].clone()), (404, json!("NOT_FOUND")));
    let listed = server.send(Method::GET, ITEMS, None, Some(&other_key)).await;
    assert_eq!(listed.body["data"]["items"], json!([]));
    // The same idempotency key in another tenant is another item.
    let body = json!({ "customer": "cus_ada", "amountCents": 5, "currency": "usd" });
    let mine = create(&server, body.clone(), Some("shared-key")).await;
    let theirs = server
        .send_with(Method::POST, ITEMS, body, &[("idempotency-key", "shared-key"), ("authorization", &other_key)])
        .await;
    assert_eq!((mine.status, theirs.status), (201, 201), "{:?}", theirs.body);
    assert_ne!(mine.body["data"]["id"], theirs.body["data"]["id"]);

    // Without credentials there is no billing.
    let server_with_keys = Server::start_with(&["--auth", "required"]);
    let refused = server_with_keys.get(ITEMS).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
}

#[tokio::test]
async fn an_idempotency_key_creates_one_item() {
    let server = Server::start();
    let body = json!({ "customer": "cus_ada", "amountCents": 700, "currency": "usd", "metadata": { "order": "A-1" } });
    let first = create(&server, body.clone(), Some("order-A-1")).await;
    let second = create(&server, body.clone(), Some("order-A-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.body, first.body);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert!(first.headers.get("idempotent-replayed").is_none());
    // Spelling out a default is the same request.
    let mut explicit = body.clone();
    explicit["quantity"] = json!(1);
    let third = create(&server, explicit, Some("order-A-1")).await;
    assert_eq!((third.status, &third.body), (200, &first.body));
    assert_eq!(count_items(&server), 1);

    let mut other_amount = body.clone();
    other_amount["amountCents"] = json!(701);
    let reused = create(&server, other_amount, Some("order-A-1")).await;
    assert_eq!(reused.status, 409, "{:?}", reused.body);
    assert_eq!(reused.body["error"]["code"], "CONFLICT");
    assert!(reused.body["error"]["message"].as_str().unwrap().contains("order-A-1"), "{:?}", reused.body);
    assert_eq!(count_items(&server), 1);

    // A different key is a different item.
    assert_eq!(create(&server, body.clone(), Some("order-A-2")).await.status, 201);
    assert_eq!(count_items(&server), 2);

    // Concurrent requests with one key: one item, and every answer is that item.
    let (a, b, c) = tokio::join!(
        create(&server, body.clone(), Some("order-A-3")),
        create(&server, body.clone(), Some("order-A-3")),
        create(&server, body, Some("order-A-3")),
    );
    let mut statuses = [a.status, b.status, c.status];
    statuses.sort();
    assert_eq!(statuses, [200, 200, 201]);
    assert!(a.body == b.body && b.body == c.body, "{:?} {:?} {:?}", a.body, b.body, c.body);
    assert_eq!(count_items(&server), 3);
}

#[tokio::test]
async fn invalid_items_are_refused_naming_the_field_and_store_nothing() {
    let server = Server::start();
    let valid = json!({ "customer": "cus_ada", "amountCents": 1250, "currency": "usd" });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let mut no_customer = valid.clone();
    no_customer.as_object_mut().unwrap().remove("customer");
    for (body, field, says) in [
        (with("amountCents", json!(12.5)), "amountCents", "integer"),
        (with("amountCents", json!("12")), "amountCents", "got a string"),
        (with("amountCents", Value::Null), "amountCents", "is required"),
        (with("currency", json!("USD")), "currency", "ISO 4217"),
        (with("currency", json!("us")), "currency", "lowercase"),
        (no_customer, "customer", "is required"),
        (with("quantity", json!(0)), "quantity", "positive integer"),
        (with("metadata", json!({ "tags": ["a"] })), "metadata.tags", "string, number or boolean"),
        (with("amount", json!(5)), "amount", "not a known field"),
    ] {
        let answer = create(&server, body.clone(), Some(&format!("bad-{field}"))).await;
        assert_eq!(answer.status, 422, "{body}: {:?}", answer.body);
        let error = &answer.body["error"];
        assert_eq!(
            (error["code"].clone(), error["details"]["field"].clone()),
            (json!("VALIDATION_FAILED"), json!(field))
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(field) && message.contains(says), "{message}");
    }
    let malformed = server.send_raw(Method::POST, ITEMS, b"{\"customer\":".to_vec()).await;
    assert_eq!(malformed.status, 400, "{:?}", malformed.body);
    let huge = with("description", json!("x".repeat(40_000)));
    assert_eq!(create(&server, huge, None).await.status, 413);

    assert_eq!(count_items(&server), 0);
    let keys: i64 = server.db().query_row("SELECT COUNT(*) FROM service_idempotency_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(keys, 0, "a refused request does not use up its key");
}

#[tokio::test]
async fn a_workflow_step_creates_one_item_per_run_key() {
    let server = Server::start();
    let sid = server.publish(billing_app(json!({}))).await;

    let first = charge(&server, &sid, "ada@example.com", 1500, Some("checkout-1")).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_shape(&first.body, &json!({ "itemId": "<id:bi_>", "stripeId": null, "amountCents": 1500 }));
    let replay = charge(&server, &sid, "ada@example.com", 1500, Some("checkout-1")).await;
    assert_eq!((replay.status, &replay.body), (201, &first.body));
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(count_items(&server), 1);

    // The item is attributed to the app, and is the step's recorded output.
    let items = server.get(&format!("{ITEMS}?appSid={sid}")).await;
    let item = items.body["data"]["items"][0].clone();
    assert_shape(
        &item,
        &json!({
            "id": first.body["itemId"], "appSid": sid, "customer": "ada@example.com", "amountCents": 1500,
            "currency": "usd", "description": null, "quantity": 1,
            "metadata": { "plan": "pro", "seats": 3, "trial": false }, "stripeId": null, "createdAt": "<time>",
        }),
    );
    let record = run_record(&server, &first).await;
    assert_eq!(record["steps"][0]["kind"], "billing.createItem");
    assert_eq!(record["steps"][0]["output"], item);

    // Without a run key, each run is a new item.
    let second = charge(&server, &sid, "ada@example.com", 1500, None).await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    assert_ne!(second.body["itemId"], first.body["itemId"]);
    assert_eq!(count_items(&server), 2);

    // Bad input from the workflow fails the step as invalid input, naming the field.
    let bad = charge(&server, &sid, "", 1500, None).await;
    assert_eq!(bad.status, 502, "{:?}", bad.body);
    let message = bad.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("customer"), "{message}");
    assert_eq!(bad.body["error"]["details"]["error"]["class"], "invalid-input");
    assert_eq!(count_items(&server), 2);
}

/// One scripted answer of the fake Stripe.
#[derive(Clone)]
struct Scripted {
    status: u16,
    retry_after: Option<&'static str>,
    body: Value,
}

/// A local stand-in for Stripe's `POST /v1/invoiceitems`: records every request and answers
/// the scripted responses in order, then success. Like Stripe, it answers a repeated
/// `Idempotency-Key` with the item it created for that key.
#[derive(Default)]
struct FakeStripe {
    requests: Vec<StripeRequest>,
    script: VecDeque<Scripted>,
    created: HashMap<String, Value>,
}

#[derive(Debug, Clone)]
struct StripeRequest {
    authorization: String,
    idempotency_key: Option<String>,
    content_type: String,
    form: HashMap<String, String>,
}

type Shared = Arc<Mutex<FakeStripe>>;

async fn invoice_items(State(stripe): State<Shared>, headers: HeaderMap, body: String) -> axum::response::Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).expect("a form-encoded body");
    let request = StripeRequest {
        authorization: header("authorization").unwrap_or_default(),
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type").unwrap_or_default(),
        form: form.clone(),
    };
    let mut stripe = stripe.lock().unwrap();
    stripe.requests.push(request.clone());
    if request.authorization != format!("Bearer {STRIPE_KEY}") {
        let error = json!({ "error": { "type": "invalid_request_error", "message": "Invalid API Key provided" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    if let Some(scripted) = stripe.script.pop_front() {
        let mut response = (StatusCode::from_u16(scripted.status).unwrap(), axum::Json(scripted.body)).into_response();
        if let Some(seconds) = scripted.retry_after {
            response.headers_mut().insert("retry-after", seconds.parse().unwrap());
        }
        return response;
    }
    let key = request.idempotency_key.clone().unwrap_or_default();
    if let Some(item) = stripe.created.get(&key) {
        return axum::Json(item.clone()).into_response();
    }
    let metadata: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("metadata[")?.strip_suffix(']')?;
            Some((key.to_owned(), json!(value)))
        })
        .collect();
    let item = json!({
        "id": format!("ii_fake{}", stripe.created.len() + 1),
        "object": "invoiceitem",
        "amount": form["amount"].parse::<i64>().unwrap(),
        "currency": form["currency"],
        "customer": form["customer"],
        "date": 1_700_000_000,
        "description": form.get("description"),
        "livemode": false,
        "metadata": metadata,
        "quantity": form["quantity"].parse::<i64>().unwrap(),
    });
    stripe.created.insert(key, item.clone());
    axum::Json(item).into_response()
}

/// Starts the fake Stripe; returns its base URL.
async fn start_fake_stripe(stripe: Shared) -> String {
    let app = axum::Router::new().route("/v1/invoiceitems", post(invoice_items)).with_state(stripe);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn forwarding_server(stripe_base: &str) -> Server {
    Server::start_with(&["--stripe-secret-key", STRIPE_KEY, "--stripe-base-url", stripe_base])
}

/// Asserts the secret key appears nowhere in `text`.
#[track_caller]
fn assert_no_secret(text: &str) {
    assert!(!text.contains(STRIPE_KEY), "the Stripe secret key leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_forwarded_to_stripe_with_the_hosts_key() {
    let stripe = Shared::default();
    let base = start_fake_stripe(stripe.clone()).await;
    let server = forwarding_server(&base);
    let sid = server.publish(billing_app(json!({}))).await;

    let answer = charge(&server, &sid, "cus_ada", 1500, Some("checkout-ada")).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_shape(&answer.body, &json!({ "itemId": "<id:bi_>", "stripeId": "ii_fake1", "amountCents": 1500 }));
    let replay = charge(&server, &sid, "cus_ada", 1500, Some("checkout-ada")).await;
    assert_eq!((replay.status, &replay.body), (201, &answer.body));

    let step_key = {
        let stripe = stripe.lock().unwrap();
        assert_eq!(stripe.requests.len(), 1, "a replayed run does not reach Stripe");
        let request = &stripe.requests[0];
        assert_eq!(request.authorization, format!("Bearer {STRIPE_KEY}"));
        assert_eq!(request.content_type, "application/x-www-form-urlencoded");
        let expected: HashMap<String, String> = [
            ("customer", "cus_ada"),
            ("amount", "1500"),
            ("currency", "usd"),
            ("quantity", "1"),
            ("metadata[plan]", "pro"),
            ("metadata[seats]", "3"),
            ("metadata[trial]", "false"),
            ("metadata[appSid]", sid.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(request.form, expected);
        let key = request.idempotency_key.clone().expect("an Idempotency-Key");
        assert!(key.starts_with("default:stp_"), "the step's key is forwarded, scoped to the tenant: {key}");
        key
    };

    // The stored item names Stripe's id; the key and the secret are nowhere to be seen.
    let item = server.get(&format!("{ITEMS}/{}", answer.body["itemId"].as_str().unwrap())).await;
    assert_eq!(item.status, 200, "{:?}", item.body);
    assert_eq!(item.body["data"]["stripeId"], "ii_fake1");
    assert_eq!(item.body["data"]["appSid"], json!(sid));
    let record = run_record(&server, &answer).await;
    assert_eq!(record["steps"][0]["output"]["stripeId"], "ii_fake1");
    assert_no_secret(&record.to_string());
    assert_no_secret(&item.body.to_string());
    assert_no_secret(&server.get(ITEMS).await.body.to_string());
    let database = std::fs::read(server.data_dir.join("stage.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("stage.db-wal")).unwrap_or_default();
    for bytes in [database, wal] {
        assert!(!bytes.windows(STRIPE_KEY.len()).any(|w| w == STRIPE_KEY.as_bytes()), "the secret key was stored");
    }
    assert_no_secret(&std::fs::read_to_string(server.data_dir.join("server.log")).unwrap_or_default());

    // Over the API: the caller's key is forwarded (per tenant); without one, a key derived from the item.
    let body = json!({ "customer": "cus_bob", "amountCents": -200, "currency": "eur", "description": "Refund",
                       "quantity": 2, "metadata": { "reason": "late" } });
    let keyed = create(&server, body.clone(), Some("refund-bob-1")).await;
    assert_eq!(keyed.status, 201, "{:?}", keyed.body);
    assert_eq!(keyed.body["data"]["stripeId"], "ii_fake2");
    let replayed = create(&server, body.clone(), Some("refund-bob-1")).await;
    assert_eq!((replayed.status, &replayed.body), (200, &keyed.body));
    let unkeyed = create(&server, body, None).await;
    assert_eq!(unkeyed.body["data"]["stripeId"], "ii_fake3");
    let stripe = stripe.lock().unwrap();
    assert_eq!(stripe.requests.len(), 3, "a replay over the API does not reach Stripe either");
    // Scoped to the tenant: tenants share the server's Stripe account.
    assert_eq!(stripe.requests[1].idempotency_key.as_deref(), Some("default:refund-bob-1"));
    assert_eq!(stripe.requests[1].form["amount"], "-200");
    assert_eq!(stripe.requests[1].form["description"], "Refund");
    assert_eq!(stripe.requests[1].form["quantity"], "2");
    assert!(!stripe.requests[1].form.contains_key("metadata[appSid]"), "an API item names no app");
    let derived = format!("stage-{}", unkeyed.body["data"]["id"].as_str().unwrap());
    assert_eq!(stripe.requests[2].idempotency_key.as_deref(), Some(derived.as_str()));
    assert_ne!(step_key, derived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_errors_drive_step_retries() {
    let stripe = Shared::default();
    let base = start_fake_stripe(stripe.clone()).await;
    let server = forwarding_server(&base);
    let sid = server.publish(billing_app(json!({ "retry": { "maxAttempts": 3, "intervalMs": 10 } }))).await;
    let script = |answers: &[Scripted]| {
        let mut stripe = stripe.lock().unwrap();
        stripe.requests.clear();
        stripe.script = answers.iter().cloned().collect();
    };
    let outage = Scripted {
        status: 500,
        retry_after: None,
        body: json!({ "error": { "type": "api_error", "message": "An unknown error occurred" } }),
    };
    let slow_down = Scripted {
        status: 429,
        retry_after: Some("1"),
        body: json!({ "error": { "type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests" } }),
    };
    let no_customer = Scripted {
        status: 400,
        retry_after: None,
        body: json!({ "error": { "type": "invalid_request_error", "code": "resource_missing",
                                 "message": "No such customer: 'cus_x'", "param": "customer" } }),
    };

    // 500, then success: transient, retried with the same Idempotency-Key; one item.
    script(std::slice::from_ref(&outage));
    let answer = charge(&server, &sid, "cus_ada", 1500, None).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let attempts = run_record(&server, &answer).await["steps"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["error"]["class"], "transient");
    assert!(attempts[0]["error"]["message"].as_str().unwrap().contains("An unknown error occurred"), "{attempts:?}");
    assert!(attempts[1].get("error").is_none());
    {
        let stripe = stripe.lock().unwrap();
        assert_eq!(stripe.requests.len(), 2);
        assert_eq!(stripe.requests[0].idempotency_key, stripe.requests[1].idempotency_key);
    }
    assert_eq!(count_items(&server), 1);

    // 429 with Retry-After: rate-limited, retried after the second Stripe asked for.
    script(std::slice::from_ref(&slow_down));
    let started = Instant::now();
    let answer = charge(&server, &sid, "cus_ada", 1500, None).await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert!(started.elapsed() >= Duration::from_secs(1), "the retry waited for Retry-After");
    let attempts = run_record(&server, &answer).await["steps"][0]["attempts"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["error"]["class"], "rate-limited");
    assert_eq!(count_items(&server), 2);

    // 400: permanent, never retried, and the run names Stripe's message; nothing stored.
    script(std::slice::from_ref(&no_customer));
    let answer = charge(&server, &sid, "cus_x", 1500, None).await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "STEP_FAILED");
    assert!(answer.body["error"]["message"].as_str().unwrap().contains("No such customer"), "{:?}", answer.body);
    assert_eq!(answer.body["error"]["details"]["error"]["class"], "permanent");
    let record = run_record(&server, &answer).await;
    assert_eq!(record["steps"][0]["attempts"].as_array().unwrap().len(), 1);
    assert_no_secret(&record.to_string());
    assert_eq!(stripe.lock().unwrap().requests.len(), 1);
    assert_eq!(count_items(&server), 2);

    // Over the API, the same failures answer in the envelope and store nothing.
    let body = json!({ "customer": "cus_x", "amountCents": 100, "currency": "usd" });
    script(&[slow_down.clone(), no_customer.clone(), outage.clone()]);
    let limited = create(&server, body.clone(), Some("api-1")).await;
    assert_eq!((limited.status, limited.body["error"]["code"].clone()), (429, json!("RATE_LIMITED")));
    assert_eq!(limited.headers["retry-after"], "1");
    let refused = create(&server, body.clone(), Some("api-1")).await;
    assert_eq!(refused.status, 502, "{:?}", refused.body);
    assert_eq!(
        refused.body["error"],
        json!({ "code": "UPSTREAM_ERROR",
                "message": "Stripe refused the invoice item (HTTP 400): No such customer: 'cus_x' (param customer)",
                "details": { "service": "stripe", "status": 400, "type": "invalid_request_error",
                             "code": "resource_missing", "message": "No such customer: 'cus_x'", "param": "customer" } })
    );
    let failed = create(&server, body.clone(), Some("api-1")).await;
    assert_eq!((failed.status, failed.body["error"]["details"]["status"].clone()), (502, json!(500)));
    assert_eq!(count_items(&server), 2);
    // The key was not used up by the failures: the retry that gets through creates the item.
    let created = create(&server, body, Some("api-1")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(count_items(&server), 3);
}

#[tokio::test]
async fn an_unreachable_stripe_is_transient_and_stores_nothing() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = forwarding_server(&base);

    let answer = create(&server, json!({ "customer": "cus_ada", "amountCents": 100, "currency": "usd" }), None).await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["code"], "UPSTREAM_ERROR");
    assert_eq!(answer.body["error"]["details"]["status"], Value::Null);
    assert!(answer.body["error"]["message"].as_str().unwrap().contains("Stripe could not be reached"));
    assert_no_secret(&answer.body.to_string());

    let sid = server.publish(billing_app(json!({ "retry": { "maxAttempts": 2, "intervalMs": 10 } }))).await;
    let run = charge(&server, &sid, "cus_ada", 100, None).await;
    assert_eq!(run.status, 502, "{:?}", run.body);
    assert_eq!(run.body["error"]["details"]["error"]["class"], "transient");
    // `maxAttempts` counts retries (as in Step Functions): the first attempt and two more.
    assert_eq!(run_record(&server, &run).await["steps"][0]["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(count_items(&server), 0);
}
