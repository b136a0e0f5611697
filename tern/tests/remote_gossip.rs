//! Remote components whose directory comes from membership gossip, on the simulated
//! network: no static peers, only a seed list.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use tern::actors::{Actor, Context, Handler, StreamMessage, Streaming, spawn};
use tern::discovery::{
    Discovery, GossipConfig, Identity, Key, Keyring, Membership, SimDatagrams, sim_addr,
};
use tern::executor::{Instant, JoinHandle};
use tern::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern::sim::{NodeId, World};
use tern::transport::SimTransport;

struct Squarer;
impl Actor for Squarer {}

#[derive(Debug, Serialize, Deserialize)]
struct Square(u64);
impl RemoteMessage for Square {
    const NAME: &'static str = "test.v1.Square";
    type Codec = Postcard;
}
impl Handler<Square> for Squarer {
    type Reply = u64;
    async fn handle(&mut self, m: Square, _: &mut Context<Self>) -> u64 {
        m.0 * m.0
    }
}

/// Streams the squares of `0..n`.
#[derive(Debug, Serialize, Deserialize)]
struct Squares(u64);
impl RemoteMessage for Squares {
    const NAME: &'static str = "test.v1.Squares";
    type Codec = Postcard;
}
impl StreamMessage for Squares {
    type Item = u64;
}
impl Handler<Streaming<Squares>> for Squarer {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Squares>, _: &mut Context<Self>) {
        let (m, out) = req.into_parts();
        out.detach(futures_lite::stream::iter((0..m.0).map(|i| i * i)));
    }
}

struct Cluster {
    world: World,
    ids: Vec<NodeId>,
    names: Rc<BTreeMap<String, NodeId>>,
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

fn cluster(seed: u64, n: usize) -> Cluster {
    let mut world = World::new(seed).unwrap();
    let ids: Vec<NodeId> = (0..n)
        .map(|i| world.add_node(&format!("n{i}")).unwrap())
        .collect();
    let names = Rc::new(
        ids.iter()
            .enumerate()
            .map(|(i, id)| (format!("n{i}"), *id))
            .collect(),
    );
    Cluster { world, ids, names }
}

/// Starts node `i` (generation `generation`) with the seed list `[n0]`; `n{i}` exports
/// a squarer when `export` is set.
fn start(c: &Cluster, i: usize, generation: u64, export: bool) {
    let id = c.ids[i];
    let name = format!("n{i}");
    let transport = SimTransport::new(name.clone(), c.world.socket(id), c.names.clone());
    let datagrams = SimDatagrams::new(c.world.socket(id));
    let seed_addr = sim_addr(c.ids[0]);
    let ring = Keyring::new(1, Key::from_bytes([5; 32]));
    c.world
        .spawn_on(id, async move {
            let me = Identity {
                name: name.clone(),
                generation,
                addr: datagrams.local_addr(),
            };
            let core = Membership::new(GossipConfig::new("test"), ring, me, generation).unwrap();
            let discovery = Discovery::start(core, datagrams, &[seed_addr]);
            let node =
                Node::start(NodeConfig::new(&name).generation(generation), transport).unwrap();
            tern::membership::use_discovery(&node, &discovery, None);
            if export {
                node.export("squarer", &spawn(Squarer))
                    .unwrap()
                    .accept::<Square>()
                    .accept_stream::<Squares>();
            }
        })
        .detach();
}

fn result<T: 'static>(c: &mut Cluster, i: usize, h: JoinHandle<T>, until: f64) -> T {
    c.world.run_until(secs(until));
    c.world.runtime(c.ids[i]).unwrap().block_on(h).unwrap()
}

#[test]
fn a_name_is_found_through_membership_and_a_later_one_without_restart() {
    let mut c = cluster(7, 3);
    for i in 0..3 {
        start(&c, i, 1, i == 1);
    }
    // n0 asks by name: the directory comes from n1's gossiped facts.
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        node.lookup::<Squarer>("squarer")
            .ask(Square(7))
            .timeout(Duration::from_secs(10))
            .await
    });
    assert_eq!(result(&mut c, 0, h, 5.0), Ok(49));
    // A component exported later on n2 is found by name, pinned, with no restart.
    c.world
        .spawn_on(c.ids[2], async {
            let node = Node::current().unwrap();
            node.export("late", &spawn(Squarer))
                .unwrap()
                .accept::<Square>();
        })
        .detach();
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        node.lookup_on::<Squarer>("n2", "late")
            .ask(Square(3))
            .timeout(Duration::from_secs(10))
            .await
    });
    assert_eq!(result(&mut c, 0, h, 10.0), Ok(9));
}

#[test]
fn a_dead_node_fails_calls_fast_and_its_new_generation_is_accepted() {
    let mut c = cluster(11, 4);
    for i in 0..4 {
        start(&c, i, 1, i == 1);
    }
    c.world.run_until(secs(4.0));
    c.world.crash(c.ids[1]);
    // Membership declares n1 dead within the suspicion timeout (4 s minimum at N=4,
    // up to 6x without confirmations); then pinned calls fail at once.
    c.world.run_until(secs(4.0 + 30.0));
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        let t0 = tern::time::now();
        let r = node
            .lookup_on::<Squarer>("n1", "squarer")
            .ask(Square(2))
            .timeout(Duration::from_secs(10))
            .await;
        (r, tern::time::now().saturating_duration_since(t0))
    });
    let (r, took) = result(&mut c, 0, h, 35.0);
    // Never sent, so never handled: the node is unreachable for good.
    assert_eq!(r, Err(CallError::Unreachable("n1".into())));
    assert!(
        took < Duration::from_millis(1),
        "failed fast, took {took:?}"
    );
    // By name too: its only host is gone, so the call fails at once rather than wait.
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        node.lookup::<Squarer>("squarer")
            .ask(Square(2))
            .timeout(Duration::from_secs(10))
            .await
    });
    assert_eq!(
        result(&mut c, 0, h, 35.5),
        Err(CallError::NotHosted {
            name: "squarer".into()
        })
    );
    // And a streamed ask the same way.
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        let mut s = node.lookup::<Squarer>("squarer").ask_stream(Squares(3));
        s.next().await
    });
    assert_eq!(
        result(&mut c, 0, h, 35.6),
        Some(Err(CallError::NotHosted {
            name: "squarer".into()
        }))
    );
    // n1 comes back as generation 2 and is routed to again.
    c.world.restart(c.ids[1]).unwrap();
    start(&c, 1, 2, true);
    // Until membership has the new generation, calls pinned to n1 still fail fast.
    c.world.run_until(secs(40.0));
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        let s = node.lookup::<Squarer>("squarer").ask_stream(Squares(4));
        s.collect::<Vec<_>>().await
    });
    assert_eq!(result(&mut c, 0, h, 41.0), vec![Ok(0), Ok(1), Ok(4), Ok(9)]);
    let h = c.world.spawn_on(c.ids[0], async {
        let node = Node::current().unwrap();
        node.lookup_on::<Squarer>("n1", "squarer")
            .ask(Square(5))
            .timeout(Duration::from_secs(10))
            .await
    });
    assert_eq!(result(&mut c, 0, h, 45.0), Ok(25));
}
