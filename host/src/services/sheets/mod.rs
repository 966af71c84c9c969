//! Sheets: an emulator of the Google Sheets API v4, so that apps and scripts run offline with
//! the same workflow files and client code they use against Google.
//!
//! Routes (below `/sheets`, so `/api/v1/sheets/v4/…` over the API and
//! `https://sheets.googleapis.com/v4/…` from steps when the emulator is the upstream):
//! * `POST /v4/spreadsheets` — `spreadsheets.create`;
//! * `GET /v4/spreadsheets/{id}` — `spreadsheets.get` (`ranges`, `includeGridData`);
//! * `POST /v4/spreadsheets/{id}:batchUpdate`, `…:getByDataFilter` ([`batch`], [`spreadsheet`]);
//! * `GET`/`PUT /v4/spreadsheets/{id}/values/{range}` — `values.get`, `values.update`;
//! * `POST /v4/spreadsheets/{id}/values/{range}:append`, `…:clear`;
//! * `GET /v4/spreadsheets/{id}/values:batchGet`; `POST …/values:batchUpdate`,
//!   `…:batchClear`, `…:batchGetByDataFilter`, `…:batchUpdateByDataFilter`,
//!   `…:batchClearByDataFilter` ([`methods`]).
//!
//! Every answer and error under the prefix has Google's shapes (`{"error":{"code","message",
//! "status"}}`, unknown routes and methods included), and the `fields` parameter trims every
//! answer ([`mask`]), so that Google's client libraries work against it. Spreadsheets belong
//! to the caller's tenant.
//!
//! [`a1`] parses and prints A1 ranges, [`values`] converts between JSON and cells,
//! [`format`] holds cell formats, [`engine`] reads typed numbers and shows numbers in a
//! pattern, [`formulas`] has formulas evaluated in the formula sandbox, [`grid`] finds tables
//! and moves cells, [`book`] is one spreadsheet inside a request's transaction.

pub mod a1;
pub mod batch;
pub mod book;
pub mod cell;
pub mod engine;
pub mod format;
pub mod formulas;
pub mod grid;
pub mod mask;
pub mod methods;
pub mod spreadsheet;
pub mod values;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::{ServiceCaller, ServiceState};
use mask::Mask;
use stage_store::{Store, StoreError};

pub(super) fn router() -> Router<ServiceState> {
    Router::new()
        .route("/sheets/v4/spreadsheets", post(spreadsheet::create).fallback(method_not_allowed))
        .route(
            "/sheets/v4/spreadsheets/{id}",
            get(spreadsheet::get).post(spreadsheet_verb).fallback(method_not_allowed),
        )
        .route(
            "/sheets/v4/spreadsheets/{id}/{verb}",
            get(methods::collection_get).post(methods::collection_post).fallback(method_not_allowed),
        )
        .route(
            "/sheets/v4/spreadsheets/{id}/values/{range}",
            get(methods::get).put(methods::update).post(methods::range_verb).fallback(method_not_allowed),
        )
        .route("/sheets", any(not_found))
        .route("/sheets/{*rest}", any(not_found))
        .layer(middleware::from_fn(partial_response))
}

/// An error in Google's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleError {
    pub code: StatusCode,
    pub message: String,
}

impl GoogleError {
    pub fn new(code: StatusCode, message: impl Into<String>) -> GoogleError {
        GoogleError { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> GoogleError {
        GoogleError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found() -> GoogleError {
        GoogleError::new(StatusCode::NOT_FOUND, "Requested entity was not found.")
    }

    /// Google's `status` for the HTTP code.
    pub fn status(&self) -> &'static str {
        match self.code.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            413 => "INVALID_ARGUMENT",
            429 => "RESOURCE_EXHAUSTED",
            501 => "UNIMPLEMENTED",
            503 => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }
}

impl IntoResponse for GoogleError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code.as_u16(), "message": self.message, "status": self.status() } });
        (self.code, Json(body)).into_response()
    }
}

impl From<StoreError> for GoogleError {
    fn from(error: StoreError) -> GoogleError {
        tracing::error!(%error, "sheets emulator storage failed");
        GoogleError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error encountered.")
    }
}

impl From<a1::RangeError> for GoogleError {
    fn from(error: a1::RangeError) -> GoogleError {
        GoogleError::invalid(error.0)
    }
}

type GoogleResult = Result<Json<Value>, GoogleError>;

/// Whether a path (below the services' mount point) belongs to the emulator, whose answers
/// must all be in Google's shape.
pub fn owns_path(path: &str) -> bool {
    path == "/sheets" || path.starts_with("/sheets/")
}

