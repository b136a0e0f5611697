//! The ZeroMQ transport's settings.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{CurveSecurity, ZmqSecurity};
use crate::DEFAULT_MAX_FRAME;

/// How a [`ZmqTransport`](super::ZmqTransport) binds, connects and protects itself.
///
/// The defaults follow design/reliability.md: heartbeats on (a frozen or dead peer is
/// detected in about `heartbeat_timeout`), a bounded `MAXMSGSIZE` on every socket (a
/// frame that claims more closes its connection instead of allocating), a short
/// handshake deadline, bounded linger, reconnect backoff, and bounded queues whose
/// limit is a typed [`TransportError::Backpressure`](crate::TransportError::Backpressure),
/// never a silent drop.
///
/// # Examples
///
/// ```
/// use tern_transport::ZmqConfig;
///
/// let config = ZmqConfig::new("a")
///     .listen("tcp://127.0.0.1:0")
///     .peer("b", "tcp://127.0.0.1:7002");
/// assert_eq!(config.peers["b"], "tcp://127.0.0.1:7002");
/// // Security is chosen explicitly: CURVE (`.curve(...)`) or plaintext.
/// assert!(config.validate().is_err());
/// assert!(config.plaintext().validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZmqConfig {
    /// This node's name; it is the routing id of every connection it makes.
    pub name: String,
    /// Endpoints to bind (`tcp://host:port`, `ipc:///path`, `inproc://name`).
    pub listen: Vec<String>,
    /// Peers to connect to, by node name.
    pub peers: BTreeMap<String, String>,
    /// Largest frame accepted or sent (`MAXMSGSIZE`), in bytes (default 1 MiB).
    pub max_frame: usize,
    /// Messages queued per connection before sends fail with backpressure (default
    /// 10,000).
    pub send_hwm: i32,
    /// Messages queued per connection on the receiving side (default 10,000).
    pub recv_hwm: i32,
    /// Interval of ZMTP heartbeats (default 250 ms).
    pub heartbeat_ivl: Duration,
    /// How long without traffic or a heartbeat reply before a connection is closed
    /// (default 1.5 s).
    pub heartbeat_timeout: Duration,
    /// How long a connection may take to complete its handshake (default 5 s).
    pub handshake_ivl: Duration,
    /// How long unsent messages are kept when the transport closes (default 500 ms).
    pub linger: Duration,
    /// First reconnect delay (default 100 ms); it doubles up to `reconnect_ivl_max`.
    pub reconnect_ivl: Duration,
    /// Longest reconnect delay (default 1 s): a restarted peer is reached again within
    /// about a second.
    pub reconnect_ivl_max: Duration,
    /// Inbound messages read ahead of the node before the reader pauses (default 4,096).
    pub inbox_capacity: usize,
    /// Bytes of inbound frames read ahead of the node before the reader pauses
    /// (default 16 MiB): large frames arriving faster than the node takes them wait
    /// in libzmq's queues and then the sender's TCP window, not in this process's
    /// read-ahead.
    pub inbox_bytes: usize,
    /// Inbound TCP connections open at once from one remote IP address (default 256):
    /// one more is shut down as soon as it is accepted, before any handshake, counted
    /// in [`ZmqStats::connections_refused`](super::ZmqStats::connections_refused) and
    /// logged with the address (see the transport's `sources` module for how).
    pub max_connections_per_address: usize,
    /// CURVE or plaintext; unset by default, and refused unset.
    pub security: ZmqSecurity,
}

impl ZmqConfig {
    /// Defaults for node `name`, with no endpoints yet.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            listen: Vec::new(),
            peers: BTreeMap::new(),
            max_frame: DEFAULT_MAX_FRAME,
            send_hwm: 10_000,
            recv_hwm: 10_000,
            heartbeat_ivl: Duration::from_millis(250),
            heartbeat_timeout: Duration::from_millis(1500),
            handshake_ivl: Duration::from_secs(5),
            linger: Duration::from_millis(500),
            reconnect_ivl: Duration::from_millis(100),
            reconnect_ivl_max: Duration::from_secs(1),
            inbox_capacity: 4096,
            inbox_bytes: 16 << 20,
            max_connections_per_address: 256,
            security: ZmqSecurity::Unset,
        }
    }

    /// No authentication and no encryption: for tests and in-process transports.
    #[must_use]
    pub fn plaintext(mut self) -> Self {
        self.security = ZmqSecurity::Plaintext;
        self
    }

    /// CURVE with these keys and allow-list.
    #[must_use]
    pub fn curve(mut self, curve: CurveSecurity) -> Self {
        self.security = ZmqSecurity::Curve(Box::new(curve));
        self
    }

    /// Adds an endpoint to bind.
    #[must_use]
    pub fn listen(mut self, endpoint: impl Into<String>) -> Self {
        self.listen.push(endpoint.into());
        self
    }

    /// Adds a peer to connect to.
    #[must_use]
    pub fn peer(mut self, name: impl Into<String>, endpoint: impl Into<String>) -> Self {
        self.peers.insert(name.into(), endpoint.into());
        self
    }

    /// Checks every value, naming the first bad one.
    ///
    /// # Errors
    ///
    /// A description naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.len() > 255 {
            return Err("name: must be 1 to 255 bytes".into());
        }
        for e in self.listen.iter().chain(self.peers.values()) {
            if !["tcp://", "ipc://", "inproc://"]
                .iter()
                .any(|p| e.starts_with(p))
            {
                return Err(format!(
                    "endpoint {e:?}: expected tcp://, ipc:// or inproc://"
                ));
            }
        }
        for name in self.peers.keys() {
            if name.is_empty() || name.len() > 255 || *name == self.name {
                return Err(format!("peers: bad peer name {name:?}"));
            }
        }
        if self.max_frame < 64 || i64::try_from(self.max_frame).is_err() {
            return Err("max_frame: must be at least 64 bytes".into());
        }
        if self.send_hwm <= 0 || self.recv_hwm <= 0 {
            return Err("send_hwm/recv_hwm: must be positive".into());
        }
        if self.heartbeat_ivl.is_zero() || self.heartbeat_timeout <= self.heartbeat_ivl {
            return Err("heartbeat_timeout: must be longer than heartbeat_ivl > 0".into());
        }
        if self.inbox_capacity == 0 || self.inbox_bytes == 0 {
            return Err("inbox_capacity/inbox_bytes: must be at least 1".into());
        }
        if self.max_connections_per_address == 0 {
            return Err("max_connections_per_address: must be at least 1".into());
        }
        match &self.security {
            ZmqSecurity::Unset => {
                return Err(
                    "security: unset; choose CURVE (keys and an allow-list) or plaintext".into(),
                );
            }
            ZmqSecurity::Curve(c) => {
                if c.allow_list.is_empty() {
                    return Err("security: CURVE needs a non-empty allow-list".into());
                }
                let mut endpoints = self.listen.iter().chain(self.peers.values());
                if let Some(e) = endpoints.find(|e| e.starts_with("inproc://")) {
                    return Err(format!(
                        "endpoint {e:?}: inproc has no CURVE handshake; use tcp:// or ipc://"
                    ));
                }
            }
            ZmqSecurity::Plaintext => {}
        }
        Ok(())
    }
}

/// Milliseconds as ZeroMQ's `int` options want them.
pub(crate) fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
