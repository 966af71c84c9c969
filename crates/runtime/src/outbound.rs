//! Outbound HTTP from guests: the `WasiHttpHooks::send_request` seam where the capability
//! policy, internal routing, credential injection and the outbound limits apply.
//!
//! Every request a guest sends comes here. Denials are recorded so that the caller can
//! report `CAPABILITY_DENIED` naming the URL, whatever the guest does with the error.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::limits::Limits;
use super::policy::{Policy, Target, default_port};
use crate::net::{self, ConnectError, Egress, SendError, Timeouts};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// On whose behalf a component runs; given to internal services and credential injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub tenant_id: String,
    pub app_sid: Option<String>,
    pub actor_email: Option<String>,
}

/// What the runtime needs from its embedder to serve outbound requests.
pub trait Gateway: Send + Sync + 'static {
    /// Serves a request to `<service>.stage.internal` in-process; `None` when there is no
    /// such service. The URI's path and query are relative to the service.
    fn internal(
        &self,
        service: &str,
        request: http::Request<Bytes>,
        identity: &Identity,
    ) -> BoxFuture<'static, Option<http::Response<Bytes>>>;

    /// Headers the host adds to a request for `identity` (e.g. an OAuth token for Google);
    /// the guest never sees them. An error refuses the request, saying why and whether a
    /// retry may help. Asked for every allowed request, internal ones included.
    fn credentials(
        &self,
        target: &Target<'_>,
        identity: &Identity,
    ) -> BoxFuture<'static, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>>;

    /// The client requests leaving the host go through (resolving, address checks, TLS,
    /// pooling).
    fn outbound(&self) -> &net::Outbound;

    /// Where an allowed request goes. By default `<service>.stage.internal` is served
    /// in-process and everything else goes where the guest addressed it.
    fn route(&self, target: &Target<'_>) -> Route {
        match target.internal_service() {
            Some(service) => Route::Internal(service.to_owned()),
            None => Route::Direct,
        }
    }
}

/// A gateway with no internal services and no credentials: guests reach only what the
/// outbound client and their policy allow. For runtimes that serve no platform (the
/// runtime benchmark, unit tests of the template sandbox).
pub struct NoServices(pub net::Outbound);

impl Gateway for NoServices {
    fn outbound(&self) -> &net::Outbound {
        &self.0
    }

    fn internal(
        &self,
        _: &str,
        _: http::Request<Bytes>,
        _: &Identity,
    ) -> BoxFuture<'static, Option<http::Response<Bytes>>> {
        Box::pin(async { None })
    }

    fn credentials(
        &self,
        _: &Target<'_>,
        _: &Identity,
    ) -> BoxFuture<'static, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Why the host could not add credentials to a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    pub message: String,
    /// The credential source failed for now (unreachable, overloaded) rather than refusing:
    /// the step is transient, not unauthorized, and its retry policy applies.
    pub transient: bool,
}

impl CredentialError {
    /// Credentials are missing or were refused.
    pub fn refused(message: impl Into<String>) -> CredentialError {
        CredentialError { message: message.into(), transient: false }
    }

    /// The credential source could not answer now.
    pub fn unavailable(message: impl Into<String>) -> CredentialError {
        CredentialError { message: message.into(), transient: true }
    }
}

impl From<String> for CredentialError {
    fn from(message: String) -> CredentialError {
        CredentialError::refused(message)
    }
}

/// Where the host sends an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Served in-process by the embedded service of that name (path and query kept).
    Internal(String),
    /// Sent to an upstream the operator configured instead of the named host (e.g. a
    /// Google-compatible server); operator-chosen, so private addresses are allowed.
    Upstream(http::uri::Uri),
    /// Sent to the host the guest named, which must resolve to public addresses.
    Direct,
}

/// What an invocation's outbound traffic amounted to.
#[derive(Debug, Clone, Default)]
pub struct OutboundReport {
    pub requests: u32,
    pub bytes: u64,
    /// Time spent waiting on outbound requests (the host-call share of the invocation).
    pub waiting: Duration,
    /// Why the first refused request was refused (policy or limit), naming its URL.
    pub refused: Option<Refusal>,
    /// Why the latest refused request was refused: what a host function that sent it
    /// reports (an invocation may have been refused before, for something else).
    pub latest_refusal: Option<Refusal>,
}

