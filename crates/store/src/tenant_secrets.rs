//! A tenant's Stage secrets: named values its apps set and read back (the Convex
//! `setSecret`/`getSecret`). Each tenant has its own names; values are stored sealed
//! ([`super::secrets::STAGE_SECRET`]) and opened only in memory.

use rusqlite::{OptionalExtension, params};

use super::secrets::STAGE_SECRET;
use super::{Store, StoreResult, new_id, now_ms};

impl Store {
    /// Sets the tenant's secret `key` to `value`, replacing what it held.
    pub async fn set_stage_secret(&self, tenant_id: &str, key: &str, value: &str) -> StoreResult<()> {
        let (tenant_id, key, value) = (tenant_id.to_owned(), key.to_owned(), value.to_owned());
        let sealer = self.sealer.clone();
        self.write(move |c| {
            let existing: Option<String> = c
                .prepare_cached("SELECT id FROM tenant_secrets WHERE tenant_id = ?1 AND key = ?2")?
                .query_row(params![tenant_id, key], |r| r.get(0))
                .optional()?;
            let now = now_ms();
            match existing {
                Some(id) => {
                    let sealed = STAGE_SECRET.seal(&sealer, &tenant_id, &id, &value);
                    c.execute(
                        "UPDATE tenant_secrets SET value = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id, sealed, now],
                    )?;
                }
                None => {
                    let id = new_id("sec_");
                    let sealed = STAGE_SECRET.seal(&sealer, &tenant_id, &id, &value);
                    c.execute(
                        "INSERT INTO tenant_secrets (id, tenant_id, key, value, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![id, tenant_id, key, sealed, now],
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    /// The tenant's secret `key`, `None` when unset.
    pub async fn stage_secret(&self, tenant_id: &str, key: &str) -> StoreResult<Option<String>> {
        let (tenant_id, key) = (tenant_id.to_owned(), key.to_owned());
        let sealer = self.sealer.clone();
        self.read(move |c| {
            let row: Option<(String, String)> = c
                .prepare_cached("SELECT id, value FROM tenant_secrets WHERE tenant_id = ?1 AND key = ?2")?
                .query_row(params![tenant_id, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            row.map(|(id, stored)| STAGE_SECRET.open(&sealer, &tenant_id, &id, &stored)).transpose()
        })
        .await
    }
}
