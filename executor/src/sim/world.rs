//! The simulated world: many nodes on one thread, one virtual clock, one seed.
//!
//! Every task poll costs its node a seeded 50–100 ns of virtual time (configurable with
//! [`World::set_poll_cost`]), so a task that spins moves the clock instead of freezing
//! it; the livelock detector still catches it (design/simulation.md T4). Each node
//! has its own wall clock offset ([`World::set_clock_offset`], read through
//! [`time::wall_now`](crate::time::wall_now)) over the shared monotonic clock (T3).

use std::future::Future;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use super::net::{LinkConfig, Net, NetConfig, NetStats};
use super::sched::Pct;
use super::socket::SimSocket;
use super::timeline::{Timeline, TimelineKind};
use super::{Scheduler, SeedTree, SimRng, TraceEvent, TraceHash, TraceKind};
use crate::error::Error;
use crate::runtime::Runtime;
use crate::task::JoinHandle;
use crate::time::{Clock, Instant};

mod determinism;
mod faults;
mod step;

pub use determinism::{Divergence, check_determinism};

/// Identifies a node of a [`World`] (its index, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// What the world knows about one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStatus {
    /// Whether the node is up (not crashed).
    pub up: bool,
    /// Whether the node is paused (up, but not scheduled).
    pub paused: bool,
    /// Incremented by every restart.
    pub generation: u64,
    /// Virtual CPU time charged to the node's thread since the world began: work
    /// passed to [`charge`] plus the cost of every poll ([`World::set_poll_cost`]).
    pub busy: Duration,
}

#[derive(Debug)]
struct Node {
    name: String,
    /// `None` while crashed.
    rt: Option<Runtime>,
    paused: bool,
    generation: u64,
    /// The node's single thread is busy (charged work) until then.
    busy_until: Instant,
    busy: Duration,
    /// The end of its last poll's cost: from then to its next poll its thread is
    /// idle, counted as parked in its runtime's stats.
    idle_from: Instant,
    /// The node's wall clock offset, in nanoseconds; kept across restarts.
    wall_offset: i64,
}

impl Node {
    fn schedulable(&self, now: Instant) -> bool {
        !self.paused && self.busy_until <= now && self.rt.as_ref().is_some_and(Runtime::has_ready)
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.paused {
            return None;
        }
        self.rt.as_ref().and_then(Runtime::next_deadline)
    }
}

