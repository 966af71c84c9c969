//! End users' Google access on a session: `setGoogleScopes`/`getGoogleScopes` (the scopes
//! the app asks for) and `setUserAuth`/`getUserAuth` (who signed in, with what).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::args::{SessionArgs, SessionId, parse};
use super::{Ctx, Outcome, to_value, unless_missing, unlisted};
use crate::api::sessions::check_scopes;
use stage_store::user_auth::NewUserAuth;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ScopesArgs {
    session_id: SessionId,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SetUserAuthArgs {
    session_id: SessionId,
    email: String,
    name: String,
    picture: String,
    passport_authorization_id: String,
    scopes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GetUserAuthArgs {
    session_id: SessionId,
    email: String,
}

/// A `userAuth` document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserAuthDocument {
    #[serde(rename = "_creationTime")]
    creation_time: i64,
    #[serde(rename = "_id")]
    id: String,
    created_at: i64,
    email: String,
    name: String,
    passport_authorization_id: String,
    picture: String,
    scopes: Vec<String>,
    session_id: String,
    status: String,
    updated_at: i64,
}

pub(super) async fn run(ctx: &Ctx<'_>, name: &str, args: Map<String, Value>) -> Outcome {
    let store = &ctx.state.store;
    match name {
        "setGoogleScopes" => {
            let a: ScopesArgs = parse(args)?;
            store.set_google_scopes(ctx.tenant, &a.session_id.0, check_scopes(a.scopes)?).await?;
            Ok(Value::Null)
        }
        "getGoogleScopes" => {
            let a: SessionArgs = parse(args)?;
            let scopes = unless_missing(store.google_scopes(ctx.tenant, &a.session_id.0).await)?.flatten();
            to_value(scopes.map(|s| s.scopes))
        }
        "setUserAuth" => {
            let a: SetUserAuthArgs = parse(args)?;
            let auth = NewUserAuth {
                email: a.email,
                name: a.name,
                picture: a.picture,
                passport_authorization_id: a.passport_authorization_id,
                scopes: a.scopes,
            };
            store.set_user_auth(ctx.tenant, &a.session_id.0, auth).await?;
            Ok(Value::Null)
        }
        "getUserAuth" => {
            let a: GetUserAuthArgs = parse(args)?;
            let auth = store.user_auth(ctx.tenant, &a.session_id.0, &a.email).await?;
            to_value(auth.map(|u| UserAuthDocument {
                creation_time: u.created_at,
                id: u.id,
                created_at: u.created_at,
                email: u.email,
                name: u.name,
                passport_authorization_id: u.passport_authorization_id,
                picture: u.picture,
                scopes: u.scopes,
                session_id: u.session_id,
                status: u.status,
                updated_at: u.updated_at,
            }))
        }
        other => Err(unlisted(other)),
    }
}
