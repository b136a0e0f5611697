//! A five-node application under the simulator, with a partition, a crash and a stop
//! in the middle: the scenario behind `examples/sim_cluster.rs` and the seed-sweep
//! tests.
//!
//! ```text
//!            ┌──Work (tell) / Job (ask)──▶ w1: worker
//! front ─────┼──────────────────────────▶ w2: worker   (partitioned from front, then healed)
//! (a round   ├──────────────────────────▶ w3: worker   (crashes, restarts as generation 1)
//!  per tick) └──────────────────────────▶ w4: worker   (stopped for good near the end)
//! ```
//!
//! The front sends one message per worker per round, numbered by round: a tell, or every
//! third round an ask whose answer echoes the number. Every send, handling, stop and
//! answer goes into a [`History`], which checks the delivery promises (per-pair FIFO, no
//! duplicates, nothing invented, nothing after a stop, answers matched to their asks) at
//! every record, and a world invariant stops the run at the first violation.
//!
//! The application is a [`tern::app::App`] with two components, `front` and `worker`,
//! and each node is one of its containers, started by [`SimCluster`] from the
//! configuration file it would be deployed with (`[gossip]` included: the nodes find
//! each other from the seed list, front and w1, over the simulator's datagrams). The
//! wiring the run checks is the wiring `app node --config` runs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::check::{History, HistorySummary, OrderViolation};
use tern::remote::prelude::*;

/// What to run: the seed, the size and the length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// The root seed: scheduling, network, and each node's application draws.
    pub seed: u64,
    /// Worker nodes (at least 4: the faults use w2, w3 and w4).
    pub workers: usize,
    /// Virtual length of the run.
    pub duration: Duration,
    /// Time between the front's rounds.
    pub period: Duration,
    /// Every this many rounds a worker gets an ask instead of a tell.
    pub ask_every: u64,
    /// Deadline of each ask.
    pub ask_timeout: Duration,
    /// Mean time a worker spends per message (exponential): a quarter charged as CPU,
    /// the rest awaited as I/O.
    pub work_mean: Duration,
    /// A planted bug, to see the checkers catch it: at this round the front sends the
    /// previous round's message to w1 again (a careless retry).
    pub plant_resend_at: Option<u64>,
}

impl Scenario {
    /// The example's scenario: 4 workers, 60 simulated seconds, a round every 20 ms.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            workers: 4,
            duration: Duration::from_secs(60),
            period: Duration::from_millis(20),
            ask_every: 3,
            ask_timeout: Duration::from_millis(500),
            work_mean: Duration::from_millis(12),
            plant_resend_at: None,
        }
    }

    /// A shorter run for sweeps in debug builds: 12 simulated seconds, a round every
    /// 50 ms, the same faults at the same fractions of the run.
    #[must_use]
    pub fn short(seed: u64) -> Self {
        Self {
            duration: Duration::from_secs(12),
            period: Duration::from_millis(50),
            ..Self::new(seed)
        }
    }

    /// A hash of everything but the seed: with the seed, it names the run exactly.
    #[must_use]
    pub fn config_hash(&self) -> String {
        let mut h = TraceHash::new();
        h.record(
            format!(
                "{:?}",
                Self {
                    seed: 0,
                    ..self.clone()
                }
            )
            .as_bytes(),
        );
        h.hex()[..12].to_owned()
    }

    fn at(&self, num: u32, den: u32) -> Instant {
        Instant::ZERO + self.duration * num / den
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// Tells the front handed to the network.
    pub tells: u64,
    /// Asks the front made.
    pub asks: u64,
    /// Asks answered.
    pub answered: u64,
    /// Failed calls by error kind (asks and refused tells).
    pub errors: BTreeMap<String, u64>,
    /// Messages each worker node handled.
    pub handled: BTreeMap<String, u64>,
    /// Messages each worker handled after the fault aimed at it was over (healed,
    /// restarted); must not be zero for w2 and w3.
    pub handled_after_recovery: BTreeMap<String, u64>,
    /// Ask latencies in virtual microseconds: p50, p99, max.
    pub latency_us: (u64, u64, u64),
    /// The front node's counters.
    pub front: Option<NodeStats>,
    /// Busy fraction of each node's thread (charged work over virtual time).
    pub busy: BTreeMap<String, f64>,
    /// Each worker's mailbox depth sampled every 50 ms of virtual time: mean, deepest.
    pub mailbox_depth: BTreeMap<String, (f64, usize)>,
    /// The delivery checker's verdict.
    pub history: Result<HistorySummary, OrderViolation>,
    /// A world violation (invariant, livelock, time limit), if any.
    pub violation: Option<String>,
    /// What the run expected and did not see.
    pub unmet: Vec<String>,
    /// The faults, with their virtual times.
    pub timeline: Vec<String>,
    /// Scheduler steps taken.
    pub steps: u64,
    /// Events in the canonical trace (polls, timer firings, deliveries, faults).
    pub events: u64,
    /// Virtual time when the run ended.
    pub virtual_end: Instant,
    /// The canonical trace hash.
    pub trace_hash: String,
}

