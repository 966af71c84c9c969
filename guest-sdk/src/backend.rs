//! API backends: a `wasi:http/proxy` component serving `/stage/<app>/api/*`, written as a
//! plain function from [`Request`] to [`Response`] registered with [`backend!`](crate::backend!).
//!
//! The host strips the `/stage/<app>/api` prefix, so a request for
//! `/stage/app_1/api/users?x=1` arrives with [`Request::path`] `/users?x=1`. The caller's
//! verified identity is in the `x-stage-app-sid` and `x-stage-user-email|name|id` headers
//! (see [`Request::user_email`]); the host removes any client-sent `x-stage-*` header.
//!
//! ```ignore
//! use stage_guest_sdk::backend::{Request, Response};
//!
//! fn handle(request: Request) -> Response {
//!     match (request.method.as_str(), request.route()) {
//!         ("GET", "/hello") => Response::text(200, "hello"),
//!         _ => Response::text(404, "not found"),
//!     }
//! }
//!
//! stage_guest_sdk::backend!(handle);
//! ```

use serde::Serialize;
use serde_json::Value;

use crate::backend_bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use crate::backend_bindings::wasi::io::streams::StreamError;

/// Largest request body a backend reads (the host's limit applies first).
pub const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;
/// `blocking-write-and-flush` accepts at most this many bytes per call.
const WRITE_CHUNK: usize = 4096;

/// An incoming request, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper case (`GET`, `POST`, …).
    pub method: String,
    /// Path and query after the `/stage/<app>/api` prefix (`/users?x=1`).
    pub path: String,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The path without its query (`/users`).
    pub fn route(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(route, _)| route)
    }

    /// The query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The verified caller's email (`x-stage-user-email`), if the caller is known.
    pub fn user_email(&self) -> Option<&str> {
        self.header("x-stage-user-email")
    }

    /// The verified caller's user id (`x-stage-user-id`), if the caller is known.
    pub fn user_id(&self) -> Option<&str> {
        self.header("x-stage-user-id")
    }

    /// The app this backend serves (`x-stage-app-sid`).
    pub fn app_sid(&self) -> Option<&str> {
        self.header("x-stage-app-sid")
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response { status, headers: Vec::new(), body: Vec::new() }
    }

    /// `value` as JSON.
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status).header("content-type", "application/json").body(body)
    }

    /// Plain UTF-8 text.
    pub fn text(status: u16, text: &str) -> Response {
        Response::new(status).header("content-type", "text/plain; charset=utf-8").body(text.as_bytes().to_vec())
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Response {
        self.body = body;
        self
    }
}

/// The glue [`backend!`](crate::backend!) expands to: reads the request, calls the
/// handler, writes its response.
#[doc(hidden)]
pub fn serve(incoming: IncomingRequest, outparam: ResponseOutparam, handler: fn(Request) -> Response) {
    let response = match read_request(incoming) {
        Ok(request) => handler(request),
        Err(why) => Response::text(400, &why),
    };
    let headers = Fields::new();
    for (name, value) in &response.headers {
        // A header the host would refuse is dropped rather than failing the whole answer.
        let _ = headers.append(name, value.as_bytes());
    }
    let outgoing = OutgoingResponse::new(headers);
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else { return };
    ResponseOutparam::set(outparam, Ok(outgoing));
    if let Ok(stream) = body.write() {
        for chunk in response.body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

fn read_request(incoming: IncomingRequest) -> Result<Request, String> {
    let method = match incoming.method() {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other.to_ascii_uppercase(),
    };
    let path = incoming.path_with_query().unwrap_or_else(|| "/".to_owned());
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = match incoming.consume() {
        Ok(body) => read_body(body)?,
        Err(()) => Vec::new(),
    };
    Ok(Request { method, path, headers, body })
}

fn read_body(incoming: IncomingBody) -> Result<Vec<u8>, String> {
    let stream = incoming.stream().map_err(|()| "the request body stream was taken".to_owned())?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) if body.len() + chunk.len() > MAX_REQUEST_BODY => {
                return Err(format!("the request body exceeds {MAX_REQUEST_BODY} bytes"));
            }
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the request body failed: {}", e.to_debug_string()));
            }
        }
    }
    drop(stream);
    IncomingBody::finish(incoming);
    Ok(body)
}

/// The error a host interface reported, as this crate's [`StepError`](crate::StepError).
pub(crate) fn step_error(error: crate::backend_bindings::stage::platform::types::StepError) -> crate::StepError {
    use crate::backend_bindings::stage::platform::types::StepError as Wit;
    match error {
        Wit::InvalidInput(m) => crate::StepError::InvalidInput(m),
        Wit::Transient(m) => crate::StepError::Transient(m),
        Wit::RateLimited(ms) => crate::StepError::RateLimited(ms),
        Wit::Unauthorized(m) => crate::StepError::Unauthorized(m),
        Wit::Permanent(m) => crate::StepError::Permanent(m),
    }
}

/// Registers `fn(Request) -> Response` as the component's `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! backend {
    ($handler:path) => {
        struct StageBackend;

        impl $crate::backend_bindings::exports::wasi::http::incoming_handler::Guest for StageBackend {
            fn handle(
                request: $crate::backend_bindings::wasi::http::types::IncomingRequest,
                outparam: $crate::backend_bindings::wasi::http::types::ResponseOutparam,
            ) {
                $crate::backend::serve(request, outparam, $handler)
            }
        }

        $crate::backend_bindings::export_backend!(StageBackend with_types_in $crate::backend_bindings);
    };
}
