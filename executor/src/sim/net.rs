//! The simulated network: latency, loss, duplication, reordering and partitions, all
//! drawn from the world's `net` seed stream.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use super::SimRng;
use super::world::NodeId;
use crate::time::Instant;

/// How the simulated network behaves. Probabilities are in parts per million.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::NetConfig;
///
/// let lossy = NetConfig { loss_ppm: 10_000, ..NetConfig::default() }; // 1 % loss
/// assert_eq!(lossy.min_latency, Duration::from_micros(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// Every message takes at least this long (default 100 µs).
    pub min_latency: Duration,
    /// Mean of the exponential tail added to the minimum (default 200 µs).
    pub tail_mean: Duration,
    /// Datagrams lost, per million (default 0).
    pub loss_ppm: u32,
    /// Datagrams delivered twice, per million (default 0).
    pub duplicate_ppm: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            min_latency: Duration::from_micros(100),
            tail_mean: Duration::from_micros(200),
            loss_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

/// Whether a message is a datagram (may be lost, duplicated, reordered) or part of an
/// ordered stream between two nodes (FIFO per direction; lost only to partitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    /// UDP-like.
    Datagram,
    /// Connection-like: in order per (sender, receiver).
    Stream,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered (duplicates count twice).
    pub delivered: u64,
    /// Datagrams lost to the loss model.
    pub lost: u64,
    /// Messages dropped by a partition.
    pub partitioned: u64,
    /// Datagrams duplicated.
    pub duplicated: u64,
    /// Messages lost because their receiver was crashed (in flight or queued).
    pub to_crashed: u64,
    /// Held messages a test chose to drop.
    pub dropped_by_test: u64,
}

/// A message in the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Datagram or stream.
    pub delivery: Delivery,
    /// The bytes.
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inbox {
    queue: VecDeque<Packet>,
    waker: Option<Waker>,
}

#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) config: NetConfig,
    rng: SimRng,
    seq: u64,
    in_flight: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: BTreeMap<u64, Packet>,
    /// Latest delivery time per (from, to) stream, to keep streams in order.
    stream_tail: BTreeMap<(NodeId, NodeId), Instant>,
    /// Directed pairs that cannot talk: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Crashed nodes: nothing reaches them.
    down: BTreeSet<NodeId>,
    /// Held links (from, to): arriving messages wait in `held` until released.
    holds: BTreeSet<(NodeId, NodeId)>,
    held: Vec<(u64, Packet)>,
    inboxes: BTreeMap<NodeId, Inbox>,
    pub(crate) stats: NetStats,
}

impl Net {
    pub(crate) fn new(rng: SimRng) -> Self {
        Self {
            config: NetConfig::default(),
            rng,
            seq: 0,
            in_flight: BinaryHeap::new(),
            packets: BTreeMap::new(),
            stream_tail: BTreeMap::new(),
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            holds: BTreeSet::new(),
            held: Vec::new(),
            inboxes: BTreeMap::new(),
            stats: NetStats::default(),
        }
    }

    fn latency(&mut self) -> Duration {
        let tail = u64::try_from(self.config.tail_mean.as_nanos()).unwrap_or(u64::MAX);
        self.config.min_latency + Duration::from_nanos(self.rng.exp_nanos(tail))
    }

    fn schedule(&mut self, at: Instant, packet: Packet) {
        self.seq += 1;
        self.in_flight.push(Reverse((at, self.seq)));
        self.packets.insert(self.seq, packet);
    }

