//! Communication: where an app's messages go and whether they got there.
//!
//! * Registrations (`/communication/registrations`): one per `(appSid, channelId)`, of kind
//!   `slack_webhook` (`url`), `webhook` (`url` + signing `secret`) or `email_smtp`
//!   (`smtpUrl`, `from`), `active` or `disabled`. Secrets are stored for the dispatcher and
//!   only ever shown masked. A destination is read by the parsers delivery uses
//!   ([`deliver::Channel`]), and — unless the operator allows private egress — refused with
//!   422 when it is, or resolves to, a non-public address (delivery checks again: DNS
//!   answers change).
//! * `POST /communication/messages` (what the `communication.send` step calls): resolves
//!   the app's active registration for the channel, stores the message and queues it in the
//!   same transaction, answers `{messageId, status:"queued"}`; idempotent per key.
//! * Tracking: `GET /communication/messages/:id` (status and every attempt) and
//!   `GET /communication/messages?appSid=`.
//!
//! [`dispatcher`] delivers queued messages; [`deliver`] speaks each kind's protocol.

pub mod deliver;
pub mod dispatcher;
pub mod smtp;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::idempotency::{IdempotencyHeader, written_response};
use super::input::{Fields, Invalid, MAX_TEXT_CHARS, limit_param, param};
use super::{ServiceCaller, ServiceState};
use crate::envelope::extract::{JsonBody, PathParams, Query};
use crate::envelope::{ApiError, ApiResult, created, ok};
use stage_runtime::net::{ConnectError, Egress};
use stage_store::Store;
use stage_store::communication::{Message, NewMessage, NewRegistration, Registration, RegistrationPatch};

pub const SLACK_WEBHOOK: &str = "slack_webhook";
pub const WEBHOOK: &str = "webhook";
pub const EMAIL_SMTP: &str = "email_smtp";
const KINDS: [&str; 3] = [SLACK_WEBHOOK, WEBHOOK, EMAIL_SMTP];
const STATUSES: [&str; 2] = ["active", "disabled"];
const MAX_URL_BYTES: usize = 2048;
const MAX_BODY_CHARS: usize = 64 * 1024;
const MIN_SECRET_BYTES: usize = 16;
/// How long registering waits for the destination's name to resolve; a name that does not
/// resolve in time is accepted (delivery checks it again).
const REGISTRATION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn router() -> Router<ServiceState> {
    Router::new()
        .route("/communication/registrations", post(create_registration).get(list_registrations))
        .route(
            "/communication/registrations/{id}",
            get(get_registration).patch(update_registration).delete(delete_registration),
        )
        .route("/communication/messages", post(send).get(list_messages))
        .route("/communication/messages/{id}", get(get_message))
}

/// A registration as answered: secrets masked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RegistrationView {
    id: String,
    app_sid: String,
    channel_id: String,
    kind: String,
    status: String,
    #[serde(flatten)]
    settings: Map<String, Value>,
    created_at: i64,
    updated_at: i64,
}

impl From<Registration> for RegistrationView {
    fn from(registration: Registration) -> RegistrationView {
        let mut settings = Map::new();
        for (name, value) in registration.settings.as_object().into_iter().flatten() {
            let text = value.as_str().unwrap_or_default();
            let shown = match name.as_str() {
                "url" => mask_url(text),
                "secret" => mask_secret(text),
                "smtpUrl" => mask_smtp_url(text),
                _ => text.to_owned(),
            };
            settings.insert(name.clone(), Value::String(shown));
        }
        RegistrationView {
            id: registration.id,
            app_sid: registration.app_sid,
            channel_id: registration.channel_id,
            kind: registration.kind,
            status: registration.status,
            settings,
            created_at: registration.created_at,
            updated_at: registration.updated_at,
        }
    }
}

/// `****` and the last four characters: enough to recognise a secret, not to use it.
fn mask_secret(secret: &str) -> String {
    let tail: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    if secret.chars().count() <= 8 { "****".into() } else { format!("****{tail}") }
}

/// The scheme and host stay; the path (where webhook URLs keep their secret) is masked.
fn mask_url(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
            let rest = uri.path_and_query().map_or("", |p| p.as_str());
            let scheme = uri.scheme_str().unwrap_or_default();
            let host = uri.authority().map(|a| a.host()).unwrap_or_default();
            format!("{scheme}://{host}/{}", mask_secret(rest))
        }
        _ => mask_secret(url),
    }
}

/// The password of `smtp://user:password@host:port` is masked.
fn mask_smtp_url(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(scheme, rest)| rest.rsplit_once('@').map(|(auth, host)| (scheme, auth, host)))
    {
        Some((scheme, auth, host)) => {
            let user = auth.split_once(':').map_or(auth, |(user, _)| user);
            format!("{scheme}://{user}:****@{host}")
        }
        None => url.to_owned(),
    }
}

const REGISTRATION_FIELDS: [&str; 8] = ["appSid", "channelId", "kind", "status", "url", "secret", "smtpUrl", "from"];

