//! Forwarding a billing item to Stripe as an invoice item (`POST /v1/invoiceitems`): the
//! form Stripe takes, the secret key the host adds (never shown to a caller, a log or a
//! record), and how Stripe's failures are answered so that a step classifies them right:
//!
//! | Stripe | Service answer | `billing.createItem` step error |
//! |---|---|---|
//! | 429 | 429 `RATE_LIMITED` with Stripe's `Retry-After` (1 s by default) | `rate-limited` |
//! | 5xx, unreachable, unreadable | 502 `UPSTREAM_ERROR`, `details.status` 5xx or null | `transient` |
//! | other 4xx | 502 `UPSTREAM_ERROR`, `details.status` 4xx | `permanent` |
//!
//! Stripe refusing an item is a failure of the upstream, not of the caller's request, hence
//! 502 for every case but 429; the step tells a refusal from an outage by `details.status`.
//! `details` is `{service:"stripe", status, type, code, message, param}` from Stripe's
//! error JSON, and the message names Stripe's own.

use std::time::Duration;

use axum::http::HeaderValue;
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::APP_SID_METADATA_KEY;
use crate::envelope::{ApiError, ErrorCode};
use crate::services::StripeUpstream;
use crate::services::idempotency::IDEMPOTENCY_KEY;
use stage_runtime::net::{self, Egress, Timeouts};
use stage_store::StoreError;
use stage_store::billing::BillingFields;

const INVOICE_ITEMS_PATH: &str = "/v1/invoiceitems";
/// Bounds connecting, the first byte of the answer, and each pause within it.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read from Stripe (an invoice item is a few KB).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// What a 429 from Stripe without a usable `Retry-After` asks the caller to wait.
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// An error answer of the billing service: the envelope, plus `Retry-After` when Stripe
/// asked to slow down.
#[derive(Debug)]
pub(super) struct BillingError {
    error: ApiError,
    retry_after_secs: Option<u64>,
}

impl From<ApiError> for BillingError {
    fn from(error: ApiError) -> BillingError {
        BillingError { error, retry_after_secs: None }
    }
}

impl From<StoreError> for BillingError {
    fn from(error: StoreError) -> BillingError {
        ApiError::from(error).into()
    }
}

impl IntoResponse for BillingError {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if let Some(seconds) = self.retry_after_secs {
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Creates the invoice item for `fields`; answers its Stripe id (`ii_…`).
pub(super) async fn create_invoice_item(
    outbound: &net::Outbound,
    stripe: &StripeUpstream,
    fields: &BillingFields,
    idempotency_key: &str,
) -> Result<String, BillingError> {
    let request = invoice_item_request(stripe, fields, idempotency_key)?;
    // The base URL is the operator's (`--stripe-base-url`), so it may be private.
    let sent = outbound.send(request, Egress::PrivateAllowed, Timeouts::uniform(TIMEOUT), MAX_RESPONSE_BYTES).await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            let message = format!("Stripe could not be reached at {}: {error}", stripe.base_url);
            tracing::warn!(%message, "billing item not forwarded");
            let details = json!({ "service": "stripe", "status": null, "message": error.to_string() });
            return Err(ApiError::new(ErrorCode::UpstreamError, message).with_details(details).into());
        }
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return serde_json::from_slice::<InvoiceItem>(response.body())
            .ok()
            .map(|item| item.id)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                let message = format!("Stripe answered HTTP {status} without an invoice item id");
                ApiError::new(ErrorCode::UpstreamError, message)
                    .with_details(json!({ "service": "stripe", "status": status }))
                    .into()
            });
    }
    let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    let failure = StripeFailure::read(status, response.body(), &stripe.secret_key);
    tracing::warn!(status, stripe_message = %failure.message, "Stripe refused a billing item");
    Err(failure.into_error(retry_after))
}