impl Report {
    /// Whether every promise and expectation held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.history.is_ok() && self.violation.is_none() && self.unmet.is_empty()
    }

    /// The line to paste to replay this run.
    #[must_use]
    pub fn repro(&self) -> String {
        let s = &self.scenario;
        let base = Scenario {
            plant_resend_at: None,
            ..s.clone()
        };
        let mut flags = String::new();
        if base == Scenario::short(s.seed) {
            flags.push_str(" --short");
        }
        if let Some(r) = s.plant_resend_at {
            flags.push_str(&format!(" --plant-resend {r}"));
        }
        format!(
            "SIM_SEED={} SIM_SCENARIO_HASH={} cargo run --release --example sim_cluster -- --seed {}{flags}",
            s.seed,
            s.config_hash(),
            s.seed,
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scenario;
        writeln!(
            f,
            "seed {}: {} workers, {:?} simulated, a round every {:?}",
            s.seed, s.workers, s.duration, s.period
        )?;
        for t in &self.timeline {
            writeln!(f, "  {t}")?;
        }
        writeln!(
            f,
            "front: {} tells sent, {} asks, {} answered; ask latency p50 {} µs, p99 {} µs, max {} µs",
            self.tells,
            self.asks,
            self.answered,
            self.latency_us.0,
            self.latency_us.1,
            self.latency_us.2
        )?;
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        writeln!(
            f,
            "typed errors seen: {}",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            }
        )?;
        let handled: Vec<String> = self
            .handled
            .iter()
            .map(|(w, n)| {
                format!(
                    "{w} {n} (busy {:.1}%)",
                    self.busy.get(w).copied().unwrap_or(0.0) * 100.0
                )
            })
            .collect();
        writeln!(f, "handled: {}", handled.join(", "))?;
        let depths: Vec<String> = self
            .mailbox_depth
            .iter()
            .map(|(w, (mean, max))| format!("{w} mean {mean:.3} max {max}"))
            .collect();
        writeln!(
            f,
            "mailbox depth (sampled every 50 ms of virtual time): {}",
            depths.join(", ")
        )?;
        if let Some(n) = &self.front {
            writeln!(
                f,
                "front node: {} tells expired waiting for a name, {} frames refused by the transport, {} directory updates",
                n.pending_expired, n.send_failures, n.directory_updates
            )?;
        }
        match &self.history {
            Ok(h) => writeln!(
                f,
                "delivery checks: passed ({} sent, {} handled, {} answered; per-pair FIFO, no duplicates, nothing after stop, answers matched)",
                h.sent, h.handled, h.answered
            )?,
            Err(v) => writeln!(f, "delivery checks: FAILED: {v}")?,
        }
        if let Some(v) = &self.violation {
            writeln!(f, "world stopped: {v}")?;
        }
        for u in &self.unmet {
            writeln!(f, "unmet: {u}")?;
        }
        writeln!(
            f,
            "steps: {}, trace events: {}, virtual end: {:.3} s",
            self.steps,
            self.events,
            self.virtual_end.as_nanos() as f64 / 1e9
        )
    }
}

// ----- the application -----

/// A unit of work, told.
#[derive(Debug, Serialize, Deserialize)]
pub struct Work {
    /// The round.
    pub seq: u64,
}
impl RemoteMessage for Work {
    const NAME: &'static str = "cluster.v1.Work";
    type Codec = Postcard;
}

