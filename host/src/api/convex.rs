//! Convex-compatible function calls: `POST /api/query|mutation|action`.
//!
//! The Stage CLI and the `convex` npm `ConvexHttpClient` talk to Stage as they would to a
//! Convex deployment: `{"path":"stage:writeFile","args":{…},"format":"json"}` answers
//! `{"status":"success","value":…,"logLines":[]}`, a failing function answers HTTP 200
//! `{"status":"error","errorMessage":…}`, and a malformed request answers 4xx
//! `{"code":"BadFormat","message":…}`. Every function is a thin face over the same
//! operations as the REST routes.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::AppState;
use super::apps::parse_patch;
use super::auth::authenticate;
use super::file_path::normalize;
use super::sessions::{
    Binary, Encoding, FileView, StatusView, check_name, check_scopes, decode_content, render_entry, scopes_view,
};
use crate::envelope::extract::{BodyLimit, read_body};
use crate::envelope::{ApiError, ErrorCode};
use stage_store::StoreError;
use stage_store::files::NewFile;
use stage_store::tenants::Principal;

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

/// Every function of the `stage` module and its kind.
const FUNCTIONS: &[(&str, Kind)] = &[
    ("createSession", Kind::Mutation),
    ("listSessions", Kind::Query),
    ("writeFile", Kind::Mutation),
    ("readFile", Kind::Query),
    ("readFileAtVersion", Kind::Query),
    ("getAllFiles", Kind::Query),
    ("getFileHistory", Kind::Query),
    ("triggerRender", Kind::Mutation),
    ("getRenderState", Kind::Query),
    ("getStatus", Kind::Query),
    ("createSnapshot", Kind::Mutation),
    ("getSnapshots", Kind::Query),
    ("restoreSnapshot", Kind::Mutation),
    ("listApps", Kind::Query),
    ("getApp", Kind::Query),
    ("getAppBySession", Kind::Query),
    ("updateApp", Kind::Mutation),
    ("setGoogleScopes", Kind::Mutation),
    ("getGoogleScopes", Kind::Query),
];

/// Value encodings of the wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    ConvexEncoded,
}

async fn call(state: AppState, endpoint: Kind, request: Request) -> Response {
    let (parts, body) = request.into_parts();
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
    let outcome = match resolve_function(&path, endpoint) {
        Ok(function) => run(&state, &principal, function, args, format).await,
        Err(message) => Err(ApiError::not_found(message)),
    };
    match outcome {
        Ok(value) => Json(json!({ "status": "success", "value": value, "logLines": [] })).into_response(),
        Err(e) => {
            tracing::debug!(function = %path, error = %e, "convex function failed");
            let answer = json!({
                "status": "error",
                "errorMessage": e.message,
                "errorData": { "code": e.code.as_str() },
                "logLines": [],
            });
            Json(answer).into_response()
        }
    }
}

/// A request the protocol itself refuses (not a function error).
fn protocol_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

/// Reads `{path, args, format}`; `args` may be an object or a one-element array of one.
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
        None | Some(Value::Null) => Format::Json,
        Some(Value::String(f)) if f == "json" => Format::Json,
        Some(Value::String(f)) if f == "convex_encoded_json" => Format::ConvexEncoded,
        Some(other) => return Err(format!("unsupported `format` {other}; use \"json\" or \"convex_encoded_json\"")),
    };
    let args = match body.remove("args") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(args)) => args,
        Some(Value::Array(mut list)) if list.len() == 1 && list[0].is_object() => match list.remove(0) {
            Value::Object(args) => args,
            _ => unreachable!("checked to be an object"),
        },
        Some(_) => return Err("`args` must be an object or an array holding one object".into()),
    };
    let args = match format {
        Format::Json => args,
        Format::ConvexEncoded => match decode_value(Value::Object(args))? {
            Value::Object(args) => args,
            _ => unreachable!("decoding keeps an object an object"),
        },
    };
    Ok((path, args, format))
}

