//! Remote components on the simulated network: names, codecs, typed errors, startup
//! order, restarts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{
    CallError, Codec, CodecError, Json, Node, NodeConfig, NodeStats, Postcard, RemoteMessage,
};
use tern_actors::{Actor, Context, Handler, Restart, build, spawn};
use tern_executor::sim::{NodeId, World};
use tern_executor::{Instant, JoinHandle};
use tern_proto::v1::ErrorCode;
use tern_transport::SimTransport;

/// Records every number it is told, in order; answers asks with the count so far.
#[derive(Default)]
struct Recorder {
    seen: Rc<RefCell<Vec<u32>>>,
}
impl Actor for Recorder {}

#[derive(Debug, Serialize, Deserialize)]
struct Note(u32);
impl RemoteMessage for Note {
    const NAME: &'static str = "test.v1.Note";
    type Codec = Postcard;
}
impl Handler<Note> for Recorder {
    type Reply = usize;
    async fn handle(&mut self, m: Note, _: &mut Context<Self>) -> usize {
        self.seen.borrow_mut().push(m.0);
        self.seen.borrow().len()
    }
}

/// Panics on 13; sleeps `n` ms otherwise, then echoes.
#[derive(Debug, Serialize, Deserialize)]
struct Slow(u32);
impl RemoteMessage for Slow {
    const NAME: &'static str = "test.v1.Slow";
    type Codec = Json;
}
impl Handler<Slow> for Recorder {
    type Reply = u32;
    async fn handle(&mut self, m: Slow, _: &mut Context<Self>) -> u32 {
        assert_ne!(m.0, 13, "unlucky");
        tern_executor::time::sleep(Duration::from_millis(u64::from(m.0))).await;
        m.0
    }
}

/// Not accepted by any export.
#[derive(Debug, Serialize, Deserialize)]
struct Secret;
impl RemoteMessage for Secret {
    const NAME: &'static str = "test.v1.Secret";
    type Codec = Postcard;
}
impl Handler<Secret> for Recorder {
    type Reply = ();
    async fn handle(&mut self, _: Secret, _: &mut Context<Self>) {}
}

/// A codec that cannot encode: proves local calls never encode.
struct Refuse;
impl<T> Codec<T> for Refuse {
    const CONTENT_TYPE: &'static str = "application/x-refuse";
    fn encode(_: &T) -> Result<Vec<u8>, CodecError> {
        Err(CodecError {
            codec: "application/x-refuse",
            detail: "never encodes".into(),
        })
    }
    fn decode(_: &[u8]) -> Result<T, CodecError> {
        Err(CodecError {
            codec: "application/x-refuse",
            detail: "never decodes".into(),
        })
    }
}
struct LocalOnly(u32);
impl RemoteMessage for LocalOnly {
    const NAME: &'static str = "test.v1.LocalOnly";
    type Codec = Refuse;
}
impl Handler<LocalOnly> for Recorder {
    type Reply = u32;
    async fn handle(&mut self, m: LocalOnly, _: &mut Context<Self>) -> u32 {
        m.0 + 1
    }
}

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

fn config(name: &str, peers: &[&str]) -> NodeConfig {
    NodeConfig::new(name).peers(peers.iter().copied())
}

fn result<T: 'static>(c: &Cluster, i: usize, h: JoinHandle<T>) -> T {
    c.world
        .runtime(c.ids[i])
        .expect("node up")
        .block_on(h)
        .expect("task finished")
}

/// Starts a node on `i` that exports a recorder as "rec"; returns what it records.
fn serve(c: &Cluster, i: usize, peers: &[&str], generation: u64) -> Rc<RefCell<Vec<u32>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let t = c.transports[i].clone();
    let name = t_name(&t);
    let config = config(&name, peers).generation(generation);
    let rec_seen = seen.clone();
    c.world
        .spawn_on(c.ids[i], async move {
            let node = Node::start(config, t).expect("node");
            // Restarted after a panic, like a real service.
            let rec = build(move || Recorder {
                seen: rec_seen.clone(),
            })
            .restart(Restart::OnFailure)
            .spawn();
            node.export("rec", &rec)
                .expect("export")
                .accept::<Note>()
                .accept::<Slow>();
        })
        .detach();
    seen
}

fn t_name(t: &SimTransport) -> String {
    use tern_transport::Transport;
    t.local().to_owned()
}