/// Why the host refused a guest's outbound request; what it means for the guest is
/// [`Failure`](crate::Failure)'s (`From<&Refusal>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The capability policy does not allow the destination.
    #[error("capability denied: {0}")]
    Denied(String),
    /// An outbound limit was reached.
    #[error("outbound limit reached: {0}")]
    Limit(String),
    /// The host could not add credentials for the destination.
    #[error(transparent)]
    Credentials(CredentialError),
}

/// The per-invocation hooks plugged into wasi:http.
pub(crate) struct OutboundHooks {
    pub gateway: Arc<dyn Gateway>,
    pub policy: Arc<Policy>,
    pub identity: Identity,
    pub limits: Limits,
    pub allow_private: bool,
    pub report: Arc<Mutex<OutboundReport>>,
}

impl OutboundHooks {
    /// One outbound request's view of the invocation's policy, limits and report.
    pub fn call(&self) -> OutboundCall {
        OutboundCall {
            gateway: self.gateway.clone(),
            policy: self.policy.clone(),
            identity: self.identity.clone(),
            limits: self.limits,
            allow_private: self.allow_private,
            report: self.report.clone(),
        }
    }
}

type SendResult = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), HttpError>> + Send>), HttpError>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _guest_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let call = self.call();
        Box::new(async move {
            let started = Instant::now();
            let result = call.send(request, options).await;
            call.report.lock().expect("report poisoned").waiting += started.elapsed();
            let response = result?;
            let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(async { Ok(()) });
            Ok((response.map(|body| Full::new(body).map_err(|never| match never {}).boxed_unsync()), done))
        })
    }
}

/// One outbound request being checked and sent.
pub(crate) struct OutboundCall {
    gateway: Arc<dyn Gateway>,
    policy: Arc<Policy>,
    identity: Identity,
    limits: Limits,
    allow_private: bool,
    report: Arc<Mutex<OutboundReport>>,
}

impl OutboundCall {
    fn refuse(&self, refusal: Refusal) -> HttpError {
        tracing::info!(refusal = ?refusal, tenant = %self.identity.tenant_id, "outbound request refused");
        let mut report = self.report.lock().expect("report poisoned");
        report.refused.get_or_insert_with(|| refusal.clone());
        report.latest_refusal = Some(refusal);
        HttpError::HttpRequestDenied
    }

    /// Adds `bytes` to the byte budget, refusing past the limit.
    fn spend(&self, bytes: u64, url: &str) -> Result<(), HttpError> {
        let over = {
            let mut report = self.report.lock().expect("report poisoned");
            report.bytes += bytes;
            report.bytes > self.limits.outbound_bytes
        };
        if over {
            return Err(self.refuse(Refusal::Limit(format!(
                "outbound traffic passed {} bytes at {url}",
                self.limits.outbound_bytes
            ))));
        }
        Ok(())
    }

    /// Counts one more request, refusing past the limit.
    fn count(&self, url: &str) -> Result<(), HttpError> {
        let count = {
            let mut report = self.report.lock().expect("report poisoned");
            report.requests += 1;
            report.requests
        };
        if count > self.limits.outbound_requests {
            return Err(self.refuse(Refusal::Limit(format!(
                "more than {} outbound requests (at {url})",
                self.limits.outbound_requests
            ))));
        }
        Ok(())
    }

    fn remaining_bytes(&self) -> usize {
        let spent = self.report.lock().expect("report poisoned").bytes;
        self.limits.outbound_bytes.saturating_sub(spent) as usize
    }

