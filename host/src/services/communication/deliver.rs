//! One delivery attempt of a message, per registration kind:
//! * `slack_webhook` — `POST url` JSON `{"text"}` (Slack incoming webhooks);
//! * `webhook` — `POST url` with the message as JSON, signed: `x-stage-timestamp` (Unix
//!   seconds) and `x-stage-signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`;
//! * `email_smtp` — an email (text, and html as an alternative part) through the
//!   registration's SMTP server with lettre.
//!
//! Every delivery carries the message id (`x-stage-message-id`, or the email's
//! `Message-ID`) so that a receiver can drop the duplicate of a retried delivery. The
//! outcome says whether to retry: network failures, 408, 429 and 5xx are retried (honouring
//! `Retry-After`), other answers fail for good.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Tokio1Executor};
use serde_json::json;
use sha2::Sha256;
use wasmtime_wasi_http::RequestOptions;

use super::{EMAIL_SMTP, SLACK_WEBHOOK, WEBHOOK};
use crate::net;
use crate::store::communication::{Delivery, Registration};

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

/// Checks a webhook URL when it is registered.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err("must be an http:// or https:// URL with a host".into()),
    }
}

/// Checks an SMTP URL (`smtp://[user:password@]host[:port]`, or `smtps://` for TLS).
pub fn check_smtp_url(url: &str) -> Result<(), String> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| format!("is not a usable SMTP URL (smtp://user:password@host:port): {e}"))
}

pub fn check_mailbox(address: &str) -> Result<(), String> {
    address.parse::<Mailbox>().map(|_| ()).map_err(|e| format!("is not an email address: {e}"))
}

/// Makes one attempt to deliver `delivery` through `registration`.
pub async fn deliver(delivery: &Delivery, registration: &Registration, allow_private: bool) -> Outcome {
    let setting = |name: &str| registration.settings[name].as_str().unwrap_or_default().to_owned();
    match registration.kind.as_str() {
        SLACK_WEBHOOK => {
            let text = match &delivery.message.subject {
                Some(subject) if !subject.is_empty() => format!("*{subject}*\n{}", delivery.message.text),
                _ => delivery.message.text.clone(),
            };
            let body = json!({ "text": text }).to_string();
            post(&setting("url"), body, Vec::new(), delivery, allow_private).await
        }
        WEBHOOK => {
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
            let timestamp = (crate::store::now_ms() / 1000).to_string();
            let signature = sign(&setting("secret"), &timestamp, &body);
            let headers = vec![(TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, format!("v1={signature}"))];
            post(&setting("url"), body, headers, delivery, allow_private).await
        }
        EMAIL_SMTP => email(delivery, &setting("smtpUrl"), &setting("from"), allow_private).await,
        other => Outcome::Failed { status: None, error: format!("unknown registration kind {other}") },
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
    url: &str,
    body: String,
    headers: Vec<(&'static str, String)>,
    delivery: &Delivery,
    allow_private: bool,
) -> Outcome {
    let uri: http::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => return Outcome::Failed { status: None, error: format!("the registration's URL is invalid: {e}") },
    };
    let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
        return Outcome::Failed { status: None, error: "the registration's URL has no host".into() };
    };
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let address = match net::resolve(host, port, allow_private).await {
        Ok(address) => address,
        Err(net::ResolveError::NonPublic(ip)) => {
            return Outcome::Failed {
                status: None,
                error: format!("refused: {host} resolves to the non-public address {ip}"),
            };
        }
        Err(error) => return Outcome::Retry { status: None, error: format!("{host}: {error}"), after: None },
    };
    // Plain HTTP connects to the address that was checked; TLS keeps the name to verify it.
    let target = if https {
        uri.to_string()
    } else {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{}{path}", std::net::SocketAddr::new(address, port))
    };
    let mut request = http::Request::post(target)
        .header(http::header::HOST, authority.as_str())
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
    let options = RequestOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        first_byte_timeout: Some(ATTEMPT_TIMEOUT),
        between_bytes_timeout: Some(ATTEMPT_TIMEOUT),
    };
    let response = match tokio::time::timeout(ATTEMPT_TIMEOUT, net::send(request, Some(options), MAX_ANSWER_BYTES))
        .await
    {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Outcome::Retry { status: None, error: format!("{error}"), after: None },
        Err(_) => {
            return Outcome::Retry { status: None, error: "the receiver did not answer in time".into(), after: None };
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
    match status {
        408 | 429 | 500..=599 => Outcome::Retry { status: Some(status), error, after: retry_after },
        _ => Outcome::Failed { status: Some(status), error },
    }
}

async fn email(delivery: &Delivery, smtp_url: &str, from: &str, allow_private: bool) -> Outcome {
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
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url) {
        Ok(builder) => builder.timeout(Some(ATTEMPT_TIMEOUT)).build(),
        Err(e) => return failed(format!("the registration's SMTP URL is unusable: {e}")),
    };
    let server = transport_host(smtp_url);
    if let Some((host, port)) = &server {
        match net::resolve(host, *port, allow_private).await {
            Ok(_) => {}
            Err(net::ResolveError::NonPublic(ip)) => {
                return failed(format!("refused: {host} resolves to the non-public address {ip}"));
            }
            Err(error) => return Outcome::Retry { status: None, error: format!("{host}: {error}"), after: None },
        }
    }
    match transport.send(message).await {
        Ok(response) => Outcome::Delivered { status: Some(u16::from(response.code())) },
        Err(error) if error.is_permanent() => failed(format!("the SMTP server refused the message: {error}")),
        Err(error) => Outcome::Retry { status: None, error: format!("SMTP: {error}"), after: None },
    }
}

/// Host and port of an SMTP URL, for the address check.
fn transport_host(smtp_url: &str) -> Option<(String, u16)> {
    let uri: http::Uri = smtp_url.parse().ok()?;
    let default_port = if uri.scheme_str() == Some("smtps") { 465 } else { 587 };
    Some((uri.host()?.trim_matches(['[', ']']).to_owned(), uri.port_u16().unwrap_or(default_port)))
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
    fn checks_registration_settings() {
        assert!(check_http_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert!(check_http_url("ftp://x/y").is_err());
        assert!(check_http_url("hooks.slack.com").is_err());
        assert!(check_smtp_url("smtp://user:pass@127.0.0.1:2525").is_ok());
        assert!(check_smtp_url("http://x").is_err());
        assert!(check_mailbox("Stage <noreply@example.com>").is_ok());
        assert!(check_mailbox("nope").is_err());
    }
}
