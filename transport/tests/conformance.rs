//! One conformance suite, two transports (design/simulation.md F1): every test body
//! below runs against the simulated transport and against ZeroMQ on tcp loopback, and
//! both must pass. Covered: order per connection, framing limits, typed refusals,
//! backpressure without loss, startup order (a peer not up yet is refused, then
//! announced with `PeerUp`), and a restart (`PeerLost` at once, sends refused while the
//! peer is down, `PeerUp` when it is back, and nothing sent to the old process reaches
//! the new one).

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::{NodeId, World};
use tern_executor::{JoinHandle, Runtime, time};
use tern_transport::{Incoming, SimTransport, Transport, TransportError, ZmqConfig, ZmqTransport};

/// What a test body needs from a transport arm.
trait Arm {
    type T: Transport + Clone + 'static;
    /// Node a's transport.
    fn a(&self) -> Self::T;
    /// Node b's transport (a new one after [`Arm::restart_b`]).
    fn b(&self) -> Self::T;
    /// Runs `fut` to completion on node a (virtual or real time as the arm has it).
    fn run<F>(&mut self, fut: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static;
    /// Node b's process dies; frames in flight and b's unread frames are lost.
    fn stop_b(&mut self);
    /// Starts node b (again, after [`Arm::stop_b`], with the same name and address) if
    /// it is not running.
    fn start_b(&mut self);
    /// The arm's label, for messages.
    fn label(&self) -> &'static str;
}

// ----- the simulated arm -----

struct SimArm {
    world: World,
    ids: [NodeId; 2],
    directory: Rc<BTreeMap<String, NodeId>>,
    hwm: usize,
    a: SimTransport,
    b: SimTransport,
    b_up: bool,
}

impl SimArm {
    fn new(seed: u64, hwm: usize) -> Self {
        Self::with_b(seed, hwm, true)
    }

    fn with_b(seed: u64, hwm: usize, start_b: bool) -> Self {
        let mut world = World::new(seed).expect("world");
        let ids = [
            world.add_node("a").expect("a"),
            world.add_node("b").expect("b"),
        ];
        let directory = Rc::new(BTreeMap::from([
            ("a".to_owned(), ids[0]),
            ("b".to_owned(), ids[1]),
        ]));
        let b = SimTransport::new("b", world.socket(ids[1]), directory.clone()).with_hwm(hwm);
        if !start_b {
            world.crash(ids[1]);
        }
        let a = SimTransport::new("a", world.socket(ids[0]), directory.clone()).with_hwm(hwm);
        Self {
            world,
            ids,
            directory,
            hwm,
            a,
            b,
            b_up: start_b,
        }
    }
}

impl Arm for SimArm {
    type T = SimTransport;

    fn a(&self) -> SimTransport {
        self.a.clone()
    }

    fn b(&self) -> SimTransport {
        self.b.clone()
    }

    fn run<F>(&mut self, fut: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let done = Rc::new(std::cell::Cell::new(false));
        let flag = done.clone();
        let handle: JoinHandle<F::Output> = self.world.spawn_on(self.ids[0], async move {
            let out = fut.await;
            flag.set(true);
            out
        });
        let limit = self.world.now() + Duration::from_secs(600);
        self.world
            .run_until_with(|w| done.get() || w.now() >= limit);
        assert!(
            done.get(),
            "sim: the body did not finish in 600 virtual seconds"
        );
        self.world
            .runtime(self.ids[0])
            .expect("a is up")
            .block_on(handle)
            .expect("the body finished")
    }

    fn stop_b(&mut self) {
        self.world.crash(self.ids[1]);
        self.b_up = false;
    }

    fn start_b(&mut self) {
        if !self.b_up {
            self.world.restart(self.ids[1]).expect("restart");
            self.b = SimTransport::new("b", self.world.socket(self.ids[1]), self.directory.clone())
                .with_hwm(self.hwm);
            self.b_up = true;
        }
    }

    fn label(&self) -> &'static str {
        "sim"
    }
}

// ----- the ZeroMQ arm -----

