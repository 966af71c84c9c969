//! Pulse analytics events: ingest (one event, or a batch in one transaction) and queries
//! with counts per name and per time bucket, always within one tenant.

use std::collections::BTreeMap;

use rusqlite::{Connection, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::idempotency::{IdempotencyKey, Written, write_once};
use super::{Store, StoreResult, new_id, now_ms};

/// An event as the client describes it (validated by the service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PulseFields {
    pub name: String,
    pub service_id: Option<String>,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub source: Option<String>,
    /// ISO-8601 in UTC with milliseconds (`2025-01-31T12:00:00.000Z`), so that text order
    /// is time order and a prefix is a minute, hour or day.
    pub timestamp: String,
    pub meta: Map<String, Value>,
    pub stage_app_id: Option<String>,
    pub author_email: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PulseEvent {
    pub id: String,
    #[serde(flatten)]
    pub fields: PulseFields,
    /// When the store accepted the event, Unix ms.
    pub received_at: i64,
}

/// What a batch ingest answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PulseBatch {
    pub count: usize,
    /// The ids of the stored events, in the order of the batch.
    pub ids: Vec<String>,
}

/// Width of the time buckets of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Minute,
    Hour,
    Day,
}

impl Bucket {
    /// The prefix of a stored timestamp that names its bucket, and what completes that prefix
    /// into the bucket's start time.
    fn prefix_and_suffix(self) -> (usize, &'static str) {
        match self {
            Bucket::Minute => ("2025-01-31T12:00".len(), ":00.000Z"),
            Bucket::Hour => ("2025-01-31T12".len(), ":00:00.000Z"),
            Bucket::Day => ("2025-01-31".len(), "T00:00:00.000Z"),
        }
    }
}

/// Which events a query selects. Times are stored-timestamp text (see [`PulseFields`]).
#[derive(Debug, Clone, Default)]
pub struct PulseFilter {
    pub stage_app_id: Option<String>,
    pub name: Option<String>,
    /// Inclusive.
    pub since: Option<String>,
    /// Exclusive.
    pub until: Option<String>,
    /// Most events returned (counts and total cover every match).
    pub limit: u32,
    pub bucket: Option<Bucket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PulseBucket {
    /// The bucket's first instant, ISO-8601 UTC.
    pub start: String,
    pub counts: BTreeMap<String, i64>,
}

/// A query's answer: the newest events, and counts over every event the filter selects.
#[derive(Debug, Clone, Serialize)]
pub struct PulseQueryResult {
    pub events: Vec<PulseEvent>,
    pub counts: BTreeMap<String, i64>,
    pub total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<PulseBucket>>,
}

impl Store {
    pub async fn record_pulse_event(
        &self,
        tenant_id: &str,
        event: PulseFields,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Written<PulseEvent>> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| write_once(c, &tenant_id, key.as_ref(), |c| insert(c, &tenant_id, event))).await
    }

    /// Stores every event of a batch, or none.
    pub async fn record_pulse_batch(
        &self,
        tenant_id: &str,
        events: Vec<PulseFields>,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Written<PulseBatch>> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| {
            write_once(c, &tenant_id, key.as_ref(), |c| {
                let ids = events
                    .into_iter()
                    .map(|event| insert(c, &tenant_id, event).map(|stored| stored.id))
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(PulseBatch { count: ids.len(), ids })
            })
        })
        .await
    }

    /// The newest events matching `filter` (newest first), with counts per name over all
    /// matches and, when asked, per time bucket (oldest bucket first).
    pub async fn query_pulse_events(&self, tenant_id: &str, filter: PulseFilter) -> StoreResult<PulseQueryResult> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            // One read transaction, so that the events and the counts agree.
            let tx = c.unchecked_transaction()?;
            let (condition, values) = where_clause(&tenant_id, &filter);

            let mut stmt = tx.prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM pulse_events WHERE {condition}
                 ORDER BY timestamp DESC, rowid DESC LIMIT {}",
                filter.limit
            ))?;
            let events = stmt.query_map(params_from_iter(&values), event_from_row)?.collect::<Result<Vec<_>, _>>()?;

            let mut stmt =
                tx.prepare(&format!("SELECT name, COUNT(*) FROM pulse_events WHERE {condition} GROUP BY name"))?;
            let counts = stmt
                .query_map(params_from_iter(&values), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            let total = counts.values().sum();

            let buckets = match filter.bucket {
                None => None,
                Some(bucket) => Some(bucket_counts(&tx, bucket, &condition, &values)?),
            };
            Ok(PulseQueryResult { events, counts, total, buckets })
        })
        .await
    }
}

