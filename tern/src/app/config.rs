//! A container's configuration: a TOML file, then environment overrides, every value
//! checked against a schema and remembered with where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tern_discovery::Key;

mod flows;
mod observe;
mod schema;
mod security;

pub use observe::{AdminSettings, LogConfig};
pub use security::{SecuritySettings, keygen};
use toml::Value;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A key in a configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// A configuration value that is missing, unknown or of the wrong type. The message
/// names the key, where it came from and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or is not TOML.
    #[error("{path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// A key the schema does not have.
    #[error("unknown key `{key}` ({origin}); expected one of: {expected}")]
    UnknownKey {
        /// The key, dotted.
        key: String,
        /// Where it was set.
        origin: Source,
        /// The keys allowed there.
        expected: String,
    },
    /// A value of the wrong type or out of range.
    #[error("`{key}` ({origin}): expected {expected}, found {found}")]
    BadValue {
        /// The key, dotted.
        key: String,
        /// Where it was set.
        origin: Source,
        /// What the schema wants.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A required key was not set anywhere.
    #[error("`{key}` is required ({expected}) and was not set in the file or the environment")]
    Missing {
        /// The key, dotted.
        key: String,
        /// What the schema wants.
        expected: String,
    },
}

fn found(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(x) => format!("the float {x}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::Datetime(d) => format!("the datetime {d}"),
        Value::Array(_) => "an array".into(),
        Value::Table(_) => "a table".into(),
    }
}

/// The merged configuration: every key with its value and source.
#[derive(Debug, Clone, PartialEq)]
pub struct Layered {
    values: BTreeMap<String, (Value, Source)>,
}

