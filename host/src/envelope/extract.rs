//! Request extractors whose failures answer in the envelope and name what was wrong.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The largest request body a route accepts, set for all routes by a layer
/// (`Extension(BodyLimit(n))`); [`BodyLimit::DEFAULT`] when absent.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl BodyLimit {
    pub const DEFAULT: BodyLimit = BodyLimit(50 * 1024 * 1024);

    pub fn of(request: &Request) -> usize {
        request.extensions().get::<BodyLimit>().copied().unwrap_or(BodyLimit::DEFAULT).0
    }
}

/// A JSON request body, bounded by the request's [`BodyLimit`]. An empty body reads as `{}`
/// so that routes whose fields are all optional accept a bare POST.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &S) -> Result<Self, ApiError> {
        let limit = BodyLimit::of(&request);
        let bytes = read_body(request, limit).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Reads a whole body, refusing it with 413 past `limit` bytes.
pub async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::too_large(format!("the request body exceeds the limit of {limit} bytes"));
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("could not read the request body: {e}"))),
    }
}

/// Parses a JSON object, telling malformed JSON (400) from well-formed JSON of the wrong
/// shape (422, naming the field by its path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => b"{}",
        Some(b'{') => bytes,
        // Every body is an object; serde would read some structs from arrays too.
        Some(_) => {
            let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| json_error(".", e))?;
            return Err(ApiError::validation(format!(
                "invalid request body: expected a JSON object, got {}",
                json_type(&value)
            )));
        }
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        json_error(&path, e.into_inner())
    })?;
    deserializer.end().map_err(|e| json_error(".", e))?;
    Ok(value)
}

fn json_error(path: &str, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data => {
            let message = error.to_string();
            let message = strip_position(&message);
            if path == "." || path.is_empty() {
                ApiError::validation(format!("invalid request body: {message}"))
            } else {
                ApiError::validation(format!("invalid field `{path}`: {message}"))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(format!("malformed JSON: {error}")),
    }
}

/// serde_json appends " at line L column C" to data errors; for a shape error the field
/// path says more, so the position is dropped.
fn strip_position(message: &str) -> &str {
    message.rsplit_once(" at line ").map_or(message, |(head, _)| head)
}

/// A query string; a malformed one answers 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri).map(|q| Query(q.0)).map_err(|e| bad_query(&e.body_text()))
    }
}

fn bad_query(why: &str) -> ApiError {
    let why = why.trim_start_matches("Failed to deserialize query string: ");
    ApiError::bad_request(format!("invalid query string: {why}"))
}

/// Path parameters; undecodable ones answer 400.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

/// How a JSON value's type reads in an error message ("a number", "an array", …).
pub fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
