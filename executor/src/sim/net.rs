//! The simulated network. Every random choice it makes comes from the world's `net` seed
//! stream.
//!
//! - **Latency** per message is `min + Exp(tail_mean)`, capped at `max_latency`, from
//!   the global [`NetConfig`] or a per-link (directional) [`LinkConfig`]
//!   (design/simulation.md N1).
//! - **Datagrams** (UDP-like) may be lost, duplicated and reordered; one larger than
//!   [`NetConfig::mtu`] is dropped at send, and one arriving at an inbox already
//!   holding [`NetConfig::inbox_capacity`] packets is dropped (N2).
//! - **Streams** (ZeroMQ/TCP-like) form one connection per unordered pair of nodes:
//!   FIFO and without duplicates in each direction. A crash of either end or a new
//!   partition between the pair *resets* the connection: its frames in flight are
//!   lost, and each live end that had used it gets a [`SocketEvent::Reset`] after
//!   [`NetConfig::reset_detect`]. The next frame opens a new connection (N3). When
//!   the peer can be reached again (it restarted, or the partition healed), each end
//!   that got the reset, or asked with [`SimSocket::watch`](super::SimSocket::watch), gets a
//!   [`SocketEvent::Up`] after [`NetConfig::reconnect_ivl`], as a ZeroMQ `DEALER`'s
//!   reconnection completes.
//! - **Partitions**, **holds** (a test delivers, drops or duplicates messages by hand)
//!   and crashed receivers drop or stop messages as the world says (N4, N6).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::task::Waker;
use std::time::Duration;

use super::SimRng;
use super::TraceKind;
use super::timeline::{DropReason, Timeline, TimelineKind};
use super::world::NodeId;
use crate::time::Instant;

mod config;
mod faults;

pub use config::{LinkConfig, NetConfig};

/// Whether a message is a datagram (may be lost, duplicated, reordered) or a frame of
/// the stream connection between two nodes (FIFO per direction, lost only to resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivery {
    /// UDP-like.
    Datagram,
    /// Connection-like: in order per (sender, receiver) until the connection resets.
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
    /// Messages dropped by a partition (at send, or datagrams on arrival).
    pub partitioned: u64,
    /// Datagrams duplicated.
    pub duplicated: u64,
    /// Messages lost because their receiver was crashed (in flight or queued).
    pub to_crashed: u64,
    /// Held messages a test chose to drop.
    pub dropped_by_test: u64,
    /// Datagrams dropped at send for exceeding [`NetConfig::mtu`].
    pub too_large: u64,
    /// Datagrams dropped on arrival at a full inbox ([`NetConfig::inbox_capacity`]).
    pub overflow: u64,
    /// Stream frames in flight (or held) lost to a connection reset.
    pub reset_lost: u64,
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

/// What a node's socket receives, in arrival order; see [`SimSocket::recv_event`](super::SimSocket::recv_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketEvent {
    /// A message.
    Packet(Packet),
    /// The stream connection with this peer was reset (the peer crashed, or a partition
    /// cut the pair): frames in flight on it were lost, and the next frame sent opens a
    /// new connection.
    Reset(NodeId),
    /// A stream connection with this peer can be established again (the peer
    /// restarted, or the partition healed), after a [`SocketEvent::Reset`] for it or a
    /// [`SimSocket::watch`](super::SimSocket::watch) of it. A restarted peer is a new incarnation: it has none
    /// of the frames the old one had taken.
    Up(NodeId),
}

#[derive(Debug, Default)]
pub(super) struct Inbox {
    pub(super) queue: VecDeque<SocketEvent>,
    /// How many of `queue` are packets (the rest are reset notices).
    pub(super) packets: usize,
    pub(super) waker: Option<Waker>,
    /// Set once a task reads datagrams on their own ([`SimSocket::recv_datagram`](super::SimSocket::recv_datagram)):
    /// datagrams then queue in `datagrams`, apart from stream frames, the way a UDP
    /// socket and a TCP connection are separate sockets on one host.
    pub(super) split: bool,
    pub(super) datagrams: VecDeque<Packet>,
    pub(super) datagram_waker: Option<Waker>,
}

impl Inbox {
    pub(super) fn pop(&mut self) -> Option<SocketEvent> {
        let event = self.queue.pop_front()?;
        if matches!(event, SocketEvent::Packet(_)) {
            self.packets -= 1;
        }
        Some(event)
    }
}

/// Something on its way: a message, or a reset notice waiting out its detection time.
#[derive(Debug)]
enum Flight {
    Packet(Packet),
    Reset { node: NodeId, peer: NodeId },
    Up { node: NodeId, peer: NodeId },
}

