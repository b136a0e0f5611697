//! The node: binds the wire session, a transport and this container's components.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use tern_executor::JoinHandle;
use tern_executor::time;
use tern_proto::control::{
    DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE, decode_directory,
    encode_directory,
};
use tern_proto::session::{
    Event, Failure, Nanos, Outgoing, Reply, Request, Session, SessionStats, Transmit,
};
use tern_proto::v1::{Directory, ErrorCode};
use tern_transport::{Incoming, Transport, TransportError};

use super::config::{NodeConfig, NodeError, check_component_name};
use super::error::CallError;
use super::export::{Encoded, Export, ExportBuilder, Exported};
use super::reference::Ref;
use super::slot::CallSlot;
use crate::actor::Actor;
use crate::addr::Addr;
use crate::env::Environment;

mod admission;
mod streams;

/// Counters of what a node sent, received, refused and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Tells to other nodes accepted: handed to the transport (or to the wire session,
    /// for tells that waited for their component name; a transport refusal there is
    /// counted in `send_failures`). Tells waiting for a name are in `pending`.
    pub tells_sent: u64,
    /// Tells to other nodes refused at once, by reason (the caller got the message
    /// back in [`Undelivered`](super::Undelivered)).
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
    /// backlog (only that component's requests wait; see [`Node`]).
    pub held: u64,
    /// Bytes of inbound requests waiting in backlogs now
    /// (bounded by [`NodeConfig::held_bytes_limit`]).
    pub held_bytes: usize,
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
    /// Streams this node asked for that are still open.
    pub streams_open: usize,
    /// Streams this node produces for callers that are still open.
    pub streams_producing: usize,
    /// Streams this node produced that reached their deadline (stopped; nothing more
    /// sent, as the wire protocol says).
    pub streams_expired: u64,
    /// The wire session's own counters.
    pub session: SessionStats,
}

/// Tells refused at once, by reason; see [`NodeStats::tells_refused`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TellRefusals {
    /// The destination node is gone ([`CallError::PeerLost`]).
    pub peer_lost: u64,
    /// No connection to the destination ([`CallError::Unreachable`]).
    pub unreachable: u64,
    /// The transport's queue to the destination is full ([`CallError::Backpressure`]).
    pub backpressure: u64,
    /// Too many messages already wait for unknown names ([`CallError::PendingFull`]).
    pub pending_full: u64,
    /// Anything else (too large, ...).
    pub other: u64,
}

impl TellRefusals {
    fn count(&mut self, e: &CallError) {
        let n = match e {
            CallError::PeerLost(_) => &mut self.peer_lost,
            CallError::Unreachable(_) => &mut self.unreachable,
            CallError::Backpressure(_) => &mut self.backpressure,
            CallError::PendingFull => &mut self.pending_full,
            _ => &mut self.other,
        };
        *n += 1;
    }

    /// All refusals.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.peer_lost + self.unreachable + self.backpressure + self.pending_full + self.other
    }
}

/// What one peer has told this node.
#[derive(Debug, Default)]
pub(super) struct PeerView {
    /// `(generation, version)` of the directory held; `None` until one arrives, and
    /// again after the connection is lost.
    pub(super) known: Option<(u64, u64)>,
    pub(super) components: Vec<String>,
    /// Learnt from membership gossip rather than configured: no directory messages.
    pub(super) gossip: bool,
}

pub(super) enum PendingCall {
    Tell,
    Ask { slot: Rc<CallSlot>, deadline: Nanos },
}

/// A message waiting for its component name.
pub(super) struct Pending {
    pub(super) component: String,
    pub(super) pin: Option<String>,
    pub(super) out: Outgoing,
    pub(super) call: PendingCall,
    pub(super) expires: Nanos,
}

impl Pending {
    fn is_abandoned(&self) -> bool {
        matches!(&self.call, PendingCall::Ask { slot, .. } if slot.is_done())
    }
}

pub(super) struct State {
    pub(super) session: Session,
    pub(super) exports: BTreeMap<String, Rc<dyn Exported>>,
    pub(super) version: u64,
    pub(super) peers: BTreeMap<String, PeerView>,
    /// Component name -> nodes that host it.
    pub(super) hosts: BTreeMap<String, BTreeSet<String>>,
    pub(super) waiters: BTreeMap<u64, Rc<CallSlot>>,
    pub(super) pending: VecDeque<Pending>,
    next_pick: u64,
    pub(super) stats: NodeStats,
    ticker: Option<Waker>,
    /// Nodes membership saw die or leave: calls pinned to them fail at once.
    pub(super) down: BTreeSet<String>,
    /// Components whose every host died or left (component -> the last host): calls
    /// fail at once until a host publishes the name again.
    pub(super) gone: BTreeMap<String, String>,
    /// Peers whose connection the transport reported lost, and when: calls to them
    /// fail [`CallError::Unreachable`] at once until the connection is back
    /// ([`Incoming::PeerUp`], a frame from the peer, a new generation) or
    /// [`NodeConfig::relink_after`] has passed.
    pub(super) links_down: BTreeMap<String, Nanos>,
    /// Requests waiting for room in a full mailbox, per component, in arrival order.
    pub(super) backlogs: BTreeMap<String, admission::Backlog>,
    /// Bytes held in `backlogs` (bounded by [`NodeConfig::held_bytes_limit`]).
    pub(super) held_bytes: usize,
    streams: streams::Tables,
}

