//! Billing items: what an app charges (or, with a negative amount, credits) a customer,
//! stored per tenant together with the Stripe invoice item it was forwarded as, if any.
//!
//! Writes are idempotent per key ([`super::idempotency`]). Because forwarding calls Stripe
//! before anything is stored, the service first asks [`Store::billing_replay`] (read-only)
//! whether the key answered before, and only then calls Stripe and
//! [`Store::record_billing_item`], which stores the item and the key in one transaction.

use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::idempotency::{IdempotencyKey, Written, earlier_answer, write_once};
use super::{Store, StoreError, StoreResult};

/// A billing item as the caller describes it (validated by the service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingFields {
    /// The app the item is attributed to.
    pub app_sid: Option<String>,
    pub customer: String,
    /// Minor units of `currency`; negative for a credit.
    pub amount_cents: i64,
    /// ISO 4217, lowercase (`usd`).
    pub currency: String,
    pub description: Option<String>,
    pub quantity: i64,
    /// Flat: strings, numbers and booleans.
    pub metadata: Map<String, Value>,
}

/// A stored billing item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingItem {
    /// `bi_…`.
    pub id: String,
    #[serde(flatten)]
    pub fields: BillingFields,
    /// The Stripe invoice item (`ii_…`) when the item was forwarded.
    pub stripe_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Which items a listing selects, newest first.
#[derive(Debug, Clone, Default)]
pub struct BillingFilter {
    pub app_sid: Option<String>,
    pub customer: Option<String>,
    pub limit: u32,
}

impl Store {
    /// The item an earlier request with `key` created, if any; a conflict when that request
    /// was a different one. Writes nothing.
    pub async fn billing_replay(&self, tenant_id: &str, key: &IdempotencyKey) -> StoreResult<Option<BillingItem>> {
        let (tenant_id, key) = (tenant_id.to_owned(), key.clone());
        self.read(move |c| earlier_answer(c, &tenant_id, &key)).await
    }

    /// Stores `item` with `key` in one transaction. When a concurrent request with the same
    /// key got there first, answers its item as a replay and stores nothing.
    pub async fn record_billing_item(
        &self,
        tenant_id: &str,
        item: BillingItem,
        key: Option<IdempotencyKey>,
    ) -> StoreResult<Written<BillingItem>> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |c| write_once(c, &tenant_id, key.as_ref(), |c| insert(c, &tenant_id, item))).await
    }

    /// One item of the tenant; with `app_sid`, only if it belongs to that app.
    pub async fn billing_item(&self, tenant_id: &str, id: &str, app_sid: Option<&str>) -> StoreResult<BillingItem> {
        let (tenant_id, id, app_sid) = (tenant_id.to_owned(), id.to_owned(), app_sid.map(str::to_owned));
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ITEM_COLUMNS} FROM billing_items
                 WHERE tenant_id = ?1 AND id = ?2 AND (?3 IS NULL OR app_sid = ?3)"
            ))?
            .query_row(params![tenant_id, id, app_sid], item_from_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("billing item {id} not found")))
        })
        .await
    }

    /// The newest items matching `filter`, newest first.
    pub async fn list_billing_items(&self, tenant_id: &str, filter: BillingFilter) -> StoreResult<Vec<BillingItem>> {
        let tenant_id = tenant_id.to_owned();
        self.read(move |c| {
            let mut condition = String::from("tenant_id = ?1");
            let mut values = vec![tenant_id];
            for (column, value) in [("app_sid", filter.app_sid), ("customer", filter.customer)] {
                if let Some(value) = value {
                    values.push(value);
                    condition.push_str(&format!(" AND {column} = ?{}", values.len()));
                }
            }
            let mut stmt = c.prepare(&format!(
                "SELECT {ITEM_COLUMNS} FROM billing_items WHERE {condition}
                 ORDER BY created_at DESC, rowid DESC LIMIT {}",
                filter.limit
            ))?;
            let items = stmt.query_map(params_from_iter(&values), item_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(items)
        })
        .await
    }
}

const ITEM_COLUMNS: &str =
    "id, app_sid, customer, amount_cents, currency, description, quantity, metadata, stripe_id, created_at";

fn insert(c: &Connection, tenant_id: &str, item: BillingItem) -> StoreResult<BillingItem> {
    let f = &item.fields;
    c.prepare_cached(
        "INSERT INTO billing_items (tenant_id, id, app_sid, customer, amount_cents, currency, description, quantity,
                                    metadata, stripe_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        tenant_id,
        item.id,
        f.app_sid,
        f.customer,
        f.amount_cents,
        f.currency,
        f.description,
        f.quantity,
        Value::Object(f.metadata.clone()).to_string(),
        item.stripe_id,
        item.created_at
    ])?;
    Ok(item)
}

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BillingItem> {
    let metadata: String = r.get(7)?;
    let metadata = serde_json::from_str(&metadata)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(BillingItem {
        id: r.get(0)?,
        fields: BillingFields {
            app_sid: r.get(1)?,
            customer: r.get(2)?,
            amount_cents: r.get(3)?,
            currency: r.get(4)?,
            description: r.get(5)?,
            quantity: r.get(6)?,
            metadata,
        },
        stripe_id: r.get(8)?,
        created_at: r.get(9)?,
    })
}
