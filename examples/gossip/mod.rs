//! The membership targets T1–T10 of `docs/design/gossip.md` §2b on the deterministic
//! simulator: each node is a world node running [`Discovery`] over [`SimDatagrams`],
//! all with the same key and cluster id. The scenario binary `examples/gossip_sim.rs`
//! sweeps them over seeds; `examples/tests/gossip_targets.rs` runs them small.
//!
//! Every run also checks the §2b invariants, every 100 ms of virtual time and at the
//! end: no node's own view shows itself dead, generation and incarnation never go down
//! on any node, no datagram over the MTU (`largest_sent` and the network's
//! `too_large`), the gossip queues stay within `max_queue`, and the views converge
//! after the last fault (every running node sees exactly the running nodes alive, at
//! their current generation).
//!
//! The baseline network is §2b's: 1 % iid loss, MTU 1,400 bytes, one-way latency
//! 0.1 ms plus an exponential tail of mean 0.6 ms capped at 2 ms (the simulator has no
//! uniform latency; this spans the same 0.1–2 ms).

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use tern::discovery::{
    Discovery, GossipConfig, Identity, Key, Keyring, MemberEvent, Membership, SimDatagrams, State,
    sim_addr,
};
use tern::remote::prelude::*;

mod judge;
mod targets;

pub use judge::{judge, pct, summary};
use targets::{t1, t2, t3a, t3b, t3c, t4, t4b, t5, t6, t7, t8, t9, t10};

/// The targets, in the order of §2b.
pub const TARGETS: [&str; 14] = [
    "T1", "T1b", "T2", "T3a", "T3b", "T3c", "T4", "T4b", "T5", "T6", "T7", "T8", "T9", "T10",
];

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
/// One gossip round (the gossip tick).
const ROUND: u64 = 200 * MS;

/// What one event in some node's view was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `MemberEvent::Up`.
    Up,
    /// `MemberEvent::Suspect`.
    Suspect,
    /// `MemberEvent::Refuted`.
    Refuted,
    /// `MemberEvent::Down` for a failure.
    Dead,
    /// `MemberEvent::Down` for a leave.
    Left,
    /// `MemberEvent::Fact`.
    Fact,
}

/// One event seen by one node: when, who saw it, about whom.
#[derive(Debug, Clone, Copy)]
pub struct Ev {
    /// Virtual time, nanoseconds.
    pub t: u64,
    /// The observer's index.
    pub obs: u32,
    /// The subject's index.
    pub subj: u32,
    /// What happened.
    pub kind: Kind,
    /// The generation (for `Up`, `Dead` and `Left`).
    pub generation: u64,
}

#[derive(Default)]
struct Recorder {
    evs: RefCell<Vec<Ev>>,
    no_facts: Cell<bool>,
}

fn index(name: &str) -> u32 {
    name.strip_prefix('n')
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX)
}

impl Recorder {
    fn record(&self, obs: usize, e: &MemberEvent) {
        let t = time::now().as_nanos();
        let (name, kind, generation) = match e {
            MemberEvent::Up {
                name, generation, ..
            } => (name, Kind::Up, *generation),
            MemberEvent::Suspect { name } => (name, Kind::Suspect, 0),
            MemberEvent::Refuted { name } => (name, Kind::Refuted, 0),
            MemberEvent::Down {
                name,
                generation,
                left,
            } => (
                name,
                if *left { Kind::Left } else { Kind::Dead },
                *generation,
            ),
            MemberEvent::Fact { name, .. } => {
                if self.no_facts.get() {
                    return;
                }
                (name, Kind::Fact, 0)
            }
            _ => return,
        };
        self.evs.borrow_mut().push(Ev {
            t,
            obs: u32::try_from(obs).unwrap_or(u32::MAX),
            subj: index(name),
            kind,
            generation,
        });
    }
}

/// The §2b baseline network at `loss_ppm` loss.
#[must_use]
pub fn baseline_net(loss_ppm: u32) -> NetConfig {
    NetConfig {
        min_latency: Duration::from_micros(100),
        tail_mean: Duration::from_micros(600),
        max_latency: Some(Duration::from_millis(2)),
        loss_ppm,
        mtu: 1400,
        ..NetConfig::default()
    }
}

