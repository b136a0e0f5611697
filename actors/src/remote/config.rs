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
    /// Most bytes of inbound requests this node holds for all peers together (default
    /// 64 MiB): asks from their arrival until they are answered (in a mailbox, a
    /// backlog, or being handled), tells until they are queued in their mailbox; each
    /// is charged its payload and 128 bytes. Past it, asks are refused with
    /// [`CallError::MailboxFull`](super::CallError::MailboxFull) and tells dropped,
    /// counted in [`NodeStats::inbound_refused`](super::NodeStats::inbound_refused)
    /// and logged (at most once a second per peer). Replies, stream items, credits
    /// and control messages are never charged: they are always read.
    pub inbound_bytes_limit: usize,
    /// Most bytes of inbound requests held for one peer (default 16 MiB; at most
    /// `inbound_bytes_limit`), charged as above: one greedy peer cannot take the
    /// node's whole budget.
    pub peer_inbound_bytes_limit: usize,
    /// Most peers this node keeps a view of (default 1,024): configured ones and
    /// members found by gossip. A new member past it is refused (counted in
    /// [`NodeStats::peers_refused`](super::NodeStats::peers_refused), logged); so are
    /// the names of nodes seen leave past it.
    pub max_peers: usize,
    /// Most component names this node remembers having heard of (default 16,384),
    /// to tell a name that was hosted ([`CallError::NotHosted`](super::CallError::NotHosted))
    /// from one never heard of ([`CallError::UnknownName`](super::CallError::UnknownName)).
    /// Names past it are not remembered (counted in
    /// [`NodeStats::names_dropped`](super::NodeStats::names_dropped)): calls to them
    /// fail `UnknownName` when no node hosts them.
    pub max_names: usize,
    /// Decoding limits for envelopes and control messages.
    pub limits: Limits,
    /// Whether this node exchanges `tern.v1.Directory` messages with its peers
    /// (default `true`): it announces its components to configured peers and takes
    /// their announcements. With membership discovery on (components learnt from
    /// gossip, [`Node::peer_up`](super::Node::peer_up)) set it to `false`: nothing is
    /// announced on the data plane, and a directory that arrives there is refused,
    /// counted in [`NodeStats::directories_refused`](super::NodeStats::directories_refused)
    /// and logged, whoever sends it (a query for this node's directory is still
    /// answered, so a client can find components).
    pub static_directories: bool,
    /// Seed of this node's message-id key and of its breakers' jitter (default `None`). Ids are a counter
    /// enciphered under the key, so a peer cannot predict the ids of calls outstanding
    /// to other peers. `None`: the key is drawn from the operating system's random
    /// source at start, or, under the simulator's virtual clock, derived from the
    /// name and generation so a run replays. Set it only for tests and simulations.
    pub seed: Option<u64>,
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
            inbound_bytes_limit: 64 << 20,
            peer_inbound_bytes_limit: 16 << 20,
            max_peers: 1024,
            max_names: 16_384,
            limits: Limits::default(),
            breaker: BreakerConfig::default().disabled(),
            ejection: EjectionConfig::default().disabled(),
            ingress: IngressConfig::default(),
            seed: None,
            static_directories: true,
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

    /// Sets [`NodeConfig::static_directories`].
    #[must_use]
    pub fn static_directories(mut self, on: bool) -> Self {
        self.static_directories = on;
        self
    }

    /// Sets [`NodeConfig::seed`]: message ids and breaker jitter become a function of it.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
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

    /// Sets [`NodeConfig::held_bytes_limit`].
    #[must_use]
    pub fn held_bytes_limit(mut self, bytes: usize) -> Self {
        self.held_bytes_limit = bytes;
        self
    }

    /// Sets the inbound byte budgets: [`NodeConfig::inbound_bytes_limit`] for the node,
    /// [`NodeConfig::peer_inbound_bytes_limit`] per peer.
    #[must_use]
    pub fn inbound_bytes_limits(mut self, node: usize, per_peer: usize) -> Self {
        self.inbound_bytes_limit = node;
        self.peer_inbound_bytes_limit = per_peer;
        self
    }

    /// Sets [`NodeConfig::max_peers`].
    #[must_use]
    pub fn max_peers(mut self, max: usize) -> Self {
        self.max_peers = max;
        self
    }

    /// Sets [`NodeConfig::max_names`].
    #[must_use]
    pub fn max_names(mut self, max: usize) -> Self {
        self.max_names = max;
        self
    }

    /// Sets [`NodeConfig::relink_after`].
    #[must_use]
    pub fn relink_after(mut self, after: Duration) -> Self {
        self.relink_after = after;
        self
    }

    /// Checks every value, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<(), NodeError> {
        let bad = |field: &'static str, why: String| Err(NodeError::Config { field, why });
        check_name(&self.name, &self.limits).or_else(|why| bad("name", why))?;
        for p in &self.peers {
            check_name(p, &self.limits).or_else(|why| bad("peers", why))?;
            if *p == self.name {
                return bad("peers", format!("{p:?} is this node itself"));
            }
        }
        for (field, n) in [
            ("pending_limit", self.pending_limit),
            ("inbound_bytes_limit", self.inbound_bytes_limit),
            ("peer_inbound_bytes_limit", self.peer_inbound_bytes_limit),
            ("max_peers", self.max_peers),
            ("max_names", self.max_names),
        ] {
            if n == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.peer_inbound_bytes_limit > self.inbound_bytes_limit {
            return bad(
                "peer_inbound_bytes_limit",
                format!(
                    "{} is more than inbound_bytes_limit ({})",
                    self.peer_inbound_bytes_limit, self.inbound_bytes_limit
                ),
            );
        }
        if self.peers.len() > self.max_peers {
            return bad(
                "peers",
                format!(
                    "{} peers, more than max_peers ({})",
                    self.peers.len(),
                    self.max_peers
                ),
            );
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
    /// The operating system's random source could not be read for the message-id key.
    #[error("no randomness for the message-id key: {0}")]
    Entropy(String),
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
                NodeConfig::new("a").inbound_bytes_limits(0, 0),
                "inbound_bytes_limit",
            ),
            (
                NodeConfig::new("a").inbound_bytes_limits(10, 11),
                "peer_inbound_bytes_limit",
            ),
            (NodeConfig::new("a").max_peers(0), "max_peers"),
            (NodeConfig::new("a").max_peers(1).peers(["b", "c"]), "peers"),
            (NodeConfig::new("a").max_names(0), "max_names"),
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
