//! The capability policy: which destinations a component may reach over HTTP.
//!
//! A component declares destinations (scheme, host, optional port, methods and path
//! prefix). Everything else is denied. Hosts under `stage.internal` are the embedded
//! services, served in-process. Other hosts must resolve only to public addresses (see
//! [`crate::net::special`]) unless the destination is marked `private` and the operator
//! allows private egress.

use serde::{Deserialize, Serialize};

/// Suffix of the names that address the embedded platform services.
pub const INTERNAL_SUFFIX: &str = ".stage.internal";

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// `http` or `https`.
    pub scheme: String,
    /// An exact host name or IP, or `*.example.com` for any subdomain.
    pub host: String,
    /// Defaults to the scheme's port (80 or 443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Allowed methods (upper case); any method when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Allowed path prefix; any path when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// May resolve to private, loopback or link-local addresses (honoured only when the
    /// operator allows private egress).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

impl Destination {
    /// Checks the destination is well-formed; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.scheme != "http" && self.scheme != "https" {
            return Err(format!("scheme must be http or https, got {:?}", self.scheme));
        }
        let host = self.host.strip_prefix("*.").unwrap_or(&self.host);
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !host_ok {
            return Err(format!("host {:?} is not a host name", self.host));
        }
        if let Some(prefix) = &self.path_prefix
            && !prefix.starts_with('/')
        {
            return Err(format!("pathPrefix must start with '/', got {prefix:?}"));
        }
        Ok(())
    }

    fn matches(&self, request: &Target<'_>) -> bool {
        let host = request.host.to_ascii_lowercase();
        let host_matches = match self.host.strip_prefix("*.") {
            Some(parent) => host.ends_with(&format!(".{}", parent.to_ascii_lowercase())),
            None => host == self.host.to_ascii_lowercase(),
        };
        host_matches
            && self.scheme == request.scheme
            && self.port.unwrap_or(default_port(&self.scheme)) == request.port
            && self
                .methods
                .as_ref()
                .is_none_or(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(request.method)))
            && self.path_prefix.as_ref().is_none_or(|prefix| request.path.starts_with(prefix.as_str()))
    }
}

/// A request's destination, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub method: &'a str,
    pub path: &'a str,
}

impl Target<'_> {
    /// The embedded service a request addresses (`pulse` for `pulse.stage.internal`).
    pub fn internal_service(&self) -> Option<&str> {
        self.host.strip_suffix(INTERNAL_SUFFIX).filter(|s| !s.is_empty() && !s.contains('.'))
    }
}

pub fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// The destinations one component may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub destinations: Vec<Destination>,
}

impl Policy {
    pub fn new(destinations: Vec<Destination>) -> Policy {
        Policy { destinations }
    }

    /// The first destination allowing `target`, if any.
    pub fn allows(&self, target: &Target<'_>) -> Option<&Destination> {
        self.destinations.iter().find(|d| d.matches(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(scheme: &'a str, host: &'a str, port: u16, method: &'a str, path: &'a str) -> Target<'a> {
        Target { scheme, host, port, method, path }
    }

    fn destination(json: serde_json::Value) -> Destination {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn matches_scheme_host_port_method_and_path() {
        let policy = Policy::new(vec![
            destination(
                serde_json::json!({ "scheme": "https", "host": "sheets.googleapis.com", "pathPrefix": "/v4/" }),
            ),
            destination(serde_json::json!({ "scheme": "http", "host": "pulse.stage.internal", "methods": ["POST"] })),
            destination(serde_json::json!({ "scheme": "https", "host": "*.example.com", "port": 8443 })),
        ]);
        assert!(policy.allows(&target("https", "sheets.googleapis.com", 443, "POST", "/v4/spreadsheets")).is_some());
        assert!(policy.allows(&target("https", "SHEETS.googleapis.com", 443, "GET", "/v4/x")).is_some());
        assert!(policy.allows(&target("https", "sheets.googleapis.com", 443, "GET", "/v3/x")).is_none());
        assert!(policy.allows(&target("http", "sheets.googleapis.com", 80, "GET", "/v4/x")).is_none());
        assert!(policy.allows(&target("https", "sheets.googleapis.com", 8443, "GET", "/v4/x")).is_none());
        assert!(policy.allows(&target("http", "pulse.stage.internal", 80, "POST", "/events")).is_some());
        assert!(policy.allows(&target("http", "pulse.stage.internal", 80, "DELETE", "/events")).is_none());
        assert!(policy.allows(&target("https", "api.example.com", 8443, "GET", "/")).is_some());
        assert!(policy.allows(&target("https", "example.com", 8443, "GET", "/")).is_none());
        assert!(policy.allows(&target("https", "evilexample.com", 8443, "GET", "/")).is_none());
        assert!(policy.allows(&target("https", "evil.com", 443, "GET", "/")).is_none());
    }

    #[test]
    fn names_internal_services() {
        assert_eq!(target("http", "pulse.stage.internal", 80, "GET", "/").internal_service(), Some("pulse"));
        assert_eq!(target("http", "a.b.stage.internal", 80, "GET", "/").internal_service(), None);
        assert_eq!(target("http", "stage.internal", 80, "GET", "/").internal_service(), None);
        assert_eq!(target("http", "example.com", 80, "GET", "/").internal_service(), None);
    }

    #[test]
    fn validates_destinations() {
        assert!(destination(serde_json::json!({ "scheme": "ftp", "host": "x" })).validate().is_err());
        assert!(destination(serde_json::json!({ "scheme": "http", "host": "a b" })).validate().is_err());
        assert!(
            destination(serde_json::json!({ "scheme": "http", "host": "x", "pathPrefix": "v1" })).validate().is_err()
        );
        assert!(destination(serde_json::json!({ "scheme": "https", "host": "*.example.com" })).validate().is_ok());
    }
}
