//! The membership targets T1–T10 of `design/gossip.md` §2b on the deterministic
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

use tern::Instant;
use tern::sim::{NetConfig, NodeId, SimRng, World};
use tern_discovery::{
    Discovery, GossipConfig, Identity, Key, Keyring, MemberEvent, Membership, SimDatagrams, State,
    sim_addr,
};

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
        let t = tern::executor::time::now().as_nanos();
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

/// Time until `frac` of the observers had it (None when they never did).
fn reach(times: &[Option<u64>], frac: f64) -> Option<u64> {
    let mut got: Vec<u64> = times.iter().flatten().copied().collect();
    got.sort_unstable();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let need = ((times.len() as f64) * frac).ceil() as usize;
    if need == 0 {
        return Some(0);
    }
    got.get(need - 1).copied()
}

/// Dead events about members that were running when they were recorded as dead
/// (`healthy(subj)`), after `t0`.
fn false_dead(c: &Cluster, t0: u64, healthy: impl Fn(usize) -> bool) -> usize {
    c.events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && healthy(e.subj as usize))
        .count()
}

fn t1(seed: u64, n: usize, loss: u32, name: &str) -> Outcome {
    let mut o = Outcome::new(name, seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.world.set_net(baseline_net(loss));
    let k = c.pick(0);
    let t0 = c.now();
    c.set_fact(k, "t1", b"broadcast".to_vec());
    let ae = 5 * SEC;
    c.run_for(ae + SEC);
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != k).collect();
    let seen = c.first_seen(t0, k, Kind::Fact, None, &obs);
    let r999 = reach(&seen, 0.999).map_or(f64::INFINITY, rounds);
    let r100 = reach(&seen, 1.0).map_or(f64::INFINITY, rounds);
    o.metric("rounds_999", r999);
    o.metric("rounds_100", r100);
    o.require(r100 <= rounds(ae), || {
        format!("broadcast incomplete after one anti-entropy interval: {r100} rounds")
    });
    c.world.set_net(baseline_net(10_000));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

fn t2(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T2", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let k = c.pick(3);
    c.crash(k);
    let t0 = c.now();
    let obs = c.live();
    let done = c.run_until(smax + 20 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let first = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.subj as usize == k && e.kind == Kind::Suspect)
        .map(|e| e.t - t0)
        .min();
    let all_dead = reach(&c.first_seen(t0, k, Kind::Dead, None, &obs), 1.0);
    o.metric("first_suspect_s", first.map_or(f64::INFINITY, secs));
    o.metric("all_dead_s", all_dead.map_or(f64::INFINITY, secs));
    o.require(
        done.is_some() && all_dead.is_some_and(|t| t <= smax + 10 * SEC),
        || {
            format!(
                "not dead everywhere within suspicion_max + 10 s ({:.0} s)",
                secs(smax + 10 * SEC)
            )
        },
    );
    let fd = false_dead(&c, t0, |s| s != k);
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} healthy members declared dead"));
    c.settle(smax + 30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T3a's no-fault run.
const T3A_SECS: u64 = 30;

fn t3a(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3a", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let t0 = c.now();
    let before: u64 = c
        .live()
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().suspicions)
        .sum();
    c.run_for(T3A_SECS * SEC);
    let after: u64 = c
        .live()
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().suspicions)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let per_hour = (after - before) as f64 * 3600.0 / T3A_SECS as f64;
    let fd = false_dead(&c, t0, |_| true);
    o.metric("suspicions_per_hour", per_hour);
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} false dead at 1 % loss"));
    // The same at 5 % loss, for half as long.
    c.world.set_net(baseline_net(50_000));
    let t1 = c.now();
    c.run_for(T3A_SECS / 2 * SEC);
    let fd5 = false_dead(&c, t1, |_| true);
    o.metric("false_dead_5pct", fd5 as f64);
    o.require(fd5 == 0, || format!("{fd5} false dead at 5 % loss"));
    c.world.set_net(baseline_net(10_000));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T3b's stall phase.
const T3B_SECS: u64 = 20;

