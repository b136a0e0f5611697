//! The inbound byte budget: what requests from other nodes may hold of this node's
//! memory, per peer and for the node, and the per-peer flood control of the lines
//! that refusals log.
//!
//! A request is charged its payload plus a small overhead from the moment the router
//! admits it until it is done with: an ask until it is answered (queued in a mailbox,
//! held in a backlog, or handled), a tell until it is queued in its mailbox (a
//! mailbox bounds its tells in number). A request that would take a peer or the node
//! past its budget is refused at once: an ask is answered `MailboxFull`, a tell
//! dropped, both counted by reason ([`InboundRefusals`]) and logged at most once a
//! second per peer. Replies, stream items, credits and control messages are never
//! charged: they are always read, so a full budget cannot stall this node's own calls.

use std::collections::BTreeMap;

use tern_proto::session::{Nanos, Request};

/// Bytes a request is charged beyond its payload (its names, the entries that hold it).
pub(crate) const OVERHEAD: usize = 128;

/// Peers whose refusal lines are remembered for flood control; past this the memory is
/// cleared (a flood from many peers still logs at most this many lines a second).
const GATE_PEERS: usize = 1024;

/// Inbound requests refused by the byte budgets, by reason; see
/// [`NodeStats::inbound_refused`](super::NodeStats::inbound_refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboundRefusals {
    /// The sending peer was over its budget
    /// ([`NodeConfig::peer_inbound_bytes_limit`](crate::remote::NodeConfig::peer_inbound_bytes_limit)).
    pub peer_budget: u64,
    /// The node was over its budget
    /// ([`NodeConfig::inbound_bytes_limit`](crate::remote::NodeConfig::inbound_bytes_limit)).
    pub node_budget: u64,
    /// The component's backlog was over its bound
    /// ([`NodeConfig::held_bytes_limit`](crate::remote::NodeConfig::held_bytes_limit)).
    pub backlog: u64,
}

impl InboundRefusals {
    /// All refusals.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.peer_budget + self.node_budget + self.backlog
    }
}

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverBudget {
    Peer,
    Node,
}

/// Bytes charged now, per peer and in all.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    by_peer: BTreeMap<String, usize>,
    total: usize,
}

/// What a request is charged.
pub(crate) fn charge_of(req: &Request) -> usize {
    req.payload.len().saturating_add(OVERHEAD)
}

impl Budget {
    /// Charges `bytes` to `peer` if both budgets allow it.
    pub(crate) fn charge(
        &mut self,
        peer: &str,
        bytes: usize,
        peer_limit: usize,
        node_limit: usize,
    ) -> Result<(), OverBudget> {
        let used = self.by_peer.get(peer).copied().unwrap_or(0);
        if used.saturating_add(bytes) > peer_limit {
            return Err(OverBudget::Peer);
        }
        if self.total.saturating_add(bytes) > node_limit {
            return Err(OverBudget::Node);
        }
        *self.by_peer.entry(peer.to_owned()).or_insert(0) += bytes;
        self.total += bytes;
        Ok(())
    }

    /// Gives back what `peer` was charged for a request that is done with.
    pub(crate) fn release(&mut self, peer: &str, bytes: usize) {
        if let Some(used) = self.by_peer.get_mut(peer) {
            let back = bytes.min(*used);
            *used -= back;
            self.total -= back;
            if *used == 0 {
                self.by_peer.remove(peer);
            }
        }
    }

    /// Bytes charged to `peer` now.
    pub(crate) fn of(&self, peer: &str) -> usize {
        self.by_peer.get(peer).copied().unwrap_or(0)
    }

    /// Bytes charged now, in all.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Everything given back (the node stops).
    pub(crate) fn clear(&mut self) {
        self.by_peer.clear();
        self.total = 0;
    }
}

/// At most one refusal line a second per peer; the lines skipped are counted in the
/// next one.
#[derive(Debug, Default)]
pub(crate) struct LogGate {
    last: BTreeMap<String, (Nanos, u64)>,
}

impl LogGate {
    /// Whether to log now for `peer`, and how many lines were skipped before.
    pub(crate) fn admit(&mut self, peer: &str, now: Nanos) -> Option<u64> {
        const SECOND: Nanos = 1_000_000_000;
        if let Some((at, skipped)) = self.last.get_mut(peer) {
            if now.saturating_sub(*at) < SECOND {
                *skipped += 1;
                return None;
            }
            let n = *skipped;
            *at = now;
            *skipped = 0;
            return Some(n);
        }
        if self.last.len() >= GATE_PEERS {
            self.last.clear();
        }
        self.last.insert(peer.to_owned(), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_bound_each_peer_and_the_node() {
        let mut b = Budget::default();
        assert_eq!(b.charge("p", 60, 100, 150), Ok(()));
        assert_eq!(b.charge("p", 60, 100, 150), Err(OverBudget::Peer));
        assert_eq!(b.charge("q", 60, 100, 150), Ok(()));
        assert_eq!(b.charge("r", 60, 100, 150), Err(OverBudget::Node));
        assert_eq!((b.of("p"), b.of("q"), b.total()), (60, 60, 120));
        b.release("p", 60);
        assert_eq!(b.charge("r", 60, 100, 150), Ok(()));
        // Releasing more than was charged, or for a stranger, never underflows.
        b.release("q", 1_000);
        b.release("nobody", 5);
        assert_eq!((b.of("q"), b.total()), (0, 60));
        b.clear();
        assert_eq!(b.total(), 0);
    }

    #[test]
    fn the_gate_logs_once_a_second_per_peer_and_counts_the_rest() {
        let mut g = LogGate::default();
        assert_eq!(g.admit("p", 0), Some(0));
        assert_eq!(g.admit("p", 10), None);
        assert_eq!(g.admit("p", 20), None);
        assert_eq!(g.admit("q", 20), Some(0));
        assert_eq!(g.admit("p", 1_000_000_000), Some(2));
    }
}
