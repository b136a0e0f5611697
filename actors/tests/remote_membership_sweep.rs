//! Membership input under churn, over a seed sweep on the simulator: hosts crash and
//! come back as new generations (the caller learns of it late), links are cut and
//! healed, peers go down and up. Throughout, every ask ends by its deadline (plus
//! slack), and no request is ever handled by a generation other than the one it was
//! addressed to.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::sim::{NodeId, SimRng, World};
use tern_executor::{Instant, time};
use tern_transport::SimTransport;

/// Knows its node's generation; records requests addressed to another one.
struct Host {
    generation: u64,
    wrong: Rc<RefCell<Vec<(u64, u64)>>>,
}
impl Actor for Host {}

/// A request carrying the generation its sender believed it addressed.
#[derive(Debug, Serialize, Deserialize)]
struct Call {
    believed: u64,
}
impl RemoteMessage for Call {
    const NAME: &'static str = "test.v1.Call";
    type Codec = Postcard;
}
impl Handler<Call> for Host {
    type Reply = u64;
    async fn handle(&mut self, m: Call, _: &mut Context<Self>) -> u64 {
        if m.believed != self.generation {
            self.wrong.borrow_mut().push((m.believed, self.generation));
        }
        self.generation
    }
}

const HOSTS: [&str; 2] = ["b", "c"];
const TIMEOUT: Duration = Duration::from_millis(300);

/// One ask: the host, its outcome, how long it took.
type Ended = (&'static str, Result<u64, CallError>, Duration);

struct Run {
    world: World,
    ids: BTreeMap<&'static str, NodeId>,
    names: Rc<BTreeMap<String, NodeId>>,
    /// What the caller believes each host's generation is.
    belief: Rc<RefCell<BTreeMap<&'static str, u64>>>,
    wrong: Rc<RefCell<Vec<(u64, u64)>>>,
    /// (host, outcome, elapsed) of every ask.
    asks: Rc<RefCell<Vec<Ended>>>,
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

fn start_host(r: &Run, host: &'static str, generation: u64) {
    let t = SimTransport::new(host, r.world.socket(r.ids[host]), r.names.clone());
    let wrong = r.wrong.clone();
    r.world
        .spawn_on(r.ids[host], async move {
            let node = Node::start(NodeConfig::new(host).generation(generation), t).expect("node");
            node.export("host", &spawn(Host { generation, wrong }))
                .expect("export")
                .accept::<Call>();
            node.peer_up("a", 1, None, &[]);
        })
        .detach();
}

/// Tells the caller, after `delay`, that `host` runs `generation` (or is down).
fn tell_caller(r: &Run, host: &'static str, generation: Option<u64>, delay: Duration) {
    let belief = r.belief.clone();
    r.world
        .spawn_on(r.ids["a"], async move {
            time::sleep(delay).await;
            let node = Node::current().expect("node");
            match generation {
                Some(g) => {
                    node.peer_up(host, g, None, &["host"]);
                    let mut b = belief.borrow_mut();
                    let known = b.entry(host).or_insert(0);
                    *known = (*known).max(g);
                }
                None => node.peer_down(host, false),
            }
        })
        .detach();
}

fn run(seed: u64) -> Run {
    let mut world = World::new(seed).expect("world");
    let mut ids = BTreeMap::new();
    for n in ["a", "b", "c"] {
        ids.insert(n, world.add_node(n).expect("node"));
    }
    let names = Rc::new(
        ids.iter()
            .map(|(n, id)| ((*n).to_owned(), *id))
            .collect::<BTreeMap<_, _>>(),
    );
    let r = Run {
        world,
        ids,
        names,
        belief: Rc::default(),
        wrong: Rc::default(),
        asks: Rc::default(),
    };
    let ta = SimTransport::new("a", r.world.socket(r.ids["a"]), r.names.clone());
    r.world
        .spawn_on(r.ids["a"], async move {
            Node::start(NodeConfig::new("a").generation(1), ta).expect("node");
        })
        .detach();
    for host in HOSTS {
        start_host(&r, host, 1);
        tell_caller(&r, host, Some(1), Duration::ZERO);
    }
    // The caller asks each host, pinned, every 20 ms for 20 s.
    let (belief, asks) = (r.belief.clone(), r.asks.clone());
    r.world
        .spawn_on(r.ids["a"], async move {
            time::sleep(Duration::from_millis(10)).await;
            for i in 0..1_000u32 {
                let host = HOSTS[(i % 2) as usize];
                let believed = belief.borrow().get(host).copied().unwrap_or(0);
                let asks = asks.clone();
                tern_executor::spawn(async move {
                    let node = Node::current().expect("node");
                    let t0 = time::now();
                    let r = node
                        .lookup_on::<Host>(host, "host")
                        .ask(Call { believed })
                        .timeout(TIMEOUT)
                        .await;
                    let took = time::now().saturating_duration_since(t0);
                    asks.borrow_mut().push((host, r, took));
                })
                .detach();
                time::sleep(Duration::from_millis(20)).await;
            }
        })
        .detach();
    r
}

#[test]
fn under_churn_asks_end_by_their_deadline_and_reach_only_the_generation_addressed() {
    for seed in 0..12 {
        let mut r = run(seed);
        let mut rng = SimRng::new(seed ^ 0x5eed);
        let mut generation = BTreeMap::from([("b", 1u64), ("c", 1u64)]);
        let mut cut: Vec<&'static str> = Vec::new();
        for step in 1..=80u32 {
            r.world.run_until(secs(f64::from(step) * 0.25));
            let host = HOSTS[usize::try_from(rng.below(2)).unwrap_or(0)];
            let late = Duration::from_millis(rng.below(1_500));
            match rng.below(6) {
                0 => {
                    // A restart the caller learns of late (or first as a death).
                    r.world.crash(r.ids[host]);
                    r.world.restart(r.ids[host]).expect("restart");
                    let g = generation.get_mut(host).expect("host");
                    *g += 1;
                    start_host(&r, host, *g);
                    if rng.below(2) == 0 {
                        tell_caller(&r, host, None, late / 2);
                    }
                    tell_caller(&r, host, Some(*g), late);
                }
                1 if !cut.contains(&host) => {
                    r.world.partition(r.ids["a"], r.ids[host]);
                    cut.push(host);
                }
                2 => {
                    if let Some(h) = cut.pop() {
                        r.world.heal(r.ids["a"], r.ids[h]);
                    }
                }
                3 => tell_caller(&r, host, None, Duration::ZERO),
                4 => tell_caller(&r, host, Some(generation[host]), late),
                _ => {}
            }
        }
        r.world.heal_all();
        r.world.run_until(secs(25.0));
        let asks = r.asks.borrow();
        let tag = format!("seed {seed}");
        assert_eq!(asks.len(), 1_000, "{tag}: every ask ended");
        for (host, outcome, took) in asks.iter() {
            assert!(
                *took <= TIMEOUT + Duration::from_millis(50),
                "{tag}: ask to {host} ended after {took:?} with {outcome:?}"
            );
        }
        let ok = asks.iter().filter(|a| a.1.is_ok()).count();
        assert!(ok > 100, "{tag}: only {ok} of 1000 asks succeeded");
        assert_eq!(
            *r.wrong.borrow(),
            [],
            "{tag}: handled by another generation"
        );
    }
}
