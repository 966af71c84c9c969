//! Stage host: the gateway server behind the `stage` binary.
//!
//! Layers, top to bottom (nothing calls upward):
//! * [`api`] — axum routers: auth, sessions, apps, runs, plugins, services, admin,
//!   Convex-compatible calls;
//! * [`workflow`] — workflow files, templates, step kinds, the executor and the runner;
//! * the wasm runtime — crate `stage_runtime`: the wasmtime engine, compiled components,
//!   capability policy, limits, per-tenant admission, and the one outbound HTTP client;
//! * [`services`] — the embedded platform services (pulse, ledger, …);
//! * the store — crate `stage_store`: SQLite persistence.
//!
//! [`gateway`] connects the runtime's outbound HTTP to the services in-process and to
//! configured upstreams (Google), adding the host's credentials.
//!
//! [`envelope`] holds the HTTP plumbing every router shares (answer envelope, extractors);
//! [`data_dir`] keeps the data folder private and holds the key that seals secrets at rest;
//! [`config`] the flags. Crate `stage_cache` is the one bounded cache type every layer uses,
//! `stage_ids` the ids, tokens and hashes every layer makes.
//!
//! [`serve`] wires them together on one listener.

pub mod api;
pub mod config;
pub mod data_dir;
pub mod envelope;
pub mod gateway;
pub mod preview;
pub mod services;
pub mod workflow;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use stage_store::Store;

/// Name of the file in the data folder holding the admin API key (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin-key";

/// Runs the server until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    data_dir::make_private(&config.data_dir)?;
    let (sealer, key_source) = data_dir::secrets_sealer(&config.data_dir, &config.secrets)?;
    let store = stage_store::open(&config.data_dir, sealer).with_context(|| {
        let mut context = format!("opening the store in {}", config.data_dir.display());
        if key_source == data_dir::KeySource::Created {
            context.push_str(&format!(
                " (there was no {} file, so a new secrets key was made: if secrets were sealed under a key you \
                 still have, put it back in that file or give it as --secrets-key)",
                data_dir::SECRETS_KEY_FILE
            ));
        }
        context
    })?;
    let local_admin = store.bootstrap(&config.admin_email).await?;
    ensure_admin_key(&store, &config.data_dir, &config.admin_email).await?;
    let listener =
        tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let address = listener.local_addr()?;
    let local_mode = config.auth == config::AuthMode::Local;
    let state = app_state(store, config, local_admin)?;
    state.runs.runner().executor().templates.warm().await.context("preparing the template sandbox")?;
    let interrupted = state.runs.runner().settle_interrupted().await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "marked runs left unfinished by the previous process as failed");
    }
    services::communication::dispatcher::spawn(state.services.clone(), delivery_policy(&state.config.delivery));
    let app = api::router(state);

    println!("listening on http://{address}");
    std::io::stdout().flush()?;
    tracing::info!(%address, "stage is ready");
    if local_mode {
        tracing::info!(
            "--auth local: credential-less requests from this machine act as the admin, except those with an Origin \
             (web pages) or a proxy's forwarding header; only requests whose Host names loopback (localhost, \
             127.x.x.x, [::1]) are served. Behind a reverse proxy or for other machines, run with --auth required"
        );
    }

    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stage stopped");
    Ok(())
}

