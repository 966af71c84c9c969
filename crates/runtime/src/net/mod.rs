//! Outbound network access: the one client ([`Outbound`]) every connection the host makes
//! goes through — guests' wasi:http requests (steps and backends), webhooks, Slack,
//! Stripe, Google (token endpoint and Sheets upstream), inference — and the address check
//! SMTP delivery connects by ([`Outbound::addresses`]).
//!
//! * A host name is resolved **once** per connection, every address it resolves to is
//!   checked, and the connection goes to a checked address: a second DNS answer (rebinding)
//!   is never asked. IP-literal hosts are checked the same way. For `https` the TCP
//!   connection goes to the checked address and TLS sends SNI and verifies the certificate
//!   for the name the URL gave (webpki roots, TLS 1.2/1.3, HTTP/1.1).
//! * Under [`Egress::PublicOnly`] an address in any block of [`special`] (the IANA
//!   special-purpose registries, multicast) is refused, naming the block; under
//!   [`Egress::PrivateAllowed`] (operator-configured upstreams, and tenants' destinations
//!   when the operator passes `--allow-private-egress`) any address is reached.
//! * Connections are pooled per destination (scheme, host, port) and egress rule, and
//!   kept alive between requests. Nothing is read from the environment (no proxies) and
//!   redirects are never followed: a 3xx is the caller's answer (a guest's redirect is a
//!   new request through its policy).
//! * Response bodies are bounded; the time to the response head and every pause in the
//!   body are bounded by the request's [`Timeouts`].
//!
//! Why hyper-util's pooled client with our own connector rather than reqwest: reqwest's
//! resolver hook is skipped for IP-literal hosts, it reads proxies from the environment
//! unless told not to, and its rustls backend would add crates to the build; the connector
//! here is the single place where resolving, checking and connecting happen, with the
//! resolver injectable for tests. hyper-util does the pooling, hyper the HTTP/1.1, and
//! tokio-rustls the TLS; all three were already in the build.

mod connect;
pub mod special;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use connect::{Connector, checked_addresses};
pub use connect::{Resolve, Resolving, SystemResolver};
pub use special::{NonPublic, is_non_public, non_public};

/// Which addresses a request may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Public addresses only: what tenants and guests address.
    PublicOnly,
    /// Any address: upstreams the operator configured, and tenants' destinations when the
    /// operator allows private egress.
    PrivateAllowed,
}

impl Egress {
    /// [`Egress::PrivateAllowed`] when `allowed`.
    pub fn private_if(allowed: bool) -> Egress {
        if allowed { Egress::PrivateAllowed } else { Egress::PublicOnly }
    }
}

/// The host of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    /// A DNS name, lower case.
    Name(String),
}

impl Host {
    /// An IP literal (IPv6 with or without brackets) or a DNS name: letters, digits, `-`,
    /// `_` and dots, at most 253 bytes. Anything else is refused rather than handed to the
    /// system resolver, whose idea of a name is broader.
    pub fn parse(text: &str) -> Result<Host, String> {
        let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if let Some(inner) = unbracketed {
            return inner
                .parse::<std::net::Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| format!("{text:?} is not an IPv6 address"));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name_ok = !text.is_empty()
            && text.len() <= 253
            && !text.starts_with('.')
            && !text.contains("..")
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !name_ok {
            return Err(format!("{text:?} is not a host name or IP address"));
        }
        Ok(Host::Name(text.to_ascii_lowercase()))
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => write!(f, "{name}"),
        }
    }
}

/// An `http(s)` URL the client sends to, read with the `http` crate's parser — the one
/// hyper sends with, so that what is checked is what is connected to.
#[derive(Debug, Clone)]
pub struct HttpUrl {
    pub uri: Uri,
    pub https: bool,
    pub host: Host,
    /// The URL's port, or the scheme's.
    pub port: u16,
}

