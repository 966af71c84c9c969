//! Sessions and their render state: `createSession`, `getSession`, `listSessions`,
//! `triggerRender`, `getRenderState`, `reportError`, `clearError`, `getStatus`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::{NoArgs, SessionArgs, SessionId, parse};
use super::{Ctx, Outcome, derived_id, to_value, unless_missing, unlisted};
use crate::api::sessions::render_entry;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RenderArgs {
    session_id: SessionId,
    #[serde(default)]
    entry: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ErrorArgs {
    session_id: SessionId,
    error: String,
}

/// A `sessions` document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    created_at: i64,
    last_accessed_at: i64,
}

/// A `renderState` document; `error` is absent when there is none.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    entry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    rendered_at: i64,
    session_id: String,
    version: i64,
}

/// `getStatus`: `{session, render, files}`, where `files` lists every version written.
#[derive(Serialize)]
struct Status {
    session: Option<StatusSession>,
    render: Option<StatusRender>,
    files: Vec<StatusFile>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusSession {
    created_at: i64,
    last_accessed_at: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusRender {
    entry: String,
    version: i64,
    error: Option<String>,
    rendered_at: Option<i64>,
}

#[derive(Serialize)]
struct StatusFile {
    path: String,
    version: i64,
    size: i64,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "createSession" => {
            let NoArgs {} = parse(args)?;
            Ok(Value::String(store.create_session(ctx.tenant).await?))
        }
        "getSession" => {
            let a: SessionArgs = parse(args)?;
            let session = store.find_session(ctx.tenant, &a.session_id.0).await?;
            to_value(session.map(|s| SessionDocument {
                creation_time: s.created_at,
                id: s.id,
                created_at: s.created_at,
                last_accessed_at: s.last_accessed_at,
            }))
        }
        "listSessions" => {
            let NoArgs {} = parse(args)?;
            to_value(store.list_sessions(ctx.tenant).await?)
        }
        "triggerRender" => {
            let a: RenderArgs = parse(args)?;
            let render = render_entry(ctx.state, ctx.tenant, &a.session_id.0, a.entry.as_deref()).await?;
            to_value(serde_json::json!({ "entry": render.entry, "version": render.version }))
        }
        "getRenderState" => {
            let a: SessionArgs = parse(args)?;
            let record = store.render_record(ctx.tenant, &a.session_id.0).await?;
            to_value(record.map(|r| RenderDocument {
                creation_time: r.created_at,
                id: derived_id("rnd_", &[&r.session_id]),
                entry: r.state.entry,
                error: r.state.error,
                rendered_at: r.state.rendered_at,
                session_id: r.session_id,
                version: r.state.version,
            }))
        }
        "reportError" => {
            let a: ErrorArgs = parse(args)?;
            store.set_render_error(ctx.tenant, &a.session_id.0, Some(a.error)).await?;
            Ok(Value::Null)
        }
        "clearError" => {
            let a: SessionArgs = parse(args)?;
            store.set_render_error(ctx.tenant, &a.session_id.0, None).await?;
            Ok(Value::Null)
        }
        "getStatus" => {
            let a: SessionArgs = parse(args)?;
            let session = store.find_session(ctx.tenant, &a.session_id.0).await?;
            let Some(session) = session else {
                return to_value(Status { session: None, render: None, files: Vec::new() });
            };
            let render = store.render_record(ctx.tenant, &session.id).await?;
            let versions = unless_missing(store.versions_in_write_order(ctx.tenant, &session.id).await)?;
            to_value(Status {
                session: Some(StatusSession {
                    created_at: session.created_at,
                    last_accessed_at: session.last_accessed_at,
                }),
                render: render.map(|r| StatusRender {
                    entry: r.state.entry,
                    version: r.state.version,
                    error: r.state.error,
                    rendered_at: Some(r.state.rendered_at),
                }),
                files: versions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| StatusFile { path: f.path, version: f.version, size: f.size })
                    .collect(),
            })
        }
        other => Err(unlisted(other)),
    }
}
