//! The sans-IO router: everything a node decides, fed `(input, now)`.
//!
//! A [`Router`] owns the wire [`Session`], the directory (which peer hosts which
//! component, which peers are down or unreachable), this node's outstanding asks (one
//! map, keyed by the session's message id, holding the caller's slot; the deadline is
//! the session's), the calls waiting for a component name, the inbound backlogs of
//! full mailboxes, and the stream tables. It never reads a clock, touches a socket,
//! spawns a task or calls into a component. Its driver (`node/driver.rs`) feeds it:
//!
//! 1. inputs: commands from references ([`Router::tell`], [`Router::ask`],
//!    [`Router::open_stream`], ...), frames and connection events from the transport
//!    ([`Router::handle_frame`], [`Router::handle_peer_lost`], [`Router::handle_peer_up`]),
//!    membership ([`Router::peer_up`], [`Router::peer_down`]) and the clock
//!    ([`Router::handle_timeout`]);
//! 2. outputs, drained after every input: [`Router::poll_transmit`] (frames to send, in
//!    order), [`Router::poll_event`] (deliveries to local components and completions
//!    of this node's calls), and [`Router::poll_timeout`] (when to call
//!    `handle_timeout` next: the earliest ask deadline, waiting-call expiry or
//!    directory retry).
//!
//! What the router needs to know of the world it is given as input: the time, and
//! through [`Reach`] whether the transport has a connection to a peer now.
//!
//! The handles it stores for its driver (an ask's reply slot, a stream's buffer, a
//! producer, an exported component) are type parameters ([`Slots`]), so the same
//! router runs under the real driver and under the fuzzer with plain values.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use tern_proto::control::{DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE};
use tern_proto::session::{Event as WireEvent, Failure, Nanos, Reply, Request, Session, Transmit};
use tern_proto::v1::ErrorCode;

use super::config::NodeConfig;
use super::error::CallError;
use crate::flow::{DEFAULT_NETWORK, FlowControl, Place};
use crate::ops::admission::{CallerGate, IngressGate};
use crate::ops::{AdmissionCounts, BreakerState, LimitChange, LimitSet, OpsError, classify};

mod admission;
mod budget;
mod calls;
mod directory;
mod flow;
mod stats;
mod streams;

pub(crate) use admission::Held;
pub use budget::InboundRefusals;
pub(crate) use budget::charge_of;
pub(crate) use calls::Pending;
pub use stats::{NodeStats, TellRefusals};

/// The handles a router stores for its driver.
pub(crate) trait Slots {
    /// Where one of this node's asks ends.
    type Ask: AskSlot;
    /// The caller's buffer of a stream this node asked for.
    type Stream: StreamSlot;
    /// The producer of a stream this node serves.
    type Source: Clone;
    /// An exported local component.
    type Export: ExportSlot + Clone;
}

/// What the router needs of an ask's slot.
pub(crate) trait AskSlot {
    /// The ask left with session id `id`, to `peer`.
    fn sent(&self, id: u64);
    /// The caller gave up: a waiting request is not sent.
    fn is_abandoned(&self) -> bool;
}

/// What the router needs of a stream's buffer.
pub(crate) trait StreamSlot: Clone {
    /// The stream request left with session id `id`.
    fn opened(&self, id: u64);
    /// The caller dropped the stream: a waiting request is not sent.
    fn is_abandoned(&self) -> bool;
}

/// What the router needs of an exported component.
pub(crate) trait ExportSlot {
    /// Whether the component stopped for good.
    fn is_stopped(&self) -> bool;
}

/// Whether the transport has a connection to a peer now (an input, like the time).
pub(crate) trait Reach {
    /// Whether a frame for `peer` can be queued now.
    fn connected(&self, peer: &str) -> bool;
}

/// What the router's driver must act on.
pub(crate) enum Event<K: Slots> {
    /// A tell or plain ask for a local component: queue it in its mailbox, or give it
    /// back with [`Router::hold`] if the mailbox is full.
    Deliver(Request),
    /// An ask for a streamed reply for a local component.
    DeliverStream(Request),
    /// One of this node's asks ended.
    Completed {
        slot: K::Ask,
        outcome: Result<Reply, CallError>,
    },
    /// An item of a stream this node asked for.
    StreamItem { stream: K::Stream, item: Reply },
    /// The end of a stream this node asked for.
    StreamEnd {
        stream: K::Stream,
        result: Result<(), CallError>,
    },
    /// The caller of a stream this node produces granted `n` more items.
    Credit { source: K::Source, n: u32 },
    /// The caller of a stream this node produces is gone: stop the producer.
    Cancel { source: K::Source },
    /// The exported names changed (publish them to membership).
    ExportsChanged,
}