struct ZmqArm {
    rt: Runtime,
    a: ZmqTransport,
    b: Option<ZmqTransport>,
    b_config: ZmqConfig,
}

fn free_port() -> u16 {
    tern_transport::loopback_port().expect("a free loopback port")
}

impl ZmqArm {
    fn new(hwm: i32, start_b: bool) -> Self {
        let rt = Runtime::new().expect("runtime");
        let (pa, pb) = (free_port(), free_port());
        let mut a_config = ZmqConfig::new("a")
            .plaintext()
            .listen(format!("tcp://127.0.0.1:{pa}"))
            .peer("b", format!("tcp://127.0.0.1:{pb}"));
        let mut b_config = ZmqConfig::new("b")
            .plaintext()
            .listen(format!("tcp://127.0.0.1:{pb}"))
            .peer("a", format!("tcp://127.0.0.1:{pa}"));
        for c in [&mut a_config, &mut b_config] {
            c.send_hwm = hwm;
            c.recv_hwm = hwm;
            c.reconnect_ivl_max = Duration::from_millis(200);
        }
        let (a, b) = rt.block_on(async {
            let a = ZmqTransport::bind(a_config).expect("a");
            let b = start_b.then(|| ZmqTransport::bind(b_config.clone()).expect("b"));
            (a, b)
        });
        Self { rt, a, b, b_config }
    }
}

impl Arm for ZmqArm {
    type T = ZmqTransport;

    fn a(&self) -> ZmqTransport {
        self.a.clone()
    }

    fn b(&self) -> ZmqTransport {
        self.b.clone().expect("b is running")
    }

    fn run<F>(&mut self, fut: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.rt.block_on(async {
            time::timeout(Duration::from_secs(60), fut)
                .await
                .expect("zmq: the body did not finish in 60 s")
        })
    }

    fn stop_b(&mut self) {
        let old = self.b.take();
        self.rt.block_on(async move {
            if let Some(b) = old {
                b.close();
            }
            // Let the old sockets close (bounded linger) before the port is bound again.
            time::sleep(Duration::from_millis(600)).await;
        });
    }

    fn start_b(&mut self) {
        if self.b.is_none() {
            let config = self.b_config.clone();
            self.b = Some(
                self.rt
                    .block_on(async { ZmqTransport::bind(config).expect("b") }),
            );
        }
    }

    fn label(&self) -> &'static str {
        "zmq"
    }
}

// ----- helpers -----

