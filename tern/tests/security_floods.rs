//! Floods against a CURVE container in a child process, over loopback (real sockets,
//! real memory): 2,000 idle and 2,000 stalled TCP connections, and 1,500 asks of
//! 1 MiB from an authenticated but greedy peer to a busy component. Each attack is
//! refused and counted, the container stays within its byte budget, and a legitimate
//! client's asks, made all through the attack, are answered within their deadline.
//!
//! The container (`calc`) is this test binary run again with `TERN_FLOOD_TEST_ROLE`
//! set; it is killed and reaped when the test ends, and stops by itself after two
//! minutes in any case. The attacks run on a thread of the test process; the
//! legitimate client is a node (`front`) on the test's runtime.
//!
//! The attackers connect from 127.0.0.2 and 127.0.0.3 and the client from 127.0.0.1,
//! so the per-address cap (64 here) falls on the attackers only. 4,000 sockets need
//! more descriptors than some machines give by default (1,024): the test raises its
//! soft limit to the hard one (the child inherits it), and if the hard limit is lower
//! than it needs, uses fewer connections and says so.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::executor::{Runtime, time};
use tern::proto::v1::{ComponentRef, Envelope, ErrorCode, Kind};
use tern::proto::{Limits, PROTOCOL_VERSION, decode_envelope, encode_envelope};
use tern::remote::{Node, NodeConfig, RemoteMessage};
use tern::transport::{CurveSecurity, KeyPair, ZmqConfig, ZmqTransport};
use tern::{Actor, Context, Handler, build, spawn};

const ROLE: &str = "TERN_FLOOD_TEST_ROLE";
const DIR: &str = "TERN_FLOOD_TEST_DIR";
const PORT: &str = "TERN_FLOOD_TEST_PORT";

/// The container's caps: connections per address, and its byte budgets.
const PER_ADDRESS: usize = 64;
const PEER_BUDGET: usize = 8 << 20;
const NODE_BUDGET: usize = 24 << 20;
/// Connections of each kind the first test opens (fewer if descriptors are short).
const CONNECTIONS: usize = 2_000;
/// Asks of the flood, and their payload: 1 MiB less room for the codec's length.
const FLOOD_ASKS: usize = 1_500;
const MIB: usize = 1 << 20;
const BLOB: usize = MIB - 64;
/// The deadline of every legitimate ask.
const DEADLINE: Duration = Duration::from_secs(5);

// ----- the container's components -----

struct Adder;
impl Actor for Adder {}

#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "flood.v1.Add", codec = Json)]
struct Add {
    a: i64,
    b: i64,
}
impl Handler<Add> for Adder {
    type Reply = i64;
    async fn handle(&mut self, m: Add, _: &mut Context<Self>) -> i64 {
        m.a.saturating_add(m.b)
    }
}

/// The busy component: 20 ms per message, a mailbox of 4,096 (without the byte
/// budget, 4 GiB of 1 MiB asks could wait in it).
struct Sink;
impl Actor for Sink {}

#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "flood.v1.Blob", codec = Postcard)]
struct Blob(Vec<u8>);
impl Handler<Blob> for Sink {
    type Reply = u64;
    async fn handle(&mut self, m: Blob, _: &mut Context<Self>) -> u64 {
        time::sleep(Duration::from_millis(20)).await;
        m.0.len() as u64
    }
}

/// What the container counted, asked for by the test.
struct Probe {
    node: Node,
    transport: ZmqTransport,
    peak: Rc<Cell<usize>>,
}
impl Actor for Probe {}

#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "flood.v1.Report", codec = Json)]
struct Report;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counts {
    /// The most bytes charged to the inbound budget at any sample (every 1 ms).
    peak_inbound_bytes: usize,
    peer_budget_refusals: u64,
    node_budget_refusals: u64,
    connections_refused: u64,
    accepted: u64,
    /// Peak and current resident memory (`VmHWM`, `VmRSS`).
    vm_hwm_kb: u64,
    vm_rss_kb: u64,
}

impl Handler<Report> for Probe {
    type Reply = Counts;
    async fn handle(&mut self, _: Report, _: &mut Context<Self>) -> Counts {
        let (n, z) = (self.node.stats(), self.transport.stats());
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        Counts {
            peak_inbound_bytes: self.peak.get(),
            peer_budget_refusals: n.inbound_refused.peer_budget,
            node_budget_refusals: n.inbound_refused.node_budget,
            connections_refused: z.connections_refused,
            accepted: z.accepted,
            vm_hwm_kb: kb("VmHWM:"),
            vm_rss_kb: kb("VmRSS:"),
        }
    }
}

