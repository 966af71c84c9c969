//! Convex-compatible function calls: `POST /api/query|mutation|action`.
//!
//! The Stage CLI and the `convex` npm `ConvexHttpClient` talk to Stage as they would to the
//! Convex deployment of the original Stage: `{"path":"stage:writeFile","args":{…},
//! "format":"json"}` answers `{"status":"success","value":…,"logLines":[]}`. Every public
//! function of the original `stage` module is here with its arguments, its documents (with
//! the system fields `_id` and `_creationTime`), its ordering and its version semantics
//! (every `writeFile` is a new version), plus the platform's `listSessions`, `listApps`,
//! `getApp`, `getAppBySession` and `updateApp`. Each family of functions has its module.
//!
//! Errors come in Convex's two classes, both HTTP 200 `{"status":"error","errorMessage",…}`
//! as Convex answers them:
//! * thrown by a function on purpose (a refusal of Stage's: a limit, a bad path, something
//!   not found) — with `errorData: {code, message}`, which the npm client raises as a
//!   `ConvexError` carrying `.data`;
//! * system errors — an argument that does not match the function's validator, an unknown
//!   function, a query called as a mutation, an unexpected failure — without `errorData`,
//!   which the client raises as a plain `Error`.
//!
//! A request the protocol itself refuses answers 4xx `{"code","message"}` as Convex does: 400
//! `BadFormat` (not JSON, no path, an unknown format, a malformed encoded value), 400
//! `BadConvexFunctionIdentifier` (a path that names no function at all, such as `stage:`),
//! 401 `Unauthenticated` (bad credentials).

mod apps;
mod args;
mod feedback;
mod files;
mod secrets;
mod sessions;
mod state;
mod users;
mod value;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Map, Value, json};

use self::value::{ConvexValue, Format};
use super::AppState;
use super::auth::authenticate;
use crate::envelope::extract::{BodyLimit, read_body};
use crate::envelope::{ApiError, ErrorCode};
use stage_store::StoreError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/query", post(|State(s): State<AppState>, r: Request| call(s, Kind::Query, r)))
        .route("/api/mutation", post(|State(s): State<AppState>, r: Request| call(s, Kind::Mutation, r)))
        .route("/api/action", post(|State(s): State<AppState>, r: Request| call(s, Kind::Action, r)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Query,
    Mutation,
    Action,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Query => "Query",
            Kind::Mutation => "Mutation",
            Kind::Action => "Action",
        }
    }
}

/// The module a function's handler lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Sessions,
    Files,
    State,
    Users,
    Secrets,
    Apps,
    Feedback,
}

/// A public function of the `stage` module.
#[derive(Debug, PartialEq, Eq)]
struct Function {
    name: &'static str,
    kind: Kind,
    family: Family,
    /// Its arguments or result are secrets: its errors are not logged.
    sensitive: bool,
}

const fn function(name: &'static str, kind: Kind, family: Family) -> Function {
    Function { name, kind, family, sensitive: false }
}

