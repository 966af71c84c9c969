//! Server configuration: command-line flags with `STAGE_*` environment overrides.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use stage_store::sealed::SecretKey;

/// How requests without credentials are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// A request without credentials from a loopback peer acts as the local admin.
    Local,
    /// Every request must present an API key.
    Required,
}

/// `stage serve` options.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "STAGE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Folder holding the database and the admin and secrets keys (created 0700, its files 0600).
    #[arg(long, env = "STAGE_DATA_DIR", default_value = "./.stage")]
    pub data_dir: PathBuf,
    /// `local` trusts credential-less loopback requests as the admin; `required` does not.
    #[arg(long, env = "STAGE_AUTH", value_enum, default_value_t = AuthMode::Local)]
    pub auth: AuthMode,
    /// Email of the admin user created at first start.
    #[arg(long, env = "STAGE_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub steps: StepSettings,
    #[command(flatten)]
    pub quotas: QuotaSettings,
    #[command(flatten)]
    pub google: GoogleSettings,
    #[command(flatten)]
    pub sheets: SheetsSettings,
    #[command(flatten)]
    pub billing: BillingSettings,
    #[command(flatten)]
    pub delivery: DeliverySettings,
    #[command(flatten)]
    pub inference: InferenceSettings,
    #[command(flatten)]
    pub secrets: SecretsSettings,
    #[command(flatten)]
    pub caches: CacheSettings,
    #[command(flatten)]
    pub preview: PreviewSettings,
    /// Secret that signs end-user tokens (HS256 JWTs with claims `sub`, `email`, `name`).
    #[arg(long, env = "STAGE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Public key (PEM text, or a path to a PEM file) that verifies RS256 end-user tokens.
    #[arg(long, env = "STAGE_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<String>,
}

/// The preview page (`/s/:id`).
#[derive(Debug, Clone, Args)]
pub struct PreviewSettings {
    /// Base URL of the ES modules of the preview page's third-party libraries (react,
    /// react-dom, recharts, lucide-react, lodash, papaparse, Tailwind): an esm.sh-compatible
    /// server, paths `<base>/<package>@<version>[/<subpath>]`.
    #[arg(long, env = "STAGE_PREVIEW_MODULES_URL", default_value = "https://esm.sh")]
    pub preview_modules_url: String,
}

/// How step components run.
#[derive(Debug, Clone, Args)]
pub struct StepSettings {
    /// Wall-time limit of one step invocation, in milliseconds (a step's `timeoutMs` overrides it).
    #[arg(long, env = "STAGE_STEP_TIMEOUT_MS", default_value_t = 10_000)]
    pub step_timeout_ms: u64,
    /// Linear-memory limit of one step invocation, in bytes.
    #[arg(long, env = "STAGE_STEP_MEMORY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub step_memory_bytes: usize,
    /// Lets destinations marked `private` in step manifests reach private and loopback
    /// addresses. Off by default: steps reach only public addresses and internal services.
    #[arg(long, env = "STAGE_ALLOW_PRIVATE_EGRESS")]
    pub allow_private_egress: bool,
    /// Linear-memory limit of the template sandbox, in bytes: templates are evaluated in a
    /// wasm instance of their own.
    #[arg(long, env = "STAGE_TEMPLATE_MEMORY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub template_memory_bytes: usize,
    /// Bytes the templates of one step input (or one `if`) may produce, as JSON.
    #[arg(long, env = "STAGE_TEMPLATE_OUTPUT_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub template_output_bytes: usize,
    /// Where compiled components are cached (default: DATA_DIR/compiled).
    #[arg(long, env = "STAGE_COMPILED_DIR")]
    pub compiled_dir: Option<PathBuf>,
}

/// How tenants share the server: concurrency, queues and the ceilings on what an app may
/// ask for.
#[derive(Debug, Clone, Args)]
pub struct QuotaSettings {
    /// Workflow runs executing and backend requests being served at once, per tenant;
    /// more wait in the tenant's queue.
    #[arg(long, env = "STAGE_TENANT_MAX_CONCURRENCY", default_value_t = 32)]
    pub tenant_max_concurrency: usize,
    /// Runs and backend requests that may wait for a slot, per tenant; past it the tenant
    /// gets 429 with `Retry-After`.
    #[arg(long, env = "STAGE_TENANT_MAX_QUEUED", default_value_t = 256)]
    pub tenant_max_queued: usize,
    /// The most wall time a step (`timeoutMs`), a plugin or a backend (`limits.wallTimeMs`)
    /// may ask for, in milliseconds; longer values are refused at publish.
    #[arg(long, env = "STAGE_MAX_TIMEOUT_MS", default_value_t = 60_000)]
    pub max_timeout_ms: u64,
    /// The most a workflow run may take from its request to its end, waiting for a slot
    /// and retries included, in milliseconds; a run still going then fails, whether or not
    /// its caller is still waiting.
    #[arg(long, env = "STAGE_MAX_RUN_MS", default_value_t = 300_000)]
    pub max_run_ms: u64,
}