fn container(dir: &Path, port: u16) {
    Runtime::new().unwrap().block_on(async {
        let keys = KeyPair::load(&dir.join("calc.key")).unwrap();
        let curve = CurveSecurity::with_allow_list_file(keys, dir.join("allow.toml")).unwrap();
        let mut z = ZmqConfig::new("calc")
            .listen(format!("tcp://127.0.0.1:{port}"))
            .curve(curve);
        z.max_connections_per_address = PER_ADDRESS;
        let t = ZmqTransport::bind(z).unwrap();
        let config = NodeConfig::new("calc").inbound_bytes_limits(NODE_BUDGET, PEER_BUDGET);
        let node = Node::start(config, t.clone()).unwrap();
        node.export("adder", &spawn(Adder)).unwrap().accept::<Add>();
        node.export("sink", &build(|| Sink).mailbox(4096).spawn())
            .unwrap()
            .accept::<Blob>();
        let peak = Rc::new(Cell::new(0));
        let probe = Probe {
            node: node.clone(),
            transport: t,
            peak: peak.clone(),
        };
        node.export("probe", &spawn(probe))
            .unwrap()
            .accept::<Report>();
        // Samples the budget's use; stops the container after two minutes at most.
        let start = time::now();
        while time::now().saturating_duration_since(start) < Duration::from_secs(120) {
            peak.set(peak.get().max(node.stats().inbound_bytes));
            time::sleep(Duration::from_millis(1)).await;
        }
    });
}

/// This test's entry point in the child process; a no-op in the test run itself.
#[test]
fn child_process() {
    if std::env::var(ROLE).is_ok() {
        let dir = PathBuf::from(std::env::var(DIR).unwrap());
        let port = std::env::var(PORT).unwrap().parse().unwrap();
        container(&dir, port);
    }
}

// ----- the test's side -----

/// The container process, killed and reaped on drop, and the keys of its callers.
struct Setup {
    child: Child,
    dir: PathBuf,
    port: u16,
    calc: KeyPair,
    front: KeyPair,
    mallory: KeyPair,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    tern::transport::loopback_port().unwrap()
}