/// One T3b run: false suspicions and dead of healthy members, and the time until a
/// crashed healthy member is dead everywhere.
fn t3b_one(seed: u64, n: usize, lifeguard: bool) -> (usize, usize, Option<u64>, Vec<String>) {
    let mut c = Cluster::new(seed, n, 10_000, lifeguard);
    c.warm();
    // 1–16 % of the nodes (at least one) stall; never the seeds.
    let mut plan = c.world.seeds().stream("t3b-plan");
    let pct = 1 + plan.below(16) as usize;
    let count = (n * pct / 100).max(1);
    let mut stalled = vec![false; n];
    let mut idx: Vec<usize> = (3..n).collect();
    plan.shuffle(&mut idx);
    for &i in idx.iter().take(count) {
        stalled[i] = true;
    }
    // The stall schedule: per stalled node, gaps of 0.5–5 s and stalls of 0.1–2 s.
    let t0 = c.now();
    let refuted_before: u64 = (0..n)
        .filter(|&i| !stalled[i])
        .filter_map(|i| c.disc(i))
        .map(|d| d.stats().refutations)
        .sum();
    let end = t0 + T3B_SECS * SEC;
    let mut sched: Vec<(u64, usize, bool)> = Vec::new();
    for (i, _) in stalled.iter().enumerate().filter(|(_, s)| **s) {
        let mut t = t0 + plan.below(5 * SEC);
        while t < end {
            let len = 100 * MS + plan.below(1900 * MS);
            sched.push((t, i, true));
            sched.push((t + len, i, false));
            t += len + 500 * MS + plan.below(4500 * MS);
        }
    }
    sched.sort_unstable();
    for (t, i, pause) in sched {
        c.run_to(t);
        if pause {
            c.pause(i);
        } else {
            c.resume(i);
        }
    }
    c.run_to(end + 3 * SEC);
    let healthy = |s: usize| s < n && !stalled[s];
    // A false positive at a healthy member: it had to refute a suspicion of itself.
    let refuted = |c: &Cluster| -> u64 {
        (0..n)
            .filter(|&i| healthy(i))
            .filter_map(|i| c.disc(i))
            .map(|d| d.stats().refutations)
            .sum()
    };
    let susp = usize::try_from(refuted(&c) - refuted_before).unwrap_or(usize::MAX);
    let dead = false_dead(&c, t0, healthy);
    // True failure: crash a healthy non-seed member.
    let k = idx[count..].first().copied().unwrap_or(3);
    c.crash(k);
    let t1 = c.now();
    let obs = c.live();
    let (_, smax) = c.suspicion();
    c.run_until(smax + 20 * SEC, 100 * MS, |c| {
        c.first_seen(t1, k, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let all_dead = reach(&c.first_seen(t1, k, Kind::Dead, None, &obs), 1.0);
    c.settle(smax + 30 * SEC);
    c.check();
    (susp, dead, all_dead, c.violations.clone())
}

fn t3b(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3b", seed, n);
    let (on_s, on_d, on_t, on_v) = t3b_one(seed, n, true);
    let (off_s, off_d, off_t, _) = t3b_one(seed, n, false);
    o.metric("fp_lifeguard", (on_s + on_d) as f64);
    o.metric("fp_swim", (off_s + off_d) as f64);
    o.metric("dead_lifeguard", on_d as f64);
    o.metric("dead_swim", off_d as f64);
    o.metric("detect_lifeguard_s", on_t.map_or(f64::INFINITY, secs));
    o.metric("detect_swim_s", off_t.map_or(f64::INFINITY, secs));
    o.require(on_t.is_some(), || {
        "the crashed member was not found dead (Lifeguard)".into()
    });
    // Only the Lifeguard run's invariants count: plain SWIM is the comparison.
    o.fails.extend(on_v);
    o
}

fn t3c(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3c", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let d = c.pick(3);
    let (a, b) = loop {
        let (a, b) = (c.pick(0), c.pick(0));
        if a != b && a != d && b != d {
            break (a, b);
        }
    };
    let dn = c.id(d);
    for i in 0..n {
        if i != d {
            let x = c.id(i);
            c.world.partition_oneway(x, dn);
        }
    }
    let (an, bn) = (c.id(a), c.id(b));
    c.world.partition_oneway(an, bn);
    let t0 = c.now();
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != d).collect();
    c.run_until(smax + 10 * SEC, 200 * MS, |c| {
        c.first_seen(t0, d, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let all = reach(&c.first_seen(t0, d, Kind::Dead, None, &obs), 1.0);
    c.run_for(5 * SEC);
    // Healthy: neither the detached node, nor as seen by it.
    let healthy_dead = c
        .events()
        .iter()
        .filter(|e| {
            e.t >= t0 && e.kind == Kind::Dead && e.subj as usize != d && e.obs as usize != d
        })
        .count();
    o.metric("healthy_dead", healthy_dead as f64);
    o.metric("detached_dead_s", all.map_or(f64::INFINITY, secs));
    o.require(healthy_dead == 0, || {
        format!("{healthy_dead} healthy members declared dead")
    });
    o.require(all.is_some_and(|t| t <= smax), || {
        format!(
            "the detached node was not dead everywhere within suspicion_max ({:.0} s)",
            secs(smax)
        )
    });
    c.world.heal_all();
    c.settle(smax + 60 * SEC);
    o.finish(&mut c)
}

fn t4(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T4", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    let seeds = c.seeds();
    // n1 and n2 are dead seeds: never started. The others start over the first
    // second, n0 last at 2 s.
    let mut starts: Vec<(u64, usize)> = (3..n).map(|i| (c.rng().below(SEC), i)).collect();
    starts.sort_unstable();
    for (t, i) in starts {
        c.run_to(t);
        c.start(i, seeds.clone());
    }
    c.run_to(2 * SEC);
    c.start(0, seeds);
    let took = c.run_until(120 * SEC, 100 * MS, Cluster::converged);
    let t = took.map(|d| d + 2 * SEC);
    // Disjoint clusters: distinct views of who is alive.
    let mut views: Vec<Vec<String>> = Vec::new();
    for i in c.live() {
        if let Some(d) = c.disc(i) {
            let v: Vec<String> = d
                .members()
                .into_iter()
                .filter(|m| !m.state.is_down())
                .map(|m| m.name)
                .collect();
            if !views.contains(&v) {
                views.push(v);
            }
        }
    }
    o.metric("all_alive_s", t.map_or(f64::INFINITY, secs));
    o.metric("clusters", views.len() as f64);
    o.require(t.is_some_and(|t| t <= 30 * SEC), || {
        "not every node saw every live node within 30 s".into()
    });
    o.require(views.len() == 1, || {
        format!("{} disjoint views", views.len())
    });
    o.finish(&mut c)
}

fn t4b(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T4b", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let j = c.add();
    let t0 = c.now();
    let seed0 = vec![sim_addr(c.id(0))];
    c.start(j, seed0);
    let want = (c.live().len() * 99).div_ceil(100);
    let sees = c.run_until(10 * SEC, 20 * MS, |c| {
        c.disc(j).is_some_and(|d| d.live_members() >= want)
    });
    c.run_to(t0 + 6 * SEC);
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != j).collect();
    let seen = reach(&c.first_seen(t0, j, Kind::Up, None, &obs), 1.0);
    o.metric("joiner_sees_99_s", sees.map_or(f64::INFINITY, secs));
    o.metric("all_see_joiner_rounds", seen.map_or(f64::INFINITY, rounds));
    o.require(sees.is_some(), || {
        "the joiner never saw 99 % of members".into()
    });
    o.require(seen.is_some(), || {
        "not every member saw the joiner in 6 s".into()
    });
    c.settle(30 * SEC);
    o.finish(&mut c)
}

fn t5(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T5", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let k = c.pick(3);
    c.crash(k);
    c.run_for(500 * MS);
    c.restart(k);
    let t0 = c.now();
    let generation = c.gens[k];
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != k).collect();
    c.run_until(30 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Up, Some(generation), &obs)
            .iter()
            .all(Option::is_some)
    });
    let all = reach(&c.first_seen(t0, k, Kind::Up, Some(generation), &obs), 1.0);
    o.metric(
        "all_new_generation_rounds",
        all.map_or(f64::INFINITY, rounds),
    );
    o.require(all.is_some(), || {
        "the new generation was not accepted everywhere in 30 s (a conflict stall)".into()
    });
    // The old generation ends (Down about it is expected); the new one must not.
    let fd = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.generation >= generation)
        .count();
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} dead after the restart"));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