/// A simulated cluster of `n` gossiping nodes, `n0`..`n{n-1}`; the seeds are n0, n1, n2.
#[allow(missing_debug_implementations)]
pub struct Cluster {
    /// The world.
    pub world: World,
    /// Nodes in the cluster.
    pub n: usize,
    ids: Vec<NodeId>,
    disc: Vec<Rc<RefCell<Option<Discovery>>>>,
    gens: Vec<u64>,
    /// Running (not crashed, not left), and expected in everyone's view.
    up: Vec<bool>,
    cfg: GossipConfig,
    ring: Keyring,
    rec: Rc<Recorder>,
    last_self: Vec<(u64, u64)>,
    /// Invariant violations so far.
    pub violations: Vec<String>,
    rng: SimRng,
    last_check: u64,
}

impl Cluster {
    /// `n` nodes (none started yet) on the baseline network at `loss_ppm`.
    ///
    /// # Panics
    ///
    /// If the world cannot be built.
    #[must_use]
    pub fn new(seed: u64, n: usize, loss_ppm: u32, lifeguard: bool) -> Self {
        let mut world = World::new(seed).expect("world");
        world.set_net(baseline_net(loss_ppm));
        // Long runs of gossip timers only: never a livelock.
        world.set_livelock_limit(u64::MAX);
        let mut ids = Vec::with_capacity(n + 1);
        for i in 0..n {
            ids.push(world.add_node(&format!("n{i}")).expect("node"));
        }
        let mut cfg = GossipConfig::new("sim");
        cfg.lifeguard = lifeguard;
        let rng = world.seeds().stream("gossip-scenario");
        Self {
            world,
            n,
            ids,
            disc: (0..n).map(|_| Rc::new(RefCell::new(None))).collect(),
            gens: vec![0; n],
            up: vec![false; n],
            cfg,
            ring: Keyring::new(1, Key::from_bytes([7; 32])),
            rec: Rc::new(Recorder::default()),
            last_self: vec![(0, 0); n],
            violations: Vec::new(),
            rng,
            last_check: 0,
        }
    }

    /// Adds one more node (not started); returns its index.
    ///
    /// # Panics
    ///
    /// If the node cannot be added.
    pub fn add(&mut self) -> usize {
        let i = self.ids.len();
        self.ids
            .push(self.world.add_node(&format!("n{i}")).expect("node"));
        self.disc.push(Rc::new(RefCell::new(None)));
        self.gens.push(0);
        self.up.push(false);
        self.last_self.push((0, 0));
        i
    }

    /// The seeds' addresses.
    #[must_use]
    pub fn seeds(&self) -> Vec<SocketAddr> {
        self.ids.iter().take(3).map(|&id| sim_addr(id)).collect()
    }