thread_local! {
    /// Work charged by the task the world is running right now.
    static CHARGED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Charges `cost` of virtual CPU time to the node running the current task: the node's
/// single thread is busy for that long after the task yields, so its other tasks (and
/// messages) wait, as they would behind real work. Outside a [`World`] it does nothing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::{self, World};
///
/// let mut world = World::new(1).unwrap();
/// world.set_poll_cost(Duration::ZERO, Duration::ZERO); // count only the charge
/// let n = world.add_node("n").unwrap();
/// world.spawn_on(n, async { sim::charge(Duration::from_millis(40)) }).detach();
/// world.run_until_idle();
/// assert_eq!(world.status(n).busy, Duration::from_millis(40));
/// ```
pub fn charge(cost: Duration) {
    let _ = CHARGED.try_with(|c| c.set(c.get() + cost));
}

/// Many nodes on one thread, driven step by step under one virtual clock and one seed.
///
/// Each node is a full tern runtime (its own FIFO run queue, timers, components). At
/// every step the world picks, with its `sched` seed stream, one node among those with
/// ready work and runs that node's oldest ready task, so each node stays first come,
/// first served inside, as a real container is, while the interleaving *between*
/// nodes varies with the seed. When no node has ready work the shared clock jumps to
/// the earliest timer of any node. Timers of several nodes due at the same instant
/// fire together and only make their tasks ready, so the order in which those tasks
/// run is the scheduler's too. [`World::set_scheduler`] swaps the uniform pick for
/// PCT priorities ([`Scheduler::Pct`]), which find deep ordering bugs faster.
///
/// Each poll keeps its node's thread busy for a seeded 50–100 ns (drawn from the
/// `poll` stream, see [`World::set_poll_cost`]), so even a task that never sleeps
/// moves virtual time forward.
///
/// Every step is folded into a [`TraceHash`]: the same seed and program give the same
/// hash, in one process or in two.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use tern_executor::sim::World;
/// use tern_executor::time;
///
/// let mut world = World::new(7).unwrap();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// for name in ["a", "b"] {
///     let node = world.add_node(name).unwrap();
///     let log = log.clone();
///     world.spawn_on(node, async move {
///         time::sleep(Duration::from_secs(1)).await;
///         log.borrow_mut().push(name);
///     }).detach();
/// }
/// world.run_until_idle();
/// assert_eq!(log.borrow().len(), 2);
/// assert_eq!(world.now().as_nanos(), 1_000_000_000); // virtual: no real waiting
/// ```
#[derive(Debug)]
pub struct World {
    seeds: SeedTree,
    sched: SimRng,
    scheduler: Scheduler,
    /// The PCT state while [`Scheduler::Pct`] is set.
    pct: Option<Pct>,
    /// Scratch list of nodes with ready work, reused every step (no allocation).
    ready: Vec<usize>,
    clock: Clock,
    nodes: Vec<Node>,
    net: Rc<RefCell<Net>>,
    trace: TraceHash,
    steps: u64,
    invariants: Invariants,
    violation: Option<Violation>,
    log: Option<Vec<TraceEvent>>,
    limits: Limits,
    polls_without_progress: u64,
    /// Draws the cost of each poll; its own stream, so it never moves `sched` or `net`.
    poll_rng: SimRng,
    /// Poll cost range in nanoseconds, inclusive; `(0, 0)` draws nothing.
    poll_cost: (u64, u64),
    /// Reused buffers for deliveries, so a step allocates nothing.
    arrived: Vec<(TraceKind, NodeId, u64)>,
    wakers: Vec<std::task::Waker>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    time_limit: Option<Instant>,
    livelock_polls: u64,
}

/// An invariant that failed: when, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The step after which it failed.
    pub step: u64,
    /// Virtual time then.
    pub at: Instant,
    /// The invariant's message.
    pub message: String,
}

type Invariant = Box<dyn Fn(&World) -> Result<(), String>>;

/// The registered invariants (a list of closures, shown by count).
#[derive(Default)]
struct Invariants(Vec<Invariant>);

impl std::fmt::Debug for Invariants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} invariants", self.0.len())
    }
}

impl World {
    /// An empty world for `seed`, its virtual clock at [`Instant::ZERO`].
    ///
    /// # Errors
    ///
    /// None today; reserved for worlds that allocate OS resources.
    pub fn new(seed: u64) -> Result<Self, Error> {
        let seeds = SeedTree::new(seed);
        Ok(Self {
            sched: seeds.stream("sched"),
            scheduler: Scheduler::Random,
            pct: None,
            ready: Vec::new(),
            net: Rc::new(RefCell::new(Net::new(seeds.stream("net")))),
            seeds,
            clock: Clock::virtual_at(Instant::ZERO),
            nodes: Vec::new(),
            trace: TraceHash::new(),
            steps: 0,
            invariants: Invariants::default(),
            violation: None,
            log: None,
            limits: Limits {
                time_limit: None,
                livelock_polls: 1_000_000,
            },
            polls_without_progress: 0,
            poll_rng: seeds.stream("poll"),
            poll_cost: (50, 100),
            arrived: Vec::new(),
            wakers: Vec::new(),
        })
    }

    /// The seeds of this world, for streams of faults or applications.
    #[must_use]
    pub fn seeds(&self) -> SeedTree {
        self.seeds
    }

    fn runtime_for_clock(&self) -> Result<Runtime, Error> {
        Runtime::builder().clock(self.clock.clone()).build()
    }