async fn not_found(method: axum::http::Method, uri: OriginalUri) -> GoogleError {
    GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: {method} {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: OriginalUri) -> GoogleError {
    // Google routes by method and path together, so a known path with another method is
    // an unknown method too.
    GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: {method} {}", uri.path()))
}

/// The query parameters of a request, repeats kept (`ranges=A1&ranges=B2`).
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn of(uri: &Uri) -> Result<Params, GoogleError> {
        let query = uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Params)
            .map_err(|e| GoogleError::invalid(format!("Invalid query string: {e}")))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect()
    }

    /// A parameter that must be one of an enum's names, reported like Google does.
    pub fn enumerated<T>(
        &self,
        name: &str,
        type_name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, GoogleError> {
        match self.get(name) {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| enum_error(&snake_case(name), type_name, text)),
        }
    }

    pub fn boolean(&self, name: &str) -> Result<bool, GoogleError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(other) => {
                Err(GoogleError::invalid(format!("Invalid value at '{}' (TYPE_BOOL), \"{other}\"", snake_case(name))))
            }
        }
    }
}

/// Google's text for an enum value it does not know.
pub fn enum_error(field: &str, type_name: &str, text: &str) -> GoogleError {
    GoogleError::invalid(format!(
        "Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.{type_name}), \"{text}\""
    ))
}

/// `valueRenderOption` → `value_render_option`, as Google names fields in errors.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a JSON body the way Google reports problems with one (an empty body is the
/// default).
pub fn json_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, GoogleError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            GoogleError::invalid(format!("Invalid JSON payload received. {inner}"))
        } else {
            GoogleError::invalid(format!("Invalid JSON payload received. Invalid value at '{path}': {inner}"))
        }
    })
}

/// Applies the `fields` parameter to every successful JSON answer, refusing a malformed
/// mask before the request runs.
async fn partial_response(request: Request, next: Next) -> Response {
    let mask = match Params::of(request.uri()) {
        Ok(params) => match params.get("fields").filter(|f| !f.is_empty()) {
            Some(text) => match Mask::parse(text) {
                Ok(mask) => Some(mask),
                Err(message) => return GoogleError::invalid(message).into_response(),
            },
            None => None,
        },
        Err(error) => return error.into_response(),
    };
    let response = next.run(request).await;
    let Some(mask) = mask else { return response };
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return GoogleError::from(StoreError::Internal("reading an answer".into())).into_response();
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => {
            let trimmed = mask.apply(&value);
            let mut response = Json(trimmed).into_response();
            *response.status_mut() = parts.status;
            response
        }
        Err(_) => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// The host steps address the emulator by (`gateway::SHEETS_HOST`).
const GOOGLE_HOST: &str = "sheets.googleapis.com";

/// The URL a spreadsheet is shown at: the emulator's own resource, under the origin the
/// caller used (`http://127.0.0.1:3000/api/v1/sheets/v4/spreadsheets/<id>`), or relative to
/// the Stage server when the caller is a step (which reaches the emulator in-process).
pub fn spreadsheet_url(headers: &HeaderMap, id: &str) -> String {
    let path = format!("/api/v1/sheets/v4/spreadsheets/{id}");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    // Steps address the emulator as Google's host, which is not where a person can open it.
    match header("host").filter(|h| !h.is_empty() && !h.eq_ignore_ascii_case(GOOGLE_HOST)) {
        Some(host) => {
            let scheme = match header("x-forwarded-proto") {
                Some(proto) if proto.eq_ignore_ascii_case("https") => "https",
                _ => "http",
            };
            format!("{scheme}://{host}{path}")
        }
        None => path,
    }
}

/// What the emulator's requests work with: the store and the formula sandbox.
#[derive(Clone)]
pub struct SheetsState {
    pub store: Store,
    pub formulas: std::sync::Arc<formulas::Formulas>,
}

impl axum::extract::FromRef<ServiceState> for SheetsState {
    fn from_ref(state: &ServiceState) -> SheetsState {
        SheetsState { store: state.store.clone(), formulas: state.formulas.clone() }
    }
}

/// Runs a request's work on the spreadsheet without changing it.
pub(crate) async fn read_book<F>(sheets: &SheetsState, tenant_id: &str, id: &str, work: F) -> GoogleResult
where
    F: Fn(&mut book::Book<'_>) -> book::BookResult<Value> + Send + Sync + 'static,
{
    book::read(sheets, tenant_id, id, work).await.map(Json)
}

/// Runs a request's work on the spreadsheet, keeping its changes when it succeeds.
pub(crate) async fn update_book<F>(sheets: &SheetsState, tenant_id: &str, id: &str, work: F) -> GoogleResult
where
    F: Fn(&mut book::Book<'_>) -> book::BookResult<Value> + Send + Sync + 'static,
{
    book::update(sheets, tenant_id, id, work).await.map(Json)
}

/// `POST /v4/spreadsheets/{id}:verb`: `batchUpdate` and `getByDataFilter`.
async fn spreadsheet_verb(
    State(sheets): State<SheetsState>,
    caller: ServiceCaller,
    headers: HeaderMap,
    Path(id_and_verb): Path<String>,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> GoogleResult {
    match id_and_verb.rsplit_once(':') {
        Some((id, "batchUpdate")) => batch::batch_update(&sheets, &caller, &headers, id, &body).await,
        Some((id, "getByDataFilter")) => spreadsheet::get_by_data_filter(&sheets, &caller, &headers, id, &body).await,
        _ => Err(GoogleError::new(StatusCode::NOT_FOUND, format!("Method not found: POST {}", uri.path()))),
    }
}
