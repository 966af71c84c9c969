//! Headers of the responses tenant code makes — the answer of a workflow's `response` step,
//! the response of an app's backend — on their way to the client.
//!
//! The host frames every response: the framing and hop-by-hop headers an app sets
//! (`content-length`, `transfer-encoding`, `connection` and those it names, …) are removed,
//! so an app cannot split a response or poison the next one on a kept-alive connection.
//! An app's state stays under its own path: every `Set-Cookie` is scoped to
//! `/stage/<appSid>/` without `Domain`, a cookie that cannot be scoped is dropped, and so
//! are headers whose effect spans the whole origin (HSTS, `Clear-Site-Data`, …).
//!
//! Header names and values must be valid HTTP ([`check`]); callers refuse invalid ones with
//! an error naming them rather than dropping them.

use axum::http::header::{CONNECTION, CONTENT_LENGTH, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers whose effect spans the whole origin rather than the app's path: HSTS and HPKP
/// pin the host, `Alt-Svc` redirects its traffic, `Clear-Site-Data` wipes every app's
/// storage, `Service-Worker-Allowed` lets a worker control paths outside the app.
const ORIGIN_WIDE: [&str; 7] = [
    "alt-svc",
    "clear-site-data",
    "public-key-pins",
    "public-key-pins-report-only",
    "service-worker-allowed",
    "set-cookie2",
    "strict-transport-security",
];

/// Cookies with this (case-insensitive) name prefix must have `Path=/`, so they cannot be
/// confined to an app.
const HOST_PREFIX: &str = "__host-";

/// A header that is not valid HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    #[error("header {0:?} has a name that is not valid HTTP (a token: letters, digits and !#$%&'*+-.^_`|~)")]
    Name(String),
    #[error("header {0:?} has a value that is not valid HTTP (no control characters such as CR, LF or NUL)")]
    Value(String),
}

/// The header as HTTP types, or why it is not valid HTTP.
pub fn check(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), InvalidHeader> {
    let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| InvalidHeader::Name(name.to_owned()))?;
    let header_value = HeaderValue::from_str(value).map_err(|_| InvalidHeader::Value(name.to_owned()))?;
    Ok((header_name, header_value))
}

/// Whether `status` may end an app's response: informational statuses (1xx, e.g. `101
/// Switching Protocols`) would hand the connection to the app.
pub fn final_status(status: u16) -> Option<StatusCode> {
    StatusCode::from_u16(status).ok().filter(|s| (200..=599).contains(&s.as_u16()))
}

/// Makes the headers of app `app_sid`'s response fit to send (see the module docs).
pub fn sanitize(headers: &mut HeaderMap, app_sid: &str) {
    let mut dropped: Vec<HeaderName> = named_by_connection(headers);
    dropped.extend(HOP_BY_HOP.iter().chain(ORIGIN_WIDE.iter()).map(|name| HeaderName::from_static(name)));
    dropped.push(CONTENT_LENGTH);
    for name in dropped {
        if headers.remove(&name).is_some() {
            tracing::info!(app = %app_sid, header = %name, "dropped a response header only the host may set");
        }
    }
    scope_cookies(headers, app_sid);
}

/// The headers that `Connection` names (`Connection: keep-alive, x-hop`).
pub fn named_by_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// The path an app's cookies live under.
pub fn cookie_path(app_sid: &str) -> String {
    format!("/stage/{app_sid}/")
}

/// Rewrites every `Set-Cookie` to the app's path, dropping those that cannot be scoped.
fn scope_cookies(headers: &mut HeaderMap, app_sid: &str) {
    let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(SET_COOKIE);
    let path = cookie_path(app_sid);
    for cookie in cookies {
        match scoped_cookie(&cookie, &path) {
            Ok(scoped) => {
                headers.append(SET_COOKIE, scoped);
            }
            Err(why) => tracing::warn!(app = %app_sid, %why, "dropped a Set-Cookie of the app"),
        }
    }
}