    /// Adds a node sharing the world's clock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the node's runtime cannot be built.
    pub fn add_node(&mut self, name: &str) -> Result<NodeId, Error> {
        let rt = self.runtime_for_clock()?;
        let now = self.clock.now();
        self.nodes.push(Node {
            name: name.to_owned(),
            rt: Some(rt),
            paused: false,
            generation: 0,
            busy_until: Instant::ZERO,
            busy: Duration::ZERO,
            idle_from: now,
            wall_offset: 0,
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// The node's name.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    #[must_use]
    pub fn name(&self, node: NodeId) -> &str {
        &self.nodes[node.0].name
    }

    /// The node's status.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    #[must_use]
    pub fn status(&self, node: NodeId) -> NodeStatus {
        let n = &self.nodes[node.0];
        NodeStatus {
            up: n.rt.is_some(),
            paused: n.paused,
            generation: n.generation,
            busy: n.busy,
        }
    }

    /// The share of virtual time so far that `node` spent on charged work (0 to 1).
    #[must_use]
    pub fn busy_fraction(&self, node: NodeId) -> f64 {
        let now = self.clock.now().as_nanos();
        if now == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let f = self.nodes[node.0].busy.as_nanos() as f64 / now as f64;
        f.min(1.0)
    }

    /// The node's runtime, while it is up.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    #[must_use]
    pub fn runtime(&self, node: NodeId) -> Option<&Runtime> {
        self.nodes[node.0].rt.as_ref()
    }

    /// Spawns a task on `node`; it runs as the world steps. `None` while the node is
    /// crashed.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    pub fn spawn_on<F>(&self, node: NodeId, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match &self.nodes[node.0].rt {
            Some(rt) => rt.spawn(future),
            None => {
                // A crashed node runs nothing: spawn into a throwaway runtime whose drop
                // cancels the task at once, so the handle reports `Aborted`.
                let Ok(scratch) = self.runtime_for_clock() else {
                    panic!("cannot build a runtime for a crashed node's task");
                };
                scratch.spawn(future)
            }
        }
    }

    /// Crashes `node`: every task on it is dropped (its components vanish without
    /// running `stopped` hooks), its queued and in-flight messages are lost, its
    /// timers are gone. Its stream connections reset: their frames in flight both ways
    /// are lost, and each peer that had one gets a
    /// [`SocketEvent::Reset`](super::SocketEvent::Reset) after
    /// [`NetConfig::reset_detect`]. Otherwise other nodes see nothing but silence.
    pub fn crash(&mut self, node: NodeId) {
        self.nodes[node.0].rt = None;
        self.nodes[node.0].paused = false;
        let now = self.clock.now();
        self.net.borrow_mut().set_down(now, node, true);
        self.note(node, TimelineKind::Crash);
        self.record_event(TraceKind::Crash, node.0, 0);
    }

    /// Restarts a crashed (or running) node with a fresh runtime and the next
    /// generation; spawn its boot tasks with [`World::spawn_on`] afterwards. It starts
    /// with no stream connections; its wall clock offset is kept. Each live node whose
    /// connection with it was reset gets a [`SocketEvent::Up`](super::SocketEvent::Up)
    /// after [`NetConfig::reconnect_ivl`](super::NetConfig::reconnect_ivl).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the runtime cannot be built.
    pub fn restart(&mut self, node: NodeId) -> Result<(), Error> {
        let rt = self.runtime_for_clock()?;
        let now = self.clock.now();
        if self.nodes[node.0].rt.is_some() {
            // Restarting a running node kills its process first, connections included.
            self.net.borrow_mut().set_down(now, node, true);
        }
        let n = &mut self.nodes[node.0];
        rt.set_wall_offset(n.wall_offset);
        n.rt = Some(rt);
        n.paused = false;
        n.generation += 1;
        n.busy_until = now;
        n.idle_from = now;
        self.net.borrow_mut().set_down(now, node, false);
        self.note(node, TimelineKind::Restart);
        self.record_event(TraceKind::Restart, node.0, 0);
        Ok(())
    }

    /// Pauses `node` (a stop-the-world GC, a frozen VM): it runs nothing and fires no
    /// timer until resumed; messages to it wait in its inbox.
    pub fn pause(&mut self, node: NodeId) {
        self.nodes[node.0].paused = true;
        self.note(node, TimelineKind::Pause);
        self.record_event(TraceKind::Pause, node.0, 0);
    }

    /// Resumes a paused node; what it missed runs now.
    pub fn resume(&mut self, node: NodeId) {
        self.nodes[node.0].paused = false;
        self.note(node, TimelineKind::Resume);
        self.record_event(TraceKind::Resume, node.0, 0);
    }

    /// Sets how the world picks the node to run at each step (design/simulation.md S1):
    /// [`Scheduler::Random`] (the default) or [`Scheduler::Pct`]. Setting PCT starts a
    /// fresh PCT run: node priorities and change points are drawn anew from the world's
    /// own `pct` seed stream (never from `sched`, `net` or any other), and a seed
    /// replays exactly in either mode. Set it before the first step for a whole run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use tern_executor::sim::{Scheduler, World};
    /// use tern_executor::yield_now;
    ///
    /// let mut world = World::new(11).unwrap();
    /// world.set_poll_cost(Duration::ZERO, Duration::ZERO);
    /// world.set_scheduler(Scheduler::Pct { depth: 1, expected_steps: 10 });
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for name in ["a", "b"] {
    ///     let node = world.add_node(name).unwrap();
    ///     let log = log.clone();
    ///     world.spawn_on(node, async move {
    ///         for _ in 0..3 {
    ///             log.borrow_mut().push(name);
    ///             yield_now().await;
    ///         }
    ///     }).detach();
    /// }
    /// world.run_until_idle();
    /// // Depth 1: no change point, so the higher-priority node runs to the end first.
    /// let log = log.borrow();
    /// assert!(log[..3].iter().all(|n| *n == log[0]));
    /// assert!(log[3..].iter().all(|n| *n != log[0]));
    /// ```
    pub fn set_scheduler(&mut self, scheduler: Scheduler) {
        self.scheduler = scheduler;
        self.pct = match scheduler {
            Scheduler::Random => None,
            Scheduler::Pct {
                depth,
                expected_steps,
            } => Some(Pct::new(self.seeds.stream("pct"), depth, expected_steps)),
        };
    }

    /// How the world picks the node to run; see [`World::set_scheduler`].
    #[must_use]
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler
    }

    /// Sets the network's behaviour from now on.
    pub fn set_net(&mut self, config: NetConfig) {
        self.net.borrow_mut().config = config;
    }

    /// Gives the directed link `from` → `to` its own latency, overriding the latency of
    /// the [`NetConfig`] for messages sent on it from now on (design/simulation.md N1).
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkConfig) {
        self.net.borrow_mut().set_link(from, to, Some(link));
    }

