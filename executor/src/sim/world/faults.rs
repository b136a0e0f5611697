//! Network faults a test injects into a [`World`]: partitions, heals and held links
//! (design/simulation.md N6).

use super::{NodeId, World};
use crate::sim::Packet;
use crate::sim::timeline::TimelineKind;

impl World {
    /// Cuts both directions between `a` and `b`: messages sent, and datagrams in flight
    /// when they arrive, are dropped until healed. The pair's stream connection resets
    /// at once: its frames in flight both ways are lost, and each end that had used it
    /// gets a [`SocketEvent::Reset`](crate::sim::SocketEvent::Reset) after
    /// [`NetConfig::reset_detect`](crate::sim::NetConfig::reset_detect).
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        let now = self.clock.now();
        self.net.borrow_mut().partition(now, a, b, true);
        self.note(
            a,
            TimelineKind::Partition {
                peer: b,
                both: true,
            },
        );
        self.note(
            b,
            TimelineKind::Partition {
                peer: a,
                both: true,
            },
        );
    }

    /// Cuts only `from` → `to`. The pair's stream connection resets, as with
    /// [`World::partition`] (a connection needs both directions).
    pub fn partition_oneway(&mut self, from: NodeId, to: NodeId) {
        let now = self.clock.now();
        self.net.borrow_mut().partition(now, from, to, false);
        let kind = TimelineKind::Partition {
            peer: to,
            both: false,
        };
        self.note(from, kind);
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        let now = self.clock.now();
        let mut net = self.net.borrow_mut();
        net.heal(now, a, b);
        net.heal(now, b, a);
        net.note(now, a, TimelineKind::Heal { peer: b });
        net.note(now, b, TimelineKind::Heal { peer: a });
    }

    /// Removes every partition.
    pub fn heal_all(&mut self) {
        let now = self.clock.now();
        self.net.borrow_mut().heal_all(now);
        self.note(NodeId(0), TimelineKind::HealAll);
    }

    /// Holds the link `from` → `to`: messages arriving on it wait, visible through
    /// [`World::held`], until a test delivers, drops or duplicates them or releases the
    /// hold (design/simulation.md N6).
    pub fn hold(&mut self, from: NodeId, to: NodeId) {
        self.net.borrow_mut().hold(from, to);
    }

    /// Messages waiting on held links, in arrival order, with their network sequence
    /// numbers.
    #[must_use]
    pub fn held(&self) -> Vec<(u64, Packet)> {
        self.net.borrow().held()
    }

    /// Delivers held message `seq` now (ahead of the rest of its hold). Returns whether
    /// it was held.
    pub fn deliver_held(&mut self, seq: u64) -> bool {
        let taken = self.net.borrow_mut().take_held(seq, true);
        if let Some(Some(w)) = &taken {
            w.wake_by_ref();
        }
        taken.is_some()
    }

    /// Drops held message `seq`. Returns whether it was held.
    pub fn drop_held(&mut self, seq: u64) -> bool {
        self.net.borrow_mut().take_held(seq, false).is_some()
    }

    /// Delivers a copy of held message `seq` now and keeps the original held.
    pub fn duplicate_held(&mut self, seq: u64) {
        let waker = self.net.borrow_mut().duplicate_held(seq);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Ends the hold on `from` → `to`, delivering what waited in arrival order.
    pub fn release(&mut self, from: NodeId, to: NodeId) {
        let wakers = self.net.borrow_mut().release(from, to);
        for w in wakers {
            w.wake();
        }
    }
}
