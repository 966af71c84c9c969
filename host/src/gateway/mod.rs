//! Connects the wasm runtime to the rest of the host: where guests' requests go and which
//! credentials the host adds to them.
//!
//! * `<service>.stage.internal` is served in-process by the embedded services (no socket),
//!   attributed to the invocation's tenant and app.
//! * `https://sheets.googleapis.com` (port 443, the one origin Google credentials belong
//!   to) goes to the Sheets emulator (the embedded default), to Google, or to a configured
//!   Google-compatible server ([`SheetsUpstream`]). Every such request is checked against
//!   the Google scopes the app's session granted; requests leaving the host carry an access
//!   token from [`google::GoogleAuth`], which the guest never sees. The same host over
//!   another scheme or port gets no credentials and is refused, saying why.
//! * Everything leaves through the host's one [`net::Outbound`] client.

pub mod google;

use std::sync::Arc;

use axum::Router;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use tower::ServiceExt;

use crate::services::ServiceCaller;
use google::GoogleAuth;
use stage_runtime::net;
use stage_runtime::policy::Target;
use stage_runtime::{BoxFuture, CredentialError, Gateway, Identity, Route};
use stage_store::Store;

/// Largest answer an internal service may give a guest.
const MAX_INTERNAL_RESPONSE: usize = 16 * 1024 * 1024;

/// The Google Sheets API host that steps address.
pub const SHEETS_HOST: &str = "sheets.googleapis.com";
const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/";

/// Where requests for [`SHEETS_HOST`] go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SheetsUpstream {
    /// The embedded emulator (`services::sheets`), in-process.
    Emulator,
    /// Google itself.
    Google,
    /// A Google-compatible server at this base URL (a proxy, or a test double).
    Url(http::Uri),
}

impl SheetsUpstream {
    /// `emulator`, `google`, or an `http(s)://` base URL.
    pub fn parse(text: &str) -> Result<SheetsUpstream, String> {
        match text {
            "emulator" => Ok(SheetsUpstream::Emulator),
            "google" => Ok(SheetsUpstream::Google),
            url => {
                let uri: http::Uri =
                    url.parse().map_err(|e| format!("{url:?} is not `emulator`, `google` or a URL: {e}"))?;
                match (uri.scheme_str(), uri.authority()) {
                    (Some("http" | "https"), Some(_)) => Ok(SheetsUpstream::Url(uri)),
                    _ => Err(format!("{url:?} is not `emulator`, `google` or an http(s) URL")),
                }
            }
        }
    }
}

pub struct ServiceGateway {
    services: Router,
    store: Store,
    sheets: SheetsUpstream,
    google: Arc<GoogleAuth>,
    outbound: net::Outbound,
}

impl ServiceGateway {
    pub fn new(
        services: Router,
        store: Store,
        sheets: SheetsUpstream,
        google: Arc<GoogleAuth>,
        outbound: net::Outbound,
    ) -> Arc<ServiceGateway> {
        Arc::new(ServiceGateway { services, store, sheets, google, outbound })
    }
}

/// Whether `target` names the Sheets host at all.
fn names_sheets(target: &Target<'_>) -> bool {
    target.host.eq_ignore_ascii_case(SHEETS_HOST)
}

/// Whether `target` is the Sheets API's origin, `https://sheets.googleapis.com:443`: the
/// only one whose requests are routed as Sheets calls and carry Google credentials.
fn is_sheets_origin(target: &Target<'_>) -> bool {
    names_sheets(target) && target.scheme == "https" && target.port == 443
}