/// Sends, waiting out backpressure and a connection that is not up yet.
async fn send_patiently<T: Transport>(t: &T, to: &str, env: Vec<u8>) {
    for _ in 0..100_000 {
        match t.send(to, env.clone(), Vec::new()) {
            Ok(()) => return,
            Err(TransportError::Backpressure(_) | TransportError::Unreachable(_)) => {
                time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
    panic!("send kept failing");
}

/// The next frame, skipping connection events; `None` after `wait` without one.
async fn next_frame<T: Transport>(t: &T, wait: Duration) -> Option<(String, Vec<u8>)> {
    loop {
        match time::timeout(wait, t.recv()).await {
            Ok(Incoming::Frame { from, envelope, .. }) => return Some((from, envelope)),
            Ok(Incoming::PeerLost(_) | Incoming::PeerUp(_)) => {}
            Err(_) => return None,
        }
    }
}

/// Waits (up to `wait`) for `want` about `peer`, skipping frames and other events.
async fn next_event<T: Transport>(t: &T, want: &str, peer: &str, wait: Duration) -> bool {
    let end = time::now() + wait;
    loop {
        let left = end.saturating_duration_since(time::now());
        match time::timeout(left, t.recv()).await {
            Ok(Incoming::PeerLost(p)) if p == peer && want == "lost" => return true,
            Ok(Incoming::PeerUp(p)) if p == peer && want == "up" => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fn seq(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn unseq(b: &[u8]) -> u32 {
    u32::from_le_bytes(b.try_into().expect("4 bytes"))
}

// ----- the bodies -----

fn frames_arrive_in_order_exactly_once(arm: &mut impl Arm) {
    let (a, b) = (arm.a(), arm.b());
    let got = arm.run(async move {
        for i in 0..2_000 {
            send_patiently(&a, "b", seq(i)).await;
        }
        let mut got = Vec::new();
        while let Some((from, env)) = next_frame(&b, Duration::from_secs(2)).await {
            assert_eq!(from, "a");
            got.push(unseq(&env));
        }
        got
    });
    assert_eq!(got, (0..2_000).collect::<Vec<_>>(), "{}", arm.label());
}

fn refusals_are_typed(arm: &mut impl Arm) {
    let a = arm.a();
    let (too_large, unknown) = arm.run(async move {
        let too_large = a.send("b", Vec::new(), vec![0; (1 << 20) + 1]);
        let unknown = a.send("nobody", b"x".to_vec(), Vec::new());
        (too_large, unknown)
    });
    assert!(
        matches!(too_large, Err(TransportError::TooLarge { .. })),
        "{}: {too_large:?}",
        arm.label()
    );
    assert!(
        matches!(
            unknown,
            Err(TransportError::UnknownNode(_) | TransportError::Unreachable(_))
        ),
        "{}: {unknown:?}",
        arm.label()
    );
}

fn backpressure_is_typed_and_loses_nothing(arm: &mut impl Arm) {
    let (a, b) = (arm.a(), arm.b());
    let (accepted, got) = arm.run(async move {
        // b reads nothing yet: a's queue to it fills up.
        // The first frame waits for the connection.
        send_patiently(&a, "b", seq(0)).await;
        let mut accepted = 1u32;
        let mut refused = false;
        for i in 1..1_000_000 {
            match a.send("b", seq(i), vec![0; 256]) {
                Ok(()) => accepted += 1,
                Err(TransportError::Backpressure(_)) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("unexpected {e}"),
            }
            if i % 64 == 0 {
                // Let the I/O move (ZeroMQ's queue is several pipes deep).
                time::sleep(Duration::from_micros(50)).await;
            }
        }
        assert!(refused, "no backpressure after {accepted} frames");
        let mut got = Vec::new();
        while let Some((_, env)) = next_frame(&b, Duration::from_secs(2)).await {
            got.push(unseq(&env));
        }
        (accepted, got)
    });
    assert_eq!(
        got,
        (0..accepted).collect::<Vec<_>>(),
        "{}: every accepted frame arrives, in order",
        arm.label()
    );
}

fn a_peer_not_up_yet_is_refused_then_announced(arm: &mut impl Arm) {
    let a = arm.a();
    let early = arm.run(async move {
        let early = a.send("b", seq(0), Vec::new());
        time::sleep(Duration::from_millis(200)).await;
        early
    });
    assert_eq!(
        early,
        Err(TransportError::Unreachable("b".into())),
        "{}: a send to a peer with no connection is refused, not queued",
        arm.label()
    );
    arm.start_b();
    let (a, b) = (arm.a(), arm.b());
    let (up, got) = arm.run(async move {
        let up = next_event(&a, "up", "b", Duration::from_secs(5)).await;
        for i in 1..=10 {
            a.send("b", seq(i), Vec::new()).expect("connected");
        }
        let mut got = Vec::new();
        while let Some((_, env)) = next_frame(&b, Duration::from_secs(2)).await {
            got.push(unseq(&env));
        }
        (up, got)
    });
    assert!(up, "{}: no PeerUp(b)", arm.label());
    assert_eq!(got, (1..=10).collect::<Vec<_>>(), "{}", arm.label());
}

fn a_restarted_peer_is_refused_while_down_and_gets_only_new_frames(arm: &mut impl Arm) {
    let (a, b) = (arm.a(), arm.b());
    let first = arm.run(async move {
        send_patiently(&a, "b", seq(1)).await;
        next_frame(&b, Duration::from_secs(5)).await
    });
    assert_eq!(first.map(|f| unseq(&f.1)), Some(1), "{}", arm.label());
    arm.stop_b();
    let a = arm.a();
    let (lost, refused) = arm.run(async move {
        // a learns that its connection to b went away, and refuses frames for it.
        let lost = next_event(&a, "lost", "b", Duration::from_secs(10)).await;
        let mut refused = Vec::new();
        for i in 100..110 {
            refused.push(a.send("b", seq(i), Vec::new()));
            time::sleep(Duration::from_millis(10)).await;
        }
        (lost, refused)
    });
    assert!(lost, "{}: a saw no PeerLost(b)", arm.label());
    assert!(
        refused
            .iter()
            .all(|r| *r == Err(TransportError::Unreachable("b".into()))),
        "{}: {refused:?}",
        arm.label()
    );
    arm.start_b();
    let (a, b) = (arm.a(), arm.b());
    let (up, again) = arm.run(async move {
        let up = next_event(&a, "up", "b", Duration::from_secs(10)).await;
        a.send("b", seq(2), Vec::new()).expect("connected again");
        let mut got = Vec::new();
        while let Some((_, env)) = next_frame(&b, Duration::from_secs(2)).await {
            got.push(unseq(&env));
        }
        (up, got)
    });
    assert!(up, "{}: a saw no PeerUp(b)", arm.label());
    assert_eq!(
        again,
        [2],
        "{}: the new b gets only what was sent to it",
        arm.label()
    );
}

// ----- the suite, per arm -----

#[test]
fn sim_frames_arrive_in_order_exactly_once() {
    for seed in 0..5 {
        frames_arrive_in_order_exactly_once(&mut SimArm::new(seed, 10_000));
    }
}

#[test]
fn zmq_frames_arrive_in_order_exactly_once() {
    frames_arrive_in_order_exactly_once(&mut ZmqArm::new(10_000, true));
}

#[test]
fn sim_refusals_are_typed() {
    refusals_are_typed(&mut SimArm::new(1, 10_000));
}

#[test]
fn zmq_refusals_are_typed() {
    refusals_are_typed(&mut ZmqArm::new(10_000, true));
}

#[test]
fn sim_backpressure_is_typed_and_loses_nothing() {
    backpressure_is_typed_and_loses_nothing(&mut SimArm::new(2, 100));
}

#[test]
fn zmq_backpressure_is_typed_and_loses_nothing() {
    backpressure_is_typed_and_loses_nothing(&mut ZmqArm::new(100, true));
}

#[test]
fn sim_a_restarted_peer_is_refused_while_down_and_gets_only_new_frames() {
    for seed in 0..5 {
        a_restarted_peer_is_refused_while_down_and_gets_only_new_frames(&mut SimArm::new(
            seed, 10_000,
        ));
    }
}

#[test]
fn zmq_a_restarted_peer_is_refused_while_down_and_gets_only_new_frames() {
    a_restarted_peer_is_refused_while_down_and_gets_only_new_frames(&mut ZmqArm::new(10_000, true));
}

#[test]
fn sim_a_peer_not_up_yet_is_refused_then_announced() {
    for seed in 0..5 {
        a_peer_not_up_yet_is_refused_then_announced(&mut SimArm::with_b(seed, 10_000, false));
    }
}

#[test]
fn zmq_a_peer_not_up_yet_is_refused_then_announced() {
    a_peer_not_up_yet_is_refused_then_announced(&mut ZmqArm::new(10_000, false));
}

#[test]
fn the_arms_agree_on_what_a_deadline_means() {
    // Nothing answers on either arm: a receive with a deadline ends at the deadline,
    // in virtual time on one arm and real time on the other.
    let mut sim = SimArm::new(5, 10_000);
    let b = sim.b();
    let (waited, got) = sim.run(async move {
        let start = time::now();
        let got = next_frame(&b, Duration::from_millis(300)).await;
        (time::now().saturating_duration_since(start), got)
    });
    assert!(got.is_none());
    assert_eq!(waited, Duration::from_millis(300), "virtual time is exact");
    let mut zmq = ZmqArm::new(10_000, true);
    let b = zmq.b();
    let (waited, got) = zmq.run(async move {
        let start = time::now();
        let got = next_frame(&b, Duration::from_millis(300)).await;
        (time::now().saturating_duration_since(start), got)
    });
    assert!(got.is_none());
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
}
