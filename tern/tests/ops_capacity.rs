//! Capacity limits changed at run time on the simulator, over a sweep of seeds:
//! lowering a limit under load refuses the excess with a typed error and loses
//! nothing accepted; raising it lets in no more than the new limit (no burst).

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::{Cell, RefCell};
use std::future::IntoFuture;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::actors::{Actor, Context, Handler, build};
use tern::check::History;
use tern::executor::{Instant, time};
use tern::ops::LimitChange;
use tern::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage, sim_nodes};
use tern::sim::World;

/// A component that takes 5 ms per message and records what it handled.
struct Slow {
    history: Rc<History>,
}
impl Actor for Slow {}

#[derive(Debug, Serialize, Deserialize)]
struct Job(u64);
impl RemoteMessage for Job {
    const NAME: &'static str = "test.v1.Job";
    type Codec = Postcard;
}
impl Handler<Job> for Slow {
    type Reply = u64;
    async fn handle(&mut self, m: Job, _: &mut Context<Self>) -> u64 {
        // The caller is in the millions of the sequence number.
        self.history.handled(&caller(m.0), "slow", m.0);
        time::sleep(Duration::from_millis(5)).await;
        m.0
    }
}

fn caller(seq: u64) -> String {
    format!("c{}", seq / 1_000_000)
}