impl Gateway for ServiceGateway {
    fn internal(
        &self,
        service: &str,
        request: http::Request<Bytes>,
        identity: &Identity,
    ) -> BoxFuture<'static, Option<http::Response<Bytes>>> {
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("/{service}{path}").parse();
        let services = self.services.clone();
        let caller = ServiceCaller(identity.clone());
        Box::pin(async move {
            parts.uri = uri.ok()?;
            // A guest cannot claim to be someone else: the caller comes from the invocation.
            parts.extensions.insert(caller);
            let response =
                services.oneshot(http::Request::from_parts(parts, axum::body::Body::from(body))).await.ok()?;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_INTERNAL_RESPONSE).await.ok()?;
            Some(http::Response::from_parts(parts, bytes))
        })
    }

    fn outbound(&self) -> &net::Outbound {
        &self.outbound
    }

    fn route(&self, target: &Target<'_>) -> Route {
        if is_sheets_origin(target) {
            return match &self.sheets {
                SheetsUpstream::Emulator => Route::Internal("sheets".into()),
                SheetsUpstream::Google => Route::Direct,
                SheetsUpstream::Url(base) => Route::Upstream(base.clone()),
            };
        }
        match target.internal_service() {
            Some(service) => Route::Internal(service.to_owned()),
            None => Route::Direct,
        }
    }

    fn credentials(
        &self,
        target: &Target<'_>,
        identity: &Identity,
    ) -> BoxFuture<'static, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>> {
        if !names_sheets(target) {
            return Box::pin(async { Ok(Vec::new()) });
        }
        if !is_sheets_origin(target) {
            let refused = CredentialError::refused(format!(
                "requests for {SHEETS_HOST} go only to https://{SHEETS_HOST} (port 443), the one origin Google \
                 credentials are sent to; {}://{SHEETS_HOST}:{} would get none, so it is refused",
                target.scheme, target.port
            ));
            return Box::pin(async move { Err(refused) });
        }
        let needed = SheetsScope::of(target.method);
        let (store, identity) = (self.store.clone(), identity.clone());
        let google = match self.sheets {
            SheetsUpstream::Emulator => None,
            _ => Some(self.google.clone()),
        };
        Box::pin(async move {
            let granted = match &identity.app_sid {
                Some(app_sid) => store
                    .google_scopes(&identity.tenant_id, app_sid)
                    .await
                    .map_err(|e| {
                        CredentialError::unavailable(format!("reading the session's Google scopes failed: {e}"))
                    })?
                    .map(|granted| granted.scopes),
                None => None,
            };
            if let Some(granted) = &granted {
                needed.check(granted)?;
            }
            let Some(google) = google else { return Ok(Vec::new()) };
            let refresh = match &identity.app_sid {
                Some(app_sid) => store.app_google_token(&identity.tenant_id, app_sid).await.map_err(|e| {
                    CredentialError::unavailable(format!("reading the app's Google credentials failed: {e}"))
                })?,
                None => None,
            };
            let scopes = granted.unwrap_or_else(|| vec![format!("{SCOPE_PREFIX}spreadsheets")]);
            let token = google.access_token(refresh.as_ref(), &scopes).await?;
            let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                CredentialError::refused("the Google token endpoint gave a token that is not a header value")
            })?;
            value.set_sensitive(true);
            Ok(vec![(http::header::AUTHORIZATION, value)])
        })
    }
}

/// The scope a Sheets request needs: reads are satisfied by read-only scopes too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SheetsScope {
    Read,
    Write,
}

impl SheetsScope {
    fn of(method: &str) -> SheetsScope {
        if method.eq_ignore_ascii_case("GET") { SheetsScope::Read } else { SheetsScope::Write }
    }

    /// Scopes (without the common prefix) that allow the request; the first is the one named.
    fn sufficient(self) -> &'static [&'static str] {
        match self {
            SheetsScope::Read => &["spreadsheets.readonly", "spreadsheets", "drive", "drive.readonly", "drive.file"],
            SheetsScope::Write => &["spreadsheets", "drive", "drive.file"],
        }
    }

    fn check(self, granted: &[String]) -> Result<(), String> {
        let allowed =
            |scope: &String| scope.strip_prefix(SCOPE_PREFIX).is_some_and(|name| self.sufficient().contains(&name));
        if granted.iter().any(allowed) {
            return Ok(());
        }
        let needed = if self == SheetsScope::Write { "spreadsheets" } else { "spreadsheets.readonly" };
        Err(format!(
            "this request needs the Google scope {SCOPE_PREFIX}{needed}, which the app's session did not grant \
             (granted: {})",
            if granted.is_empty() { "none".to_owned() } else { granted.join(" ") }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_scopes() {
        let scope = |s: &str| format!("{SCOPE_PREFIX}{s}");
        assert!(SheetsScope::Write.check(&[scope("spreadsheets")]).is_ok());
        assert!(SheetsScope::Write.check(&[scope("drive.file")]).is_ok());
        assert!(SheetsScope::Read.check(&[scope("spreadsheets.readonly")]).is_ok());
        let refused = SheetsScope::Write.check(&[scope("spreadsheets.readonly")]).unwrap_err();
        assert!(refused.contains("https://www.googleapis.com/auth/spreadsheets,"), "{refused}");
        assert!(SheetsScope::Read.check(&[]).unwrap_err().contains("spreadsheets.readonly"));
        assert!(SheetsScope::Write.check(&["spreadsheets".into()]).is_err());
    }

    #[test]
    fn sheets_upstreams() {
        assert_eq!(SheetsUpstream::parse("emulator"), Ok(SheetsUpstream::Emulator));
        assert_eq!(SheetsUpstream::parse("google"), Ok(SheetsUpstream::Google));
        assert!(matches!(SheetsUpstream::parse("http://127.0.0.1:9/x"), Ok(SheetsUpstream::Url(_))));
        assert!(SheetsUpstream::parse("ftp://x").is_err());
        assert!(SheetsUpstream::parse("nonsense").is_err());
    }
}
