//! Streamed replies between nodes on the simulated network: order without duplicates
//! under reordering, duplication and loss of frames, backpressure with a stalled
//! consumer, cancellation, and failures (producer error, crash, partition), over seed
//! sweeps.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, StreamMessage, Streaming, spawn};
use tern_executor::sim::{NetConfig, NodeId, World};
use tern_executor::time::sleep;
use tern_executor::{Instant, JoinHandle};
use tern_transport::SimTransport;

/// What the producer did, seen from the test.
#[derive(Default, Clone)]
struct Probe {
    computed: Rc<Cell<u64>>,
    cancelled: Rc<Cell<bool>>,
    freed: Rc<Cell<bool>>,
}

struct Store {
    probe: Probe,
}
impl Actor for Store {}

/// Rows `0..n`; fails at `fail_at`; `detached` moves an owned stream to a task.
#[derive(Debug, Serialize, Deserialize)]
struct Scan {
    n: u64,
    fail_at: Option<u64>,
    detached: bool,
}
impl RemoteMessage for Scan {
    const NAME: &'static str = "test.v1.Scan";
    type Codec = Postcard;
}
impl StreamMessage for Scan {
    type Item = u64;
}

struct OnDrop(Rc<Cell<bool>>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

impl Handler<Streaming<Scan>> for Store {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
        let (scan, mut out) = req.into_parts();
        let probe = self.probe.clone();
        if scan.detached {
            let guard = OnDrop(probe.freed.clone());
            let rows = stream::iter(0..scan.n).map(move |i| {
                let _held = &guard;
                probe.computed.set(probe.computed.get() + 1);
                if scan.fail_at == Some(i) {
                    Err(format!("bad row {i}"))
                } else {
                    Ok(i)
                }
            });
            return out.detach_fallible(rows);
        }
        for i in 0..scan.n {
            if out.ready().await.is_err() {
                probe.cancelled.set(true);
                return;
            }
            if scan.fail_at == Some(i) {
                return out.fail(format!("bad row {i}"));
            }
            probe.computed.set(probe.computed.get() + 1);
            if out.send(i).await.is_err() {
                probe.cancelled.set(true);
                return;
            }
        }
        out.end();
    }
}

struct Cluster {
    world: World,
    ids: Vec<NodeId>,
    transports: Vec<SimTransport>,
}