/// The form-encoded `POST /v1/invoiceitems`, with the host's key and the idempotency key.
fn invoice_item_request(
    stripe: &StripeUpstream,
    fields: &BillingFields,
    idempotency_key: &str,
) -> Result<http::Request<Bytes>, ApiError> {
    let url = format!("{}{INVOICE_ITEMS_PATH}", stripe.base_url.trim_end_matches('/'));
    let misconfigured = |what: &str| {
        tracing::error!(base_url = %stripe.base_url, "{what}");
        ApiError::internal(format!("the server's Stripe configuration is unusable: {what}"))
    };
    let uri: http::Uri = url.parse().map_err(|_| misconfigured("the Stripe base URL is not a URL"))?;
    let mut authorization = HeaderValue::try_from(format!("Bearer {}", stripe.secret_key))
        .map_err(|_| misconfigured("the Stripe secret key is not a valid header value"))?;
    authorization.set_sensitive(true);
    let form = serde_urlencoded::to_string(invoice_item_form(fields))
        .map_err(|e| ApiError::internal(format!("encoding the Stripe request failed: {e}")))?;
    http::Request::post(uri)
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .header(IDEMPOTENCY_KEY, idempotency_key)
        .body(Bytes::from(form))
        .map_err(|e| ApiError::internal(format!("building the Stripe request failed: {e}")))
}

/// Stripe's form fields for an item. Metadata values become text (Stripe takes only
/// strings), and the item's app is named under [`APP_SID_METADATA_KEY`].
fn invoice_item_form(fields: &BillingFields) -> Vec<(String, String)> {
    let mut form = vec![
        ("customer".to_owned(), fields.customer.clone()),
        ("amount".to_owned(), fields.amount_cents.to_string()),
        ("currency".to_owned(), fields.currency.clone()),
    ];
    if let Some(description) = fields.description.as_ref().filter(|d| !d.is_empty()) {
        form.push(("description".to_owned(), description.clone()));
    }
    form.push(("quantity".to_owned(), fields.quantity.to_string()));
    for (key, value) in &fields.metadata {
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        form.push((format!("metadata[{key}]"), text));
    }
    if let Some(app_sid) = &fields.app_sid {
        form.push((format!("metadata[{APP_SID_METADATA_KEY}]"), app_sid.clone()));
    }
    form
}

#[derive(Deserialize)]
struct InvoiceItem {
    id: String,
}

/// Stripe's error JSON: `{"error":{"type","code","message","param"}}`.
#[derive(Debug, Default, Deserialize)]
struct StripeErrorBody {
    error: StripeFailureFields,
}

#[derive(Debug, Default, Deserialize)]
struct StripeFailureFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    message: Option<String>,
    param: Option<String>,
}

/// A non-2xx answer of Stripe, read.
#[derive(Debug)]
struct StripeFailure {
    status: u16,
    fields: StripeFailureFields,
    /// Stripe's message, or the start of a body that is not Stripe's error JSON.
    message: String,
}

impl StripeFailure {
    /// Reads Stripe's error JSON. Whatever Stripe says, the secret key is cut out of it.
    fn read(status: u16, body: &[u8], secret_key: &str) -> StripeFailure {
        let fields = serde_json::from_slice::<StripeErrorBody>(body).map(|body| body.error).unwrap_or_default();
        let message = match &fields.message {
            Some(message) => message.clone(),
            None => String::from_utf8_lossy(body).chars().take(200).collect(),
        };
        let scrub =
            |text: &str| if secret_key.is_empty() { text.to_owned() } else { text.replace(secret_key, "[redacted]") };
        let fields = StripeFailureFields {
            message: fields.message.as_deref().map(scrub),
            param: fields.param.as_deref().map(scrub),
            ..fields
        };
        StripeFailure { status, fields, message: scrub(&message) }
    }

