//! The HTTP client of the client commands: where the server is (`STAGE_URL`), which key to
//! send (`STAGE_KEY`, or the local admin key), and how its answers become data or a
//! [`CliError`] with the right exit code.
//!
//! Plain `http` only: the workspace's reqwest is built without TLS. A server elsewhere is
//! reached through a tunnel or a local proxy until the CLI gains TLS.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ExitCode;
use super::wire::{ApiErrorBody, Envelope, Problem};

/// The server used when `STAGE_URL` is not set: `stage serve`'s default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";

/// What can go wrong in a client command; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A wrong argument or environment variable, or a local file that cannot be read.
    #[error("{0}")]
    Usage(String),
    #[error(
        "cannot reach the Stage server at {url} (STAGE_URL): {reason}. Start one with `stage serve`, or set \
         STAGE_URL to its address"
    )]
    Unreachable { url: String, reason: String },
    #[error("{} {message}. {hint}", status.as_u16())]
    Unauthorized { status: StatusCode, message: String, hint: String },
    #[error("{0}")]
    NotFound(String),
    /// The server answered with an error of its own.
    #[error("{} {code}: {message}{}", status.as_u16(), problems(details))]
    Refused { status: StatusCode, code: String, message: String, details: Option<Value> },
    /// The answer is not what a Stage server sends.
    #[error("the server at {url} did not answer as Stage does: {what}")]
    Protocol { url: String, what: String },
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::Usage,
            CliError::Unreachable { .. } => ExitCode::Unreachable,
            CliError::Unauthorized { .. } => ExitCode::Unauthorized,
            CliError::NotFound(_) => ExitCode::NotFound,
            CliError::Refused { status, .. }
                if matches!(
                    *status,
                    StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
                ) =>
            {
                ExitCode::Usage
            }
            CliError::Refused { .. } | CliError::Protocol { .. } | CliError::Failed(_) => ExitCode::Error,
        }
    }
}

/// The problems a 422 lists under `details.problems` (a workflow file's, say), one a line.
fn problems(details: &Option<Value>) -> String {
    let Some(list) = details.as_ref().and_then(|d| d.get("problems")) else { return String::new() };
    let list: Vec<Problem> = serde_json::from_value(list.clone()).unwrap_or_default();
    list.iter().map(|Problem { path, message }| format!("\n  {path}: {message}")).collect()
}

/// A Stage server, and the key the commands send to it.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
    key_source: KeySource,
}

/// Where the key sent came from, to say what to fix when the server refuses it.
enum KeySource {
    None,
    Environment,
    DataDir(PathBuf),
}

impl KeySource {
    /// What to do about a 401 (no key or a wrong one) or a 403 (a key that may not do this).
    fn hint(&self, status: StatusCode) -> String {
        match (self, status) {
            (_, StatusCode::FORBIDDEN) => "The server refused this request to this key (or from this address)".into(),
            (KeySource::None, _) => "Pass an API key in STAGE_KEY; for a server on this machine, STAGE_DATA_DIR \
                                     (default ./.stage) names the data folder whose admin-key file is used"
                .into(),
            (KeySource::Environment, _) => "Check the key in STAGE_KEY".into(),
            (KeySource::DataDir(path), _) => format!(
                "The key in {} was refused: is it this server's data folder? Set STAGE_DATA_DIR to it, or pass a \
                 key in STAGE_KEY",
                path.display()
            ),
        }
    }
}

/// An answer's `data`, typed, with the JSON it came from (what `--json` prints).
pub struct Reply<T> {
    pub data: T,
    pub json: Value,
}

/// A run's answer as the workflow made it: not in the envelope when the run happened.
pub struct RawAnswer {
    pub status: StatusCode,
    /// `x-stage-run-id`: present when a run was started (or replayed).
    pub run_id: Option<String>,
    pub replayed: bool,
    pub body: Value,
}

