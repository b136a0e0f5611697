//! Replay: a seed gives the same trace hash run after run, after other seeds, and in
//! another process (docs/design/simulation.md D1, D2); extra application draws leave the
//! network's decisions alone (D5).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::{Delivery, NetConfig, NetStats, NodeId, TraceKind, World};
use tern_executor::time;

/// Three nodes exchanging datagrams over a lossy, duplicating network, with a crash
/// and a partition in the middle.
fn scenario_hash(seed: u64) -> String {
    let mut world = World::new(seed).expect("world");
    world.set_net(NetConfig {
        loss_ppm: 50_000,
        duplicate_ppm: 20_000,
        tail_mean: Duration::from_millis(2),
        ..NetConfig::default()
    });
    let nodes: Vec<_> = (0..3)
        .map(|i| world.add_node(&format!("n{i}")).expect("node"))
        .collect();
    let received = Rc::new(RefCell::new(0u64));
    for &me in &nodes {
        let sock = world.socket(me);
        let peers: Vec<_> = nodes.iter().copied().filter(|&n| n != me).collect();
        let rx = sock.clone();
        let count = received.clone();
        world
            .spawn_on(me, async move {
                loop {
                    let p = rx.recv().await;
                    *count.borrow_mut() += u64::from(p.data[0]);
                }
            })
            .detach();
        world
            .spawn_on(me, async move {
                for i in 0..40u8 {
                    let to = peers[usize::from(i) % peers.len()];
                    let _ = sock.send(to, Delivery::Datagram, vec![i]);
                    time::sleep(Duration::from_millis(3)).await;
                }
            })
            .detach();
    }
    world.run_until(tern_executor::Instant::ZERO + Duration::from_millis(40));
    world.partition(nodes[0], nodes[1]);
    world.crash(nodes[2]);
    world.run_until(tern_executor::Instant::ZERO + Duration::from_millis(80));
    world.heal_all();
    world.run_until_idle();
    format!("{} {}", world.trace_hash().hex(), received.borrow())
}

#[test]
fn a_seed_replays_after_other_seeds_in_the_same_process() {
    let first: Vec<String> = (0..10).map(scenario_hash).collect();
    let again: Vec<String> = (0..10).rev().map(scenario_hash).rev().collect();
    assert_eq!(first, again);
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(
        distinct.len(),
        10,
        "different seeds must give different traces"
    );
}

#[test]
fn a_seed_gives_the_same_hash_in_another_process() {
    const CHILD: &str = "TERN_SIM_CHILD_SEED";
    if let Ok(seed) = std::env::var(CHILD) {
        let seed: u64 = seed.parse().expect("a seed");
        // The child reports through stdout, which the parent reads.
        #[allow(clippy::print_stdout)]
        {
            println!("HASH {}", scenario_hash(seed));
        }
        return;
    }
    for seed in [3u64, 42] {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "a_seed_gives_the_same_hash_in_another_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, seed.to_string())
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let child = stdout
            .lines()
            .find_map(|l| l.split("HASH ").nth(1))
            .unwrap_or_else(|| panic!("child printed no hash: {stdout}"));
        assert_eq!(child, scenario_hash(seed), "seed {seed}");
    }
}

/// What the network decided in one run: its counters, and which node got which
/// message (by network sequence number), in delivery order.
type NetDecisions = (NetStats, Vec<(NodeId, u64)>);

/// Three nodes exchanging datagrams over a lossy, duplicating network. With
/// `app_draws`, node `n1` draws that many numbers from its application stream in the
/// middle of its sending.
fn net_decisions(seed: u64, app_draws: u32) -> NetDecisions {
    let mut world = World::new(seed).expect("world");
    world.keep_trace(true);
    world.set_net(NetConfig {
        loss_ppm: 100_000,
        duplicate_ppm: 100_000,
        tail_mean: Duration::from_millis(1),
        ..NetConfig::default()
    });
    let nodes: Vec<_> = (0..3)
        .map(|i| world.add_node(&format!("n{i}")).expect("node"))
        .collect();
    let drawn = Rc::new(RefCell::new(0u64));
    for &me in &nodes {
        let sock = world.socket(me);
        let peers: Vec<_> = nodes.iter().copied().filter(|&n| n != me).collect();
        let rx = sock.clone();
        world
            .spawn_on(me, async move {
                loop {
                    let _ = rx.recv().await;
                }
            })
            .detach();
        let mut app = world.seeds().stream(&format!("app/{}", world.name(me)));
        let draws = if me.0 == 1 { app_draws } else { 0 };
        let drawn = drawn.clone();
        world
            .spawn_on(me, async move {
                for i in 0..60u8 {
                    let to = peers[usize::from(i) % peers.len()];
                    let _ = sock.send(to, Delivery::Datagram, vec![i]);
                    if i == 20 {
                        for _ in 0..draws {
                            let x = app.next_u64();
                            *drawn.borrow_mut() ^= x;
                        }
                    }
                    time::sleep(Duration::from_micros(500)).await;
                }
            })
            .detach();
    }
    world.run_until_idle();
    assert_eq!(*drawn.borrow() != 0, app_draws > 0, "the draws happened");
    let delivered = world
        .trace_events()
        .iter()
        .filter(|e| e.kind == TraceKind::Deliver)
        .map(|e| (e.node, e.detail))
        .collect();
    (world.net_stats(), delivered)
}

/// docs/design/simulation.md D5: 1,000 extra draws from one node's application stream
/// leave every network decision (losses, duplicates, latencies, so deliveries and
/// their order) exactly as they were.
#[test]
fn extra_application_draws_do_not_move_the_network_decisions() {
    for seed in [1u64, 7, 2024] {
        let (stats, delivered) = net_decisions(seed, 0);
        assert!(stats.lost > 0 && stats.duplicated > 0, "{stats:?}");
        assert_eq!(stats.delivered, delivered.len() as u64);
        assert_eq!(
            net_decisions(seed, 1_000),
            (stats, delivered),
            "seed {seed}"
        );
    }
    // The comparison does see a change in the network's draws: another seed differs.
    assert_ne!(net_decisions(1, 0), net_decisions(2, 0));
}
