//! The simulator's speed (design/simulation.md H1, H2; issue 3's targets).
//!
//! 1. Scheduler events per second: 10 nodes, each with 4 tasks that yield in a loop;
//!    every step is one seeded choice of a node and one task poll.
//! 2. 20 nodes for 600 simulated seconds, each sending 50 datagrams per second to
//!    seeded random peers (600,000 messages), with the default latency model.
//!
//! Run with `cargo bench -p tern-benches --bench sim`; it prints a table.

// Benches are binaries: nothing public to document; an unwrap that fires means the
// benchmark itself is wrong; the wall clock is what a benchmark measures.
#![allow(clippy::unwrap_used, missing_docs, clippy::disallowed_methods)]
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use tern::executor::sim::{Delivery, NodeId, World};
use tern::executor::{time, yield_now};

fn scheduler_events_per_second() -> (u64, f64) {
    let mut world = World::new(1).unwrap();
    for n in 0..10 {
        let node = world.add_node(&format!("n{n}")).unwrap();
        for _ in 0..4 {
            world
                .spawn_on(node, async {
                    for _ in 0..50_000 {
                        yield_now().await;
                    }
                })
                .detach();
        }
    }
    world.set_livelock_limit(u64::MAX);
    let start = Instant::now();
    let steps = world.run_until_idle();
    (steps, start.elapsed().as_secs_f64())
}

fn twenty_nodes_600_seconds() -> (u64, u64, f64) {
    const NODES: usize = 20;
    let mut world = World::new(7).unwrap();
    let ids: Vec<NodeId> = (0..NODES)
        .map(|n| world.add_node(&format!("n{n}")).unwrap())
        .collect();
    for &me in &ids {
        let sock = world.socket(me);
        let rx = sock.clone();
        world
            .spawn_on(me, async move {
                loop {
                    let _ = rx.recv().await;
                }
            })
            .detach();
        let mut rng = world.seeds().stream(&format!("app/{}", me.0));
        world
            .spawn_on(me, async move {
                for _ in 0..(600 * 50) {
                    let mut to = usize::try_from(rng.below(NODES as u64 - 1)).unwrap();
                    if to >= me.0 {
                        to += 1;
                    }
                    let _ = sock.send(NodeId(to), Delivery::Datagram, vec![0; 64]);
                    time::sleep(Duration::from_millis(20)).await;
                }
            })
            .detach();
    }
    let start = Instant::now();
    let steps = world.run_until_idle();
    let secs = start.elapsed().as_secs_f64();
    (steps, world.net_stats().delivered, secs)
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (steps, secs) = scheduler_events_per_second();
    println!(
        "sim scheduler: {steps} steps in {secs:.3} s = {:.2} M steps/s",
        steps as f64 / secs / 1e6
    );
    let (steps, delivered, secs) = twenty_nodes_600_seconds();
    println!(
        "sim 20 nodes x 600 s x 50 msg/s: {delivered} deliveries, {steps} steps, {secs:.2} s real ({:.0}x real time, {:.2} M steps/s)",
        600.0 / secs,
        steps as f64 / secs / 1e6
    );
}