/// Bounds of the Sheets emulator's formulas, which run in the formula sandbox (a wasm
/// instance per evaluation of a spreadsheet).
#[derive(Debug, Clone, Args)]
pub struct SheetsSettings {
    /// Wall time of one evaluation of a spreadsheet's formulas, in milliseconds; past it, its
    /// formula cells show #ERROR!.
    #[arg(long, env = "STAGE_SHEETS_FORMULA_TIME_MS", default_value_t = 10_000)]
    pub sheets_formula_time_ms: u64,
    /// Linear-memory limit of the formula sandbox, in bytes.
    #[arg(long, env = "STAGE_SHEETS_FORMULA_MEMORY_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub sheets_formula_memory_bytes: usize,
    /// Bytes of one evaluation's answer (every formula's value, as JSON).
    #[arg(long, env = "STAGE_SHEETS_FORMULA_OUTPUT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub sheets_formula_output_bytes: usize,
    /// Evaluations running at once, across tenants (each holds a wasm instance).
    #[arg(long, env = "STAGE_SHEETS_FORMULA_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sheets_formula_concurrency: u32,
    /// Evaluations one tenant may have running at once; more are refused with 429.
    #[arg(long, env = "STAGE_SHEETS_TENANT_FORMULA_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub sheets_tenant_formula_concurrency: u32,
}

impl SheetsSettings {
    pub fn formula_limits(&self) -> crate::services::sheets::formulas::FormulaLimits {
        crate::services::sheets::formulas::FormulaLimits {
            time_ms: self.sheets_formula_time_ms,
            memory_bytes: self.sheets_formula_memory_bytes,
            output_bytes: self.sheets_formula_output_bytes,
            concurrency: self.sheets_formula_concurrency as usize,
            tenant_concurrency: self.sheets_tenant_formula_concurrency as usize,
        }
    }
}

/// Where Google API calls of steps go, and the credentials the host uses for them.
#[derive(Debug, Clone, Args)]
pub struct GoogleSettings {
    /// Where sheets steps' requests go: `emulator` (the embedded Sheets emulator), `google`,
    /// or the base URL of a Google-compatible server.
    #[arg(long, env = "STAGE_SHEETS_UPSTREAM", default_value = "emulator")]
    pub sheets_upstream: String,
    /// Service-account JSON key file used for Google calls of apps without a refresh token.
    #[arg(long, env = "STAGE_GOOGLE_SERVICE_ACCOUNT")]
    pub google_service_account: Option<PathBuf>,
    /// User the service account acts for (domain-wide delegation), as the JWT's `sub`.
    #[arg(long, env = "STAGE_GOOGLE_SUBJECT")]
    pub google_subject: Option<String>,
    /// OAuth token endpoint (default: the key's `token_uri`, else Google's).
    #[arg(long, env = "STAGE_GOOGLE_TOKEN_URL")]
    pub google_token_url: Option<String>,
    /// OAuth client for apps' refresh tokens that do not name their own.
    #[arg(long, env = "STAGE_GOOGLE_CLIENT_ID")]
    pub google_client_id: Option<String>,
    #[arg(long, env = "STAGE_GOOGLE_CLIENT_SECRET", hide_env_values = true)]
    pub google_client_secret: Option<String>,
}

/// Where billing items are forwarded.
#[derive(Debug, Clone, Args)]
pub struct BillingSettings {
    /// Stripe secret key: when set, billing items are also created as Stripe invoice items
    /// (the host adds the key; steps never see it).
    #[arg(long, env = "STAGE_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Base URL of the Stripe API (a Stripe-compatible server in tests).
    #[arg(long, env = "STAGE_STRIPE_BASE_URL", default_value = "https://api.stripe.com")]
    pub stripe_base_url: String,
}