const EVENT_COLUMNS: &str = "id, name, service_id, session_id, user_id, source, timestamp, meta, stage_app_id, \
                             author_email, received_at";

fn insert(c: &Connection, tenant_id: &str, fields: PulseFields) -> StoreResult<PulseEvent> {
    let event = PulseEvent { id: new_id("evt_"), fields, received_at: now_ms() };
    let f = &event.fields;
    c.prepare_cached(
        "INSERT INTO pulse_events (tenant_id, id, name, service_id, session_id, user_id, source, timestamp, meta,
                                   stage_app_id, author_email, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        tenant_id,
        event.id,
        f.name,
        f.service_id,
        f.session_id,
        f.user_id,
        f.source,
        f.timestamp,
        Value::Object(f.meta.clone()).to_string(),
        f.stage_app_id,
        f.author_email,
        event.received_at
    ])?;
    Ok(event)
}

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PulseEvent> {
    let meta: String = r.get(7)?;
    let meta = serde_json::from_str(&meta)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(PulseEvent {
        id: r.get(0)?,
        fields: PulseFields {
            name: r.get(1)?,
            service_id: r.get(2)?,
            session_id: r.get(3)?,
            user_id: r.get(4)?,
            source: r.get(5)?,
            timestamp: r.get(6)?,
            meta,
            stage_app_id: r.get(8)?,
            author_email: r.get(9)?,
        },
        received_at: r.get(10)?,
    })
}

/// The SQL condition selecting `filter`'s events of the tenant, and its parameters.
fn where_clause(tenant_id: &str, filter: &PulseFilter) -> (String, Vec<String>) {
    let mut condition = String::from("tenant_id = ?1");
    let mut values = vec![tenant_id.to_owned()];
    let optional = [
        ("stage_app_id =", &filter.stage_app_id),
        ("name =", &filter.name),
        ("timestamp >=", &filter.since),
        ("timestamp <", &filter.until),
    ];
    for (test, value) in optional {
        if let Some(value) = value {
            values.push(value.clone());
            condition.push_str(&format!(" AND {test} ?{}", values.len()));
        }
    }
    (condition, values)
}

fn bucket_counts(c: &Connection, bucket: Bucket, condition: &str, values: &[String]) -> StoreResult<Vec<PulseBucket>> {
    let (prefix, suffix) = bucket.prefix_and_suffix();
    let mut stmt = c.prepare(&format!(
        "SELECT substr(timestamp, 1, {prefix}) AS bucket, name, COUNT(*) FROM pulse_events WHERE {condition}
         GROUP BY bucket, name ORDER BY bucket"
    ))?;
    let mut rows = stmt.query(params_from_iter(values))?;
    let mut buckets: Vec<PulseBucket> = Vec::new();
    while let Some(row) = rows.next()? {
        let start = format!("{}{suffix}", row.get::<_, String>(0)?);
        let (name, count): (String, i64) = (row.get(1)?, row.get(2)?);
        match buckets.last_mut() {
            Some(last) if last.start == start => {
                last.counts.insert(name, count);
            }
            _ => buckets.push(PulseBucket { start, counts: BTreeMap::from([(name, count)]) }),
        }
    }
    Ok(buckets)
}
