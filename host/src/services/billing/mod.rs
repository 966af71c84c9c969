//! Billing: items an app charges (or credits) its customers. `POST /billing/items` creates
//! one, `GET /billing/items` lists the newest (by `appSid`, `customer`), and
//! `GET /billing/items/{id}` answers one. When the operator configured Stripe, each new item
//! is also created as a Stripe invoice item ([`stripe`]) and stores its `ii_…` id.
//!
//! Creating is idempotent per `Idempotency-Key`, and a replay never reaches Stripe. The order
//! keeps both promises across failures: validate; answer a replay (or a conflict) from the
//! stored key; call Stripe with an `Idempotency-Key`, so that Stripe itself dedupes a retry
//! after a crash; then store the item and the key in one transaction. A Stripe failure
//! stores nothing.

mod stripe;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::idempotency::{IdempotencyHeader, written_response};
use super::input::{Fields, Invalid, MAX_TEXT_CHARS, limit_param, param};
use super::{ServiceCaller, ServiceState};
use crate::envelope::extract::{JsonBody, PathParams, Query, json_type};
use crate::envelope::{ApiError, ApiResult, ok};
use stage_store::billing::{BillingFields, BillingFilter, BillingItem};
use stage_store::idempotency::Written;
use stage_store::{Store, new_id, now_ms};
use stripe::BillingError;

/// What idempotency keys of item creation are unique within (besides the tenant).
const CREATE_SCOPE: &str = "POST /billing/items";
const ITEM_FIELDS: [&str; 7] = ["customer", "amountCents", "currency", "description", "quantity", "metadata", "appSid"];
/// Largest item request, in bytes of compact JSON.
const MAX_ITEM_BYTES: usize = 32 * 1024;
/// Largest amount either way, in minor units (10 billion dollars): with [`MAX_QUANTITY`],
/// a total still fits in 64 bits.
const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
const MAX_QUANTITY: i64 = 1_000_000;
const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Stripe's limits on metadata, which is forwarded: 50 keys (one is the reserved
/// [`APP_SID_METADATA_KEY`]) of at most 40 characters, values of at most 500.
const MAX_METADATA_KEYS: usize = 49;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;
/// The metadata key under which Stripe's copy of an item names its app.
const APP_SID_METADATA_KEY: &str = "appSid";

pub(super) fn router() -> Router<ServiceState> {
    Router::new().route("/billing/items", post(create).get(list)).route("/billing/items/{id}", get(one))
}

