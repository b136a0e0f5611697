//! Tern's transport SPI: how frame pairs (an envelope and a payload) move between
//! nodes.
//!
//! The [`Transport`] trait is the seam between the protocol logic (the sans-IO wire
//! session in `tern-proto`) and the network. It has two implementations: the simulated
//! network ([`SimTransport`], on `tern_executor::sim`) and ZeroMQ ([`ZmqTransport`], on
//! the executor's reactor), and one conformance suite runs against both.
//!
//! # Guarantees every implementation gives
//!
//! - Frame pairs from one node to another arrive in the order they were sent, or not
//!   at all (after a disconnection); never duplicated, never reordered.
//! - A send that cannot be queued fails at once with a typed [`TransportError`]; a
//!   frame pair larger than the limit is refused, not truncated.
//! - A send to a peer with no live connection fails with
//!   [`TransportError::Unreachable`]: nothing waits in a queue for a connection that may
//!   come back to a later incarnation of the peer (ZeroMQ's `ZMQ_IMMEDIATE`).
//! - A lost connection is reported as [`Incoming::PeerLost`] as soon as it is noticed,
//!   and a re-established one as [`Incoming::PeerUp`]. Frames queued on a connection
//!   when it is lost are discarded with it, never carried over to the next one.
//! - Inbound frames and connection events come out of [`Transport::recv`] in the order
//!   they happened.
//!
//! # Non-goals
//!
//! - No delivery acknowledgement: a queued frame may still be lost with its connection;
//!   the wire session's deadlines turn that into typed errors.
//! - No encoding: frames are opaque bytes.

mod ports;
mod sim;
#[cfg(feature = "zmq")]
mod zeromq;

pub use ports::loopback_port;
pub use sim::{DEFAULT_HWM, DEFAULT_MAX_FRAME, SimTransport};
#[cfg(feature = "zmq")]
pub use zeromq::{
    AllowList, CurveSecurity, KeyPair, SecurityError, ZmqConfig, ZmqSecurity, ZmqSetupError,
    ZmqStats, ZmqTransport,
};

use std::future::Future;

/// Names a node on the transport (its node name).
pub type NodeName = String;

/// Something that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A frame pair from `from`.
    Frame {
        /// The sending node.
        from: NodeName,
        /// The encoded envelope.
        envelope: Vec<u8>,
        /// The payload.
        payload: Vec<u8>,
    },
    /// The connection to this peer was reset (the peer crashed, or a partition cut
    /// it): frames in flight either way may have been lost, and the session fails what
    /// it was waiting for from that peer. A later send opens a new connection.
    PeerLost(NodeName),
    /// A connection to this peer is (again) established: sends to it can succeed. Comes
    /// after a [`Incoming::PeerLost`] for the same peer when its connection is back.
    PeerUp(NodeName),
}

/// Why a frame pair was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No route to this node name.
    #[error("unknown node {0:?}")]
    UnknownNode(NodeName),
    /// The frame pair is larger than the transport accepts.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame pair's size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's queue is full (high-water mark); retry later or fail the request.
    #[error("backpressure: the queue to {0:?} is full")]
    Backpressure(NodeName),
    /// The peer cannot be reached now (partitioned, down, not connected).
    #[error("node {0:?} is unreachable")]
    Unreachable(NodeName),
}

/// Moves frame pairs between nodes. Implementations are single-threaded (no `Send`),
/// like everything on a tern container.
pub trait Transport {
    /// This node's name.
    fn local(&self) -> &str;

    /// Queues a frame pair for `to`.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when it cannot be queued.
    fn send(&self, to: &str, envelope: Vec<u8>, payload: Vec<u8>) -> Result<(), TransportError>;

    /// The next inbound frame pair or connection event.
    fn recv(&self) -> impl Future<Output = Incoming>;

    /// Learns where peer `name` is reached (`address` as discovery spread it, for
    /// ZeroMQ an endpoint such as `tcp://10.0.0.5:7000`); learning the same address
    /// again changes nothing. The default does nothing: for transports that know every
    /// peer already, like the simulator's.
    ///
    /// # Errors
    ///
    /// [`TransportError::Unreachable`] if the address cannot be used.
    fn learn_peer(&self, name: &str, address: &str) -> Result<(), TransportError> {
        let _ = (name, address);
        Ok(())
    }

    /// Whether a frame for `name` can be queued now: a connection to it is established
    /// (or, for a name with no connection of its own, such as a client that only
    /// connected in, a route worth trying). A caller holding a request for a peer that
    /// is not connected yet can keep it until [`Incoming::PeerUp`] instead of having it
    /// refused. The default is `true`.
    fn connected(&self, name: &str) -> bool {
        let _ = name;
        true
    }

    /// Forgets peer `name` (discovery saw it die or leave): its connection closes. The
    /// default does nothing.
    fn forget_peer(&self, name: &str) {
        let _ = name;
    }
}