async fn create_registration(
    State(state): State<ServiceState>,
    caller: ServiceCaller,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<RegistrationView> {
    let fields = Fields::new(&body, "", &REGISTRATION_FIELDS).map_err(Invalid::into_error)?;
    let read = || -> Result<NewRegistration, Invalid> {
        let app_sid = caller
            .app_scope(fields.non_blank_text("appSid", MAX_TEXT_CHARS)?)?
            .ok_or_else(|| Invalid::new("appSid", "is required"))?;
        let kind = fields.choice("kind", &KINDS, None)?;
        Ok(NewRegistration {
            app_sid,
            channel_id: fields.required_text("channelId", MAX_TEXT_CHARS)?,
            settings: read_settings(&fields, &kind, None)?,
            status: fields.choice("status", &STATUSES, Some("active"))?,
            kind,
        })
    };
    let registration = read().map_err(Invalid::into_error)?;
    check_reachable(&state, &registration.kind, &registration.settings).await.map_err(Invalid::into_error)?;
    Ok(created(state.store.create_registration(&caller.tenant_id, registration).await?.into()))
}

/// Refuses a destination that is, or resolves to, a non-public address while private egress
/// is off: the message would otherwise be accepted as `queued` and fail at delivery. A name
/// that cannot be resolved now is accepted.
async fn check_reachable(state: &ServiceState, kind: &str, settings: &Value) -> Result<(), Invalid> {
    if state.tenant_egress() == Egress::PrivateAllowed {
        return Ok(());
    }
    let channel = deliver::Channel::read(kind, settings).map_err(|(field, why)| Invalid::new(field, why))?;
    let (field, host) = channel.destination();
    let checked = tokio::time::timeout(REGISTRATION_LOOKUP_TIMEOUT, state.outbound.addresses(host, Egress::PublicOnly));
    match checked.await {
        Ok(Err(ConnectError::Refused(refused))) => Err(Invalid::new(
            field,
            format!("is refused: {refused}, and this server does not allow private egress (--allow-private-egress)"),
        )),
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => {
            tracing::info!(%error, field, "a registration's destination does not resolve yet; accepted");
            Ok(())
        }
        Err(_) => {
            tracing::info!(field, "a registration's destination did not resolve in time; accepted");
            Ok(())
        }
    }
}

/// The settings a kind needs, checked; `current` fills fields a PATCH leaves out.
fn read_settings(fields: &Fields<'_>, kind: &str, current: Option<&Value>) -> Result<Value, Invalid> {
    let given = |name: &str, max: usize| -> Result<Option<String>, Invalid> {
        match fields.non_blank_text(name, max)? {
            Some(value) => Ok(Some(value)),
            None => Ok(current.and_then(|c| c[name].as_str()).map(str::to_owned)),
        }
    };
    let required = |name: &str, value: Option<String>| {
        value.ok_or_else(|| Invalid::new(name, format!("is required for a {kind} registration")))
    };
    let mut settings = Map::new();
    let allowed: &[&str] = match kind {
        SLACK_WEBHOOK => &["url"],
        WEBHOOK => &["url", "secret"],
        _ => &["smtpUrl", "from"],
    };
    for name in ["url", "secret", "smtpUrl", "from"] {
        if !allowed.contains(&name) && fields.get(name).is_some() {
            return Err(Invalid::new(name, format!("does not apply to a {kind} registration")));
        }
    }
    if allowed.contains(&"url") {
        let url = required("url", given("url", MAX_URL_BYTES)?)?;
        stage_runtime::net::HttpUrl::parse(&url).map_err(|why| Invalid::new("url", why))?;
        settings.insert("url".into(), json!(url));
    }
    if allowed.contains(&"secret") {
        let secret = required("secret", given("secret", 256)?)?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Invalid::new("secret", format!("must be at least {MIN_SECRET_BYTES} bytes")));
        }
        settings.insert("secret".into(), json!(secret));
    }
    if allowed.contains(&"smtpUrl") {
        let smtp_url = required("smtpUrl", given("smtpUrl", MAX_URL_BYTES)?)?;
        smtp::SmtpTarget::parse(&smtp_url).map_err(|why| Invalid::new("smtpUrl", why))?;
        let from = required("from", given("from", MAX_TEXT_CHARS)?)?;
        deliver::check_mailbox(&from).map_err(|why| Invalid::new("from", why))?;
        settings.insert("smtpUrl".into(), json!(smtp_url));
        settings.insert("from".into(), json!(from));
    }
    Ok(Value::Object(settings))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    app_sid: Option<String>,
    limit: Option<String>,
}

