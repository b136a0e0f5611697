//! What a [`ZmqTransport`](super::ZmqTransport) counts, and why it cannot start.

#[cfg(doc)]
use crate::{Incoming, Transport};

/// Counters of what a [`ZmqTransport`](super::ZmqTransport) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ZmqStats {
    /// Frame pairs handed to ZeroMQ.
    pub sent: u64,
    /// Frame pairs received.
    pub received: u64,
    /// Inbound messages with the wrong number of frames, dropped.
    pub malformed: u64,
    /// Sends refused because a queue was full.
    pub backpressure: u64,
    /// Sends refused because the peer had no established connection
    /// (`ZMQ_IMMEDIATE`: nothing is queued for a connection that is not there).
    pub unreachable: u64,
    /// Sends refused because a frame exceeded `max_frame`.
    pub too_large: u64,
    /// Connections to peers lost (reported as [`Incoming::PeerLost`]).
    pub disconnects: u64,
    /// Connections to peers established (reported as [`Incoming::PeerUp`]).
    pub peer_up: u64,
    /// Frame pairs accepted on connections that were later lost: an upper bound of
    /// what those losses took (the frames the peer had not read when the connection
    /// broke are gone with it; ZeroMQ does not say how many those were). Each loss is
    /// logged with its peer and its share of this count.
    pub sent_on_lost_connections: u64,
    /// Connections closed by [`Transport::forget_peer`] or replaced by a new
    /// endpoint. Frames still queued on one are delivered within `linger` to the
    /// process it was connected to, never to a later one; each close is logged.
    pub closed: u64,
    /// Inbound connections accepted on the listen endpoints.
    pub accepted: u64,
    /// Inbound connections closed: by the peer, by a heartbeat timeout, or by libzmq
    /// after a protocol error such as a frame over `max_frame`.
    pub inbound_closed: u64,
    /// Inbound connections shut down as soon as they were accepted because their
    /// remote address already had
    /// [`ZmqConfig::max_connections_per_address`](super::ZmqConfig::max_connections_per_address)
    /// open; each is logged with the address (at most once a second per address).
    pub connections_refused: u64,
    /// Inbound connections whose handshake failed (not ZMTP 3, a bad greeting, a
    /// handshake deadline passed): garbage, foreign protocols, port scanners.
    pub handshake_failures: u64,
    /// CURVE handshakes the ZAP handler refused (a key not on the allow-list, or not
    /// CURVE at all), each logged with the remote address.
    pub auth_refused: u64,
    /// Outbound connections whose handshake failed (refused by the peer's ZAP handler,
    /// a server key that did not match, not ZMTP 3); each is retried after
    /// `reconnect_ivl_max`.
    pub peer_handshake_failures: u64,
    /// Frames refused because they were not authenticated by a key on the allow-list
    /// in force (no CURVE, or a key revoked since the connection was admitted).
    pub unauthenticated: u64,
    /// Frames refused because their routing id claimed a name other than the one their
    /// key is bound to.
    pub impersonations: u64,
    /// Allow-lists put in force after the start.
    pub allow_list_reloads: u64,
    /// Allow-list files that could not be read or parsed (the list in force stayed).
    pub allow_list_errors: u64,
}

/// Why a [`ZmqTransport`](super::ZmqTransport) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZmqSetupError {
    /// A key or an allow-list is unusable.
    #[error("zmq transport security: {0}")]
    Security(#[from] super::SecurityError),
    /// A configuration value is invalid.
    #[error("zmq transport config: {0}")]
    Config(String),
    /// ZeroMQ refused a socket, an option, a bind or a connect.
    #[error("zmq {what}: {source}")]
    Zmq {
        /// What was being done.
        what: String,
        /// ZeroMQ's error.
        source: zmq::Error,
    },
}

pub(super) fn zmq_err(what: impl Into<String>) -> impl FnOnce(zmq::Error) -> ZmqSetupError {
    let what = what.into();
    move |source| ZmqSetupError::Zmq { what, source }
}
