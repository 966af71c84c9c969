//! `Idempotency-Key` on service writes, shared by every service: reading the header,
//! fingerprinting the request, and answering a first write (201) or a replay (200 with
//! `Idempotent-Replayed: true` and the first answer). The store keeps the keys
//! ([`stage_store::idempotency`]) in the transaction of the write they answer.

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::ServiceCaller;
use crate::envelope::{ApiError, created, ok};
use stage_store::canonical::canonical_json;
use stage_store::idempotency::{IdempotencyKey, Written};
use stage_store::sha256_hex;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_BYTES: usize = 255;

/// The request's `Idempotency-Key`, if it sent one: 1–255 printable ASCII characters.
pub struct IdempotencyHeader(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else { return Ok(IdempotencyHeader(None)) };
        let key = value.to_str().ok().map(str::trim).filter(|key| {
            !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.bytes().all(|b| (b' '..=b'~').contains(&b))
        });
        match key {
            Some(key) => Ok(IdempotencyHeader(Some(key.to_owned()))),
            None => Err(ApiError::bad_request(format!(
                "the Idempotency-Key header must be 1 to {MAX_KEY_BYTES} printable ASCII characters"
            ))),
        }
    }
}

impl IdempotencyHeader {
    /// The key this request claims within `scope` (the route). The fingerprint covers the
    /// body (canonically, so key order and whitespace do not matter) and who is calling, as
    /// both shape what gets stored.
    pub fn claim(self, scope: &'static str, caller: &ServiceCaller, body: &Value) -> Option<IdempotencyKey> {
        let key = self.0?;
        let request = json!({ "appSid": caller.app_sid, "actorEmail": caller.actor_email, "body": body });
        Some(IdempotencyKey { scope, key, fingerprint: sha256_hex(canonical_json(&request).as_bytes()) })
    }
}

/// 201 with what was written, or 200 with the first answer when this was a replay.
pub fn written_response<T: Serialize>(written: Written<T>) -> Response {
    if !written.replayed {
        return created(written.value).into_response();
    }
    let mut response = ok(written.value).into_response();
    response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}