type SendFn = Box<dyn Fn(&str, Vec<u8>, Vec<u8>) -> Result<(), TransportError>>;
type LearnFn = Box<dyn Fn(&str, &str) -> Result<(), TransportError>>;
type ForgetFn = Box<dyn Fn(&str)>;
type ExportsWatch = Box<dyn Fn(&[&str])>;

pub(super) struct Shared {
    pub(super) config: NodeConfig,
    send: SendFn,
    pub(super) learn: LearnFn,
    pub(super) forget: ForgetFn,
    /// Answers to inbound asks, completed by components, waiting to be sent.
    pub(super) answers: RefCell<VecDeque<(Request, Result<Encoded, CallError>)>>,
    /// The task that sends answers completed while the state was borrowed.
    pub(super) answers_waker: Cell<Option<Waker>>,
    /// Told the exported names after every change (see `Node::watch_exports`).
    pub(super) exports_watch: RefCell<Option<ExportsWatch>>,
    pub(super) state: RefCell<State>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
}

/// This container's presence on the network: it exports local components under names,
/// learns which peer hosts which name, and carries [`Ref`] calls over a
/// [`Transport`].
///
/// One node runs per container. [`Node::start`] spawns its two tasks (the receive loop
/// and a ticker for announcements and expiries) on the current runtime and makes it
/// available to every component through [`Node::current`].
///
/// # Guarantees
///
/// - Messages from one caller to one component arrive in the order sent, across the
///   network too: frames from a peer are queued in the destination mailbox in arrival
///   order, and messages waiting for an unknown name keep their order.
/// - A call to a component on this node never encodes anything.
/// - Every remote ask ends by its deadline, with the reply or a [`CallError`]. Every
///   inbound message that cannot be delivered is answered with an error (asks) or
///   counted in [`NodeStats::dropped`] and logged (tells).
/// - **Admission per component.** A request for a component whose mailbox is full
///   waits in that component's backlog, in arrival order, until there is room or its
///   deadline (or [`NodeConfig::default_timeout`]) passes; only that component's
///   requests wait. The receive loop never waits, so other components, replies to this
///   node's own asks, stream credits and control messages are read as they arrive.
///   Backlogs are bounded in bytes ([`NodeConfig::held_bytes_limit`]); past the bound,
///   or past its wait, an ask is refused with [`CallError::MailboxFull`] and a tell
///   dropped, counted in [`NodeStats::dropped`] and logged.
/// - **Deadlines.** An inbound ask whose deadline passed while it waited in the
///   mailbox is not handled (counted in [`NodeStats::requests_expired`]); replies go
///   back from the component's own task, with no task per ask.
/// - **Fast failure.** When the transport reports a peer's connection lost
///   ([`Incoming::PeerLost`]), that peer's outstanding asks fail with
///   [`CallError::PeerLost`] at once, and new calls to it (pinned, or to a component
///   only it hosts) fail with [`CallError::Unreachable`] at once, until the connection
///   is back ([`Incoming::PeerUp`], any frame from it, or a newer generation through
///   [`Node::peer_up`]) or [`NodeConfig::relink_after`] has passed. Unpinned calls go
///   to another host of the name meanwhile.
/// - **Generation fencing.** Requests carry the generation this node believes the
///   peer runs (from its directory or [`Node::peer_up`]); a node refuses requests
///   addressed to another of its generations (asks get [`CallError::Stopped`], tells
///   are dropped; both counted in `NodeStats::session.fenced`), so a request meant for
///   an incarnation that died is never handled by the next one.
/// - Peers come from [`NodeConfig::peers`] (directories exchanged by messages) or from
///   a membership layer through [`Node::peer_up`] and [`Node::peer_down`].
/// - Startup order does not matter: a message to a name no node has announced waits,
///   bounded in number ([`NodeConfig::pending_limit`]) and time
///   ([`NodeConfig::pending_ttl`], or the ask's deadline), and is sent as soon as a
///   peer announces the name.
///
/// # Examples
///
/// Two nodes on the simulated network; `b` exports a component, `a` asks it by name:
///
/// ```
/// use std::{collections::BTreeMap, rc::Rc};
/// use serde::{Deserialize, Serialize};
/// use tern_actors::{Actor, Context, Handler, spawn};
/// use tern_actors::remote::{Node, NodeConfig, Postcard, RemoteMessage};
/// use tern_executor::sim::World;
/// use tern_transport::SimTransport;
///
/// struct Squarer;
/// impl Actor for Squarer {}
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
/// impl RemoteMessage for Square {
///     const NAME: &'static str = "demo.v1.Square";
///     type Codec = Postcard;
/// }
/// impl Handler<Square> for Squarer {
///     type Reply = u64;
///     async fn handle(&mut self, m: Square, _: &mut Context<Self>) -> u64 { m.0 * m.0 }
/// }
///
/// let mut world = World::new(42).unwrap();
/// let (a, b) = (world.add_node("a").unwrap(), world.add_node("b").unwrap());
/// let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
/// let (ta, tb) = (SimTransport::new("a", world.socket(a), names.clone()),
///                 SimTransport::new("b", world.socket(b), names));
/// world.spawn_on(b, async move {
///     let node = Node::start(NodeConfig::new("b").peers(["a"]), tb).unwrap();
///     node.export("squarer", &spawn(Squarer)).unwrap().accept::<Square>();
/// }).detach();
/// let answer = world.spawn_on(a, async move {
///     let node = Node::start(NodeConfig::new("a").peers(["b"]), ta).unwrap();
///     node.lookup::<Squarer>("squarer").ask(Square(12)).await
/// });
/// world.run_until(tern_executor::Instant::from_nanos(1_000_000_000));
/// let answer = world.runtime(a).unwrap().block_on(answer).unwrap();
/// assert_eq!(answer, Ok(144));
/// ```
#[derive(Clone)]
pub struct Node {
    pub(super) shared: Rc<Shared>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.shared.config.name)
            .finish_non_exhaustive()
    }
}