    /// Checks `request` against the policy and limits, adds credentials, and sends it where
    /// the gateway routes it.
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let (mut parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        self.count(&url)?;
        let scheme = parts.uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let host = parts.uri.host().ok_or(HttpError::HttpRequestUriInvalid)?.trim_matches(['[', ']']).to_owned();
        let port = parts.uri.port_u16().unwrap_or(default_port(&scheme));
        let path = parts.uri.path().to_owned();
        let method = parts.method.as_str().to_owned();
        let target = Target { scheme: &scheme, host: &host, port, method: &method, path: &path };

        let Some(destination) = self.policy.allows(&target) else {
            return Err(self.refuse(Refusal::Denied(format!("{method} {url}"))));
        };

        let body = Limited::new(body, self.remaining_bytes())
            .collect()
            .await
            .map_err(|_| {
                self.refuse(Refusal::Limit(format!("the request body to {url} exceeds the outbound byte limit")))
            })?
            .to_bytes();
        self.spend(body.len() as u64, &url)?;

        let credentials = self
            .gateway
            .credentials(&target, &self.identity)
            .await
            .map_err(|why| self.refuse(Refusal::Credentials(why)))?;
        parts.headers.extend(credentials.into_iter().map(|(name, value)| (Some(name), value)));

        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let egress = match self.gateway.route(&target) {
            Route::Internal(service) => {
                parts.uri = path_and_query.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
                return self.serve_internal(&service, http::Request::from_parts(parts, body), &url).await;
            }
            Route::Upstream(base) => {
                let base_path = base.path().trim_end_matches('/');
                let authority = base.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
                let scheme = base.scheme_str().unwrap_or("https");
                parts.uri = format!("{scheme}://{authority}{base_path}{path_and_query}")
                    .parse()
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?;
                Egress::PrivateAllowed
            }
            Route::Direct => Egress::private_if(destination.private && self.allow_private),
        };

        let request = http::Request::from_parts(parts, body);
        let response = self
            .gateway
            .outbound()
            .send(request, egress, timeouts(options), self.remaining_bytes())
            .await
            .map_err(|error| self.failure(error, &url))?;
        self.spend(response.body().len() as u64, &url)?;
        Ok(response)
    }

    /// The wasi:http error for a request that got no response; a refused address or an
    /// answer past the byte limit is recorded as a refusal.
    fn failure(&self, error: SendError, url: &str) -> HttpError {
        tracing::debug!(%error, url, tenant = %self.identity.tenant_id, "outbound request failed");
        match error {
            SendError::TooLarge(_) => {
                self.refuse(Refusal::Limit(format!("the response from {url} exceeds the outbound byte limit")))
            }
            SendError::Connect(ConnectError::Refused(refused)) => {
                self.refuse(Refusal::Denied(format!("{url}: {refused}")))
            }
            SendError::Connect(ConnectError::Lookup { .. }) => {
                HttpError::DnsError { rcode: Some("lookup failed".into()), info_code: None }
            }
            SendError::Connect(ConnectError::NoAddress(_)) => HttpError::DestinationNotFound,
            SendError::Connect(ConnectError::Connect { .. }) => HttpError::ConnectionRefused,
            SendError::Connect(ConnectError::Timeout { .. }) => HttpError::ConnectionTimeout,
            SendError::Connect(error @ ConnectError::Tls { .. }) if error.is_certificate_error() => {
                HttpError::TlsCertificateError
            }
            SendError::Connect(ConnectError::Tls { .. }) => HttpError::TlsProtocolError,
            SendError::Connect(ConnectError::InvalidUrl(_)) | SendError::InvalidUrl(_) => {
                HttpError::HttpRequestUriInvalid
            }
            SendError::NoResponse(_) | SendError::Stalled(_) => HttpError::ConnectionReadTimeout,
            SendError::Http(_) => HttpError::HttpProtocolError,
        }
    }

    /// A request the host makes to an embedded service on the guest's behalf (an imported
    /// function rather than wasi:http), counted against the same request and byte limits.
    pub async fn internal(
        &self,
        service: &str,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let url = format!("http://{service}.stage.internal{}", request.uri());
        self.count(&url)?;
        self.spend(request.body().len() as u64, &url)?;
        self.serve_internal(service, request, &url).await
    }

    /// Has the embedded `service` answer a counted request, spending its answer's bytes.
    async fn serve_internal(
        &self,
        service: &str,
        request: http::Request<Bytes>,
        url: &str,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let response =
            self.gateway.internal(service, request, &self.identity).await.ok_or(HttpError::DestinationNotFound)?;
        self.spend(response.body().len() as u64, url)?;
        Ok(response)
    }
}

/// The bounds a guest gave its request (wasi:http `request-options`), each defaulting to
/// wasi:http's ten minutes; the invocation's own deadline ends it sooner.
fn timeouts(options: Option<RequestOptions>) -> Timeouts {
    const DEFAULT: Duration = Duration::from_secs(600);
    let options = options.unwrap_or_default();
    Timeouts {
        connect: options.connect_timeout.unwrap_or(DEFAULT),
        first_byte: options.first_byte_timeout.unwrap_or(DEFAULT),
        between_bytes: options.between_bytes_timeout.unwrap_or(DEFAULT),
    }
}