async fn create(
    State(state): State<ServiceState>,
    caller: ServiceCaller,
    idempotency: IdempotencyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, BillingError> {
    let fields = read_item(&body, &caller)?;
    // The fingerprint covers the item as it will be stored (defaults filled in), so that
    // spelling out `"quantity": 1` does not make a retry look like another request.
    let fingerprinted = serde_json::to_value(&fields).map_err(|e| ApiError::internal(e.to_string()))?;
    let key = idempotency.claim(CREATE_SCOPE, &caller, &fingerprinted);
    if let Some(key) = &key
        && let Some(item) = state.store.billing_replay(&caller.tenant_id, key).await?
    {
        return Ok(written_response(Written { value: item, replayed: true }));
    }

    let id = new_id("bi_");
    let stripe_id = match &state.stripe {
        Some(upstream) => {
            // Without the caller's key, one derived from the item still makes a resent
            // request to Stripe safe.
            let stripe_key = key.as_ref().map_or_else(|| format!("stage-{id}"), |key| stripe_key(&caller, &key.key));
            Some(stripe::create_invoice_item(&state.outbound, upstream, &fields, &stripe_key).await?)
        }
        None => None,
    };
    let item = BillingItem { id, fields, stripe_id, created_at: now_ms() };
    Ok(written_response(state.store.record_billing_item(&caller.tenant_id, item, key).await?))
}

/// The caller's key as sent to Stripe: prefixed with the tenant, because every tenant shares
/// the server's Stripe account and one tenant's key must not replay another's item there.
/// Stripe takes at most 255 characters; a longer combination sends the key's digest.
fn stripe_key(caller: &ServiceCaller, key: &str) -> String {
    let scoped = format!("{}:{key}", caller.tenant_id);
    if scoped.len() <= 255 {
        scoped
    } else {
        format!("{}:{}", caller.tenant_id, stage_store::sha256_hex(key.as_bytes()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    app_sid: Option<String>,
    customer: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct ItemList {
    items: Vec<BillingItem>,
}

async fn list(
    State(store): State<Store>,
    caller: ServiceCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult<ItemList> {
    let filter = BillingFilter {
        app_sid: app_scope(&caller, param(query.app_sid)).map_err(Invalid::into_error)?,
        customer: param(query.customer),
        limit: limit_param(query.limit)?,
    };
    Ok(ok(ItemList { items: store.list_billing_items(&caller.tenant_id, filter).await? }))
}

/// One item; an app's caller sees only its own app's items.
async fn one(
    State(store): State<Store>,
    caller: ServiceCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<BillingItem> {
    Ok(ok(store.billing_item(&caller.tenant_id, &id, caller.app_sid.as_deref()).await?))
}

/// Checks a create request and completes it: quantity 1 and empty metadata by default, the
/// caller's app.
fn read_item(body: &Value, caller: &ServiceCaller) -> Result<BillingFields, ApiError> {
    let size = serde_json::to_vec(body).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_ITEM_BYTES {
        return Err(ApiError::too_large(format!(
            "the billing item is {size} bytes of JSON; an item may be at most {MAX_ITEM_BYTES} bytes"
        )));
    }
    read_fields(body, caller).map_err(Invalid::into_error)
}

fn read_fields(body: &Value, caller: &ServiceCaller) -> Result<BillingFields, Invalid> {
    let fields = Fields::new(body, "", &ITEM_FIELDS)?;
    Ok(BillingFields {
        customer: fields.required_text("customer", MAX_TEXT_CHARS)?,
        amount_cents: read_amount(&fields)?,
        currency: read_currency(&fields)?,
        description: fields.text("description", MAX_DESCRIPTION_CHARS)?,
        quantity: read_quantity(&fields)?,
        metadata: read_metadata(&fields)?,
        app_sid: app_scope(caller, fields.text("appSid", MAX_TEXT_CHARS)?)?,
    })
}

/// [`ServiceCaller::app_scope`], naming billing's own field.
fn app_scope(caller: &ServiceCaller, requested: Option<String>) -> Result<Option<String>, Invalid> {
    caller.app_scope(requested.clone()).map_err(|_| {
        Invalid::forbidden(
            "appSid",
            format!(
                "is {:?}, but the caller is app {:?} and may only use its own billing items",
                requested.unwrap_or_default(),
                caller.app_sid.as_deref().unwrap_or_default()
            ),
        )
    })
}

/// `amountCents`: an integer in minor units; negative for a credit.
fn read_amount(fields: &Fields<'_>) -> Result<i64, Invalid> {
    const WHAT: &str = "an integer amount in the currency's minor units (1250 for 12.50; negative for a credit)";
    let field = fields.path_of("amountCents");
    match fields.get("amountCents") {
        None => Err(Invalid::new(field, format!("is required: {WHAT}"))),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(amount) if amount.abs() <= MAX_AMOUNT_CENTS => Ok(amount),
            Some(_) => Err(Invalid::new(field, format!("must be between -{MAX_AMOUNT_CENTS} and {MAX_AMOUNT_CENTS}"))),
            None => Err(Invalid::new(field, format!("must be {WHAT}, got {number}"))),
        },
        Some(other) => Err(Invalid::new(field, format!("must be {WHAT}, got {}", json_type(other)))),
    }
}

/// `currency`: an ISO 4217 code in lowercase, as Stripe takes it.
fn read_currency(fields: &Fields<'_>) -> Result<String, Invalid> {
    const WHAT: &str = "a three-letter ISO 4217 currency code in lowercase, like \"usd\"";
    let field = fields.path_of("currency");
    match fields.get("currency") {
        None => Err(Invalid::new(field, format!("is required: {WHAT}"))),
        Some(Value::String(code)) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_lowercase()) => {
            Ok(code.clone())
        }
        Some(Value::String(code)) => Err(Invalid::new(field, format!("must be {WHAT}, got {code:?}"))),
        Some(other) => Err(Invalid::new(field, format!("must be {WHAT}, got {}", json_type(other)))),
    }
}

/// `quantity`: a positive integer, 1 when absent.
fn read_quantity(fields: &Fields<'_>) -> Result<i64, Invalid> {
    let Some(value) = fields.get("quantity") else { return Ok(1) };
    value.as_i64().filter(|quantity| (1..=MAX_QUANTITY).contains(quantity)).ok_or_else(|| {
        let got = if value.is_number() { value.to_string() } else { json_type(value).to_owned() };
        Invalid::new(
            fields.path_of("quantity"),
            format!("must be a positive integer of at most {MAX_QUANTITY}, got {got}"),
        )
    })
}

/// `metadata`: a flat object of strings, numbers and booleans, within Stripe's limits.
fn read_metadata(fields: &Fields<'_>) -> Result<Map<String, Value>, Invalid> {
    let Some(metadata) = fields.object("metadata")? else { return Ok(Map::new()) };
    if metadata.len() > MAX_METADATA_KEYS {
        return Err(Invalid::too_large(
            fields.path_of("metadata"),
            format!("has {} keys; at most {MAX_METADATA_KEYS} are allowed", metadata.len()),
        ));
    }
    for (key, value) in metadata {
        let field = format!("{}.{key}", fields.path_of("metadata"));
        if key == APP_SID_METADATA_KEY {
            return Err(Invalid::new(field, "is reserved: Stripe's copy of the item names its app there"));
        }
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS || key.contains(['[', ']']) {
            return Err(Invalid::new(
                field,
                format!("is not a usable key: 1 to {MAX_METADATA_KEY_CHARS} characters, without '[' or ']'"),
            ));
        }
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(_) | Value::Bool(_) => value.to_string(),
            other => {
                return Err(Invalid::new(
                    field,
                    format!("must be a string, number or boolean, got {}", json_type(other)),
                ));
            }
        };
        if text.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(Invalid::new(field, format!("must be at most {MAX_METADATA_VALUE_CHARS} characters")));
        }
    }
    Ok(metadata.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use stage_runtime::Identity;

    fn api_caller() -> ServiceCaller {
        ServiceCaller(Identity { tenant_id: "t".into(), app_sid: None, actor_email: Some("admin@localhost".into()) })
    }

    fn app_caller() -> ServiceCaller {
        ServiceCaller(Identity { tenant_id: "t".into(), app_sid: Some("app_mine".into()), actor_email: None })
    }

    /// The refusal of `body` from an API caller: its code, message and field.
    fn refusal(body: Value) -> (&'static str, String, Value) {
        let error = read_item(&body, &api_caller()).expect_err("refused");
        let field = error.details.as_ref().map_or(Value::Null, |details| details["field"].clone());
        (error.code.as_str(), error.message, field)
    }

    #[test]
    fn completes_an_item_with_defaults() {
        let fields = read_item(&json!({ "customer": "cus_1", "amountCents": -250, "currency": "eur" }), &api_caller())
            .expect("valid");
        assert_eq!(
            fields,
            BillingFields {
                app_sid: None,
                customer: "cus_1".into(),
                amount_cents: -250,
                currency: "eur".into(),
                description: None,
                quantity: 1,
                metadata: Map::new(),
            }
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let valid = json!({ "customer": "cus_1", "amountCents": 100, "currency": "usd" });
        let with = |field: &str, value: Value| {
            let mut body = valid.clone();
            body[field] = value;
            body
        };
        let without = |field: &str| {
            let mut body = valid.clone();
            body.as_object_mut().unwrap().remove(field);
            body
        };
        for (body, field) in [
            (with("amountCents", json!(12.5)), "amountCents"),
            (with("amountCents", json!("12")), "amountCents"),
            (with("amountCents", json!(MAX_AMOUNT_CENTS + 1)), "amountCents"),
            (without("amountCents"), "amountCents"),
            (with("currency", json!("USD")), "currency"),
            (with("currency", json!("us")), "currency"),
            (with("currency", json!("usdx")), "currency"),
            (without("currency"), "currency"),
            (without("customer"), "customer"),
            (with("customer", json!("  ")), "customer"),
            (with("quantity", json!(0)), "quantity"),
            (with("quantity", json!(1.5)), "quantity"),
            (with("quantity", json!("2")), "quantity"),
            (with("metadata", json!([1])), "metadata"),
            (with("metadata", json!({ "nested": { "a": 1 } })), "metadata.nested"),
            (with("metadata", json!({ "appSid": "app_x" })), "metadata.appSid"),
            (with("metadata", json!({ "a[b]": "x" })), "metadata.a[b]"),
            (with("metadata", json!({ "long": "x".repeat(501) })), "metadata.long"),
            (with("colour", json!("red")), "colour"),
        ] {
            let (code, message, named) = refusal(body.clone());
            assert_eq!((code, named), ("VALIDATION_FAILED", json!(field)), "{body}: {message}");
            assert!(message.starts_with(field), "{message}");
        }
        let (_, message, _) = refusal(with("currency", json!("USD")));
        assert!(message.contains("ISO 4217") && message.contains("\"USD\""), "{message}");

        let many: Map<String, Value> = (0..=MAX_METADATA_KEYS).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(refusal(with("metadata", Value::Object(many))).0, "PAYLOAD_TOO_LARGE");
        let huge = with("description", json!("x".repeat(MAX_ITEM_BYTES)));
        assert_eq!(refusal(huge).0, "PAYLOAD_TOO_LARGE");
    }

    #[test]
    fn an_app_writes_only_for_itself() {
        let body = json!({ "customer": "cus_1", "amountCents": 1, "currency": "usd" });
        assert_eq!(read_item(&body, &app_caller()).unwrap().app_sid.as_deref(), Some("app_mine"));
        let mut own = body.clone();
        own["appSid"] = json!("app_mine");
        assert_eq!(read_item(&own, &app_caller()).unwrap().app_sid.as_deref(), Some("app_mine"));
        let mut other = body.clone();
        other["appSid"] = json!("app_other");
        let error = read_item(&other, &app_caller()).expect_err("another app");
        assert_eq!((error.code.as_str(), error.details.unwrap()["field"].clone()), ("FORBIDDEN", json!("appSid")));
        // The API names any app.
        assert_eq!(read_item(&other, &api_caller()).unwrap().app_sid.as_deref(), Some("app_other"));
    }
}
