//! Protocol-typed references (a client with only the message types), references to
//! local components without a node, and local calls while a node shuts down.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, Ref, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::Instant;
use tern_executor::Runtime;
use tern_executor::sim::World;
use tern_proto::v1::ErrorCode;
use tern_transport::SimTransport;

// ----- the shared crate: messages and protocols -----

#[derive(Debug, Serialize, Deserialize)]
struct Add(u64);
impl RemoteMessage for Add {
    const NAME: &'static str = "test.v1.Add";
    type Codec = Postcard;
}

#[derive(Debug, Serialize, Deserialize)]
struct Total;
impl RemoteMessage for Total {
    const NAME: &'static str = "test.v1.Total";
    type Codec = Postcard;
}

tern_actors::protocol! {
    /// A counter, as its clients see it.
    Counting { Add => u64, Total => u64 }
}

tern_actors::protocol! {
    /// Only reading.
    Reading { Total => u64 }
}

// ----- the server's crate -----

struct Counter(u64);
impl Actor for Counter {}
impl Handler<Add> for Counter {
    type Reply = u64;
    async fn handle(&mut self, m: Add, _: &mut Context<Self>) -> u64 {
        self.0 += m.0;
        self.0
    }
}
impl Handler<Total> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Total, _: &mut Context<Self>) -> u64 {
        self.0
    }
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

#[test]
fn a_protocol_typed_ref_calls_a_remote_component_without_its_type() {
    for seed in 0..10 {
        let mut world = World::new(seed).unwrap();
        let (s, c) = (world.add_node("s").unwrap(), world.add_node("c").unwrap());
        let names = Rc::new(BTreeMap::from([("s".to_owned(), s), ("c".to_owned(), c)]));
        let ts = SimTransport::new("s", world.socket(s), names.clone());
        let tc = SimTransport::new("c", world.socket(c), names);
        world
            .spawn_on(s, async move {
                let node = Node::start(NodeConfig::new("s").peers(["c"]), ts).unwrap();
                node.export("counter", &spawn(Counter(0)))
                    .unwrap()
                    .serve::<Counting>();
            })
            .detach();
        let client = world.spawn_on(c, async move {
            let node = Node::start(NodeConfig::new("c").peers(["s"]), tc).unwrap();
            // Typed by the protocol only: no `Counter` here.
            let counter: Ref<Counting> = node.lookup("counter");
            counter.try_tell(Add(1)).unwrap();
            counter.tell(Add(2)).await.unwrap();
            let sum = counter.ask(Add(3)).await;
            let reader: Ref<Reading> = node.lookup("counter");
            let total = reader.ask(Total).await;
            (sum, total, node.stats().asks_sent)
        });
        world.run_until(secs(2.0));
        let (sum, total, asks) = world.runtime(c).unwrap().block_on(client).unwrap();
        assert_eq!((sum, total, asks), (Ok(6), Ok(6), 2), "seed {seed}");
    }
}

#[test]
fn a_protocol_typed_ref_to_a_component_on_the_same_node_never_encodes() {
    let mut world = World::new(1).unwrap();
    let s = world.add_node("s").unwrap();
    let names = Rc::new(BTreeMap::from([("s".to_owned(), s)]));
    let ts = SimTransport::new("s", world.socket(s), names);
    let h = world.spawn_on(s, async move {
        let node = Node::start(NodeConfig::new("s"), ts).unwrap();
        // Exported for `Add` only: a protocol call of `Total` is refused here as a
        // remote node would refuse it.
        node.export("counter", &spawn(Counter(0)))
            .unwrap()
            .accept::<Add>();
        let counter: Ref<Counting> = node.lookup("counter");
        let sum = counter.ask(Add(5)).await;
        let total = counter.ask(Total).await;
        (sum, total, node.stats().asks_sent, node.stats().tells_sent)
    });
    world.run_until(secs(1.0));
    let (sum, total, asks, tells) = world.runtime(s).unwrap().block_on(h).unwrap();
    assert_eq!(sum, Ok(5));
    assert!(
        matches!(
            total,
            Err(CallError::Remote {
                code: ErrorCode::UnknownMessageType,
                ..
            })
        ),
        "{total:?}"
    );
    assert_eq!((asks, tells), (0, 0), "nothing went through the session");
}

#[test]
fn a_local_ref_needs_no_node_and_no_transport() {
    Runtime::new().unwrap().block_on(async {
        let addr = spawn(Counter(0));
        let by_type: Ref<Counter> = Ref::local(&addr);
        let by_protocol: Ref<Counting> = Ref::local_as(&addr);
        let also: Ref<Counter> = (&addr).into();
        assert!(Node::current().is_none(), "no node in this runtime");
        by_type.try_tell(Add(1)).unwrap();
        by_protocol.tell(Add(2)).await.unwrap();
        assert_eq!(also.ask(Add(3)).await, Ok(6));
        assert_eq!(
            by_protocol.ask(Total).timeout(Duration::from_secs(1)).await,
            Ok(6)
        );
        assert_eq!(by_type.name(), "Counter");
        addr.stop();
        addr.stopped().await;
        assert_eq!(by_type.ask(Total).await, Err(CallError::Stopped));
        let back = by_protocol.try_tell(Add(7)).unwrap_err();
        assert_eq!((back.reason, back.message.0), (CallError::Stopped, 7));
    });
}

#[test]
fn local_callers_still_reach_their_components_after_the_node_shuts_down() {
    let mut world = World::new(2).unwrap();
    let (s, c) = (world.add_node("s").unwrap(), world.add_node("c").unwrap());
    let names = Rc::new(BTreeMap::from([("s".to_owned(), s), ("c".to_owned(), c)]));
    let ts = SimTransport::new("s", world.socket(s), names.clone());
    let tc = SimTransport::new("c", world.socket(c), names);
    let server = world.spawn_on(s, async move {
        let node = Node::start(NodeConfig::new("s").peers(["c"]), ts).unwrap();
        node.export("counter", &spawn(Counter(0)))
            .unwrap()
            .serve::<Counting>();
        let by_type = node.lookup::<Counter>("counter");
        let by_protocol = node.lookup::<Counting>("counter");
        tern_executor::time::sleep_until(secs(1.0)).await;
        // Withdrawn from the cluster; the components drain for the grace period.
        node.shutdown();
        let short = Duration::from_millis(200);
        let a = by_type.ask(Add(1)).timeout(short).await;
        let b = by_protocol.ask(Add(1)).timeout(short).await;
        (a, b, node.hosts("counter"))
    });
    let client = world.spawn_on(c, async move {
        let node = Node::start(NodeConfig::new("c").peers(["s"]), tc).unwrap();
        let counter: Ref<Counting> = node.lookup("counter");
        tern_executor::time::sleep_until(secs(2.0)).await;
        counter.ask(Total).timeout(Duration::from_millis(200)).await
    });
    world.run_until(secs(5.0));
    let (a, b, hosts) = world.runtime(s).unwrap().block_on(server).unwrap();
    assert_eq!((a, b), (Ok(1), Ok(2)), "local calls during the drain");
    assert!(hosts.is_empty(), "no longer announced: {hosts:?}");
    let remote = world.runtime(c).unwrap().block_on(client).unwrap();
    assert!(
        matches!(remote, Err(CallError::NotHosted { ref name }) if name == "counter"),
        "other nodes no longer reach it: {remote:?}"
    );
}