/// Nanoseconds in `d`, saturating.
pub(crate) fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The sans-IO core of a node; see the [module docs](self).
pub(crate) struct Router<K: Slots> {
    config: NodeConfig,
    session: Session,
    exports: BTreeMap<String, K::Export>,
    version: u64,
    peers: BTreeMap<String, directory::PeerView>,
    /// Component name -> nodes that host it.
    hosts: BTreeMap<String, BTreeSet<Rc<str>>>,
    /// This node's asks on the wire, by session id: the one place an outstanding ask
    /// lives (its deadline is the session's).
    asks: calls::Asks<K::Ask>,
    /// Calls waiting for a component name or a connection, in call order.
    pending: VecDeque<Pending<K>>,
    next_pick: u64,
    stats: NodeStats,
    /// Nodes membership saw die or leave: calls pinned to them fail at once.
    down: BTreeSet<String>,
    /// Components whose every host died or left (component -> the last host).
    gone: BTreeMap<String, String>,
    /// Every component name this node exported or a peer announced: a call that finds
    /// no host for one of these fails [`CallError::NotHosted`], for any other name
    /// [`CallError::UnknownName`].
    heard: BTreeSet<String>,
    /// Exports withdrawn by [`Router::shutdown`]: no longer announced or reachable from
    /// other nodes, still called by local references while the container drains.
    retired: BTreeMap<String, K::Export>,
    /// Peers whose connection the transport reported lost, and when.
    links_down: BTreeMap<String, Nanos>,
    /// Requests waiting for room in a full mailbox, per component, in arrival order.
    backlogs: BTreeMap<String, VecDeque<Held>>,
    /// Bytes held in `backlogs`.
    held_bytes: usize,
    /// Bytes of inbound requests charged, per peer and in all.
    budget: budget::Budget,
    /// Flood control of refusal lines, per peer.
    log_gate: budget::LogGate,
    streams: streams::Tables<K>,
    events: VecDeque<Event<K>>,
    /// When to retry directories and sweep waiting calls, while there is a need.
    next_tick: Option<Nanos>,
    /// Horizons and flow rate limits (`flow.rs`).
    flow: FlowControl,
    /// The shaping queue of `local` overflow, by (when it goes, arrival order).
    shaped: BTreeMap<(Nanos, u64), flow::Shaped<K>>,
    shaped_seq: u64,
    /// The caller's admission chain: breakers, ejection, the limits.
    gate: CallerGate,
    /// The receiver's adaptive limit on inbound asks.
    ingress: IngressGate,
}

