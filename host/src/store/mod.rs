//! SQLite persistence: the only module that speaks SQL.
//!
//! The store owns one database file in the data folder (WAL mode, `synchronous=FULL`,
//! foreign keys on, versioned migrations applied at open). Writes go through a single
//! writer thread that groups concurrent requests into one transaction (group commit), so
//! writers never see `SQLITE_BUSY` and every acknowledged write has been fsynced. Reads use
//! a small pool of read-only connections on blocking threads; nothing here blocks an async
//! worker.
//!
//! Each table family has its own module exposing async methods on [`Store`]; callers never
//! see a `rusqlite` type, which keeps the interface narrow enough for another backend.
//!
//! Secrets (refresh tokens, webhook secrets, SMTP URLs, …) are stored [`sealed`] and opened
//! only in memory; `secrets` lists their columns and re-seals them at open.

mod db;
mod migrations;
mod secrets;

pub mod apps;
pub mod billing;
pub mod canonical;
pub mod communication;
pub mod files;
pub mod google;
pub mod idempotency;
pub mod inference;
pub mod ledger;
pub mod plugins;
pub mod pulse;
pub mod runs;
pub mod sealed;
pub mod sessions;
pub mod sheets;
pub mod tenants;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub use db::Store;

/// Errors a store operation reports. The API layer maps each variant to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named object does not exist (or belongs to another tenant).
    #[error("{0}")]
    NotFound(String),
    /// The operation conflicts with the current state (e.g. a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// A limit or rule checked against stored state was broken; nothing was written.
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Current time in Unix milliseconds, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new identifier: `prefix`, then 9 base-36 characters of the current Unix millisecond
/// and 11 random ones (~57 bits). Identifiers created later sort later, so rows keyed by
/// them are appended at the end of their B-trees instead of dirtying random pages.
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 20);
    id.push_str(prefix);
    let mut time = [b'0'; 9];
    let mut ms = now_ms().max(0) as u64;
    for digit in time.iter_mut().rev() {
        *digit = BASE36[(ms % 36) as usize];
        ms /= 36;
    }
    id.push_str(std::str::from_utf8(&time).expect("base-36 digits"));
    id.push_str(&random_token(11));
    id
}

/// `length` random base-36 characters, for secrets and unique names.
pub fn random_token(length: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..length).map(|_| BASE36[rng.random_range(0..BASE36.len())] as char).collect()
}

/// Lowercase hex SHA-256 of `bytes`: the address of a blob and the stored form of API keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Opens (creating if needed) the database in `data_dir`, with `sealer` for its secrets:
/// every stored secret is checked, and sealed under its current key, before this returns.
pub fn open(data_dir: &Path, sealer: sealed::Sealer) -> anyhow::Result<Store> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(data_dir)?;
    Store::open(&data_dir.join("stage.db"), sealer)
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn ids_are_prefixed_unique_and_ordered_by_time() {
        let first = super::new_id("run_");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = super::new_id("run_");
        assert!(first.starts_with("run_") && first.len() == 24, "{first}");
        assert!(first < second, "{first} {second}");
        assert_ne!(super::new_id("x"), super::new_id("x"));
    }
}