/// A unit of work, asked; the answer echoes the round.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    /// The round.
    pub seq: u64,
}
impl RemoteMessage for Job {
    const NAME: &'static str = "cluster.v1.Job";
    type Codec = Postcard;
}

/// A job's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    /// The round it answers.
    pub seq: u64,
    /// The worker's node.
    pub node: String,
}

/// Does the work, charging virtual CPU time to its node.
#[derive(Debug)]
pub struct Worker {
    node: String,
    rng: SimRng,
    work_mean: u64,
    history: Rc<History>,
    handled: Handled,
}

/// When each worker node handled each message (virtual nanoseconds).
type Handled = Rc<RefCell<BTreeMap<String, Vec<u64>>>>;

/// Mailbox depth samples per worker node: (samples, sum of depths, deepest).
type Depths = Rc<RefCell<BTreeMap<String, (u64, u64, usize)>>>;

/// How often workers sample their mailbox depth, in virtual time.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
impl Actor for Worker {}

impl Worker {
    fn work(&mut self, seq: u64) {
        self.history.handled("front", &self.node, seq);
        let now = time::now().as_nanos();
        self.handled
            .borrow_mut()
            .entry(self.node.clone())
            .or_default()
            .push(now);
    }

    /// A quarter of the work is CPU (the node's thread is busy), three quarters wait
    /// on I/O (the component is busy, its node is not, so its mailbox fills).
    async fn compute(&mut self) {
        let cpu = self.rng.exp_nanos(self.work_mean / 4);
        let io = self.rng.exp_nanos(self.work_mean - self.work_mean / 4);
        tern::sim::charge(Duration::from_nanos(cpu));
        time::sleep(Duration::from_nanos(io)).await;
    }
}

impl Handler<Work> for Worker {
    type Reply = ();
    async fn handle(&mut self, m: Work, _: &mut Context<Self>) {
        self.work(m.seq);
        self.compute().await;
    }
}

