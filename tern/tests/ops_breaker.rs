//! Circuit breakers on the simulator, over a sweep of seeds: a breaker opens on a
//! failing dependency, half-opens, closes when it heals, and never sticks half-open,
//! with messages lost on the network all along; overload is not a failure.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::future::IntoFuture;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::actors::{Actor, Context, Handler, spawn};
use tern::executor::{Instant, time};
use tern::ops::{BreakerConfig, BreakerState, IngressConfig};
use tern::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage, sim_nodes};
use tern::sim::World;

/// A dependency that answers at once while healthy and hangs while broken.
struct Dependency {
    broken: Rc<Cell<bool>>,
    /// How long a healthy answer takes.
    work: Duration,
}
impl Actor for Dependency {}

#[derive(Debug, Serialize, Deserialize)]
struct Work(u64);
impl RemoteMessage for Work {
    const NAME: &'static str = "test.v1.Work";
    type Codec = Postcard;
}
impl Handler<Work> for Dependency {
    type Reply = u64;
    async fn handle(&mut self, m: Work, _: &mut Context<Self>) -> u64 {
        if self.broken.get() {
            time::sleep(Duration::from_secs(30)).await;
        } else if !self.work.is_zero() {
            time::sleep(self.work).await;
        }
        m.0
    }
}

/// What the caller saw, sampled at each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Ok,
    Open,
    Timeout,
    Full,
    Other,
}

#[derive(Debug, Default)]
struct Log {
    /// (virtual seconds, outcome, breaker state before the call).
    calls: Vec<(f64, Seen, BreakerState)>,
    opened: u64,
    half_opened: u64,
    closed: u64,
}