impl Client {
    /// The server of `STAGE_URL` with the key of `STAGE_KEY`; without `STAGE_KEY`, the
    /// admin key in the data folder (`STAGE_DATA_DIR`, default `./.stage`) when the server
    /// is on this machine, so that a local key is never sent elsewhere.
    pub fn from_env() -> Result<Client, CliError> {
        let url = std::env::var("STAGE_URL").ok().filter(|u| !u.trim().is_empty());
        let base = parse_base(url.as_deref().unwrap_or(DEFAULT_URL))?;
        let (key, key_source) = match std::env::var("STAGE_KEY") {
            Ok(key) if !key.trim().is_empty() => (Some(key.trim().to_owned()), KeySource::Environment),
            _ if is_loopback(&base) => match local_admin_key() {
                Some((key, path)) => (Some(key), KeySource::DataDir(path)),
                None => (None, KeySource::None),
            },
            _ => (None, KeySource::None),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("stage-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base, key, key_source })
    }

    /// The URL of `segments` under the server's address; each segment is percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("an http URL has path segments").pop_if_empty().extend(segments);
        url
    }

    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<Reply<T>, CliError> {
        self.call(Method::GET, url, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, url: Url, body: &B) -> Result<Reply<T>, CliError> {
        self.call(Method::POST, url, Some(body)).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(&self, url: Url, body: &B) -> Result<Reply<T>, CliError> {
        self.call(Method::PATCH, url, Some(body)).await
    }

    /// Sends a request to an `/api/v1` route and reads its envelope.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Reply<T>, CliError> {
        let mut request = self.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = self.send(request).await?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| self.not_stage(status, &bytes))?;
        if !status.is_success() || !envelope.success {
            return Err(refusal(status, envelope.error, &self.key_source));
        }
        let json = envelope.data.unwrap_or(Value::Null);
        let data = serde_json::from_value(json.clone())
            .map_err(|e| CliError::Protocol { url: self.base.to_string(), what: format!("{url}: {e}") })?;
        Ok(Reply { data, json })
    }

    /// Posts to the run route, whose answer is the workflow's own (any status and body)
    /// once a run happened, and the envelope when Stage refused to start it.
    pub async fn run(&self, url: Url, body: &Value, idempotency_key: Option<&str>) -> Result<RawAnswer, CliError> {
        let mut request = self.request(Method::POST, url).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let run_id = header("x-stage-run-id");
        let replayed = header("idempotent-replayed").as_deref() == Some("true");
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if run_id.is_none() {
            let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| self.not_stage(status, &bytes))?;
            return Err(refusal(status, envelope.error, &self.key_source));
        }
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(RawAnswer { status, run_id, replayed, body })
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, bytes::Bytes), CliError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Ok((status, bytes))
    }

    fn unreachable(&self, error: reqwest::Error) -> CliError {
        // The innermost cause says why (connection refused, timed out, reset, …).
        let mut cause: &dyn std::error::Error = &error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        CliError::Unreachable { url: self.base.to_string(), reason: cause.to_string() }
    }

    fn not_stage(&self, status: StatusCode, body: &[u8]) -> CliError {
        let start: String = String::from_utf8_lossy(body).chars().take(200).collect();
        CliError::Protocol { url: self.base.to_string(), what: format!("HTTP {status} with body {start:?}") }
    }
}

/// The error of a refused request, by its status.
fn refusal(status: StatusCode, error: Option<ApiErrorBody>, key_source: &KeySource) -> CliError {
    let ApiErrorBody { code, message, details } = error.unwrap_or_else(|| ApiErrorBody {
        code: status.canonical_reason().unwrap_or("ERROR").to_uppercase(),
        message: format!("the server answered {status} without an error"),
        details: None,
    });
    match status {
        StatusCode::NOT_FOUND => CliError::NotFound(message),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CliError::Unauthorized { status, message, hint: key_source.hint(status) }
        }
        _ => CliError::Refused { status, code, message, details },
    }
}

fn parse_base(text: &str) -> Result<Url, CliError> {
    let url = Url::parse(text.trim())
        .map_err(|e| CliError::Usage(format!("STAGE_URL must be a URL such as {DEFAULT_URL}, got {text:?}: {e}")))?;
    match url.scheme() {
        "http" => Ok(url),
        "https" => Err(CliError::Usage(format!(
            "STAGE_URL is {text}, but this build of the stage CLI speaks plain http only; reach the server through \
             an http address (a tunnel or a local proxy)"
        ))),
        other => Err(CliError::Usage(format!("STAGE_URL must be an http:// URL, got scheme {other:?}"))),
    }
}

/// Whether the server is on this machine (a loopback name or address).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The admin key a local server wrote in its data folder, if this user can read it, and
/// the file it is in.
fn local_admin_key() -> Option<(String, PathBuf)> {
    let dir = std::env::var_os("STAGE_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("./.stage"));
    let path = dir.join(stage_host::ADMIN_KEY_FILE);
    let key = std::fs::read_to_string(&path).ok()?;
    Some((key.trim().to_owned(), path)).filter(|(k, _)| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_servers_get_the_local_admin_key() {
        for local in ["http://127.0.0.1:3000", "http://localhost:3000", "http://app.localhost", "http://[::1]:3000"] {
            assert!(is_loopback(&parse_base(local).unwrap()), "{local}");
        }
        for remote in ["http://10.0.0.1:3000", "http://stage.example.com", "http://localhost.example.com"] {
            assert!(!is_loopback(&parse_base(remote).unwrap()), "{remote}");
        }
    }

    #[test]
    fn stage_url_must_be_plain_http() {
        assert!(matches!(parse_base("https://stage.example.com"), Err(CliError::Usage(_))));
        assert!(matches!(parse_base("127.0.0.1:3000"), Err(CliError::Usage(_))));
    }

    #[test]
    fn paths_under_the_base_url_are_percent_encoded_segments() {
        let client = Client {
            http: reqwest::Client::new(),
            base: parse_base("http://127.0.0.1:3000/stage/").unwrap(),
            key: None,
            key_source: KeySource::None,
        };
        let url = client.url(&["api", "v1", "stage", "sessions", "ses_1", "files", "app", "a b#?.tsx"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:3000/stage/api/v1/stage/sessions/ses_1/files/app/a%20b%23%3F.tsx");
    }
}
