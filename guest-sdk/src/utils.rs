//! `@stage/utils`: a retrying fetch through the host's capability policy, ids, time and
//! hashing.
//!
//! ```ignore
//! let answer = utils::Fetch::get("https://api.example.com/items")
//!     .retry(utils::Retry { max_attempts: 3, ..utils::Retry::default() })
//!     .send()?;
//! ```

use crate::StepError;
use crate::backend::step_error;
use crate::backend_bindings::stage::platform::utils as wit;

/// How a failed fetch is retried (AWS Step Functions semantics): the wait before retry `n`
/// is `interval_ms * backoff_rate^(n-1)`, capped by `max_delay_ms`, then jittered. Transport
/// failures, 408, 429 (never sooner than its `Retry-After`) and 5xx are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    /// Retries after the first attempt (at most 10).
    pub max_attempts: u32,
    pub interval_ms: u64,
    pub backoff_rate: f64,
    pub max_delay_ms: Option<u64>,
    pub full_jitter: bool,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry { max_attempts: 3, interval_ms: 1000, backoff_rate: 2.0, max_delay_ms: None, full_jitter: false }
    }
}

/// A request for [`Fetch::send`].
#[derive(Debug, Clone)]
pub struct Fetch {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    retry: Option<Retry>,
}

/// What the last attempt answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// 1 when the first attempt answered.
    pub attempts: u32,
}

impl Fetched {
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

impl Fetch {
    pub fn new(method: &str, url: &str) -> Fetch {
        Fetch { method: method.to_owned(), url: url.to_owned(), headers: Vec::new(), body: Vec::new(), retry: None }
    }

    pub fn get(url: &str) -> Fetch {
        Fetch::new("GET", url)
    }

    pub fn post(url: &str) -> Fetch {
        Fetch::new("POST", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Fetch {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Fetch {
        self.body = body;
        self
    }

    /// Sends `value` as the JSON body.
    pub fn json(self, value: &serde_json::Value) -> Fetch {
        self.header("content-type", "application/json").body(value.to_string().into_bytes())
    }

    pub fn retry(mut self, retry: Retry) -> Fetch {
        self.retry = Some(retry);
        self
    }

    /// Sends the request (retrying as asked); a refused destination is a permanent error.
    pub fn send(self) -> Result<Fetched, StepError> {
        let request = wit::FetchRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            retry: self.retry.map(|r| wit::RetryPolicy {
                max_attempts: r.max_attempts,
                interval_ms: r.interval_ms,
                backoff_rate: r.backoff_rate,
                max_delay_ms: r.max_delay_ms,
                full_jitter: r.full_jitter,
            }),
        };
        let response = wit::fetch(&request).map_err(step_error)?;
        Ok(Fetched {
            status: response.status,
            headers: response.headers,
            body: response.body,
            attempts: response.attempts,
        })
    }
}

/// A new random id: `prefix` and 20 base-36 characters that sort by creation time.
pub fn new_id(prefix: &str) -> String {
    wit::new_id(prefix)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    wit::now_ms()
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    wit::sha256_hex(data)
}
