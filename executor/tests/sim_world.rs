//! The simulated world: seeded scheduling across nodes, FIFO inside each node, shared
//! virtual time, and replay by trace hash.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::World;
use tern_executor::{Instant, time, yield_now};

type Log = Rc<RefCell<Vec<(String, u32)>>>;

/// Three nodes, each running two tasks that log, yield and sleep.
fn scenario(seed: u64) -> (Vec<(String, u32)>, String, Instant) {
    let mut world = World::new(seed).expect("a world");
    let log: Log = Rc::default();
    for name in ["n1", "n2", "n3"] {
        let node = world.add_node(name).expect("a node");
        for task in 0..2u32 {
            let log = log.clone();
            let who = format!("{name}.{task}");
            world
                .spawn_on(node, async move {
                    for step in 0..3u32 {
                        log.borrow_mut().push((who.clone(), step));
                        yield_now().await;
                        time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .detach();
        }
    }
    world.run_until_idle();
    let log = log.borrow().clone();
    (log, world.trace_hash().hex(), world.now())
}

#[test]
fn the_same_seed_replays_exactly() {
    for seed in 0..20 {
        let (log_a, hash_a, t_a) = scenario(seed);
        let (log_b, hash_b, t_b) = scenario(seed);
        assert_eq!((log_a, hash_a, t_a), (log_b, hash_b, t_b), "seed {seed}");
    }
}

#[test]
fn interleaving_across_nodes_varies_with_the_seed() {
    let orders: BTreeSet<Vec<(String, u32)>> = (0..20).map(|s| scenario(s).0).collect();
    assert!(
        orders.len() > 5,
        "only {} distinct interleavings",
        orders.len()
    );
    let hashes: BTreeSet<String> = (0..20).map(|s| scenario(s).1).collect();
    assert_eq!(hashes.len(), orders.len());
}

#[test]
fn each_node_stays_first_come_first_served_inside() {
    for seed in 0..20 {
        let (log, _, end) = scenario(seed);
        for name in ["n1", "n2", "n3"] {
            // Within one node, its two tasks alternate in spawn order at every step:
            // FIFO inside the node whatever the seed.
            let node: Vec<&(String, u32)> =
                log.iter().filter(|(w, _)| w.starts_with(name)).collect();
            let expected: Vec<(String, u32)> = (0..3)
                .flat_map(|step| (0..2).map(move |t| (format!("{name}.{t}"), step)))
                .collect();
            assert_eq!(
                node.into_iter().cloned().collect::<Vec<_>>(),
                expected,
                "seed {seed}"
            );
        }
        // Three sleeps of 10 ms, in virtual time.
        assert_eq!(end, Instant::ZERO + Duration::from_millis(30));
    }
}

#[test]
fn run_until_stops_at_the_deadline_without_passing_it() {
    let mut world = World::new(1).unwrap();
    let node = world.add_node("n").unwrap();
    let ticks = Rc::new(RefCell::new(0u32));
    let t = ticks.clone();
    world
        .spawn_on(node, async move {
            let mut every = time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                *t.borrow_mut() += 1;
            }
        })
        .detach();
    world.run_until(Instant::ZERO + Duration::from_millis(3500));
    assert_eq!(world.now(), Instant::ZERO + Duration::from_millis(3500));
    assert_eq!(*ticks.borrow(), 4); // at 0, 1, 2 and 3 s
}

#[test]
fn a_crashed_node_loses_its_tasks_and_messages_and_restarts_with_a_new_generation() {
    use tern_executor::sim::Delivery;
    let mut world = World::new(11).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let (sa, sb) = (world.socket(a), world.socket(b));
    let seen: Rc<RefCell<Vec<u8>>> = Rc::default();
    let receiver = |sock: tern_executor::sim::SimSocket, seen: Rc<RefCell<Vec<u8>>>| async move {
        loop {
            let p = sock.recv().await;
            seen.borrow_mut().push(p.data[0]);
        }
    };
    world
        .spawn_on(b, receiver(sb.clone(), seen.clone()))
        .detach();
    let _ = sa.send(b, Delivery::Stream, vec![1]);
    world.run_until_idle();
    let _ = sa.send(b, Delivery::Stream, vec![2]); // in flight when b crashes
    world.crash(b);
    assert!(!world.status(b).up);
    world.run_until_idle();
    assert_eq!(world.net_stats().to_crashed, 1);
    // Tasks spawned on a crashed node never run.
    let h = world.spawn_on(b, async { 5 });
    world.restart(b).expect("restart");
    assert_eq!(world.status(b).generation, 1);
    world.spawn_on(b, receiver(sb, seen.clone())).detach();
    let _ = sa.send(b, Delivery::Stream, vec![3]);
    world.run_until_idle();
    assert_eq!(*seen.borrow(), [1, 3]);
    let aborted = world.runtime(a).expect("a is up").block_on(h);
    assert!(aborted.is_err());
}

#[test]
fn a_paused_node_runs_nothing_until_resumed() {
    let mut world = World::new(2).expect("world");
    let n = world.add_node("n").expect("node");
    let fired: Rc<RefCell<Vec<u64>>> = Rc::default();
    let f = fired.clone();
    world
        .spawn_on(n, async move {
            time::sleep(Duration::from_secs(1)).await;
            f.borrow_mut().push(time::now().as_nanos() / 1_000_000);
        })
        .detach();
    world.run_until(Instant::ZERO); // the task starts and sleeps
    world.pause(n);
    world.run_until(Instant::ZERO + Duration::from_secs(5));
    assert!(fired.borrow().is_empty(), "a paused node fired a timer");
    world.resume(n);
    world.run_until_idle();
    assert_eq!(
        *fired.borrow(),
        [5_000],
        "the overdue timer fires on resume"
    );
}

#[test]
fn charged_work_keeps_a_node_busy_and_delays_its_next_task() {
    let mut world = World::new(4).expect("world");
    let n = world.add_node("n").expect("node");
    let done: Rc<RefCell<Vec<u64>>> = Rc::default();
    for _ in 0..3 {
        let d = done.clone();
        world
            .spawn_on(n, async move {
                tern_executor::sim::charge(Duration::from_millis(10));
                d.borrow_mut().push(time::now().as_nanos() / 1_000_000);
            })
            .detach();
    }
    world.run_until_idle();
    // One thread: each task starts when the previous one's work is done.
    assert_eq!(*done.borrow(), [0, 10, 20]);
    assert_eq!(world.status(n).busy, Duration::from_millis(30));
    world.run_until(Instant::ZERO + Duration::from_millis(60));
    assert!((world.busy_fraction(n) - 0.5).abs() < 1e-9);
}

#[test]
fn a_planted_wall_clock_read_is_reported_at_the_node_that_made_it() {
    use tern_executor::sim::{TraceKind, check_determinism};
    let scenario = |world: &mut World| {
        let honest = world.add_node("honest").expect("node");
        let cheat = world.add_node("cheat").expect("node");
        world
            .spawn_on(honest, async {
                for _ in 0..3 {
                    time::sleep(Duration::from_millis(1)).await;
                }
            })
            .detach();
        world
            .spawn_on(cheat, async {
                time::sleep(Duration::from_millis(5)).await;
                // Planted bug: behaviour steered by the wall clock. Banned by clippy
                // everywhere else; this test exists to show the simulator catches it.
                #[allow(clippy::disallowed_methods)]
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_nanos()));
                time::sleep(Duration::from_nanos(wall % 1_000_000 + 1)).await;
            })
            .detach();
        world.run_until_idle();
    };
    let d = check_determinism(17, scenario).expect_err("the planted read must diverge");
    let first = d.first.expect("both runs still going");
    assert_eq!(first.node.0, 1, "{d}");
    assert_eq!(first.kind, TraceKind::Timers, "{d}");
    assert!(first.at > Instant::ZERO + Duration::from_millis(5), "{d}");
    assert!(d.to_string().contains("SIM_SEED=17"));

    // Without the planted read the same check passes.
    let clean = check_determinism(17, |world: &mut World| {
        let n = world.add_node("n").expect("node");
        world
            .spawn_on(n, async { time::sleep(Duration::from_millis(5)).await })
            .detach();
        world.run_until_idle();
    });
    assert!(clean.is_ok());
}