fn t6(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T6", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let k = c.pick(3);
    let t0 = c.now();
    c.leave(k);
    let obs = c.live();
    c.run_until(20 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Left, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    c.run_for(10 * SEC);
    let left = c.first_seen(t0, k, Kind::Left, None, &obs);
    let all = reach(&left, 1.0);
    #[allow(clippy::cast_precision_loss)]
    let frac = left.iter().flatten().count() as f64 / obs.len() as f64;
    let failed = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.subj as usize == k)
        .count();
    o.metric("left_rounds", all.map_or(f64::INFINITY, rounds));
    o.metric("recorded_left", frac);
    o.metric("recorded_failed", failed as f64);
    o.require(frac >= 1.0, || {
        format!("only {:.1} % recorded left", frac * 100.0)
    });
    o.require(failed == 0, || format!("{failed} recorded it as failed"));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// How long T7's partition lasts beyond half of suspicion_max (with many independent
/// confirmations, suspicions end near suspicion_min, so both sides have declared each
/// other dead by then; `side_a_live_before_heal` shows it).
const T7_EXTRA_SECS: u64 = 5;

fn t7(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T7", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let half = n / 2;
    for a in 0..half {
        for b in half..n {
            let (x, y) = (c.id(a), c.id(b));
            c.world.partition(x, y);
        }
    }
    let len = smax / 2 + T7_EXTRA_SECS * SEC;
    c.run_for(len / 2);
    // A fact written on each side during the partition must merge.
    let fa = c.rng().below(half as u64) as usize;
    let fb = half + c.rng().below((n - half) as u64) as usize;
    c.set_fact(fa, "side", b"a".to_vec());
    c.set_fact(fb, "side", b"b".to_vec());
    c.run_for(len - len / 2);
    let split = c.disc(0).map_or(0, |d| d.live_members());
    c.world.heal_all();
    let took = c.run_until(180 * SEC, 500 * MS, |c| {
        c.converged()
            && c.live().iter().all(|&i| {
                c.disc(i).is_some_and(|d| {
                    d.member(&format!("n{fa}"))
                        .is_some_and(|m| m.fact("side") == Some("a"))
                        && d.member(&format!("n{fb}"))
                            .is_some_and(|m| m.fact("side") == Some("b"))
                })
            })
    });
    o.metric("partition_s", secs(len));
    o.metric("side_a_live_before_heal", split as f64);
    o.metric("reconverge_s", took.map_or(f64::INFINITY, secs));
    o.require(took.is_some(), || {
        "no re-convergence within 180 s of the heal".into()
    });
    o.finish(&mut c)
}

fn t8(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T8", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.run_for(10 * SEC);
    let live = c.live();
    let snap = |c: &Cluster| -> Vec<(u64, u64)> {
        live.iter()
            .map(|&i| {
                c.disc(i)
                    .map_or((0, 0), |d| (d.stats().bytes_sent, d.stats().bytes_received))
            })
            .collect()
    };
    let a = snap(&c);
    let window = 10;
    c.run_for(window * SEC);
    let b = snap(&c);
    let mut total = 0.0;
    let mut max_out: f64 = 0.0;
    for (x, y) in a.iter().zip(&b) {
        #[allow(clippy::cast_precision_loss)]
        let (out, inn) = (
            (y.0 - x.0) as f64 / window as f64,
            (y.1 - x.1) as f64 / window as f64,
        );
        total += out + inn;
        max_out = max_out.max(out);
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = total / live.len() as f64;
    let largest = live
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().largest_sent)
        .max()
        .unwrap_or(0);
    o.metric("bytes_per_s_in_out", mean);
    o.metric("max_out_bytes_per_s", max_out);
    o.metric("largest_datagram", largest as f64);
    o.metric("too_large", c.world.net_stats().too_large as f64);
    o.require(mean <= 2048.0, || {
        format!("{mean:.0} B/s per node > 2 KB/s")
    });
    o.require(max_out <= 21.0 * 1024.0, || {
        format!("{max_out:.0} B/s out > 21 KB/s")
    });
    o.require(largest <= 1400, || format!("a {largest}-byte datagram"));
    o.finish(&mut c)
}

/// Simulated duration of T9's storm.
const T9_SECS: u64 = 12;

fn t9(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T9", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.record_facts(false);
    let t0 = c.now();
    // Every node writes "capacity" once a second, each at its own phase; value v of
    // node i was written at set[i][v].
    let phase: Vec<u64> = (0..n).map(|_| c.rng().below(SEC)).collect();
    let mut set: Vec<Vec<u64>> = vec![Vec::new(); n];
    let leaver = c.pick(3);
    let mut left_at = None;
    let mut stale_max: u64 = 0;
    for s in 0..T9_SECS * 10 {
        let slice = t0 + s * 100 * MS;
        for i in 0..n {
            if c.is_up(i) && (phase[i] / (100 * MS)) == s % 10 {
                let v = set[i].len();
                set[i].push(c.now());
                c.set_fact(i, "capacity", format!("{v}").into_bytes());
            }
        }
        c.run_to(slice + 100 * MS);
        if s == 30 {
            c.leave(leaver);
            left_at = Some(c.now());
        }
        if s == 80 || s == T9_SECS * 10 - 1 {
            // Staleness: how long ago the value each node sees was replaced.
            let now = c.now();
            for o_i in c.live() {
                let Some(d) = c.disc(o_i) else { continue };
                for m in d.members() {
                    let j = index(&m.name) as usize;
                    if j == o_i || j >= n || !c.is_up(j) || set[j].is_empty() {
                        continue;
                    }
                    let seen: Option<usize> = m.fact("capacity").and_then(|v| v.parse().ok());
                    let next = seen.map_or(0, |v| v + 1);
                    if let Some(&replaced) = set[j].get(next) {
                        stale_max = stale_max.max(now.saturating_sub(replaced));
                    }
                }
            }
        }
    }
    let obs: Vec<usize> = c.live();
    let t_leave = left_at.unwrap_or(t0);
    let left = reach(&c.first_seen(t_leave, leaver, Kind::Left, None, &obs), 1.0);
    o.metric("leave_rounds", left.map_or(f64::INFINITY, rounds));
    o.metric("fact_stale_max_s", secs(stale_max));
    o.require(left.is_some_and(|t| t <= 15 * ROUND), || {
        "the leave did not reach everyone in 15 rounds during the storm".into()
    });
    o.require(stale_max <= 10 * SEC, || {
        format!(
            "facts {:.1} s stale > 2 anti-entropy intervals",
            secs(stale_max)
        )
    });
    c.record_facts(true);
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T10's stalls.
const T10_SECS: u64 = 20;

fn t10(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T10", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let s = c.pick(3);
    let t0 = c.now();
    let mut max_health = 0;
    let mut stalls = 0;
    while c.now() < t0 + T10_SECS * SEC {
        let gap = 2 * SEC + c.rng().below(3 * SEC);
        let len = 500 * MS + c.rng().below(2500 * MS);
        c.run_for(gap);
        c.pause(s);
        c.run_for(len);
        c.resume(s);
        stalls += 1;
        c.run_for(300 * MS);
        max_health = max_health.max(c.disc(s).map_or(0, |d| d.health()));
    }
    let fd = false_dead(&c, t0, |x| x != s);
    let dead_s = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.subj as usize == s)
        .count();
    // Recovery: the score comes down one step per good probe, each probe period
    // stretched by the score (Lifeguard), so from 8 it takes about 45 s.
    c.run_until(60 * SEC, 500 * MS, |c| {
        c.disc(s).is_some_and(|d| d.health() == 0)
    });
    let end_health = c.disc(s).map_or(0, |d| d.health());
    o.metric("stalls", f64::from(stalls));
    o.metric("healthy_dead", fd as f64);
    o.metric("stalled_node_dead", dead_s as f64);
    o.metric("health_max", f64::from(max_health));
    o.metric("health_after_60s", f64::from(end_health));
    o.require(fd == 0, || format!("{fd} healthy members declared dead"));
    o.require(max_health > 0, || {
        "the stalled node's health score never rose".into()
    });
    o.require(end_health == 0, || {
        format!("health still {end_health} 60 s after")
    });
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// Percentile `p` (0–1) of `v` (nearest rank).
#[must_use]
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

fn values(runs: &[Outcome], name: &str) -> Vec<f64> {
    runs.iter().filter_map(|o| o.get(name)).collect()
}

/// The aggregate checks of one target over its runs: (what, measured, pass).
#[must_use]
pub fn judge(target: &str, runs: &[Outcome]) -> Vec<(String, String, bool)> {
    let n = runs.first().map_or(0, |o| o.n);
    #[allow(clippy::cast_precision_loss)]
    let scale = (n as f64).log10().max(1.0);
    let smin = 4.0 * scale;
    let smax = 6.0 * smin;
    let mut out = Vec::new();
    let mut check = |what: &str, v: f64, ok: bool| {
        out.push((what.to_owned(), format!("{v:.2}"), ok));
    };
    let p = |name: &str, q: f64| pct(&values(runs, name), q);
    let mean = |name: &str| {
        let v = values(runs, name);
        #[allow(clippy::cast_precision_loss)]
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        m
    };
    let sum = |name: &str| values(runs, name).iter().sum::<f64>();
    match target {
        "T1" => {
            check(
                "99.9 % reached in <= 9 rounds (p99)",
                p("rounds_999", 0.99),
                p("rounds_999", 0.99) <= 9.0,
            );
            check(
                "100 % reached in <= 12 rounds (p99)",
                p("rounds_100", 0.99),
                p("rounds_100", 0.99) <= 12.0,
            );
        }
        "T1b" => {
            check(
                "10 % loss: 100 % in <= 13 rounds (p99)",
                p("rounds_100", 0.99),
                p("rounds_100", 0.99) <= 13.0,
            );
        }
        "T2" => {
            check(
                "first suspicion mean <= 1.6 T",
                mean("first_suspect_s"),
                mean("first_suspect_s") <= 1.6,
            );
            check(
                "first suspicion p99 <= 5 T",
                p("first_suspect_s", 0.99),
                p("first_suspect_s", 0.99) <= 5.0,
            );
            check(
                &format!(
                    "all dead median <= suspicion_min + 4 s ({:.0} s)",
                    smin + 4.0
                ),
                p("all_dead_s", 0.5),
                p("all_dead_s", 0.5) <= smin + 4.0,
            );
            check(
                "all dead p99 <= 25 s",
                p("all_dead_s", 0.99),
                p("all_dead_s", 0.99) <= 25.0,
            );
            check(
                &format!(
                    "all dead max <= suspicion_max + 10 s ({:.0} s)",
                    smax + 10.0
                ),
                p("all_dead_s", 1.0),
                p("all_dead_s", 1.0) <= smax + 10.0,
            );
        }
        "T3a" => {
            check(
                "false dead at 1 % loss (total) = 0",
                sum("false_dead"),
                sum("false_dead") == 0.0,
            );
            check(
                "suspicions per hour (mean) <= 10",
                mean("suspicions_per_hour"),
                mean("suspicions_per_hour") <= 10.0,
            );
            check(
                "false dead at 5 % loss (total) = 0",
                sum("false_dead_5pct"),
                sum("false_dead_5pct") == 0.0,
            );
        }
        "T3b" => {
            let (on, off) = (sum("fp_lifeguard"), sum("fp_swim"));
            let ratio = if on == 0.0 { f64::INFINITY } else { off / on };
            check(
                "false positives SWIM / Lifeguard >= 50 (totals)",
                ratio,
                ratio >= 50.0 || (on == 0.0 && off == 0.0),
            );
            let (lg, sw) = (p("detect_lifeguard_s", 0.5), p("detect_swim_s", 0.5));
            check(
                "median detection, Lifeguard / SWIM <= 1.2",
                lg / sw,
                lg <= 1.2 * sw,
            );
        }
        "T3c" => {
            check(
                "healthy declared dead (total) = 0",
                sum("healthy_dead"),
                sum("healthy_dead") == 0.0,
            );
            check(
                &format!("detached dead everywhere max <= suspicion_max ({smax:.0} s)"),
                p("detached_dead_s", 1.0),
                p("detached_dead_s", 1.0) <= smax,
            );
        }
        "T4" => {
            check(
                "all see all alive max <= 30 s",
                p("all_alive_s", 1.0),
                p("all_alive_s", 1.0) <= 30.0,
            );
            check(
                "clusters max = 1",
                p("clusters", 1.0),
                p("clusters", 1.0) == 1.0,
            );
        }
        "T4b" => {
            check(
                "joiner sees 99 % p99 <= 3 s",
                p("joiner_sees_99_s", 0.99),
                p("joiner_sees_99_s", 0.99) <= 3.0,
            );
            check(
                "all see joiner p99 <= 12 rounds",
                p("all_see_joiner_rounds", 0.99),
                p("all_see_joiner_rounds", 0.99) <= 12.0,
            );
        }
        "T5" => {
            check(
                "new generation everywhere p99 <= 12 rounds",
                p("all_new_generation_rounds", 0.99),
                p("all_new_generation_rounds", 0.99) <= 12.0,
            );
        }
        "T6" => {
            check(
                "recorded left everywhere p99 <= 12 rounds",
                p("left_rounds", 0.99),
                p("left_rounds", 0.99) <= 12.0,
            );
            check(
                "recorded failed (total) = 0",
                sum("recorded_failed"),
                sum("recorded_failed") == 0.0,
            );
        }
        "T7" => {
            check(
                "re-convergence max <= 60 s",
                p("reconverge_s", 1.0),
                p("reconverge_s", 1.0) <= 60.0,
            );
        }
        "T8" => {
            check(
                "bytes/s per node in+out (max over runs) <= 2048",
                p("bytes_per_s_in_out", 1.0),
                p("bytes_per_s_in_out", 1.0) <= 2048.0,
            );
            check(
                "max out per node <= 21 KB/s",
                p("max_out_bytes_per_s", 1.0),
                p("max_out_bytes_per_s", 1.0) <= 21.0 * 1024.0,
            );
            check(
                "largest datagram <= 1400",
                p("largest_datagram", 1.0),
                p("largest_datagram", 1.0) <= 1400.0,
            );
        }
        "T9" => {
            check(
                "leave during storm everywhere max <= 15 rounds",
                p("leave_rounds", 1.0),
                p("leave_rounds", 1.0) <= 15.0,
            );
            check(
                "fact staleness max <= 10 s",
                p("fact_stale_max_s", 1.0),
                p("fact_stale_max_s", 1.0) <= 10.0,
            );
        }
        "T10" => {
            check(
                "healthy declared dead (total) = 0",
                sum("healthy_dead"),
                sum("healthy_dead") == 0.0,
            );
            check(
                "health rose (min over runs) > 0",
                p("health_max", 0.0),
                p("health_max", 0.0) > 0.0,
            );
        }
        _ => {}
    }
    out
}

/// The summary of one target: every metric's p50/p99/max, and the aggregate checks.
/// Returns the text and whether the target passed (every run and every check).
#[must_use]
pub fn summary(target: &str, runs: &[Outcome]) -> (String, bool) {
    let mut s = String::new();
    let failed = runs.iter().filter(|o| !o.passed()).count();
    let n = runs.first().map_or(0, |o| o.n);
    let _ = writeln!(
        s,
        "{target} (N={n}, {} seeds): {} runs passed, {failed} failed",
        runs.len(),
        runs.len() - failed
    );
    let mut names: Vec<&str> = Vec::new();
    for o in runs {
        for (k, _) in &o.metrics {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    for k in names {
        let v = values(runs, k);
        let _ = writeln!(
            s,
            "  {k:<28} p50 {:>10.3}  p99 {:>10.3}  max {:>10.3}",
            pct(&v, 0.5),
            pct(&v, 0.99),
            pct(&v, 1.0)
        );
    }
    let mut ok = failed == 0 && !runs.is_empty();
    for (what, v, pass) in judge(target, runs) {
        let _ = writeln!(s, "  [{}] {what}: {v}", if pass { "pass" } else { "FAIL" });
        ok &= pass;
    }
    (s, ok)
}
