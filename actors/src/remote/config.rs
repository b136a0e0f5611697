//! A node's settings and the errors of setting one up.

use std::time::Duration;

use tern_proto::Limits;
use tern_proto::control::RESERVED_PREFIX;

use crate::ops::{BreakerConfig, EjectionConfig, IngressConfig, OpsError};

/// How a [`Node`](super::Node) behaves. Build one with [`NodeConfig::new`] and the
/// chained setters; [`Node::start`](super::Node::start) checks it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::remote::NodeConfig;
///
/// let config = NodeConfig::new("front")
///     .peers(["worker-1", "worker-2"])
///     .pending_ttl(Duration::from_secs(2));
/// assert_eq!(config.peers.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// This node's name: unique in the cluster, the transport's address for it.
    pub name: String,
    /// This node's incarnation: a restarted node must use a higher one, so peers drop
    /// what they knew of the old one at once (default 0).
    pub generation: u64,
    /// The nodes to exchange component directories with (until discovery arrives,
    /// peers are configured). Nodes that contact this one are added.
    pub peers: Vec<String>,
    /// Most messages that may wait for a component name no node has announced yet
    /// (default 1,024). Beyond it, calls fail with
    /// [`CallError::PendingFull`](super::CallError::PendingFull).
    pub pending_limit: usize,
    /// How long a `tell` may wait for its component name to become known (default
    /// 5 s); an `ask` waits at most until its own deadline.
    pub pending_ttl: Duration,
    /// How often the node retries announcing itself to peers it has no directory from,
    /// and sweeps expired waiting messages (default 500 ms).
    pub announce_interval: Duration,
    /// Deadline of a remote `ask` without an explicit one (default 5 s).
    pub default_timeout: Duration,
    /// How long calls to a peer whose connection the transport reported lost fail
    /// with [`CallError::Unreachable`](super::CallError::Unreachable) at once, unless
    /// the connection is reported back earlier (default 1 s). After it, calls are
    /// handed to the transport again, for transports that do not report a connection
    /// coming back.
    pub relink_after: Duration,
    /// Most bytes of inbound requests held while their component's mailbox is full
    /// (payloads plus a small per-request charge; default 16 MiB). Past it, asks are
    /// refused with [`CallError::MailboxFull`](super::CallError::MailboxFull) and tells
    /// dropped, counted and logged.
    pub held_bytes_limit: usize,
    /// Decoding limits for envelopes and control messages.
    pub limits: Limits,
    /// The circuit breaker of each component this node calls (see
    /// [`crate::ops::Breaker`]). Off by default, because it changes the error callers
    /// see during an outage (`CircuitOpen` instead of `Unreachable` or `Timeout`);
    /// `.breaker(BreakerConfig::default())` turns it on with 5 failures in a row or
    /// 50 % of 20 calls.
    pub breaker: BreakerConfig,
    /// Outlier ejection of the hosts of a component (off by default, like the
    /// breaker; `EjectionConfig::default()` ejects a host after 5 failures in a row
    /// for 30 s, at most half the hosts).
    pub ejection: EjectionConfig,
    /// The adaptive limit on inbound asks (default off; see
    /// [`crate::ops::IngressLimit`]).
    pub ingress: IngressConfig,
    /// Seed of the breakers' jitter (default: from the node's name and generation).
    pub seed: u64,
}