impl<K: Slots> Router<K> {
    /// A router for the node `config` names (checked by the caller).
    pub(crate) fn new(config: NodeConfig) -> Self {
        let mut session = Session::with_limits(config.name.clone(), config.limits);
        session.set_generation(config.generation);
        let flow = FlowControl::new(Place::new(DEFAULT_NETWORK, config.name.clone()));
        // Each node's breakers draw their own jitter: the configured seed, the name
        // and the generation.
        let seed = config.name.bytes().fold(
            config.seed.unwrap_or(0) ^ config.generation.rotate_left(32),
            |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3),
        );
        let gate = CallerGate::new(config.breaker, config.ejection, seed);
        let ingress = IngressGate::new(config.ingress);
        let peers = config
            .peers
            .iter()
            .map(|p| (p.clone(), directory::PeerView::default()))
            .collect();
        Self {
            config,
            session,
            exports: BTreeMap::new(),
            version: 1,
            peers,
            hosts: BTreeMap::new(),
            asks: calls::Asks::default(),
            pending: VecDeque::new(),
            next_pick: 0,
            stats: NodeStats::default(),
            down: BTreeSet::new(),
            gone: BTreeMap::new(),
            heard: BTreeSet::new(),
            retired: BTreeMap::new(),
            links_down: BTreeMap::new(),
            backlogs: BTreeMap::new(),
            held_bytes: 0,
            budget: budget::Budget::default(),
            log_gate: budget::LogGate::default(),
            streams: streams::Tables::default(),
            events: VecDeque::new(),
            next_tick: None,
            flow,
            shaped: BTreeMap::new(),
            shaped_seq: 0,
            gate,
            ingress,
        }
    }

    /// Keys the permutation that makes this node's message ids (before any message).
    pub(crate) fn set_id_key(&mut self, key: [u8; 16]) {
        self.session.set_id_key(key);
    }

    /// The limits now.
    pub(crate) fn limits(&self) -> &LimitSet {
        self.gate.limits()
    }

    /// Applies a change set to the limits (see [`LimitSet::apply`]); the ingress cap
    /// follows at once.
    pub(crate) fn set_limits(
        &mut self,
        changes: &[LimitChange],
        expected: Option<u64>,
    ) -> Result<u64, OpsError> {
        let version = self.gate.limits_mut().apply(changes, expected)?;
        let cap = self.gate.limits().ingress_max();
        self.ingress.set_cap(cap);
        Ok(version)
    }

    /// The breaker state for calls to `component` at `now`.
    pub(crate) fn breaker_state(&self, now: Nanos, component: &str) -> BreakerState {
        self.gate.breaker_state(now, component)
    }

    /// The adaptive ingress limit now, if enabled.
    pub(crate) fn ingress_limit(&self) -> Option<u32> {
        let l = self.ingress.limit();
        l.is_enabled().then(|| l.limit())
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// This node's name.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Counters, with the gauges filled in.
    pub(crate) fn stats(&self) -> NodeStats {
        NodeStats {
            pending: self.pending.iter().filter(|p| !p.is_abandoned()).count(),
            streams_open: self.session.streams_outstanding(),
            streams_producing: self.session.streams_producing(),
            session: self.session.stats(),
            held_bytes: self.held_bytes,
            flow: self.flow.stats(),
            inbound_bytes: self.budget.total(),
            admission: AdmissionCounts {
                ingress_shed: self.ingress.limit().counts().shed,
                ..self.gate.counts()
            },
            ..self.stats
        }
    }

    /// The counters, for the driver to count what it did.
    pub(crate) fn stats_mut(&mut self) -> &mut NodeStats {
        &mut self.stats
    }

    /// Outstanding asks on the wire (each ends by its deadline).
    pub(crate) fn asks_outstanding(&self) -> usize {
        self.asks.len()
    }

    /// Calls waiting for a name or a connection (abandoned ones included until
    /// swept; never more than [`NodeConfig::pending_limit`]).
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held in inbound backlogs.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    // ----- outputs -----

    /// The next frame to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.session.poll_transmit()
    }

    /// The next thing the driver must act on.
    pub(crate) fn poll_event(&mut self) -> Option<Event<K>> {
        self.events.pop_front()
    }

    /// When to call [`Router::handle_timeout`] next.
    pub(crate) fn poll_timeout(&self) -> Option<Nanos> {
        let waiting = self
            .pending
            .iter()
            .filter(|p| !p.is_abandoned())
            .map(|p| p.expires)
            .min();
        [
            self.session.poll_timeout(),
            waiting,
            self.next_tick,
            self.next_shaped(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- inputs -----

    /// A frame pair from `peer`.
    pub(crate) fn handle_frame<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        peer: &str,
        envelope: &[u8],
        payload: Vec<u8>,
    ) {
        // A frame proves a live connection.
        if self.links_down.remove(peer).is_some() {
            tracing::debug!(node = %self.name(), peer, "connection back (a frame arrived)");
        }
        self.session.handle_frame(now, peer, envelope, payload);
        self.absorb(now, reach);
    }

    /// The transport lost its connection to `peer`: its asks fail at once, and new
    /// calls to it fail [`CallError::Unreachable`] until it is back.
    pub(crate) fn handle_peer_lost<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        peer: &str,
    ) {
        tracing::debug!(node = %self.name(), peer, "connection lost");
        self.session.peer_lost(peer);
        self.forget(peer);
        self.stats.links_lost += 1;
        self.links_down.insert(peer.to_owned(), now);
        self.want_tick(now);
        self.absorb(now, reach);
    }

    /// The transport has a connection to `peer` (again).
    pub(crate) fn handle_peer_up<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R, peer: &str) {
        tracing::debug!(node = %self.name(), peer, "connection back");
        self.links_down.remove(peer);
        // A (re)connected peer hears this node's directory now, not at the next
        // tick: sends before the connection was up were refused.
        let unknown = self
            .peers
            .get(peer)
            .filter(|v| !v.gossip)
            .map(|v| v.known.is_none());
        if let Some(unknown) = unknown.filter(|_| self.config.static_directories) {
            self.send_directory(now, peer, unknown);
        }
        // Calls that waited for this connection go now.
        self.retry_pending(now, reach);
        self.absorb(now, reach);
    }

    /// The clock reached `now`: asks past their deadline fail, waiting calls past
    /// their wait expire, silent peers are asked for their directory again, and
    /// stopped components are withdrawn.
    pub(crate) fn handle_timeout<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        self.withdraw_stopped(now, reach);
        self.session.handle_timeout(now);
        self.expire_pending(now);
        // FLOW HOOK 2: the shaping queue.
        self.release_shaped(now);
        if self.next_tick.is_some_and(|t| t <= now) {
            self.next_tick = None;
            self.tick(now, reach);
        }
        self.absorb(now, reach);
    }

    /// Stops: every export withdrawn (peers told), every waiting and outstanding call
    /// ends with [`CallError::Stopped`], every held request is refused, every stream
    /// ends.
    pub(crate) fn shutdown<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        self.retired = std::mem::take(&mut self.exports);
        self.version += 1;
        self.announce_all(now, reach);
        for p in std::mem::take(&mut self.pending) {
            self.end_waiting(p.call, CallError::Stopped);
        }
        let asks: Vec<_> = self.asks.drain().collect();
        for (id, sent) in asks {
            self.gate.ask_ended(&sent.component);
            self.session.cancel(id);
            self.events.push_back(Event::Completed {
                slot: sent.slot,
                outcome: Err(CallError::Stopped),
            });
        }
        self.shutdown_streams(now);
        self.shutdown_backlogs(now);
        self.shutdown_shaped();
        self.next_tick = None;
    }

    fn want_tick(&mut self, now: Nanos) {
        if self.next_tick.is_none() {
            self.next_tick = Some(now.saturating_add(nanos(self.config.announce_interval)));
        }
    }

    /// Handles every session event: control here, the rest as router events.
    fn absorb<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        while let Some(event) = self.session.poll_event() {
            match event {
                WireEvent::Request(req) => self.on_request(now, reach, req),
                WireEvent::Reply { id, result } => self.on_reply(now, id, result),
                other => self.on_stream_event(other),
            }
        }
        if self.needs_tick() {
            self.want_tick(now);
        }
    }

    fn on_request<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R, req: Request) {
        if req.component == DIRECTORY_COMPONENT {
            if req.expects_reply || req.content_type != PROTOBUF_CONTENT_TYPE {
                let error = CallError::Remote {
                    code: ErrorCode::UnknownMessageType,
                    detail: format!(
                        "{DIRECTORY_COMPONENT} takes only tells of {DIRECTORY_MESSAGE_TYPE} in {PROTOBUF_CONTENT_TYPE}"
                    ),
                };
                self.refuse(now, &req, &error);
            } else {
                self.on_directory(now, reach, &req);
            }
            return;
        }
        // FLOW HOOK 3: the receiver checks the horizon again.
        if !self.check_inbound_horizon(now, &req) {
            return;
        }
        match self.exports.get(&req.component) {
            None => {
                let error = CallError::NotHosted {
                    name: req.component.clone(),
                };
                self.refuse(now, &req, &error);
            }
            Some(e) if e.is_stopped() => {
                self.withdraw_stopped(now, reach);
                self.refuse(now, &req, &CallError::Stopped);
            }
            Some(_) if req.credit > 0 => self.events.push_back(Event::DeliverStream(req)),
            Some(_) => {
                if !self.admit(now, &req) {
                    return;
                }
                let expiry = req
                    .deadline
                    .unwrap_or_else(|| now.saturating_add(nanos(self.config.default_timeout)));
                if let Err(retry_after) = self.ingress.admit(now, &req, expiry) {
                    // A capacity signal for the caller (never a breaker failure).
                    let error = CallError::Remote {
                        code: ErrorCode::MailboxFull,
                        detail: format!(
                            "ingress limit reached; retry after {} ms",
                            retry_after.as_millis()
                        ),
                    };
                    self.refuse(now, &req, &error);
                    return;
                }
                if self.backlogs.contains_key(&req.component) {
                    // Behind what already waits for this component, in order.
                    self.hold(now, req);
                } else {
                    self.events.push_back(Event::Deliver(req));
                }
            }
        }
    }

    fn on_reply(&mut self, now: Nanos, id: u64, result: Result<Reply, Failure>) {
        let Some(sent) = self.asks.remove(id) else {
            return;
        };
        let outcome = result.map_err(|f| match f {
            Failure::Remote { code, detail } => CallError::from_wire(code, detail, &sent.component),
            Failure::Timeout => CallError::Timeout,
            Failure::PeerLost => CallError::PeerLost(sent.peer.to_string()),
        });
        match &outcome {
            Err(CallError::Timeout) => self.stats.asks_timed_out += 1,
            Err(CallError::PeerLost(_)) => self.stats.asks_lost += 1,
            _ => {}
        }
        self.ask_over(now, &sent, classify(&outcome));
        self.events.push_back(Event::Completed {
            slot: sent.slot,
            outcome,
        });
    }
}

#[cfg(test)]
mod tests;