impl Layered {
    /// Defaults, then the file (if any), then `TERN_*` variables from `env`
    /// (`TERN_NODE__NAME=w1`, `TERN_PEERS__W2=tcp://...`; values parse as TOML values
    /// when they can, as strings otherwise).
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`].
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?,
            ),
            None => None,
        };
        Self::layers(text.as_deref().zip(file), env)
    }

    /// Defaults, then `text` as if read from a file called `name`, without the
    /// environment: the configuration of a simulated container (see
    /// [`SimCluster`](super::SimCluster)), written exactly as its file is deployed.
    ///
    /// # Examples
    ///
    /// ```
    /// use tern::app::config::Layered;
    ///
    /// let text = "[node]\nname = \"w1\"\nlisten = [\"tcp://127.0.0.1:7101\"]\n";
    /// let settings = Layered::from_toml(text, "w1.toml").unwrap().node(0).unwrap();
    /// assert_eq!(settings.name, "w1");
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`], naming the key and `name`.
    pub fn from_toml(text: &str, name: &str) -> Result<Self, ConfigError> {
        Self::layers(Some((text, Path::new(name))), std::iter::empty())
    }

    fn layers(
        file: Option<(&str, &Path)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut values = BTreeMap::new();
        for (k, v) in defaults() {
            values.insert(k.to_owned(), (v, Source::Default));
        }
        let mut me = Self { values };
        if let Some((text, path)) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.display().to_string(),
                        why: e.to_string(),
                    })?;
            let source = Source::File(path.to_owned());
            for (section, body) in table {
                let Value::Table(body) = body else {
                    return Err(ConfigError::BadValue {
                        key: section,
                        origin: source,
                        expected: "a table (a [section])".into(),
                        found: found(&body),
                    });
                };
                for (key, value) in body {
                    me.set(&section, &key, value, source.clone())?;
                }
            }
        }
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("TERN_"))
            .collect();
        vars.sort();
        for (var, raw) in vars {
            let Some((section, key)) = var["TERN_".len()..].split_once("__") else {
                // TERN_LOG and friends are not configuration keys.
                continue;
            };
            let value = format!("v = {raw}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| Value::String(raw.clone()));
            let section = section.to_ascii_lowercase();
            let key = key.to_ascii_lowercase();
            me.set(&section, &key, value, Source::Env(var))?;
        }
        Ok(me)
    }

    fn set(
        &mut self,
        section: &str,
        key: &str,
        value: Value,
        source: Source,
    ) -> Result<(), ConfigError> {
        let dotted = format!("{section}.{key}");
        if section == "flows" || section == "horizons" {
            let checked = if section == "flows" {
                flows::flow(&value).map(drop)
            } else {
                flows::horizon(&value).map(drop)
            };
            if let Err(expected) = checked {
                return Err(ConfigError::BadValue {
                    key: dotted,
                    origin: source,
                    expected,
                    found: found(&value),
                });
            }
            self.values.insert(dotted, (value, source));
            return Ok(());
        }
        let kind = if section == "peers" {
            Kind::Str
        } else {
            match SCHEMA.iter().find(|(s, k, ..)| *s == section && *k == key) {
                Some((.., kind, _)) => *kind,
                None => {
                    let in_section: Vec<String> = SCHEMA
                        .iter()
                        .filter(|(s, ..)| *s == section)
                        .map(|(s, k, ..)| format!("{s}.{k}"))
                        .collect();
                    let expected = if in_section.is_empty() {
                        "sections [node], [peers], [components], [timeouts], [transport], [gossip], [log], [admin], [trace], [flows.NAME], [horizons]"
                            .to_owned()
                    } else {
                        in_section.join(", ")
                    };
                    return Err(ConfigError::UnknownKey {
                        key: dotted,
                        origin: source,
                        expected,
                    });
                }
            }
        };
        if !kind.accepts(&value) {
            let expected = if section == "peers" {
                "a string endpoint, e.g. \"tcp://127.0.0.1:7102\"".to_owned()
            } else {
                kind.describe().to_owned()
            };
            return Err(ConfigError::BadValue {
                key: dotted,
                origin: source,
                expected,
                found: found(&value),
            });
        }
        self.values.insert(dotted, (value, source));
        Ok(())
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|(v, _)| v.as_str())
    }

    fn int(&self, key: &str) -> Option<u64> {
        self.values
            .get(key)
            .and_then(|(v, _)| v.as_integer())
            .and_then(|i| u64::try_from(i).ok())
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.values
            .get(key)
            .and_then(|(v, _)| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn source(&self, key: &str) -> Source {
        self.values
            .get(key)
            .map_or(Source::Default, |(_, s)| s.clone())
    }

    /// Every key, its value and its source, one per line, in key order.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (key, (value, source)) in &self.values {
            out.push_str(&format!("{key} = {value}    # {source}\n"));
        }
        out
    }

    /// The typed configuration of a node; `now_ms` stands in for an unset generation.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] or [`ConfigError::BadValue`] naming the key.
    pub fn node(&self, now_ms: u64) -> Result<NodeSettings, ConfigError> {
        let name = self.str("node.name").ok_or_else(|| ConfigError::Missing {
            key: "node.name".into(),
            expected: Kind::Str.describe().into(),
        })?;
        let listen = self.list("node.listen");
        if listen.is_empty() {
            return Err(ConfigError::Missing {
                key: "node.listen".into(),
                expected: "at least one endpoint".into(),
            });
        }
        for e in &listen {
            check_endpoint("node.listen", e, self.source("node.listen"))?;
        }
        let mut peers = BTreeMap::new();
        for (key, (value, source)) in &self.values {
            if let Some(peer) = key.strip_prefix("peers.") {
                let endpoint = value.as_str().unwrap_or_default().to_owned();
                check_endpoint(key, &endpoint, source.clone())?;
                peers.insert(peer.to_owned(), endpoint);
            }
        }
        let mut flow_settings = FlowSettings::default();
        for (key, (value, _)) in &self.values {
            if let Some(name) = key.strip_prefix("flows.")
                && let Ok(f) = flows::flow(value)
            {
                flow_settings.flows.insert(name.to_owned(), f);
            } else if let Some(name) = key.strip_prefix("horizons.")
                && let Ok(h) = flows::horizon(value)
            {
                if name == "app" {
                    flow_settings.app_horizon = Some(h);
                } else {
                    flow_settings.component_horizons.insert(name.to_owned(), h);
                }
            }
        }
        let int = |key: &str| self.int(key).unwrap_or(0);
        let positive = |key: &str| -> Result<u64, ConfigError> {
            match self.int(key) {
                Some(v) if v > 0 => Ok(v),
                other => Err(ConfigError::BadValue {
                    key: key.into(),
                    origin: self.source(key),
                    expected: "a positive integer".into(),
                    found: format!("{other:?}"),
                }),
            }
        };
        let size = |key: &str| positive(key).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        let (inbound_bytes_limit, peer_inbound_bytes_limit) = (
            size("node.inbound_bytes_limit")?,
            size("node.peer_inbound_bytes_limit")?,
        );
        if peer_inbound_bytes_limit > inbound_bytes_limit {
            return Err(self.bad(
                "node.peer_inbound_bytes_limit",
                &format!("at most node.inbound_bytes_limit ({inbound_bytes_limit})"),
                peer_inbound_bytes_limit.to_string(),
            ));
        }
        let max_peers = size("node.max_peers")?;
        if peers.len() > max_peers {
            return Err(self.bad(
                "node.max_peers",
                &format!("at least the {} [peers] configured", peers.len()),
                max_peers.to_string(),
            ));
        }
        let (gossip, mut warnings) = self.gossip(&listen)?;
        let admin = self.admin(&mut warnings)?;
        let security = self.security(&mut warnings)?;
        let otlp = self.otlp()?;
        Ok(NodeSettings {
            gossip,
            admin,
            otlp,
            security,
            log: self.log()?,
            warnings,
            name: name.to_owned(),
            generation: self.int("node.generation").unwrap_or(now_ms),
            listen,
            peers,
            host: self.list("components.host"),
            ask_timeout: Duration::from_millis(positive("timeouts.ask_ms")?),
            pending_ttl: Duration::from_millis(positive("timeouts.pending_ttl_ms")?),
            shutdown_grace: Duration::from_millis(int("timeouts.shutdown_grace_ms")),
            max_frame: usize::try_from(positive("transport.max_frame")?).unwrap_or(usize::MAX),
            heartbeat_ivl: Duration::from_millis(positive("transport.heartbeat_ivl_ms")?),
            heartbeat_timeout: Duration::from_millis(positive("transport.heartbeat_timeout_ms")?),
            handshake_ivl: Duration::from_millis(positive("transport.handshake_ivl_ms")?),
            send_hwm: i32::try_from(positive("transport.send_hwm")?).unwrap_or(i32::MAX),
            max_connections_per_address: size("transport.max_connections_per_address")?,
            inbound_bytes_limit,
            peer_inbound_bytes_limit,
            max_peers,
            flows: flow_settings,
        })
    }
}

impl Layered {
    fn bad(&self, key: &str, expected: &str, found: String) -> ConfigError {
        ConfigError::BadValue {
            key: key.into(),
            origin: self.source(key),
            expected: expected.into(),
            found,
        }
    }

    fn addr(&self, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
        self.str(key)
            .map(|s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| self.bad(key, "an address \"ip:port\"", format!("{s:?}")))
            })
            .transpose()
    }

    /// The `[gossip]` section, checked: `None` when gossip is off (no `bind`), and
    /// warnings about values that work but are probably not what was meant.
    fn gossip(
        &self,
        listen: &[String],
    ) -> Result<(Option<GossipSettings>, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let Some(bind) = self.addr("gossip.bind")? else {
            for key in ["gossip.advertise", "gossip.endpoint"] {
                if self.str(key).is_some() {
                    warnings.push(format!(
                        "`{key}` is set but `gossip.bind` is not: gossip is off"
                    ));
                }
            }
            if !self.list("gossip.seeds").is_empty() {
                warnings
                    .push("`gossip.seeds` is set but `gossip.bind` is not: gossip is off".into());
            }
            return Ok((None, warnings));
        };
        let advertise = match self.addr("gossip.advertise")? {
            Some(a) if a.ip().is_unspecified() || a.port() == 0 => {
                return Err(self.bad(
                    "gossip.advertise",
                    "an address other nodes can reach (not 0.0.0.0, not port 0)",
                    a.to_string(),
                ));
            }
            Some(a) => a,
            None if bind.ip().is_unspecified() => {
                return Err(ConfigError::Missing {
                    key: "gossip.advertise".into(),
                    expected: format!(
                        "an address other nodes can reach, because gossip.bind {bind} listens on every interface"
                    ),
                });
            }
            None if bind.port() == 0 => {
                return Err(ConfigError::Missing {
                    key: "gossip.advertise".into(),
                    expected: "a fixed port, because gossip.bind has port 0".into(),
                });
            }
            None => bind,
        };
        let mut seeds = Vec::new();
        for s in self.list("gossip.seeds") {
            let addr = s
                .parse::<SocketAddr>()
                .map_err(|_| self.bad("gossip.seeds", "addresses \"ip:port\"", format!("{s:?}")))?;
            seeds.push(addr);
        }
        let cluster = self.str("gossip.cluster").unwrap_or("tern").to_owned();
        if cluster.is_empty() || cluster.len() > 64 {
            return Err(self.bad("gossip.cluster", "1 to 64 bytes", format!("{cluster:?}")));
        }
        let mut keys = Vec::new();
        for k in self.list("gossip.keys") {
            let shown = "\"ID:<64 hex digits>\"";
            let (id, hex) = k
                .split_once(':')
                .ok_or_else(|| self.bad("gossip.keys", shown, "an entry without ':'".into()))?;
            let id: u8 = id.trim().parse().map_err(|_| {
                self.bad(
                    "gossip.keys",
                    "a key id 0 to 255 before ':'",
                    format!("{id:?}"),
                )
            })?;
            let key: Key = hex
                .parse()
                .map_err(|e: tern_discovery::KeyError| self.bad("gossip.keys", shown, e.0))?;
            if keys.iter().any(|(i, _)| *i == id) {
                return Err(self.bad("gossip.keys", "distinct key ids", format!("id {id} twice")));
            }
            keys.push((id, key));
        }
        if keys.is_empty() {
            return Err(ConfigError::Missing {
                key: "gossip.keys".into(),
                expected: "at least one key \"ID:<64 hex digits>\": every gossip datagram is encrypted and authenticated".into(),
            });
        }
        let endpoint = match self.str("gossip.endpoint") {
            Some(e) => {
                check_endpoint("gossip.endpoint", e, self.source("gossip.endpoint"))?;
                e.to_owned()
            }
            None => {
                let first = listen.first().cloned().unwrap_or_default();
                first.replace("0.0.0.0", &advertise.ip().to_string())
            }
        };
        if endpoint.ends_with(":0") || endpoint.ends_with(":*") {
            warnings.push(format!(
                "the transport endpoint {endpoint:?} has no fixed port; the bound port is published instead"
            ));
        }
        if advertise.ip().is_loopback() && seeds.iter().any(|s| !s.ip().is_loopback()) {
            warnings.push(format!(
                "gossip.advertise {advertise} is a loopback address but some seeds are not: remote nodes cannot reach this one"
            ));
        }
        if seeds.is_empty() {
            warnings.push("`gossip.seeds` is empty: this node starts a cluster of its own and waits to be joined".into());
        }
        Ok((
            Some(GossipSettings {
                bind,
                advertise,
                seeds,
                cluster,
                keys,
                network: self.str("gossip.network").unwrap_or("default").to_owned(),
                capacity: self.int("gossip.capacity").unwrap_or(0),
                endpoint,
            }),
            warnings,
        ))
    }
}

/// The `[gossip]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GossipSettings {
    /// UDP address bound.
    pub bind: SocketAddr,
    /// Address advertised to the others.
    pub advertise: SocketAddr,
    /// Seeds.
    pub seeds: Vec<SocketAddr>,
    /// Cluster id.
    pub cluster: String,
    /// Keys by id; the first is primary.
    pub keys: Vec<(u8, Key)>,
    /// Network name (the `net` fact).
    pub network: String,
    /// Capacity (the `capacity` fact), 0 when unpublished.
    pub capacity: u64,
    /// The transport endpoint peers connect to.
    pub endpoint: String,
}

fn check_endpoint(key: &str, e: &str, source: Source) -> Result<(), ConfigError> {
    if ["tcp://", "ipc://", "inproc://"]
        .iter()
        .any(|p| e.starts_with(p))
    {
        Ok(())
    } else {
        Err(ConfigError::BadValue {
            key: key.into(),
            origin: source,
            expected: "an endpoint starting with tcp://, ipc:// or inproc://".into(),
            found: format!("{e:?}"),
        })
    }
}

/// A node's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeSettings {
    /// Node name.
    pub name: String,
    /// Incarnation.
    pub generation: u64,
    /// Endpoints to bind.
    pub listen: Vec<String>,
    /// Peers by name.
    pub peers: BTreeMap<String, String>,
    /// Components to run here.
    pub host: Vec<String>,
    /// Default remote ask deadline.
    pub ask_timeout: Duration,
    /// Wait for unknown names.
    pub pending_ttl: Duration,
    /// Grace period on shutdown.
    pub shutdown_grace: Duration,
    /// Largest frame.
    pub max_frame: usize,
    /// Heartbeat interval.
    pub heartbeat_ivl: Duration,
    /// Heartbeat timeout.
    pub heartbeat_timeout: Duration,
    /// Handshake deadline.
    pub handshake_ivl: Duration,
    /// Send high-water mark.
    pub send_hwm: i32,
    /// Inbound connections open at once per remote IP address.
    pub max_connections_per_address: usize,
    /// The node's inbound byte budget (all peers).
    pub inbound_bytes_limit: usize,
    /// The inbound byte budget of one peer.
    pub peer_inbound_bytes_limit: usize,
    /// Most peers kept.
    pub max_peers: usize,
    /// Membership gossip, if `gossip.bind` is set.
    pub gossip: Option<GossipSettings>,
    /// The admin listener, if `admin.bind` is set.
    pub admin: Option<AdminSettings>,
    /// Span export to an OpenTelemetry collector, if `trace.otlp_endpoint` is set
    /// (only in a build with the `otlp` feature).
    pub otlp: Option<crate::trace::OtlpSettings>,
    /// CURVE keys and allow-list, or plaintext (`[security]`).
    pub security: SecuritySettings,
    /// Logging.
    pub log: LogConfig,
    /// Values that work but are probably not what was meant; logged at start and
    /// printed by `check-config`.
    pub warnings: Vec<String>,
    /// Named flows and horizons (`[flows.NAME]`, `[horizons]`), applied at start.
    pub flows: FlowSettings,
}

pub use flows::{FlowSetting, FlowSettings};
pub use schema::schema;
use schema::{Kind, SCHEMA, defaults};

#[cfg(test)]
mod tests;
