//! The node: a sans-IO [`Router`] and the driver that binds it to a transport and to
//! this container's components.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

use tern_executor::JoinHandle;
use tern_executor::time;
use tern_proto::session::{Nanos, Request};
use tern_proto::v1::ErrorCode;
#[cfg(doc)]
use tern_transport::Incoming;
use tern_transport::{Transport, TransportError};

use super::config::{NodeConfig, NodeError, check_component_name};
use super::error::CallError;
use super::export::{Encoded, Export, ExportBuilder, Exported};
use super::latency::AskLatency;
use super::reference::Ref;
use super::router::{Event, Router, Slots};
use super::slot::CallSlot;
use super::stream::{CallStream, Source};
use super::traffic::{PeerTraffic, Traffic};
use crate::actor::Actor;
use crate::addr::Addr;
use crate::env::Environment;

mod admission;
mod calls;
mod driver;
mod flow;
mod id_key;
mod limits;
mod streams;

pub use super::router::{InboundRefusals, NodeStats, TellRefusals};
pub(super) use admission::Answer;
pub(super) use driver::Link;

/// The handles the router stores for this driver.
pub(super) struct Handles;

impl Slots for Handles {
    type Ask = Rc<CallSlot>;
    type Stream = Rc<CallStream>;
    type Source = Rc<dyn Source>;
    type Export = Rc<dyn Exported>;
}

type ExportsWatch = Box<dyn Fn(&[&str])>;

/// An inbound ask done with: its request, the bytes it was charged against the
/// inbound budget, and its outcome (`None`: dropped unanswered, only the charge goes
/// back).
type Finished = (Request, usize, Option<Result<Encoded, CallError>>);

pub(super) struct Shared {
    name: String,
    default_timeout: Duration,
    pub(super) router: RefCell<Router<Handles>>,
    /// The transport's sending half (the driver task owns its receiving half).
    pub(super) link: Rc<dyn Link>,
    /// Answers to inbound asks, completed by components while the router was busy,
    /// waiting for the driver to hand them over.
    answers: RefCell<VecDeque<Finished>>,
    /// How long this node's remote asks took.
    latency: RefCell<AskLatency>,
    /// Frames and bytes to and from each peer.
    pub(super) traffic: RefCell<Traffic>,
    /// Wakes the driver: answers are queued, or its timer must come earlier.
    driver: Cell<Option<Waker>>,
    /// When the driver's timer fires (`None`: not armed).
    armed: Cell<Option<Nanos>>,
    /// Told the exported names after every change (see `Node::watch_exports`).
    pub(super) exports_watch: RefCell<Option<ExportsWatch>>,
    task: RefCell<Option<JoinHandle<()>>>,
    /// Mailbox capacities of components from before a limit changed them.
    mailbox_defaults: RefCell<std::collections::BTreeMap<String, usize>>,
}

/// This container's presence on the network: it exports local components under names,
/// learns which peer hosts which name, and carries [`Ref`] calls over a
/// [`Transport`].
///
/// One node runs per container. Its decisions are made by a sans-IO router (fed the
/// time and what arrives, it says what to send and when to wake); [`Node::start`]
/// spawns one driver task on the current runtime that feeds it frames from the
/// transport and wakes it with a single timer, and makes the node available to every
/// component through [`Node::current`].
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
///   requests wait. The driver never waits for a mailbox, so other components, replies to this
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
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

