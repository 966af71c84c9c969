//! The SMTP server of an `email_smtp` registration: its `smtpUrl`, read once by one strict
//! parser into an [`SmtpTarget`] (at registration, and again from storage at delivery), and
//! the lettre transport built from it to connect to an address the host checked.
//!
//! The forms are lettre's: `smtp://host[:port]` (plain, port 25), `smtp://…?tls=required`
//! or `?tls=opportunistic` (STARTTLS, port 587), `smtps://…` (TLS, port 465), each with an
//! optional `user:password@` (percent-encoded). The URL is read with the `url` crate and
//! must already be in the form that crate writes it: anything it would trim, percent-encode
//! or normalise (a trailing space, a `{` in the user name, a path with a space, an upper
//! case scheme) is refused rather than silently repaired, so that the URL the tenant sees
//! is the one the host delivers to. There is no path (lettre would take it as the EHLO
//! name), no other query and no fragment.

use std::net::IpAddr;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use stage_runtime::net::Host;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no encryption.
    Plain,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    StartTlsOpportunistic,
    /// `smtp://…?tls=required`: STARTTLS, or no delivery.
    StartTlsRequired,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// An SMTP server to deliver through.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpTarget {
    pub security: SmtpSecurity,
    pub host: Host,
    pub port: u16,
    /// User name and password, decoded.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish_non_exhaustive()
    }
}

const FORMS: &str = "smtp://[user:password@]host[:port], with ?tls=required or ?tls=opportunistic for STARTTLS, \
                     or smtps://… for TLS";

