//! The REST API's requests and answers, as the client commands send and read them.
//!
//! Answers model the fields the commands show; `--json` prints the server's JSON as it came
//! (see [`super::client::Reply`]), so a field the server adds reaches scripts unchanged.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every `/api/v1` answer: `{"success":true,"data":…}` or `{"success":false,"error":…}`.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub success: bool,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub error: Option<ApiErrorBody>,
}

#[derive(Debug, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: Option<Value>,
}

/// One problem of a file the server refused (`details.problems` of a 422).
#[derive(Debug, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub path: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
pub struct CreatedSession {
    pub id: String,
}

/// `POST …/sessions/:id/push`: files by path, written in one transaction.
#[derive(Debug, Default, Serialize)]
pub struct PushRequest {
    pub files: BTreeMap<String, PushedFile>,
}

/// A file's content: text as it is, other bytes in base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PushedFile {
    Text(String),
    Encoded { content: String, encoding: &'static str },
}

impl PushedFile {
    pub fn new(bytes: Vec<u8>) -> PushedFile {
        match String::from_utf8(bytes) {
            Ok(text) => PushedFile::Text(text),
            Err(e) => PushedFile::Encoded { content: BASE64.encode(e.as_bytes()), encoding: "base64" },
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PushResult {
    pub count: usize,
}

#[derive(Debug, Serialize)]
pub struct RenderRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<&'a str>,
}

/// A session's render: the render route answers `{entry, version, error, problems}`, the
/// status route adds the time.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderState {
    pub entry: String,
    pub version: i64,
    #[serde(default)]
    pub error: Option<String>,
    /// The compile problems (only their count is shown; `error` reads them out).
    #[serde(default)]
    pub problems: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub rendered_at: Option<i64>,
}

impl RenderState {
    /// `✓ Rendered /app/App.tsx (v2)`, or with its problems (`✗ … with 1 problem:` and the
    /// compiler's report).
    pub fn summary(&self) -> String {
        match (&self.error, self.problems.len()) {
            (None, _) => format!("✓ Rendered {} (v{})", self.entry, self.version),
            (Some(error), count) => {
                let count = if count == 1 { "1 problem".to_owned() } else { format!("{count} problems") };
                let body = error.split_once("\n\n").map_or(error.as_str(), |(_, rest)| rest);
                format!("✗ Rendered {} (v{}) with {count}:\n{body}", self.entry, self.version)
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct SessionStatus {
    pub render: Option<RenderState>,
    pub files: Vec<FileHead>,
}

/// A file's latest version, as listed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileHead {
    pub path: String,
    pub version: i64,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
}

/// A file with its content (`encoding: "base64"` when it is not UTF-8 text).
#[derive(Debug, Deserialize)]
pub struct FileView {
    pub content: String,
    #[serde(default)]
    pub encoding: Option<String>,
}

impl FileView {
    pub fn bytes(self) -> Result<Vec<u8>, base64::DecodeError> {
        match self.encoding.as_deref() {
            Some("base64") => BASE64.decode(self.content),
            _ => Ok(self.content.into_bytes()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct App {
    pub sid: String,
    pub name: String,
    pub version: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishRequest<'a> {
    pub session_id: &'a str,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

/// `PATCH /api/v1/stage/apps/:sid`: absent fields stay as they are.
#[derive(Debug, Serialize)]
pub struct AppPatch<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct RunRequest {
    pub input: Value,
}

/// A run as recorded (`steps` is empty in an app's list of runs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub id: String,
    pub app_sid: String,
    pub app_version: i64,
    pub workflow: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub answer: Option<RecordedAnswer>,
    #[serde(default)]
    pub error: Option<Failure>,
    pub created_at: i64,
    #[serde(default)]
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
}

/// What the run's caller was answered.
#[derive(Debug, Deserialize)]
pub struct RecordedAnswer {
    pub status: u16,
}

/// Why a run (`code`) or a step (`class`) failed.
#[derive(Debug, Deserialize)]
pub struct Failure {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub index: i64,
    #[serde(default)]
    pub id: Option<String>,
    pub kind: String,
    /// `succeeded`, `failed` or `skipped`.
    pub status: String,
    #[serde(default)]
    pub error: Option<Failure>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub log: Option<Vec<LogLine>>,
    pub started_at: i64,
    pub finished_at: i64,
}

/// A line a step logged through `stage:platform/log`.
#[derive(Debug, Deserialize)]
pub struct LogLine {
    pub level: String,
    pub message: String,
}
