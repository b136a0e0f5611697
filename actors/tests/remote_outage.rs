//! One outage, one error story: a host killed on the simulator gives the same classes
//! of `CallError` over a sweep of seeds. The ask in flight is lost with its connection
//! (`PeerLost`, may have been handled); calls made after the kill were never sent
//! (`Unreachable` for the host, `NotHosted` for the name), never a name "never heard
//! of"; once membership declares the host dead, calls fail `NotHosted` (at once when
//! membership feeds the node).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::Instant;
use tern_executor::sim::World;
use tern_executor::time;
use tern_transport::SimTransport;

struct Sleeper;
impl Actor for Sleeper {}

/// Sleeps `n` ms, then answers `n`.
#[derive(Debug, Serialize, Deserialize)]
struct Nap(u64);
impl RemoteMessage for Nap {
    const NAME: &'static str = "test.v1.Nap";
    type Codec = Postcard;
}
impl Handler<Nap> for Sleeper {
    type Reply = u64;
    async fn handle(&mut self, m: Nap, _: &mut Context<Self>) -> u64 {
        time::sleep(Duration::from_millis(m.0)).await;
        m.0
    }
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

/// What the caller saw: the ask in flight at the kill, then the calls made after it
/// (before membership says the host is dead), then the calls after that, with how
/// long each took.
type Seen = (
    Result<u64, CallError>,
    Vec<CallError>,
    Vec<(CallError, Duration)>,
);

/// Kills the host of "nap" at 1 s. With `membership`, peers are fed as membership
/// input (`peer_up`, `peer_down`); without, they are configured and exchange
/// directories.
fn outage(seed: u64, membership: bool) -> Seen {
    let mut world = World::new(seed).expect("world");
    let (a, b) = (
        world.add_node("a").expect("node a"),
        world.add_node("b").expect("node b"),
    );
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
    let ta = SimTransport::new("a", world.socket(a), names.clone());
    let tb = SimTransport::new("b", world.socket(b), names);
    world
        .spawn_on(b, async move {
            let peers: &[&str] = if membership { &[] } else { &["a"] };
            let node =
                Node::start(NodeConfig::new("b").peers(peers.iter().copied()), tb).expect("node");
            node.export("nap", &spawn(Sleeper))
                .expect("export")
                .accept::<Nap>();
            if membership {
                node.peer_up("a", 0, None, &[]);
            }
        })
        .detach();
    let caller = world.spawn_on(a, async move {
        let peers: &[&str] = if membership { &[] } else { &["b"] };
        let node =
            Node::start(NodeConfig::new("a").peers(peers.iter().copied()), ta).expect("node");
        if membership {
            node.peer_up("b", 0, None, &["nap"]);
        }
        let nap = node.lookup::<Sleeper>("nap");
        assert_eq!(
            nap.ask(Nap(1)).await,
            Ok(1),
            "the host answers before the kill"
        );
        time::sleep_until(secs(0.5)).await;
        // In flight when b is killed at 1 s.
        let in_flight = nap.ask(Nap(3_000)).timeout(Duration::from_secs(5)).await;
        let mut after = Vec::new();
        while time::now() < secs(2.0) {
            if let Err(e) = nap.ask(Nap(1)).timeout(Duration::from_millis(300)).await {
                after.push(e);
            }
            time::sleep(Duration::from_millis(100)).await;
        }
        // Membership's verdict: b is dead.
        node.peer_down("b", false);
        let mut dead = Vec::new();
        for _ in 0..3 {
            let start = time::now();
            if let Err(e) = nap.ask(Nap(1)).timeout(Duration::from_millis(300)).await {
                dead.push((e, time::now() - start));
            }
        }
        (in_flight, after, dead)
    });
    world.run_until(secs(1.0));
    world.crash(b);
    world.run_until(secs(10.0));
    world
        .runtime(a)
        .expect("a is up")
        .block_on(caller)
        .expect("caller finished")
}

#[test]
fn a_killed_host_gives_the_same_error_classes_on_every_seed() {
    for (seed, membership) in (0..20).flat_map(|s| [(s, false), (s, true)]) {
        let (in_flight, after, dead) = outage(seed, membership);
        // In flight: lost with the connection, may have run.
        assert_eq!(
            in_flight,
            Err(CallError::PeerLost("b".into())),
            "seed {seed}"
        );
        assert!(in_flight.unwrap_err().may_have_been_handled());
        // Made after the kill: never sent, never handled, never a typo-like error.
        assert!(!after.is_empty(), "seed {seed}");
        for e in &after {
            assert!(
                matches!(
                    e,
                    CallError::Unreachable(n) if n == "b"
                ) || matches!(e, CallError::NotHosted { name } if name == "nap"),
                "seed {seed}: {after:?}"
            );
            assert!(e.is_unavailable() && !e.may_have_been_handled(), "{e:?}");
        }
        if membership {
            // The connection is seen lost: the host is unreachable, said at once.
            assert!(
                after
                    .iter()
                    .all(|e| *e == CallError::Unreachable("b".into())),
                "seed {seed}: {after:?}"
            );
        }
        // Declared dead: the name has no host, said at once.
        assert_eq!(dead.len(), 3, "seed {seed}");
        for (e, took) in &dead {
            assert_eq!(
                *e,
                CallError::NotHosted { name: "nap".into() },
                "seed {seed}"
            );
            if membership {
                assert_eq!(*took, Duration::ZERO, "seed {seed}: failed at once");
            }
        }
        assert_eq!(outage(seed, membership).1, after, "seed {seed} replays");
    }
}

#[test]
fn a_name_never_announced_is_unknown_and_one_withdrawn_is_not_hosted() {
    let mut world = World::new(5).expect("world");
    let (a, b) = (world.add_node("a").unwrap(), world.add_node("b").unwrap());
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
    let ta = SimTransport::new("a", world.socket(a), names.clone());
    let tb = SimTransport::new("b", world.socket(b), names);
    world
        .spawn_on(b, async move {
            let node = Node::start(NodeConfig::new("b").peers(["a"]), tb).unwrap();
            node.export("nap", &spawn(Sleeper)).unwrap().accept::<Nap>();
            time::sleep_until(secs(1.0)).await;
            node.unexport("nap");
        })
        .detach();
    let caller = world.spawn_on(a, async move {
        let node = Node::start(NodeConfig::new("a").peers(["b"]), ta).unwrap();
        let short = Duration::from_millis(200);
        let typo = node
            .lookup::<Sleeper>("npa")
            .ask(Nap(1))
            .timeout(short)
            .await;
        time::sleep_until(secs(2.0)).await;
        let withdrawn = node
            .lookup::<Sleeper>("nap")
            .ask(Nap(1))
            .timeout(short)
            .await;
        (typo, withdrawn)
    });
    world.run_until(secs(5.0));
    let (typo, withdrawn) = world.runtime(a).unwrap().block_on(caller).unwrap();
    let typo = typo.unwrap_err();
    assert_eq!(typo, CallError::UnknownName { name: "npa".into() });
    assert!(typo.to_string().contains("check the name"), "{typo}");
    assert_eq!(withdrawn, Err(CallError::NotHosted { name: "nap".into() }));
}