/// Why a cookie cannot be confined to an app.
#[derive(Debug, thiserror::Error)]
enum UnscopableCookie {
    #[error("the Set-Cookie value is not text")]
    NotText,
    #[error("the Set-Cookie value cannot be parsed: {0}")]
    Unparsable(#[from] cookie::ParseError),
    #[error("cookie {0:?} has the __Host- prefix, which requires Path=/ (the whole origin)")]
    HostPrefix(String),
}

/// The cookie without `Domain` and with `Path` under `path` (one already under it is kept).
fn scoped_cookie(value: &HeaderValue, path: &str) -> Result<HeaderValue, UnscopableCookie> {
    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| UnscopableCookie::NotText)?;
    let mut cookie = cookie::Cookie::parse(text)?;
    if cookie.name().get(..HOST_PREFIX.len()).is_some_and(|prefix| prefix.eq_ignore_ascii_case(HOST_PREFIX)) {
        return Err(UnscopableCookie::HostPrefix(cookie.name().to_owned()));
    }
    cookie.unset_domain();
    if !cookie.path().is_some_and(|current| current.starts_with(path)) {
        cookie.set_path(path.to_owned());
    }
    // The parts come from a valid header value, so the rewritten cookie is one too.
    HeaderValue::try_from(cookie.to_string()).map_err(|_| UnscopableCookie::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn cookies(map: &HeaderMap) -> Vec<&str> {
        map.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn drops_framing_hop_by_hop_connection_named_and_origin_wide_headers() {
        let mut map = headers(&[
            ("content-length", "2"),
            ("transfer-encoding", "chunked"),
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("upgrade", "h2c"),
            ("strict-transport-security", "max-age=31536000"),
            ("clear-site-data", "\"*\""),
            ("content-type", "text/plain"),
            ("x-kept", "yes"),
        ]);
        sanitize(&mut map, "app_1");
        let mut kept: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["content-type", "x-kept"]);
    }

    #[test]
    fn scopes_cookies_to_the_app() {
        let mut map = headers(&[
            ("set-cookie", "sid=abc; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax"),
            ("set-cookie", "pref=1"),
            ("set-cookie", "deep=2; Path=/stage/app_1/api/x"),
            ("set-cookie", "sibling=3; Path=/stage/app_10/"),
            ("set-cookie", "__Host-token=x; Path=/; Secure"),
            ("set-cookie", "__HOST-token=x; Path=/; Secure"),
            ("set-cookie", "__Secure-ok=y; Secure"),
            ("set-cookie", "no-pair"),
        ]);
        sanitize(&mut map, "app_1");
        assert_eq!(
            cookies(&map),
            [
                "sid=abc; HttpOnly; SameSite=Lax; Secure; Path=/stage/app_1/",
                "pref=1; Path=/stage/app_1/",
                "deep=2; Path=/stage/app_1/api/x",
                "sibling=3; Path=/stage/app_1/",
                "__Secure-ok=y; Secure; Path=/stage/app_1/",
            ]
        );
    }

    #[test]
    fn checks_names_and_values() {
        assert!(check("x-ok.v2", "a\tb é").is_ok());
        assert_eq!(check("x bad", "1"), Err(InvalidHeader::Name("x bad".into())));
        assert_eq!(check("x\r\ny", "1"), Err(InvalidHeader::Name("x\r\ny".into())));
        assert_eq!(check("", "1"), Err(InvalidHeader::Name(String::new())));
        assert_eq!(check("x-a", "1\r\nHTTP/1.1 200 OK"), Err(InvalidHeader::Value("x-a".into())));
        assert_eq!(check("x-a", "nul\0"), Err(InvalidHeader::Value("x-a".into())));
    }

    #[test]
    fn only_final_statuses_end_a_response() {
        assert_eq!(final_status(201), Some(StatusCode::CREATED));
        assert_eq!(final_status(101), None);
        assert_eq!(final_status(100), None);
        assert_eq!(final_status(600), None);
    }
}
