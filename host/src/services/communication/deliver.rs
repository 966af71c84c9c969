//! One delivery attempt of a message, per registration kind:
//! * `slack_webhook` — `POST url` JSON `{"text"}` (Slack incoming webhooks);
//! * `webhook` — `POST url` with the message as JSON, signed: `x-stage-timestamp` (Unix
//!   seconds) and `x-stage-signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`;
//! * `email_smtp` — an email (text, and html as an alternative part) through the
//!   registration's SMTP server with lettre.
//!
//! A registration's destination is read into a [`Channel`] by the same parsers that
//! checked it when it was registered ([`HttpUrl`], [`SmtpTarget`]); one that no longer
//! parses fails the attempt, never reaching anywhere. Every connection goes through the
//! host's [`Outbound`] client: HTTP is sent by it, and SMTP connects to an address it
//! resolved and checked, so a destination that (now) resolves to a non-public address is
//! refused at delivery too.
//!
//! Every delivery carries the message id (`x-stage-message-id`, or the email's
//! `Message-ID`) so that a receiver can drop the duplicate of a retried delivery. The
//! outcome says whether to retry: network failures and the answers the status table calls
//! retryable (`ErrorClass::for_status`: 408, 429 and 5xx) are retried (honouring
//! `Retry-After`), other answers fail for good, and so does a refused destination.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use lettre::AsyncTransport;
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use serde_json::{Value, json};
use sha2::Sha256;

use super::smtp::SmtpTarget;
use super::{EMAIL_SMTP, SLACK_WEBHOOK, WEBHOOK};
use stage_classes::ErrorClass;
use stage_runtime::net::{ConnectError, Egress, HttpUrl, Outbound, Timeouts};
use stage_store::communication::{Delivery, Registration};

pub const MESSAGE_ID_HEADER: &str = "x-stage-message-id";
pub const SIGNATURE_HEADER: &str = "x-stage-signature";
pub const TIMESTAMP_HEADER: &str = "x-stage-timestamp";
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    /// Worth trying again; `after` is the receiver's `Retry-After`.
    Retry {
        status: Option<u16>,
        error: String,
        after: Option<Duration>,
    },
    Failed {
        status: Option<u16>,
        error: String,
    },
}

/// Where a registration delivers, read from its settings.
#[derive(Debug, Clone)]
pub enum Channel {
    Slack { url: HttpUrl },
    Webhook { url: HttpUrl, secret: String },
    Email { server: SmtpTarget, from: String },
}

impl Channel {
    /// Reads the settings of a `kind` registration; the error names the field and completes
    /// its name into a sentence.
    pub fn read(kind: &str, settings: &Value) -> Result<Channel, (&'static str, String)> {
        let setting = |name: &'static str| {
            settings[name].as_str().map(str::to_owned).ok_or((name, format!("is required for a {kind} registration")))
        };
        let url = || HttpUrl::parse(&setting("url")?).map_err(|why| ("url", why));
        match kind {
            SLACK_WEBHOOK => Ok(Channel::Slack { url: url()? }),
            WEBHOOK => Ok(Channel::Webhook { url: url()?, secret: setting("secret")? }),
            EMAIL_SMTP => {
                let server = SmtpTarget::parse(&setting("smtpUrl")?).map_err(|why| ("smtpUrl", why))?;
                let from = setting("from")?;
                check_mailbox(&from).map_err(|why| ("from", why))?;
                Ok(Channel::Email { server, from })
            }
            other => Err(("kind", format!("{other:?} is not a registration kind"))),
        }
    }

    /// The destination's field and host, for the address check at registration.
    pub fn destination(&self) -> (&'static str, &stage_runtime::net::Host) {
        match self {
            Channel::Slack { url } | Channel::Webhook { url, .. } => ("url", &url.host),
            Channel::Email { server, .. } => ("smtpUrl", &server.host),
        }
    }
}