#[test]
fn a_message_to_a_name_not_yet_known_waits_and_arrives_in_order() {
    for seed in 0..20 {
        let mut c = cluster(seed, &["a", "b"]);
        let t = c.transports[0].clone();
        let caller = c.world.spawn_on(c.ids[0], async move {
            let node = Node::start(config("a", &["b"]), t).unwrap();
            let rec = node.lookup::<Recorder>("rec");
            for i in 0..50 {
                rec.try_tell(Note(i)).unwrap();
            }
            let n = rec.ask(Note(50)).await;
            (n, node.stats())
        });
        // b starts 2 s later.
        c.world.run_until(secs(2.0));
        let seen = serve(&c, 1, &["a"], 0);
        c.world.run_until(secs(5.0));
        let (n, stats) = result(&c, 0, caller);
        assert_eq!(n, Ok(51), "seed {seed}");
        assert_eq!(*seen.borrow(), (0..=50).collect::<Vec<_>>(), "seed {seed}");
        assert_eq!((stats.tells_sent, stats.asks_sent), (50, 1));
        assert_eq!(stats.pending_expired, 0);
    }
}

#[test]
fn waiting_is_bounded_in_count_and_in_time() {
    let mut c = cluster(3, &["a", "b"]);
    let t = c.transports[0].clone();
    let caller = c.world.spawn_on(c.ids[0], async move {
        let config = config("a", &["b"])
            .pending_limit(3)
            .pending_ttl(Duration::from_secs(1));
        let node = Node::start(config, t).unwrap();
        let rec = node.lookup::<Recorder>("rec");
        for i in 0..3 {
            rec.try_tell(Note(i)).unwrap();
        }
        let full = rec.try_tell(Note(3)).unwrap_err();
        assert_eq!(full.reason, CallError::PendingFull);
        assert_eq!(full.message.0, 3, "the message comes back");
        tern_executor::time::sleep(Duration::from_secs(2)).await;
        let expired = node.stats().pending_expired;
        let ask = rec.ask(Note(9)).timeout(Duration::from_millis(300)).await;
        (expired, ask, node.stats())
    });
    c.world.run_until(secs(5.0));
    let (expired, ask, stats) = result(&c, 0, caller);
    assert_eq!(expired, 3);
    // No node ever announced "rec".
    assert_eq!(ask, Err(CallError::UnknownName { name: "rec".into() }));
    assert_eq!(stats.pending, 0);
}

#[test]
fn typed_errors_come_back_across_the_network() {
    let mut c = cluster(11, &["a", "b"]);
    serve(&c, 1, &["a"], 0);
    let t = c.transports[0].clone();
    let caller = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(config("a", &["b"]), t).unwrap();
        let rec = node.lookup::<Recorder>("rec");
        let ok = rec.ask(Slow(5)).await;
        let timeout = rec.ask(Slow(500)).timeout(Duration::from_millis(100)).await;
        let panicked = rec.ask(Slow(13)).await;
        let not_accepted = rec.ask(Secret).await;
        let after_panic = rec.ask(Slow(1)).await;
        let nobody = node.lookup_on::<Recorder>("b", "nobody");
        let unknown = nobody
            .ask(Note(1))
            .timeout(Duration::from_millis(200))
            .await;
        (ok, timeout, panicked, not_accepted, unknown, after_panic)
    });
    c.world.run_until(secs(10.0));
    let (ok, timeout, panicked, not_accepted, unknown, after_panic) = result(&c, 0, caller);
    assert_eq!(after_panic, Ok(1), "restarted by its supervisor, same name");
    assert_eq!(ok, Ok(5));
    assert_eq!(timeout, Err(CallError::Timeout));
    assert!(
        matches!(&panicked, Err(CallError::HandlerPanicked(m)) if m.contains("unlucky")),
        "{panicked:?}"
    );
    assert!(
        matches!(
            &not_accepted,
            Err(CallError::Remote {
                code: ErrorCode::UnknownMessageType,
                ..
            })
        ),
        "{not_accepted:?}"
    );
    assert_eq!(
        unknown,
        Err(CallError::UnknownName {
            name: "nobody".into()
        })
    );
}

/// What [`flood_a_busy_recorder`] saw: handled, b's counters, a's tells, the slow ask.
type Flood = (
    Vec<u32>,
    NodeStats,
    Vec<Result<(), CallError>>,
    Result<u32, CallError>,
);