    pub(crate) fn send(&mut self, now: Instant, packet: Packet) -> SendOutcome {
        self.stats.sent += 1;
        if self.cut.contains(&(packet.from, packet.to)) {
            self.stats.partitioned += 1;
            return SendOutcome::Partitioned;
        }
        let at = now + self.latency();
        match packet.delivery {
            Delivery::Stream => {
                let key = (packet.from, packet.to);
                let at = self.stream_tail.get(&key).map_or(at, |&tail| at.max(tail));
                self.stream_tail.insert(key, at);
                self.schedule(at, packet);
                SendOutcome::InFlight
            }
            Delivery::Datagram => {
                if self.rng.chance(u64::from(self.config.loss_ppm), 1_000_000) {
                    self.stats.lost += 1;
                    return SendOutcome::Lost;
                }
                if self
                    .rng
                    .chance(u64::from(self.config.duplicate_ppm), 1_000_000)
                {
                    self.stats.duplicated += 1;
                    let again = now + self.latency();
                    self.schedule(again, packet.clone());
                }
                self.schedule(at, packet);
                SendOutcome::InFlight
            }
        }
    }

    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _))| *at)
    }

    /// Delivers everything due at `now`; returns what was delivered, in order, and the
    /// wakers to call once the caller has let go of the network.
    pub(crate) fn deliver_due(&mut self, now: Instant) -> (Vec<(u64, Packet)>, Vec<Waker>) {
        let mut done = Vec::new();
        let mut wakers = Vec::new();
        while let Some(&Reverse((at, seq))) = self.in_flight.peek() {
            if at > now {
                break;
            }
            self.in_flight.pop();
            let Some(packet) = self.packets.remove(&seq) else {
                continue;
            };
            // A partition that started while the message was in flight drops it too.
            if self.cut.contains(&(packet.from, packet.to)) {
                self.stats.partitioned += 1;
                continue;
            }
            if self.down.contains(&packet.to) {
                self.stats.to_crashed += 1;
                continue;
            }
            if self.holds.contains(&(packet.from, packet.to)) {
                self.held.push((seq, packet));
                continue;
            }
            wakers.extend(self.put(packet.clone()));
            done.push((seq, packet));
        }
        (done, wakers)
    }

    /// Puts a packet in its receiver's inbox; returns the receiver's waker.
    fn put(&mut self, packet: Packet) -> Option<Waker> {
        self.stats.delivered += 1;
        let inbox = self.inboxes.entry(packet.to).or_default();
        inbox.queue.push_back(packet);
        inbox.waker.take()
    }

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
            Some(self.put(packet))
        } else {
            self.stats.dropped_by_test += 1;
            Some(None)
        }
    }

    /// Delivers a copy of a held message now, keeping the original held.
    pub(crate) fn duplicate_held(&mut self, seq: u64) -> Option<Waker> {
        let packet = self.held.iter().find(|(s, _)| *s == seq)?.1.clone();
        self.stats.duplicated += 1;
        self.put(packet)
    }

    /// Ends a hold: its messages are delivered now, in the order they arrived.
    pub(crate) fn release(&mut self, from: NodeId, to: NodeId) -> Vec<Waker> {
        self.holds.remove(&(from, to));
        let (go, stay): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(_, p)| p.from == from && p.to == to);
        self.held = stay;
        go.into_iter().filter_map(|(_, p)| self.put(p)).collect()
    }

    pub(crate) fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    /// Marks a node crashed (its inbox is lost) or back up.
    pub(crate) fn set_down(&mut self, node: NodeId, down: bool) {
        if down {
            self.down.insert(node);
            if let Some(inbox) = self.inboxes.remove(&node) {
                self.stats.to_crashed += inbox.queue.len() as u64;
            }
        } else {
            self.down.remove(&node);
        }
    }

    pub(crate) fn heal_all(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn heal(&mut self, from: NodeId, to: NodeId) {
        self.cut.remove(&(from, to));
    }
}

/// What happened to a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// On its way.
    InFlight,
    /// Lost by the loss model (datagrams only).
    Lost,
    /// Dropped: the pair is partitioned.
    Partitioned,
}

/// A node's handle on the simulated network; give it to the node's tasks.
#[derive(Debug, Clone)]
pub struct SimSocket {
    pub(crate) node: NodeId,
    pub(crate) net: Rc<RefCell<Net>>,
    pub(crate) clock: crate::time::Clock,
}

impl SimSocket {
    /// This socket's node.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Sends `data` to `to`. The outcome is known at once to the simulator (and
    /// recorded), but a real network would not tell the sender: protocols must not
    /// rely on it.
    pub fn send(&self, to: NodeId, delivery: Delivery, data: Vec<u8>) -> SendOutcome {
        let now = self.clock.now();
        self.net.borrow_mut().send(
            now,
            Packet {
                from: self.node,
                to,
                delivery,
                data,
            },
        )
    }

    /// Waits for the next message to this node.
    pub async fn recv(&self) -> Packet {
        poll_fn(|cx| {
            let mut net = self.net.borrow_mut();
            let inbox = net.inboxes.entry(self.node).or_default();
            match inbox.queue.pop_front() {
                Some(p) => Poll::Ready(p),
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}