/// Decodes Convex's encoded JSON: `{"$integer": base64 LE i64}` and `{"$float": base64 LE
/// f64}` become numbers; `{"$bytes": …}` is kept for the functions that take bytes.
fn decode_value(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(object)
            if object.len() == 1 && (object.contains_key("$integer") || object.contains_key("$float")) =>
        {
            let (key, encoded) = object.into_iter().next().expect("one entry");
            let raw = encoded.as_str().and_then(|s| BASE64.decode(s).ok()).filter(|b| b.len() == 8);
            let bytes: [u8; 8] = raw
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("`{key}` must hold 8 base64-encoded bytes"))?;
            Ok(if key == "$integer" {
                Value::from(i64::from_le_bytes(bytes))
            } else {
                let float = f64::from_le_bytes(bytes);
                serde_json::Number::from_f64(float).map(Value::Number).ok_or("`$float` must be finite")?
            })
        }
        Value::Object(object) => object
            .into_iter()
            .map(|(k, v)| Ok((k, decode_value(v)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        Value::Array(items) => items.into_iter().map(decode_value).collect::<Result<_, _>>().map(Value::Array),
        other => Ok(other),
    }
}

/// Finds `module:function` (module `stage`, or `stage.js`) callable from `endpoint`.
/// Actions may call anything; queries and mutations only their own kind.
fn resolve_function(path: &str, endpoint: Kind) -> Result<&'static str, String> {
    let not_found = || format!("Could not find public function for '{path}'");
    let (module, name) = path.split_once(':').ok_or_else(not_found)?;
    if module != "stage" && module != "stage.js" {
        return Err(not_found());
    }
    let &(function, kind) = FUNCTIONS.iter().find(|(f, _)| *f == name).ok_or_else(not_found)?;
    if endpoint != Kind::Action && endpoint != kind {
        return Err(format!("Trying to execute {path} as {}, but it is defined as {}.", endpoint.name(), kind.name()));
    }
    Ok(function)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SessionArgs {
    session_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WriteFileArgs {
    session_id: String,
    path: String,
    content: Value,
    #[serde(default)]
    encoding: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FileArgs {
    session_id: String,
    path: String,
    #[serde(default)]
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RenderArgs {
    session_id: String,
    #[serde(default)]
    entry: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SnapshotArgs {
    session_id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RestoreArgs {
    session_id: String,
    snapshot_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScopesArgs {
    session_id: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppArgs {
    sid: String,
}

/// Reads a function's arguments, naming the offending field as Convex's validator does.
fn args<T: DeserializeOwned>(args: &Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(args.clone())).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!(" at `{path}`") };
        ApiError::validation(format!("ArgumentValidationError{at}: {}", e.into_inner()))
    })
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(e.to_string()))
}

/// Runs one function for `caller`.
async fn run(
    state: &AppState,
    caller: &Principal,
    function: &str,
    raw: Map<String, Value>,
    format: Format,
) -> Result<Value, ApiError> {
    let store = &state.store;
    let tenant = caller.tenant_id.as_str();
    let max_path = state.config.limits.max_path_bytes;
    let binary = match format {
        Format::Json => Binary::Base64String,
        Format::ConvexEncoded => Binary::ConvexBytes,
    };
    match function {
        "createSession" => {
            let NoArgs {} = args(&raw)?;
            Ok(Value::String(store.create_session(tenant).await?))
        }
        "listSessions" => {
            let NoArgs {} = args(&raw)?;
            to_value(store.list_sessions(tenant).await?)
        }
        "writeFile" => {
            let a: WriteFileArgs = args(&raw)?;
            let file = write_file_input(state, &a)?;
            let written =
                store.push_files(tenant, &a.session_id, vec![file], state.config.limits.max_files_per_session).await?;
            to_value(written.into_iter().next())
        }
        "readFile" | "readFileAtVersion" => {
            let a: FileArgs = args(&raw)?;
            if function == "readFileAtVersion" && a.version.is_none() {
                return Err(ApiError::validation("ArgumentValidationError: missing field `version`"));
            }
            let path = normalize(&a.path, max_path)?;
            let file = store.read_file(tenant, &a.session_id, &path, a.version).await?;
            to_value(file.map(|f| FileView::new(f, binary)))
        }
        "getAllFiles" => {
            let a: SessionArgs = args(&raw)?;
            let files = store.read_all_files(tenant, &a.session_id).await?;
            to_value(files.into_iter().map(|f| FileView::new(f, binary)).collect::<Vec<_>>())
        }
        "getFileHistory" => {
            let a: FileArgs = args(&raw)?;
            let path = normalize(&a.path, max_path)?;
            to_value(store.file_history(tenant, &a.session_id, &path).await?)
        }
        "triggerRender" => {
            let a: RenderArgs = args(&raw)?;
            let render = render_entry(state, tenant, &a.session_id, a.entry.as_deref()).await?;
            Ok(json!({ "entry": render.entry, "version": render.version }))
        }
        "getRenderState" => {
            let a: SessionArgs = args(&raw)?;
            to_value(store.session_status(tenant, &a.session_id).await?.render)
        }
        "getStatus" => {
            let a: SessionArgs = args(&raw)?;
            to_value(StatusView::from(store.session_status(tenant, &a.session_id).await?))
        }
        "createSnapshot" => {
            let a: SnapshotArgs = args(&raw)?;
            let name = a.name.map(|n| check_name(&n, "name")).transpose()?;
            to_value(store.create_snapshot(tenant, &a.session_id, name).await?)
        }
        "getSnapshots" => {
            let a: SessionArgs = args(&raw)?;
            to_value(store.list_snapshots(tenant, &a.session_id).await?)
        }
        "restoreSnapshot" => {
            let a: RestoreArgs = args(&raw)?;
            to_value(store.restore_snapshot(tenant, &a.session_id, &a.snapshot_id).await?)
        }
        "listApps" => {
            let NoArgs {} = args(&raw)?;
            to_value(store.list_apps(tenant, None).await?)
        }
        "getApp" => {
            let a: AppArgs = args(&raw)?;
            match store.get_app(tenant, &a.sid).await {
                Err(StoreError::NotFound(_)) => Ok(Value::Null),
                other => to_value(other?),
            }
        }
        "getAppBySession" => {
            let a: SessionArgs = args(&raw)?;
            to_value(store.list_apps(tenant, Some(a.session_id)).await?.into_iter().next())
        }
        "updateApp" => {
            let mut fields = raw;
            let sid = match fields.remove("sid") {
                Some(Value::String(sid)) => sid,
                _ => return Err(ApiError::validation("ArgumentValidationError: `sid` must be an app sid string")),
            };
            to_value(store.update_app(tenant, &sid, parse_patch(fields)?).await?)
        }
        "setGoogleScopes" => {
            let a: ScopesArgs = args(&raw)?;
            to_value(store.set_google_scopes(tenant, &a.session_id, check_scopes(a.scopes)?).await?)
        }
        "getGoogleScopes" => {
            let a: SessionArgs = args(&raw)?;
            Ok(scopes_view(store.google_scopes(tenant, &a.session_id).await?))
        }
        other => Err(ApiError::internal(format!("function {other} is listed but not implemented"))),
    }
}

/// `writeFile`'s content: a string (UTF-8, or base64 with `encoding: "base64"`) or
/// Convex bytes `{"$bytes": base64}`.
fn write_file_input(state: &AppState, a: &WriteFileArgs) -> Result<NewFile, ApiError> {
    let limits = &state.config.limits;
    let path = normalize(&a.path, limits.max_path_bytes)?;
    let encoding = a.encoding.as_ref().map(|e| Encoding::parse(e, "encoding")).transpose()?.unwrap_or(Encoding::Utf8);
    let bytes = match &a.content {
        Value::String(text) => decode_content(&path, text, encoding, limits.max_file_bytes)?,
        Value::Object(object) if object.len() == 1 && object.get("$bytes").is_some_and(Value::is_string) => {
            decode_content(
                &path,
                object["$bytes"].as_str().unwrap_or_default(),
                Encoding::Base64,
                limits.max_file_bytes,
            )?
        }
        _ => {
            return Err(ApiError::validation(
                "ArgumentValidationError: `content` must be a string or bytes {\"$bytes\": base64}",
            ));
        }
    };
    Ok(NewFile::new(path, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encoded_integers_and_keeps_bytes() {
        let encoded = json!({ "v": { "$integer": BASE64.encode(7i64.to_le_bytes()) }, "b": { "$bytes": "AAE=" } });
        assert_eq!(decode_value(encoded).unwrap(), json!({ "v": 7, "b": { "$bytes": "AAE=" } }));
        assert!(decode_value(json!({ "$integer": "AAE=" })).is_err());
    }

    #[test]
    fn resolves_functions_by_kind() {
        assert_eq!(resolve_function("stage:writeFile", Kind::Mutation), Ok("writeFile"));
        assert_eq!(resolve_function("stage.js:readFile", Kind::Query), Ok("readFile"));
        assert_eq!(resolve_function("stage:readFile", Kind::Action), Ok("readFile"));
        assert!(resolve_function("stage:writeFile", Kind::Query).unwrap_err().contains("defined as Mutation"));
        assert!(resolve_function("other:writeFile", Kind::Query).unwrap_err().contains("Could not find"));
        assert!(resolve_function("stage:nope", Kind::Query).unwrap_err().contains("Could not find"));
    }
}