/// b's recorder has a mailbox of 2 and is kept busy by a slow ask; returns what it
/// handled, b's node counters, a's results, and what a's tells returned.
fn flood_a_busy_recorder(
    seed: u64,
    b_wait: Duration,
    busy_ms: u32,
    tells: u32,
    hwm: usize,
) -> Flood {
    let mut c = cluster(seed, &["a", "b"]);
    c.transports = c.transports.into_iter().map(|t| t.with_hwm(hwm)).collect();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let tb = c.transports[1].clone();
    let rec_seen = seen.clone();
    let server = c.world.spawn_on(c.ids[1], async move {
        let node = Node::start(config("b", &["a"]).default_timeout(b_wait), tb).expect("set-up");
        let rec = build(move || Recorder {
            seen: rec_seen.clone(),
        })
        .mailbox(2)
        .spawn();
        node.export("rec", &rec)
            .expect("set-up")
            .accept::<Note>()
            .accept::<Slow>();
        node
    });
    let t = c.transports[0].clone();
    let caller = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(config("a", &["b"]), t).expect("set-up");
        let rec = node.lookup::<Recorder>("rec");
        // Keep the recorder busy, then flood it.
        let busy = tern_executor::spawn(
            rec.ask(Slow(busy_ms))
                .timeout(Duration::from_secs(30))
                .into_future(),
        );
        tern_executor::time::sleep(Duration::from_millis(100)).await;
        let mut told = Vec::new();
        for i in 0..tells {
            told.push(rec.try_tell(Note(i)).map_err(|u| u.reason));
        }
        (told, busy.await.expect("busy task"))
    });
    c.world.run_until(secs(20.0));
    let (told, busy) = result(&c, 0, caller);
    let server = result(&c, 1, server);
    let seen = seen.borrow().clone();
    (seen, server.stats(), told, busy)
}

#[test]
fn a_full_remote_mailbox_holds_delivery_and_pushes_back_to_the_sender() {
    // The recorder is busy for 1 s; b may hold a request for room up to 5 s: nothing
    // that was accepted is lost, and the sender is told to back off once the queues
    // between the nodes (high-water mark 20) are full.
    let (seen, stats, told, busy) = flood_a_busy_recorder(5, Duration::from_secs(5), 1000, 200, 20);
    assert_eq!(busy, Ok(1000));
    let accepted: Vec<u32> = (0..200).filter(|&i| told[i as usize].is_ok()).collect();
    assert!(
        told.iter()
            .any(|t| matches!(t, Err(CallError::Backpressure(_)))),
        "{told:?}"
    );
    assert!(
        told.iter()
            .all(|t| matches!(t, Ok(()) | Err(CallError::Backpressure(_))))
    );
    assert_eq!(seen, accepted, "every accepted tell is handled, in order");
    assert!(stats.held >= 1, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
}

#[test]
fn a_request_that_waits_too_long_for_room_is_dropped_and_counted() {
    // Busy for 3 s, but b holds a request for at most 200 ms: the tells that do not
    // fit are dropped (counted and logged), never silently.
    let (seen, stats, told, busy) =
        flood_a_busy_recorder(6, Duration::from_millis(200), 3000, 5, 10_000);
    assert_eq!(busy, Ok(3000));
    assert!(told.iter().all(Result::is_ok));
    assert_eq!(seen, vec![0, 1], "two fit in the mailbox");
    assert_eq!((stats.dropped, stats.held), (3, 3), "{stats:?}");
}

#[test]
fn calls_on_the_same_node_never_encode() {
    let mut c = cluster(1, &["a"]);
    let t = c.transports[0].clone();
    let h = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(config("a", &[]), t).unwrap();
        let rec = spawn(Recorder::default());
        node.export("rec", &rec).unwrap().accept::<Note>();
        let r = node.lookup::<Recorder>("rec");
        r.try_tell(LocalOnly(1)).unwrap();
        let here = r.ask(LocalOnly(1)).await;
        // Pinned to this node by name: still local.
        let pinned = node
            .lookup_on::<Recorder>("a", "rec")
            .ask(LocalOnly(2))
            .await;
        (here, pinned, node.stats())
    });
    c.world.run_until(secs(1.0));
    let (here, pinned, stats) = result(&c, 0, h);
    assert_eq!((here, pinned), (Ok(2), Ok(3)));
    assert_eq!(stats.tells_sent + stats.asks_sent, 0);
}