/// The unordered pair of a stream connection.
fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) config: NetConfig,
    rng: SimRng,
    seq: u64,
    in_flight: BinaryHeap<Reverse<(Instant, u64)>>,
    flights: BTreeMap<u64, Flight>,
    /// Per-link latency overrides (from, to).
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// Latest delivery time per (from, to) stream, to keep streams in order.
    stream_tail: BTreeMap<(NodeId, NodeId), Instant>,
    /// Stream frames per (sender, receiver) sent and not yet taken by the receiver
    /// (in flight, held, or in its inbox): a connection's queue, for high-water marks.
    pub(super) backlog: BTreeMap<(NodeId, NodeId), usize>,
    /// Unordered pairs with an open stream connection (stream traffic since the last
    /// reset).
    connected: BTreeSet<(NodeId, NodeId)>,
    /// Directed pairs that cannot talk: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Crashed nodes: nothing reaches them.
    down: BTreeSet<NodeId>,
    /// Held links (from, to): arriving messages wait in `held` until released.
    holds: BTreeSet<(NodeId, NodeId)>,
    held: Vec<(u64, Packet)>,
    pub(super) inboxes: BTreeMap<NodeId, Inbox>,
    /// (node, peer): `node` lost its connection with `peer` (or watches it) and gets a
    /// [`SocketEvent::Up`] once `peer` can be reached again.
    waiting: BTreeSet<(NodeId, NodeId)>,
    /// (node, peer): the last connection notice `node` got about `peer`, as it stands
    /// the moment it arrives, read or not (`true`: up again, `false`: reset), as a
    /// ZeroMQ monitor updates a transport's state apart from what its reader takes.
    pub(super) views: BTreeMap<(NodeId, NodeId), bool>,
    pub(crate) stats: NetStats,
    /// The timeline, when kept ([`super::World::keep_timeline`]).
    pub(super) timeline: Option<Timeline>,
}

impl Net {
    pub(crate) fn new(rng: SimRng) -> Self {
        Self {
            config: NetConfig::default(),
            rng,
            seq: 0,
            in_flight: BinaryHeap::new(),
            flights: BTreeMap::new(),
            links: BTreeMap::new(),
            stream_tail: BTreeMap::new(),
            backlog: BTreeMap::new(),
            connected: BTreeSet::new(),
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            holds: BTreeSet::new(),
            held: Vec::new(),
            inboxes: BTreeMap::new(),
            waiting: BTreeSet::new(),
            views: BTreeMap::new(),
            stats: NetStats::default(),
            timeline: None,
        }
    }

    fn latency(&mut self, from: NodeId, to: NodeId) -> Duration {
        let link = self
            .links
            .get(&(from, to))
            .copied()
            .unwrap_or_else(|| self.config.into());
        link.draw(&mut self.rng)
    }

    pub(crate) fn set_link(&mut self, from: NodeId, to: NodeId, link: Option<LinkConfig>) {
        match link {
            Some(link) => self.links.insert((from, to), link),
            None => self.links.remove(&(from, to)),
        };
    }

    fn schedule(&mut self, at: Instant, flight: Flight) -> u64 {
        self.seq += 1;
        self.in_flight.push(Reverse((at, self.seq)));
        self.flights.insert(self.seq, flight);
        self.seq
    }

    /// Appends to the timeline, if kept.
    pub(super) fn note(&mut self, at: Instant, node: NodeId, kind: TimelineKind) {
        if let Some(t) = &mut self.timeline {
            t.push(at, node, kind);
        }
    }

    /// Schedules a packet's delivery and notes its send.
    fn schedule_packet(&mut self, now: Instant, at: Instant, packet: Packet) {
        let (from, to) = (packet.from, packet.to);
        let (stream, bytes) = (packet.delivery == Delivery::Stream, packet.data.len());
        let seq = self.schedule(at, Flight::Packet(packet));
        let kind = TimelineKind::Send {
            to,
            seq,
            stream,
            bytes,
        };
        self.note(now, from, kind);
    }

    /// Notes a message dropped at send (`seq` 0, on the sender) or on arrival (on the
    /// receiver).
    fn note_drop(&mut self, now: Instant, p: &Packet, seq: u64, reason: DropReason) {
        let (node, peer) = if seq == 0 {
            (p.from, p.to)
        } else {
            (p.to, p.from)
        };
        self.note(now, node, TimelineKind::Drop { peer, seq, reason });
    }

