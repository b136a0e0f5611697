//! What a node counts: [`NodeStats`] and [`TellRefusals`].

use tern_proto::session::SessionStats;

use super::budget::InboundRefusals;
use crate::flow::FlowStats;
use crate::ops::AdmissionCounts;
use crate::remote::error::CallError;

/// Counters of what a node sent, received, refused and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Tells to other nodes accepted: handed to the transport (or to the wire session,
    /// for tells that waited for their component name; a transport refusal there is
    /// counted in `send_failures`). Tells waiting for a name are in `pending`.
    pub tells_sent: u64,
    /// Tells to other nodes refused at once, by reason (the caller got the message
    /// back in [`Undelivered`](crate::remote::Undelivered)).
    pub tells_refused: TellRefusals,
    /// This node's asks that ended with [`CallError::Timeout`].
    pub asks_timed_out: u64,
    /// This node's asks that ended with [`CallError::PeerLost`]: their peer restarted,
    /// left or died, or its connection dropped, while they were outstanding.
    pub asks_lost: u64,
    /// Connections to peers the transport reported lost.
    pub links_lost: u64,
    /// Asks sent to other nodes.
    pub asks_sent: u64,
    /// Requests from other nodes queued in a local mailbox.
    pub requests_delivered: u64,
    /// Inbound asks answered with an error (unknown component, full mailbox, ...).
    pub refused: u64,
    /// Inbound tells that could not be delivered; each is logged with its reason.
    pub dropped: u64,
    /// Inbound requests that found their component's mailbox full and waited in its
    /// backlog (only that component's requests wait; see [`Node`](crate::remote::Node)).
    pub held: u64,
    /// Bytes of inbound requests waiting in backlogs now
    /// (bounded by [`NodeConfig::held_bytes_limit`](crate::remote::NodeConfig::held_bytes_limit)).
    pub held_bytes: usize,
    /// Bytes of inbound requests charged to the node's budget now (see
    /// [`NodeConfig::inbound_bytes_limit`](crate::remote::NodeConfig::inbound_bytes_limit)).
    pub inbound_bytes: usize,
    /// Inbound requests refused by a byte budget or a backlog bound, by reason (each
    /// also counted in `refused` or `dropped`).
    pub inbound_refused: InboundRefusals,
    /// Members refused because this node already had
    /// [`NodeConfig::max_peers`](crate::remote::NodeConfig::max_peers) peers; each is
    /// logged (at most once a second per name).
    pub peers_refused: u64,
    /// Component names not remembered because this node already remembered
    /// [`NodeConfig::max_names`](crate::remote::NodeConfig::max_names).
    pub names_dropped: u64,
    /// Inbound asks whose deadline passed while they waited in the mailbox: not
    /// handled, not answered (the caller has given up).
    pub requests_expired: u64,
    /// Messages waiting now for a component name to become known.
    pub pending: usize,
    /// Waiting tells that expired; each is logged.
    pub pending_expired: u64,
    /// Frames the transport refused (unreachable, full, too large); each is logged.
    pub send_failures: u64,
    /// Directory updates taken from peers.
    pub directory_updates: u64,
    /// Control messages that failed to decode.
    pub bad_control: u64,
    /// Directories refused because their sender is not a peer of this node (neither
    /// configured nor a member found by gossip), or because static directories are
    /// off ([`NodeConfig::static_directories`](crate::remote::NodeConfig::static_directories),
    /// discovery on); each is logged.
    pub directories_refused: u64,
    /// Streams this node asked for that are still open.
    pub streams_open: usize,
    /// Streams this node produces for callers that are still open.
    pub streams_producing: usize,
    /// Streams this node produced that reached their deadline (stopped; nothing more
    /// sent, as the wire protocol says).
    pub streams_expired: u64,
    /// The wire session's own counters.
    pub session: SessionStats,
    /// Horizons and flow rate limits: refusals, drops, bounces, spills and the
    /// shaping queue ([`crate::flow`]).
    pub flow: FlowStats,
    /// The admission chains' counters: breaker refusals and transitions, in-flight
    /// cap refusals, ejections, inbound asks shed by the ingress limit.
    pub admission: AdmissionCounts,
}

/// Tells refused at once, by reason; see [`NodeStats::tells_refused`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TellRefusals {
    /// The destination is gone: every host of the name died or left
    /// ([`CallError::NotHosted`]). (A tell pinned to a node that died or left is
    /// counted in `unreachable`.)
    pub peer_lost: u64,
    /// No connection to the destination ([`CallError::Unreachable`]).
    pub unreachable: u64,
    /// The transport's queue to the destination is full ([`CallError::Backpressure`]).
    pub backpressure: u64,
    /// Too many messages already wait for unknown names ([`CallError::PendingFull`]).
    pub pending_full: u64,
    /// The component's circuit breaker is open ([`CallError::CircuitOpen`]).
    pub circuit_open: u64,
    /// Anything else (too large, ...).
    pub other: u64,
}

impl TellRefusals {
    pub(in crate::remote) fn count(&mut self, e: &CallError) {
        let n = match e {
            CallError::PeerLost(_) | CallError::NotHosted { .. } => &mut self.peer_lost,
            CallError::Unreachable(_) => &mut self.unreachable,
            CallError::Backpressure(_) => &mut self.backpressure,
            CallError::PendingFull => &mut self.pending_full,
            CallError::CircuitOpen { .. } => &mut self.circuit_open,
            _ => &mut self.other,
        };
        *n += 1;
    }

    /// All refusals.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.peer_lost
            + self.unreachable
            + self.backpressure
            + self.pending_full
            + self.circuit_open
            + self.other
    }
}