fn at(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

/// Runs a client asking a dependency every 50 ms for `until` seconds, the dependency
/// broken during `broken`. With `lossy`, the link blips (a seeded 1 in 20 of each
/// 100 ms step starts a 50-250 ms partition): the frames in flight are lost both
/// ways, asks, replies and probes alike. Open periods are capped at 20 s.
fn run(seed: u64, broken: (f64, f64), until: f64, lossy: bool) -> Log {
    let mut world = World::new(seed).unwrap();
    let [(c, tc), (s, ts)] = sim_nodes(&mut world, ["client", "server"]).unwrap();
    let flag = Rc::new(Cell::new(false));
    let f = flag.clone();
    world
        .spawn_on(s, async move {
            let node = Node::start(NodeConfig::new("server").peers(["client"]), ts).unwrap();
            let dep = spawn(Dependency {
                broken: f,
                work: Duration::ZERO,
            });
            node.export("dep", &dep).unwrap().accept::<Work>();
            std::mem::forget(node);
        })
        .detach();
    let log = Rc::new(RefCell::new(Log::default()));
    let l = log.clone();
    let client = world.spawn_on(c, async move {
        let node = Node::start(
            NodeConfig::new("client")
                .peers(["server"])
                .seed(seed)
                .breaker(BreakerConfig::default().max_open_for(Duration::from_secs(20))),
            tc,
        )
        .unwrap();
        let dep = node.lookup::<Dependency>("dep");
        let mut i = 0;
        loop {
            let state = node.breaker_state("dep");
            let now = time::now().as_nanos() as f64 / 1e9;
            let r = dep.ask(Work(i)).timeout(Duration::from_millis(300)).await;
            let seen = match r {
                Ok(n) if n == i => Seen::Ok,
                Ok(_) => Seen::Other,
                Err(CallError::CircuitOpen { .. }) => Seen::Open,
                Err(CallError::Timeout) => Seen::Timeout,
                Err(CallError::MailboxFull) => Seen::Full,
                Err(_) => Seen::Other,
            };
            let a = node.stats().admission;
            {
                let mut l = l.borrow_mut();
                l.calls.push((now, seen, state));
                (l.opened, l.half_opened, l.closed) =
                    (a.breaker_opened, a.breaker_half_opened, a.breaker_closed);
            }
            i += 1;
            time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut blips = world.seeds().stream("test/blips");
    let mut healed_at: Option<f64> = None;
    let steps = (until * 10.0) as u64;
    for step in 1..=steps {
        let t = step as f64 / 10.0;
        flag.set(t > broken.0 && t <= broken.1);
        if let Some(h) = healed_at
            && t >= h
        {
            world.heal(c, s);
            healed_at = None;
        }
        if lossy && healed_at.is_none() && blips.chance(1, 20) {
            world.partition(c, s);
            healed_at = Some(t + 0.05 + blips.below(200) as f64 / 1000.0);
        }
        world.run_until(at(t));
    }
    drop(client);
    std::mem::take(&mut *log.borrow_mut())
}

#[test]
fn a_breaker_opens_half_opens_and_closes_under_loss_for_every_seed() {
    let mut lost_while_healthy = 0;
    for seed in 0..24 {
        // The link blips all along; the dependency hangs from 5 s to 20 s.
        let log = run(seed, (5.0, 20.0), 80.0, true);
        lost_while_healthy += log
            .calls
            .iter()
            .filter(|c| (c.0 < 5.0 || c.0 > 30.0) && c.1 != Seen::Ok)
            .count();
        let repro = format!("seed {seed}");
        let calls = &log.calls;
        // Healthy at first: the losses alone never open it.
        assert!(
            calls
                .iter()
                .filter(|c| c.0 < 5.0)
                .all(|c| c.1 != Seen::Open),
            "{repro}: opened before the dependency broke"
        );
        // It opened on the failing dependency, and the calls then failed at once.
        let first_open = calls
            .iter()
            .position(|c| c.1 == Seen::Open)
            .unwrap_or_else(|| panic!("{repro}: never opened"));
        assert!(
            calls[first_open].0 < 8.0,
            "{repro}: opened late, at {}",
            calls[first_open].0
        );
        let open_calls = calls.iter().filter(|c| c.1 == Seen::Open).count();
        let timeouts_while_broken = calls
            .iter()
            .filter(|c| c.0 > 5.0 && c.0 < 20.0 && c.1 == Seen::Timeout)
            .count();
        assert!(
            open_calls > 5 * timeouts_while_broken,
            "{repro}: {open_calls} fast failures, {timeouts_while_broken} timeouts while broken"
        );
        // It half-opened (probes) and re-opened while broken, then closed once healed.
        assert!(
            log.opened >= 2 && log.half_opened >= 2,
            "{repro}: opened {}, half-opened {}",
            log.opened,
            log.half_opened
        );
        let probes: Vec<_> = calls
            .iter()
            .filter(|c| c.2 == BreakerState::HalfOpen)
            .map(|c| (c.0, c.1))
            .collect();
        assert!(log.closed >= 1, "{repro}: never closed; probes {probes:?}");
        let tail: Vec<_> = calls.iter().filter(|c| c.0 >= 70.0).collect();
        assert!(
            tail.iter().all(|c| c.2 != BreakerState::Open),
            "{repro}: still open at the end"
        );
        let ok = tail.iter().filter(|c| c.1 == Seen::Ok).count();
        assert!(
            ok * 10 >= tail.len() * 8,
            "{repro}: {ok} of {} answered at the end",
            tail.len()
        );
        // Never stuck half-open: no stretch of half-open samples longer than the probe
        // deadline (2 s) plus one call.
        let mut since = None;
        for c in calls {
            match (c.2, since) {
                (BreakerState::HalfOpen, None) => since = Some(c.0),
                (BreakerState::HalfOpen, Some(s)) => {
                    assert!(
                        c.0 - s <= 2.0 + 0.4,
                        "{repro}: half-open from {s} to {}",
                        c.0
                    );
                }
                _ => since = None,
            }
        }
    }
    // The losses were real: asks timed out while the dependency was healthy.
    assert!(lost_while_healthy > 0, "no ask was lost");
}

#[test]
fn the_same_seed_gives_the_same_transitions() {
    let a = run(7, (2.0, 12.0), 30.0, true);
    let b = run(7, (2.0, 12.0), 30.0, true);
    let trace = |l: &Log| -> Vec<(u64, BreakerState)> {
        l.calls.iter().map(|c| ((c.0 * 1e6) as u64, c.2)).collect()
    };
    assert_eq!(trace(&a), trace(&b));
    assert_eq!((a.opened, a.closed), (b.opened, b.closed));
}

#[test]
fn overload_refusals_never_open_the_breaker() {
    // The server's ingress limit sheds most asks of a client that floods a slow
    // component: the client sees a full mailbox, its breaker stays closed.
    for seed in 0..4 {
        let mut world = World::new(seed).unwrap();
        let [(c, tc), (s, ts)] = sim_nodes(&mut world, ["client", "server"]).unwrap();
        world
            .spawn_on(s, async move {
                let config = NodeConfig::new("server")
                    .peers(["client"])
                    .ingress(IngressConfig::enabled(4).bounds(2, 8));
                let node = Node::start(config, ts).unwrap();
                let dep = spawn(Dependency {
                    broken: Rc::new(Cell::new(false)),
                    work: Duration::from_millis(20),
                });
                node.export("dep", &dep).unwrap().accept::<Work>();
                std::mem::forget(node);
            })
            .detach();
        let seen = Rc::new(RefCell::new((0u64, 0u64, 0u64)));
        let (s2, closed) = (seen.clone(), Rc::new(Cell::new(true)));
        let cl = closed.clone();
        let client = world.spawn_on(c, async move {
            let config = NodeConfig::new("client")
                .peers(["server"])
                .breaker(BreakerConfig::default());
            let node = Node::start(config, tc).unwrap();
            let dep = node.lookup::<Dependency>("dep");
            for round in 0..100u64 {
                // 16 asks at once, each in its own task.
                let asks: Vec<_> = (0..16)
                    .map(|i| {
                        let ask = dep
                            .ask(Work(round * 16 + i))
                            .timeout(Duration::from_secs(2));
                        tern::executor::spawn(ask.into_future())
                    })
                    .collect();
                for a in asks {
                    let r = a.await.unwrap();
                    {
                        let mut s = s2.borrow_mut();
                        match r {
                            Ok(_) => s.0 += 1,
                            Err(CallError::MailboxFull) => s.1 += 1,
                            Err(_) => s.2 += 1,
                        }
                    }
                }
                cl.set(cl.get() && node.breaker_state("dep") == BreakerState::Closed);
            }
            node.stats().admission.ingress_shed
        });
        world.run_until(at(120.0));
        let shed = world.runtime(c).unwrap().block_on(client).unwrap();
        let (ok, full, other) = *seen.borrow();
        assert!(
            ok > 0 && full > 0,
            "seed {seed}: ok {ok}, full {full}, other {other}"
        );
        assert_eq!(shed, 0, "the client's own ingress shed nothing");
        assert!(
            closed.get(),
            "seed {seed}: the breaker left Closed on overload"
        );
    }
}
