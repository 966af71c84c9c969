//! `/app/backend.json`: what an app's backend may reach and the limits it runs under.
//!
//! ```json
//! { "allowedOutboundHosts": ["https://api.example.com", "https://*.example.org:8443/v2/"],
//!   "limits": { "wallTimeMs": 5000, "memoryBytes": 33554432 } }
//! ```
//!
//! Each allowed host is a URL: scheme (`http`/`https`), host (`*.` for any subdomain),
//! optional port (else the scheme's) and optional path prefix. A literal IP address may be
//! private (e.g. a service on the operator's network); it is reachable only when the server
//! runs with `--allow-private-egress`. Host names must resolve to public addresses.
//! `limits` overrides the server's backend defaults field by field.

use serde_json::{Map, Value};

use crate::workflow::Problem;
use stage_runtime::{Destination, Limits, Policy};

/// Where an app keeps its backend's manifest.
pub const MANIFEST_PATH: &str = "/app/backend.json";

const MANIFEST_FIELDS: [&str; 2] = ["allowedOutboundHosts", "limits"];
/// Longest wall time a backend may ask for (5 minutes).
const MAX_WALL_TIME_MS: u64 = 300_000;
/// Most memory a backend may ask for (the pooling allocator's slot size).
const MAX_MEMORY_BYTES: usize = 256 * 1024 * 1024;
/// Largest request or response body a backend may ask for.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A backend's policy and limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub policy: Policy,
    pub limits: Limits,
}

/// Reads a manifest (`None`: the file is absent) over `defaults`; every problem is listed.
/// `max_wall_time_ms` is the operator's ceiling on `limits.wallTimeMs`.
pub fn parse(bytes: Option<&[u8]>, defaults: Limits, max_wall_time_ms: u64) -> Result<Manifest, Vec<Problem>> {
    let Some(bytes) = bytes else { return Ok(Manifest { policy: Policy::default(), limits: defaults }) };
    let document: Map<String, Value> = match serde_json::from_slice(bytes) {
        Ok(Value::Object(document)) => document,
        Ok(_) => return Err(vec![Problem::new("", "the manifest must be a JSON object")]),
        Err(e) => return Err(vec![Problem::new("", format!("the manifest is not valid JSON: {e}"))]),
    };
    let mut problems = Vec::new();
    for key in document.keys().filter(|k| !MANIFEST_FIELDS.contains(&k.as_str())) {
        problems.push(Problem::new(key.clone(), "unknown field (expected allowedOutboundHosts, limits)"));
    }
    let mut destinations = Vec::new();
    match document.get("allowedOutboundHosts") {
        None => {}
        Some(Value::Array(hosts)) => {
            for (index, host) in hosts.iter().enumerate() {
                let at = format!("allowedOutboundHosts[{index}]");
                match host.as_str().ok_or_else(|| "must be a URL string".to_owned()).and_then(destination) {
                    Ok(destination) => destinations.push(destination),
                    Err(why) => problems.push(Problem::new(at, why)),
                }
            }
        }
        Some(_) => problems.push(Problem::new("allowedOutboundHosts", "must be an array of URLs")),
    }
    let limits = match document.get("limits") {
        None => defaults,
        Some(Value::Object(given)) => limits(given, defaults, max_wall_time_ms, &mut problems),
        Some(_) => {
            problems.push(Problem::new("limits", "must be an object"));
            defaults
        }
    };
    if problems.is_empty() { Ok(Manifest { policy: Policy::new(destinations), limits }) } else { Err(problems) }
}

/// `scheme://host[:port][/path/prefix]` as a policy destination.
fn destination(url: &str) -> Result<Destination, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("{url:?} has an unclosed '['"))?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = port
        .map(|port| port.parse::<u16>().map_err(|_| format!("{url:?} has an invalid port {port:?}")))
        .transpose()?;
    let host = host.to_ascii_lowercase();
    let literal_ip = host.parse::<std::net::IpAddr>().is_ok();
    let destination = Destination {
        scheme: scheme.to_ascii_lowercase(),
        host,
        port,
        methods: None,
        path_prefix: (!path.is_empty() && path != "/").then(|| path.to_owned()),
        private: literal_ip,
    };
    destination.validate().map_err(|why| format!("{url:?}: {why}"))?;
    Ok(destination)
}

/// `given` over `defaults`, each field checked against its bounds.
fn limits(given: &Map<String, Value>, defaults: Limits, max_wall_time_ms: u64, problems: &mut Vec<Problem>) -> Limits {
    let mut merged = match serde_json::to_value(defaults) {
        Ok(Value::Object(merged)) => merged,
        _ => unreachable!("limits serialize to an object"),
    };
    merged.extend(given.clone());
    let limits: Limits = match serde_json::from_value(Value::Object(merged)) {
        Ok(limits) => limits,
        Err(e) => {
            problems.push(Problem::new("limits", e.to_string()));
            return defaults;
        }
    };
    let mut check = |field: &str, ok: bool, bounds: String| {
        if given.contains_key(field) && !ok {
            problems.push(Problem::new(format!("limits.{field}"), format!("must be {bounds}")));
        }
    };
    let max_wall = max_wall_time_ms.min(MAX_WALL_TIME_MS);
    check("wallTimeMs", (1..=max_wall).contains(&limits.wall_time_ms), format!("1 to {max_wall}"));
    check(
        "memoryBytes",
        (1024 * 1024..=MAX_MEMORY_BYTES).contains(&limits.memory_bytes),
        format!("1 MiB to {MAX_MEMORY_BYTES} bytes"),
    );
    check("inputBytes", limits.input_bytes <= MAX_BODY_BYTES, format!("at most {MAX_BODY_BYTES}"));
    check("outputBytes", limits.output_bytes <= MAX_BODY_BYTES, format!("at most {MAX_BODY_BYTES}"));
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_and_limits_over_defaults() {
        let manifest = parse(
            Some(
                br#"{"allowedOutboundHosts": ["https://api.example.com", "http://127.0.0.1:8080/v1/",
                     "https://*.example.org:8443"], "limits": {"wallTimeMs": 500}}"#,
            ),
            Limits::default(),
            300_000,
        )
        .unwrap();
        let expected: Vec<Destination> = serde_json::from_value(serde_json::json!([
            { "scheme": "https", "host": "api.example.com" },
            { "scheme": "http", "host": "127.0.0.1", "port": 8080, "pathPrefix": "/v1/", "private": true },
            { "scheme": "https", "host": "*.example.org", "port": 8443 },
        ]))
        .unwrap();
        assert_eq!(manifest.policy.destinations, expected);
        assert_eq!(manifest.limits, Limits { wall_time_ms: 500, ..Limits::default() });
        assert_eq!(parse(None, Limits::default(), 300_000).unwrap().policy, Policy::default());
    }

    #[test]
    fn lists_every_problem() {
        let problems = parse(
            Some(br#"{"allowedOutboundHosts": ["ftp://x", 3, "https://a b"], "limits": {"wallTimeMs": 0}, "x": 1}"#),
            Limits::default(),
            300_000,
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["x", "allowedOutboundHosts[0]", "allowedOutboundHosts[1]", "allowedOutboundHosts[2]", "limits.wallTimeMs"]
        );
        let unknown = parse(Some(br#"{"limits": {"cpu": 1}}"#), Limits::default(), 300_000).unwrap_err();
        assert!(unknown[0].message.contains("cpu"), "{unknown:?}");
        assert!(parse(Some(b"[]"), Limits::default(), 300_000).is_err());
        assert!(parse(Some(b"{"), Limits::default(), 300_000).is_err());
    }
}