fn cluster(seed: u64) -> Cluster {
    let names = ["a", "b"];
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

/// Starts node b exporting a store; returns its probe.
fn serve(c: &Cluster) -> Probe {
    let probe = Probe::default();
    let p = probe.clone();
    let t = c.transports[1].clone();
    c.world
        .spawn_on(c.ids[1], async move {
            let node = Node::start(NodeConfig::new("b").peers(["a"]), t).expect("node");
            node.export("store", &spawn(Store { probe: p }))
                .expect("export")
                .accept_stream::<Scan>();
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

fn result<T: 'static>(c: &Cluster, i: usize, h: JoinHandle<T>) -> T {
    c.world
        .runtime(c.ids[i])
        .expect("node up")
        .block_on(h)
        .expect("task finished")
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

/// Consumes a stream of `n` rows with random pauses; records everything it gets.
fn consume(
    c: &Cluster,
    seed: u64,
    n: u64,
    window: u32,
    detached: bool,
) -> (Got, JoinHandle<tern_actors::remote::NodeStats>) {
    let got: Got = Rc::new(RefCell::new(Vec::new()));
    let sink = got.clone();
    let t = c.transports[0].clone();
    let h = c.world.spawn_on(c.ids[0], async move {
        let node = caller(t).await;
        let mut rng = Lcg(seed);
        let mut rows = node
            .lookup::<Store>("store")
            .ask_stream(Scan {
                n,
                fail_at: None,
                detached,
            })
            .credit(window)
            .idle_timeout(Duration::from_secs(2));
        while let Some(r) = rows.next().await {
            assert!(
                rows.buffered() <= window as usize,
                "buffered past the window"
            );
            sink.borrow_mut().push(r);
            if rng.below(4) == 0 {
                sleep(Duration::from_micros(rng.below(3_000))).await;
            }
        }
        node.stats()
    });
    (got, h)
}

#[test]
fn items_arrive_in_order_once_under_jitter_over_a_seed_sweep() {
    for seed in 0..60 {
        let mut c = cluster(seed);
        let mut rng = Lcg(seed ^ 0x5eed);
        c.world.set_net(NetConfig {
            tail_mean: Duration::from_micros(100 + rng.below(3_000)),
            ..NetConfig::default()
        });
        let probe = serve(&c);
        let window = 1 + rng.below(8) as u32;
        let n = 100 + rng.below(200);
        let (got, h) = consume(&c, seed, n, window, seed % 2 == 0);
        c.world.run_until(secs(30.0));
        result(&c, 0, h);
        let got: Vec<u64> = got
            .borrow()
            .iter()
            .map(|r| r.clone().expect("item"))
            .collect();
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "seed {seed}");
        assert_eq!(probe.computed.get(), n, "seed {seed}");
    }
}

/// Holds b → a and delivers its frames out of order, some twice, before releasing.
#[test]
fn reordered_and_duplicated_frames_still_give_each_item_once_in_order() {
    let (mut repeats, mut complete) = (0, 0);
    for seed in 0..40 {
        let mut c = cluster(seed);
        let mut rng = Lcg(seed ^ 0xd0b);
        serve(&c);
        let n = 60;
        let (got, h) = consume(&c, seed, n, 8, seed % 2 == 1);
        // Hold b's frames to a from the start (the directory too).
        c.world.hold(c.ids[1], c.ids[0]);
        let mut t = 0.0;
        for _ in 0..400 {
            t += 0.002;
            c.world.run_until(secs(t));
            let held = c.world.held();
            if held.is_empty() {
                continue;
            }
            let pick = held[rng.below(held.len() as u64) as usize].0;
            match rng.below(3) {
                0 => {
                    c.world.duplicate_held(pick);
                }
                _ => {
                    c.world.deliver_held(pick);
                }
            }
        }
        c.world.release(c.ids[1], c.ids[0]);
        c.world.run_until(secs(20.0));
        let stats = result(&c, 0, h);
        repeats += stats.session.unmatched_stream_frames;
        let got = got.borrow();
        let items: Vec<u64> = got.iter().filter_map(|r| r.clone().ok()).collect();
        complete += u64::from(items.len() as u64 == n);
        // In order and never twice, whatever the network did.
        assert_eq!(
            items,
            (0..items.len() as u64).collect::<Vec<_>>(),
            "seed {seed}: {got:?}"
        );
        if got.iter().all(Result::is_ok) {
            assert_eq!(items.len() as u64, n, "seed {seed}");
        }
    }
    // The sweep did duplicate stream frames, and streams still completed.
    assert!(repeats > 0, "no repeated frame reached the stream layer");
    assert!(complete > 20, "only {complete} of 40 streams completed");
}

/// Frames of b → a are lost (held and dropped): the stream never skips an item; it
/// ends with a typed error instead.
#[test]
fn a_lost_item_ends_the_stream_with_an_error_never_a_gap() {
    let mut lost_ended = 0;
    for seed in 0..20 {
        let mut c = cluster(seed);
        let mut rng = Lcg(seed ^ 0x1055);
        serve(&c);
        let (got, h) = consume(&c, seed, 50, 4, seed % 2 == 0);
        c.world.hold(c.ids[1], c.ids[0]);
        let mut dropped = false;
        let mut t = 0.0;
        for _ in 0..400 {
            t += 0.002;
            c.world.run_until(secs(t));
            for (seq, _) in c.world.held() {
                // Drop one frame once the stream is under way (not the directory).
                if !dropped && got.borrow().len() >= 5 && rng.below(3) == 0 {
                    c.world.drop_held(seq);
                    dropped = true;
                } else {
                    c.world.deliver_held(seq);
                }
            }
        }
        c.world.release(c.ids[1], c.ids[0]);
        c.world.run_until(secs(20.0));
        result(&c, 0, h);
        let got = got.borrow();
        let items: Vec<u64> = got.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(
            items,
            (0..items.len() as u64).collect::<Vec<_>>(),
            "seed {seed}"
        );
        if dropped {
            assert!(
                got.last().is_some_and(Result::is_err) || items.len() == 50,
                "seed {seed}: {got:?}"
            );
            lost_ended += u64::from(got.last().is_some_and(Result::is_err));
        }
    }
    assert!(lost_ended > 0, "no sweep lost an item");
}

#[test]
fn a_stalled_consumer_stalls_the_producer_within_the_window() {
    for (seed, detached) in [(1, false), (2, true)] {
        let mut c = cluster(seed);
        let probe = serve(&c);
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            let mut rows = node
                .lookup::<Store>("store")
                .ask_stream(Scan {
                    n: 1_000_000,
                    fail_at: None,
                    detached,
                })
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
        let (first, buffered, more, _stats) = result(&c, 0, h);
        assert_eq!(first, Some(Ok(0)));
        assert!(buffered <= 8, "buffered {buffered}");
        assert_eq!(more, (1..=20).map(|i| Some(Ok(i))).collect::<Vec<_>>());
        assert!(
            probe.computed.get() <= 21 + 8,
            "computed {}",
            probe.computed.get()
        );
    }
}

#[test]
fn dropping_the_stream_cancels_the_remote_producer_and_frees_it() {
    for (seed, detached) in [(3, false), (4, true)] {
        let mut c = cluster(seed);
        let probe = serve(&c);
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            let mut rows = node
                .lookup::<Store>("store")
                .ask_stream(Scan {
                    n: 1_000_000,
                    fail_at: None,
                    detached,
                })
                .credit(4);
            for i in 0..3 {
                assert_eq!(rows.next().await, Some(Ok(i)));
            }
            drop(rows);
            sleep(Duration::from_millis(100)).await;
            node.stats()
        });
        c.world.run_until(secs(5.0));
        let stats = result(&c, 0, h);
        assert_eq!(stats.streams_open, 0);
        if detached {
            assert!(probe.freed.get(), "the detached stream was freed");
        } else {
            assert!(probe.cancelled.get(), "the producer saw the cancel");
        }
        assert!(probe.computed.get() <= 3 + 4);
        let b_stats = c
            .world
            .runtime(c.ids[1])
            .expect("b")
            .block_on(async { Node::current().map(|n| n.stats()) })
            .expect("b's node");
        assert_eq!(b_stats.streams_producing, 0);
    }
}

#[test]
fn a_producer_failing_mid_stream_ends_it_with_a_typed_error() {
    for (seed, detached) in [(5, false), (6, true)] {
        let mut c = cluster(seed);
        serve(&c);
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            node.lookup::<Store>("store")
                .ask_stream(Scan {
                    n: 10,
                    fail_at: Some(4),
                    detached,
                })
                .credit(2)
                .collect::<Vec<_>>()
                .await
        });
        c.world.run_until(secs(5.0));
        let got = result(&c, 0, h);
        assert_eq!(
            got,
            vec![
                Ok(0),
                Ok(1),
                Ok(2),
                Ok(3),
                Err(CallError::StreamFailed("bad row 4".into()))
            ]
        );
    }
}

