//! Where and how spans are sent to an OpenTelemetry collector: the endpoint (plain
//! `http://HOST:PORT`) and the exporter's bounds. The sender itself is
//! `tern::trace::otlp::OtlpExporter`, behind the `otlp` feature; these settings are
//! in every build so that a configuration naming a collector is checked (and refused
//! with a clear error by a build without the feature).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The path OTLP/HTTP takes traces at, after the endpoint's own path.
pub const TRACES_PATH: &str = "/v1/traces";

/// Why an endpoint does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad OTLP endpoint {url:?}: {why}")]
pub struct BadEndpoint {
    /// The text given.
    pub url: String,
    /// What is wrong with it.
    pub why: &'static str,
}

/// An OpenTelemetry collector's OTLP/HTTP endpoint: `http://HOST:PORT[/BASE]`.
/// Batches go to `BASE/v1/traces` (a path already ending in `/v1/traces` is used as
/// it is). Plain HTTP only: a collector normally runs next to the container (a
/// sidecar or a local agent) and forwards over TLS itself; `https://` is refused.
/// The port must be given (OTLP/HTTP's usual one is 4318).
///
/// ```
/// use tern::trace::OtlpEndpoint;
///
/// let e: OtlpEndpoint = "http://127.0.0.1:4318".parse().unwrap();
/// assert_eq!((e.host(), e.port(), e.path()), ("127.0.0.1", 4318, "/v1/traces"));
/// let e: OtlpEndpoint = "http://collector:4318/otel/".parse().unwrap();
/// assert_eq!(e.path(), "/otel/v1/traces");
/// assert!("https://collector:4318".parse::<OtlpEndpoint>().is_err());
/// assert!("http://collector".parse::<OtlpEndpoint>().is_err()); // no port
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpEndpoint {
    url: String,
    host: String,
    port: u16,
    path: String,
}

impl OtlpEndpoint {
    /// The host: a name, an IPv4 address, or an IPv6 address without brackets.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// The path batches are posted to.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Host` header's value (`host:port`, IPv6 in brackets).
    #[must_use]
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for OtlpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl FromStr for OtlpEndpoint {
    type Err = BadEndpoint;

    fn from_str(url: &str) -> Result<Self, BadEndpoint> {
        let bad = |why| BadEndpoint {
            url: url.to_owned(),
            why,
        };
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(bad(
                "https is not supported: give the plain http:// address of a local collector (a sidecar or agent that forwards over TLS)",
            ));
        }
        if !lower.starts_with("http://") {
            return Err(bad("an endpoint is http://HOST:PORT"));
        }
        let rest = &url["http://".len()..];
        if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(bad(
                "no user, query, fragment or spaces: an endpoint is http://HOST:PORT[/PATH]",
            ));
        }
        let (authority, base) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, port) = v6
                .split_once("]:")
                .ok_or_else(|| bad("give the port: http://[ADDRESS]:PORT"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in the brackets"));
            }
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("give the port, e.g. http://127.0.0.1:4318"))?
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
        {
            return Err(bad("not a host name or address"));
        }
        let port: u16 = match port.parse() {
            Ok(p) if p > 0 => p,
            _ => return Err(bad("the port is a number from 1 to 65535")),
        };
        let base = base.trim_end_matches('/');
        let path = if base.ends_with(TRACES_PATH) {
            base.to_owned()
        } else {
            format!("{base}{TRACES_PATH}")
        };
        Ok(Self {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            path,
        })
    }
}

/// An exporter's endpoint and bounds (`[trace]` in a container's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpSettings {
    /// The collector.
    pub endpoint: OtlpEndpoint,
    /// Time one batch has to connect, be sent and be answered.
    pub timeout: Duration,
    /// Batches waiting to be sent, at most; when full the oldest is dropped.
    pub queue: usize,
    /// How often the container's new spans are gathered into batches.
    pub every: Duration,
}

impl OtlpSettings {
    /// Settings for `endpoint` with the default bounds: 5 s per batch, 16 batches
    /// waiting, a batch every second.
    #[must_use]
    pub const fn new(endpoint: OtlpEndpoint) -> Self {
        Self {
            endpoint,
            timeout: Duration::from_secs(5),
            queue: 16,
            every: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_or_say_why_not() {
        let e: OtlpEndpoint = "http://[::1]:4318/v1/traces".parse().unwrap();
        assert_eq!((e.host(), e.port(), e.path()), ("::1", 4318, "/v1/traces"));
        assert_eq!(e.host_header(), "[::1]:4318");
        let e: OtlpEndpoint = "HTTP://localhost:9/".parse().unwrap();
        assert_eq!((e.host(), e.path()), ("localhost", "/v1/traces"));
        for bad in [
            "",
            "127.0.0.1:4318",
            "https://c:4318",
            "http://c",
            "http://:4318",
            "http://c:0",
            "http://c:70000",
            "http://c:x",
            "http://u@c:1",
            "http://c:1/?q",
            "http://[zz]:1",
            "http://c d:1",
            "ftp://c:1",
        ] {
            assert!(bad.parse::<OtlpEndpoint>().is_err(), "{bad}");
        }
    }
}
