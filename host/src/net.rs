//! Outbound network access shared by the runtime, the gateway and the services: sending a
//! request (TLS for `https`) with a bounded response body, and refusing destinations that
//! resolve to private, loopback or link-local addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions};

/// Why [`send`] got no whole response.
#[derive(Debug)]
pub enum SendError {
    Http(HttpError),
    /// The response body passed the size bound.
    TooLarge,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Http(error) => write!(f, "{error}"),
            SendError::TooLarge => write!(f, "the response body is too large"),
        }
    }
}

/// Sends a request over the network and reads the whole response body, up to `max_body`
/// bytes. The caller has checked the destination.
pub async fn send(
    request: http::Request<Bytes>,
    options: Option<RequestOptions>,
    max_body: usize,
) -> Result<http::Response<Bytes>, SendError> {
    let mut request = request.map(|body| Full::new(body).map_err(|never| match never {}));
    // The connection is made to the URI's authority; the peer still expects its name.
    if !request.headers().contains_key(http::header::HOST)
        && let Some(host) = request.uri().authority().and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    {
        request.headers_mut().insert(http::header::HOST, host);
    }
    let (response, connection) =
        wasmtime_wasi_http::default_send_request(request, options).await.map_err(SendError::Http)?;
    let connection = tokio::spawn(connection);
    let (parts, body) = response.into_parts();
    let collected = Limited::new(body, max_body).collect().await;
    connection.abort();
    let body = collected.map_err(|_| SendError::TooLarge)?.to_bytes();
    Ok(http::Response::from_parts(parts, body))
}

/// Why [`resolve`] refused a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Lookup,
    NoAddress,
    /// The host resolves (also) to this non-public address.
    NonPublic(IpAddr),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Lookup => write!(f, "the host name could not be resolved"),
            ResolveError::NoAddress => write!(f, "the host name has no address"),
            ResolveError::NonPublic(ip) => write!(f, "the host resolves to the non-public address {ip}"),
        }
    }
}

/// The address to connect to for `host`: refused when any of its addresses is not public,
/// unless `private_ok`.
pub async fn resolve(host: &str, port: u16, private_ok: bool) -> Result<IpAddr, ResolveError> {
    let addresses: Vec<IpAddr> = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => {
            tokio::net::lookup_host((host, port)).await.map_err(|_| ResolveError::Lookup)?.map(|a| a.ip()).collect()
        }
    };
    let first = *addresses.first().ok_or(ResolveError::NoAddress)?;
    if !private_ok && let Some(private) = addresses.iter().find(|ip| is_non_public(**ip)) {
        return Err(ResolveError::NonPublic(*private));
    }
    Ok(first)
}

/// Whether an address is private, loopback, link-local or otherwise not on the public
/// internet (so that a component cannot reach the host's own network by default).
pub fn is_non_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_non_public_v4(v4),
            None => is_non_public_v6(v6),
        },
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_public_from_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(is_non_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "142.250.74.78", "2606:4700:4700::1111"] {
            assert!(!is_non_public(public.parse().unwrap()), "{public}");
        }
    }
}