pub fn check_mailbox(address: &str) -> Result<(), String> {
    address.parse::<Mailbox>().map(|_| ()).map_err(|e| format!("is not an email address: {e}"))
}

/// Makes one attempt to deliver `delivery` through `registration`; tenants' destinations
/// reach what `egress` allows.
pub async fn deliver(delivery: &Delivery, registration: &Registration, outbound: &Outbound, egress: Egress) -> Outcome {
    let channel = match Channel::read(&registration.kind, &registration.settings) {
        Ok(channel) => channel,
        Err((field, why)) => {
            return Outcome::Failed {
                status: None,
                error: format!("the registration's {field} {why}; update the registration"),
            };
        }
    };
    match channel {
        Channel::Slack { url } => {
            let text = match &delivery.message.subject {
                Some(subject) if !subject.is_empty() => format!("*{subject}*\n{}", delivery.message.text),
                _ => delivery.message.text.clone(),
            };
            let body = json!({ "text": text }).to_string();
            post(&url, body, Vec::new(), delivery, outbound, egress).await
        }
        Channel::Webhook { url, secret } => {
            let body = json!({
                "messageId": delivery.message_id,
                "appSid": delivery.message.app_sid,
                "channelId": delivery.message.channel_id,
                "to": delivery.message.to,
                "subject": delivery.message.subject,
                "text": delivery.message.text,
                "html": delivery.message.html,
                "metadata": delivery.message.metadata,
                "createdAt": delivery.created_at,
            })
            .to_string();
            let timestamp = (stage_store::now_ms() / 1000).to_string();
            let signature = sign(&secret, &timestamp, &body);
            let headers = vec![(TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, format!("v1={signature}"))];
            post(&url, body, headers, delivery, outbound, egress).await
        }
        Channel::Email { server, from } => email(delivery, &server, &from, outbound, egress).await,
    }
}

/// Hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn post(
    url: &HttpUrl,
    body: String,
    headers: Vec<(&'static str, String)>,
    delivery: &Delivery,
    outbound: &Outbound,
    egress: Egress,
) -> Outcome {
    let mut request = http::Request::post(url.uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "Stage-Communication/1")
        .header(MESSAGE_ID_HEADER, &delivery.message_id);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = match request.body(Bytes::from(body)) {
        Ok(request) => request,
        Err(e) => return Outcome::Failed { status: None, error: format!("the request could not be built: {e}") },
    };
    let timeouts =
        Timeouts { connect: Duration::from_secs(10), first_byte: ATTEMPT_TIMEOUT, between_bytes: ATTEMPT_TIMEOUT };
    let response =
        match tokio::time::timeout(ATTEMPT_TIMEOUT, outbound.send(request, egress, timeouts, MAX_ANSWER_BYTES)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return match error.refused() {
                    Some(refused) => Outcome::Failed { status: None, error: format!("refused: {refused}") },
                    None => Outcome::Retry { status: None, error: error.to_string(), after: None },
                };
            }
            Err(_) => {
                return Outcome::Retry {
                    status: None,
                    error: "the receiver did not answer in time".into(),
                    after: None,
                };
            }
        };
    classify(response.status().as_u16(), response.headers(), response.body())
}

/// What an HTTP answer means for the message.
fn classify(status: u16, headers: &http::HeaderMap, body: &[u8]) -> Outcome {
    if (200..300).contains(&status) {
        return Outcome::Delivered { status: Some(status) };
    }
    let detail: String = String::from_utf8_lossy(body).chars().take(300).collect();
    let error = if detail.trim().is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    let retry_after = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if ErrorClass::for_status(status).is_retryable() {
        Outcome::Retry { status: Some(status), error, after: retry_after }
    } else {
        Outcome::Failed { status: Some(status), error }
    }
}