/// Wires the layers: runtime (with its gateway to the services), step kinds, workflows.
fn app_state(
    store: Store,
    config: Config,
    local_admin: stage_store::tenants::Principal,
) -> anyhow::Result<api::AppState> {
    let runtime_config = stage_runtime::RuntimeConfig {
        compiled_dir: config.steps.compiled_dir.clone().unwrap_or_else(|| config.data_dir.join("compiled")),
        default_limits: stage_runtime::Limits {
            wall_time_ms: config.steps.step_timeout_ms,
            memory_bytes: config.steps.step_memory_bytes,
            ..stage_runtime::Limits::default()
        },
        allow_private_egress: config.steps.allow_private_egress,
        max_wall_time_ms: config.quotas.max_timeout_ms,
        quotas: stage_runtime::Quotas {
            per_tenant: config.quotas.tenant_max_concurrency,
            max_queued: config.quotas.tenant_max_queued,
        },
        components: stage_cache::CacheLimits {
            max_entries: config.caches.cache_component_entries,
            max_weight: config.caches.cache_component_bytes,
        },
        reserved_instances: config.sheets.sheets_formula_concurrency,
    };
    // Every connection the host makes goes through this client (and its pools).
    let outbound = stage_runtime::net::Outbound::new();
    let services = services::ServiceState {
        store: store.clone(),
        outbound: outbound.clone(),
        stripe: config.billing.stripe_secret_key.clone().map(|secret_key| {
            Arc::new(services::StripeUpstream { secret_key, base_url: config.billing.stripe_base_url.clone() })
        }),
        inference: config.inference.inference_base_url.clone().map(|base_url| {
            Arc::new(services::inference::InferenceUpstream {
                base_url,
                api_key: config.inference.inference_api_key.clone(),
            })
        }),
        outbox: Arc::default(),
        allow_private_egress: config.steps.allow_private_egress,
        formulas: Arc::new(services::sheets::formulas::Formulas::new(config.sheets.formula_limits())),
    };
    let gateway = gateway::ServiceGateway::new(
        services::router(services.clone()),
        store.clone(),
        gateway::SheetsUpstream::parse(&config.google.sheets_upstream).map_err(anyhow::Error::msg)?,
        Arc::new(google_auth(&config.google, outbound.clone())?),
        outbound,
    );
    let runtime = Arc::new(stage_runtime::Runtime::new(runtime_config, gateway)?);
    services.formulas.wire(Arc::new(workflow::formulas::FormulaSandbox::new(runtime.clone())));
    let caches = &config.caches;
    let kinds =
        Arc::new(workflow::catalog::StepKinds::new(runtime.clone(), store.clone(), caches.cache_plugin_entries));
    let templates = Arc::new(workflow::template::TemplateEngine::new(
        runtime.clone(),
        workflow::template::TemplateLimits {
            memory_bytes: config.steps.template_memory_bytes,
            output_bytes: config.steps.template_output_bytes,
        },
    ));
    let workflow_limits = stage_cache::CacheLimits {
        max_entries: caches.cache_workflow_entries,
        max_weight: caches.cache_workflow_bytes,
    };
    let workflows =
        Arc::new(workflow::loader::Workflows::new(store.clone(), kinds.clone(), templates.clone(), workflow_limits));
    let executor = Arc::new(workflow::executor::Executor { runtime: runtime.clone(), kinds: kinds.clone(), templates });
    let max_run = std::time::Duration::from_millis(config.quotas.max_run_ms);
    let runner = Arc::new(workflow::runner::Runner::new(store.clone(), executor, max_run, Arc::new(api::RunAnswers)));
    let runs = Arc::new(workflow::runs::Runs::new(store.clone(), workflows.clone(), runner));
    let tokens = api::auth::TokenVerifier::from_config(&config)?.map(Arc::new);
    let backends =
        Arc::new(workflow::backends::Backends::new(store.clone(), runtime.clone(), caches.cache_backend_entries));
    let previews = Arc::new(preview::Previews::new(
        &config.preview.preview_modules_url,
        data_dir::preview_key(&config.data_dir)?,
    )?);
    Ok(api::AppState {
        store,
        services,
        config: Arc::new(config),
        local_admin,
        previews,
        runtime,
        kinds,
        workflows,
        runs,
        backends,
        tokens,
    })
}

fn delivery_policy(settings: &config::DeliverySettings) -> services::communication::dispatcher::DeliveryPolicy {
    services::communication::dispatcher::DeliveryPolicy {
        max_attempts: settings.delivery_max_attempts,
        retry_base: std::time::Duration::from_millis(settings.delivery_retry_base_ms),
    }
}

/// The Google token source with whatever credentials the server was given.
fn google_auth(
    settings: &config::GoogleSettings,
    outbound: stage_runtime::net::Outbound,
) -> anyhow::Result<gateway::google::GoogleAuth> {
    let service_account = settings
        .google_service_account
        .as_deref()
        .map(gateway::google::GoogleAuthConfig::read_service_account)
        .transpose()?;
    let auth = gateway::google::GoogleAuth::new(
        gateway::google::GoogleAuthConfig {
            token_url: settings.google_token_url.clone(),
            service_account,
            subject: settings.google_subject.clone(),
            client_id: settings.google_client_id.clone(),
            client_secret: settings.google_client_secret.clone(),
        },
        outbound,
    )?;
    Ok(auth)
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
        .create_api_key(stage_store::tenants::DEFAULT_TENANT, admin_email, None, Some("admin-key file".into()), true)
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
