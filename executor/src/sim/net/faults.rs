//! The faults a world applies to its network: holds, partitions, crashes, heals, and
//! the reconnections that follow them.

use std::task::Waker;

use std::cmp::Reverse;

use super::{Delivery, Flight, Net, Packet, pair};
use crate::sim::world::NodeId;
use crate::time::Instant;

impl Net {
    pub(crate) fn hold(&mut self, from: NodeId, to: NodeId) {
        self.holds.insert((from, to));
    }

    pub(crate) fn held(&self) -> Vec<(u64, Packet)> {
        self.held.clone()
    }

    /// Takes a held message out of the hold: delivered now (`deliver`) or dropped.
    /// `None` if no such message is held; otherwise the receiver's waker, if any.
    pub(crate) fn take_held(&mut self, seq: u64, deliver: bool) -> Option<Option<Waker>> {
        let i = self.held.iter().position(|(s, _)| *s == seq)?;
        let (_, packet) = self.held.remove(i);
        if deliver {
            Some(self.put(packet).flatten())
        } else {
            self.stats.dropped_by_test += 1;
            Some(None)
        }
    }

    /// Delivers a copy of a held message now, keeping the original held.
    pub(crate) fn duplicate_held(&mut self, seq: u64) -> Option<Waker> {
        let packet = self.held.iter().find(|(s, _)| *s == seq)?.1.clone();
        self.stats.duplicated += 1;
        self.put(packet).flatten()
    }

    /// Ends a hold: its messages are delivered now, in the order they arrived.
    pub(crate) fn release(&mut self, from: NodeId, to: NodeId) -> Vec<Waker> {
        self.holds.remove(&(from, to));
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, p)| p.from == from && p.to == to);
        self.held = stay;
        go.into_iter()
            .filter_map(|(_, p)| self.put(p).flatten())
            .collect()
    }

    /// Cuts `from` → `to` (and `to` → `from` if `both`) and resets the pair's stream
    /// connection.
    pub(crate) fn partition(&mut self, now: Instant, from: NodeId, to: NodeId, both: bool) {
        self.cut.insert((from, to));
        if both {
            self.cut.insert((to, from));
        }
        let key = pair(from, to);
        self.reset_where(|x, y| pair(x, y) == key);
        self.forget_connection(now, key);
    }

    /// Drops every stream frame in flight or held whose (sender, receiver) satisfies
    /// `hit`, counting them in `reset_lost`, and forgets those streams' order.
    fn reset_where(&mut self, hit: impl Fn(NodeId, NodeId) -> bool) {
        let frame = |p: &Packet| p.delivery == Delivery::Stream && hit(p.from, p.to);
        let before = self.flights.len();
        self.flights
            .retain(|_, f| !matches!(f, Flight::Packet(p) if frame(p)));
        let mut lost = before - self.flights.len();
        if lost > 0 {
            // Keep the schedule free of dropped entries, so the clock does not jump to
            // a delivery that no longer exists.
            let flights = &self.flights;
            self.in_flight
                .retain(|Reverse((_, seq))| flights.contains_key(seq));
        }
        let before = self.held.len();
        self.held.retain(|(_, p)| !frame(p));
        lost += before - self.held.len();
        self.stats.reset_lost += lost as u64;
        self.stream_tail.retain(|&(from, to), _| !hit(from, to));
        // A reset connection's queue is gone with it.
        self.backlog.retain(|&(from, to), _| !hit(from, to));
    }

    /// A stream frame left its connection's queue (taken by its receiver).
    pub(in crate::sim) fn taken(&mut self, p: &Packet) {
        if p.delivery == Delivery::Stream
            && let Some(n) = self.backlog.get_mut(&(p.from, p.to))
        {
            *n = n.saturating_sub(1);
        }
    }

    /// Closes the pair's connection, if open: each live end learns of it after
    /// `reset_detect`.
    fn forget_connection(&mut self, now: Instant, key: (NodeId, NodeId)) {
        if !self.connected.remove(&key) {
            return;
        }
        let at = now + self.config.reset_detect;
        let (a, b) = key;
        for (node, peer) in [(a, b), (b, a)] {
            if !self.down.contains(&node) {
                self.schedule(at, Flight::Reset { node, peer });
                self.waiting.insert((node, peer));
            }
            if a == b {
                break;
            }
        }
    }

    /// Marks a node crashed (its inbox, its stream connections and their frames in
    /// flight are lost; its peers learn of the resets) or back up.
    pub(crate) fn set_down(&mut self, now: Instant, node: NodeId, down: bool) {
        if !down {
            self.down.remove(&node);
            self.reconnect(now);
            return;
        }
        self.down.insert(node);
        if let Some(inbox) = self.inboxes.remove(&node) {
            self.stats.to_crashed += inbox.packets as u64;
        }
        // The crashed node's next incarnation waits for nothing it did not ask for.
        self.waiting.retain(|&(n, _)| n != node);
        self.views.retain(|&(n, _), _| n != node);
        // Reset and reconnection notices still on their way to the crashed node would
        // reach its next incarnation, which never had those connections.
        let stale = |f: &Flight| matches!(f, Flight::Reset { node: n, .. } | Flight::Up { node: n, .. } if *n == node);
        if self.flights.values().any(stale) {
            self.flights.retain(|_, f| !stale(f));
            let flights = &self.flights;
            self.in_flight
                .retain(|Reverse((_, seq))| flights.contains_key(seq));
        }
        self.reset_where(|from, to| from == node || to == node);
        let pairs: Vec<_> = self
            .connected
            .iter()
            .copied()
            .filter(|&(a, b)| a == node || b == node)
            .collect();
        for key in pairs {
            self.forget_connection(now, key);
        }
    }

    pub(crate) fn heal_all(&mut self, now: Instant) {
        self.cut.clear();
        self.reconnect(now);
    }

    pub(crate) fn heal(&mut self, now: Instant, from: NodeId, to: NodeId) {
        self.cut.remove(&(from, to));
        self.reconnect(now);
    }

    /// Whether a stream connection from `from` to `to` could be established now: both
    /// are up and neither direction is cut.
    pub(in crate::sim) fn reachable(&self, from: NodeId, to: NodeId) -> bool {
        !self.down.contains(&from)
            && !self.down.contains(&to)
            && !self.cut.contains(&(from, to))
            && !self.cut.contains(&(to, from))
    }

    /// Schedules a [`SocketEvent::Up`] for every waiting (node, peer) pair that can
    /// connect again.
    fn reconnect(&mut self, now: Instant) {
        let ready: Vec<_> = self
            .waiting
            .iter()
            .copied()
            .filter(|&(node, peer)| self.reachable(node, peer))
            .collect();
        let at = now + self.config.reconnect_ivl.max(self.config.reset_detect);
        for (node, peer) in ready {
            self.waiting.remove(&(node, peer));
            self.schedule(at, Flight::Up { node, peer });
        }
    }

    /// `node` wants a [`SocketEvent::Up`] when `peer` can be reached: at once (after
    /// the reconnection period) if it can be now.
    pub(crate) fn watch(&mut self, now: Instant, node: NodeId, peer: NodeId) {
        self.waiting.insert((node, peer));
        self.reconnect(now);
    }
}
