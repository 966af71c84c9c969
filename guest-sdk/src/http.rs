//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Every request passes the host's capability policy: a destination the step did not
//! declare is refused ([`HttpError::Denied`]), and credentials for allowed destinations are
//! added by the host, never by the guest. Bodies are read up to a bound.
//!
//! ```ignore
//! let answer = Request::post("http://pulse.stage.internal/events")
//!     .header("idempotency-key", &ctx.idempotency_key)
//!     .json(&json!({ "name": "signup" }))
//!     .send()?;
//! let event = answer.stage_data()?;
//! ```

use serde_json::Value;

use crate::world::wasi::http::outgoing_handler;
use crate::world::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::world::wasi::io::streams::StreamError;
use crate::{ErrorClass, StepError};

/// Largest response body read unless [`Request::max_body`] says otherwise.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// `blocking-write-and-flush` accepts at most this many bytes per call.
const WRITE_CHUNK: usize = 4096;

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host's capability policy refused the destination.
    #[error("the host refused the request to {0} (capability policy)")]
    Denied(String),
    /// The URL could not be understood.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The response body exceeded the bound.
    #[error("the response body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// Any other transport failure (connection, timeout, protocol).
    #[error("request failed: {0}")]
    Transport(String),
}

impl From<HttpError> for StepError {
    fn from(error: HttpError) -> StepError {
        match error {
            HttpError::Transport(_) => StepError::Transient(error.to_string()),
            HttpError::InvalidUrl(_) => StepError::InvalidInput(error.to_string()),
            HttpError::Denied(_) | HttpError::BodyTooLarge(_) => StepError::Permanent(error.to_string()),
        }
    }
}

/// An outgoing request, built then [`send`](Request::send)-ed.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body: usize,
    timeout_ms: Option<u64>,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Request {
        let method = match method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_owned()),
        };
        Request {
            method,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            timeout_ms: None,
        }
    }

    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    pub fn post(url: &str) -> Request {
        Request::new("POST", url)
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sends `value` as the JSON body.
    pub fn json(self, value: &Value) -> Request {
        let body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json").body(body)
    }

    pub fn body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// Bounds the response body read (default [`DEFAULT_MAX_BODY`]).
    pub fn max_body(mut self, bytes: usize) -> Request {
        self.max_body = bytes;
        self
    }

    /// Bounds connecting and waiting for the first byte.
    pub fn timeout_ms(mut self, ms: u64) -> Request {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request and reads the whole (bounded) response.
    pub fn send(self) -> Result<Response, HttpError> {
        let target = Target::parse(&self.url)?;
        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|e| HttpError::InvalidUrl(format!("header {name}: {e:?}")))?;
        }
        let request = OutgoingRequest::new(headers);
        let invalid = |what: &str| HttpError::InvalidUrl(format!("{what} refused for {}", self.url));
        request.set_method(&self.method).map_err(|()| invalid("method"))?;
        request.set_scheme(Some(&target.scheme)).map_err(|()| invalid("scheme"))?;
        request.set_authority(Some(&target.authority)).map_err(|()| invalid("authority"))?;
        request.set_path_with_query(Some(&target.path)).map_err(|()| invalid("path"))?;
        let body = request.body().map_err(|()| HttpError::Transport("the request body was taken".into()))?;

        let options = self.timeout_ms.map(|ms| {
            let options = RequestOptions::new();
            let nanos = ms.saturating_mul(1_000_000);
            let _ = options.set_connect_timeout(Some(nanos));
            let _ = options.set_first_byte_timeout(Some(nanos));
            options
        });
        let pending = outgoing_handler::handle(request, options).map_err(|e| error_of(&self.url, e))?;
        write_body(&body, &self.body)?;
        OutgoingBody::finish(body, None).map_err(|e| error_of(&self.url, e))?;

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(error_of(&self.url, code)),
            Some(Err(())) | None => return Err(HttpError::Transport("the response was already taken".into())),
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let incoming = response.consume().map_err(|()| HttpError::Transport("the response body was taken".into()))?;
        let body = read_body(incoming, self.max_body)?;
        Ok(Response { status, headers, body })
    }
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body.write().map_err(|()| HttpError::Transport("the request body stream was taken".into()))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(|e| HttpError::Transport(stream_error(e)))?;
    }
    Ok(())
}

