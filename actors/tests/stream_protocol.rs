//! Streams through protocol-typed references (a client with only the message types):
//! to another node on the simulator, to a component on the same node, and in one
//! process through `Ref::local_as`; items in order, credit respected, cancellation.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, Ref, RemoteMessage};
use tern_actors::{Actor, Context, Handler, StreamMessage, Streaming, spawn};
use tern_executor::sim::{NetConfig, NodeId, World};
use tern_executor::time::sleep;
use tern_executor::{Instant, JoinHandle, Runtime, yield_now};
use tern_proto::v1::ErrorCode;
use tern_transport::SimTransport;

// ----- the shared crate: messages and protocols -----

/// Rows `0..n`, in order.
#[derive(Debug, Serialize, Deserialize)]
struct Scan {
    n: u64,
}
impl RemoteMessage for Scan {
    const NAME: &'static str = "test.v1.Scan";
    type Codec = Postcard;
}
impl StreamMessage for Scan {
    type Item = u64;
}

/// How many rows the store has produced so far.
#[derive(Debug, Serialize, Deserialize)]
struct Produced;
impl RemoteMessage for Produced {
    const NAME: &'static str = "test.v1.Produced";
    type Codec = Postcard;
}

tern_actors::protocol! {
    /// The store, as its clients see it: a count and a streamed scan.
    Rows { Produced => u64, Scan => stream u64 }
}

tern_actors::protocol! {
    /// Only the scan.
    Scanning { Scan => stream u64 }
}

// ----- the server's crate -----

/// What the producer did, seen from the test.
#[derive(Default, Clone)]
struct Probe {
    computed: Rc<Cell<u64>>,
    cancelled: Rc<Cell<bool>>,
}

struct Store {
    probe: Probe,
}
impl Actor for Store {}

impl Handler<Streaming<Scan>> for Store {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
        let (scan, mut out) = req.into_parts();
        for i in 0..scan.n {
            if out.ready().await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
            self.probe.computed.set(self.probe.computed.get() + 1);
            if out.send(i).await.is_err() {
                self.probe.cancelled.set(true);
                return;
            }
        }
        out.end();
    }
}

impl Handler<Produced> for Store {
    type Reply = u64;
    async fn handle(&mut self, _: Produced, _: &mut Context<Self>) -> u64 {
        self.probe.computed.get()
    }
}

// ----- the simulated cluster -----

struct Cluster {
    world: World,
    ids: Vec<NodeId>,
    transports: Vec<SimTransport>,
}

fn cluster(seed: u64, names: &[&str]) -> Cluster {
    let mut world = World::new(seed).expect("world");
    let ids: Vec<NodeId> = names
        .iter()
        .map(|n| world.add_node(n).expect("node"))
        .collect();
    let directory = Rc::new(
        names
            .iter()
            .zip(&ids)
            .map(|(n, id)| ((*n).to_owned(), *id))
            .collect::<BTreeMap<_, _>>(),
    );
    let transports = names
        .iter()
        .zip(&ids)
        .map(|(n, id)| SimTransport::new(*n, world.socket(*id), directory.clone()))
        .collect();
    Cluster {
        world,
        ids,
        transports,
    }
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

fn result<T: 'static>(c: &Cluster, i: usize, h: JoinHandle<T>) -> T {
    c.world
        .runtime(c.ids[i])
        .expect("node up")
        .block_on(h)
        .expect("task finished")
}

/// Starts node b serving the whole `Rows` protocol; returns the store's probe.
fn serve(c: &Cluster) -> Probe {
    let probe = Probe::default();
    let p = probe.clone();
    let t = c.transports[1].clone();
    c.world
        .spawn_on(c.ids[1], async move {
            let node = Node::start(NodeConfig::new("b").peers(["a"]), t).expect("node");
            node.export("store", &spawn(Store { probe: p }))
                .expect("export")
                .serve::<Rows>();
        })
        .detach();
    probe
}

/// Starts node a and waits until it knows the store.
async fn caller(t: SimTransport) -> Node {
    let node = Node::start(NodeConfig::new("a").peers(["b"]), t).expect("node");
    while node.hosts("store").is_empty() {
        sleep(Duration::from_millis(5)).await;
    }
    node
}

/// A small deterministic generator for per-seed choices.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

type Got = Rc<RefCell<Vec<Result<u64, CallError>>>>;

#[test]
fn a_protocol_typed_ref_streams_from_another_node_in_order_within_its_window() {
    for seed in 0..30 {
        let mut c = cluster(seed, &["a", "b"]);
        let mut rng = Lcg(seed ^ 0x5eed);
        c.world.set_net(NetConfig {
            tail_mean: Duration::from_micros(100 + rng.below(3_000)),
            ..NetConfig::default()
        });
        let probe = serve(&c);
        let window = 1 + rng.below(8) as u32;
        let n = 50 + rng.below(150);
        let got: Got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            // Typed by the protocol only: no `Store` on this side.
            let store: Ref<Rows> = node.lookup("store");
            let mut rows = store
                .ask_stream(Scan { n })
                .credit(window)
                .idle_timeout(Duration::from_secs(2));
            let mut most = 0;
            while let Some(r) = rows.next().await {
                most = most.max(rows.buffered());
                sink.borrow_mut().push(r);
                if rng.below(4) == 0 {
                    sleep(Duration::from_micros(rng.below(3_000))).await;
                }
            }
            let produced = store.ask(Produced).await;
            (most, produced, node.stats())
        });
        c.world.run_until(secs(30.0));
        let (most, produced, stats) = result(&c, 0, h);
        let got: Vec<u64> = got
            .borrow()
            .iter()
            .map(|r| r.clone().expect("item"))
            .collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "seed {seed}");
        assert!(most <= window as usize, "seed {seed}: buffered {most}");
        assert_eq!(produced, Ok(n), "seed {seed}");
        assert_eq!(probe.computed.get(), n, "seed {seed}");
        assert_eq!(stats.streams_open, 0, "seed {seed}");
    }
}

