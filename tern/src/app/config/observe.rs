//! The `[log]`, `[admin]` and `[trace]` sections of a container's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, Layered};
use crate::log::{LogFormat, LogSettings};
use crate::trace::{BadEndpoint, OtlpEndpoint, OtlpSettings};

impl Layered {
    /// The `[log]` section, checked; `filter` is `None` unless `log.filter` is set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] for a format other than text or json, or a filter
    /// that does not parse.
    pub fn log(&self) -> Result<LogConfig, ConfigError> {
        let format = self.str("log.format").unwrap_or("text");
        let format = format
            .parse()
            .map_err(|_| self.bad("log.format", "\"text\" or \"json\"", format!("{format:?}")))?;
        let filter = self.str("log.filter").map(str::to_owned);
        if let Some(f) = &filter {
            let check = LogSettings {
                filter: f.clone(),
                ..LogSettings::default()
            };
            if let Err(e) = crate::log::subscriber(&check, std::io::sink) {
                return Err(self.bad("log.filter", "a RUST_LOG-style filter", e.to_string()));
            }
        }
        Ok(LogConfig {
            format,
            filter,
            flood_burst: u32::try_from(self.int("log.flood_burst").unwrap_or(0))
                .unwrap_or(u32::MAX),
            flood_window: Duration::from_millis(
                self.int("log.flood_window_ms").unwrap_or(0).max(1),
            ),
        })
    }

    /// The `[admin]` section, checked: `None` when the listener is off (no `bind`).
    pub(super) fn admin(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<Option<AdminSettings>, ConfigError> {
        let Some(bind) = self.addr("admin.bind")? else {
            return Ok(None);
        };
        if !bind.ip().is_loopback() {
            warnings.push(format!(
                "admin.bind {bind} is not a loopback address: metrics and status are served to the network, unauthenticated"
            ));
        }
        let positive = |key: &str| match self.int(key) {
            Some(v) if v > 0 => Ok(v),
            other => Err(self.bad(key, "a positive integer", format!("{other:?}"))),
        };
        Ok(Some(AdminSettings {
            bind,
            max_connections: usize::try_from(positive("admin.max_connections")?)
                .unwrap_or(usize::MAX),
            max_request_bytes: usize::try_from(positive("admin.max_request_bytes")?)
                .unwrap_or(usize::MAX),
            request_timeout: Duration::from_millis(positive("admin.request_timeout_ms")?),
        }))
    }
}

impl Layered {
    /// The `[trace]` section, checked: `None` when no collector is named.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] for an endpoint that is not `http://HOST:PORT[/PATH]`
    /// (https included), bounds of zero, or, in a build without the `otlp` feature,
    /// any endpoint at all.
    pub(super) fn otlp(&self) -> Result<Option<OtlpSettings>, ConfigError> {
        self.otlp_in_build(cfg!(feature = "otlp"))
    }

    /// [`Layered::otlp`] in a build with (`feature`) or without the `otlp` feature.
    pub(super) fn otlp_in_build(&self, feature: bool) -> Result<Option<OtlpSettings>, ConfigError> {
        let key = "trace.otlp_endpoint";
        let Some(url) = self.str(key) else {
            return Ok(None);
        };
        if !feature {
            return Err(self.bad(
                key,
                "no collector in this build: enable tern's `otlp` feature to export spans",
                format!("{url:?}"),
            ));
        }
        let endpoint: OtlpEndpoint = url
            .parse()
            .map_err(|e: BadEndpoint| self.bad(key, e.why, format!("{url:?}")))?;
        let positive = |key: &str| match self.int(key) {
            Some(v) if v > 0 => Ok(v),
            other => Err(self.bad(key, "a positive integer", format!("{other:?}"))),
        };
        let mut settings = OtlpSettings::new(endpoint);
        settings.timeout = Duration::from_millis(positive("trace.otlp_timeout_ms")?);
        settings.queue = usize::try_from(positive("trace.otlp_queue")?).unwrap_or(usize::MAX);
        settings.every = Duration::from_millis(positive("trace.otlp_every_ms")?);
        Ok(Some(settings))
    }
}

/// The `[log]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// `log.filter`, if set.
    pub filter: Option<String>,
    /// Flood control: lines per event and remote address per window.
    pub flood_burst: u32,
    /// Flood control window.
    pub flood_window: Duration,
}

impl LogConfig {
    /// The settings to log with: the filter is `RUST_LOG` when `rust_log` is set and
    /// not empty, else `log.filter`, else `level`.
    #[must_use]
    pub fn settings(&self, rust_log: Option<String>, level: &str) -> LogSettings {
        LogSettings {
            format: self.format,
            filter: rust_log
                .filter(|f| !f.is_empty())
                .or_else(|| self.filter.clone())
                .unwrap_or_else(|| level.to_owned()),
            flood_burst: self.flood_burst,
            flood_window: self.flood_window,
        }
    }
}

impl AdminSettings {
    /// A listener on `bind` with the default bounds (8 connections, 8 KiB request
    /// heads, 2 s per request).
    #[must_use]
    pub const fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            max_connections: 8,
            max_request_bytes: 8192,
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// The `[admin]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdminSettings {
    /// The TCP address to listen on.
    pub bind: SocketAddr,
    /// Connections served at once.
    pub max_connections: usize,
    /// Largest request head.
    pub max_request_bytes: usize,
    /// Time a connection has for its request and answer.
    pub request_timeout: Duration,
}