    pub(crate) fn send(&mut self, now: Instant, packet: Packet) -> SendOutcome {
        self.stats.sent += 1;
        if packet.delivery == Delivery::Datagram && packet.data.len() > self.config.mtu {
            self.stats.too_large += 1;
            self.note_drop(now, &packet, 0, DropReason::TooLarge);
            return SendOutcome::TooLarge;
        }
        if self.cut.contains(&(packet.from, packet.to)) {
            self.stats.partitioned += 1;
            self.note_drop(now, &packet, 0, DropReason::Partitioned);
            return SendOutcome::Partitioned;
        }
        match packet.delivery {
            Delivery::Stream => {
                if self.down.contains(&packet.to) {
                    // No connection to a crashed node can open: the frame goes nowhere,
                    // which the sender cannot tell yet.
                    self.stats.to_crashed += 1;
                    self.note_drop(now, &packet, 0, DropReason::Crashed);
                    return SendOutcome::InFlight;
                }
                let at = now + self.latency(packet.from, packet.to);
                let key = (packet.from, packet.to);
                let at = self.stream_tail.get(&key).map_or(at, |&tail| at.max(tail));
                self.stream_tail.insert(key, at);
                self.connected.insert(pair(packet.from, packet.to));
                *self.backlog.entry(key).or_default() += 1;
                self.schedule_packet(now, at, packet);
                SendOutcome::InFlight
            }
            Delivery::Datagram => {
                let at = now + self.latency(packet.from, packet.to);
                if self.rng.chance(u64::from(self.config.loss_ppm), 1_000_000) {
                    self.stats.lost += 1;
                    self.note_drop(now, &packet, 0, DropReason::Lost);
                    return SendOutcome::Lost;
                }
                if self
                    .rng
                    .chance(u64::from(self.config.duplicate_ppm), 1_000_000)
                {
                    self.stats.duplicated += 1;
                    let again = now + self.latency(packet.from, packet.to);
                    self.schedule_packet(now, again, packet.clone());
                }
                self.schedule_packet(now, at, packet);
                SendOutcome::InFlight
            }
        }
    }

    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse((at, _))| *at)
    }

    /// Delivers everything due at `now`. Appends to `events` what arrived, in order, as
    /// trace records (kind, node, detail), and to `wakers` the wakers to call once the
    /// caller has let go of the network.
    pub(crate) fn deliver_due(
        &mut self,
        now: Instant,
        events: &mut Vec<(TraceKind, NodeId, u64)>,
        wakers: &mut Vec<Waker>,
    ) {
        while let Some(&Reverse((at, seq))) = self.in_flight.peek() {
            if at > now {
                break;
            }
            self.in_flight.pop();
            let Some(flight) = self.flights.remove(&seq) else {
                continue;
            };
            let packet = match flight {
                Flight::Packet(p) => p,
                Flight::Reset { node, peer } => {
                    if !self.down.contains(&node) {
                        let inbox = self.inboxes.entry(node).or_default();
                        inbox.queue.push_back(SocketEvent::Reset(peer));
                        wakers.extend(inbox.waker.take());
                        events.push((TraceKind::Reset, node, peer.0 as u64));
                        self.note(now, node, TimelineKind::Reset { peer });
                        self.views.insert((node, peer), false);
                    }
                    continue;
                }
                Flight::Up { node, peer } => {
                    if !self.down.contains(&node) {
                        let inbox = self.inboxes.entry(node).or_default();
                        inbox.queue.push_back(SocketEvent::Up(peer));
                        wakers.extend(inbox.waker.take());
                        events.push((TraceKind::Up, node, peer.0 as u64));
                        self.note(now, node, TimelineKind::Up { peer });
                        self.views.insert((node, peer), true);
                    }
                    continue;
                }
            };
            // A partition that started while the datagram was in flight drops it too.
            if self.cut.contains(&(packet.from, packet.to)) {
                self.stats.partitioned += 1;
                self.note_drop(now, &packet, seq, DropReason::Partitioned);
                continue;
            }
            if self.down.contains(&packet.to) {
                self.stats.to_crashed += 1;
                self.note_drop(now, &packet, seq, DropReason::Crashed);
                continue;
            }
            if self.holds.contains(&(packet.from, packet.to)) {
                self.held.push((seq, packet));
                continue;
            }
            let (from, to) = (packet.from, packet.to);
            if let Some(arrived) = self.put(packet) {
                wakers.extend(arrived);
                events.push((TraceKind::Deliver, to, seq));
                self.note(now, to, TimelineKind::Deliver { from, seq });
            } else {
                let reason = DropReason::Overflow;
                self.note(
                    now,
                    to,
                    TimelineKind::Drop {
                        peer: from,
                        seq,
                        reason,
                    },
                );
            }
        }
    }

    /// Puts a packet in its receiver's inbox: `None` if the inbox overflowed (the
    /// datagram is dropped), otherwise the receiver's waker, if any.
    fn put(&mut self, packet: Packet) -> Option<Option<Waker>> {
        let capacity = self.config.inbox_capacity;
        let inbox = self.inboxes.entry(packet.to).or_default();
        if inbox.split && packet.delivery == Delivery::Datagram {
            if inbox.datagrams.len() >= capacity {
                self.stats.overflow += 1;
                return None;
            }
            self.stats.delivered += 1;
            inbox.datagrams.push_back(packet);
            return Some(inbox.datagram_waker.take());
        }
        if packet.delivery == Delivery::Datagram && inbox.packets >= capacity {
            self.stats.overflow += 1;
            return None;
        }
        self.stats.delivered += 1;
        inbox.queue.push_back(SocketEvent::Packet(packet));
        inbox.packets += 1;
        Some(inbox.waker.take())
    }
}

/// What happened to a sent message.
///
/// Non-exhaustive: match it with a wildcard arm, as faults are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// On its way.
    InFlight,
    /// Lost by the loss model (datagrams only).
    Lost,
    /// Dropped: the pair is partitioned.
    Partitioned,
    /// Dropped: a datagram larger than [`NetConfig::mtu`].
    TooLarge,
}