#[test]
fn a_restarted_node_is_found_again_and_old_asks_fail_fast() {
    let mut c = cluster(7, &["a", "b"]);
    serve(&c, 1, &["a"], 0);
    let t = c.transports[0].clone();
    let caller = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(config("a", &["b"]), t).unwrap();
        let rec = node.lookup::<Recorder>("rec");
        let first = rec.ask(Note(1)).await;
        // This ask is in progress when b crashes at 1 s and restarts at 2 s.
        let lost = rec.ask(Slow(1500)).timeout(Duration::from_secs(30)).await;
        let lost_at = tern_executor::time::now();
        let mut again = rec.ask(Note(2)).await;
        while again.is_err() {
            tern_executor::time::sleep(Duration::from_millis(100)).await;
            again = rec.ask(Note(2)).await;
        }
        (first, lost, lost_at, again)
    });
    c.world.run_until(secs(1.0));
    c.world.crash(c.ids[1]);
    c.world.run_until(secs(2.0));
    c.world.restart(c.ids[1]).unwrap();
    let seen = serve(&c, 1, &["a"], 1);
    c.world.run_until(secs(10.0));
    let (first, lost, lost_at, again) = result(&c, 0, caller);
    assert_eq!(first, Ok(1));
    assert!(
        matches!(lost, Err(CallError::PeerLost(ref n)) if n == "b"),
        "{lost:?}"
    );
    assert!(
        lost_at < secs(3.0),
        "failed when the new generation announced itself"
    );
    assert_eq!(again, Ok(1), "the new incarnation has a fresh recorder");
    assert_eq!(*seen.borrow(), vec![2]);
}

/// Three sender nodes tell one recorder on a fourth node; returns the handling order.
fn three_senders(seed: u64) -> Vec<u32> {
    let mut c = cluster(seed, &["r", "s1", "s2", "s3"]);
    let seen = serve(&c, 0, &["s1", "s2", "s3"], 0);
    for (i, name) in ["s1", "s2", "s3"].iter().enumerate() {
        let t = c.transports[i + 1].clone();
        let config = config(name, &["r"]);
        let base = 10 * (i as u32 + 1);
        c.world
            .spawn_on(c.ids[i + 1], async move {
                let node = Node::start(config, t).unwrap_or_else(|e| panic!("{e}"));
                let rec = node.lookup::<Recorder>("rec");
                for k in 0..3 {
                    if rec.try_tell(Note(base + k)).is_err() {
                        panic!("tell refused");
                    }
                }
            })
            .detach();
    }
    c.world.run_until(secs(2.0));
    seen.borrow().clone()
}

#[test]
fn each_sender_keeps_its_order_and_nothing_stronger_is_promised() {
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..100 {
        let order = three_senders(seed);
        assert_eq!(order.len(), 9, "seed {seed}: {order:?}");
        for base in [10, 20, 30] {
            let mine: Vec<u32> = order
                .iter()
                .copied()
                .filter(|n| n / 10 * 10 == base)
                .collect();
            assert_eq!(
                mine,
                [base, base + 1, base + 2],
                "seed {seed}: per-sender FIFO"
            );
        }
        assert_eq!(three_senders(seed), order, "seed {seed} replays");
        orders.insert(order);
    }
    assert!(
        orders.len() >= 2,
        "the interleaving across senders must vary with the seed"
    );
}

#[test]
fn a_full_queue_to_a_frozen_node_is_typed_backpressure_and_gives_the_message_back() {
    let mut c = cluster(13, &["a", "b"]);
    c.transports = c.transports.into_iter().map(|t| t.with_hwm(20)).collect();
    let seen = serve(&c, 1, &["a"], 0);
    let t = c.transports[0].clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let caller = c.world.spawn_on(c.ids[0], async move {
        let node = Node::start(config("a", &["b"]), t).unwrap();
        let rec = node.lookup::<Recorder>("rec");
        // Wait until b's name is known, then until the test froze b.
        rec.ask(Note(0)).await.unwrap();
        let _ = tx.send(());
        tern_executor::time::sleep(Duration::from_millis(500)).await;
        let mut accepted = 0;
        for i in 1..100 {
            match rec.try_tell(Note(i)) {
                Ok(()) => accepted += 1,
                Err(u) => return (accepted, Some((u.reason, u.message.0))),
            }
        }
        (accepted, None)
    });
    c.world.run_until_with(|_| rx.try_recv().is_ok());
    c.world.pause(c.ids[1]);
    c.world.run_until(secs(5.0));
    let (accepted, refused) = result(&c, 0, caller);
    assert!(
        accepted > 0 && accepted <= 20,
        "at most the high-water mark: {accepted}"
    );
    assert_eq!(
        refused,
        Some((CallError::Backpressure("b".into()), accepted + 1)),
        "the refused tell comes back"
    );
    c.world.resume(c.ids[1]);
    c.world.run_until(secs(10.0));
    assert_eq!(
        seen.borrow().len(),
        1 + accepted as usize,
        "every accepted tell arrives"
    );
}
