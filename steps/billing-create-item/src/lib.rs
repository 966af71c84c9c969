//! `billing.createItem`: creates a billing item with the billing service
//! (`http://billing.stage.internal/items`), which attributes it to the running app and, when
//! the operator configured Stripe, forwards it as a Stripe invoice item.
//!
//! The step's idempotency key goes with the request, so a retried attempt answers the item
//! the first one created instead of creating (and charging) a second.
//!
//! How failures are classified: the service's status decides (`Response::stage_data`:
//! 422 invalid input, 429 rate-limited after `Retry-After`, 5xx transient), except that
//! Stripe refusing the item outright (502 `UPSTREAM_ERROR` whose `details.status` is a 4xx
//! other than 429) is permanent — retrying the same item would only be refused again.

use stage_guest_sdk::http::{Request, Response};
use stage_guest_sdk::{Map, StepContext, StepError, Value, step};

const ITEMS_URL: &str = "http://billing.stage.internal/items";
const FIELDS: [&str; 6] = ["customer", "amountCents", "currency", "description", "quantity", "metadata"];

fn create_item(ctx: &StepContext, input: Value) -> Result<Value, StepError> {
    let item: Map<String, Value> = FIELDS
        .iter()
        .filter_map(|field| input.get(*field).filter(|v| !v.is_null()).map(|v| ((*field).to_owned(), v.clone())))
        .collect();
    let answer =
        Request::post(ITEMS_URL).header("idempotency-key", &ctx.idempotency_key).json(&Value::Object(item)).send()?;
    if let Some(refusal) = upstream_refusal(&answer) {
        return Err(refusal);
    }
    answer.stage_data()
}

/// Stripe's refusal of the item (a 4xx other than 429, passed on as `UPSTREAM_ERROR`), as a
/// permanent error naming Stripe's message.
fn upstream_refusal(answer: &Response) -> Option<StepError> {
    if answer.status != 502 {
        return None;
    }
    let body = answer.json().ok()?;
    let error = &body["error"];
    let upstream_status = error["details"]["status"].as_u64()?;
    let refused = error["code"] == "UPSTREAM_ERROR" && (400..500).contains(&upstream_status) && upstream_status != 429;
    refused.then(|| StepError::Permanent(error["message"].as_str().unwrap_or("Stripe refused the item").to_owned()))
}

step!(create_item);

#[cfg(test)]
mod tests {
    use stage_guest_sdk::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Response {
        Response { status, headers: Vec::new(), body: body.to_string().into_bytes() }
    }

    fn upstream_error(status: Value) -> Value {
        json!({ "success": false, "error": { "code": "UPSTREAM_ERROR", "message": "Stripe refused the invoice item (HTTP 400): No such customer: 'cus_x'",
                "details": { "service": "stripe", "status": status } } })
    }

    #[test]
    fn stripe_refusals_are_permanent_and_outages_are_not() {
        assert_eq!(
            upstream_refusal(&answer(502, upstream_error(json!(400)))),
            Some(StepError::Permanent("Stripe refused the invoice item (HTTP 400): No such customer: 'cus_x'".into()))
        );
        assert_eq!(upstream_refusal(&answer(502, upstream_error(json!(503)))), None);
        assert_eq!(upstream_refusal(&answer(502, upstream_error(Value::Null))), None);
        assert!(matches!(answer(502, upstream_error(json!(503))).stage_data(), Err(StepError::Transient(_))));
        assert_eq!(upstream_refusal(&answer(201, json!({ "success": true, "data": {} }))), None);
    }
}
