//! Which columns hold secrets, and the startup sweep that keeps every one of them sealed
//! under the current key.
//!
//! Every column listed in [`SEALED_COLUMNS`] stores [`sealed`](super::sealed) text only: the
//! table modules seal on write and open on read with the column's [`SealedColumn::slot`].
//! At open, [`reseal_all`] checks every stored value in one transaction: plain text written
//! before sealing existed and values sealed under a previous key are re-sealed under the
//! current key; a value no known key opens stops the start with an error naming its row.

use rusqlite::{Connection, params};

use super::sealed::{Reseal, Sealer, Slot};
use super::{StoreError, StoreResult};

/// A column whose values are sealed, and the column keying its rows.
#[derive(Debug, Clone, Copy)]
pub(super) struct SealedColumn {
    pub table: &'static str,
    pub key: &'static str,
    pub column: &'static str,
}

impl SealedColumn {
    /// Where the value of row `row` of tenant `tenant_id` lives.
    pub fn slot<'a>(&self, tenant_id: &'a str, row: &'a str) -> Slot<'a> {
        Slot { table: self.table, column: self.column, tenant_id, row }
    }

    /// The stored form of `secret` in row `row`.
    pub fn seal(&self, sealer: &Sealer, tenant_id: &str, row: &str, secret: &str) -> String {
        sealer.seal(&self.slot(tenant_id, row), secret)
    }

    /// The secret stored in row `row`. Every value was checked at startup, so a failure
    /// here means the database was changed under the running server.
    pub fn open(&self, sealer: &Sealer, tenant_id: &str, row: &str, stored: &str) -> StoreResult<String> {
        let slot = self.slot(tenant_id, row);
        sealer.open(&slot, stored).map_err(|error| StoreError::Internal(format!("the secret in {slot} {error}")))
    }
}

/// An app's Google OAuth refresh token.
pub(super) const GOOGLE_REFRESH_TOKEN: SealedColumn =
    SealedColumn { table: "app_google_credentials", key: "app_sid", column: "refresh_token" };
/// The secret of an app's own Google OAuth client (when it names one).
pub(super) const GOOGLE_CLIENT_SECRET: SealedColumn =
    SealedColumn { table: "app_google_credentials", key: "app_sid", column: "client_secret" };
/// A communication registration's settings (JSON): Slack and webhook URLs (a Slack URL is
/// the credential), the webhook signing secret, the SMTP URL with its password.
pub(super) const REGISTRATION_SETTINGS: SealedColumn =
    SealedColumn { table: "comm_registrations", key: "id", column: "settings" };

/// A tenant's Stage secret (the Convex `setSecret`).
pub(super) const STAGE_SECRET: SealedColumn = SealedColumn { table: "tenant_secrets", key: "id", column: "value" };

/// Every column that holds a secret.
pub(super) const SEALED_COLUMNS: [SealedColumn; 4] =
    [GOOGLE_REFRESH_TOKEN, GOOGLE_CLIENT_SECRET, REGISTRATION_SETTINGS, STAGE_SECRET];

/// What the sweep found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Swept {
    /// Values already sealed under the current key.
    pub current: usize,
    /// Plain-text values now sealed.
    pub legacy: usize,
    /// Values moved from a previous key to the current one.
    pub rotated: usize,
}

/// Seals every plain-text secret and re-seals every secret under a previous key, in one
/// transaction; fails, changing nothing, when a value opens with no known key.
pub(super) fn reseal_all(conn: &mut Connection, sealer: &Sealer) -> anyhow::Result<Swept> {
    // Overwrites the freed bytes of each rewritten value (the old plain text) with zeros.
    let secure_delete: i64 = conn.pragma_query_value(None, "secure_delete", |r| r.get(0))?;
    conn.pragma_update(None, "secure_delete", true)?;
    let swept = sweep(conn, sealer);
    conn.pragma_update(None, "secure_delete", secure_delete)?;
    let swept = swept?;
    if swept.legacy + swept.rotated > 0 {
        // Copies the rewritten pages over the old ones in the database file now and empties
        // the WAL, rather than leaving the old text there until the next checkpoint.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    tracing::info!(
        key = sealer.current_key_id(),
        sealed = swept.current + swept.legacy + swept.rotated,
        newly_sealed = swept.legacy,
        rotated = swept.rotated,
        "secrets at rest are sealed under the current secrets key"
    );
    Ok(swept)
}

fn sweep(conn: &mut Connection, sealer: &Sealer) -> anyhow::Result<Swept> {
    let tx = conn.transaction()?;
    let mut swept = Swept::default();
    for column in SEALED_COLUMNS {
        let SealedColumn { table, key, column: name } = column;
        let rows: Vec<(String, String, String)> = tx
            .prepare(&format!("SELECT tenant_id, {key}, {name} FROM {table} WHERE {name} IS NOT NULL"))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut update = tx.prepare(&format!("UPDATE {table} SET {name} = ?1 WHERE {key} = ?2"))?;
        for (tenant_id, row, stored) in rows {
            let slot = column.slot(&tenant_id, &row);
            let resealed = match sealer.reseal(&slot, &stored) {
                Ok(Reseal::Current) => {
                    swept.current += 1;
                    continue;
                }
                Ok(Reseal::Legacy(sealed)) => {
                    swept.legacy += 1;
                    sealed
                }
                Ok(Reseal::Rotated(sealed)) => {
                    swept.rotated += 1;
                    sealed
                }
                Err(error) => anyhow::bail!("the secret in {slot} {error}"),
            };
            update.execute(params![resealed, row])?;
        }
    }
    tx.commit()?;
    Ok(swept)
}
