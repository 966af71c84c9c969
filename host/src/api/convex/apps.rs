//! The platform's app functions: `listApps`, `getApp`, `getAppBySession`, `updateApp`,
//! answering apps as the REST routes do.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::args::{NoArgs, SessionArgs, parse};
use super::{Ctx, FunctionError, Outcome, to_value, unlisted};
use crate::api::apps::parse_patch;
use stage_store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppArgs {
    sid: String,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, mut args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "listApps" => {
            let NoArgs {} = parse(args)?;
            to_value(store.list_apps(ctx.tenant, None).await?)
        }
        "getApp" => {
            let a: AppArgs = parse(args)?;
            match store.get_app(ctx.tenant, &a.sid).await {
                Err(StoreError::NotFound(_)) => Ok(Value::Null),
                other => to_value(other?),
            }
        }
        "getAppBySession" => {
            let a: SessionArgs = parse(args)?;
            to_value(store.list_apps(ctx.tenant, Some(a.session_id.0)).await?.into_iter().next())
        }
        "updateApp" => {
            let sid = match args.remove("sid") {
                Some(Value::String(sid)) => sid,
                _ => {
                    return Err(FunctionError::System(
                        "ArgumentValidationError: `sid` must be an app sid string".into(),
                    ));
                }
            };
            to_value(store.update_app(ctx.tenant, &sid, parse_patch(args)?).await?)
        }
        other => Err(unlisted(other)),
    }
}