/// Bounds of what the host keeps in memory between requests; past a bound the least recently
/// used entries go first (and are loaded again when needed).
#[derive(Debug, Clone, Args)]
pub struct CacheSettings {
    /// Estimated bytes of parsed workflow files kept in memory (a file weighs 10x its bytes
    /// plus 12 KiB per template; a file heavier than this is parsed again for every run).
    #[arg(long, env = "STAGE_CACHE_WORKFLOW_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub cache_workflow_bytes: u64,
    /// Most app versions whose parsed workflow file is kept in memory.
    #[arg(long, env = "STAGE_CACHE_WORKFLOW_ENTRIES", default_value_t = 1024)]
    pub cache_workflow_entries: usize,
    /// Bytes of compiled component images (with their linked instances) kept in memory; an
    /// evicted component is loaded again from its artifact on disk.
    #[arg(long, env = "STAGE_CACHE_COMPONENT_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub cache_component_bytes: u64,
    /// Most compiled components kept in memory.
    #[arg(long, env = "STAGE_CACHE_COMPONENT_ENTRIES", default_value_t = 256)]
    pub cache_component_entries: usize,
    /// Most app versions whose backend settings (manifest, policy, limits) are kept in memory.
    #[arg(long, env = "STAGE_CACHE_BACKEND_ENTRIES", default_value_t = 4096)]
    pub cache_backend_entries: usize,
    /// Most plugin kinds (per tenant) whose manifest, policy and limits are kept in memory.
    #[arg(long, env = "STAGE_CACHE_PLUGIN_ENTRIES", default_value_t = 4096)]
    pub cache_plugin_entries: usize,
}

/// Where app backends' inference calls go.
#[derive(Debug, Clone, Args)]
pub struct InferenceSettings {
    /// Base URL of an OpenAI-compatible API (e.g. `https://api.openai.com/v1`); backends'
    /// `inference` calls fail until it is set.
    #[arg(long, env = "STAGE_INFERENCE_BASE_URL")]
    pub inference_base_url: Option<String>,
    /// Key the host sends to the inference API as `Authorization: Bearer` (backends never see it).
    #[arg(long, env = "STAGE_INFERENCE_API_KEY", hide_env_values = true)]
    pub inference_api_key: Option<String>,
}

/// The keys that seal secrets at rest (apps' Google refresh tokens and client secrets,
/// communication registrations' URLs, signing secrets and SMTP URLs).
#[derive(Debug, Clone, Args)]
pub struct SecretsSettings {
    /// Key sealing stored secrets: 32 bytes as base64 or 64 hex digits. Default: the key in
    /// DATA_DIR/secrets-key, created (0600) at first start.
    #[arg(long, env = "STAGE_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,
    /// Earlier keys (comma separated) that only open stored secrets; at startup every secret
    /// sealed under one of them is re-sealed under the current key.
    #[arg(long, env = "STAGE_SECRETS_PREVIOUS_KEYS", hide_env_values = true, value_delimiter = ',')]
    pub secrets_previous_keys: Vec<String>,
}