const FUNCTIONS: &[Function] = &[
    function("createSession", Kind::Mutation, Family::Sessions),
    function("getSession", Kind::Query, Family::Sessions),
    function("listSessions", Kind::Query, Family::Sessions),
    function("triggerRender", Kind::Mutation, Family::Sessions),
    function("getRenderState", Kind::Query, Family::Sessions),
    function("reportError", Kind::Mutation, Family::Sessions),
    function("clearError", Kind::Mutation, Family::Sessions),
    function("getStatus", Kind::Query, Family::Sessions),
    function("writeFile", Kind::Mutation, Family::Files),
    function("readFile", Kind::Query, Family::Files),
    function("readFileAtVersion", Kind::Query, Family::Files),
    function("getFileHistory", Kind::Query, Family::Files),
    function("getAllFiles", Kind::Query, Family::Files),
    function("createSnapshot", Kind::Mutation, Family::Files),
    function("getSnapshots", Kind::Query, Family::Files),
    function("restoreSnapshot", Kind::Mutation, Family::Files),
    function("kvSet", Kind::Mutation, Family::State),
    function("kvGet", Kind::Query, Family::State),
    function("setLiveData", Kind::Mutation, Family::State),
    function("getLiveData", Kind::Query, Family::State),
    function("sendMessage", Kind::Mutation, Family::State),
    function("getMessages", Kind::Query, Family::State),
    function("clearMessages", Kind::Mutation, Family::State),
    function("setGoogleScopes", Kind::Mutation, Family::Users),
    function("getGoogleScopes", Kind::Query, Family::Users),
    function("setUserAuth", Kind::Mutation, Family::Users),
    function("getUserAuth", Kind::Query, Family::Users),
    Function { sensitive: true, ..function("setSecret", Kind::Mutation, Family::Secrets) },
    Function { sensitive: true, ..function("getSecret", Kind::Query, Family::Secrets) },
    function("listApps", Kind::Query, Family::Apps),
    function("getApp", Kind::Query, Family::Apps),
    function("getAppBySession", Kind::Query, Family::Apps),
    function("updateApp", Kind::Mutation, Family::Apps),
    function("createFeedback", Kind::Mutation, Family::Feedback),
    function("listFeedback", Kind::Query, Family::Feedback),
    function("getFeedback", Kind::Query, Family::Feedback),
    function("updateFeedbackStatus", Kind::Mutation, Family::Feedback),
];

/// What a function runs with.
struct Ctx<'a> {
    state: &'a AppState,
    /// The caller's tenant: every function sees that tenant's data only.
    tenant: &'a str,
    /// How values are written in the answer.
    format: Format,
}

/// Why a function failed, in Convex's classes.
#[derive(Debug)]
enum FunctionError {
    /// A refusal the function throws on purpose (Convex's `ConvexError`): answered with
    /// `errorData`.
    Thrown { code: ErrorCode, message: String },
    /// Convex's own errors (arguments, unknown functions): no `errorData`.
    System(String),
    /// An unexpected failure, already logged: answered redacted, without `errorData`.
    Internal,
}

impl From<ApiError> for FunctionError {
    fn from(error: ApiError) -> FunctionError {
        match error.code {
            ErrorCode::Internal => FunctionError::Internal,
            code => FunctionError::Thrown { code, message: error.message },
        }
    }
}

impl From<StoreError> for FunctionError {
    fn from(error: StoreError) -> FunctionError {
        ApiError::from(error).into()
    }
}

impl FunctionError {
    /// A refusal with `code`.
    fn thrown(code: ErrorCode, message: impl Into<String>) -> FunctionError {
        FunctionError::Thrown { code, message: message.into() }
    }
}

/// Largest value a function stores (as encoded JSON): Convex's own limit on a document.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The refusal of a value past [`MAX_DOCUMENT_BYTES`].
fn too_large(what: &str, bytes: usize) -> FunctionError {
    FunctionError::thrown(
        ErrorCode::PayloadTooLarge,
        format!("{what} is {bytes} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes"),
    )
}

/// What functions answer.
type Outcome = Result<Value, FunctionError>;

/// `value` as a function's result.
fn to_value<T: Serialize>(value: T) -> Outcome {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "a function's result could not be written as JSON");
        FunctionError::Internal
    })
}

/// A store answer, with `None` for a session the tenant does not have (what the original
/// functions answer for a missing document). Only for store calls whose one `NotFound` is
/// the session's.
fn unless_missing<T>(result: Result<T, StoreError>) -> Result<Option<T>, FunctionError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The `_id` of a document Stage keeps inside another row (a file version, a render
/// state): `prefix` and a digest of what identifies it, the same at every read.
fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let digest = stage_store::sha256_hex(parts.join("\0").as_bytes());
    format!("{prefix}{}", &digest[..20])
}