async fn email(delivery: &Delivery, server: &SmtpTarget, from: &str, outbound: &Outbound, egress: Egress) -> Outcome {
    let failed = |error: String| Outcome::Failed { status: None, error };
    let (Ok(from), Ok(to)) = (from.parse::<Mailbox>(), delivery.message.to.parse::<Mailbox>()) else {
        return failed(format!("{:?} or {:?} is not an email address", from, delivery.message.to));
    };
    let builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(delivery.message.subject.clone().unwrap_or_default())
        .message_id(Some(format!("<{}@stage>", delivery.message_id)));
    let message = match &delivery.message.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(delivery.message.text.clone(), html.clone())),
        None => builder.singlepart(
            SinglePart::builder().header(header::ContentType::TEXT_PLAIN).body(delivery.message.text.clone()),
        ),
    };
    let message = match message {
        Ok(message) => message,
        Err(e) => return failed(format!("the email could not be built: {e}")),
    };
    // Resolved and checked once; lettre connects to that address and does no lookup.
    let address = match outbound.addresses(&server.host, egress).await.map(|addresses| addresses.first().copied()) {
        Ok(Some(address)) => address,
        Ok(None) => {
            return Outcome::Retry {
                status: None,
                error: format!("SMTP: {} has no address", server.host),
                after: None,
            };
        }
        Err(ConnectError::Refused(refused)) => return failed(format!("refused: {refused}")),
        Err(error) => return Outcome::Retry { status: None, error: format!("SMTP: {error}"), after: None },
    };
    let transport = match server.transport(address, ATTEMPT_TIMEOUT) {
        Ok(transport) => transport,
        Err(why) => return failed(why),
    };
    match transport.send(message).await {
        Ok(response) => Outcome::Delivered { status: Some(u16::from(response.code())) },
        Err(error) if error.is_permanent() => failed(format!("the SMTP server refused the message: {error}")),
        Err(error) => Outcome::Retry { status: None, error: format!("SMTP: {error}"), after: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_documentation_says() {
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with openssl.
        assert_eq!(sign("key", "1700000000", "{}"), "9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae");
    }

    #[test]
    fn classifies_answers() {
        let none = http::HeaderMap::new();
        assert_eq!(classify(200, &none, b"ok"), Outcome::Delivered { status: Some(200) });
        assert!(matches!(classify(500, &none, b""), Outcome::Retry { status: Some(500), after: None, .. }));
        let mut retry = http::HeaderMap::new();
        retry.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert!(
            matches!(classify(429, &retry, b""), Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(2))
        );
        assert!(
            matches!(classify(400, &none, b"invalid_payload"), Outcome::Failed { error, .. } if error.contains("invalid_payload"))
        );
        assert!(matches!(classify(408, &none, b""), Outcome::Retry { .. }));
        assert!(matches!(classify(404, &none, b"channel_not_found"), Outcome::Failed { .. }));
    }

    #[test]
    fn reads_channels_with_the_registration_parsers() {
        let slack = Channel::read(SLACK_WEBHOOK, &json!({ "url": "https://hooks.slack.com/services/T/B/X" })).unwrap();
        assert_eq!(slack.destination().0, "url");
        assert!(matches!(Channel::read(SLACK_WEBHOOK, &json!({ "url": "ftp://x/y" })), Err(("url", _))));
        assert!(matches!(Channel::read(WEBHOOK, &json!({ "url": "hooks.slack.com" })), Err(("url", _))));
        let email = json!({ "smtpUrl": "smtp://user:pass@127.0.0.1:2525", "from": "Stage <noreply@example.com>" });
        assert_eq!(Channel::read(EMAIL_SMTP, &email).unwrap().destination().0, "smtpUrl");
        // Stored before the strict parser: refused at delivery, never waved through.
        let stored = json!({ "smtpUrl": "smtp://127.0.0.1:3192 ", "from": "noreply@example.com" });
        assert!(matches!(Channel::read(EMAIL_SMTP, &stored), Err(("smtpUrl", _))));
        let bad_from = json!({ "smtpUrl": "smtp://127.0.0.1:2525", "from": "nope" });
        assert!(matches!(Channel::read(EMAIL_SMTP, &bad_from), Err(("from", _))));
    }
}
