//! Membership as input (`Node::peer_up`, `Node::peer_down`) and fast failure on a lost
//! connection, on the simulated network.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, spawn};
use tern_executor::sim::{NodeId, World};
use tern_executor::{Instant, JoinHandle, time};
use tern_transport::SimTransport;

struct Sleeper;
impl Actor for Sleeper {}

/// Sleeps this many ms, then echoes it.
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

struct Pair {
    world: World,
    a: NodeId,
    b: NodeId,
    names: Rc<BTreeMap<String, NodeId>>,
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

/// Nodes `a` and `b` with no configured peers: each learns the other only through
/// `peer_up` (generation 1); `b` exports a sleeper as "nap", `a` a sleeper as "sink".
/// `a` keeps a lost connection's mark for `relink_after`.
fn pair(seed: u64, relink_after: Duration) -> Pair {
    pair_with(seed, move |c| c.relink_after(relink_after))
}

/// As [`pair`], with a's config set by `config`.
fn pair_with(seed: u64, config: impl FnOnce(NodeConfig) -> NodeConfig + 'static) -> Pair {
    let mut world = World::new(seed).expect("world");
    let (a, b) = (
        world.add_node("a").expect("node"),
        world.add_node("b").expect("node"),
    );
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
    let ta = SimTransport::new("a", world.socket(a), names.clone());
    let p = Pair { world, a, b, names };
    start_b(&p, 1);
    p.world
        .spawn_on(a, async move {
            let node = Node::start(config(NodeConfig::new("a").generation(1)), ta).expect("node");
            node.export("sink", &spawn(Sleeper))
                .expect("export")
                .accept::<Nap>();
            node.peer_up("b", 1, None, &["nap"]);
        })
        .detach();
    p
}

/// Starts b's node at `generation`, knowing a at generation 1.
fn start_b(p: &Pair, generation: u64) {
    let tb = SimTransport::new("b", p.world.socket(p.b), p.names.clone());
    p.world
        .spawn_on(p.b, async move {
            let node = Node::start(NodeConfig::new("b").generation(generation), tb).expect("node");
            node.export("nap", &spawn(Sleeper))
                .expect("export")
                .accept::<Nap>();
            node.peer_up("a", 1, None, &["sink"]);
        })
        .detach();
}

/// Restarts b at `at` seconds as `generation`; a is told nothing.
fn restart_b(p: &mut Pair, at: f64, generation: u64) {
    p.world.run_until(secs(at));
    p.world.crash(p.b);
    p.world.restart(p.b).expect("restart");
    start_b(p, generation);
}

fn stats_of(p: &Pair, node: NodeId) -> tern_actors::remote::NodeStats {
    let h = p
        .world
        .spawn_on(node, async { Node::current().expect("node").stats() });
    p.world
        .runtime(node)
        .expect("up")
        .block_on(h)
        .expect("task")
}

/// Runs an ask from `a` to "nap" starting at `at` seconds; returns its outcome and how
/// long it took.
fn ask_at(p: &Pair, at: f64, ms: u64) -> JoinHandle<(Result<u64, CallError>, Duration)> {
    p.world.spawn_on(p.a, async move {
        time::sleep_until(secs(at)).await;
        let node = Node::current().expect("node");
        let t0 = time::now();
        let r = node
            .lookup::<Sleeper>("nap")
            .ask(Nap(ms))
            .timeout(Duration::from_secs(20))
            .await;
        (r, time::now().saturating_duration_since(t0))
    })
}

fn outcome<T: 'static>(p: &Pair, h: JoinHandle<T>) -> T {
    p.world
        .runtime(p.a)
        .expect("a is up")
        .block_on(h)
        .expect("task finished")
}