async fn call(state: AppState, endpoint: Kind, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let principal = match authenticate(&parts, &state).await {
        Ok(principal) => principal,
        Err(e) if e.code == ErrorCode::Unauthorized => {
            return protocol_error(StatusCode::UNAUTHORIZED, "Unauthenticated", &e.message);
        }
        Err(e) => return protocol_error(e.code.status(), "InternalServerError", &e.message),
    };
    let request = Request::from_parts(parts, body);
    let limit = BodyLimit::of(&request);
    let bytes = match read_body(request, limit).await {
        Ok(bytes) => bytes,
        Err(e) => return protocol_error(e.code.status(), "BadFormat", &e.message),
    };
    let (path, args, format) = match parse_request(&bytes) {
        Ok(parsed) => parsed,
        Err(message) => return protocol_error(StatusCode::BAD_REQUEST, "BadFormat", &message),
    };
    if let Err(message) = check_path(&path) {
        return protocol_error(StatusCode::BAD_REQUEST, "BadConvexFunctionIdentifier", &message);
    }
    let ctx = Ctx { state: &state, tenant: &principal.tenant_id, format };
    let (outcome, sensitive) = match resolve_function(&path, endpoint) {
        Ok(function) => (run(&ctx, function, args).await, function.sensitive),
        Err(message) => (Err(FunctionError::System(message)), false),
    };
    let error = match outcome {
        Ok(value) => return Json(json!({ "status": "success", "value": value, "logLines": [] })).into_response(),
        Err(error) => error,
    };
    if sensitive {
        tracing::debug!(function = %path, "convex function failed");
    } else {
        tracing::debug!(function = %path, error = ?error, "convex function failed");
    }
    // As a Convex deployment in development answers: the request id, then what failed.
    let head = format!("[Request ID: {request_id}] Server Error");
    let answer = match error {
        FunctionError::Thrown { code, message } => json!({
            "status": "error",
            "errorMessage": format!("{head}\nUncaught ConvexError: {message}"),
            "errorData": { "code": code.as_str(), "message": message },
            "logLines": [],
        }),
        FunctionError::System(message) => json!({
            "status": "error",
            "errorMessage": format!("{head}\n{message}"),
            "logLines": [],
        }),
        FunctionError::Internal => json!({ "status": "error", "errorMessage": head, "logLines": [] }),
    };
    Json(answer).into_response()
}

/// Runs one function for the caller.
async fn run(ctx: &Ctx<'_>, function: &Function, args: Map<String, Value>) -> Outcome {
    let name = function.name;
    match function.family {
        Family::Sessions => sessions::run(ctx, name, args).await,
        Family::Files => files::run(ctx, name, args).await,
        Family::State => state::run(ctx, name, args).await,
        Family::Users => users::run(ctx, name, args).await,
        Family::Secrets => secrets::run(ctx, name, args).await,
        Family::Apps => apps::run(ctx, name, args).await,
        Family::Feedback => feedback::run(ctx, name, args).await,
    }
}

/// The error of a family asked for a function it does not have (a mistake in
/// [`FUNCTIONS`]).
fn unlisted(name: &str) -> FunctionError {
    tracing::error!(function = name, "a convex function is listed under the wrong family");
    FunctionError::Internal
}

/// A request the protocol itself refuses (not a function error).
fn protocol_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// Reads `{path, args, format}`; `args` may be an object or a one-element array of one.
/// Arguments are kept in their encoded JSON form (which each function reads with its
/// validator), after checking that the encoding itself is sound.
fn parse_request(bytes: &[u8]) -> Result<(String, Map<String, Value>, Format), String> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| format!("the request body is not valid JSON: {e}"))?;
    let Value::Object(mut body) = body else {
        return Err("the request body must be a JSON object {path, args, format}".into());
    };
    let path = match body.remove("path") {
        Some(Value::String(path)) => path,
        Some(_) => return Err("`path` must be a string such as \"stage:writeFile\"".into()),
        None => return Err("missing `path`: the function to call, such as \"stage:writeFile\"".into()),
    };
    let format = match body.remove("format") {
        None | Some(Value::Null) => Format::Clean,
        Some(Value::String(f)) if f == "json" || f == "convex_clean_json" => Format::Clean,
        Some(Value::String(f)) if f == "convex_encoded_json" || f == "convex_json" => Format::Encoded,
        Some(other) => return Err(format!("unsupported `format` {other}; use \"json\" or \"convex_encoded_json\"")),
    };
    let args = match body.remove("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args,
        Some(Value::Array(list)) if list.len() == 1 && list[0].is_object() => match list.into_iter().next() {
            Some(Value::Object(args)) => args,
            _ => Map::new(),
        },
        Some(_) => return Err("`args` must be an object or an array holding one object".into()),
    };
    ConvexValue::from_encoded(Value::Object(args.clone())).map_err(|e| format!("invalid argument value: {e}"))?;
    Ok((path, args, format))
}