fn at(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

fn set(node: &Node, change: &str) -> u64 {
    node.set_limits(&[LimitChange::parse(change).unwrap()], None)
        .unwrap()
}

#[derive(Debug, Default)]
struct Phase {
    accepted: u64,
    refused_full: u64,
    other: u64,
    /// The deepest the mailbox was seen.
    deepest: usize,
    /// The most accepted in one 1 ms tick.
    burst: u64,
}

#[test]
fn lowering_a_mailbox_under_load_refuses_the_excess_and_loses_nothing_accepted() {
    for seed in 0..8 {
        let mut world = World::new(seed).unwrap();
        let [(n, t)] = sim_nodes(&mut world, ["server"]).unwrap();
        let history = Rc::new(History::new());
        let h = history.clone();
        world.add_invariant(move |_| h.verdict());
        // 0: capacity 64; 1: lowered to 8, until the queue drained below it; 2: at 8;
        // 3: raised to 32.
        let phases = Rc::new(RefCell::new([(); 4].map(|()| Phase::default())));
        let (h, ph) = (history.clone(), phases.clone());
        let done = world.spawn_on(n, async move {
            let node = Node::start(NodeConfig::new("server"), t).unwrap();
            let history = h.clone();
            let slow = build(move || Slow {
                history: history.clone(),
            })
            .mailbox(64)
            .spawn();
            node.export("slow", &slow).unwrap().accept::<Job>();
            let target = node.lookup::<Slow>("slow");
            let mut seq = 0;
            let mut phase = 0;
            let start = time::now();
            // A greedy producer: every 1 ms it sends until the first refusal (the
            // component handles one message per 5 ms).
            loop {
                let elapsed = time::now().saturating_duration_since(start).as_millis();
                if elapsed >= 4000 {
                    break;
                }
                if phase == 0 && elapsed >= 1000 {
                    assert_eq!(set(&node, "mailbox.slow=8"), 1);
                    phase = 1;
                }
                if phase == 1 && slow.stats().queued < 8 {
                    phase = 2;
                }
                if phase == 2 && elapsed >= 3000 {
                    assert_eq!(set(&node, "mailbox.slow=32"), 2);
                    phase = 3;
                }
                let mut tick = 0;
                for _ in 0..50 {
                    seq += 1;
                    let result = target.try_tell(Job(seq));
                    let mut phases = ph.borrow_mut();
                    let s = &mut phases[phase];
                    match result {
                        Ok(()) => {
                            h.sent(&caller(seq), "slow", seq);
                            s.accepted += 1;
                            tick += 1;
                        }
                        Err(e) => {
                            if e.reason == CallError::MailboxFull {
                                s.refused_full += 1;
                            } else {
                                s.other += 1;
                            }
                            break;
                        }
                    }
                }
                {
                    let mut phases = ph.borrow_mut();
                    let s = &mut phases[phase];
                    s.burst = s.burst.max(tick);
                    s.deepest = s.deepest.max(slow.stats().queued);
                }
                time::sleep(Duration::from_millis(1)).await;
            }
            // Let the mailbox drain.
            while slow.stats().queued > 0 {
                time::sleep(Duration::from_millis(10)).await;
            }
            time::sleep(Duration::from_millis(10)).await;
            node.limits().version()
        });
        world.run_until(at(6.0));
        let version = world.runtime(n).unwrap().block_on(done).unwrap();
        assert_eq!(version, 2, "seed {seed}");
        let phases = phases.borrow();
        let repro = format!("seed {seed}: {phases:?}");
        // Loaded: the mailbox filled to 64 and the excess was refused, typed.
        assert_eq!(phases[0].deepest, 64, "{repro}");
        assert!(phases[0].refused_full > 500, "{repro}");
        // Lowered under load: nothing evicted (the queue drains from 64), nothing
        // accepted until it is below the new limit.
        assert_eq!(phases[1].accepted, 0, "{repro}");
        assert!(phases[1].refused_full > 200, "{repro}");
        // At 8: never deeper.
        assert!(phases[2].deepest <= 8 && phases[2].accepted > 0, "{repro}");
        // Raised to 32: never deeper, and no burst: the first tick takes the freed room
        // (32 minus the 7 or 8 queued), not what was refused while the limit was low.
        assert!(phases[3].deepest <= 32, "{repro}");
        assert!(phases[3].burst <= 25, "{repro}");
        assert!(phases.iter().all(|p| p.other == 0), "{repro}");
        // Nothing accepted was lost: every message sent was handled, in order, once.
        let summary = history.check().unwrap();
        assert_eq!(summary.sent, summary.handled, "{repro}");
        let accepted: u64 = phases.iter().map(|p| p.accepted).sum();
        assert_eq!(summary.sent, accepted, "{repro}");
    }
}

#[test]
fn an_in_flight_cap_lowered_and_raised_under_load_refuses_typed_and_loses_nothing() {
    for seed in 0..4 {
        let mut world = World::new(seed).unwrap();
        let [(c, tc), (s, ts)] = sim_nodes(&mut world, ["client", "server"]).unwrap();
        let history = Rc::new(History::new());
        let h = history.clone();
        // The deepest the server's mailbox was, per phase (64 caps, cap 4, cap 16).
        let deepest = Rc::new(RefCell::new([0usize; 3]));
        let phase = Rc::new(Cell::new(0usize));
        let (d, p) = (deepest.clone(), phase.clone());
        world
            .spawn_on(s, async move {
                let node = Node::start(NodeConfig::new("server").peers(["client"]), ts).unwrap();
                let slow = build(move || Slow { history: h.clone() })
                    .mailbox(1024)
                    .spawn();
                node.export("slow", &slow).unwrap().accept::<Job>();
                loop {
                    let i = p.get();
                    let q = slow.stats().queued;
                    {
                        let mut d = d.borrow_mut();
                        d[i] = d[i].max(q);
                    }
                    time::sleep(Duration::from_millis(1)).await;
                }
            })
            .detach();
        let counts = Rc::new(RefCell::new((0u64, 0u64, 0u64)));
        let (h, k, p) = (history.clone(), counts.clone(), phase.clone());
        let client = world.spawn_on(c, async move {
            let node = Node::start(NodeConfig::new("client").peers(["server"]), tc).unwrap();
            let target = node.lookup::<Slow>("slow");
            // 64 callers, each asking again as soon as it has its answer or refusal.
            let mut tasks = Vec::new();
            for who in 0..64u64 {
                let (target, h, k) = (target.clone(), h.clone(), k.clone());
                tasks.push(tern::executor::spawn(async move {
                    for i in 0.. {
                        let seq = who * 1_000_000 + i;
                        h.sent(&caller(seq), "slow", seq);
                        let ask = target.ask(Job(seq)).timeout(Duration::from_secs(30));
                        let r = ask.into_future().await;
                        // Back off 20 ms after a refusal.
                        let pause = {
                            let mut k = k.borrow_mut();
                            match r {
                                Ok(n) if n == seq => {
                                    k.0 += 1;
                                    2
                                }
                                Err(CallError::LimitReached { limit }) => {
                                    assert_eq!(limit, "in_flight.slow");
                                    k.1 += 1;
                                    20
                                }
                                _ => {
                                    k.2 += 1;
                                    2
                                }
                            }
                        };
                        time::sleep(Duration::from_millis(pause)).await;
                    }
                }));
            }
            time::sleep(Duration::from_secs(1)).await;
            set(&node, "in_flight.slow=4");
            p.set(1);
            time::sleep(Duration::from_secs(2)).await;
            set(&node, "in_flight.slow=16");
            p.set(2);
            time::sleep(Duration::from_secs(1)).await;
            for t in &mut tasks {
                t.abort();
            }
            node.stats().admission.limit_reached
        });
        world.run_until(at(5.0));
        let limited = world.runtime(c).unwrap().block_on(client).unwrap();
        // Let every admitted ask finish.
        world.run_until(at(10.0));
        let repro = format!("seed {seed}");
        let (ok, refused, other) = *counts.borrow();
        assert!(ok > 0 && refused > 0, "{repro}: ok {ok}, refused {refused}");
        assert_eq!(refused, limited, "{repro}: every refusal is counted");
        assert_eq!(other, 0, "{repro}: an admitted ask failed or was lost");
        let deepest = *deepest.borrow();
        // Uncapped, 64 callers queue up to 64 (one in the handler); lowered to 4,
        // the queue drains to at most 4 (it was sampled from the lowering on, so the
        // drain itself shows); raised to 16, never more than 16: no burst.
        assert!(deepest[0] > 16, "{repro}: {deepest:?}");
        assert!(deepest[2] <= 16, "{repro}: {deepest:?}");
        // Handled once each, in order per caller; none invented.
        history.check().unwrap();
    }
}