    /// Returns the link `from` → `to` to the global latency of the [`NetConfig`].
    pub fn clear_link(&mut self, from: NodeId, to: NodeId) {
        self.net.borrow_mut().set_link(from, to, None);
    }

    /// Sets the virtual time each task poll costs its node: uniform in `min..=max`
    /// (nanosecond resolution; `max` below `min` counts as `min`), drawn from the
    /// world's `poll` seed stream, and charged like [`charge`]. Default 50–100 ns.
    /// `(0, 0)` turns it off, and then nothing is drawn.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tern_executor::sim::World;
    ///
    /// let mut world = World::new(1).unwrap();
    /// let n = world.add_node("n").unwrap();
    /// world.set_poll_cost(Duration::from_micros(1), Duration::from_micros(1));
    /// world.spawn_on(n, async {}).detach();
    /// world.run_until_idle();
    /// assert_eq!(world.status(n).busy, Duration::from_micros(1));
    /// ```
    pub fn set_poll_cost(&mut self, min: Duration, max: Duration) {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let min = nanos(min);
        self.poll_cost = (min, nanos(max).max(min));
    }

    /// Sets `node`'s wall clock to virtual time plus `offset_nanos` (negative: behind),
    /// from now on and across restarts: a step of the node's wall clock, as
    /// [`time::wall_now`](crate::time::wall_now) reads it. Its monotonic clock
    /// ([`time::now`](crate::time::now)) is the world's and is unaffected.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tern_executor::sim::World;
    /// use tern_executor::time;
    ///
    /// let mut world = World::new(1).unwrap();
    /// let n = world.add_node("n").unwrap();
    /// world.set_clock_offset(n, -2_000_000_000); // two seconds slow
    /// let seen = Rc::new(Cell::new(None));
    /// let s = seen.clone();
    /// world.spawn_on(n, async move { s.set(Some(time::wall_now())) }).detach();
    /// world.run_until_idle();
    /// let since_epoch = seen.get().unwrap().duration_since(UNIX_EPOCH).unwrap();
    /// assert_eq!(since_epoch, Duration::from_secs(1_700_000_000 - 2));
    /// ```
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    pub fn set_clock_offset(&mut self, node: NodeId, offset_nanos: i64) {
        let n = &mut self.nodes[node.0];
        n.wall_offset = offset_nanos;
        if let Some(rt) = &n.rt {
            rt.set_wall_offset(offset_nanos);
        }
    }