#[test]
fn a_livelock_and_a_time_limit_stop_the_world_with_a_status_table() {
    let mut world = World::new(8).expect("world");
    let n = world.add_node("spinner").expect("node");
    world
        .spawn_on(n, async {
            loop {
                yield_now().await; // never sleeps, never receives: a livelock
            }
        })
        .detach();
    world.set_livelock_limit(1_000);
    world.run_until_idle();
    let v = world.violation().expect("livelock detected");
    assert!(
        v.message.starts_with("livelock: 1001 polls"),
        "{}",
        v.message
    );
    assert!(v.message.contains("spinner"), "{}", v.message);
    assert!(v.message.contains("repro: SIM_SEED=8"), "{}", v.message);

    let mut world = World::new(8).expect("world");
    world.keep_trace(true);
    let n = world.add_node("sleeper").expect("node");
    world
        .spawn_on(n, async {
            loop {
                time::sleep(Duration::from_secs(60)).await;
            }
        })
        .detach();
    world.set_time_limit(Instant::ZERO + Duration::from_secs(150));
    world.run_until_idle();
    let v = world.violation().expect("time limit reached");
    assert_eq!(v.at, Instant::ZERO + Duration::from_secs(150));
    assert!(v.message.contains("time limit"), "{}", v.message);
    assert!(v.message.contains("last events:"), "{}", v.message);
}

/// A node that last read the time at 1 ms, then sits idle while the world's clock moves
/// on for another node, must measure its next sleep from the current virtual time.
#[test]
fn a_sleep_counts_from_the_current_virtual_time_after_other_nodes_moved_the_clock() {
    use tern_executor::sim::Delivery;
    let mut world = World::new(6).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let (sa, sb) = (world.socket(a), world.socket(b));
    let woke = Rc::new(RefCell::new(None));
    let w = woke.clone();
    world
        .spawn_on(b, async move {
            time::sleep(Duration::from_millis(1)).await; // b reads the clock at 0 and 1 ms
            let p = sb.recv().await; // then idles while a's timers move the clock
            // No clock read between the delivery and the sleep: the sleep alone must
            // see the current time.
            time::sleep(Duration::from_secs(1)).await;
            *w.borrow_mut() = Some((time::now(), p.data));
        })
        .detach();
    world
        .spawn_on(a, async move {
            time::sleep(Duration::from_secs(2)).await;
            let _ = sa.send(b, Delivery::Stream, vec![7]);
        })
        .detach();
    world.run_until_idle();
    let (woke_at, data) = woke.borrow_mut().take().expect("b finished");
    assert_eq!(data, [7]);
    // Sent at 2 s, delivered after at least the minimum latency, then 1 s of sleep.
    assert!(
        woke_at >= Instant::ZERO + Duration::from_secs(3),
        "woke at {woke_at:?}"
    );
}