#[test]
fn a_stalled_protocol_client_stalls_the_remote_producer_and_a_drop_cancels_it() {
    for seed in [1, 2, 3] {
        let mut c = cluster(seed, &["a", "b"]);
        let probe = serve(&c);
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            let mut rows = node
                .lookup::<Scanning>("store")
                .ask_stream(Scan { n: 1_000_000 })
                .credit(8)
                .idle_timeout(Duration::from_secs(60));
            let first = rows.next().await;
            // Stall for 10 s of simulated time without polling.
            sleep(Duration::from_secs(10)).await;
            let buffered = rows.buffered();
            let mut more = Vec::new();
            for _ in 0..20 {
                more.push(rows.next().await);
            }
            drop(rows);
            sleep(Duration::from_millis(100)).await;
            (first, buffered, more, node.stats())
        });
        c.world.run_until(secs(5.0));
        // While stalled: at most one window (plus the item taken) computed.
        assert!(
            probe.computed.get() <= 9,
            "computed {}",
            probe.computed.get()
        );
        c.world.run_until(secs(20.0));
        let (first, buffered, more, stats) = result(&c, 0, h);
        assert_eq!(first, Some(Ok(0)));
        assert!(buffered <= 8, "buffered {buffered}");
        assert_eq!(more, (1..=20).map(|i| Some(Ok(i))).collect::<Vec<_>>());
        assert!(
            probe.computed.get() <= 21 + 8,
            "computed {}",
            probe.computed.get()
        );
        assert_eq!(stats.streams_open, 0);
        assert!(probe.cancelled.get(), "the producer saw the cancel");
    }
}

#[test]
fn a_protocol_typed_stream_to_a_component_on_the_same_node_is_never_encoded() {
    let mut c = cluster(7, &["s"]);
    let probe = Probe::default();
    let p = probe.clone();
    let t = c.transports[0].clone();
    let h = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(NodeConfig::new("s"), t).expect("node");
        let store = spawn(Store { probe: p });
        node.export("store", &store)
            .expect("export")
            .serve::<Rows>();
        // Exported without the stream: a protocol call of it is refused here as a
        // remote node would refuse it.
        node.export("counter", &store)
            .expect("export")
            .accept::<Produced>();
        let mut rows = node
            .lookup::<Rows>("store")
            .ask_stream(Scan { n: 40 })
            .credit(4);
        let mut got = Vec::new();
        let mut through_node = 0;
        while let Some(r) = rows.next().await {
            got.push(r);
            let stats = node.stats();
            through_node += stats.streams_open + stats.streams_producing;
        }
        let refused: Vec<_> = node
            .lookup::<Scanning>("counter")
            .ask_stream(Scan { n: 1 })
            .collect()
            .await;
        (got, through_node, refused)
    });
    c.world.run_until(secs(5.0));
    let (got, through_node, refused) = result(&c, 0, h);
    assert_eq!(got, (0..40).map(Ok).collect::<Vec<_>>());
    assert_eq!(through_node, 0, "no stream went through the node");
    assert!(
        matches!(
            refused.as_slice(),
            [Err(CallError::Remote {
                code: ErrorCode::UnknownMessageType,
                ..
            })]
        ),
        "{refused:?}"
    );
    assert_eq!(probe.computed.get(), 40);
}

#[test]
fn local_as_streams_in_one_process_with_credit_and_cancellation() {
    Runtime::new().expect("runtime").block_on(async {
        let probe = Probe::default();
        let addr = spawn(Store {
            probe: probe.clone(),
        });
        let rows: Ref<Rows> = Ref::local_as(&addr);
        assert!(Node::current().is_none(), "no node in this runtime");

        // Credit: a consumer that takes one item and then lets the producer run
        // finds it at most one window ahead.
        let mut stream = rows.ask_stream(Scan { n: 1_000 }).credit(4);
        assert_eq!(stream.next().await, Some(Ok(0)));
        for _ in 0..50 {
            yield_now().await;
        }
        assert!(
            probe.computed.get() <= 1 + 4,
            "computed {}",
            probe.computed.get()
        );
        assert!(stream.buffered() <= 4, "buffered {}", stream.buffered());
        let mut next = Vec::new();
        for _ in 0..10 {
            next.push(stream.next().await);
        }
        assert_eq!(next, (1..=10).map(|i| Some(Ok(i))).collect::<Vec<_>>());

        // Dropping it cancels the producer; the component then takes other calls.
        drop(stream);
        assert_eq!(rows.ask(Produced).await, Ok(probe.computed.get()));
        assert!(probe.cancelled.get(), "the producer saw the cancel");

        // The whole stream, in order, through a stream-only protocol.
        let scanning: Ref<Scanning> = Ref::local_as(&addr);
        let all: Vec<_> = scanning
            .ask_stream(Scan { n: 25 })
            .credit(3)
            .collect()
            .await;
        assert_eq!(all, (0..25).map(Ok).collect::<Vec<_>>());

        // A reference typed by the actor streams as before.
        let by_type: Ref<Store> = Ref::local(&addr);
        let all: Vec<_> = by_type.ask_stream(Scan { n: 5 }).collect().await;
        assert_eq!(all, (0..5).map(Ok).collect::<Vec<_>>());

        addr.stop();
        addr.stopped().await;
        let stopped: Vec<_> = rows.ask_stream(Scan { n: 5 }).collect().await;
        assert_eq!(stopped, vec![Err(CallError::Stopped)]);
    });
}
