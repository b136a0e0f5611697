//! The simulator's speed (docs/design/simulation.md H1, H2; issue 3's targets).
//!
//! 1. Scheduler events per second: 10 nodes, each with 4 tasks that yield in a loop;
//!    every step is one seeded choice of a node and one task poll.
//! 2. 20 nodes for 600 simulated seconds, each sending 50 datagrams per second to
//!    seeded random peers (600,000 messages), with the default latency model.
//! 3. H2: the same 20 nodes running tern's remote components: each node exports a
//!    component and sends 50 messages per second (four tells, then an ask) to
//!    components on seeded random other nodes by name, through the wire session and
//!    the simulated transport; 600 and 10,000 simulated seconds.
//! 4. H1 stand-in (gossip is issue 5): 20 nodes, each probing one seeded random peer
//!    per second with a datagram that is acknowledged, 1 % loss, and a random
//!    partition of one node for 10 s out of every 100 s; 10,000 simulated seconds.
//!
//! Run with `cargo bench -p tern-benches --bench sim`; it prints a table.

// Benches are binaries: nothing public to document; an unwrap that fires means the
// benchmark itself is wrong; the wall clock is what a benchmark measures.
#![allow(clippy::unwrap_used, missing_docs, clippy::disallowed_methods)]
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tern::executor::sim::{Delivery, NetConfig, NodeId, World};
use tern::executor::{time, yield_now};
use tern::remote::{Node, NodeConfig, Postcard, RemoteMessage};
use tern::transport::SimTransport;
use tern::{Actor, Context, Handler};

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

struct Sink;
impl Actor for Sink {}

#[derive(Serialize, Deserialize)]
struct Msg(u64);
impl RemoteMessage for Msg {
    const NAME: &'static str = "bench.v1.Msg";
    type Codec = Postcard;
}
impl Handler<Msg> for Sink {
    type Reply = u64;
    async fn handle(&mut self, m: Msg, _: &mut Context<Self>) -> u64 {
        m.0
    }
}

/// Returns (steps, messages handled by the network layer, real seconds).
fn actor_cluster(simulated_secs: u64) -> (u64, u64, f64) {
    const NODES: usize = 20;
    let mut world = World::new(11).unwrap();
    let names: Vec<String> = (0..NODES).map(|n| format!("n{n}")).collect();
    let ids: Vec<NodeId> = names.iter().map(|n| world.add_node(n).unwrap()).collect();
    let directory = Rc::new(
        names
            .iter()
            .cloned()
            .zip(ids.iter().copied())
            .collect::<BTreeMap<_, _>>(),
    );
    for (i, &me) in ids.iter().enumerate() {
        let t = SimTransport::new(names[i].clone(), world.socket(me), directory.clone());
        let peers: Vec<String> = names.iter().filter(|n| **n != names[i]).cloned().collect();
        let mut rng = world.seeds().stream(&format!("app/{i}"));
        world
            .spawn_on(me, async move {
                let node = Node::start(NodeConfig::new(t_name(i)).peers(peers.clone()), t).unwrap();
                let _ = node
                    .export("sink", &tern::spawn(Sink))
                    .unwrap()
                    .accept::<Msg>();
                let refs: Vec<_> = peers
                    .iter()
                    .map(|p| node.lookup_on::<Sink>(p, "sink"))
                    .collect();
                time::sleep(Duration::from_millis(100)).await;
                for k in 0..simulated_secs * 50 {
                    let to = &refs[usize::try_from(rng.below(refs.len() as u64)).unwrap()];
                    if k % 5 == 4 {
                        let ask = to.ask(Msg(k)).timeout(Duration::from_secs(1));
                        tern::spawn_task(async move {
                            let _ = ask.await;
                        })
                        .detach();
                    } else {
                        let _ = to.try_tell(Msg(k));
                    }
                    time::sleep(Duration::from_millis(20)).await;
                }
                node.shutdown();
            })
            .detach();
    }
    let start = Instant::now();
    let steps = world.run_until_idle();
    let secs = start.elapsed().as_secs_f64();
    (steps, world.net_stats().delivered, secs)
}

fn t_name(i: usize) -> String {
    format!("n{i}")
}

/// Probe/ack datagrams standing in for gossip. Returns (steps, deliveries, seconds).
fn probe_cluster(simulated_secs: u64) -> (u64, u64, f64) {
    const NODES: usize = 20;
    let mut world = World::new(13).unwrap();
    world.set_net(NetConfig {
        loss_ppm: 10_000,
        ..NetConfig::default()
    });
    let ids: Vec<NodeId> = (0..NODES)
        .map(|n| world.add_node(&format!("n{n}")).unwrap())
        .collect();
    for &me in &ids {
        let sock = world.socket(me);
        let rx = sock.clone();
        world
            .spawn_on(me, async move {
                loop {
                    let p = rx.recv().await;
                    if p.data.first() == Some(&0) {
                        let _ = rx.send(p.from, Delivery::Datagram, vec![1; 64]);
                    }
                }
            })
            .detach();
        let mut rng = world.seeds().stream(&format!("app/{}", me.0));
        world
            .spawn_on(me, async move {
                for _ in 0..simulated_secs {
                    let mut to = usize::try_from(rng.below(NODES as u64 - 1)).unwrap();
                    if to >= me.0 {
                        to += 1;
                    }
                    let _ = sock.send(NodeId(to), Delivery::Datagram, vec![0; 64]);
                    time::sleep(Duration::from_secs(1)).await;
                }
            })
            .detach();
    }
    let mut faults = world.seeds().stream("faults");
    let start = Instant::now();
    let mut steps = 0;
    for window in 0..simulated_secs / 100 {
        let base = tern::Instant::from_nanos(window * 100 * 1_000_000_000);
        let victim = ids[usize::try_from(faults.below(NODES as u64)).unwrap()];
        world.run_until(base + Duration::from_secs(45));
        for &other in &ids {
            if other != victim {
                world.partition(victim, other);
            }
        }
        world.run_until(base + Duration::from_secs(55));
        world.heal_all();
        world.run_until(base + Duration::from_secs(100));
        steps = world.steps();
    }
    steps += world.run_until_idle();
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
    for simulated in [600, 10_000] {
        let (steps, delivered, secs) = actor_cluster(simulated);
        println!(
            "sim H2 20 nodes x {simulated} s x 50 msg/s, remote components: {delivered} frames delivered, {steps} steps, {secs:.2} s real ({:.0}x real time, {:.2} M steps/s)",
            simulated as f64 / secs,
            steps as f64 / secs / 1e6
        );
    }
    let (steps, delivered, secs) = probe_cluster(10_000);
    println!(
        "sim H1 stand-in 20 nodes x 10000 s, probe+ack/s, 1% loss, partitions: {delivered} deliveries, {steps} steps, {secs:.2} s real ({:.0}x real time)",
        10_000.0 / secs
    );
}
