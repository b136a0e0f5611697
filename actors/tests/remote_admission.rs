//! Inbound admission per component on the simulated network: a full mailbox holds only
//! its own requests, within a byte bound, and an ask that expired in the mailbox is
//! not handled.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern_actors::remote::{CallError, Node, NodeConfig, NodeStats, Postcard, RemoteMessage};
use tern_actors::{Actor, Context, Handler, build};
use tern_executor::sim::{NodeId, World};
use tern_executor::{Instant, JoinHandle, time};
use tern_transport::SimTransport;

/// Sleeps the given ms, records it, and echoes it.
struct Worker {
    seen: Rc<RefCell<Vec<u64>>>,
}
impl Actor for Worker {}

#[derive(Debug, Serialize, Deserialize)]
struct Work(u64);
impl RemoteMessage for Work {
    const NAME: &'static str = "test.v1.Work";
    type Codec = Postcard;
}
impl Handler<Work> for Worker {
    type Reply = u64;
    async fn handle(&mut self, m: Work, _: &mut Context<Self>) -> u64 {
        time::sleep(Duration::from_millis(m.0)).await;
        self.seen.borrow_mut().push(m.0);
        m.0
    }
}

struct Pair {
    world: World,
    a: NodeId,
    b: NodeId,
    /// What b's "stuck" component handled, in order.
    stuck: Rc<RefCell<Vec<u64>>>,
}

fn secs(s: f64) -> Instant {
    Instant::from_nanos((s * 1e9) as u64)
}

/// a and b, configured peers. b exports "stuck" (mailbox of `mailbox`) and "ok";
/// a exports "echo". b holds at most `held_bytes` of waiting requests.
fn pair(seed: u64, mailbox: usize, held_bytes: usize) -> Pair {
    let mut world = World::new(seed).expect("world");
    let (a, b) = (
        world.add_node("a").expect("node"),
        world.add_node("b").expect("node"),
    );
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
    let ta = SimTransport::new("a", world.socket(a), names.clone());
    let tb = SimTransport::new("b", world.socket(b), names);
    let stuck = Rc::new(RefCell::new(Vec::new()));
    let seen = stuck.clone();
    world
        .spawn_on(b, async move {
            let config = NodeConfig::new("b")
                .peers(["a"])
                .held_bytes_limit(held_bytes);
            let node = Node::start(config, tb).expect("node");
            let stuck = build(move || Worker { seen: seen.clone() })
                .mailbox(mailbox)
                .spawn();
            node.export("stuck", &stuck)
                .expect("export")
                .accept::<Work>();
            let ok = build(|| Worker {
                seen: Rc::default(),
            })
            .spawn();
            node.export("ok", &ok).expect("export").accept::<Work>();
        })
        .detach();
    world
        .spawn_on(a, async move {
            let node = Node::start(NodeConfig::new("a").peers(["b"]), ta).expect("node");
            let echo = build(|| Worker {
                seen: Rc::default(),
            })
            .spawn();
            node.export("echo", &echo).expect("export").accept::<Work>();
        })
        .detach();
    Pair { world, a, b, stuck }
}

type Timed = (Result<u64, CallError>, Duration);

/// An ask from `from` to `component` at `at` seconds, with a deadline of `timeout`.
fn ask_at(
    p: &Pair,
    from: NodeId,
    at: f64,
    component: &'static str,
    ms: u64,
    timeout: Duration,
) -> JoinHandle<Timed> {
    p.world.spawn_on(from, async move {
        time::sleep_until(secs(at)).await;
        let node = Node::current().expect("node");
        let t0 = time::now();
        let r = node
            .lookup::<Worker>(component)
            .ask(Work(ms))
            .timeout(timeout)
            .await;
        (r, time::now().saturating_duration_since(t0))
    })
}

fn done<T: 'static>(p: &Pair, on: NodeId, h: JoinHandle<T>) -> T {
    p.world
        .runtime(on)
        .expect("up")
        .block_on(h)
        .expect("task finished")
}

fn stats(p: &Pair, on: NodeId) -> NodeStats {
    let h = p
        .world
        .spawn_on(on, async { Node::current().expect("node").stats() });
    done(p, on, h)
}