pub(super) fn now() -> Nanos {
    time::now().as_nanos()
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn transport_error(e: TransportError) -> CallError {
    match e {
        TransportError::TooLarge { len, max } => CallError::Remote {
            code: ErrorCode::TooLarge,
            detail: format!("frame of {len} bytes exceeds the limit of {max}"),
        },
        TransportError::Backpressure(n) => CallError::Backpressure(n),
        TransportError::UnknownNode(n) | TransportError::Unreachable(n) => {
            CallError::Unreachable(n)
        }
        other => CallError::Unreachable(other.to_string()),
    }
}

impl Node {
    /// Starts this container's node on `transport`: spawns its tasks on the current
    /// runtime, announces this node to the configured peers, and installs it in the
    /// container's [`Environment`] (see [`Node::current`]).
    ///
    /// # Errors
    ///
    /// [`NodeError::Config`] naming a bad configuration value, or
    /// [`NodeError::NameMismatch`] if the transport belongs to another node name.
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn start<T: Transport + 'static>(
        config: NodeConfig,
        transport: T,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        if transport.local() != config.name {
            return Err(NodeError::NameMismatch {
                transport: transport.local().to_owned(),
                config: config.name,
            });
        }
        let transport = Rc::new(transport);
        let sender = transport.clone();
        let learner = transport.clone();
        let forgetter = transport.clone();
        let mut peers = BTreeMap::new();
        for p in &config.peers {
            peers.insert(p.clone(), PeerView::default());
        }
        let mut session = Session::with_limits(config.name.clone(), config.limits);
        session.set_generation(config.generation);
        let state = State {
            session,
            exports: BTreeMap::new(),
            version: 1,
            peers,
            hosts: BTreeMap::new(),
            waiters: BTreeMap::new(),
            pending: VecDeque::new(),
            next_pick: 0,
            stats: NodeStats::default(),
            ticker: None,
            down: BTreeSet::new(),
            gone: BTreeMap::new(),
            links_down: BTreeMap::new(),
            backlogs: BTreeMap::new(),
            held_bytes: 0,
            streams: streams::Tables::default(),
        };
        let node = Self {
            shared: Rc::new(Shared {
                config,
                send: Box::new(move |to, env, payload| sender.send(to, env, payload)),
                learn: Box::new(move |name, address| learner.learn_peer(name, address)),
                forget: Box::new(move |name| forgetter.forget_peer(name)),
                exports_watch: RefCell::new(None),
                answers: RefCell::new(VecDeque::new()),
                answers_waker: Cell::new(None),
                state: RefCell::new(state),
                tasks: RefCell::new(Vec::new()),
            }),
        };
        let receiver = node.clone();
        let ticker = node.clone();
        let answerer = node.clone();
        node.shared.tasks.borrow_mut().extend([
            tern_executor::spawn(async move {
                loop {
                    // Nothing here waits for a mailbox: a full one holds only its own
                    // requests (see `admission.rs`).
                    let incoming = transport.recv().await;
                    receiver.on_incoming(incoming);
                }
            }),
            tern_executor::spawn(async move { ticker.tick_loop().await }),
            tern_executor::spawn(async move { answerer.answer_loop().await }),
        ]);
        node.announce_all();
        Environment::current().insert(node.clone());
        tracing::debug!(node = %node.name(), "node started");
        Ok(node)
    }

    /// The node started on this container, if any.
    #[must_use]
    pub fn current() -> Option<Self> {
        Environment::current().get::<Self>().map(|n| (*n).clone())
    }

    /// This node's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The deadline of remote asks that set none.
    #[must_use]
    pub fn default_timeout(&self) -> Duration {
        self.shared.config.default_timeout
    }

    /// Makes `addr` reachable from other nodes as `name`; chain
    /// [`ExportBuilder::accept`] for each message type they may send. Peers learn the
    /// name at once. A component that stops for good is withdrawn.
    ///
    /// # Errors
    ///
    /// [`NodeError::BadName`] for an empty, too long or reserved name;
    /// [`NodeError::NameTaken`] if a live component is exported under it.
    pub fn export<A: Actor>(
        &self,
        name: &str,
        addr: &Addr<A>,
    ) -> Result<ExportBuilder<A>, NodeError> {
        check_component_name(name, &self.shared.config.limits)?;
        let export = Rc::new(Export::new(addr.clone()));
        {
            let mut st = self.shared.state.borrow_mut();
            if st.exports.get(name).is_some_and(|e| !e.is_stopped()) {
                return Err(NodeError::NameTaken(name.to_owned()));
            }
            st.exports.insert(name.to_owned(), export.clone());
            st.version += 1;
        }
        self.announce_all();
        Ok(ExportBuilder {
            export,
            name: name.to_owned(),
        })
    }

    /// Withdraws the export `name`; returns whether there was one.
    pub fn unexport(&self, name: &str) -> bool {
        let removed = {
            let mut st = self.shared.state.borrow_mut();
            let removed = st.exports.remove(name).is_some();
            if removed {
                st.version += 1;
            }
            removed
        };
        if removed {
            self.announce_all();
        }
        removed
    }

    /// A reference to the component called `name`, wherever it runs: on this node if
    /// it is here (no encoding), otherwise on a peer that announced it (round robin
    /// among several). Nothing is checked now; calls wait for the name if no node has
    /// announced it yet.
    #[must_use]
    pub fn lookup<A: Actor>(&self, name: &str) -> Ref<A> {
        Ref::new(self.clone(), name, None)
    }

    /// A reference to the component called `name` on node `node` only.
    #[must_use]
    pub fn lookup_on<A: Actor>(&self, node: &str, name: &str) -> Ref<A> {
        Ref::new(self.clone(), name, Some(node))
    }

    /// The nodes known to host `component`, this one first if it does.
    #[must_use]
    pub fn hosts(&self, component: &str) -> Vec<String> {
        let st = self.shared.state.borrow();
        let here = st.exports.get(component).is_some_and(|e| !e.is_stopped());
        let mut out: Vec<String> = here.then(|| self.name().to_owned()).into_iter().collect();
        if let Some(h) = st.hosts.get(component) {
            out.extend(h.iter().cloned());
        }
        out
    }

    /// Every exported component with its counters (mailbox depth, handled, dropped,
    /// restarts), by name.
    #[must_use]
    pub fn exports(&self) -> Vec<(String, crate::ComponentStats)> {
        let st = self.shared.state.borrow();
        st.exports
            .iter()
            .map(|(name, e)| (name.clone(), e.stats()))
            .collect()
    }

    /// Counters of what this node did.
    #[must_use]
    pub fn stats(&self) -> NodeStats {
        let st = self.shared.state.borrow();
        NodeStats {
            pending: st.pending.iter().filter(|p| !p.is_abandoned()).count(),
            streams_open: st.session.streams_outstanding(),
            streams_producing: st.session.streams_producing(),
            session: st.session.stats(),
            held_bytes: st.held_bytes,
            ..st.stats
        }
    }

    /// Stops the node: withdraws every export (peers are told), fails waiting and
    /// outstanding asks with [`CallError::Stopped`], and ends its tasks. Components keep
    /// running; only their network presence ends.
    pub fn shutdown(&self) {
        let (waiting, slots) = {
            let mut st = self.shared.state.borrow_mut();
            st.exports.clear();
            st.version += 1;
            let waiting: Vec<Pending> = st.pending.drain(..).collect();
            let slots: Vec<Rc<CallSlot>> = std::mem::take(&mut st.waiters).into_values().collect();
            (waiting, slots)
        };
        self.announce_all();
        for p in waiting {
            if let PendingCall::Ask { slot, .. } = p.call {
                slot.complete(Err(CallError::Stopped));
            }
        }
        for slot in slots {
            slot.complete(Err(CallError::Stopped));
        }
        self.shutdown_streams();
        self.shutdown_backlogs();
        for mut task in self.shared.tasks.borrow_mut().drain(..) {
            task.abort();
        }
        tracing::debug!(node = %self.name(), "node shut down");
    }

    // ----- calls from references -----

    /// The local component exported or registered as `name`, if it is of type `A`.
    pub(crate) fn local<A: Actor>(&self, name: &str) -> Option<Addr<A>> {
        let exported = {
            let st = self.shared.state.borrow();
            st.exports
                .get(name)
                .and_then(|e| e.addr().downcast_ref::<Addr<A>>().cloned())
        };
        exported.or_else(|| crate::registry::lookup::<A>(name).ok())
    }

    /// Sends a tell now, or parks it until `component` is known.
    fn tell_now(&self, component: &str, pin: Option<&str>, out: Outgoing) -> Result<(), CallError> {
        let now = now();
        let mut st = self.shared.state.borrow_mut();
        if let Some(node) = st.lost(component, pin) {
            return Err(CallError::PeerLost(node));
        }
        if let Some(node) = st.unreachable(component, pin, now, &self.shared.config) {
            return Err(CallError::Unreachable(node));
        }
        let Some(host) = st.route(component, pin) else {
            let expires = now.saturating_add(nanos(self.shared.config.pending_ttl));
            return self.park(&mut st, component, pin, out, PendingCall::Tell, expires);
        };
        st.session.tell(now, &host, out);
        let transmits = st.take_transmits();
        drop(st);
        self.send_all(transmits).map_err(transport_error)?;
        self.shared.state.borrow_mut().stats.tells_sent += 1;
        Ok(())
    }

    /// Sends a tell now or parks it until its component is known (see
    /// `Node::tell_now`; accepted ones are counted where they are sent), and counts a
    /// refusal by kind.
    pub(crate) fn tell(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
    ) -> Result<(), CallError> {
        let sent = self.tell_now(component, pin, out);
        if let Err(e) = &sent {
            self.shared.state.borrow_mut().stats.tells_refused.count(e);
        }
        sent
    }

    /// Sends an ask and waits for its outcome by `timeout`.
    pub(crate) async fn ask(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let now = now();
        let deadline = now.saturating_add(nanos(timeout));
        let slot = Rc::new(CallSlot::new(component));
        let _guard = Abandon {
            node: self,
            slot: &slot,
        };
        {
            let mut st = self.shared.state.borrow_mut();
            if let Some(node) = st.lost(component, pin) {
                return Err(CallError::PeerLost(node));
            }
            if let Some(node) = st.unreachable(component, pin, now, &self.shared.config) {
                return Err(CallError::Unreachable(node));
            }
            match st.route(component, pin) {
                Some(host) => {
                    st.start_ask(now, &host, out, deadline, &slot);
                    let transmits = st.take_transmits();
                    drop(st);
                    if let Err(e) = self.send_all(transmits) {
                        self.fail_ask(&slot, transport_error(e));
                    }
                }
                None => {
                    let call = PendingCall::Ask {
                        slot: slot.clone(),
                        deadline,
                    };
                    self.park(&mut st, component, pin, out, call, deadline)?;
                }
            }
        }
        match time::timeout(timeout, slot.wait()).await {
            Ok(outcome) => outcome,
            Err(_) if slot.id.get().is_none() => {
                Err(CallError::UnknownComponent(component.to_owned()))
            }
            Err(_) => {
                // The session's own deadline is this one: let it expire the ask, so
                // its `timeouts` and `NodeStats::asks_timed_out` count it.
                let now = self::now();
                self.shared.state.borrow_mut().session.handle_timeout(now);
                self.pump(now);
                Err(CallError::Timeout)
            }
        }
    }

    fn park(
        &self,
        st: &mut State,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
        call: PendingCall,
        expires: Nanos,
    ) -> Result<(), CallError> {
        if st.pending.len() >= self.shared.config.pending_limit {
            st.pending.retain(|p| !p.is_abandoned());
            if st.pending.len() >= self.shared.config.pending_limit {
                return Err(CallError::PendingFull);
            }
        }
        tracing::debug!(node = %self.name(), component, "waiting for an unknown component name");
        st.pending.push_back(Pending {
            component: component.to_owned(),
            pin: pin.map(str::to_owned),
            out,
            call,
            expires,
        });
        if let Some(w) = st.ticker.take() {
            w.wake();
        }
        Ok(())
    }

    fn fail_ask(&self, slot: &CallSlot, error: CallError) {
        if let Some(id) = slot.id.get() {
            let mut st = self.shared.state.borrow_mut();
            st.waiters.remove(&id);
            st.session.cancel(id);
        }
        slot.complete(Err(error));
    }

    /// Hands frames to the transport; counts and logs refusals and returns the first.
    fn send_all(&self, transmits: Vec<Transmit>) -> Result<(), TransportError> {
        let mut first = Ok(());
        for t in transmits {
            if let Err(e) = (self.shared.send)(&t.peer, t.envelope, t.payload) {
                self.shared.state.borrow_mut().stats.send_failures += 1;
                tracing::debug!(node = %self.name(), peer = %t.peer, error = %e, "frame not sent");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    fn flush(&self) {
        let transmits = self.shared.state.borrow_mut().take_transmits();
        let _ = self.send_all(transmits);
    }

    // ----- inbound -----

    fn on_incoming(&self, incoming: Incoming) {
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            match incoming {
                Incoming::Frame {
                    from,
                    envelope,
                    payload,
                } => {
                    // A frame proves a live connection.
                    if st.links_down.remove(&from).is_some() {
                        tracing::debug!(node = %self.name(), peer = %from, "connection back (a frame arrived)");
                    }
                    st.session.handle_frame(now, &from, &envelope, payload);
                }
                Incoming::PeerLost(peer) => {
                    tracing::debug!(node = %self.name(), %peer, "connection lost");
                    st.session.peer_lost(&peer);
                    st.forget(&peer);
                    st.stats.links_lost += 1;
                    st.links_down.insert(peer, now);
                    if let Some(w) = st.ticker.take() {
                        w.wake();
                    }
                }
                Incoming::PeerUp(peer) => {
                    tracing::debug!(node = %self.name(), %peer, "connection back");
                    st.links_down.remove(&peer);
                    if st
                        .peers
                        .get(&peer)
                        .is_some_and(|v| !v.gossip && v.known.is_none())
                    {
                        self.send_directory(&mut st, now, &peer, true);
                    }
                    self.retry_pending(&mut st, now);
                }
            }
        }
        self.pump(now)
    }

    /// Handles every session event, then sends what they produced.
    pub(super) fn pump(&self, now: Nanos) {
        loop {
            let event = self.shared.state.borrow_mut().session.poll_event();
            match event {
                None => break,
                Some(Event::Reply { id, result }) => self.on_reply(id, result),
                Some(Event::Request(req)) => self.on_request(now, req),
                Some(stream_event) => self.on_stream_event(stream_event),
            }
        }
        self.flush();
    }

    fn on_reply(&self, id: u64, result: Result<Reply, Failure>) {
        let Some(slot) = self.shared.state.borrow_mut().waiters.remove(&id) else {
            return;
        };
        let outcome = result.map_err(|f| match f {
            Failure::Remote { code, detail } => CallError::from_wire(code, detail, &slot.component),
            Failure::Timeout => CallError::Timeout,
            Failure::PeerLost => CallError::PeerLost(slot.node.borrow().clone()),
        });
        {
            let mut st = self.shared.state.borrow_mut();
            match &outcome {
                Err(CallError::Timeout) => st.stats.asks_timed_out += 1,
                Err(CallError::PeerLost(_)) => st.stats.asks_lost += 1,
                _ => {}
            }
        }
        slot.complete(outcome);
    }

    fn on_request(&self, now: Nanos, req: Request) {
        if req.component == DIRECTORY_COMPONENT {
            if req.expects_reply || req.content_type != PROTOBUF_CONTENT_TYPE {
                let error = CallError::Remote {
                    code: ErrorCode::UnknownMessageType,
                    detail: format!(
                        "{DIRECTORY_COMPONENT} takes only tells of {DIRECTORY_MESSAGE_TYPE} in {PROTOBUF_CONTENT_TYPE}"
                    ),
                };
                self.refuse(&req, None, &error);
            } else {
                self.on_directory(now, &req);
            }
            return;
        }
        if req.credit > 0 {
            self.on_stream_request(req);
            return;
        }
        self.on_component_request(now, req);
    }

    // ----- the directory -----

    fn directory(&self, st: &State, reply_wanted: bool) -> Directory {
        Directory {
            node: self.name().to_owned(),
            generation: self.shared.config.generation,
            version: st.version,
            components: st.exports.keys().cloned().collect(),
            reply_wanted,
        }
    }

    fn send_directory(&self, st: &mut State, now: Nanos, to: &str, reply_wanted: bool) {
        let payload = encode_directory(&self.directory(st, reply_wanted));
        let out = Outgoing::new(
            DIRECTORY_COMPONENT,
            DIRECTORY_MESSAGE_TYPE,
            PROTOBUF_CONTENT_TYPE,
            payload,
        );
        st.session.tell(now, to, out);
    }

    /// Sends this node's directory to every peer (asking for theirs where unknown).
    fn announce_all(&self) {
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            let peers: Vec<(String, bool)> = st
                .peers
                .iter()
                .filter(|(_, view)| !view.gossip)
                .map(|(name, view)| (name.clone(), view.known.is_none()))
                .collect();
            for (peer, unknown) in peers {
                self.send_directory(&mut st, now, &peer, unknown);
            }
        }
        self.flush();
        self.publish_components();
    }

    fn on_directory(&self, now: Nanos, req: &Request) {
        let dir = match decode_directory(&req.payload, &self.shared.config.limits) {
            Ok(dir) if dir.node == req.peer && req.message_type == DIRECTORY_MESSAGE_TYPE => dir,
            other => {
                self.shared.state.borrow_mut().stats.bad_control += 1;
                let why = other
                    .err()
                    .map_or_else(|| "sender mismatch".to_owned(), |e| e.to_string());
                tracing::warn!(node = %self.name(), peer = %req.peer, why, "bad directory message dropped");
                return;
            }
        };
        let mut st = self.shared.state.borrow_mut();
        let key = (dir.generation, dir.version);
        let view = st.peers.entry(req.peer.clone()).or_default();
        let first = view.known.is_none();
        let newer = view.known.is_none_or(|k| key > k);
        let restarted = view.known.is_some_and(|(g, _)| dir.generation > g);
        if newer {
            view.known = Some(key);
            let old = std::mem::replace(&mut view.components, dir.components.clone());
            st.unhost(&req.peer, &old);
            st.session.set_peer_generation(&req.peer, dir.generation);
            for c in &dir.components {
                st.hosts
                    .entry(c.clone())
                    .or_default()
                    .insert(req.peer.clone());
            }
            st.stats.directory_updates += 1;
            tracing::debug!(node = %self.name(), peer = %req.peer, generation = dir.generation,
                version = dir.version, components = dir.components.len(), "directory update");
        }
        if restarted {
            // The old incarnation will never answer what it was asked.
            st.session.peer_lost(&req.peer);
        }
        if dir.reply_wanted || first || restarted {
            self.send_directory(&mut st, now, &req.peer, false);
        }
        if newer {
            self.retry_pending(&mut st, now);
        }
    }

    /// Sends every waiting message whose name is now known, keeping their order.
    pub(super) fn retry_pending(&self, st: &mut State, now: Nanos) {
        let waiting = std::mem::take(&mut st.pending);
        let mut blocked = BTreeSet::new();
        for p in waiting {
            if p.is_abandoned() {
                continue;
            }
            let key = (p.component.clone(), p.pin.clone());
            if blocked.contains(&key) {
                st.pending.push_back(p);
                continue;
            }
            let Some(host) = st.route(&p.component, p.pin.as_deref()) else {
                blocked.insert(key);
                st.pending.push_back(p);
                continue;
            };
            match p.call {
                PendingCall::Tell => {
                    st.session.tell(now, &host, p.out);
                    st.stats.tells_sent += 1;
                }
                PendingCall::Ask { slot, deadline } => {
                    st.start_ask(now, &host, p.out, deadline, &slot);
                }
            }
        }
    }

    /// Withdraws exports whose component stopped for good, and tells the peers.
    fn withdraw_stopped(&self) {
        let changed = {
            let mut st = self.shared.state.borrow_mut();
            let before = st.exports.len();
            st.exports.retain(|_, e| !e.is_stopped());
            let changed = st.exports.len() != before;
            if changed {
                st.version += 1;
            }
            changed
        };
        if changed {
            self.announce_all();
        }
    }

    // ----- the ticker -----

    async fn tick_loop(&self) {
        loop {
            poll_fn(|cx| {
                let mut st = self.shared.state.borrow_mut();
                if st.needs_tick() {
                    Poll::Ready(())
                } else {
                    st.ticker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            time::sleep(self.shared.config.announce_interval).await;
            self.tick();
        }
    }

    fn tick(&self) {
        self.withdraw_stopped();
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            let silent: Vec<String> = st
                .peers
                .iter()
                .filter(|(_, v)| v.known.is_none() && !v.gossip)
                .map(|(name, _)| name.clone())
                .collect();
            for peer in silent {
                self.send_directory(&mut st, now, &peer, true);
            }
            let mut expired = 0;
            st.pending.retain(|p| match &p.call {
                _ if p.is_abandoned() => false,
                PendingCall::Tell if p.expires <= now => {
                    expired += 1;
                    tracing::warn!(node = %self.name(), component = %p.component,
                        message_type = %p.out.message_type, "tell dropped: component name unknown until its wait expired");
                    false
                }
                PendingCall::Ask { slot, deadline } if *deadline <= now => {
                    slot.complete(Err(CallError::UnknownComponent(p.component.clone())));
                    false
                }
                _ => true,
            });
            st.stats.pending_expired += expired;
            st.session.handle_timeout(now);
        }
        self.pump(now);
    }
}

impl State {
    /// The node whose death or leave makes a call to `component` (on `pin`) fail at
    /// once, if any: the pinned node is gone, or every host of the name is.
    fn lost(&self, component: &str, pin: Option<&str>) -> Option<String> {
        match pin {
            Some(node) => self.down.contains(node).then(|| node.to_owned()),
            None if self.exports.contains_key(component) => None,
            None => self.gone.get(component).cloned(),
        }
    }

    /// Where to send a message for `component` (on `pin`, if given) now, if anywhere.
    /// Messages already waiting for the same target go first, so a later one waits
    /// behind them.
    fn route(&mut self, component: &str, pin: Option<&str>) -> Option<String> {
        if self
            .pending
            .iter()
            .any(|p| p.component == component && p.pin.as_deref() == pin)
        {
            return None;
        }
        self.route_now(component, pin)
    }

    fn route_now(&mut self, component: &str, pin: Option<&str>) -> Option<String> {
        if let Some(node) = pin {
            let view = self.peers.get(node)?;
            view.known?;
            return view
                .components
                .iter()
                .any(|c| c == component)
                .then(|| node.to_owned());
        }
        let hosts = self.hosts.get(component)?;
        let live = || hosts.iter().filter(|h| !self.links_down.contains_key(*h));
        let n = live().count() as u64;
        if n == 0 {
            return None;
        }
        let i = usize::try_from(self.next_pick % n).unwrap_or(0);
        let host = live().nth(i).cloned();
        self.next_pick = self.next_pick.wrapping_add(1);
        host
    }

    /// The node whose lost connection makes a call to `component` (on `pin`) fail
    /// [`CallError::Unreachable`] now, if any: the pinned node's, or every host's.
    /// Marks older than [`NodeConfig::relink_after`] are lifted here.
    pub(super) fn unreachable(
        &mut self,
        component: &str,
        pin: Option<&str>,
        now: Nanos,
        config: &NodeConfig,
    ) -> Option<String> {
        if self.links_down.is_empty() {
            return None;
        }
        let after = nanos(config.relink_after);
        self.links_down
            .retain(|_, since| now < since.saturating_add(after));
        match pin {
            Some(node) => self.links_down.contains_key(node).then(|| node.to_owned()),
            None if self.exports.contains_key(component) => None,
            None => {
                let hosts = self.hosts.get(component)?;
                let mut all = hosts.iter().filter(|h| self.links_down.contains_key(*h));
                let first = all.next()?.clone();
                (all.count() + 1 == hosts.len()).then_some(first)
            }
        }
    }

    fn start_ask(
        &mut self,
        now: Nanos,
        host: &str,
        out: Outgoing,
        deadline: Nanos,
        slot: &Rc<CallSlot>,
    ) {
        let id = self
            .session
            .ask(now, host, out, Some(deadline.saturating_sub(now)));
        slot.id.set(Some(id));
        host.clone_into(&mut slot.node.borrow_mut());
        self.waiters.insert(id, slot.clone());
        self.stats.asks_sent += 1;
    }

    fn take_transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.session.poll_transmit()).collect()
    }

    pub(super) fn unhost(&mut self, peer: &str, components: &[String]) {
        for c in components {
            if let Some(h) = self.hosts.get_mut(c) {
                h.remove(peer);
                if h.is_empty() {
                    self.hosts.remove(c);
                }
            }
        }
    }

    /// Forgets what `peer` announced (its connection is gone); it is asked again.
    fn forget(&mut self, peer: &str) {
        if let Some(view) = self.peers.get_mut(peer) {
            if view.gossip {
                // Membership owns this peer's liveness: a dropped connection comes
                // back by itself; death or leave arrives as a membership event.
                return;
            }
            view.known = None;
            let old = std::mem::take(&mut view.components);
            self.unhost(peer, &old);
        }
    }

    fn needs_tick(&self) -> bool {
        !self.pending.is_empty() || self.peers.values().any(|v| v.known.is_none() && !v.gossip)
    }
}

/// Cleans up after an ask that ends early (its deadline, or its caller dropped it).
struct Abandon<'a> {
    node: &'a Node,
    slot: &'a Rc<CallSlot>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.slot.abandoned.set(true);
        if let Some(id) = self.slot.id.get()
            && let Ok(mut st) = self.node.shared.state.try_borrow_mut()
            && st.waiters.remove(&id).is_some()
        {
            st.session.cancel(id);
        }
    }
}
