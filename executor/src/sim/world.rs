//! The simulated world: many nodes on one thread, one virtual clock, one seed.

use std::future::Future;

use std::cell::RefCell;
use std::rc::Rc;

use super::net::{Net, NetConfig, NetStats, SimSocket};
use super::{SeedTree, SimRng, TraceHash};
use crate::error::Error;
use crate::runtime::Runtime;
use crate::task::JoinHandle;
use crate::time::{Clock, Instant};

/// Identifies a node of a [`World`] (its index, in creation order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

#[derive(Debug)]
struct Node {
    name: String,
    rt: Runtime,
}

/// Many nodes on one thread, driven step by step under one virtual clock and one seed.
///
/// Each node is a full tern runtime (its own FIFO run queue, timers, components). At
/// every step the world picks, with its `sched` seed stream, one node among those with
/// ready work and runs that node's oldest ready task, so each node stays first come,
/// first served inside, as a real container is, while the interleaving *between*
/// nodes varies with the seed. When no node has ready work the shared clock jumps to
/// the earliest timer of any node.
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
    clock: Clock,
    nodes: Vec<Node>,
    net: Rc<RefCell<Net>>,
    trace: TraceHash,
    steps: u64,
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
            net: Rc::new(RefCell::new(Net::new(seeds.stream("net")))),
            seeds,
            clock: Clock::virtual_at(Instant::ZERO),
            nodes: Vec::new(),
            trace: TraceHash::new(),
            steps: 0,
        })
    }

    /// The seeds of this world, for streams of the network, faults or applications.
    #[must_use]
    pub fn seeds(&self) -> SeedTree {
        self.seeds
    }

    /// Adds a node sharing the world's clock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the node's runtime cannot be built.
    pub fn add_node(&mut self, name: &str) -> Result<NodeId, Error> {
        let rt = Runtime::builder().clock(self.clock.clone()).build()?;
        self.nodes.push(Node {
            name: name.to_owned(),
            rt,
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

    /// The node's runtime, for spawning and inspection.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    #[must_use]
    pub fn runtime(&self, node: NodeId) -> &Runtime {
        &self.nodes[node.0].rt
    }

    /// Spawns a task on `node`; it runs as the world steps.
    ///
    /// # Panics
    ///
    /// If `node` is not a node of this world.
    pub fn spawn_on<F>(&self, node: NodeId, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.nodes[node.0].rt.spawn(future)
    }

    /// Sets the network's behaviour from now on.
    pub fn set_net(&mut self, config: NetConfig) {
        self.net.borrow_mut().config = config;
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

    /// Cuts both directions between `a` and `b`: messages sent, and messages in flight
    /// when they arrive, are dropped until healed.
    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        let mut net = self.net.borrow_mut();
        net.cut(a, b);
        net.cut(b, a);
    }

    /// Cuts only `from` → `to`.
    pub fn partition_oneway(&mut self, from: NodeId, to: NodeId) {
        self.net.borrow_mut().cut(from, to);
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        let mut net = self.net.borrow_mut();
        net.heal(a, b);
        net.heal(b, a);
    }

    /// Removes every partition.
    pub fn heal_all(&mut self) {
        self.net.borrow_mut().heal_all();
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

    /// One step: run one ready task of a node chosen by seed, or, when no node is
    /// ready, move the clock to the earliest timer or network delivery and deliver and
    /// fire what is due. Returns `false` when nothing is ready and nothing is pending
    /// (the world is idle).
    pub fn step(&mut self) -> bool {
        let ready: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].rt.has_ready())
            .collect();
        if !ready.is_empty() {
            let pick = usize::try_from(self.sched.below(ready.len() as u64)).unwrap_or(0);
            let i = ready[pick];
            self.nodes[i].rt.run_one();
            self.steps += 1;
            self.record(b'p', i);
            return true;
        }
        let Some(at) = self.next_event() else {
            return false;
        };
        self.clock.advance(at - self.clock.now());
        // Deliveries first, in (time, send order); then timers, in node order.
        let (delivered, wakers) = self.net.borrow_mut().deliver_due(at);
        for (seq, p) in delivered {
            let mut rec = [0u8; 24];
            rec[0] = b'd';
            rec[8..16].copy_from_slice(&seq.to_le_bytes());
            rec[16..24].copy_from_slice(&(p.to.0 as u64).to_le_bytes());
            self.trace.record(&rec);
        }
        for w in wakers {
            w.wake();
        }
        // Fire in node order: deterministic, and the seed still decides who runs first.
        for i in 0..self.nodes.len() {
            if self.nodes[i].rt.next_deadline().is_some_and(|d| d <= at) {
                self.nodes[i].rt.fire_timers();
                self.record(b't', i);
            }
        }
        true
    }

    /// The earliest timer of any node or network delivery.
    fn next_event(&self) -> Option<Instant> {
        let timers = self.nodes.iter().filter_map(|n| n.rt.next_deadline()).min();
        let delivery = self.net.borrow().next_delivery();
        match (timers, delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn record(&mut self, kind: u8, node: usize) {
        let mut rec = [0u8; 24];
        rec[0] = kind;
        rec[8..16].copy_from_slice(&(node as u64).to_le_bytes());
        rec[16..24].copy_from_slice(&self.clock.now().as_nanos().to_le_bytes());
        self.trace.record(&rec);
    }

    /// Steps until the world is idle. Returns the steps taken.
    pub fn run_until_idle(&mut self) -> u64 {
        let start = self.steps;
        while self.step() {}
        self.steps - start
    }

    /// Steps until virtual time reaches `deadline` or the world is idle, whichever is
    /// first; the clock never passes `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            let ready = self.nodes.iter().any(|n| n.rt.has_ready());
            if !ready {
                match self.next_event() {
                    Some(at) if at <= deadline => {}
                    _ => {
                        if self.clock.now() < deadline {
                            self.clock.advance(deadline - self.clock.now());
                        }
                        return;
                    }
                }
            }
            if !self.step() {
                return;
            }
        }
    }
}