    /// Virtual now, nanoseconds.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.world.now().as_nanos()
    }

    /// Suspicion (min, max) for `n` members, nanoseconds.
    #[must_use]
    pub fn suspicion(&self) -> (u64, u64) {
        #[allow(clippy::cast_precision_loss)]
        let scale = (self.n as f64).log10().max(1.0);
        let t = self.cfg.probe_interval.as_secs_f64();
        let min = f64::from(self.cfg.suspicion_mult) * scale * t;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let min = (min * 1e9) as u64;
        (min, min * u64::from(self.cfg.suspicion_max_mult))
    }

    /// Starts node `i` (its next generation) joining through `seeds`.
    ///
    /// # Panics
    ///
    /// On a bad configuration.
    pub fn start(&mut self, i: usize, seeds: Vec<SocketAddr>) {
        self.gens[i] += 1;
        let node = self.ids[i];
        let me = Identity {
            name: format!("n{i}"),
            generation: self.gens[i],
            addr: sim_addr(node),
        };
        let seed = self
            .world
            .seeds()
            .stream(&format!("gossip-n{i}-g{}", self.gens[i]))
            .next_u64();
        let core = Membership::new(self.cfg.clone(), self.ring.clone(), me, seed).expect("config");
        let sock = SimDatagrams::new(self.world.socket(node));
        let slot = self.disc[i].clone();
        let rec = self.rec.clone();
        self.world
            .spawn_on(node, async move {
                let d = Discovery::start(core, sock, &seeds);
                d.subscribe(move |e| rec.record(i, e));
                *slot.borrow_mut() = Some(d);
            })
            .detach();
        self.up[i] = true;
    }

    /// Crashes node `i`.
    pub fn crash(&mut self, i: usize) {
        self.world.crash(self.ids[i]);
        self.disc[i].borrow_mut().take();
        self.up[i] = false;
    }

    /// Restarts a crashed node `i` with the next generation.
    ///
    /// # Panics
    ///
    /// If the world cannot restart it.
    pub fn restart(&mut self, i: usize) {
        self.world.restart(self.ids[i]).expect("restart");
        let seeds = self.seeds();
        self.start(i, seeds);
    }

    /// Node `i`'s driver, once started.
    #[must_use]
    pub fn disc(&self, i: usize) -> Option<Discovery> {
        self.disc[i].borrow().clone()
    }

    /// Node `i` leaves gracefully; it is no longer expected in the views.
    pub fn leave(&mut self, i: usize) {
        if let Some(d) = self.disc(i) {
            self.world
                .spawn_on(self.ids[i], async move { d.leave().await })
                .detach();
        }
        self.up[i] = false;
    }

    /// Sets a fact on node `i`.
    pub fn set_fact(&self, i: usize, key: &'static str, value: Vec<u8>) {
        if let Some(d) = self.disc(i) {
            self.world
                .spawn_on(self.ids[i], async move {
                    let _ = d.set_fact(key, &value);
                })
                .detach();
        }
    }

    /// Pauses node `i` (a stalled poll loop).
    pub fn pause(&mut self, i: usize) {
        self.world.pause(self.ids[i]);
    }

    /// Resumes node `i`.
    pub fn resume(&mut self, i: usize) {
        self.world.resume(self.ids[i]);
    }

    /// The world node of index `i`.
    #[must_use]
    pub fn id(&self, i: usize) -> NodeId {
        self.ids[i]
    }

    /// Indices of the running nodes.
    #[must_use]
    pub fn live(&self) -> Vec<usize> {
        (0..self.up.len()).filter(|&i| self.up[i]).collect()
    }

    /// Whether node `i` is running.
    #[must_use]
    pub fn is_up(&self, i: usize) -> bool {
        self.up[i]
    }

    /// Marks node `i` as expected (or not) in the views without touching it.
    pub fn set_expected(&mut self, i: usize, up: bool) {
        self.up[i] = up;
    }

    /// The scenario's random stream.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// Stops (or resumes) recording fact events.
    pub fn record_facts(&self, on: bool) {
        self.rec.no_facts.set(!on);
    }

    /// Events recorded so far.
    #[must_use]
    pub fn events(&self) -> std::cell::Ref<'_, Vec<Ev>> {
        self.rec.evs.borrow()
    }

    /// Runs until virtual time `t` (nanoseconds), checking the invariants every 100 ms.
    pub fn run_to(&mut self, t: u64) {
        while self.now() < t {
            let next = (self.now() + 100 * MS).min(t);
            self.world.run_until(Instant::from_nanos(next));
            if self.now() >= self.last_check + 100 * MS {
                self.check();
            }
        }
    }

    /// Runs for `d` nanoseconds.
    pub fn run_for(&mut self, d: u64) {
        let t = self.now() + d;
        self.run_to(t);
    }

    /// Runs in `step` slices until `done` holds or `max` passes; returns the time
    /// taken, or `None`.
    pub fn run_until(
        &mut self,
        max: u64,
        step: u64,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Option<u64> {
        let t0 = self.now();
        loop {
            if done(self) {
                return Some(self.now() - t0);
            }
            if self.now() >= t0 + max {
                return None;
            }
            let t = self.now() + step;
            self.run_to(t);
        }
    }

    /// Checks the per-node invariants now.
    pub fn check(&mut self) {
        self.last_check = self.now();
        let mtu = self.cfg.mtu;
        let max_queue = self.cfg.max_queue;
        for i in 0..self.up.len() {
            let Some(d) = self.disc(i) else { continue };
            if !self.up[i] {
                continue;
            }
            let name = format!("n{i}");
            if let Some(me) = d.member(&name) {
                if me.state == State::Dead || me.state == State::Suspect {
                    self.fail(format!("n{i} sees itself {}", me.state.as_str()));
                }
                let now = (me.generation, me.incarnation);
                if now < self.last_self[i] {
                    self.fail(format!(
                        "n{i} went back from (generation, incarnation) {:?} to {now:?}",
                        self.last_self[i]
                    ));
                }
                self.last_self[i] = now;
            }
            let s = d.stats();
            if s.largest_sent > mtu {
                self.fail(format!("n{i} sent {} bytes > MTU {mtu}", s.largest_sent));
            }
            let (a, b) = d.queue_depths();
            if a > max_queue || b > max_queue {
                self.fail(format!("n{i} queues ({a}, {b}) > {max_queue}"));
            }
        }
        let too_large = self.world.net_stats().too_large;
        if too_large > 0 {
            self.fail(format!("{too_large} datagrams over the network's MTU"));
        }
    }

    fn fail(&mut self, msg: String) {
        if self.violations.len() < 5 && !self.violations.contains(&msg) {
            self.violations.push(msg);
        }
    }

    /// Whether every running node sees exactly the running nodes alive, at their
    /// current generation, and nothing else alive.
    #[must_use]
    pub fn converged(&self) -> bool {
        let live = self.live();
        let want = live.len();
        for &i in &live {
            match self.disc(i) {
                Some(d) if d.live_members() == want => {}
                _ => return false,
            }
        }
        for &i in &live {
            let Some(d) = self.disc(i) else { return false };
            for m in d.members() {
                let j = index(&m.name) as usize;
                let alive = matches!(m.state, State::Alive | State::Suspect);
                let expected = j < self.up.len() && self.up[j];
                if alive != expected || (expected && m.generation != self.gens[j]) {
                    return false;
                }
            }
        }
        true
    }

    /// Runs until the views converge (at most `max`); records a violation if not.
    pub fn settle(&mut self, max: u64) -> Option<u64> {
        let r = self.run_until(max, 500 * MS, Self::converged);
        if r.is_none() {
            let msg = format!(
                "views did not converge within {:.0} s after the last fault",
                secs(max)
            );
            self.fail(msg);
        }
        self.check();
        r
    }

    /// Starts every node at once (seeds n0..n2) and waits until the views converge.
    /// Returns the time it took.
    pub fn warm(&mut self) -> Option<u64> {
        let seeds = self.seeds();
        // Over the first second, so probe periods are not in phase across nodes.
        let mut starts: Vec<(u64, usize)> = (0..self.n).map(|i| (self.rng.below(SEC), i)).collect();
        starts.sort_unstable();
        for (t, i) in starts {
            self.run_to(t);
            self.start(i, seeds.clone());
        }
        let r = self.run_until(120 * SEC, 500 * MS, Self::converged);
        if r.is_none() {
            self.fail("cold start did not converge in 120 s".into());
        }
        // Let the start-up gossip drain.
        self.run_for(2 * SEC);
        r
    }

    /// The first time at or after `t0` that each of `observers` saw `kind` about
    /// `subj` (and `generation`, when given).
    #[must_use]
    pub fn first_seen(
        &self,
        t0: u64,
        subj: usize,
        kind: Kind,
        generation: Option<u64>,
        observers: &[usize],
    ) -> Vec<Option<u64>> {
        let mut at = vec![None; self.up.len()];
        for e in self.events().iter() {
            if e.t >= t0
                && e.subj as usize == subj
                && e.kind == kind
                && generation.is_none_or(|g| g == e.generation)
            {
                let o = e.obs as usize;
                if at[o].is_none() {
                    at[o] = Some(e.t - t0);
                }
            }
        }
        observers.iter().map(|&o| at[o]).collect()
    }

    /// A random index among `from`..`n` that is running.
    pub fn pick(&mut self, from: usize) -> usize {
        loop {
            let i = from + self.rng.below((self.n - from) as u64) as usize;
            if self.up[i] {
                return i;
            }
        }
    }
}