/// The producer's node crashes, or a partition cuts the pair, mid-stream: the stream
/// ends with `PeerLost` soon after, with the items before it in order.
#[test]
fn a_crash_or_a_partition_ends_the_stream_with_a_typed_error_not_a_hang() {
    for seed in 0..30 {
        let mut c = cluster(seed);
        serve(&c);
        let got: Got = Rc::new(RefCell::new(Vec::new()));
        let sink = got.clone();
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            let mut rows = node
                .lookup::<Store>("store")
                .ask_stream(Scan {
                    n: 1_000_000,
                    fail_at: None,
                    detached: seed % 2 == 0,
                })
                .credit(4)
                .idle_timeout(Duration::from_secs(30));
            while let Some(r) = rows.next().await {
                sink.borrow_mut().push(r);
                sleep(Duration::from_millis(1)).await;
            }
            tern_executor::time::now()
        });
        c.world.run_until(secs(1.0));
        if seed % 3 == 0 {
            c.world.crash(c.ids[1]);
        } else {
            c.world.partition(c.ids[0], c.ids[1]);
        }
        c.world.run_until(secs(3.0));
        let ended = result(&c, 0, h);
        assert!(ended < secs(1.5), "seed {seed}: ended only at {ended:?}");
        let got = got.borrow();
        let items: Vec<u64> = got.iter().filter_map(|r| r.clone().ok()).collect();
        assert!(!items.is_empty(), "seed {seed}");
        assert_eq!(
            items,
            (0..items.len() as u64).collect::<Vec<_>>(),
            "seed {seed}"
        );
        assert!(
            matches!(got.last(), Some(Err(CallError::PeerLost(n))) if n == "b"),
            "seed {seed}: {:?}",
            got.last()
        );
    }
}