/// Checks that `path` is shaped like a function path, `module[:function]` (without a
/// function, the module's default export): a relative module path and a function name that
/// is an identifier, as Convex parses them.
fn check_path(path: &str) -> Result<(), String> {
    let (module, function) = path.rsplit_once(':').unwrap_or((path, "default"));
    let identifier = function.len() <= 64
        && function.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && function.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(format!("{path} is not a valid path to a Convex function. Invalid function name: {function:?}"));
    }
    let component = |c: &str| !c.is_empty() && c != "." && c != ".." && !c.contains(':');
    if !module.split('/').all(component) {
        return Err(format!("{path} is not a valid path to a Convex function. Invalid module path: {module:?}"));
    }
    Ok(())
}

/// Finds `module:function` (module `stage`, or `stage.js`) callable from `endpoint`, or
/// says why not as Convex does. Actions may call anything; queries and mutations only
/// their own kind.
fn resolve_function(path: &str, endpoint: Kind) -> Result<&'static Function, String> {
    let not_found = || format!("Could not find public function for '{path}'.");
    let (module, name) = path.split_once(':').ok_or_else(not_found)?;
    if module != "stage" && module != "stage.js" {
        return Err(not_found());
    }
    let function = FUNCTIONS.iter().find(|f| f.name == name).ok_or_else(not_found)?;
    if endpoint != Kind::Action && endpoint != function.kind {
        return Err(format!(
            "Trying to execute {path} as {}, but it is defined as {}.",
            endpoint.name(),
            function.kind.name()
        ));
    }
    Ok(function)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_functions_by_kind() {
        assert_eq!(resolve_function("stage:writeFile", Kind::Mutation).unwrap().name, "writeFile");
        assert_eq!(resolve_function("stage.js:readFile", Kind::Query).unwrap().name, "readFile");
        assert_eq!(resolve_function("stage:readFile", Kind::Action).unwrap().name, "readFile");
        assert!(resolve_function("stage:writeFile", Kind::Query).unwrap_err().contains("defined as Mutation"));
        assert!(resolve_function("other:writeFile", Kind::Query).unwrap_err().contains("Could not find"));
        assert!(resolve_function("stage:nope", Kind::Query).unwrap_err().contains("Could not find"));
    }

    #[test]
    fn paths_must_name_a_function() {
        for good in ["stage:writeFile", "stage.js:readFile", "stage", "dir/stage:x_1", "stage:nope"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in
            ["", "stage:", ":writeFile", "/stage:writeFile", "a//b:f", "../stage:f", "stage:1f", "stage:a-b", "a:b:c"]
        {
            assert!(check_path(bad).unwrap_err().contains("is not a valid path to a Convex function"), "{bad}");
        }
    }

    #[test]
    fn function_names_are_unique() {
        for (i, f) in FUNCTIONS.iter().enumerate() {
            assert!(FUNCTIONS[i + 1..].iter().all(|g| g.name != f.name), "{} twice", f.name);
        }
    }

    #[test]
    fn malformed_encoded_arguments_are_a_bad_format() {
        let bad = br#"{"path":"stage:readFileAtVersion","args":{"version":{"$integer":"AA=="}}}"#;
        assert!(parse_request(bad).unwrap_err().contains("$integer"));
        let good = br#"{"path":"stage:kvGet","args":[{"key":"k"}],"format":"convex_encoded_json"}"#;
        let (path, args, format) = parse_request(good).unwrap();
        assert_eq!((path.as_str(), args.len(), format), ("stage:kvGet", 1, Format::Encoded));
    }
}
