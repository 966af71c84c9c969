//! Feedback on a preview: `createFeedback`, `listFeedback`, `getFeedback`,
//! `updateFeedbackStatus`. Feedback belongs to the caller's tenant, under the sid its
//! client chose; `listFeedback` answers it in the order it was given.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::{Number, SessionId, parse};
use super::{Ctx, FunctionError, MAX_DOCUMENT_BYTES, Outcome, to_value, too_large, unlisted};
use stage_store::feedback::{Feedback, FeedbackFilter, FeedbackStatus, NewFeedback};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateArgs {
    sid: String,
    app_sid: String,
    app_version_sid: String,
    #[serde(default)]
    session_id: Option<SessionId>,
    #[serde(default)]
    studio_session_sid: Option<String>,
    author_email: String,
    #[serde(default)]
    author_name: Option<String>,
    comment: String,
    annotations: Vec<Annotation>,
    #[serde(default)]
    screenshot: Option<String>,
}

/// One annotated element of the page.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Annotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bounding_box: Option<BoundingBox>,
    element_selector: String,
    element_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    element_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BoundingBox {
    height: Number,
    width: Number,
    x: Number,
    y: Number,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListArgs {
    #[serde(default)]
    app_sid: Option<String>,
    #[serde(default)]
    app_version_sid: Option<String>,
    #[serde(default)]
    status: Option<FeedbackStatus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SidArgs {
    sid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StatusArgs {
    sid: String,
    status: FeedbackStatus,
    #[serde(default)]
    studio_session_sid: Option<String>,
}

/// A `feedback` document; optional fields are absent when unset.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    annotations: Vec<Annotation>,
    app_sid: String,
    app_version_sid: String,
    author_email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    author_name: Option<String>,
    comment: String,
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    screenshot: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_to_studio_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    sid: String,
    status: FeedbackStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    studio_session_sid: Option<String>,
    updated_at: i64,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "createFeedback" => {
            let a: CreateArgs = parse(args)?;
            let annotations = serde_json::to_string(&a.annotations).map_err(|e| {
                tracing::error!(error = %e, "annotations could not be written as JSON");
                FunctionError::Internal
            })?;
            let bytes = a.comment.len() + annotations.len() + a.screenshot.as_ref().map_or(0, String::len);
            if bytes > MAX_DOCUMENT_BYTES {
                return Err(too_large("the feedback (comment, annotations and screenshot)", bytes));
            }
            let new = NewFeedback {
                sid: a.sid,
                app_sid: a.app_sid,
                app_version_sid: a.app_version_sid,
                session_id: a.session_id.map(|s| s.0),
                studio_session_sid: a.studio_session_sid,
                author_email: a.author_email,
                author_name: a.author_name,
                comment: a.comment,
                annotations,
                screenshot: a.screenshot,
            };
            Ok(Value::String(store.create_feedback(ctx.tenant, new).await?.sid))
        }
        "listFeedback" => {
            let a: ListArgs = parse(args)?;
            let filter = FeedbackFilter { app_sid: a.app_sid, app_version_sid: a.app_version_sid, status: a.status };
            let list = store.list_feedback(ctx.tenant, filter).await?;
            to_value(list.into_iter().map(document).collect::<Result<Vec<_>, _>>()?)
        }
        "getFeedback" => {
            let a: SidArgs = parse(args)?;
            to_value(store.get_feedback(ctx.tenant, &a.sid).await?.map(document).transpose()?)
        }
        "updateFeedbackStatus" => {
            let a: StatusArgs = parse(args)?;
            store.update_feedback_status(ctx.tenant, &a.sid, a.status, a.studio_session_sid).await?;
            Ok(Value::Null)
        }
        other => Err(unlisted(other)),
    }
}

fn document(f: Feedback) -> Result<FeedbackDocument, FunctionError> {
    let annotations = serde_json::from_str(&f.annotations).map_err(|e| {
        tracing::error!(error = %e, sid = f.sid, "stored feedback annotations do not read back");
        FunctionError::Internal
    })?;
    Ok(FeedbackDocument {
        creation_time: f.created_at,
        id: f.id,
        annotations,
        app_sid: f.app_sid,
        app_version_sid: f.app_version_sid,
        author_email: f.author_email,
        author_name: f.author_name,
        comment: f.comment,
        created_at: f.created_at,
        resolved_at: f.resolved_at,
        screenshot: f.screenshot,
        sent_to_studio_at: f.sent_to_studio_at,
        session_id: f.session_id,
        sid: f.sid,
        status: f.status,
        studio_session_sid: f.studio_session_sid,
        updated_at: f.updated_at,
    })
}
