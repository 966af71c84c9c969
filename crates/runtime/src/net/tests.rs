//! The outbound client against loopback servers, with a scripted resolver.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::*;

/// Answers each call with the next scripted answer (the last one repeats), counting calls.
struct Scripted {
    answers: Mutex<VecDeque<Vec<IpAddr>>>,
    calls: AtomicUsize,
}

impl Scripted {
    fn new(answers: &[&[&str]]) -> Arc<Scripted> {
        let answers = answers.iter().map(|answer| answer.iter().map(|a| a.parse().unwrap()).collect()).collect();
        Arc::new(Scripted { answers: Mutex::new(answers), calls: AtomicUsize::new(0) })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Resolve for Scripted {
    fn resolve(&self, _: &str) -> Resolving {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 { answers.pop_front() } else { answers.front().cloned() };
        Box::pin(async move { Ok(answer.unwrap_or_default()) })
    }
}

/// What a loopback server saw.
#[derive(Default)]
struct Served {
    connections: AtomicUsize,
    requests: AtomicUsize,
    /// Each request's head, as received.
    heads: Mutex<Vec<String>>,
    /// The TLS server names (SNI) clients sent.
    server_names: Mutex<Vec<String>>,
}

/// A keep-alive HTTP/1.1 server on loopback answering every request with `response`
/// (bodiless requests only); TLS when `tls` is given.
async fn serve(tls: Option<TlsAcceptor>, response: &'static str) -> (SocketAddr, Arc<Served>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(Served::default());
    let counts = served.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            counts.connections.fetch_add(1, Ordering::SeqCst);
            let (tls, counts) = (tls.clone(), counts.clone());
            tokio::spawn(async move {
                match tls {
                    None => answer_requests(stream, response, &counts).await,
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else { return };
                        let name = stream.get_ref().1.server_name().unwrap_or_default().to_owned();
                        counts.server_names.lock().unwrap().push(name);
                        answer_requests(stream, response, &counts).await;
                    }
                }
            });
        }
    });
    (address, served)
}

async fn answer_requests(mut stream: impl AsyncRead + AsyncWrite + Unpin, response: &str, served: &Served) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buffer.drain(..end + 4).collect();
            served.heads.lock().unwrap().push(String::from_utf8_lossy(&head).to_ascii_lowercase());
            served.requests.fetch_add(1, Ordering::SeqCst);
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