impl HttpUrl {
    /// Reads `text`; the error completes "the URL …" ("must be an http:// or https:// URL").
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let uri: Uri = text.parse().map_err(|e| format!("is not a URL: {e}"))?;
        HttpUrl::from_uri(uri)
    }

    pub fn from_uri(uri: Uri) -> Result<HttpUrl, String> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("must be an http:// or https:// URL".into()),
        };
        let authority = uri.authority().ok_or("must name a host")?;
        if authority.as_str().contains('@') {
            return Err("must not carry a user name or password".into());
        }
        let host = Host::parse(authority.host())?;
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if port == 0 {
            return Err("must not use port 0".into());
        }
        Ok(HttpUrl { uri, https, host, port })
    }
}

impl HttpUrl {
    /// Whether a secret may travel to this URL: over `https`, or over plain `http` to a
    /// loopback address, where no network carries it.
    pub fn keeps_credentials_private(&self) -> bool {
        self.https
            || match &self.host {
                Host::Ip(ip) => ip.is_loopback(),
                Host::Name(name) => name == "localhost",
            }
    }
}

/// Checks an operator-configured URL the host sends credentials to (a token endpoint, an
/// API key's upstream); the error completes "the URL …".
pub fn check_credential_url(url: &str) -> Result<HttpUrl, String> {
    let parsed = HttpUrl::parse(url)?;
    if !parsed.keeps_credentials_private() {
        return Err(
            "receives credentials, so it must be an https:// URL (plain http:// only to a loopback address)".into()
        );
    }
    Ok(parsed)
}

/// A destination refused because an address is not public.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({why})", non_public_address(.host, .address))]
pub struct Refused {
    pub host: Host,
    pub address: IpAddr,
    pub why: NonPublic,
}

/// `address` named as itself, or as what `host` resolves to.
fn non_public_address(host: &Host, address: &IpAddr) -> String {
    match host {
        Host::Ip(_) => format!("{address} is a non-public address"),
        Host::Name(name) => format!("{name} resolves to the non-public address {address}"),
    }
}

/// Why no connection was made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Refused(Refused),
    #[error("{host} could not be resolved: {source}")]
    Lookup { host: String, source: Arc<io::Error> },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("connecting to {address} failed: {source}")]
    Connect { address: SocketAddr, source: Arc<io::Error> },
    #[error("connecting to {host} took longer than {after:?}")]
    Timeout { host: String, after: Duration },
    #[error("the TLS handshake with {host} failed: {source}")]
    Tls { host: String, source: Arc<io::Error> },
    #[error("the URL {0}")]
    InvalidUrl(String),
}

impl ConnectError {
    /// A TLS failure because the peer's certificate is not valid for the name.
    pub fn is_certificate_error(&self) -> bool {
        match self {
            ConnectError::Tls { source, .. } => source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<tokio_rustls::rustls::Error>())
                .is_some_and(|error| matches!(error, tokio_rustls::rustls::Error::InvalidCertificate(_))),
            _ => false,
        }
    }
}

/// Why [`Outbound::send`] got no whole response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the URL {0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Connect(ConnectError),
    #[error("no response within {0:?}")]
    NoResponse(Duration),
    #[error("the response stalled for more than {0:?}")]
    Stalled(Duration),
    #[error("HTTP failure: {0}")]
    Http(String),
    #[error("the response body is larger than {0} bytes")]
    TooLarge(usize),
}

impl SendError {
    /// The refusal, when the destination was refused for a non-public address.
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            SendError::Connect(ConnectError::Refused(refused)) => Some(refused),
            _ => None,
        }
    }

    /// Reads the connector's error out of the client's, whose chain holds it.
    fn from_client(error: hyper_util::client::legacy::Error) -> SendError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        let mut chain = Vec::new();
        while let Some(current) = cause {
            if let Some(connect) = current.downcast_ref::<ConnectError>() {
                return SendError::Connect(connect.clone());
            }
            chain.push(current.to_string());
            cause = current.source();
        }
        SendError::Http(chain.join(": "))
    }
}