#[test]
fn a_lost_connection_fails_calls_fast_until_it_is_back() {
    for seed in 0..10 {
        // a would keep the mark for 10 s; b's for 1 s (the default).
        let mut p = pair(seed, Duration::from_secs(10));
        let before = ask_at(&p, 0.5, 1);
        // Its handler runs on after the cut, until 2.4 s.
        let cut = ask_at(&p, 0.9, 1_500);
        let during = ask_at(&p, 1.1, 1);
        p.world.run_until(secs(1.0));
        p.world.partition(p.a, p.b);
        p.world.run_until(secs(1.2));
        // Still cut at 1.3 s: a refuses calls to b at once.
        let cut_still = ask_at(&p, 1.3, 1);
        p.world.run_until(secs(1.4));
        p.world.heal(p.a, p.b);
        // The connection comes back (the transport's PeerUp, one reconnect interval
        // after the heal), long before a's relink_after: calls go out again. b talks
        // to a as well.
        let told = p.world.spawn_on(p.b, async {
            time::sleep_until(secs(2.2)).await;
            let node = Node::current().expect("node");
            node.lookup::<Sleeper>("sink").ask(Nap(1)).await
        });
        let still = ask_at(&p, 2.1, 1);
        let after = ask_at(&p, 2.5, 1);
        p.world.run_until(secs(3.0));
        let tag = format!("seed {seed}");
        assert_eq!(outcome(&p, before).0, Ok(1), "{tag}");
        let (r, took) = outcome(&p, cut);
        assert_eq!(r, Err(CallError::PeerLost("b".into())), "{tag}");
        assert!(took < Duration::from_millis(200), "{tag}: took {took:?}");
        let (r, took) = outcome(&p, during);
        assert_eq!(r, Err(CallError::Unreachable("b".into())), "{tag}");
        assert_eq!(took, Duration::ZERO, "{tag}");
        let (r, took) = outcome(&p, cut_still);
        assert_eq!(r, Err(CallError::Unreachable("b".into())), "{tag}");
        assert_eq!(took, Duration::ZERO, "{tag}");
        assert_eq!(outcome(&p, still).0, Ok(1), "{tag}");
        let told = p.world.runtime(p.b).expect("b").block_on(told);
        assert_eq!(told.expect("task"), Ok(1), "{tag}");
        assert_eq!(outcome(&p, after).0, Ok(1), "{tag}");
        let a = stats_of(&p, p.a);
        assert_eq!(a.links_lost, 1, "{tag}");
        assert_eq!((a.asks_lost, a.asks_timed_out), (1, 0), "{tag}");
    }
}

#[test]
fn calls_go_out_again_once_the_link_is_back() {
    let mut p = pair(3, Duration::from_secs(1));
    let before = ask_at(&p, 0.5, 1);
    let during = ask_at(&p, 1.5, 1);
    let after = ask_at(&p, 2.1, 1);
    p.world.run_until(secs(1.0));
    p.world.partition(p.a, p.b);
    p.world.run_until(secs(1.8));
    p.world.heal(p.a, p.b);
    p.world.run_until(secs(3.0));
    assert_eq!(outcome(&p, before).0, Ok(1));
    assert_eq!(
        outcome(&p, during).0,
        Err(CallError::Unreachable("b".into()))
    );
    assert_eq!(outcome(&p, after).0, Ok(1));
}

#[test]
fn a_new_generation_lifts_the_mark_and_a_stale_one_is_ignored() {
    // a would keep the mark for 10 s.
    let mut p = pair(5, Duration::from_secs(10));
    let before = ask_at(&p, 0.5, 1);
    restart_b(&mut p, 1.0, 2);
    // Asked at 1.05 s, before the connection to b's new incarnation is up (one
    // reconnect interval, 100 ms, after the restart).
    let h = p.world.spawn_on(p.a, async {
        time::sleep_until(secs(1.05)).await;
        let node = Node::current().expect("node");
        let nap = node.lookup::<Sleeper>("nap");
        let blocked = nap.ask(Nap(1)).await;
        // Stale: ignored, still blocked.
        node.peer_up("b", 0, None, &["nap"]);
        let stale = nap.ask(Nap(1)).await;
        node.peer_up("b", 2, None, &["nap"]);
        let fresh = nap.ask(Nap(1)).await;
        node.peer_down("b", false);
        let gone = nap.ask(Nap(1)).await;
        (blocked, stale, fresh, gone)
    });
    p.world.run_until(secs(2.0));
    assert_eq!(outcome(&p, before).0, Ok(1));
    let (blocked, stale, fresh, gone) = outcome(&p, h);
    assert_eq!(blocked, Err(CallError::Unreachable("b".into())));
    assert_eq!(stale, Err(CallError::Unreachable("b".into())));
    assert_eq!(fresh, Ok(1));
    // Never sent: the name's only host is gone.
    assert_eq!(gone, Err(CallError::NotHosted { name: "nap".into() }));
}

