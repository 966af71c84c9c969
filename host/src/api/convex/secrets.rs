//! The tenant's Stage secrets: `setSecret`/`getSecret`. Each tenant reads its own secrets
//! only; values are stored sealed, and neither the values nor the errors of these
//! functions are logged.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::args::parse;
use super::{Ctx, FunctionError, Outcome, unlisted};
use crate::envelope::ErrorCode;

/// Longest secret, in bytes.
const MAX_SECRET_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetArgs {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    key: String,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "setSecret" => {
            let a: SetArgs = parse(args)?;
            if a.value.len() > MAX_SECRET_BYTES {
                return Err(FunctionError::thrown(
                    ErrorCode::PayloadTooLarge,
                    format!("the secret is {} bytes; the limit is {MAX_SECRET_BYTES}", a.value.len()),
                ));
            }
            store.set_stage_secret(ctx.tenant, &a.key, &a.value).await?;
            Ok(Value::Null)
        }
        "getSecret" => {
            let a: GetArgs = parse(args)?;
            Ok(store.stage_secret(ctx.tenant, &a.key).await?.map_or(Value::Null, Value::String))
        }
        other => Err(unlisted(other)),
    }
}