fn client(resolver: Arc<Scripted>) -> Outbound {
    // Short, so that a connection attempt to an unreachable public address ends quickly.
    let settings = Settings { connect_timeout: Duration::from_millis(500), ..Settings::default() };
    Outbound::with(resolver, settings)
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

const TIMEOUTS: Timeouts = Timeouts::uniform(Duration::from_secs(5));

#[test]
fn reads_hosts_and_urls_with_one_strict_parser() {
    assert_eq!(Host::parse("Example.COM"), Ok(Host::Name("example.com".into())));
    assert_eq!(Host::parse("[::1]"), Ok(Host::Ip("::1".parse().unwrap())));
    assert_eq!(Host::parse("127.0.0.1"), Ok(Host::Ip("127.0.0.1".parse().unwrap())));
    for bad in ["", "a b", "a{b", "a%2eb", ".example.com", "a..b", "[example.com]", "exa$mple.com"] {
        assert!(Host::parse(bad).is_err(), "{bad:?}");
    }

    let url = HttpUrl::parse("https://hooks.slack.com/services/T/B/X").unwrap();
    assert_eq!((url.https, url.host.clone(), url.port), (true, Host::Name("hooks.slack.com".into()), 443));
    assert_eq!(HttpUrl::parse("http://[::1]:8080/x").unwrap().port, 8080);
    for bad in [
        "http://127.0.0.1:3192 ",
        "http://a{b@127.0.0.1:3192/",
        "http://127.0.0.1:3192/x y",
        "http://user:pass@example.com/",
        "ftp://example.com/",
        "example.com/path",
        "http://example.com:0/",
        "http://exa$mple.com/",
    ] {
        assert!(HttpUrl::parse(bad).is_err(), "{bad:?} was accepted");
    }
}

#[tokio::test]
async fn a_name_is_resolved_once_and_connected_where_the_check_looked() {
    let (address, served) = serve(None, OK).await;
    // A rebinding name: a public address for the check, loopback for any later lookup.
    let resolver = Scripted::new(&[&["1.1.1.1"], &["127.0.0.1"]]);
    let outbound = client(resolver.clone());
    let url = format!("http://rebind.example:{}/", address.port());

    let first = outbound.send(get(&url), Egress::PublicOnly, TIMEOUTS, 1024).await.unwrap_err();
    // It went where the checked answer pointed (nothing listens there), not to loopback.
    assert!(
        matches!(&first, SendError::Connect(ConnectError::Connect { address: to, .. }) if to.ip().to_string() == "1.1.1.1")
            || matches!(&first, SendError::Connect(ConnectError::Timeout { .. })),
        "{first:?}"
    );
    assert_eq!(resolver.calls(), 1, "one lookup for one connection");

    let second = outbound.send(get(&url), Egress::PublicOnly, TIMEOUTS, 1024).await.unwrap_err();
    assert_eq!(
        second.to_string(),
        "rebind.example resolves to the non-public address 127.0.0.1 (loopback, 127.0.0.0/8)"
    );
    assert_eq!(resolver.calls(), 2);
    assert_eq!(served.connections.load(Ordering::SeqCst), 0, "nothing reached loopback");
}

#[tokio::test]
async fn every_address_of_a_name_is_checked() {
    let (address, served) = serve(None, OK).await;
    let resolver = Scripted::new(&[&["1.1.1.1", "64:ff9b::7f00:1"]]);
    let url = format!("http://mixed.example:{}/", address.port());
    let refused = client(resolver).send(get(&url), Egress::PublicOnly, TIMEOUTS, 1024).await.unwrap_err();
    assert_eq!(
        refused.refused().map(ToString::to_string).as_deref(),
        Some("mixed.example resolves to the non-public address 64:ff9b::7f00:1 (NAT64, 64:ff9b::/96)")
    );
    assert_eq!(served.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn ip_literals_are_checked_without_a_lookup() {
    let (address, served) = serve(None, OK).await;
    let resolver = Scripted::new(&[&["1.1.1.1"]]);
    let outbound = client(resolver.clone());
    let port = address.port();
    for (url, refusal) in [
        (format!("http://127.0.0.1:{port}/"), "127.0.0.1 is a non-public address (loopback, 127.0.0.0/8)"),
        (format!("http://[::1]:{port}/"), "::1 is a non-public address (loopback, ::1/128)"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            "::ffff:127.0.0.1 is a non-public address (IPv4-mapped, ::ffff:0:0/96)",
        ),
        (
            format!("https://[::127.0.0.1]:{port}/"),
            "::7f00:1 is a non-public address (IPv4-compatible (deprecated), ::/96)",
        ),
    ] {
        let refused = outbound.send(get(&url), Egress::PublicOnly, TIMEOUTS, 1024).await.unwrap_err();
        assert_eq!(refused.refused().map(ToString::to_string).as_deref(), Some(refusal), "{url}");
    }
    assert_eq!((resolver.calls(), served.connections.load(Ordering::SeqCst)), (0, 0));

    // The operator's own upstreams may be private.
    let answer =
        outbound.send(get(&format!("http://127.0.0.1:{port}/")), Egress::PrivateAllowed, TIMEOUTS, 1024).await.unwrap();
    assert_eq!((answer.status().as_u16(), &answer.body()[..]), (200, &b"ok"[..]));
}

#[tokio::test]
async fn connections_are_pooled_per_destination() {
    let (address, served) = serve(None, OK).await;
    let resolver = Scripted::new(&[&["127.0.0.1"]]);
    let outbound = client(resolver.clone());
    let url = format!("http://pooled.example:{}/", address.port());
    for _ in 0..3 {
        let answer = outbound.send(get(&url), Egress::PrivateAllowed, TIMEOUTS, 1024).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    assert_eq!(served.requests.load(Ordering::SeqCst), 3);
    assert_eq!(served.connections.load(Ordering::SeqCst), 1, "the connection was kept alive and reused");
    let host = format!("host: pooled.example:{}\r\n", address.port());
    assert!(
        served.heads.lock().unwrap().iter().all(|head| head.contains(&host)),
        "the Host header names the URL's host"
    );
    assert_eq!(resolver.calls(), 1, "a reused connection is not resolved again");
}

#[tokio::test]
async fn bodies_are_bounded_and_redirects_are_answers() {
    let (big, _) = serve(None, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789").await;
    let (chunked, _) =
        serve(None, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n").await;
    let outbound = client(Scripted::new(&[&["127.0.0.1"]]));
    for address in [big, chunked] {
        let url = format!("http://127.0.0.1:{}/", address.port());
        let too_large = outbound.send(get(&url), Egress::PrivateAllowed, TIMEOUTS, 5).await.unwrap_err();
        assert!(matches!(too_large, SendError::TooLarge(5)), "{too_large:?}");
        let whole = outbound.send(get(&url), Egress::PrivateAllowed, TIMEOUTS, 10).await.unwrap();
        assert_eq!(&whole.body()[..], b"0123456789");
    }

    let (redirect, served) =
        serve(None, "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/private\r\ncontent-length: 0\r\n\r\n").await;
    let url = format!("http://127.0.0.1:{}/", redirect.port());
    let answer = outbound.send(get(&url), Egress::PrivateAllowed, TIMEOUTS, 10).await.unwrap();
    assert_eq!(
        (answer.status().as_u16(), answer.headers()["location"].to_str().unwrap()),
        (302, "http://127.0.0.1:9/private")
    );
    assert_eq!(served.requests.load(Ordering::SeqCst), 1);
}

fn tls_acceptor() -> TlsAcceptor {
    let chain = vec![CertificateDer::from_pem_slice(include_bytes!("testdata/server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/server.key")).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn tls_goes_to_the_checked_address_and_verifies_the_urls_name() {
    let (address, served) = serve(Some(tls_acceptor()), OK).await;
    let port = address.port();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(include_bytes!("testdata/ca.pem")).unwrap()).unwrap();
    let settings = Settings { roots, ..Settings::default() };
    // Every name resolves to the loopback server, whose certificate is for stage.test.
    let outbound = Outbound::with(Scripted::new(&[&["127.0.0.1"]]), settings);

    let answer =
        outbound.send(get(&format!("https://stage.test:{port}/")), Egress::PrivateAllowed, TIMEOUTS, 10).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(*served.server_names.lock().unwrap(), ["stage.test"], "SNI names the URL's host");

    for url in [format!("https://other.test:{port}/"), format!("https://127.0.0.1:{port}/")] {
        let refused = outbound.send(get(&url), Egress::PrivateAllowed, TIMEOUTS, 10).await.unwrap_err();
        assert!(matches!(refused, SendError::Connect(ConnectError::Tls { .. })), "{url}: {refused:?}");
    }

    // With the public roots only, the test authority is not trusted.
    let public_roots = Outbound::with(Scripted::new(&[&["127.0.0.1"]]), Settings::default());
    let untrusted = public_roots
        .send(get(&format!("https://stage.test:{port}/")), Egress::PrivateAllowed, TIMEOUTS, 10)
        .await
        .unwrap_err();
    assert!(matches!(untrusted, SendError::Connect(ConnectError::Tls { .. })), "{untrusted:?}");
    assert_eq!(served.requests.load(Ordering::SeqCst), 1);
}
