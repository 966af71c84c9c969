//! A session app's own state: `kvSet`/`kvGet`, `setLiveData`/`getLiveData`,
//! `sendMessage`/`getMessages`/`clearMessages`.
//!
//! Values (`v.any()`) are stored in their encoded JSON form, so an int64 or bytes come back
//! as they went in (in the encoded format; the clean one writes them as Convex does).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::{SessionArgs, SessionId, parse};
use super::value::ConvexValue;
use super::{Ctx, FunctionError, MAX_DOCUMENT_BYTES, Outcome, to_value, too_large, unlisted};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KvSetArgs {
    session_id: SessionId,
    key: String,
    value: ConvexValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KvGetArgs {
    session_id: SessionId,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LiveDataArgs {
    session_id: SessionId,
    data: ConvexValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MessageArgs {
    session_id: SessionId,
    text: String,
    sender: String,
}

/// A `messages` document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    created_at: i64,
    sender: String,
    session_id: String,
    text: String,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "kvSet" => {
            let a: KvSetArgs = parse(args)?;
            store.kv_set(ctx.tenant, &a.session_id.0, &a.key, stored(&a.value, "value")?).await?;
            Ok(Value::Null)
        }
        "kvGet" => {
            let a: KvGetArgs = parse(args)?;
            let value = store.kv_get(ctx.tenant, &a.session_id.0, &a.key).await?;
            value.map_or(Ok(Value::Null), |text| exported(ctx, &text))
        }
        "setLiveData" => {
            let a: LiveDataArgs = parse(args)?;
            store.set_live_data(ctx.tenant, &a.session_id.0, stored(&a.data, "data")?).await?;
            Ok(Value::Null)
        }
        "getLiveData" => {
            let a: SessionArgs = parse(args)?;
            let data = store.live_data(ctx.tenant, &a.session_id.0).await?;
            data.map_or(Ok(Value::Null), |text| exported(ctx, &text))
        }
        "sendMessage" => {
            let a: MessageArgs = parse(args)?;
            if a.text.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large("`text`", a.text.len()));
            }
            store.send_message(ctx.tenant, &a.session_id.0, &a.text, &a.sender).await?;
            Ok(Value::Null)
        }
        "getMessages" => {
            let a: SessionArgs = parse(args)?;
            let messages = store.messages(ctx.tenant, &a.session_id.0).await?;
            let documents: Vec<MessageDocument> = messages
                .into_iter()
                .map(|m| MessageDocument {
                    creation_time: m.created_at,
                    id: m.id,
                    created_at: m.created_at,
                    sender: m.sender,
                    session_id: m.session_id,
                    text: m.text,
                })
                .collect();
            to_value(documents)
        }
        "clearMessages" => {
            let a: SessionArgs = parse(args)?;
            store.clear_messages(ctx.tenant, &a.session_id.0).await?;
            Ok(Value::Null)
        }
        other => Err(unlisted(other)),
    }
}

/// The stored form of a value: its encoded JSON, within [`MAX_DOCUMENT_BYTES`].
fn stored(value: &ConvexValue, field: &str) -> Result<String, FunctionError> {
    let text = value.export(super::value::Format::Encoded).to_string();
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(too_large(&format!("`{field}`"), text.len()));
    }
    Ok(text)
}

/// A stored value, in the answer's format.
fn exported(ctx: &Ctx<'_>, text: &str) -> Outcome {
    let json: Value = serde_json::from_str(text).map_err(|e| {
        tracing::error!(error = %e, "a stored convex value is not JSON");
        FunctionError::Internal
    })?;
    let value = ConvexValue::from_encoded(json).map_err(|e| {
        tracing::error!(error = %e, "a stored convex value is not a convex value");
        FunctionError::Internal
    })?;
    Ok(value.export(ctx.format))
}
