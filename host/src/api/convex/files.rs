//! Files and snapshots: `writeFile`, `readFile`, `readFileAtVersion`, `getFileHistory`,
//! `getAllFiles`, `createSnapshot`, `getSnapshots`, `restoreSnapshot`.
//!
//! As in the original, every `writeFile` is a new version (identical content too), and
//! restoring a snapshot writes each of its files as a new version and leaves other files
//! alone. A file document's `content` is its text; bytes that are not UTF-8 are written as
//! Convex bytes in the encoded format, and as base64 with `encoding: "base64"` in the clean
//! one (which `writeFile` reads back with the same `encoding`). `size` counts bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::args::{Number, SessionArgs, SessionId, SnapshotId, parse};
use super::value::Format;
use super::{Ctx, FunctionError, Outcome, derived_id, to_value, unless_missing, unlisted};
use crate::api::file_path::normalize;
use crate::api::sessions::{Encoding, check_name, decode_content};
use crate::envelope::ErrorCode;
use stage_store::files::{FileContent, NewFile};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WriteArgs {
    session_id: SessionId,
    path: String,
    content: Content,
    /// Stage's addition: `"base64"` when `content` is base64 text of the bytes.
    #[serde(default)]
    encoding: Option<Value>,
}

/// `writeFile`'s content: text, or Convex bytes.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Bytes {
        #[serde(rename = "$bytes")]
        bytes: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PathArgs {
    session_id: SessionId,
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VersionArgs {
    session_id: SessionId,
    path: String,
    version: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SnapshotArgs {
    session_id: SessionId,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RestoreArgs {
    snapshot_id: SnapshotId,
}

/// What `writeFile` answers.
#[derive(Serialize)]
struct Written {
    path: String,
    version: i64,
    size: i64,
}

/// A `files` document: one version of one path.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    content: Value,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    path: String,
    session_id: String,
    version: i64,
}

/// A `snapshots` document; `name` is absent when none was given.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    created_at: i64,
    files: Vec<SnapshotFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    session_id: String,
}

#[derive(Serialize)]
struct SnapshotFile {
    content: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    encoding: Option<&'static str>,
    path: String,
    version: i64,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    let limits = &ctx.state.config.limits;
    match name {
        "writeFile" => {
            let a: WriteArgs = parse(args)?;
            let file = new_file(ctx, &a)?;
            let written =
                store.write_file_version(ctx.tenant, &a.session_id.0, file, limits.max_files_per_session).await?;
            to_value(Written { path: written.path, version: written.version, size: written.size })
        }
        "readFile" => {
            let a: PathArgs = parse(args)?;
            let path = normalize(&a.path, limits.max_path_bytes)?;
            let file = unless_missing(store.read_file(ctx.tenant, &a.session_id.0, &path, None).await)?.flatten();
            to_value(file.map(|f| document(f, ctx.format)))
        }
        "readFileAtVersion" => {
            let a: VersionArgs = parse(args)?;
            let path = normalize(&a.path, limits.max_path_bytes)?;
            // A version that is not a whole number names no file.
            let Number(version) = a.version;
            if version.fract() != 0.0 || !(1.0..=i64::MAX as f64).contains(&version) {
                return Ok(Value::Null);
            }
            let file = store.read_file(ctx.tenant, &a.session_id.0, &path, Some(version as i64)).await;
            to_value(unless_missing(file)?.flatten().map(|f| document(f, ctx.format)))
        }
        "getFileHistory" => {
            let a: PathArgs = parse(args)?;
            let path = normalize(&a.path, limits.max_path_bytes)?;
            let versions = unless_missing(store.file_versions(ctx.tenant, &a.session_id.0, &path).await)?;
            to_value(versions.unwrap_or_default().into_iter().map(|f| document(f, ctx.format)).collect::<Vec<_>>())
        }
        "getAllFiles" => {
            let a: SessionArgs = parse(args)?;
            let files = unless_missing(store.files_in_write_order(ctx.tenant, &a.session_id.0).await)?;
            to_value(files.unwrap_or_default().into_iter().map(|f| document(f, ctx.format)).collect::<Vec<_>>())
        }
        "createSnapshot" => {
            let a: SnapshotArgs = parse(args)?;
            let name = a.name.map(|n| check_name(&n, "name")).transpose()?;
            Ok(Value::String(store.create_snapshot(ctx.tenant, &a.session_id.0, name).await?.id))
        }
        "getSnapshots" => {
            let a: SessionArgs = parse(args)?;
            let snapshots = unless_missing(store.snapshot_contents(ctx.tenant, &a.session_id.0).await)?;
            let documents: Vec<SnapshotDocument> = snapshots
                .unwrap_or_default()
                .into_iter()
                .map(|s| SnapshotDocument {
                    creation_time: s.snapshot.created_at,
                    id: s.snapshot.id,
                    created_at: s.snapshot.created_at,
                    files: s
                        .files
                        .into_iter()
                        .map(|f| {
                            let (content, encoding) = content(f.bytes, ctx.format);
                            SnapshotFile { content, encoding, path: f.path, version: f.version }
                        })
                        .collect(),
                    name: s.snapshot.name,
                    session_id: s.snapshot.session_id,
                })
                .collect();
            to_value(documents)
        }
        "restoreSnapshot" => {
            let a: RestoreArgs = parse(args)?;
            let restored = store
                .restore_snapshot_versions(ctx.tenant, &a.snapshot_id.0, limits.max_files_per_session)
                .await?
                .ok_or_else(|| FunctionError::thrown(ErrorCode::NotFound, "Snapshot not found"))?;
            to_value(json!({ "restored": restored }))
        }
        other => Err(unlisted(other)),
    }
}

/// The file `writeFile` writes: text (UTF-8, or base64 with `encoding: "base64"`) or bytes.
fn new_file(ctx: &Ctx<'_>, a: &WriteArgs) -> Result<NewFile, FunctionError> {
    let limits = &ctx.state.config.limits;
    let path = normalize(&a.path, limits.max_path_bytes)?;
    let encoding = a.encoding.as_ref().map(|e| Encoding::parse(e, "encoding")).transpose()?.unwrap_or(Encoding::Utf8);
    let bytes = match &a.content {
        Content::Text(text) => decode_content(&path, text, encoding, limits.max_file_bytes)?,
        Content::Bytes { bytes } => decode_content(&path, bytes, Encoding::Base64, limits.max_file_bytes)?,
    };
    Ok(NewFile::new(path, bytes))
}

fn document(file: FileContent, format: Format) -> FileDocument {
    let (content, encoding) = content(file.bytes, format);
    FileDocument {
        creation_time: file.created_at,
        id: derived_id("fil_", &[&file.session_id, &file.path, &file.version.to_string()]),
        content,
        created_at: file.created_at,
        encoding,
        path: file.path,
        session_id: file.session_id,
        version: file.version,
    }
}

/// A file's content as a JSON value, with the `encoding` to name when it is base64 text.
fn content(bytes: Vec<u8>, format: Format) -> (Value, Option<&'static str>) {
    match String::from_utf8(bytes) {
        Ok(text) => (Value::String(text), None),
        Err(e) => {
            let encoded = BASE64.encode(e.as_bytes());
            match format {
                Format::Clean => (Value::String(encoded), Some("base64")),
                Format::Encoded => (json!({ "$bytes": encoded }), None),
            }
        }
    }
}
