//! Making one connection for the pooled client: resolve the name once, check every
//! address it resolves to, connect to a checked address, and for `https` run TLS with SNI
//! and certificate verification for the name the URL gave (not the address).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{ConnectError, Egress, Host, HttpUrl, Refused, special};

/// What a [`Resolve`] answers: every address of a name.
pub type Resolving = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Turns a host name into addresses. The system's resolver in the server; tests script one
/// to answer differently from one call to the next.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, name: &str) -> Resolving;
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: &str) -> Resolving {
        let name = name.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((name.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    }
}

/// The addresses to connect to for `host`: an IP literal as it is, a name resolved once.
/// Under [`Egress::PublicOnly`] every address must be public, or the host is refused.
pub(super) async fn checked_addresses(
    resolver: &dyn Resolve,
    host: &Host,
    egress: Egress,
) -> Result<Vec<IpAddr>, ConnectError> {
    let mut addresses = match host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => resolver
            .resolve(name)
            .await
            .map_err(|source| ConnectError::Lookup { host: name.clone(), source: Arc::new(source) })?,
    };
    let mut seen = std::collections::HashSet::new();
    addresses.retain(|address| seen.insert(*address));
    if addresses.is_empty() {
        return Err(ConnectError::NoAddress(host.to_string()));
    }
    if egress == Egress::PublicOnly
        && let Some((address, why)) = addresses.iter().find_map(|a| special::non_public(*a).map(|why| (*a, why)))
    {
        return Err(ConnectError::Refused(Refused { host: host.clone(), address, why }));
    }
    Ok(addresses)
}

/// The pooled client's connector: one per egress rule, so that a connection made under one
/// rule is never reused under the other.
#[derive(Clone)]
pub(super) struct Connector {
    pub resolver: Arc<dyn Resolve>,
    pub egress: Egress,
    pub tls: TlsConnector,
    /// Bounds resolving, connecting and the TLS handshake together.
    pub connect_timeout: Duration,
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<TokioIo<Stream>, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect(uri).await.map(TokioIo::new) })
    }
}

impl Connector {
    async fn connect(&self, uri: Uri) -> Result<Stream, ConnectError> {
        let url = HttpUrl::from_uri(uri).map_err(ConnectError::InvalidUrl)?;
        let work = async {
            let addresses = checked_addresses(&*self.resolver, &url.host, self.egress).await?;
            let tcp = connect_first(&addresses, url.port).await?;
            if !url.https {
                return Ok(Stream::Plain(tcp));
            }
            let name = match &url.host {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(name) => ServerName::try_from(name.clone())
                    .map_err(|_| ConnectError::InvalidUrl(format!("{name:?} is not a TLS server name")))?,
            };
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|source| ConnectError::Tls { host: url.host.to_string(), source: Arc::new(source) })?;
            Ok(Stream::Tls(Box::new(tls)))
        };
        tokio::time::timeout(self.connect_timeout, work)
            .await
            .map_err(|_| ConnectError::Timeout { host: url.host.to_string(), after: self.connect_timeout })?
    }
}

/// A TCP connection to the first of `addresses` that accepts one.
async fn connect_first(addresses: &[IpAddr], port: u16) -> Result<TcpStream, ConnectError> {
    let mut failure = None;
    for address in addresses {
        let address = SocketAddr::new(*address, port);
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Requests are written whole; waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(source) => failure = Some(ConnectError::Connect { address, source: Arc::new(source) }),
        }
    }
    Err(failure.unwrap_or_else(|| ConnectError::NoAddress(format!("port {port}"))))
}

/// A connection, plain or TLS.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