    fn into_error(self, retry_after: Option<u64>) -> BillingError {
        let StripeFailure { status, fields, message } = self;
        let details = json!({
            "service": "stripe",
            "status": status,
            "type": fields.kind,
            "code": fields.code,
            "message": fields.message,
            "param": fields.param,
        });
        let (code, message, retry_after_secs) = match status {
            429 => {
                let seconds = retry_after.unwrap_or(DEFAULT_RETRY_AFTER_SECS);
                let message =
                    format!("Stripe is rate limiting requests (HTTP 429): {message}; retry after {seconds} s");
                (ErrorCode::RateLimited, message, Some(seconds))
            }
            400..=499 => {
                let param = fields.param.as_deref().map(|param| format!(" (param {param})")).unwrap_or_default();
                let message = format!("Stripe refused the invoice item (HTTP {status}): {message}{param}");
                (ErrorCode::UpstreamError, message, None)
            }
            _ => (ErrorCode::UpstreamError, format!("Stripe failed (HTTP {status}): {message}"), None),
        };
        BillingError { error: ApiError::new(code, message).with_details(details), retry_after_secs }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn item() -> BillingFields {
        let metadata: Map<String, Value> =
            [("plan".to_owned(), json!("pro")), ("seats".to_owned(), json!(3)), ("trial".to_owned(), json!(true))]
                .into_iter()
                .collect();
        BillingFields {
            app_sid: Some("app_1".into()),
            customer: "cus_1".into(),
            amount_cents: -1250,
            currency: "usd".into(),
            description: Some("Seats & support".into()),
            quantity: 2,
            metadata,
        }
    }

    #[test]
    fn the_form_is_what_stripe_takes() {
        let encoded = serde_urlencoded::to_string(invoice_item_form(&item())).unwrap();
        assert_eq!(
            encoded,
            "customer=cus_1&amount=-1250&currency=usd&description=Seats+%26+support&quantity=2\
             &metadata%5Bplan%5D=pro&metadata%5Bseats%5D=3&metadata%5Btrial%5D=true&metadata%5BappSid%5D=app_1"
        );
    }

    #[test]
    fn the_request_carries_the_key_only_in_a_sensitive_header() {
        let stripe = StripeUpstream { secret_key: "sk_test_123".into(), base_url: "http://127.0.0.1:9/base/".into() };
        let request = invoice_item_request(&stripe, &item(), "key-1").unwrap();
        assert_eq!(request.uri(), "http://127.0.0.1:9/base/v1/invoiceitems");
        assert_eq!(request.headers()[IDEMPOTENCY_KEY], "key-1");
        assert!(request.headers()[AUTHORIZATION].is_sensitive());
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer sk_test_123");
        assert!(!String::from_utf8_lossy(request.body()).contains("sk_test"));
    }

    #[test]
    fn failures_are_answered_by_class() {
        let body = br#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: 'cus_x'","param":"customer"}}"#;
        let refused = StripeFailure::read(400, body, "sk_test_1").into_error(None);
        assert_eq!(refused.error.code, ErrorCode::UpstreamError);
        assert_eq!(
            refused.error.message,
            "Stripe refused the invoice item (HTTP 400): No such customer: 'cus_x' (param customer)"
        );
        assert_eq!(
            refused.error.details.unwrap(),
            json!({ "service": "stripe", "status": 400, "type": "invalid_request_error", "code": "resource_missing",
                    "message": "No such customer: 'cus_x'", "param": "customer" })
        );

        let limited = StripeFailure::read(429, b"{}", "sk_test_1").into_error(Some(3)).into_response();
        assert_eq!((limited.status().as_u16(), limited.headers()[RETRY_AFTER].to_str().unwrap()), (429, "3"));
        let limited = StripeFailure::read(429, b"slow down", "sk_test_1").into_error(None);
        assert_eq!((limited.error.code, limited.retry_after_secs), (ErrorCode::RateLimited, Some(1)));

        let outage = StripeFailure::read(503, b"<html>down</html>", "sk_test_1").into_error(None);
        assert_eq!(outage.error.code, ErrorCode::UpstreamError);
        assert_eq!(outage.error.details.unwrap()["status"], 503);

        let echoed = br#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_1"}}"#;
        let unauthorized = StripeFailure::read(401, echoed, "sk_test_1").into_error(None);
        assert!(!format!("{:?}", unauthorized.error).contains("sk_test_1"), "{:?}", unauthorized.error);
    }
}
