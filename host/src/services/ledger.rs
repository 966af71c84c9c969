//! Ledger: audit events, append-only and hash-chained per tenant (see
//! [`stage_store::ledger`] for the chain). `POST /ledger/events` appends one event,
//! `GET /ledger/events` lists them in chain order, `GET /ledger/verify` re-checks the chain.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ServiceCaller;
use super::idempotency::{IdempotencyHeader, written_response};
use super::input::{Fields, Invalid, MAX_TEXT_CHARS, check_event_size, limit_param, param};
use super::time::now_iso;
use crate::envelope::extract::{JsonBody, Query};
use crate::envelope::{ApiError, ApiResult, ok};
use stage_store::Store;
use stage_store::ledger::{LedgerEvent, LedgerFields, LedgerVerification};

const EVENT_FIELDS: [&str; 12] = [
    "operation",
    "serviceId",
    "actor",
    "actorType",
    "timestamp",
    "source",
    "destination",
    "dataRefs",
    "status",
    "meta",
    "stageAppId",
    "authorEmail",
];
const OPERATIONS: [&str; 6] = ["read", "write", "transform", "delete", "share", "export"];
/// `user` is what apps send; `service` and `system` name non-human actors.
const ACTOR_TYPES: [&str; 3] = ["user", "service", "system"];
const STATUSES: [&str; 3] = ["pass", "fail", "warn"];
const CLASSIFICATIONS: [&str; 4] = ["pii", "sensitive", "internal", "public"];
/// The `serviceId` of an event that names none.
const DEFAULT_SERVICE_ID: &str = "stage";

pub(super) fn router() -> Router<super::ServiceState> {
    Router::new().route("/ledger/events", post(append).get(list)).route("/ledger/verify", get(verify))
}

async fn append(
    State(store): State<Store>,
    caller: ServiceCaller,
    idempotency: IdempotencyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let event = read_event(&body, &caller).map_err(Invalid::into_error)?;
    let key = idempotency.claim("POST /ledger/events", &caller, &body);
    Ok(written_response(store.append_ledger_event(&caller.tenant_id, event, key).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    stage_app_id: Option<String>,
    /// Answer events after this `seq` (to page through the chain).
    after_seq: Option<String>,
    limit: Option<String>,
}

#[derive(serde::Serialize)]
struct EventList {
    events: Vec<LedgerEvent>,
}

async fn list(
    State(store): State<Store>,
    caller: ServiceCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult<EventList> {
    let stage_app_id = caller.app_scope(param(query.stage_app_id)).map_err(Invalid::into_error)?;
    let after_seq = match param(query.after_seq) {
        None => 0,
        Some(seq) => seq.parse::<i64>().ok().filter(|seq| *seq >= 0).ok_or_else(|| {
            ApiError::bad_request(format!("invalid query string: afterSeq must be a whole number, got {seq:?}"))
        })?,
    };
    let limit = limit_param(query.limit)?;
    let events = store.list_ledger_events(&caller.tenant_id, stage_app_id, after_seq, limit).await?;
    Ok(ok(EventList { events }))
}

async fn verify(State(store): State<Store>, caller: ServiceCaller) -> ApiResult<LedgerVerification> {
    Ok(ok(store.verify_ledger(&caller.tenant_id).await?))
}

/// Checks one event and completes it: defaults, the caller's app, and the caller as actor
/// and author when the event names none.
fn read_event(value: &Value, caller: &ServiceCaller) -> Result<LedgerFields, Invalid> {
    check_event_size(value)?;
    let fields = Fields::new(value, "", &EVENT_FIELDS)?;
    let operation = fields.choice("operation", &OPERATIONS, None)?;
    let actor = caller
        .user_or_caller(fields.non_blank_text("actor", MAX_TEXT_CHARS)?)
        .ok_or_else(|| Invalid::new("actor", "is required: who performed the operation"))?;
    Ok(LedgerFields {
        operation,
        service_id: fields.non_blank_text("serviceId", MAX_TEXT_CHARS)?.unwrap_or_else(|| DEFAULT_SERVICE_ID.into()),
        actor,
        actor_type: fields.choice("actorType", &ACTOR_TYPES, Some("user"))?,
        timestamp: fields.instant("timestamp")?.unwrap_or_else(now_iso),
        source: read_location(&fields, "source")?,
        destination: read_location(&fields, "destination")?,
        data_refs: read_data_refs(&fields)?,
        status: fields.choice("status", &STATUSES, Some("pass"))?,
        meta: fields.object("meta")?.cloned().unwrap_or_default(),
        stage_app_id: caller.app_scope(fields.text("stageAppId", MAX_TEXT_CHARS)?)?,
        author_email: caller.user_or_caller(fields.text("authorEmail", MAX_TEXT_CHARS)?),
    })
}

/// `source` / `destination`: `{service, location?}`.
fn read_location(fields: &Fields<'_>, field: &str) -> Result<Option<Value>, Invalid> {
    let Some(value) = fields.get(field) else { return Ok(None) };
    let location = Fields::new(value, &fields.path_of(field), &["service", "location"])?;
    let mut normalized = Map::new();
    normalized.insert("service".into(), location.required_text("service", MAX_TEXT_CHARS)?.into());
    if let Some(place) = location.text("location", MAX_TEXT_CHARS)? {
        normalized.insert("location".into(), place.into());
    }
    Ok(Some(Value::Object(normalized)))
}

/// `dataRefs`: `[{field, classification}]`, empty when absent.
fn read_data_refs(fields: &Fields<'_>) -> Result<Vec<Value>, Invalid> {
    let Some(refs) = fields.array("dataRefs")? else { return Ok(Vec::new()) };
    refs.iter()
        .enumerate()
        .map(|(index, item)| {
            let data_ref = Fields::new(item, &format!("dataRefs[{index}]"), &["field", "classification"])?;
            let mut normalized = Map::new();
            normalized.insert("field".into(), data_ref.required_text("field", MAX_TEXT_CHARS)?.into());
            normalized
                .insert("classification".into(), data_ref.choice("classification", &CLASSIFICATIONS, None)?.into());
            Ok(Value::Object(normalized))
        })
        .collect()
}
