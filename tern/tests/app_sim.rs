//! An [`App`] on the simulator ([`SimCluster`]): containers started from their
//! configuration files find each other by gossip, a restarted container (a new
//! generation) is called again, a stopped one is recorded as *left*, and a container
//! that cannot start, or a start that cannot be done, is a typed error or a stopped
//! world, never a silent gap. Each scenario runs over a few seeds.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::app::config::NodeSettings;
use tern::app::{App, AppError, Running, SimCluster};
use tern::discovery::State;
use tern::remote::{CallError, Node, Postcard, RemoteMessage};
use tern::sim::World;
use tern::{Actor, Context, Environment, Handler, Instant};

mod sim_node;

/// Which generation of which container answered.
struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize)]
struct Ping;
impl RemoteMessage for Ping {
    const NAME: &'static str = "test.v1.Ping";
    type Codec = Postcard;
}

impl Handler<Ping> for Echo {
    type Reply = u64;
    async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        Environment::current()
            .get::<NodeSettings>()
            .map_or(u64::MAX, |s| s.generation)
    }
}

fn app() -> App {
    App::new("sim-test")
        .component("echo", |node: &Node| {
            drop(node.export("echo", &tern::spawn(Echo))?.accept::<Ping>());
            Ok(())
        })
        .component("broken", |node: &Node| {
            // The second export of one name is refused: this starter always fails.
            drop(node.export("twice", &tern::spawn(Echo))?);
            drop(node.export("twice", &tern::spawn(Echo))?);
            Ok(())
        })
}

fn settings(name: &str, port: u16, generation: u64, host: &str) -> NodeSettings {
    sim_node::settings(name, port, generation, "app-sim", host, "")
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

type Seen<T> = Rc<RefCell<Vec<T>>>;

/// Asks "echo" from the front's container, recording the outcome.
fn ask_echo(world: &World, cluster: &SimCluster, seen: &Seen<Result<u64, CallError>>) {
    let seen = seen.clone();
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let node = Running::current().unwrap().node().clone();
            let r = node
                .lookup::<Echo>("echo")
                .ask(Ping)
                .timeout(Duration::from_secs(1))
                .await;
            seen.borrow_mut().push(r);
        })
        .detach();
}

#[test]
fn a_restarted_container_is_found_again_by_its_new_generation() {
    for seed in 0..4 {
        let mut world = World::new(seed).unwrap();
        let cluster = SimCluster::new(&mut world, app(), &["front", "w1"]).unwrap();
        cluster
            .start(&world, &settings("front", 7001, 1, ""))
            .unwrap();
        cluster
            .start(&world, &settings("w1", 7002, 1, "\"echo\""))
            .unwrap();
        world.run_until(at(3));
        let seen: Seen<Result<u64, CallError>> = Rc::default();
        ask_echo(&world, &cluster, &seen);
        world.run_until(at(5));

        let w1 = cluster.node("w1").unwrap();
        world.crash(w1);
        // Starting a crashed node's container is refused, typed.
        assert!(matches!(
            cluster.start(&world, &settings("w1", 7002, 2, "\"echo\"")),
            Err(AppError::Simulation(_))
        ));
        world.run_until(at(6));
        world.restart(w1).unwrap();
        cluster
            .start(&world, &settings("w1", 7002, 2, "\"echo\""))
            .unwrap();
        world.run_until(at(10));
        ask_echo(&world, &cluster, &seen);
        world.run_until(at(12));

        assert!(
            world.violation().is_none(),
            "seed {seed}: {:?}",
            world.violation()
        );
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2, "seed {seed}");
        assert_eq!(
            seen[0].as_ref().ok(),
            Some(&1),
            "seed {seed}: {:?}",
            seen[0]
        );
        assert_eq!(
            seen[1].as_ref().ok(),
            Some(&2),
            "seed {seed}: {:?}",
            seen[1]
        );
    }
}

#[test]
fn a_stopped_container_leaves_and_is_recorded_as_left() {
    for seed in 0..4 {
        let mut world = World::new(seed).unwrap();
        let cluster = SimCluster::new(&mut world, app(), &["front", "w1", "w2"]).unwrap();
        for (i, name) in ["front", "w1", "w2"].into_iter().enumerate() {
            let port = 7001 + u16::try_from(i).unwrap();
            cluster
                .start(&world, &settings(name, port, 1, "\"echo\""))
                .unwrap();
        }
        world.run_until(at(4));
        cluster.stop(&world, "w1").unwrap();
        world.run_until(at(10));
        let states: Seen<Option<State>> = Rc::default();
        let s = states.clone();
        world
            .spawn_on(cluster.node("front").unwrap(), async move {
                let running = Running::current().unwrap();
                let d = running.discovery().unwrap();
                s.borrow_mut()
                    .extend(["w1", "w2"].map(|n| d.member(n).map(|m| m.state)));
            })
            .detach();
        world.run_until(at(11));
        assert!(world.violation().is_none(), "seed {seed}");
        assert_eq!(
            *states.borrow(),
            vec![Some(State::Left), Some(State::Alive)],
            "seed {seed}"
        );
    }
}

#[test]
fn a_container_that_cannot_start_stops_the_world() {
    let mut world = World::new(1).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &["front"]).unwrap();
    cluster
        .start(&world, &settings("front", 7001, 1, "\"broken\""))
        .unwrap();
    world.run_until(at(1));
    let failures = cluster.failures();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].starts_with("front: "), "{failures:?}");
    let violation = world.violation().map(|v| v.message.clone()).unwrap();
    assert!(violation.contains("front"), "{violation}");
}

#[test]
fn starts_that_cannot_be_done_are_typed_errors() {
    let mut world = World::new(1).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &["front", "w1"]).unwrap();
    // No node of that name.
    assert!(matches!(
        cluster.start(&world, &settings("w9", 7009, 1, "")),
        Err(AppError::Simulation(_))
    ));
    // A component the application does not have.
    assert!(matches!(
        cluster.start(&world, &settings("w1", 7002, 1, "\"nope\"")),
        Err(AppError::UnknownComponent { .. })
    ));
    // Two containers advertising one gossip address.
    cluster
        .start(&world, &settings("front", 7001, 1, ""))
        .unwrap();
    assert!(matches!(
        cluster.start(&world, &settings("w1", 7001, 1, "")),
        Err(AppError::Simulation(_))
    ));
    assert!(matches!(
        cluster.stop(&world, "w9"),
        Err(AppError::Simulation(_))
    ));
    world.run_until(at(1));
    assert!(world.violation().is_none());
}

#[test]
fn datagrams_to_an_address_nobody_advertises_are_counted() {
    let mut world = World::new(2).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &["w1"]).unwrap();
    // w1's seed (port 7001) is a container that was never started.
    cluster.start(&world, &settings("w1", 7002, 1, "")).unwrap();
    world.run_until(at(3));
    assert!(world.violation().is_none());
    assert!(cluster.unaddressed_datagrams() > 0);
}
