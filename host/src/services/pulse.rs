//! Pulse: analytics events. `POST /pulse/events` stores one event, `POST /pulse/events/batch`
//! stores `{"events":[…]}` all-or-nothing, and `GET /pulse/events` answers the newest
//! matching events with counts per name (and per time bucket) over every match.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ServiceCaller;
use super::idempotency::{IdempotencyHeader, written_response};
use super::input::{Fields, Invalid, MAX_TEXT_CHARS, check_event_size, instant_param, limit_param, param};
use super::time::now_iso;
use crate::envelope::extract::{JsonBody, Query, json_type};
use crate::envelope::{ApiError, ApiResult, ok};
use stage_store::Store;
use stage_store::pulse::{Bucket, PulseFields, PulseFilter, PulseQueryResult};

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 500;
const MAX_NAME_CHARS: usize = 200;
const EVENT_FIELDS: [&str; 9] =
    ["name", "serviceId", "sessionId", "userId", "source", "timestamp", "meta", "stageAppId", "authorEmail"];

pub(super) fn router() -> Router<super::ServiceState> {
    Router::new().route("/pulse/events", post(track).get(query)).route("/pulse/events/batch", post(track_batch))
}

async fn track(
    State(store): State<Store>,
    caller: ServiceCaller,
    idempotency: IdempotencyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let event = read_event(&body, &caller).map_err(Invalid::into_error)?;
    let key = idempotency.claim("POST /pulse/events", &caller, &body);
    Ok(written_response(store.record_pulse_event(&caller.tenant_id, event, key).await?))
}

async fn track_batch(
    State(store): State<Store>,
    caller: ServiceCaller,
    idempotency: IdempotencyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let events = read_batch(&body, &caller)?;
    let key = idempotency.claim("POST /pulse/events/batch", &caller, &body);
    Ok(written_response(store.record_pulse_batch(&caller.tenant_id, events, key).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EventsQuery {
    stage_app_id: Option<String>,
    name: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    bucket: Option<String>,
}

async fn query(
    State(store): State<Store>,
    caller: ServiceCaller,
    Query(query): Query<EventsQuery>,
) -> ApiResult<PulseQueryResult> {
    let filter = PulseFilter {
        stage_app_id: caller.app_scope(param(query.stage_app_id)).map_err(Invalid::into_error)?,
        name: param(query.name),
        since: instant_param("since", query.since)?,
        until: instant_param("until", query.until)?,
        limit: limit_param(query.limit)?,
        bucket: param(query.bucket).map(|bucket| bucket_param(&bucket)).transpose()?,
    };
    Ok(ok(store.query_pulse_events(&caller.tenant_id, filter).await?))
}

fn bucket_param(bucket: &str) -> Result<Bucket, ApiError> {
    match bucket {
        "minute" => Ok(Bucket::Minute),
        "hour" => Ok(Bucket::Hour),
        "day" => Ok(Bucket::Day),
        other => Err(ApiError::bad_request(format!(
            "invalid query string: bucket must be \"minute\", \"hour\" or \"day\", got {other:?}"
        ))),
    }
}

/// Reads every event of a batch before anything is stored; the first bad one refuses the
/// whole batch, naming its index.
fn read_batch(body: &Value, caller: &ServiceCaller) -> Result<Vec<PulseFields>, ApiError> {
    let batch = Fields::new(body, "", &["events"]).map_err(Invalid::into_error)?;
    let events = batch
        .array("events")
        .and_then(|events| events.ok_or_else(|| Invalid::new("events", "is required: an array of events")))
        .map_err(Invalid::into_error)?;
    if events.len() > MAX_BATCH_EVENTS {
        let problem = format!("holds {} events; a batch may hold at most {MAX_BATCH_EVENTS}", events.len());
        return Err(Invalid::too_large("events", problem).into_error());
    }
    events.iter().enumerate().map(|(index, event)| read_event(event, caller).map_err(|e| e.in_batch(index))).collect()
}

/// Checks one event and completes it: default timestamp, the caller's app and email.
fn read_event(value: &Value, caller: &ServiceCaller) -> Result<PulseFields, Invalid> {
    check_event_size(value)?;
    let fields = Fields::new(value, "", &EVENT_FIELDS)?;
    Ok(PulseFields {
        name: fields.required_text("name", MAX_NAME_CHARS)?,
        service_id: fields.text("serviceId", MAX_TEXT_CHARS)?,
        session_id: fields.text("sessionId", MAX_TEXT_CHARS)?,
        user_id: fields.text("userId", MAX_TEXT_CHARS)?,
        source: fields.text("source", MAX_TEXT_CHARS)?,
        timestamp: fields.instant("timestamp")?.unwrap_or_else(now_iso),
        meta: read_meta(&fields)?,
        stage_app_id: caller.app_scope(fields.text("stageAppId", MAX_TEXT_CHARS)?)?,
        author_email: caller.user_or_caller(fields.text("authorEmail", MAX_TEXT_CHARS)?),
    })
}

/// `meta`: a flat object of strings, numbers and booleans.
fn read_meta(fields: &Fields<'_>) -> Result<Map<String, Value>, Invalid> {
    let Some(meta) = fields.object("meta")? else { return Ok(Map::new()) };
    for (key, value) in meta {
        if !(value.is_string() || value.is_number() || value.is_boolean()) {
            return Err(Invalid::new(
                format!("meta.{key}"),
                format!("must be a string, number or boolean, got {}", json_type(value)),
            ));
        }
    }
    Ok(meta.clone())
}