impl SmtpTarget {
    /// Reads an `smtpUrl`; the error completes "smtpUrl …".
    pub fn parse(text: &str) -> Result<SmtpTarget, String> {
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain spaces or control characters".into());
        }
        let url = url::Url::parse(text).map_err(|e| format!("is not a URL ({e}); the forms are {FORMS}"))?;
        if url.as_str() != text {
            return Err(format!(
                "is not a well-formed URL: characters such as {{ }} < > \" must be percent-encoded and the scheme \
                 written in lower case; the forms are {FORMS}"
            ));
        }
        let security = match (url.scheme(), url.query()) {
            ("smtp", None) => SmtpSecurity::Plain,
            ("smtp", Some("tls=opportunistic")) => SmtpSecurity::StartTlsOpportunistic,
            ("smtp", Some("tls=required")) => SmtpSecurity::StartTlsRequired,
            ("smtps", None) => SmtpSecurity::Tls,
            ("smtp" | "smtps", Some(query)) => {
                return Err(format!("has the query {query:?}; the forms are {FORMS}"));
            }
            (scheme, _) => return Err(format!("has the scheme {scheme:?}; the forms are {FORMS}")),
        };
        if !matches!(url.path(), "" | "/") {
            return Err(format!("must not have a path; the forms are {FORMS}"));
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment".into());
        }
        let host = Host::parse(url.host_str().ok_or_else(|| format!("must name a host; the forms are {FORMS}"))?)
            .map_err(|why| format!("has a bad host: {why}"))?;
        let port = url.port().unwrap_or(match security {
            SmtpSecurity::Plain => 25,
            SmtpSecurity::StartTlsOpportunistic | SmtpSecurity::StartTlsRequired => 587,
            SmtpSecurity::Tls => 465,
        });
        if port == 0 {
            return Err("must not use port 0".into());
        }
        let decode = |part: &str, what: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| format!("has a {what} that is not UTF-8 once percent-decoded"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (user, Some(password)) if !user.is_empty() => {
                Some((decode(user, "user name")?, decode(password, "password")?))
            }
            _ => return Err("must give both a user name and a password (user:password@), or neither".into()),
        };
        Ok(SmtpTarget { security, host, port, credentials })
    }

    /// A transport to this server at `address` (one the host resolved and checked), so that
    /// lettre does no lookup of its own; TLS still verifies the certificate for the URL's
    /// host.
    pub fn transport(&self, address: IpAddr, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let parameters = || {
            TlsParameters::new(self.host.to_string()).map_err(|e| format!("TLS for {} is not possible: {e}", self.host))
        };
        let tls = match self.security {
            SmtpSecurity::Plain => Tls::None,
            SmtpSecurity::StartTlsOpportunistic => Tls::Opportunistic(parameters()?),
            SmtpSecurity::StartTlsRequired => Tls::Required(parameters()?),
            SmtpSecurity::Tls => Tls::Wrapper(parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string())
            .port(self.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> SmtpTarget {
        SmtpTarget::parse(text).unwrap_or_else(|why| panic!("{text}: {why}"))
    }

    #[test]
    fn reads_every_form_lettre_supports() {
        let plain = target("smtp://127.0.0.1:2525");
        assert_eq!(
            (plain.security, plain.host, plain.port, plain.credentials),
            (SmtpSecurity::Plain, Host::Ip("127.0.0.1".parse().unwrap()), 2525, None)
        );
        let relay = target("smtp://mailer:hunter%2022@mail.example.com:587?tls=required");
        assert_eq!(relay.security, SmtpSecurity::StartTlsRequired);
        assert_eq!(relay.host, Host::Name("mail.example.com".into()));
        assert_eq!(relay.credentials, Some(("mailer".into(), "hunter 22".into())));
        assert!(!format!("{relay:?}").contains("hunter"), "{relay:?}");
        assert_eq!(target("smtp://mail.example.com?tls=opportunistic").port, 587);
        assert_eq!(target("smtp://mail.example.com").port, 25);
        assert_eq!(target("smtp://mail.example.com/").port, 25);
        let tls = target("smtps://u:p@[::1]");
        assert_eq!((tls.security, tls.host, tls.port), (SmtpSecurity::Tls, Host::Ip("::1".parse().unwrap()), 465));
    }

    #[test]
    fn refuses_what_another_parser_would_read_differently() {
        for (text, problem) in [
            // Issue 18, finding 5.
            ("smtp://127.0.0.1:3192 ", "spaces"),
            ("smtp://a{b@127.0.0.1:3192", "well-formed"),
            ("smtp://127.0.0.1:3192/x y", "spaces"),
            ("smtp://127.0.0.1:3192/x", "path"),
            (" smtp://127.0.0.1:3192", "spaces"),
            ("smtp://127.0.0.1:3192\t", "spaces"),
            ("smtp://127.0.0.1:31\n92", "spaces"),
            ("SMTP://127.0.0.1:3192", "well-formed"),
            ("smtp://a\"b@127.0.0.1:3192", "well-formed"),
            ("smtp://user@127.0.0.1:3192", "both a user name and a password"),
            ("smtp://:pw@127.0.0.1:3192", "both a user name and a password"),
            ("smtp://127.0.0.1:3192?tls=maybe", "query"),
            ("smtps://127.0.0.1:3192?tls=required", "query"),
            ("smtp://127.0.0.1:3192#x", "fragment"),
            ("http://127.0.0.1:3192", "scheme"),
            ("smtp://127.0.0.1:0", "port 0"),
            ("smtp://127.0.0.1:99999", "URL"),
            ("smtp://exa$mple.com", "host"),
            ("smtp://", "host"),
            ("127.0.0.1:25", "not a URL"),
        ] {
            let why = SmtpTarget::parse(text).expect_err(text);
            assert!(why.contains(problem), "{text:?}: {why}");
        }
    }

    #[test]
    fn builds_a_transport_to_the_checked_address() {
        let relay = target("smtps://mailer:pw@mail.example.com");
        assert!(relay.transport("203.0.113.9".parse().unwrap(), Duration::from_secs(1)).is_ok());
        assert!(target("smtp://[::1]:2525").transport("::1".parse().unwrap(), Duration::from_secs(1)).is_ok());
    }
}