fn read_body(incoming: IncomingBody, limit: usize) -> Result<Vec<u8>, HttpError> {
    let stream = incoming.stream().map_err(|()| HttpError::Transport("the response body stream was taken".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if body.len() + chunk.len() > limit {
                    return Err(HttpError::BodyTooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(e) => return Err(HttpError::Transport(stream_error(e))),
        }
    }
    drop(stream);
    let _ = IncomingBody::finish(incoming);
    Ok(body)
}

fn stream_error(error: StreamError) -> String {
    match error {
        StreamError::Closed => "the stream closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

fn error_of(url: &str, code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(url.to_owned()),
        ErrorCode::HttpRequestUriInvalid => HttpError::InvalidUrl(url.to_owned()),
        ErrorCode::HttpResponseBodySize(_) => HttpError::BodyTooLarge(0),
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// The parts of an absolute `http(s)://authority/path?query` URL that wasi:http takes.
/// (Hand-split because only these three parts are needed; the host re-validates them.)
struct Target {
    scheme: Scheme,
    authority: String,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, HttpError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| HttpError::InvalidUrl(format!("{url} is not an absolute http(s) URL")))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(HttpError::InvalidUrl(format!("unsupported scheme {other} in {url}"))),
        };
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(HttpError::InvalidUrl(format!("{url} has no host")));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(Target { scheme, authority: authority.to_owned(), path })
    }
}

/// A response with its whole (bounded) body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, StepError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| StepError::Permanent(format!("the response (HTTP {}) is not JSON: {e}", self.status)))
    }

    /// Classifies a non-2xx status as a step error by the status table the host uses too
    /// ([`ErrorClass::for_status`]): 400/422 invalid input, 401/403 unauthorized, 408 and
    /// 5xx transient, 429 rate-limited (honouring `Retry-After` seconds), others permanent.
    /// `detail` is the upstream's message.
    pub fn error_for_status(&self, detail: &str) -> StepError {
        let message = format!("HTTP {}: {detail}", self.status);
        match ErrorClass::for_status(self.status) {
            ErrorClass::InvalidInput => StepError::InvalidInput(message),
            ErrorClass::Unauthorized => StepError::Unauthorized(message),
            ErrorClass::Transient => StepError::Transient(message),
            ErrorClass::RateLimited => {
                let seconds = self.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(1);
                StepError::RateLimited(seconds * 1000)
            }
            ErrorClass::Permanent => StepError::Permanent(message),
        }
    }

    /// The `data` of a Stage service answer (`{"success":true,"data":…}`), or the
    /// classified error naming the service's message.
    pub fn stage_data(&self) -> Result<Value, StepError> {
        let body = self.json()?;
        if (200..300).contains(&self.status) && body["success"] == Value::Bool(true) {
            return Ok(body["data"].clone());
        }
        let detail = body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| self.text());
        Err(self.error_for_status(&detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let t = Target::parse("http://pulse.stage.internal/events?x=1").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("pulse.stage.internal", "/events?x=1"));
        assert!(matches!(t.scheme, Scheme::Http));
        let t = Target::parse("https://example.com:8443").unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("example.com:8443", "/"));
        let t = Target::parse("https://example.com?q").unwrap();
        assert_eq!(t.path, "/?q");
        assert!(Target::parse("ftp://x/y").is_err());
        assert!(Target::parse("example.com/x").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn classifies_statuses() {
        let answer = |status: u16, headers: Vec<(String, String)>| Response { status, headers, body: Vec::new() };
        assert!(matches!(answer(422, vec![]).error_for_status("x"), StepError::InvalidInput(_)));
        assert!(matches!(answer(403, vec![]).error_for_status("x"), StepError::Unauthorized(_)));
        assert!(matches!(answer(503, vec![]).error_for_status("x"), StepError::Transient(_)));
        assert_eq!(
            answer(429, vec![("retry-after".into(), "3".into())]).error_for_status("x"),
            StepError::RateLimited(3000)
        );
        assert!(matches!(answer(404, vec![]).error_for_status("x"), StepError::Permanent(_)));
    }
}
