//! A container stopping (SIGTERM, or `SimCluster::stop`) withdraws its components from
//! the cluster, but callers in the same container still reach them for the grace
//! period: other nodes see the name go (`NotHosted`), local callers are not cut off.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::app::Running;
use tern::remote::prelude::*;

mod sim_node;

struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "test.v1.Ping")]
struct Ping(u64);

impl Handler<Ping> for Echo {
    type Reply = u64;
    async fn handle(&mut self, m: Ping, _: &mut Context<Self>) -> u64 {
        m.0
    }
}

fn app() -> App {
    App::new("drain-test").component("echo", |node: &Node| {
        node.export("echo", &spawn(Echo))?.accept::<Ping>();
        Ok(())
    })
}

fn settings(name: &str, port: u16, host: &str) -> NodeSettings {
    sim_node::settings(
        name,
        port,
        1,
        "drain",
        host,
        "[timeouts]\nshutdown_grace_ms = 2000",
    )
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

type Seen = Rc<RefCell<Vec<(u64, Result<u64, CallError>)>>>;

/// Asks "echo" by name from `on`'s container every 100 ms from `from` to `to`
/// (virtual ms), recording when and what came back.
fn ask_by_name(world: &World, on: NodeId, from: u64, to: u64) -> Seen {
    let seen: Seen = Rc::default();
    let log = seen.clone();
    world
        .spawn_on(on, async move {
            time::sleep_until(at(from)).await;
            let node = Running::current().unwrap().node().clone();
            let echo = node.lookup::<Echo>("echo");
            let mut t = from;
            while t < to {
                let r = echo.ask(Ping(t)).timeout(Duration::from_millis(50)).await;
                log.borrow_mut().push((t, r));
                t += 100;
                time::sleep_until(at(t)).await;
            }
        })
        .detach();
    seen
}

#[test]
fn local_callers_reach_their_components_while_the_container_drains() {
    for seed in 0..4 {
        let mut world = World::new(seed).unwrap();
        let cluster = SimCluster::new(&mut world, app(), &["front", "w1"]).unwrap();
        cluster.start(&world, &settings("front", 7001, "")).unwrap();
        cluster
            .start(&world, &settings("w1", 7002, "\"echo\""))
            .unwrap();
        let (front, w1) = (cluster.node("front").unwrap(), cluster.node("w1").unwrap());
        // Stopped at 4 s; the grace period runs to 6 s.
        let local = ask_by_name(&world, w1, 3_000, 5_800);
        let remote = ask_by_name(&world, front, 3_000, 5_800);
        world.run_until(at(4_000));
        cluster.stop(&world, "w1").unwrap();
        world.run_until(at(7_000));

        let local = local.borrow();
        assert_eq!(local.len(), 28, "seed {seed}");
        for (t, r) in local.iter() {
            assert_eq!(*r, Ok(*t), "seed {seed}: local ask at {t} ms");
        }
        // Other nodes: answered before the stop, then the name is gone.
        let remote = remote.borrow();
        assert!(
            remote.iter().any(|(t, r)| *t < 4_000 && r.is_ok()),
            "seed {seed}: {remote:?}"
        );
        let late: Vec<_> = remote.iter().filter(|(t, _)| *t >= 4_500).collect();
        assert!(!late.is_empty());
        for (t, r) in late {
            assert!(
                matches!(r, Err(CallError::NotHosted { name }) if name == "echo"),
                "seed {seed}: remote ask at {t} ms: {r:?}"
            );
        }
    }
}
