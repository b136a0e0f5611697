//! Horizons from the configuration file, applied at start, on the simulator over a few
//! seeds: with `[horizons] echo = "process"` a container's asks to `echo` in another
//! container fail with `OutsideHorizon`; with `"node"` (the simulated containers share
//! a host) or nothing configured they are answered.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::app::config::NodeSettings;
use tern::app::{App, Running, SimCluster};
use tern::remote::{CallError, Node, Postcard, RemoteMessage};
use tern::sim::World;
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
        m.0
    }
}

fn app() -> App {
    App::new("flow-config").component("echo", |node: &Node| {
        drop(node.export("echo", &tern::spawn(Echo))?.accept::<Ping>());
        Ok(())
    })
}

fn settings(name: &str, port: u16, host: &str, extra: &str) -> NodeSettings {
    sim_node::settings(name, port, 1, "flow-config", host, extra)
}

/// What front's ask to `echo` (hosted on w1 only) gives with `extra` in its config.
fn ask(seed: u64, extra: &str) -> Result<u32, CallError> {
    let mut world = World::new(seed).unwrap();
    let cluster = SimCluster::new(&mut world, app(), &["front", "w1"]).unwrap();
    cluster
        .start(&world, &settings("front", 7001, "", extra))
        .unwrap();
    cluster
        .start(&world, &settings("w1", 7002, "\"echo\"", ""))
        .unwrap();
    world.run_until(Instant::ZERO + Duration::from_secs(3));
    let out: Rc<RefCell<Option<Result<u32, CallError>>>> = Rc::default();
    let o = out.clone();
    world
        .spawn_on(cluster.node("front").unwrap(), async move {
            let node = Running::current().unwrap().node().clone();
            let r = node
                .lookup::<Echo>("echo")
                .ask(Ping(5))
                .timeout(Duration::from_secs(1))
                .await;
            *o.borrow_mut() = Some(r);
        })
        .detach();
    world.run_until(Instant::ZERO + Duration::from_secs(5));
    out.take().expect("the ask ended")
}

#[test]
fn configured_horizons_apply_from_the_start() {
    for seed in [1, 2, 3] {
        assert_eq!(ask(seed, ""), Ok(5), "seed {seed}: no horizon configured");
        assert_eq!(
            ask(seed, "[horizons]\necho = \"node\"\n"),
            Ok(5),
            "seed {seed}: same host"
        );
        let r = ask(seed, "[horizons]\necho = \"process\"\n");
        assert!(
            matches!(r, Err(CallError::OutsideHorizon { .. })),
            "seed {seed}: {r:?}"
        );
        let r = ask(
            seed,
            "[flows.other]\nhorizon = \"process\"\n[horizons]\napp = \"process\"\n",
        );
        assert!(
            matches!(r, Err(CallError::OutsideHorizon { .. })),
            "seed {seed}: the application's horizon: {r:?}"
        );
    }
}