impl Setup {
    fn start(test: &str) -> Self {
        let k = || KeyPair::generate().unwrap();
        let (calc, front, mallory) = (k(), k(), k());
        let dir = std::env::temp_dir().join(format!("tern-flood-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        calc.save(&dir.join("calc.key")).unwrap();
        let allow: String = [("calc", &calc), ("front", &front), ("mallory", &mallory)]
            .iter()
            .map(|(name, key)| format!("{name} = \"{}\"\n", key.public_z85()))
            .collect();
        std::fs::write(dir.join("allow.toml"), allow).unwrap();
        let port = free_port();
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["child_process", "--exact", "--nocapture"])
            .env(ROLE, "calc")
            .env(DIR, &dir)
            .env(PORT, port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            dir,
            port,
            calc,
            front,
            mallory,
        }
    }

    fn endpoint(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The legitimate client: a node of its own, `calc` its only peer.
    fn front(&self) -> Node {
        let mut allow = tern::transport::AllowList::new();
        allow.insert("calc", *self.calc.public()).unwrap();
        allow.insert("front", *self.front.public()).unwrap();
        let t = ZmqTransport::bind(
            ZmqConfig::new("front")
                .peer("calc", self.endpoint())
                .curve(CurveSecurity::new(self.front.clone(), allow)),
        )
        .unwrap();
        Node::start(NodeConfig::new("front").peers(["calc"]), t).unwrap()
    }
}

/// Waits until `calc` answers (the child process starts, the connection comes up).
async fn ready(front: &Node) {
    let adder = front.lookup::<Adder>("adder");
    for _ in 0..200 {
        let r = adder
            .ask(Add { a: 1, b: 1 })
            .timeout(Duration::from_millis(200))
            .await;
        if r == Ok(2) {
            return;
        }
        time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the container never answered");
}

async fn counts(front: &Node) -> Counts {
    front
        .lookup::<Probe>("probe")
        .ask(Report)
        .timeout(DEADLINE)
        .await
        .expect("the probe answers")
}

/// Legitimate asks, one every 20 ms, until `done`: each must be answered, correctly,
/// within its deadline. Returns how many were.
async fn legit_asks_until(front: &Node, done: impl Fn() -> bool) -> u32 {
    let adder = front.lookup::<Adder>("adder");
    let mut answered = 0;
    while !done() {
        let i = i64::from(answered);
        let started = time::now();
        let r = adder.ask(Add { a: i, b: 1 }).timeout(DEADLINE).await;
        assert_eq!(r, Ok(i + 1), "legitimate ask {answered} failed");
        assert!(time::now().saturating_duration_since(started) <= DEADLINE);
        answered += 1;
        time::sleep(Duration::from_millis(20)).await;
    }
    answered
}

/// Raises the soft limit on descriptors to the hard one; returns how many
/// connections of each kind can be opened (`CONNECTIONS`, or fewer if the hard limit
/// is too low, with a note).
fn connections_allowed() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    let room = usize::try_from(hard.saturating_sub(512) / 2).unwrap_or(usize::MAX);
    if room < CONNECTIONS {
        eprintln!(
            "security_floods: the descriptor limit ({hard}) allows {room} connections of each kind, not {CONNECTIONS}"
        );
    }
    room.min(CONNECTIONS)
}

/// A TCP connection to `port` on 127.0.0.1 from the address `from`.
fn connect_from(from: [u8; 4], port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    s.into()
}

/// Whether the container closed `s` (what it sent, its greeting, is read and dropped).
fn closed_by_peer(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_and_stalled_connections_are_capped_per_address_while_asks_flow() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let n = connections_allowed();
    let setup = Setup::start("conns");
    let port = setup.port;
    Runtime::new().unwrap().block_on(async {
        let front = setup.front();
        ready(&front).await;
        let before = counts(&front).await;
        // The attacker is another machine: blocking sockets on a thread of its own,
        // outside any container.
        #[allow(clippy::disallowed_methods)]
        let attack = std::thread::spawn(move || {
            // Idle: connect and send nothing. Stalled: the first half of a ZMTP
            // greeting (its signature), then nothing.
            let idle: Vec<TcpStream> = (0..n).map(|_| connect_from([127, 0, 0, 2], port)).collect();
            let stalled: Vec<TcpStream> = (0..n)
                .map(|_| {
                    let mut s = connect_from([127, 0, 0, 3], port);
                    s.write_all(&[0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f]).unwrap();
                    s
                })
                .collect();
            // Within the handshake deadline (5 s): only those the cap refused are
            // closed.
            std::thread::sleep(Duration::from_millis(1_500));
            let closed = |v: &[TcpStream]| v.iter().filter(|s| closed_by_peer(s)).count();
            (closed(&idle), closed(&stalled))
        });
        let answered = legit_asks_until(&front, || attack.is_finished()).await;
        let (idle_closed, stalled_closed) = attack.join().unwrap();
        let after = counts(&front).await;
        let over = n.saturating_sub(PER_ADDRESS);
        assert!(
            idle_closed >= over && stalled_closed >= over,
            "closed {idle_closed} idle and {stalled_closed} stalled of {n} each; the cap is {PER_ADDRESS}"
        );
        // Counted once per shutdown: when a refused connection's descriptor is reused
        // before its `ACCEPTED` is read, one shutdown closes both (sources.rs), so the
        // count can be a little lower than what was closed.
        let refused = after.connections_refused - before.connections_refused;
        assert!(
            refused >= (2 * over as u64) * 3 / 4,
            "{refused} connections refused, {} accepted",
            after.accepted - before.accepted
        );
        assert!(answered >= 10, "only {answered} legitimate asks during the attack");
        eprintln!(
            "security_floods: {n} idle + {n} stalled: {idle_closed} + {stalled_closed} closed at once, {refused} refused; {answered} legitimate asks answered"
        );
    });
}

/// Sends `FLOOD_ASKS` asks of 1 MiB to `sink` as `mallory`, reading the answers as
/// they come; returns (replies, refusals `MailboxFull`, anything else).
fn flood(endpoint: &str, mallory: &KeyPair, calc: &KeyPair) -> (usize, usize, usize) {
    let ctx = zmq::Context::new();
    let s = ctx.socket(zmq::DEALER).unwrap();
    s.set_linger(0).unwrap();
    s.set_sndhwm(8).unwrap();
    s.set_curve_serverkey(calc.public()).unwrap();
    s.set_curve_publickey(mallory.public()).unwrap();
    let text = mallory.to_file_text();
    let secret = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret-key = "))
        .unwrap()
        .trim_matches('"');
    s.set_curve_secretkey(&zmq::z85_decode(secret).unwrap())
        .unwrap();
    s.connect(endpoint).unwrap();
    let payload = postcard::to_allocvec(&Blob(vec![7; BLOB])).unwrap();
    assert!(payload.len() <= MIB);
    // Answers by kind: replies, refusals `MailboxFull`, anything else.
    let mut got = [0usize; 3];
    let mut answered = 0;
    let mut take = |frames: Vec<Vec<u8>>| {
        let env = frames
            .first()
            .and_then(|e| decode_envelope(e, &Limits::default()).ok());
        let kind = match env.map(|e| (Kind::try_from(e.kind), e.error.map(|i| i.code))) {
            Some((Ok(Kind::Reply), _)) => 0,
            Some((Ok(Kind::Error), Some(c))) if c == i32::from(ErrorCode::MailboxFull) => 1,
            _ => 2,
        };
        got[kind] += 1;
        got.iter().sum::<usize>()
    };
    for id in 1..=FLOOD_ASKS as u64 {
        let env = Envelope {
            version: PROTOCOL_VERSION,
            message_id: id,
            kind: Kind::Ask.into(),
            source: Some(ComponentRef {
                node: "mallory".into(),
                ..ComponentRef::default()
            }),
            destination: Some(ComponentRef {
                node: "calc".into(),
                name: "sink".into(),
                generation: 0,
            }),
            message_type: Blob::NAME.into(),
            content_type: "application/postcard".into(),
            timeout_ms: 60_000,
            ..Envelope::default()
        };
        s.send_multipart([encode_envelope(&env), payload.clone()], 0)
            .unwrap();
        while let Ok(frames) = s.recv_multipart(zmq::DONTWAIT) {
            answered = take(frames);
        }
    }
    s.set_rcvtimeo(20_000).unwrap();
    while answered < FLOOD_ASKS {
        match s.recv_multipart(0) {
            Ok(frames) => answered = take(frames),
            Err(_) => break,
        }
    }
    (got[0], got[1], got[2])
}

#[test]
fn a_flood_of_one_mebibyte_asks_stays_within_the_byte_budget() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let setup = Setup::start("asks");
    let (endpoint, mallory, calc) = (setup.endpoint(), setup.mallory.clone(), setup.calc.clone());
    Runtime::new().unwrap().block_on(async {
        let front = setup.front();
        ready(&front).await;
        let before = counts(&front).await;
        // The attacker is another machine: a blocking socket on a thread of its own.
        #[allow(clippy::disallowed_methods)]
        let attack = std::thread::spawn(move || flood(&endpoint, &mallory, &calc));
        let answered = legit_asks_until(&front, || attack.is_finished()).await;
        let (ok, full, other) = attack.join().unwrap();
        let after = counts(&front).await;
        eprintln!(
            "security_floods: {FLOOD_ASKS} asks of 1 MiB: {ok} handled, {full} refused MailboxFull, {other} other; \
             budget peak {} KiB; peak RSS {} -> {} MiB (now {} MiB); {answered} legitimate asks answered",
            after.peak_inbound_bytes >> 10,
            before.vm_hwm_kb >> 10,
            after.vm_hwm_kb >> 10,
            after.vm_rss_kb >> 10
        );
        assert_eq!(ok + full + other, FLOOD_ASKS, "every ask of the flood is answered");
        assert_eq!(other, 0);
        assert!(full >= FLOOD_ASKS / 2, "{full} refused of {FLOOD_ASKS}");
        assert!(after.peer_budget_refusals > before.peer_budget_refusals);
        assert!(
            after.peak_inbound_bytes <= PEER_BUDGET,
            "{} bytes charged to one peer's budget of {PEER_BUDGET}",
            after.peak_inbound_bytes
        );
        // Without the budget the sink's mailbox alone held over 1 GiB; allow the
        // budget, libzmq's buffers and the allocator's slack, generously.
        let growth_mib = after.vm_hwm_kb.saturating_sub(before.vm_hwm_kb) >> 10;
        assert!(growth_mib < 256, "peak RSS grew {growth_mib} MiB");
        assert!(answered >= 5, "only {answered} legitimate asks during the flood");
    });
}
