//! Stage's storage: SQLite, and the only crate of Stage that speaks SQL. It knows nothing of
//! HTTP or wasm.
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
//! Secrets (refresh tokens, webhook secrets, SMTP URLs, tenants' Stage secrets, …) are
//! stored [`sealed`] and opened only in memory; `secrets` lists their columns and re-seals
//! them at open.

mod db;
mod migrations;
mod references;
mod secrets;

pub mod apps;
pub mod billing;
pub mod canonical;
pub mod communication;
pub mod feedback;
pub mod files;
pub mod google;
pub mod idempotency;
pub mod inference;
pub mod ledger;
pub mod plugins;
pub mod preview;
pub mod pulse;
pub mod runs;
pub mod sealed;
pub mod session_state;
pub mod sessions;
pub mod sheets;
pub mod tenant_secrets;
pub mod tenants;
pub mod user_auth;

use std::path::Path;

pub use db::Store;
/// Ids, tokens and content hashes, as every stored row uses them.
pub use stage_ids::{new_id, now_ms, random_token, sha256_hex};

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

/// Opens (creating if needed) the database in `data_dir`, with `sealer` for its secrets:
/// every stored secret is checked, and sealed under its current key, before this returns.
pub fn open(data_dir: &Path, sealer: sealed::Sealer) -> anyhow::Result<Store> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(data_dir)?;
    Store::open(&data_dir.join("stage.db"), sealer)
}