/// Seconds as a float.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

#[allow(clippy::cast_precision_loss)]
fn rounds(nanos: u64) -> f64 {
    nanos as f64 / ROUND as f64
}

/// The outcome of one target on one seed.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The target.
    pub target: String,
    /// The seed.
    pub seed: u64,
    /// Cluster size.
    pub n: usize,
    /// Measurements, by name.
    pub metrics: Vec<(String, f64)>,
    /// Per-run failures (target bounds every run must meet, and invariants).
    pub fails: Vec<String>,
}

impl Outcome {
    fn new(target: &str, seed: u64, n: usize) -> Self {
        Self {
            target: target.to_owned(),
            seed,
            n,
            metrics: Vec::new(),
            fails: Vec::new(),
        }
    }

    fn metric(&mut self, name: &str, v: f64) {
        self.metrics.push((name.to_owned(), v));
    }

    fn require(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.fails.push(what());
        }
    }

    fn finish(mut self, c: &mut Cluster) -> Self {
        c.check();
        self.fails.extend(c.violations.iter().cloned());
        self
    }

    /// Whether this run passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.fails.is_empty()
    }

    /// One metric by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// The command that replays this run.
    #[must_use]
    pub fn repro(&self) -> String {
        format!(
            "SIM_SEED={} cargo run --release --example gossip_sim -- --target {} --n {} --seed {}",
            self.seed, self.target, self.n, self.seed
        )
    }

    /// One tab-separated line: target, seed, n, verdict, metrics, failures.
    #[must_use]
    pub fn line(&self) -> String {
        let mut m = String::new();
        for (i, (k, v)) in self.metrics.iter().enumerate() {
            let _ = write!(m, "{}{k}={v:.4}", if i > 0 { ";" } else { "" });
        }
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.target,
            self.seed,
            self.n,
            if self.passed() { "pass" } else { "FAIL" },
            m,
            self.fails.join("; ")
        )
    }

    /// Parses [`Outcome::line`].
    #[must_use]
    pub fn parse(line: &str) -> Option<Self> {
        let mut it = line.split('\t');
        let target = it.next()?.to_owned();
        let seed = it.next()?.parse().ok()?;
        let n = it.next()?.parse().ok()?;
        let verdict = it.next()?;
        let metrics = it
            .next()
            .unwrap_or("")
            .split(';')
            .filter(|s| !s.is_empty())
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect();
        let mut fails: Vec<String> = it
            .next()
            .unwrap_or("")
            .split("; ")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if verdict != "pass" && fails.is_empty() {
            fails.push("failed".into());
        }
        Some(Self {
            target,
            seed,
            n,
            metrics,
            fails,
        })
    }
}

/// Runs one target on one seed at size `n`.
///
/// # Panics
///
/// For an unknown target.
#[must_use]
pub fn run(target: &str, seed: u64, n: usize) -> Outcome {
    match target {
        "T1" => t1(seed, n, 10_000, "T1"),
        "T1b" => t1(seed, n, 100_000, "T1b"),
        "T2" => t2(seed, n),
        "T3a" => t3a(seed, n),
        "T3b" => t3b(seed, n),
        "T3c" => t3c(seed, n),
        "T4" => t4(seed, n),
        "T4b" => t4b(seed, n),
        "T5" => t5(seed, n),
        "T6" => t6(seed, n),
        "T7" => t7(seed, n),
        "T8" => t8(seed, n),
        "T9" => t9(seed, n),
        "T10" => t10(seed, n),
        other => panic!("unknown target {other:?}"),
    }
}