    /// Counters of what the network did.
    #[must_use]
    pub fn net_stats(&self) -> NetStats {
        self.net.borrow().stats
    }

    /// `node`'s handle on the simulated network.
    #[must_use]
    pub fn socket(&self, node: NodeId) -> SimSocket {
        SimSocket {
            node,
            net: self.net.clone(),
            clock: self.clock.clone(),
        }
    }

    /// Adds an invariant, checked after every step; the first violation stops the
    /// world (every `run_*` returns, [`World::step`] returns `false`) and is kept in
    /// [`World::violation`] (design/simulation.md C1).
    pub fn add_invariant(&mut self, check: impl Fn(&Self) -> Result<(), String> + 'static) {
        self.invariants.0.push(Box::new(check));
    }

    /// The first invariant violation, if any.
    #[must_use]
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// The world's virtual time.
    #[must_use]
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Steps taken so far.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The hash of every step so far.
    #[must_use]
    pub fn trace_hash(&self) -> TraceHash {
        self.trace
    }

    /// Keeps every trace event in memory (for [`check_determinism`] and debugging);
    /// off by default, since long runs produce millions.
    pub fn keep_trace(&mut self, keep: bool) {
        self.log = keep.then(Vec::new);
    }

    /// Keeps a [`Timeline`] of at most `cap` events from now on (sends, deliveries,
    /// drops, faults), for [`World::chrome_trace`]; `cap` 0 stops keeping one. Apart
    /// from the canonical trace: keeping it never changes the trace hash.
    pub fn keep_timeline(&mut self, cap: usize) {
        self.net.borrow_mut().timeline = (cap > 0).then(|| Timeline::new(cap));
    }

    /// A copy of the kept timeline, if [`World::keep_timeline`] is on.
    #[must_use]
    pub fn timeline(&self) -> Option<Timeline> {
        self.net.borrow().timeline.clone()
    }

    /// The kept timeline in the Chrome trace event format (see the [module
    /// docs](super) for the layout and how to open it), or `None` if no timeline is
    /// kept. The same seed gives the same bytes.
    #[must_use]
    pub fn chrome_trace(&self) -> Option<String> {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        let net = self.net.borrow();
        net.timeline.as_ref().map(|t| t.to_chrome_json(&names))
    }

    fn note(&self, node: NodeId, kind: TimelineKind) {
        let now = self.clock.now();
        self.net.borrow_mut().note(now, node, kind);
    }

    /// The kept trace events (empty unless [`World::keep_trace`] is on).
    #[must_use]
    pub fn trace_events(&self) -> &[TraceEvent] {
        self.log.as_deref().unwrap_or(&[])
    }
}