impl NodeConfig {
    /// The defaults for a node called `name`.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            generation: 0,
            peers: Vec::new(),
            pending_limit: 1024,
            pending_ttl: Duration::from_secs(5),
            announce_interval: Duration::from_millis(500),
            default_timeout: Duration::from_secs(5),
            relink_after: Duration::from_secs(1),
            held_bytes_limit: 16 << 20,
            limits: Limits::default(),
            breaker: BreakerConfig::default().disabled(),
            ejection: EjectionConfig::default().disabled(),
            ingress: IngressConfig::default(),
            seed: 0,
        }
    }

    /// Sets [`NodeConfig::breaker`].
    #[must_use]
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets [`NodeConfig::ejection`].
    #[must_use]
    pub fn ejection(mut self, ejection: EjectionConfig) -> Self {
        self.ejection = ejection;
        self
    }

    /// Sets [`NodeConfig::ingress`].
    #[must_use]
    pub fn ingress(mut self, ingress: IngressConfig) -> Self {
        self.ingress = ingress;
        self
    }

    /// Sets [`NodeConfig::seed`].
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the peers.
    #[must_use]
    pub fn peers<S: Into<String>>(mut self, peers: impl IntoIterator<Item = S>) -> Self {
        self.peers = peers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the generation.
    #[must_use]
    pub fn generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// Sets the bound on messages waiting for unknown names.
    #[must_use]
    pub fn pending_limit(mut self, limit: usize) -> Self {
        self.pending_limit = limit;
        self
    }

    /// Sets how long a tell waits for an unknown name.
    #[must_use]
    pub fn pending_ttl(mut self, ttl: Duration) -> Self {
        self.pending_ttl = ttl;
        self
    }

    /// Sets the announce and sweep interval.
    #[must_use]
    pub fn announce_interval(mut self, every: Duration) -> Self {
        self.announce_interval = every;
        self
    }

    /// Sets the default deadline of remote asks.
    #[must_use]
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Checks every value, naming the first bad one.
    /// Sets [`NodeConfig::held_bytes_limit`].
    #[must_use]
    pub fn held_bytes_limit(mut self, bytes: usize) -> Self {
        self.held_bytes_limit = bytes;
        self
    }

    /// Sets [`NodeConfig::relink_after`].
    #[must_use]
    pub fn relink_after(mut self, after: Duration) -> Self {
        self.relink_after = after;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), NodeError> {
        let bad = |field: &'static str, why: String| Err(NodeError::Config { field, why });
        check_name(&self.name, &self.limits).or_else(|why| bad("name", why))?;
        for p in &self.peers {
            check_name(p, &self.limits).or_else(|why| bad("peers", why))?;
            if *p == self.name {
                return bad("peers", format!("{p:?} is this node itself"));
            }
        }
        if self.pending_limit == 0 {
            return bad("pending_limit", "must be at least 1".into());
        }
        for (field, d) in [
            ("pending_ttl", self.pending_ttl),
            ("announce_interval", self.announce_interval),
            ("default_timeout", self.default_timeout),
            ("relink_after", self.relink_after),
        ] {
            if d.is_zero() {
                return bad(field, "must be longer than zero".into());
            }
        }
        let ops = |e: OpsError| match e {
            OpsError::Invalid { key, why } => NodeError::Config { field: key, why },
            other => NodeError::Config {
                field: "ops",
                why: other.to_string(),
            },
        };
        self.breaker.validate().map_err(ops)?;
        self.ingress.validate().map_err(ops)?;
        Ok(())
    }
}

fn check_name(name: &str, limits: &Limits) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > limits.max_name_len {
        return Err(format!(
            "{} bytes, longer than the limit of {}",
            name.len(),
            limits.max_name_len
        ));
    }
    Ok(())
}

/// Checks a component name given to [`Node::export`](super::Node::export).
pub(crate) fn check_component_name(name: &str, limits: &Limits) -> Result<(), NodeError> {
    check_name(name, limits).map_err(|why| NodeError::BadName {
        name: name.to_owned(),
        why,
    })?;
    if name.starts_with(RESERVED_PREFIX) {
        return Err(NodeError::BadName {
            name: name.to_owned(),
            why: format!("names starting with {RESERVED_PREFIX:?} are reserved"),
        });
    }
    Ok(())
}

/// Why a node could not be started or a component not exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A configuration value is invalid.
    #[error("node config: {field}: {why}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A component name is empty, too long or reserved.
    #[error("component name {name:?}: {why}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// Another component is exported under this name on this node.
    #[error("a component is already exported as {0:?}")]
    NameTaken(String),
    /// The transport's node name differs from the configured one.
    #[error("the transport is node {transport:?}, the config says {config:?}")]
    NameMismatch {
        /// The transport's name.
        transport: String,
        /// The configured name.
        config: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_value_is_named() {
        let cases = [
            (NodeConfig::new(""), "name"),
            (NodeConfig::new("a").peers(["a"]), "peers"),
            (NodeConfig::new("a").peers([""]), "peers"),
            (NodeConfig::new("a").pending_limit(0), "pending_limit"),
            (
                NodeConfig::new("a").pending_ttl(Duration::ZERO),
                "pending_ttl",
            ),
            (
                NodeConfig::new("a").default_timeout(Duration::ZERO),
                "default_timeout",
            ),
            (
                NodeConfig::new("a").breaker(BreakerConfig::default().probes(50)),
                "breaker.probes",
            ),
            (
                NodeConfig::new("a").ingress(IngressConfig::enabled(0)),
                "ingress.initial",
            ),
        ];
        for (config, field) in cases {
            match config.validate() {
                Err(NodeError::Config { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{config:?}: {other:?}"),
            }
        }
        assert_eq!(NodeConfig::new("a").peers(["b"]).validate(), Ok(()));
        let long = "x".repeat(300);
        assert!(matches!(
            check_component_name(&long, &Limits::default()),
            Err(NodeError::BadName { .. })
        ));
        assert!(check_component_name("tern.directory", &Limits::default()).is_err());
    }
}
