//! One trace across three containers on the simulator: a client container asks
//! `front`, whose
//! handler asks `worker`, whose handler asks `store`. Every hop carries W3C trace
//! context, each handler's span is a child of its caller's span on the other node,
//! and the whole chain is one trace in the span ring, over a sweep of seeds.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::remote::prelude::*;
use tern::trace::{SpanKind, SpanRecord, SpanRing};
use tern::{Actor, Context, Handler};

#[derive(Debug, Serialize, Deserialize)]
struct Order(u32);
impl RemoteMessage for Order {
    const NAME: &'static str = "shop.v1.Order";
    type Codec = Postcard;
}

#[derive(Debug, Serialize, Deserialize)]
struct Work(u32);
impl RemoteMessage for Work {
    const NAME: &'static str = "shop.v1.Work";
    type Codec = Postcard;
}

#[derive(Debug, Serialize, Deserialize)]
struct Put(u32);
impl RemoteMessage for Put {
    const NAME: &'static str = "shop.v1.Put";
    type Codec = Postcard;
}

/// The front: asks a worker, adds one.
struct Front(Ref<Worker>);
impl Actor for Front {}
impl Handler<Order> for Front {
    type Reply = u32;
    async fn handle(&mut self, m: Order, _: &mut Context<Self>) -> u32 {
        self.0.ask(Work(m.0)).await.unwrap_or(0) + 1
    }
}

/// The worker: asks the store, adds one.
struct Worker(Ref<Store>);
impl Actor for Worker {}
impl Handler<Work> for Worker {
    type Reply = u32;
    async fn handle(&mut self, m: Work, _: &mut Context<Self>) -> u32 {
        self.0.ask(Put(m.0)).await.unwrap_or(0) + 1
    }
}

/// The end of the chain.
struct Store;
impl Actor for Store {}
impl Handler<Put> for Store {
    type Reply = u32;
    async fn handle(&mut self, m: Put, _: &mut Context<Self>) -> u32 {
        m.0 * 10
    }
}

const NAMES: [&str; 4] = ["edge", "front", "worker", "store"];

/// Every container of the test but `me`.
fn peers(me: &'static str) -> impl Iterator<Item = &'static str> {
    NAMES.into_iter().filter(move |n| *n != me)
}

/// Runs one order through the three containers; returns the reply and every span.
fn run(seed: u64) -> (Result<u32, CallError>, Vec<SpanRecord>) {
    let mut world = World::new(seed).unwrap();
    let ring = Rc::new(SpanRing::new(64));
    // The simulator runs every node on this thread: one ring sees them all.
    tern::trace::install(ring.clone(), seed);
    let [(e, te), (f, tf), (w, tw), (s, ts)] = sim_nodes(&mut world, NAMES).unwrap();
    world
        .spawn_on(s, async move {
            let node = Node::start(NodeConfig::new("store").peers(peers("store")), ts).unwrap();
            node.export("store", &spawn(Store)).unwrap().accept::<Put>();
        })
        .detach();
    world
        .spawn_on(w, async move {
            let node = Node::start(NodeConfig::new("worker").peers(peers("worker")), tw).unwrap();
            let worker = Worker(node.lookup::<Store>("store"));
            node.export("worker", &spawn(worker))
                .unwrap()
                .accept::<Work>();
        })
        .detach();
    world
        .spawn_on(f, async move {
            let node = Node::start(NodeConfig::new("front").peers(peers("front")), tf).unwrap();
            let front = Front(node.lookup::<Worker>("worker"));
            node.export("front", &spawn(front))
                .unwrap()
                .accept::<Order>();
        })
        .detach();
    // A client container calls the front once the directories have settled.
    let answer = world.spawn_on(e, async move {
        let node = Node::start(NodeConfig::new("edge").peers(peers("edge")), te).unwrap();
        time::sleep(Duration::from_millis(200)).await;
        node.lookup::<Front>("front").ask(Order(4)).await
    });
    world.run_until(Instant::ZERO + Duration::from_secs(2));
    let reply = world.runtime(e).unwrap().block_on(answer).unwrap();
    tern::trace::uninstall();
    (reply, ring.spans())
}

/// The span of `kind` on `node`.
fn find<'a>(spans: &'a [SpanRecord], node: &str, kind: SpanKind) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.node == node && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} span on {node}: {spans:#?}"))
}

#[test]
fn one_trace_spans_front_worker_and_store() {
    for seed in 0..20 {
        let (reply, spans) = run(seed);
        assert_eq!(reply, Ok(42), "seed {seed}");
        // edge -> front -> worker -> store: a client span and a server span per hop.
        assert_eq!(spans.len(), 6, "seed {seed}: {spans:#?}");
        let root = find(&spans, "edge", SpanKind::Client);
        assert_eq!(
            root.parent, None,
            "seed {seed}: the edge's ask starts the trace"
        );
        let trace = root.context.trace_id;
        assert!(
            spans
                .iter()
                .all(|s| s.context.trace_id == trace && s.error.is_none()),
            "seed {seed}: one trace, no failures: {spans:#?}"
        );
        // Each handler is a child of its caller's span on the other node, and each
        // handler's own call is a child of the handler.
        let chain = [
            ("edge", SpanKind::Client),
            ("front", SpanKind::Server),
            ("front", SpanKind::Client),
            ("worker", SpanKind::Server),
            ("worker", SpanKind::Client),
            ("store", SpanKind::Server),
        ];
        for pair in chain.windows(2) {
            let (parent, child) = (
                find(&spans, pair[0].0, pair[0].1),
                find(&spans, pair[1].0, pair[1].1),
            );
            assert_eq!(
                child.parent,
                Some(parent.context.span_id),
                "seed {seed}: {} is not a child of {}",
                child.name(),
                parent.name()
            );
            assert!(
                child.start >= parent.start && child.end <= parent.end,
                "seed {seed}: {} outside {}",
                child.name(),
                parent.name()
            );
        }
        assert_eq!(
            find(&spans, "store", SpanKind::Server).name(),
            "handle store shop.v1.Put"
        );
        let ids: std::collections::BTreeSet<_> = spans.iter().map(|s| s.context.span_id).collect();
        assert_eq!(ids.len(), 6, "seed {seed}: span ids are distinct");
    }
    // The switch is process-wide: the run with tracing off is in this test, after
    // the sweep, not in a test of its own running beside it.
    tracing_off_records_nothing();
}

fn tracing_off_records_nothing() {
    let mut world = World::new(3).unwrap();
    let ring = Rc::new(SpanRing::new(8));
    tern::trace::install(ring.clone(), 3);
    tern::trace::enable(false);
    let [(a, ta), (b, tb)] = sim_nodes(&mut world, ["a", "b"]).unwrap();
    world
        .spawn_on(b, async move {
            let node = Node::start(NodeConfig::new("b").peers(["a"]), tb).unwrap();
            node.export("store", &spawn(Store)).unwrap().accept::<Put>();
        })
        .detach();
    let answer = world.spawn_on(a, async move {
        let node = Node::start(NodeConfig::new("a").peers(["b"]), ta).unwrap();
        time::sleep(Duration::from_millis(200)).await;
        node.lookup::<Store>("store").ask(Put(1)).await
    });
    world.run_until(Instant::ZERO + Duration::from_secs(1));
    let reply = world.runtime(a).unwrap().block_on(answer).unwrap();
    tern::trace::uninstall();
    assert_eq!(reply, Ok(10));
    assert_eq!(ring.recorded(), 0);
}
