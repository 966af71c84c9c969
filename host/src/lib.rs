//! Stage host: the gateway server behind the `stage` binary.
//!
//! Layers, top to bottom (nothing calls upward):
//! * [`api`] — axum routers: auth, sessions, apps, admin, Convex-compatible calls;
//! * [`store`] — SQLite persistence.
//!
//! [`envelope`] holds the HTTP plumbing every router shares (answer envelope, extractors).
//!
//! [`serve`] wires them together on one listener.

pub mod api;
pub mod config;
pub mod envelope;
pub mod services;
pub mod store;
pub mod workflow;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::store::Store;

/// Name of the file in the data folder holding the admin API key (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin-key";

/// Runs the server until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    let store =
        store::open(&config.data_dir).with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    let local_admin = store.bootstrap(&config.admin_email).await?;
    ensure_admin_key(&store, &config.data_dir, &config.admin_email).await?;

    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let app = api::router(api::AppState::new(store, config, local_admin));

    println!("listening on http://{address}");
    std::io::stdout().flush()?;
    tracing::info!(%address, "stage is ready");

    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stage stopped");
    Ok(())
}

/// Creates the admin key file on first start (or if it was removed), so a local user never
/// types a key. The file is written atomically with mode 0600.
async fn ensure_admin_key(store: &Store, data_dir: &Path, admin_email: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(ADMIN_KEY_FILE);
    if path.exists() {
        return Ok(());
    }
    let key = store
        .create_api_key(store::tenants::DEFAULT_TENANT, admin_email, None, Some("admin-key file".into()), true)
        .await?;
    let temporary = data_dir.join(format!("{ADMIN_KEY_FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    writeln!(file, "{}", key.secret)?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    tracing::info!(path = %path.display(), "wrote the admin API key");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
