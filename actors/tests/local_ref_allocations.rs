//! Heap allocations per ask to a component in this process: through its `Addr`,
//! through a `Ref` with no node (`Ref::local`, `Ref::local_as`), and through a node's
//! `Ref` to a component it hosts (typed by the actor, and by a protocol). None of them
//! encodes; a `Ref` adds two allocations over the `Addr` (its boxed ask, and the boxed
//! call of a component whose type it does not know). Run with `--nocapture` to see
//! the numbers.

use std::alloc::System;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tern_actors::remote::{Node, NodeConfig, Postcard, Ref, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::sim::World;
use tern_transport::SimTransport;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize)]
struct Ping(u64);
impl RemoteMessage for Ping {
    const NAME: &'static str = "test.v1.Ping";
    type Codec = Postcard;
}
impl Handler<Ping> for Echo {
    type Reply = u64;
    async fn handle(&mut self, m: Ping, _: &mut Context<Self>) -> u64 {
        m.0
    }
}

tern_actors::protocol! {
    /// Echoes.
    Echoing { Ping => u64 }
}

const N: u64 = 1_000;

/// Allocations (and reallocations) per ask over `N` sequential asks after a warm-up.
async fn per_ask<F>(ask: impl Fn(u64) -> F) -> f64
where
    F: IntoFuture<Output = u64>,
{
    for i in 0..100 {
        assert_eq!(ask(i).await, i);
    }
    let region = Region::new(GLOBAL);
    for i in 0..N {
        assert_eq!(ask(i).await, i);
    }
    let change = region.change();
    let total = change.allocations + change.reallocations;
    f64::from(u32::try_from(total).unwrap_or(u32::MAX)) / f64::from(u32::try_from(N).unwrap_or(1))
}

#[test]
fn a_local_ref_costs_two_allocations_more_than_an_addr() {
    let mut world = World::new(1).expect("world");
    let a = world.add_node("a").expect("node");
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a)]));
    let ta = SimTransport::new("a", world.socket(a), names);
    let run = world.spawn_on(a, async move {
        let node = Node::start(NodeConfig::new("a"), ta).expect("node");
        let addr = spawn(Echo);
        node.export("echo", &addr).expect("export").accept::<Ping>();
        let by_addr = per_ask(|i| {
            let ask = addr.ask(Ping(i));
            async move { ask.await.expect("reply") }
        })
        .await;
        let local: Ref<Echo> = Ref::local(&addr);
        let by_local = per_ask(|i| {
            let ask = local.ask(Ping(i));
            async move { ask.await.expect("reply") }
        })
        .await;
        let local_as: Ref<Echoing> = Ref::local_as(&addr);
        let by_local_as = per_ask(|i| {
            let ask = local_as.ask(Ping(i));
            async move { ask.await.expect("reply") }
        })
        .await;
        let on_node = node.lookup::<Echo>("echo");
        let by_node = per_ask(|i| {
            let ask = on_node.ask(Ping(i));
            async move { ask.await.expect("reply") }
        })
        .await;
        let on_node_as = node.lookup::<Echoing>("echo");
        let by_node_as = per_ask(|i| {
            let ask = on_node_as.ask(Ping(i));
            async move { ask.await.expect("reply") }
        })
        .await;
        [by_addr, by_local, by_local_as, by_node, by_node_as]
    });
    world.run_until_idle();
    let [addr, local, local_as, node, node_as] = world
        .runtime(a)
        .expect("a")
        .block_on(run)
        .expect("finished");
    eprintln!(
        "heap allocations per ask in one process: Addr {addr:.1}, Ref::local {local:.1}, \
         Ref::local_as {local_as:.1}, node Ref by actor {node:.1}, node Ref by protocol {node_as:.1}"
    );
    for (what, n) in [
        ("Ref::local", local),
        ("Ref::local_as", local_as),
        ("node Ref by actor", node),
        ("node Ref by protocol", node_as),
    ] {
        assert!(
            n <= addr + 4.0,
            "{what}: {n:.1} allocations per ask, Addr {addr:.1}"
        );
    }
}