#[test]
fn a_stream_asked_before_its_component_is_known_waits_for_the_name() {
    let mut c = cluster(8);
    let t = c.transports[0].clone();
    let h = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(NodeConfig::new("a").peers(["b"]), t).expect("node");
        let store = node.lookup::<Store>("store");
        let late: Vec<_> = store
            .ask_stream(Scan {
                n: 5,
                fail_at: None,
                detached: true,
            })
            .idle_timeout(Duration::from_secs(2))
            .collect()
            .await;
        let nobody: Vec<_> = node
            .lookup::<Store>("nobody")
            .ask_stream(Scan {
                n: 5,
                fail_at: None,
                detached: true,
            })
            .idle_timeout(Duration::from_millis(300))
            .collect()
            .await;
        (late, nobody)
    });
    // b starts half a second later.
    c.world.run_until(secs(0.5));
    serve(&c);
    c.world.run_until(secs(5.0));
    let (late, nobody) = result(&c, 0, h);
    assert_eq!(late, (0..5).map(Ok).collect::<Vec<_>>());
    assert_eq!(
        nobody,
        vec![Err(CallError::UnknownName {
            name: "nobody".into()
        })]
    );
}

/// The same seed gives the same run, event for event, with a stream under jitter and a
/// partition mid-stream.
#[test]
fn a_streamed_run_is_deterministic() {
    for seed in [1, 2, 3] {
        let hash = tern_executor::sim::check_determinism(seed, |world: &mut World| {
            world.set_net(NetConfig {
                tail_mean: Duration::from_millis(1),
                ..NetConfig::default()
            });
            let (a, b) = (
                world.add_node("a").expect("a"),
                world.add_node("b").expect("b"),
            );
            let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
            let ta = SimTransport::new("a", world.socket(a), names.clone());
            let tb = SimTransport::new("b", world.socket(b), names);
            world
                .spawn_on(b, async move {
                    let node = Node::start(NodeConfig::new("b").peers(["a"]), tb).expect("node");
                    node.export(
                        "store",
                        &spawn(Store {
                            probe: Probe::default(),
                        }),
                    )
                    .expect("export")
                    .accept_stream::<Scan>();
                })
                .detach();
            world
                .spawn_on(a, async move {
                    let node = caller(ta).await;
                    let mut rows = node
                        .lookup::<Store>("store")
                        .ask_stream(Scan {
                            n: 1_000,
                            fail_at: None,
                            detached: true,
                        })
                        .credit(4);
                    while let Some(Ok(_)) = rows.next().await {
                        sleep(Duration::from_micros(300)).await;
                    }
                })
                .detach();
            world.run_until(secs(0.2));
            world.partition(a, b);
            world.run_until(secs(1.0));
        });
        assert!(hash.is_ok(), "seed {seed}: {:?}", hash.err());
    }
}

#[test]
fn at_its_deadline_a_stream_ends_on_both_sides_and_the_producer_sends_nothing() {
    for seed in 0..5 {
        let mut c = cluster(seed);
        let probe = serve(&c);
        let t = c.transports[0].clone();
        let h = c.world.spawn_on(c.ids[0], async move {
            let node = caller(t).await;
            let mut rows = node
                .lookup::<Store>("store")
                .ask_stream(Scan {
                    n: 1_000_000,
                    fail_at: None,
                    detached: false,
                })
                .credit(4)
                .timeout(Duration::from_secs(1));
            let first = rows.next().await;
            // Stall past the deadline; the stream then ends with a timeout.
            sleep(Duration::from_secs(3)).await;
            let mut rest = Vec::new();
            while let Some(r) = rows.next().await {
                rest.push(r);
            }
            (first, rest)
        });
        c.world.run_until(secs(0.5));
        // Frames both ways are held from now on: the caller's CANCEL does not reach
        // the producer, which meets the deadline itself, and whatever the producer
        // sends is kept for inspection.
        c.world.hold(c.ids[0], c.ids[1]);
        c.world.hold(c.ids[1], c.ids[0]);
        let sent_before = c
            .world
            .held()
            .iter()
            .filter(|(_, p)| p.from == c.ids[1])
            .count();
        c.world.run_until(secs(5.0));
        let sent_after = c
            .world
            .held()
            .iter()
            .filter(|(_, p)| p.from == c.ids[1])
            .count();
        let (first, rest) = result(&c, 0, h);
        assert_eq!(first, Some(Ok(0)), "seed {seed}");
        assert_eq!(rest.last(), Some(&Err(CallError::Timeout)), "seed {seed}");
        assert!(probe.cancelled.get(), "seed {seed}: the producer stopped");
        let stats = |i: usize| {
            let h = c
                .world
                .spawn_on(c.ids[i], async { Node::current().expect("node").stats() });
            result(&c, i, h)
        };
        let b = stats(1);
        assert_eq!(
            (b.streams_expired, b.streams_producing),
            (1, 0),
            "seed {seed}"
        );
        // The producer sent nothing at its deadline: no ERROR TIMEOUT (section 4.1).
        assert_eq!(sent_after, sent_before, "seed {seed}");
    }
}
