//! The response envelope of `/api/v1/**`, written in exactly one place:
//! `{"success":true,"data":…}` or `{"success":false,"error":{"code","message","details"?}}`.
//!
//! Shared by the API routers and the embedded services, with the request extractors in
//! [`extract`] whose failures answer in the same envelope, and the rules for headers of
//! responses made by tenant code in [`app_headers`].

pub mod app_headers;
pub mod extract;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use stage_runtime::{Failure, Subject};
use stage_store::StoreError;

/// Error codes of the API; each has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    RateLimited,
    CapabilityDenied,
    StepFailed,
    StepTimeout,
    UpstreamError,
    BackendError,
    BackendTimeout,
    /// A template passed a bound of evaluation (memory, time, output).
    TemplateLimit,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::CapabilityDenied => "CAPABILITY_DENIED",
            ErrorCode::StepFailed => "STEP_FAILED",
            ErrorCode::StepTimeout => "STEP_TIMEOUT",
            ErrorCode::UpstreamError => "UPSTREAM_ERROR",
            ErrorCode::BackendError => "BACKEND_ERROR",
            ErrorCode::BackendTimeout => "BACKEND_TIMEOUT",
            ErrorCode::TemplateLimit => "TEMPLATE_LIMIT",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::ValidationFailed | ErrorCode::TemplateLimit => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::CapabilityDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::StepFailed | ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorCode::StepTimeout | ErrorCode::BackendTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal | ErrorCode::BackendError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The code a failed step or backend is answered with: a timeout is the step's or the
/// backend's, a refused capability is `CAPABILITY_DENIED`, a backend's response past its
/// limit `PAYLOAD_TOO_LARGE`; anything else failed the step (`STEP_FAILED`) or the
/// backend (`BACKEND_ERROR`).
impl From<&Failure> for ErrorCode {
    fn from(failure: &Failure) -> ErrorCode {
        match failure {
            Failure::Timeout { subject: Subject::Step, .. } => ErrorCode::StepTimeout,
            Failure::Timeout { subject: Subject::Backend, .. } => ErrorCode::BackendTimeout,
            Failure::Denied(_) => ErrorCode::CapabilityDenied,
            Failure::OutputTooLarge { subject: Subject::Backend, .. } => ErrorCode::PayloadTooLarge,
            Failure::MemoryExceeded { subject: Subject::Backend, .. }
            | Failure::Trap { subject: Subject::Backend, .. }
            | Failure::Instantiate { subject: Subject::Backend, .. }
            | Failure::NoResponse(_) => ErrorCode::BackendError,
            Failure::Classified { .. }
            | Failure::OutboundLimit(_)
            | Failure::Credentials(_)
            | Failure::MemoryExceeded { subject: Subject::Step, .. }
            | Failure::OutputTooLarge { subject: Subject::Step, .. }
            | Failure::Trap { subject: Subject::Step, .. }
            | Failure::Instantiate { subject: Subject::Step, .. } => ErrorCode::StepFailed,
        }
    }
}

/// An error answer. Handlers return `Result<_, ApiError>`; the envelope is built here.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", .code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Structured extras, e.g. every problem of a failed validation.
    pub details: Option<Value>,
    /// Sent as `Retry-After` (whole seconds, at least 1): when trying again is worth it.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: None, retry_after: None }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ValidationFailed, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::PayloadTooLarge, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }
    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }
    pub fn with_retry_after(mut self, wait: std::time::Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            StoreError::Invalid(m) => ApiError::validation(m),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::internal("internal error: the store could not complete the request")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        let mut response = (self.code.status(), Json(json!({ "success": false, "error": error }))).into_response();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// A success answer: `{"success":true,"data":…}` with a status (200 unless created).
pub struct Envelope<T> {
    status: StatusCode,
    data: T,
}

/// 200 with `data`.
pub fn ok<T: Serialize>(data: T) -> Envelope<T> {
    Envelope { status: StatusCode::OK, data }
}

/// 201 with `data`.
pub fn created<T: Serialize>(data: T) -> Envelope<T> {
    Envelope { status: StatusCode::CREATED, data }
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<T> {
            success: bool,
            data: T,
        }
        (self.status, Json(Body { success: true, data: self.data })).into_response()
    }
}

pub type ApiResult<T> = Result<Envelope<T>, ApiError>;
