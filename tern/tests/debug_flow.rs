//! Debug tracing switched on in production, on the simulator: one container turns on
//! a switch for the component `echo`; gossip spreads it to every container; while it
//! is on, each message of the flow is logged (`tern.debug.message`) and the handler's
//! own `debug` events pass an `info` filter; when its time is up it ends by itself
//! everywhere and the flow is quiet again. The same for a named flow (`flow:orders`):
//! each call of that flow is logged by the caller and by the container that handles
//! it, calls of another flow are not. Over a few seeds.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::app::config::NodeSettings;
use tern::app::{App, Running, SimCluster};
use tern::log::{Capture, LogFormat, LogSettings};
use tern::remote::{Node, Postcard, RemoteMessage};
use tern::sim::World;
use tern::trace::debug::{self, Target};
use tern::{Actor, Context, Handler, Instant};

mod sim_node;

struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize)]
struct Ping(u32);
impl RemoteMessage for Ping {
    const NAME: &'static str = "test.v1.Ping";
    type Codec = Postcard;
}

impl Handler<Ping> for Echo {
    type Reply = u32;
    async fn handle(&mut self, m: Ping, _: &mut Context<Self>) -> u32 {
        // Filtered out at `info`, unless this message is in a debug flow.
        tracing::debug!(name: "test.echo.handling", n = m.0, "echo handling");
        m.0
    }
}

fn app() -> App {
    App::new("debug-flow").component("echo", |node: &Node| {
        drop(node.export("echo", &tern::spawn(Echo))?.accept::<Ping>());
        Ok(())
    })
}

fn settings(name: &str, port: u16, host: &str) -> NodeSettings {
    sim_node::settings(name, port, 1, "debug-flow", host, "")
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

const NAMES: [&str; 3] = ["front", "w1", "w2"];

/// Asks `echo` `n` times from the front, numbered from `first`.
fn ask_echo(world: &World, cluster: &SimCluster, first: u32, n: u32) {
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let node = Running::current().unwrap().node().clone();
            for i in first..first + n {
                let _ = node
                    .lookup::<Echo>("echo")
                    .ask(Ping(i))
                    .timeout(Duration::from_secs(1))
                    .await;
            }
        })
        .detach();
}

/// How many switches each container has on now.
fn switches(world: &World, cluster: &SimCluster) -> Rc<RefCell<Vec<usize>>> {
    let seen: Rc<RefCell<Vec<usize>>> = Rc::default();
    for name in NAMES {
        let seen = seen.clone();
        world
            .spawn_on(cluster.node(name).unwrap(), async move {
                seen.borrow_mut().push(debug::switches(name).len());
            })
            .detach();
    }
    seen
}

/// The JSON lines named `name`.
fn named(capture: &Capture, name: &str) -> Vec<serde_json::Value> {
    capture
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == name)
        .collect()
}

fn run(seed: u64) {
    let capture = Capture::default();
    let log = LogSettings {
        format: LogFormat::Json,
        filter: "info".into(),
        ..LogSettings::default()
    };
    let _log =
        tracing::subscriber::set_default(tern::log::subscriber(&log, capture.clone()).unwrap());
    let mut world = World::new(seed).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &NAMES).unwrap();
    for (i, (name, host)) in [("front", ""), ("w1", "\"echo\""), ("w2", "\"echo\"")]
        .into_iter()
        .enumerate()
    {
        let port = 7001 + u16::try_from(i).unwrap();
        cluster.start(&world, &settings(name, port, host)).unwrap();
    }
    world.run_until(at(3_000));
    // Before: the handler's debug events are filtered out.
    ask_echo(&world, &cluster, 0, 2);
    world.run_until(at(3_500));
    assert!(
        named(&capture, "test.echo.handling").is_empty(),
        "seed {seed}"
    );

    // The operator switches on `echo` at the front for 5 s.
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let running = Running::current().unwrap();
            let target: Target = "echo".parse().unwrap();
            running
                .trace_flow(target, Duration::from_secs(5), 1000)
                .unwrap();
        })
        .detach();
    world.run_until(at(6_000));
    let on = switches(&world, &cluster);
    world.run_until(at(6_010));
    assert_eq!(
        *on.borrow(),
        [1, 1, 1],
        "seed {seed}: spread to every container"
    );

    ask_echo(&world, &cluster, 10, 4);
    world.run_until(at(7_000));
    let handled = named(&capture, "tern.debug.message");
    assert_eq!(handled.len(), 4, "seed {seed}: {handled:#?}");
    assert!(
        handled.iter().all(|l| l["component"] == "echo"
            && l["direction"] == "in"
            && l["message_type"] == "test.v1.Ping"),
        "seed {seed}: {handled:#?}"
    );
    let raised: Vec<_> = named(&capture, "test.echo.handling")
        .iter()
        .map(|l| l["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        raised,
        [10, 11, 12, 13],
        "seed {seed}: the flow's debug events pass"
    );

    // Time is up at 8.5 s: off by itself everywhere, and quiet again.
    world.run_until(at(10_000));
    let off = switches(&world, &cluster);
    world.run_until(at(10_010));
    assert_eq!(*off.borrow(), [0, 0, 0], "seed {seed}: ended everywhere");
    assert!(!debug::any_on(), "seed {seed}");
    ask_echo(&world, &cluster, 20, 3);
    world.run_until(at(11_000));
    assert_eq!(
        named(&capture, "tern.debug.message").len(),
        4,
        "seed {seed}"
    );
    assert_eq!(
        named(&capture, "test.echo.handling").len(),
        4,
        "seed {seed}"
    );
    assert!(
        !named(&capture, "tern.debug.switched_off").is_empty(),
        "seed {seed}: the end is logged"
    );
    assert!(world.violation().is_none(), "seed {seed}");
}

