//! The `spare` gossip fact on the simulator, over a few seeds: an idle container
//! publishes (nearly) all of its capacity as spare; kept busy by charged work (the
//! simulator's cost model) its spare falls, and the other containers see it through
//! gossip; idle again, it rises back.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern::app::config::NodeSettings;
use tern::app::{App, Running, SimCluster};
use tern::executor::time;
use tern::sim::World;
use tern::{Actor, Instant};

mod sim_node;

struct Idle;
impl Actor for Idle {}

fn app() -> App {
    App::new("spare").component("echo", |node: &tern::remote::Node| {
        drop(node.export("echo", &tern::spawn(Idle))?);
        Ok(())
    })
}

fn settings(name: &str, port: u16, capacity: u64) -> NodeSettings {
    let extra = format!("capacity = {capacity}");
    sim_node::settings(name, port, 1, "spare", "\"echo\"", &extra)
}

fn at(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

/// The `spare` fact of `of` as `front` sees it.
fn spare_seen(world: &mut World, cluster: &SimCluster, of: &'static str) -> Option<f64> {
    let out: Rc<RefCell<Option<f64>>> = Rc::default();
    let o = out.clone();
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let d = Running::current().unwrap().discovery().unwrap().clone();
            *o.borrow_mut() = d
                .members()
                .iter()
                .find(|m| m.name == of)
                .and_then(|m| m.fact("spare"))
                .and_then(|v| v.parse().ok());
        })
        .detach();
    let then = world.now() + Duration::from_millis(10);
    world.run_until(then);
    out.take()
}

fn run(seed: u64) {
    let mut world = World::new(seed).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &["front", "w1", "w2"]).unwrap();
    cluster.start(&world, &settings("front", 7001, 0)).unwrap();
    cluster.start(&world, &settings("w1", 7002, 0)).unwrap();
    cluster.start(&world, &settings("w2", 7003, 4)).unwrap();
    world.run_until(at(20));
    let w1 = spare_seen(&mut world, &cluster, "w1").expect("w1's spare");
    let w2 = spare_seen(&mut world, &cluster, "w2").expect("w2's spare");
    assert!(
        w1 > 0.9 && w1 <= 1.0,
        "seed {seed}: idle w1, one unit: {w1}"
    );
    assert!(
        w2 > 3.6 && w2 <= 4.0,
        "seed {seed}: idle w2, four units: {w2}"
    );

    // w1 and w2 busy 80 % of the time for 30 s.
    for name in ["w1", "w2"] {
        world
            .spawn_on(cluster.node(name).unwrap(), async {
                for _ in 0..300 {
                    tern::sim::charge(Duration::from_millis(80));
                    time::sleep(Duration::from_millis(100)).await;
                }
            })
            .detach();
    }
    world.run_until(at(45));
    let w1 = spare_seen(&mut world, &cluster, "w1").expect("w1's spare");
    let w2 = spare_seen(&mut world, &cluster, "w2").expect("w2's spare");
    assert!(w1 < 0.35, "seed {seed}: busy w1: {w1}");
    assert!(w2 < 1.4, "seed {seed}: busy w2: {w2}");

    // Idle again.
    world.run_until(at(75));
    let w1 = spare_seen(&mut world, &cluster, "w1").expect("w1's spare");
    assert!(w1 > 0.9, "seed {seed}: idle again: {w1}");
}

#[test]
fn spare_capacity_falls_when_a_container_is_busy_and_rises_back() {
    for seed in [1, 5, 9] {
        run(seed);
    }
}
