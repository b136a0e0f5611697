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
    /// Inbound connections whose handshake failed (not ZMTP 3, a bad greeting, a
    /// handshake deadline passed): garbage, foreign protocols, port scanners.
    pub handshake_failures: u64,
}

/// Why a [`ZmqTransport`](super::ZmqTransport) could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZmqSetupError {
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