// One test for both kinds of switch: whether any switch is on is process-wide
// (`debug::any_on`), so the two must not run side by side on test threads.
#[test]
fn debug_switches_spread_record_their_flow_and_end_by_themselves() {
    for seed in 0..3 {
        run(seed);
        run_named_flow(seed);
    }
}

/// Asks `echo` `n` times from the front through a reference of flow `flow`,
/// numbered from `first`.
fn ask_in_flow(world: &World, cluster: &SimCluster, flow: &'static str, first: u32, n: u32) {
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let node = Running::current().unwrap().node().clone();
            let echo = node.lookup::<Echo>("echo").with_flow(flow);
            for i in first..first + n {
                let _ = echo.ask(Ping(i)).timeout(Duration::from_secs(1)).await;
            }
        })
        .detach();
}

fn run_named_flow(seed: u64) {
    let capture = Capture::default();
    let log = LogSettings {
        format: LogFormat::Json,
        filter: "info".into(),
        ..LogSettings::default()
    };
    let _log =
        tracing::subscriber::set_default(tern::log::subscriber(&log, capture.clone()).unwrap());
    let mut world = World::new(seed).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &NAMES).unwrap();
    for (i, (name, host)) in [("front", ""), ("w1", "\"echo\""), ("w2", "\"echo\"")]
        .into_iter()
        .enumerate()
    {
        let port = 7001 + u16::try_from(i).unwrap();
        cluster.start(&world, &settings(name, port, host)).unwrap();
    }
    world.run_until(at(3_000));
    ask_in_flow(&world, &cluster, "orders", 0, 2);
    world.run_until(at(3_500));
    assert!(
        named(&capture, "tern.debug.message").is_empty(),
        "seed {seed}"
    );

    // The operator switches on the flow `orders` at a worker, for 5 s: the caller
    // (front) learns of it by gossip only.
    world
        .spawn_on(cluster.node("w1").unwrap(), async move {
            let running = Running::current().unwrap();
            let target: Target = "flow:orders".parse().unwrap();
            running
                .trace_flow(target, Duration::from_secs(5), 1000)
                .unwrap();
        })
        .detach();
    world.run_until(at(6_000));
    let on = switches(&world, &cluster);
    world.run_until(at(6_010));
    assert_eq!(*on.borrow(), [1, 1, 1], "seed {seed}: spread everywhere");

    ask_in_flow(&world, &cluster, "reports", 100, 3);
    ask_in_flow(&world, &cluster, "orders", 10, 6);
    world.run_until(at(7_000));
    let lines = named(&capture, "tern.debug.message");
    assert!(
        lines.iter().all(|l| l["flow"] == "orders"),
        "seed {seed}: only the watched flow: {lines:#?}"
    );
    let out: Vec<_> = lines.iter().filter(|l| l["direction"] == "out").collect();
    let into: Vec<_> = lines.iter().filter(|l| l["direction"] == "in").collect();
    assert_eq!(
        out.len(),
        6,
        "seed {seed}: each call at the caller: {lines:#?}"
    );
    assert_eq!(
        into.len(),
        6,
        "seed {seed}: each request where handled: {lines:#?}"
    );
    assert!(
        out.iter()
            .all(|l| l["node"] == "front" && l["component"] == "echo"),
        "seed {seed}: {out:#?}"
    );
    assert!(
        into.iter().all(
            |l| (l["node"] == "w1" || l["node"] == "w2") && l["message_type"] == "test.v1.Ping"
        ),
        "seed {seed}: {into:#?}"
    );
    // A call and its request share their trace id.
    let mut out_ids: Vec<_> = out.iter().map(|l| l["trace_id"].to_string()).collect();
    let mut in_ids: Vec<_> = into.iter().map(|l| l["trace_id"].to_string()).collect();
    out_ids.sort();
    in_ids.sort();
    assert_eq!(out_ids, in_ids, "seed {seed}");
    let raised: Vec<_> = named(&capture, "test.echo.handling")
        .iter()
        .map(|l| l["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        raised,
        [10, 11, 12, 13, 14, 15],
        "seed {seed}: the flow's debug events pass, the other flow's do not"
    );

    // Time is up at about 8.5 s: off by itself everywhere, and quiet again.
    world.run_until(at(10_000));
    let off = switches(&world, &cluster);
    world.run_until(at(10_010));
    assert_eq!(*off.borrow(), [0, 0, 0], "seed {seed}: ended everywhere");
    assert!(!debug::any_on(), "seed {seed}");
    ask_in_flow(&world, &cluster, "orders", 20, 3);
    world.run_until(at(11_000));
    assert_eq!(
        named(&capture, "tern.debug.message").len(),
        12,
        "seed {seed}"
    );
    assert!(world.violation().is_none(), "seed {seed}");
}
