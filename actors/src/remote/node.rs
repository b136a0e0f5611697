//! The node: binds the wire session, a transport and this container's components.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use tern_executor::JoinHandle;
use tern_executor::time;
use tern_proto::control::{DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE};
use tern_proto::session::{Event, Nanos, Request, Session, Transmit};
use tern_proto::v1::ErrorCode;
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
mod calls;
mod directory;
mod stats;
mod streams;

pub(in crate::remote) use calls::{Pending, PendingCall};
pub(in crate::remote) use directory::PeerView;
pub use stats::{NodeStats, TellRefusals};

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
    /// Every component name this node exported or a peer announced: a call that finds
    /// no host for one of these fails [`CallError::NotHosted`], for any other name
    /// [`CallError::UnknownName`].
    pub(super) heard: BTreeSet<String>,
    /// Exports withdrawn by [`Node::shutdown`]: no longer announced or reachable from
    /// other nodes, still called by local references while the container drains.
    pub(super) retired: BTreeMap<String, Rc<dyn Exported>>,
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
type ConnectedFn = Box<dyn Fn(&str) -> bool>;
type ExportsWatch = Box<dyn Fn(&[&str])>;

pub(super) struct Shared {
    pub(super) config: NodeConfig,
    send: SendFn,
    pub(super) learn: LearnFn,
    pub(super) forget: ForgetFn,
    /// Whether the transport can queue a frame for a peer now (see
    /// `Transport::connected`): a call to a host whose connection is not up yet waits
    /// for it like a call to an unknown name.
    pub(super) connected: ConnectedFn,
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
        let connector = transport.clone();
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
            heard: BTreeSet::new(),
            retired: BTreeMap::new(),
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
                connected: Box::new(move |name| connector.connected(name)),
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
            st.heard.insert(name.to_owned());
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
    /// announced it yet. `T` is the component's actor type, or a protocol naming the
    /// messages it accepts (see [`protocol!`](crate::protocol)).
    #[must_use]
    pub fn lookup<T: 'static>(&self, name: &str) -> Ref<T> {
        Ref::new(self.clone(), name, None)
    }

    /// A reference to the component called `name` on node `node` only.
    #[must_use]
    pub fn lookup_on<T: 'static>(&self, node: &str, name: &str) -> Ref<T> {
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
    /// running; only their network presence ends: references on this node still
    /// reach them (without encoding), so local callers are not cut off while the
    /// container drains.
    pub fn shutdown(&self) {
        let (waiting, slots) = {
            let mut st = self.shared.state.borrow_mut();
            st.retired = std::mem::take(&mut st.exports);
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
                    // A (re)connected peer hears this node's directory now, not at the
                    // next tick: sends before the connection was up were refused.
                    let unknown = st
                        .peers
                        .get(&peer)
                        .filter(|v| !v.gossip)
                        .map(|v| v.known.is_none());
                    if let Some(unknown) = unknown {
                        self.send_directory(&mut st, now, &peer, unknown);
                    }
                    // Calls that waited for this connection go now.
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
}

impl State {
    fn take_transmits(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.session.poll_transmit()).collect()
    }
}