async fn list_registrations(
    State(store): State<Store>,
    caller: ServiceCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Vec<RegistrationView>> {
    let app_sid = caller.app_scope(param(query.app_sid)).map_err(Invalid::into_error)?;
    let registrations = store.list_registrations(&caller.tenant_id, app_sid).await?;
    Ok(ok(registrations.into_iter().map(RegistrationView::from).collect()))
}

/// A registration of the caller's tenant (and app, for an app's caller).
async fn owned_registration(store: &Store, caller: &ServiceCaller, id: &str) -> Result<Registration, ApiError> {
    let registration = store.get_registration(&caller.tenant_id, id).await?;
    if caller.app_sid.as_ref().is_some_and(|own| *own != registration.app_sid) {
        return Err(ApiError::not_found(format!("registration {id} not found")));
    }
    Ok(registration)
}

async fn get_registration(
    State(store): State<Store>,
    caller: ServiceCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<RegistrationView> {
    Ok(ok(owned_registration(&store, &caller, &id).await?.into()))
}

async fn update_registration(
    State(state): State<ServiceState>,
    caller: ServiceCaller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<Value>,
) -> ApiResult<RegistrationView> {
    let current = owned_registration(&state.store, &caller, &id).await?;
    let fields =
        Fields::new(&body, "", &["status", "url", "secret", "smtpUrl", "from"]).map_err(Invalid::into_error)?;
    let read = || -> Result<RegistrationPatch, Invalid> {
        let changes_settings = ["url", "secret", "smtpUrl", "from"].iter().any(|name| fields.get(name).is_some());
        Ok(RegistrationPatch {
            settings: changes_settings
                .then(|| read_settings(&fields, &current.kind, Some(&current.settings)))
                .transpose()?,
            status: fields.get("status").map(|_| fields.choice("status", &STATUSES, None)).transpose()?,
        })
    };
    let patch = read().map_err(Invalid::into_error)?;
    if let Some(settings) = &patch.settings {
        check_reachable(&state, &current.kind, settings).await.map_err(Invalid::into_error)?;
    }
    Ok(ok(state.store.update_registration(&caller.tenant_id, &id, patch).await?.into()))
}

async fn delete_registration(
    State(store): State<Store>,
    caller: ServiceCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Value> {
    owned_registration(&store, &caller, &id).await?;
    store.delete_registration(&caller.tenant_id, &id).await?;
    Ok(ok(json!({ "id": id, "deleted": true })))
}

const MESSAGE_FIELDS: [&str; 7] = ["appSid", "channelId", "to", "subject", "text", "html", "metadata"];

async fn send(
    State(state): State<ServiceState>,
    caller: ServiceCaller,
    idempotency: IdempotencyHeader,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let message = read_message(&body, &caller).map_err(Invalid::into_error)?;
    let key = idempotency.claim("POST /communication/messages", &caller, &body);
    let queued = state.store.queue_message(&caller.tenant_id, message, key).await?;
    if !queued.replayed {
        state.outbox.notify_one();
    }
    Ok(written_response(queued))
}

fn read_message(body: &Value, caller: &ServiceCaller) -> Result<NewMessage, Invalid> {
    let fields = Fields::new(body, "", &MESSAGE_FIELDS)?;
    let metadata = fields.object("metadata")?.cloned().unwrap_or_default();
    if serde_json::to_vec(&metadata).map_or(0, |m| m.len()) > 16 * 1024 {
        return Err(Invalid::too_large("metadata", "must be at most 16 KiB of JSON"));
    }
    Ok(NewMessage {
        app_sid: caller
            .app_scope(fields.non_blank_text("appSid", MAX_TEXT_CHARS)?)?
            .ok_or_else(|| Invalid::new("appSid", "is required"))?,
        channel_id: fields.required_text("channelId", MAX_TEXT_CHARS)?,
        to: fields.required_text("to", MAX_TEXT_CHARS)?,
        subject: fields.text("subject", MAX_TEXT_CHARS)?,
        text: fields.required_text("text", MAX_BODY_CHARS)?,
        html: fields.text("html", MAX_BODY_CHARS)?,
        metadata: Value::Object(metadata),
    })
}

async fn list_messages(
    State(store): State<Store>,
    caller: ServiceCaller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Vec<Message>> {
    let app_sid = caller.app_scope(param(query.app_sid)).map_err(Invalid::into_error)?;
    Ok(ok(store.list_messages(&caller.tenant_id, app_sid, limit_param(query.limit)?).await?))
}

async fn get_message(
    State(store): State<Store>,
    caller: ServiceCaller,
    PathParams(id): PathParams<String>,
) -> ApiResult<Message> {
    let message = store.get_message(&caller.tenant_id, &id).await?;
    if caller.app_sid.as_ref().is_some_and(|own| *own != message.message.app_sid) {
        return Err(ApiError::not_found(format!("message {id} not found")));
    }
    Ok(ok(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets() {
        assert_eq!(mask_url("https://hooks.slack.com/services/T000/B000/XXXXabcd"), "https://hooks.slack.com/****abcd");
        assert_eq!(mask_secret("whsec_0123456789abcdef"), "****cdef");
        assert_eq!(mask_secret("short"), "****");
        assert_eq!(
            mask_smtp_url("smtp://mailer:hunter22@mail.example.com:587"),
            "smtp://mailer:****@mail.example.com:587"
        );
        assert_eq!(mask_smtp_url("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    }
}