impl Handler<Job> for Worker {
    type Reply = Done;
    async fn handle(&mut self, m: Job, _: &mut Context<Self>) -> Done {
        self.work(m.seq);
        self.compute().await;
        Done {
            seq: m.seq,
            node: self.node.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct FrontLog {
    tells: u64,
    asks: u64,
    answered: u64,
    errors: BTreeMap<String, u64>,
    latencies: Vec<u64>,
    node: Option<Node>,
}

fn kind(e: &CallError) -> String {
    match e {
        CallError::UnknownName { .. } => "unknown-name".into(),
        CallError::NotHosted { .. } => "not-hosted".into(),
        CallError::PendingFull => "pending-full".into(),
        CallError::MailboxFull => "mailbox-full".into(),
        CallError::Stopped => "stopped".into(),
        CallError::Timeout => "timeout".into(),
        CallError::HandlerPanicked(_) => "handler-panicked".into(),
        CallError::Unreachable(_) => "unreachable".into(),
        CallError::PeerLost(_) => "peer-lost".into(),
        CallError::Codec(_) => "codec".into(),
        other => format!("{other}"),
    }
}

/// Fans a round out to every worker.
struct Front {
    workers: Vec<(String, Ref<Worker>)>,
    round: u64,
    ask_every: u64,
    ask_timeout: Duration,
    plant_resend_at: Option<u64>,
    history: Rc<History>,
    log: Rc<RefCell<FrontLog>>,
}
impl Actor for Front {}

#[derive(Clone)]
struct Round;

impl Handler<Round> for Front {
    type Reply = ();
    async fn handle(&mut self, _: Round, _: &mut Context<Self>) {
        self.round += 1;
        let seq = self.round;
        if self.plant_resend_at == Some(seq)
            && let Some((_, w1)) = self.workers.first()
        {
            // The planted bug: a retry of the last round's message, never recorded as
            // sent again.
            let _ = w1.try_tell(Work { seq: seq - 1 });
        }
        for (name, worker) in &self.workers {
            self.history.sent("front", name, seq);
            if seq.is_multiple_of(self.ask_every) {
                self.log.borrow_mut().asks += 1;
                let ask = worker.ask(Job { seq }).timeout(self.ask_timeout);
                let (history, log, name) = (self.history.clone(), self.log.clone(), name.clone());
                spawn_task(async move {
                    let start = time::now();
                    let outcome = ask.await;
                    let mut log = log.borrow_mut();
                    match outcome {
                        Ok(done) => {
                            history.answered("front", &name, seq, done.seq);
                            log.answered += 1;
                            let us = time::now().saturating_duration_since(start).as_micros();
                            log.latencies.push(u64::try_from(us).unwrap_or(u64::MAX));
                        }
                        Err(e) => {
                            *log.errors
                                .entry(format!("{name} {}", kind(&e)))
                                .or_default() += 1
                        }
                    }
                })
                .detach();
            } else {
                match worker.try_tell(Work { seq }) {
                    Ok(()) => self.log.borrow_mut().tells += 1,
                    Err(u) => {
                        let key = format!("{name} {}", kind(&u.reason));
                        *self.log.borrow_mut().errors.entry(key).or_default() += 1;
                    }
                }
            }
        }
    }
}

// ----- the world -----

#[derive(Debug, Clone, Copy)]
enum Fault {
    Partition,
    Heal,
    Crash,
    Restart,
    StopW4,
}

fn end_of(s: &Scenario) -> Instant {
    Instant::ZERO + s.duration
}

/// The gossip key of the example's cluster (a deployment reads its own from a file).
const KEY: &str = "1:5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// Container `i`'s configuration, written as its deployed file would be: the front
/// (i = 0) and w1 are the gossip seeds; everyone else finds everyone through them.
fn config_file(name: &str, i: usize, generation: u64, host: &str) -> String {
    format!(
        r#"
[node]
name = "{name}"
generation = {generation}
listen = ["tcp://10.0.0.{host_ip}:7100"]

[components]
host = [{host}]

[gossip]
bind = "10.0.0.{host_ip}:7946"
seeds = ["10.0.0.1:7946", "10.0.0.2:7946"]
cluster = "sim-cluster"
keys = ["{KEY}"]
"#,
        host_ip = i + 1,
    )
}

/// Container `i`'s settings, parsed and checked as `app node --config` would.
///
/// # Panics
///
/// If the example's own configuration is invalid (a bug in this file).
fn settings(name: &str, i: usize, generation: u64) -> NodeSettings {
    let host = if i == 0 { "\"front\"" } else { "\"worker\"" };
    let text = config_file(name, i, generation, host);
    Layered::from_toml(&text, &format!("{name}.toml"))
        .and_then(|l| l.node(generation))
        .unwrap_or_else(|e| panic!("the example's configuration of {name}: {e}"))
}

/// The application: the components a deployment would run, here with the checkers
/// they report to.
fn application(s: &Scenario, seeds: SeedTree, checks: &Checks, log: &Rc<RefCell<FrontLog>>) -> App {
    let work_mean = u64::try_from(s.work_mean.as_nanos()).unwrap_or(u64::MAX);
    let (history, handled, depths) = checks.clone();
    let front = {
        let (history, log) = (history.clone(), log.clone());
        let (ask_every, ask_timeout, period) = (s.ask_every, s.ask_timeout, s.period);
        let plant_resend_at = s.plant_resend_at;
        let names: Vec<String> = (1..=s.workers).map(|i| format!("w{i}")).collect();
        move |node: &Node| {
            log.borrow_mut().node = Some(node.clone());
            let refs = names
                .iter()
                .map(|w| (w.clone(), node.lookup_on::<Worker>(w, "worker")))
                .collect();
            let front = spawn(Front {
                workers: refs,
                round: 0,
                ask_every,
                ask_timeout,
                plant_resend_at,
                history: history.clone(),
                log: log.clone(),
            });
            // `send_every` lives in the context; a small driver task does the same.
            spawn_task(async move {
                loop {
                    time::sleep(period).await;
                    if front.try_tell(Round).is_err() {
                        break;
                    }
                }
            })
            .detach();
            Ok(())
        }
    };
    App::new("sim-cluster")
        .component("front", front)
        .component("worker", move |node: &Node| {
            let name = node.name().to_owned();
            let generation = Environment::current()
                .get::<NodeSettings>()
                .map_or(0, |c| c.generation);
            let worker = spawn(Worker {
                node: name.clone(),
                rng: seeds.stream(&format!("app/{name}/{generation}")),
                work_mean,
                history: history.clone(),
                handled: handled.clone(),
            });
            // Registered for the fault script's "stop the worker on w4"; a container's
            // runtime is fresh, so the name is free unless the application is wrong.
            tern::register("worker", &worker).map_err(|_| NodeError::NameTaken("worker".into()))?;
            drop(
                node.export("worker", &worker)?
                    .accept::<Work>()
                    .accept::<Job>(),
            );
            // Sample the mailbox depth in virtual time, as an operator's gauge would.
            let depths = depths.clone();
            spawn_task(async move {
                loop {
                    time::sleep(SAMPLE_EVERY).await;
                    let queued = worker.stats().queued;
                    let mut d = depths.borrow_mut();
                    let e = d.entry(name.clone()).or_default();
                    e.0 += 1;
                    e.1 += queued as u64;
                    e.2 = e.2.max(queued);
                }
            })
            .detach();
            Ok(())
        })
}

/// The checkers every component reports to.
type Checks = (Rc<History>, Handled, Depths);

/// Runs the scenario and reports what happened: the application as one simulated
/// container per node ([`SimCluster`]), started from its configuration files.
///
/// # Panics
///
/// If the world cannot be built (it allocates no OS resources, so it cannot).
#[must_use]
pub fn run(s: &Scenario) -> Report {
    run_with_timeline(s, 0).0
}

/// Runs the scenario as [`run`] does, keeping a timeline of at most `cap` events
/// (`World::keep_timeline`), and returns the report with the timeline as Chrome trace
/// event JSON (`None` when `cap` is 0). Keeping it does not change the trace hash.
///
/// # Panics
///
/// As [`run`].
#[must_use]
pub fn run_with_timeline(s: &Scenario, cap: usize) -> (Report, Option<String>) {
    let mut world = World::new(s.seed).unwrap_or_else(|e| panic!("world: {e}"));
    world.keep_timeline(cap);
    let names: Vec<String> = std::iter::once("front".to_owned())
        .chain((1..=s.workers).map(|i| format!("w{i}")))
        .collect();
    let history = Rc::new(History::new());
    let handled: Handled = Rc::default();
    let depths: Depths = Rc::default();
    let checks = (history.clone(), handled.clone(), depths.clone());
    let log = Rc::new(RefCell::new(FrontLog::default()));
    let app = application(s, world.seeds(), &checks, &log);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let cluster =
        SimCluster::new(&mut world, app, &name_refs).unwrap_or_else(|e| panic!("cluster: {e}"));
    let ids: Vec<NodeId> = names
        .iter()
        .map(|n| cluster.node(n).unwrap_or_else(|| panic!("node {n}")))
        .collect();
    let h = history.clone();
    world.add_invariant(move |_| h.verdict());
    let start = |world: &World, i: usize, generation: u64| {
        if let Err(e) = cluster.start(world, &settings(&names[i], i, generation)) {
            panic!("start {}: {e}", names[i]);
        }
    };

    // Workers start first, the front 5 ms later and w1 after it, so both startup
    // orders occur across the workers.
    for i in 2..names.len() {
        start(&world, i, 0);
    }
    world.run_until(Instant::ZERO + Duration::from_millis(5));
    start(&world, 0, 0);
    world.run_until(Instant::ZERO + Duration::from_millis(10));
    start(&world, 1, 0);

    let mut timeline = Vec::new();
    let mut note = |world: &World, what: String| {
        timeline.push(format!(
            "t={:>6.2}s {what}",
            world.now().as_nanos() as f64 / 1e9
        ));
    };
    let (front, w2, w3, w4) = (ids[0], ids[2], ids[3], ids[4]);
    // The fault script, at exact virtual times. A broken promise stops the world; the
    // script stops with it.
    let (mut partitioned_at, mut healed_at, mut restarted_at) = (end_of(s), end_of(s), end_of(s));
    let script = [
        (s.at(1, 3), Fault::Partition),
        (s.at(1, 2), Fault::Heal),
        (s.at(7, 12), Fault::Crash),
        (s.at(2, 3), Fault::Restart),
        (s.at(5, 6), Fault::StopW4),
    ];
    for (at, fault) in script {
        world.run_until(at);
        if world.violation().is_some() {
            break;
        }
        match fault {
            Fault::Partition => {
                world.partition(front, w2);
                partitioned_at = world.now();
                note(&world, "partition front <-> w2".into());
            }
            Fault::Heal => {
                world.heal(front, w2);
                healed_at = world.now();
                note(&world, "heal front <-> w2".into());
            }
            Fault::Crash => {
                world.crash(w3);
                note(&world, "crash w3".into());
            }
            Fault::Restart => {
                if let Err(e) = world.restart(w3) {
                    panic!("restart: {e}");
                }
                restarted_at = world.now();
                start(&world, 3, 1);
                note(&world, "restart w3 (generation 1)".into());
            }
            Fault::StopW4 => {
                let history = history.clone();
                world
                    .spawn_on(w4, async move {
                        if let Ok(worker) = tern::lookup::<Worker>("worker") {
                            worker.stop();
                            worker.stopped().await;
                            history.stopped("w4");
                        }
                    })
                    .detach();
                note(&world, "stop the worker on w4 for good".into());
            }
        }
    }
    world.run_until(end_of(s));

    let log = log.borrow();
    let mut lat = log.latencies.clone();
    lat.sort_unstable();
    let pick = |q: usize| {
        lat.get((lat.len().saturating_sub(1)) * q / 100)
            .copied()
            .unwrap_or(0)
    };
    let mut report = Report {
        scenario: s.clone(),
        tells: log.tells,
        asks: log.asks,
        answered: log.answered,
        errors: log.errors.clone(),
        front: log.node.as_ref().map(Node::stats),
        handled: BTreeMap::new(),
        handled_after_recovery: BTreeMap::new(),
        latency_us: (pick(50), pick(99), lat.last().copied().unwrap_or(0)),
        busy: names[1..]
            .iter()
            .zip(&ids[1..])
            .map(|(n, id)| (n.clone(), world.busy_fraction(*id)))
            .collect(),
        mailbox_depth: depths
            .borrow()
            .iter()
            .map(|(w, &(n, sum, max))| (w.clone(), (sum as f64 / n.max(1) as f64, max)))
            .collect(),
        history: history.check(),
        violation: world.violation().map(|v| v.message.clone()),
        unmet: Vec::new(),
        timeline,
        steps: world.steps(),
        events: world.trace_hash().records(),
        virtual_end: world.now(),
        trace_hash: world.trace_hash().hex(),
    };
    let chrome = world.chrome_trace();
    let handled = handled.borrow();
    let count = |w: &str, from: Instant, to: Instant| {
        handled.get(w).map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| t >= from.as_nanos() && t < to.as_nanos())
                .count() as u64
        })
    };
    let end = end_of(s);
    for w in &names[1..] {
        report
            .handled
            .insert(w.clone(), count(w, Instant::ZERO, end));
    }
    report
        .handled_after_recovery
        .insert("w2".into(), count("w2", healed_at, end));
    report
        .handled_after_recovery
        .insert("w3".into(), count("w3", restarted_at, end));
    // Messages already queued at w2 may still be handled just after the cut.
    let settle = Duration::from_millis(100);
    let during_cut = count("w2", partitioned_at + settle, healed_at);
    let mut unmet = Vec::new();
    if report.violation.is_some() {
        // The run stopped early; what it did not get to is no news.
        report.unmet = unmet;
        return (report, chrome);
    }
    if report.answered == 0 {
        unmet.push("no ask was answered".to_owned());
    }
    if during_cut > 0 {
        unmet.push(format!(
            "w2 handled {during_cut} messages while partitioned from the front"
        ));
    }
    for (w, n) in &report.handled_after_recovery {
        if *n == 0 {
            unmet.push(format!("{w} handled nothing after it recovered"));
        }
    }
    if report.errors.is_empty() {
        unmet.push("no typed error during the faults".to_owned());
    }
    report.unmet = unmet;
    (report, chrome)
}
