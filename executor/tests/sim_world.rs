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