/// How long a request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting (when no pooled connection is free); added to `first_byte` for the
    /// response head, since a pooled connection may or may not be reused.
    pub connect: Duration,
    /// From sending the request to the response head.
    pub first_byte: Duration,
    /// Longest pause within the response body.
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The same bound for every phase.
    pub const fn uniform(bound: Duration) -> Timeouts {
        Timeouts { connect: bound, first_byte: bound, between_bytes: bound }
    }

    fn head(&self) -> Duration {
        self.connect.saturating_add(self.first_byte)
    }
}

/// How the client connects and pools.
pub struct Settings {
    /// Bounds resolving, connecting and the TLS handshake of one new connection.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Most idle connections kept per destination.
    pub max_idle_per_destination: usize,
    /// Certificate authorities TLS trusts (the webpki roots by default).
    pub roots: RootCertStore,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_idle_per_destination: 16,
            roots: RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
        }
    }
}

type Pool = Client<Connector, Full<Bytes>>;

/// The host's outbound HTTP client (cheap to clone; clones share the pools).
#[derive(Clone)]
pub struct Outbound {
    public: Pool,
    private: Pool,
    resolver: Arc<dyn Resolve>,
}

impl Default for Outbound {
    fn default() -> Outbound {
        Outbound::new()
    }
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// The client with the system resolver and default settings.
    pub fn new() -> Outbound {
        Outbound::with(Arc::new(SystemResolver), Settings::default())
    }

    pub fn with(resolver: Arc<dyn Resolve>, settings: Settings) -> Outbound {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_root_certificates(settings.roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = TlsConnector::from(Arc::new(config));
        let pool = |egress| {
            let connector = Connector {
                resolver: resolver.clone(),
                egress,
                tls: tls.clone(),
                connect_timeout: settings.connect_timeout,
            };
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(settings.idle_timeout)
                .pool_max_idle_per_host(settings.max_idle_per_destination)
                .pool_timer(TokioTimer::new())
                .build(connector)
        };
        Outbound { public: pool(Egress::PublicOnly), private: pool(Egress::PrivateAllowed), resolver }
    }

    /// Sends `request` (an absolute `http(s)` URI; its `Host` header is the URI's) and reads
    /// the whole response body, up to `max_body` bytes.
    pub async fn send(
        &self,
        request: http::Request<Bytes>,
        egress: Egress,
        timeouts: Timeouts,
        max_body: usize,
    ) -> Result<http::Response<Bytes>, SendError> {
        let (mut parts, body) = request.into_parts();
        HttpUrl::from_uri(parts.uri.clone()).map_err(SendError::InvalidUrl)?;
        parts.headers.remove(http::header::HOST);
        let pool = match egress {
            Egress::PublicOnly => &self.public,
            Egress::PrivateAllowed => &self.private,
        };
        let response =
            tokio::time::timeout(timeouts.head(), pool.request(http::Request::from_parts(parts, Full::new(body))))
                .await
                .map_err(|_| SendError::NoResponse(timeouts.head()))?
                .map_err(SendError::from_client)?;
        let (parts, mut incoming) = response.into_parts();
        let declared =
            parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max_body as u64) {
            return Err(SendError::TooLarge(max_body));
        }
        let mut body = BytesMut::new();
        loop {
            let frame = tokio::time::timeout(timeouts.between_bytes, incoming.frame())
                .await
                .map_err(|_| SendError::Stalled(timeouts.between_bytes))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| SendError::Http(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if body.len() + data.len() > max_body {
                    return Err(SendError::TooLarge(max_body));
                }
                body.extend_from_slice(&data);
            }
        }
        Ok(http::Response::from_parts(parts, body.freeze()))
    }

    /// The addresses a connection to `host` may go to, resolved once and checked under
    /// `egress`: for protocols the pooled client does not speak (SMTP), which then connect
    /// to one of them, and for checking a destination before it is stored.
    pub async fn addresses(&self, host: &Host, egress: Egress) -> Result<Vec<IpAddr>, ConnectError> {
        checked_addresses(&*self.resolver, host, egress).await
    }
}

#[cfg(test)]
mod tests;