#[test]
fn a_request_meant_for_a_previous_generation_is_refused_not_handled() {
    for seed in 0..10 {
        let tag = format!("seed {seed}");
        let mut p = pair(seed, Duration::from_secs(1));
        let before = ask_at(&p, 0.5, 1);
        restart_b(&mut p, 1.0, 2);
        // Past relink_after, a calls b again, still addressing generation 1.
        let stale = ask_at(&p, 2.5, 1);
        p.world.run_until(secs(3.0));
        assert_eq!(outcome(&p, before).0, Ok(1), "{tag}");
        assert_eq!(outcome(&p, stale).0, Err(CallError::Stopped), "{tag}");
        let b = stats_of(&p, p.b);
        assert_eq!(b.session.fenced, 1, "{tag}");
        assert_eq!(
            b.requests_delivered, 0,
            "{tag}: the new generation handled nothing"
        );
        // Told of generation 2, a reaches it.
        let fresh = p.world.spawn_on(p.a, async {
            let node = Node::current().expect("node");
            node.peer_up("b", 2, None, &["nap"]);
            node.lookup::<Sleeper>("nap").ask(Nap(1)).await
        });
        p.world.run_until(secs(4.0));
        assert_eq!(outcome(&p, fresh), Ok(1), "{tag}");
        assert_eq!(stats_of(&p, p.b).requests_delivered, 1, "{tag}");
    }
}

#[test]
fn counters_say_what_happened_to_tells_and_asks() {
    let mut p = pair(9, Duration::from_secs(10));
    let warm = ask_at(&p, 0.5, 1);
    p.world.run_until(secs(1.0));
    assert_eq!(outcome(&p, warm).0, Ok(1));
    let h = p.world.spawn_on(p.a, async {
        let node = Node::current().expect("node");
        let nap = node.lookup::<Sleeper>("nap");
        nap.try_tell(Nap(1)).expect("accepted");
        let slow = nap.ask(Nap(500)).timeout(Duration::from_millis(100)).await;
        (slow, node.stats())
    });
    p.world.run_until(secs(2.0));
    let (slow, before) = outcome(&p, h);
    assert_eq!(slow, Err(CallError::Timeout));
    assert_eq!((before.tells_sent, before.tells_refused.total()), (1, 0));
    assert_eq!(before.asks_timed_out, 1);
    assert_eq!(
        before.session.timeouts, 1,
        "the session counts the timeout too"
    );
    // Once the link is down, a tell is refused at once and counted by reason.
    p.world.partition(p.a, p.b);
    let h = p.world.spawn_on(p.a, async {
        time::sleep(Duration::from_millis(100)).await;
        let node = Node::current().expect("node");
        let refused = node
            .lookup::<Sleeper>("nap")
            .try_tell(Nap(1))
            .map_err(|u| u.reason);
        (refused, node.stats())
    });
    p.world.run_until(secs(3.0));
    let (refused, after) = outcome(&p, h);
    assert_eq!(refused, Err(CallError::Unreachable("b".into())));
    assert_eq!(after.tells_sent, 1);
    assert_eq!(after.tells_refused.unreachable, 1);
    assert_eq!(after.tells_refused.total(), 1);
}

#[test]
fn ref_tell_waits_for_room_and_try_tell_does_not() {
    // a may park two messages for unknown names; "nap" is unknown until 1 s.
    let mut p = pair_with(6, |c| c.pending_limit(2));
    let h = p.world.spawn_on(p.a, async {
        time::sleep(Duration::from_millis(100)).await;
        let node = Node::current().expect("node");
        node.peer_up("b", 1, None, &[]);
        let nap = node.lookup::<Sleeper>("nap");
        nap.try_tell(Nap(1)).expect("parked");
        nap.try_tell(Nap(2)).expect("parked");
        let full = nap.try_tell(Nap(3)).map_err(|u| u.reason);
        let t0 = time::now();
        let waited = nap.tell(Nap(4)).timeout(Duration::from_secs(5)).await;
        let took = time::now().saturating_duration_since(t0);
        // Full again, and nobody announces the name: the wait is bounded.
        node.peer_up("b", 1, None, &[]);
        nap.try_tell(Nap(5)).expect("parked");
        nap.try_tell(Nap(6)).expect("parked");
        let gave_up = nap
            .tell(Nap(7))
            .timeout(Duration::from_millis(200))
            .await
            .map_err(|u| (u.reason, u.message.0));
        (full, waited.map_err(|u| u.reason), took, gave_up)
    });
    p.world.run_until(secs(0.9));
    // The name becomes known at ~0.9 s: the parked tells go out, then the waiting one.
    p.world
        .spawn_on(p.a, async {
            Node::current()
                .expect("node")
                .peer_up("b", 1, None, &["nap"]);
        })
        .detach();
    p.world.run_until(secs(3.0));
    let (full, waited, took, gave_up) = outcome(&p, h);
    assert_eq!(full, Err(CallError::PendingFull));
    assert_eq!(waited, Ok(()));
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1_000),
        "waited {took:?}"
    );
    assert_eq!(
        gave_up,
        Err((CallError::PendingFull, 7)),
        "bounded by its timeout"
    );
}