#[test]
fn a_full_mailbox_holds_only_its_own_requests() {
    const LONG: Duration = Duration::from_secs(30);
    for seed in 0..8 {
        let tag = format!("seed {seed}");
        let mut p = pair(seed, 1, 1 << 20);
        // "stuck" works on 5 s, has 1 more in its mailbox; 20 more wait in its backlog.
        let mut stuck = vec![ask_at(&p, p.a, 0.5, "stuck", 5_000, LONG)];
        for i in 0..21 {
            stuck.push(ask_at(&p, p.a, 0.6, "stuck", 100 + i, LONG));
        }
        // Meanwhile its neighbour answers at once, and b's own asks get their replies.
        let neighbour: Vec<_> = (0..10)
            .map(|i| ask_at(&p, p.a, 1.0 + f64::from(i) * 0.1, "ok", 1, LONG))
            .collect();
        let own: Vec<_> = (0..10)
            .map(|i| ask_at(&p, p.b, 1.0 + f64::from(i) * 0.1, "echo", 1, LONG))
            .collect();
        p.world.run_until(secs(3.0));
        let held = stats(&p, p.b);
        assert_eq!(held.held, 20, "{tag}");
        assert!(held.held_bytes > 0, "{tag}");
        for h in neighbour {
            let (r, took) = done(&p, p.a, h);
            assert_eq!(r, Ok(1), "{tag}");
            assert!(
                took < Duration::from_millis(50),
                "{tag}: neighbour took {took:?}"
            );
        }
        for h in own {
            let (r, took) = done(&p, p.b, h);
            assert_eq!(r, Ok(1), "{tag}");
            assert!(
                took < Duration::from_millis(50),
                "{tag}: own ask took {took:?}"
            );
        }
        // The held requests go in, in order, as room appears.
        p.world.run_until(secs(12.0));
        for h in stuck {
            assert!(done(&p, p.a, h).0.is_ok(), "{tag}");
        }
        let order: Vec<u64> = p.stuck.borrow().clone();
        let expected: Vec<u64> = std::iter::once(5_000).chain(100..121).collect();
        assert_eq!(order, expected, "{tag}");
        let after = stats(&p, p.b);
        assert_eq!((after.held_bytes, after.refused), (0, 0), "{tag}");
    }
}

#[test]
fn past_the_byte_bound_a_request_is_refused_at_once() {
    // Room for about three held requests.
    let mut p = pair(1, 1, 3 * 150);
    let long = Duration::from_secs(30);
    let first = ask_at(&p, p.a, 0.5, "stuck", 3_000, long);
    let queued = ask_at(&p, p.a, 0.6, "stuck", 1, long);
    let held: Vec<_> = (0..3)
        .map(|_| ask_at(&p, p.a, 0.7, "stuck", 2, long))
        .collect();
    let refused = ask_at(&p, p.a, 0.8, "stuck", 3, long);
    p.world.run_until(secs(1.0));
    let (r, took) = done(&p, p.a, refused);
    assert_eq!(r, Err(CallError::MailboxFull));
    assert!(took < Duration::from_millis(50), "took {took:?}");
    p.world.run_until(secs(5.0));
    assert_eq!(done(&p, p.a, first).0, Ok(3_000));
    assert_eq!(done(&p, p.a, queued).0, Ok(1));
    for h in held {
        assert_eq!(done(&p, p.a, h).0, Ok(2));
    }
    let b = stats(&p, p.b);
    assert_eq!((b.held, b.refused), (3, 1));
}

#[test]
fn an_ask_that_expired_in_the_mailbox_is_not_handled() {
    let mut p = pair(2, 8, 1 << 20);
    let long = ask_at(&p, p.a, 0.5, "stuck", 2_000, Duration::from_secs(10));
    // Queued behind the long one; its caller gives up at 1.1 s, before it is reached.
    let short = ask_at(&p, p.a, 0.6, "stuck", 7, Duration::from_millis(500));
    let later = ask_at(&p, p.a, 0.7, "stuck", 9, Duration::from_secs(10));
    p.world.run_until(secs(4.0));
    assert_eq!(done(&p, p.a, long).0, Ok(2_000));
    assert_eq!(done(&p, p.a, short).0, Err(CallError::Timeout));
    assert_eq!(done(&p, p.a, later).0, Ok(9));
    assert_eq!(*p.stuck.borrow(), [2_000, 9], "the expired ask never ran");
    assert_eq!(stats(&p, p.b).requests_expired, 1);
}