impl SecretsSettings {
    /// The operator's key, if one was given, and the previous keys. Errors never repeat a key.
    pub fn keys(&self) -> anyhow::Result<(Option<SecretKey>, Vec<SecretKey>)> {
        let current = self
            .secrets_key
            .as_deref()
            .filter(|key| !key.trim().is_empty())
            .map(|key| SecretKey::parse(key).map_err(|why| anyhow::anyhow!("--secrets-key {why}")))
            .transpose()?;
        let given: Vec<&str> =
            self.secrets_previous_keys.iter().map(|key| key.trim()).filter(|key| !key.is_empty()).collect();
        let previous = given
            .iter()
            .enumerate()
            .map(|(index, key)| {
                SecretKey::parse(key).map_err(|why| {
                    anyhow::anyhow!("--secrets-previous-keys: key {} of {} {why}", index + 1, given.len())
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok((current, previous))
    }
}

/// How the communication outbox delivers messages.
#[derive(Debug, Clone, Args)]
pub struct DeliverySettings {
    /// Attempts per message before it is marked failed.
    #[arg(long, env = "STAGE_DELIVERY_MAX_ATTEMPTS", default_value_t = 8)]
    pub delivery_max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubles per attempt (with jitter).
    #[arg(long, env = "STAGE_DELIVERY_RETRY_BASE_MS", default_value_t = 1000)]
    pub delivery_retry_base_ms: u64,
}

/// Size limits on what clients may send. Breaking one answers 413 or 422.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest file, in bytes (after base64 decoding).
    #[arg(long, env = "STAGE_MAX_FILE_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_file_bytes: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "STAGE_MAX_REQUEST_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_request_bytes: usize,
    /// Most live files one session may hold.
    #[arg(long, env = "STAGE_MAX_FILES_PER_SESSION", default_value_t = 10_000)]
    pub max_files_per_session: usize,
    /// Longest file path, in bytes.
    #[arg(long, env = "STAGE_MAX_PATH_BYTES", default_value_t = 1024)]
    pub max_path_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 5 * 1024 * 1024,
            max_request_bytes: 50 * 1024 * 1024,
            max_files_per_session: 10_000,
            max_path_bytes: 1024,
        }
    }
}

impl Config {
    /// Checks combinations that cannot work, before anything starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.auth == AuthMode::Local && !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {} with --auth local: credential-less requests would act as the admin; \
                 use --auth required or a loopback address",
                self.listen
            );
        }
        anyhow::ensure!(!self.admin_email.trim().is_empty(), "--admin-email must not be empty");
        anyhow::ensure!(
            self.jwt_secret.is_none() || self.jwt_public_key.is_none(),
            "give --jwt-secret or --jwt-public-key, not both"
        );
        let sheets = crate::gateway::SheetsUpstream::parse(&self.google.sheets_upstream)
            .map_err(|why| anyhow::anyhow!("--sheets-upstream: {why}"))?;
        if let crate::gateway::SheetsUpstream::Url(url) = sheets {
            check_base_url("--sheets-upstream", &url.to_string(), true)?;
        }
        check_base_url("--stripe-base-url", &self.billing.stripe_base_url, self.billing.stripe_secret_key.is_some())?;
        if let Some(url) = &self.inference.inference_base_url {
            check_base_url("--inference-base-url", url, self.inference.inference_api_key.is_some())?;
        }
        check_modules_url(&self.preview.preview_modules_url)?;
        anyhow::ensure!(self.delivery.delivery_max_attempts >= 1, "--delivery-max-attempts must be at least 1");
        anyhow::ensure!(self.quotas.tenant_max_concurrency >= 1, "--tenant-max-concurrency must be at least 1");
        anyhow::ensure!(self.quotas.max_timeout_ms >= 1, "--max-timeout-ms must be at least 1");
        anyhow::ensure!(
            self.steps.step_timeout_ms <= self.quotas.max_timeout_ms,
            "--step-timeout-ms ({}) must not exceed --max-timeout-ms ({})",
            self.steps.step_timeout_ms,
            self.quotas.max_timeout_ms
        );
        self.secrets.keys()?;
        Ok(())
    }
}

/// Checks that an upstream's base URL is an absolute http(s) URL; one the host sends a
/// credential to must be `https` (plain `http` only to loopback).
fn check_base_url(flag: &str, url: &str, carries_credentials: bool) -> anyhow::Result<()> {
    let checked = if carries_credentials {
        stage_runtime::net::check_credential_url(url)
    } else {
        stage_runtime::net::HttpUrl::parse(url)
    };
    checked.map(|_| ()).map_err(|why| anyhow::anyhow!("{flag} {url:?} {why}"))
}

/// `--preview-modules-url` must be an http(s) URL without query or fragment: the preview
/// page's import map and Content-Security-Policy are built from it.
fn check_modules_url(url: &str) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("--preview-modules-url {url:?}: {e}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some(),
        "--preview-modules-url must be an http or https URL, got {url:?}"
    );
    anyhow::ensure!(
        parsed.query().is_none() && parsed.fragment().is_none() && parsed.username().is_empty(),
        "--preview-modules-url must not carry a query, a fragment or credentials, got {url:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SecretsSettings;

    #[test]
    fn secrets_keys_are_read_and_errors_do_not_repeat_them() {
        let key = "ab".repeat(32);
        let settings = |current: Option<&str>, previous: &[&str]| SecretsSettings {
            secrets_key: current.map(str::to_owned),
            secrets_previous_keys: previous.iter().map(|key| (*key).to_owned()).collect(),
        };
        let (current, previous) = settings(Some(&key), &[" ", &key]).keys().unwrap();
        assert_eq!(current.unwrap().encode(), stage_store::sealed::SecretKey::parse(&key).unwrap().encode());
        assert_eq!(previous.len(), 1, "blank entries are skipped");
        assert!(settings(Some(" "), &[]).keys().unwrap().0.is_none(), "a blank key is no key");

        let error = settings(Some("hunter2-not-a-key"), &[]).keys().unwrap_err().to_string();
        assert_eq!(error, "--secrets-key is neither 64 hex digits nor base64");
        let error = settings(None, &[&key, "c2hvcnQ="]).keys().unwrap_err().to_string();
        assert_eq!(error, "--secrets-previous-keys: key 2 of 2 is 5 bytes long, not 32");
    }
}