pub(super) fn now() -> Nanos {
    time::now().as_nanos()
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
    /// Starts this container's node on `transport`: spawns its driver task on the
    /// current runtime, announces this node to the configured peers, and installs it
    /// in the container's [`Environment`] (see [`Node::current`]).
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
        let key = id_key::for_node(&config)?;
        let mut router = Router::new(config);
        router.set_id_key(key);
        let transport = Rc::new(transport);
        let node = Self {
            shared: Rc::new(Shared {
                name: router.name().to_owned(),
                default_timeout: router.config().default_timeout,
                router: RefCell::new(router),
                link: transport.clone(),
                answers: RefCell::new(VecDeque::new()),
                latency: RefCell::new(AskLatency::default()),
                traffic: RefCell::new(Traffic::default()),
                driver: Cell::new(None),
                armed: Cell::new(None),
                exports_watch: RefCell::new(None),
                task: RefCell::new(None),
                mailbox_defaults: RefCell::new(std::collections::BTreeMap::new()),
            }),
        };
        let driver = node.clone();
        *node.shared.task.borrow_mut() = Some(tern_executor::spawn(async move {
            driver.drive(&*transport).await
        }));
        let now = now();
        node.shared
            .router
            .borrow_mut()
            .announce(now, &*node.shared.link);
        node.pump(now);
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
        &self.shared.name
    }

    /// How long this node's remote asks took, from the call to the outcome (every
    /// ask that ended, whatever the outcome).
    #[must_use]
    pub fn ask_latency(&self) -> AskLatency {
        *self.shared.latency.borrow()
    }

    /// Frames and bytes exchanged with each peer since the node started (peers past
    /// [`MAX_COUNTED_PEERS`](super::MAX_COUNTED_PEERS) are added up under
    /// [`OTHER_PEERS`](super::OTHER_PEERS)).
    #[must_use]
    pub fn traffic(&self) -> Vec<(String, PeerTraffic)> {
        self.shared.traffic.borrow().snapshot()
    }

    /// The deadline of remote asks that set none.
    #[must_use]
    pub fn default_timeout(&self) -> Duration {
        self.shared.default_timeout
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
        let limits = self.shared.router.borrow().config().limits;
        check_component_name(name, &limits)?;
        let export = Rc::new(Export::new(addr.clone()));
        let now = now();
        let added = self.shared.router.borrow_mut().add_export(
            now,
            &*self.shared.link,
            name,
            export.clone(),
        );
        if !added {
            return Err(NodeError::NameTaken(name.to_owned()));
        }
        self.apply_mailbox(name);
        self.pump(now);
        Ok(ExportBuilder {
            export,
            name: name.to_owned(),
        })
    }

    /// Withdraws the export `name`; returns whether there was one.
    pub fn unexport(&self, name: &str) -> bool {
        let now = now();
        let removed = self
            .shared
            .router
            .borrow_mut()
            .remove_export(now, &*self.shared.link, name);
        self.pump(now);
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
        let router = self.shared.router.borrow();
        let here = router.export(component).is_some_and(|e| !e.is_stopped());
        let mut out: Vec<String> = here.then(|| self.name().to_owned()).into_iter().collect();
        out.extend(router.hosts_of(component).map(str::to_owned));
        out
    }

    /// Every exported component with its counters (mailbox depth, handled, dropped,
    /// restarts), by name.
    #[must_use]
    pub fn exports(&self) -> Vec<(String, crate::ComponentStats)> {
        let router = self.shared.router.borrow();
        router
            .exports()
            .map(|(name, e)| (name.clone(), e.stats()))
            .collect()
    }

    /// Counters of what this node did.
    #[must_use]
    pub fn stats(&self) -> NodeStats {
        self.shared.router.borrow().stats()
    }

    /// Stops the node: withdraws every export (peers are told), fails waiting and
    /// outstanding asks with [`CallError::Stopped`], and ends its task. Components
    /// keep running; only their network presence ends: references on this node still
    /// reach them (without encoding), so local callers are not cut off while the
    /// container drains.
    pub fn shutdown(&self) {
        let now = now();
        self.shared
            .router
            .borrow_mut()
            .shutdown(now, &*self.shared.link);
        self.pump(now);
        if let Some(mut task) = self.shared.task.borrow_mut().take() {
            task.abort();
        }
        tracing::debug!(node = %self.name(), "node shut down");
    }

    /// Acts on every router event, then sends what the router produced.
    pub(super) fn pump(&self, now: Nanos) {
        loop {
            let event = self.shared.router.borrow_mut().poll_event();
            let Some(event) = event else { break };
            match event {
                Event::Deliver(req) => self.deliver(now, req),
                Event::DeliverStream(req) => self.on_stream_request(now, req),
                Event::Completed { slot, outcome } => slot.complete(outcome),
                Event::StreamItem { stream, item } => stream.push(item),
                Event::StreamEnd { stream, result } => stream.finish(result),
                Event::Credit { source, n } => source.grant(u64::from(n)),
                Event::Cancel { source } => source.cancel(),
                Event::ExportsChanged => self.publish_components(),
            }
        }
        let _ = self.flush();
        self.rearm();
    }
}

impl super::router::ExportSlot for Rc<dyn Exported> {
    fn is_stopped(&self) -> bool {
        Exported::is_stopped(&**self)
    }
}
