//! tern's remote layer over tcp loopback against raw ZeroMQ and tonic gRPC (issue 4,
//! item 7), all in one run, with the same payloads (64 B and 64 KiB of opaque bytes):
//!
//! 1. **tell throughput**: the sender sends `n` messages; the receiver counts them and,
//!    on the `n`-th, sends one message back; the time is from the first send until that
//!    message arrives. tern: `Ref::tell` of a `Raw` message to an exported component,
//!    which tells a component on the sender's node when it has all of them. A tell
//!    refused for backpressure (the transport's high-water mark) is retried after a
//!    1 ms `tern::time::sleep`, and counted (`TERN_REMOTE_BENCH_BACKOFF=yield` retries
//!    after `yield_now` instead, which spins). The sink is exported twice: with the
//!    default mailbox (1,024), one round shows whether the receiving node drops tells
//!    that do not fit; the timed rounds use a mailbox of 65,536. Raw ZeroMQ: blocking
//!    `PUSH` → `PULL`, and one message back on a second `PUSH` → `PULL`.
//! 2. **ask, one in flight**: sequential round trips echoing the payload; every round
//!    trip is timed (p50, p99) and the whole loop gives the throughput. tern:
//!    `Ref::ask` to an exported echo component. Raw ZeroMQ: blocking `REQ` → `REP`.
//!    gRPC: a tonic unary call, the client and server written the way `tonic-build`
//!    writes them, on a multi-threaded tokio runtime (what `#[tokio::main]` builds) and,
//!    separately, on a current-thread one.
//! 3. **ask, 16 in flight**: 16 callers on the client's one thread, each doing
//!    sequential round trips. tern: 16 tasks. Raw ZeroMQ: one `DEALER` keeping 16
//!    requests in flight to a `ROUTER` that echoes (REQ allows one). gRPC: 16 tokio tasks
//!    sharing one channel (HTTP/2 multiplexes them).
//!
//! tern runs twice: in plaintext (`tern`) and with CURVE (`tern-curve`: both ends
//! authenticated, every frame encrypted; docs/security.md), to show what encryption
//! costs. Raw ZeroMQ and gRPC run without encryption.
//!
//! Every receiver or server runs in a child process (this binary, re-executed with
//! `TERN_REMOTE_BENCH_ROLE` set); every sender or client runs in the bench process. Raw
//! ZeroMQ sockets get tern's default high-water marks (10,000 messages).
//!
//! Run with `cargo bench -p tern-benches --bench remote`; it prints a table.
//! For profiling, `TERN_REMOTE_BENCH_ONLY=tern` (or `tern-curve`, `zmq`, `tonic-mt`,
//! `tonic-ct`; several, comma-separated) runs some systems,
//! `TERN_REMOTE_BENCH_WORK=tell,ask1,ask16` some workloads and
//! `TERN_REMOTE_BENCH_SIZE=64` one payload size.

// Benches are binaries: nothing public to document; an unwrap that fires means the
// benchmark itself is wrong; the wall clock is what a benchmark measures, and the
// servers run on plain threads and processes of their own.
#![allow(clippy::unwrap_used, missing_docs, clippy::disallowed_methods)]
#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tern::ops::{BreakerConfig, EjectionConfig, IngressConfig};
use tern::remote::{
    CallError, Node, NodeConfig, Postcard, Raw, RawBytes, Ref, RemoteMessage, Undelivered,
};
use tern::transport::{AllowList, CurveSecurity, KeyPair, ZmqConfig, ZmqTransport};
use tern::{Actor, Addr, Context, Handler, Runtime, yield_now};
use tern_benches::child::{Server, exit_when_stdin_closes, ready};
use tokio::sync::oneshot;

const ROLE: &str = "TERN_REMOTE_BENCH_ROLE";
const PEER: &str = "TERN_REMOTE_BENCH_PEER";
const ONLY: &str = "TERN_REMOTE_BENCH_ONLY";
const WORK: &str = "TERN_REMOTE_BENCH_WORK";
const SIZE: &str = "TERN_REMOTE_BENCH_SIZE";
const BACKOFF: &str = "TERN_REMOTE_BENCH_BACKOFF";

/// The bench's CURVE key pairs (fixed, so the child needs no key exchange; they
/// protect nothing): the client's and the server's.
const CLIENT_KEYS: (&str, &str) = (
    "yF^8O(&7v!Bk=!1.N&k&NP7+2jlP:%HdeM[?L5Hc",
    "=IS2f20VecG(:.MvS]9]90:8-vuNJL2cPC[}7v+v",
);
const SERVER_KEYS: (&str, &str) = (
    "liOo)p0:Z+KL}k}Q(vd8)-kDTa@5fsth)p(wWX-!",
    "G.Yivi0}e!P^pD@(=c^Hr66h*v8F=-8krP<r{JPh",
);

/// `config` in plaintext, or with CURVE as `me` (`"client"` or `"server"`).
fn secured(config: ZmqConfig, curve: bool, me: &str) -> ZmqConfig {
    if !curve {
        return config.plaintext();
    }
    let pair = |(p, s): (&str, &str)| KeyPair::from_z85(p, s).unwrap();
    let mut allow = AllowList::new();
    allow.insert("client", *pair(CLIENT_KEYS).public()).unwrap();
    allow.insert("server", *pair(SERVER_KEYS).public()).unwrap();
    let keys = pair(if me == "client" {
        CLIENT_KEYS
    } else {
        SERVER_KEYS
    });
    config.curve(CurveSecurity::new(keys, allow))
}

const SIZES: [usize; 2] = [64, 64 * 1024];
/// tern's default `send_hwm`/`recv_hwm`, given to the raw ZeroMQ sockets too.
const HWM: i32 = 10_000;
/// Timed tell rounds per size (after one untimed warm-up round).
const ROUNDS: usize = 5;
const IN_FLIGHT: usize = 16;
/// Mailbox of the tell sink that does not drop: room for everything the zmq transport
/// and the node may push into it before the sink runs again.
const BIG_MAILBOX: usize = 65_536;

/// The payload sizes to run (all, or the one in `TERN_REMOTE_BENCH_SIZE`).
fn sizes() -> Vec<usize> {
    let only: Option<usize> = std::env::var(SIZE).ok().and_then(|s| s.parse().ok());
    SIZES
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == *s))
        .collect()
}

/// Whether to run workload `w` (all, or those named in `TERN_REMOTE_BENCH_WORK`:
/// `tell`, `ask1`, `ask16`, comma-separated).
fn want(w: Workload) -> bool {
    std::env::var(WORK).map_or(true, |list| {
        list.split(',')
            .any(|x| x.trim().eq_ignore_ascii_case(&format!("{w:?}")))
    })
}

/// Messages per run, by payload size: (tell round, sequential asks, asks 16 in flight).
fn counts(size: usize) -> (u64, u64, u64) {
    if size <= 64 {
        (200_000, 20_000, 64_000)
    } else {
        (20_000, 4_000, 16_000)
    }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

// ----- results -----

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Workload {
    Tell,
    Ask1,
    Ask16,
}

#[derive(Debug, Clone, Default)]
struct Outcome {
    /// Messages or round trips per second, one per timed round (median first reported).
    rates: Vec<f64>,
    /// Round-trip times in nanoseconds (asks only), sorted.
    lat: Vec<u64>,
    /// tern: tells refused for backpressure and retried.
    retries: u64,
    /// Set when a round did not finish (the receiver never had all messages).
    failed: Option<String>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
    }

    fn pct(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 * p).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i] as f64 / 1000.0
    }

    fn from_latencies(mut lat: Vec<u64>, total: Duration) -> Self {
        lat.sort_unstable();
        Self {
            rates: vec![lat.len() as f64 / total.as_secs_f64()],
            lat,
            ..Self::default()
        }
    }
}

type Results = BTreeMap<(usize, Workload, &'static str), Outcome>;

fn show(size: usize, w: Workload, system: &str, o: &Outcome) {
    let mut line = format!("{system:>10} {w:?} {size:>6} B: ");
    if let Some(f) = &o.failed {
        line += &format!("FAILED: {f} ({} retries)", o.retries);
    } else if w == Workload::Tell {
        let mut r = o.rates.clone();
        r.sort_by(f64::total_cmp);
        line += &format!(
            "{:.0} msg/s (median of {}; min {:.0}, max {:.0}), {} retries",
            o.rate(),
            r.len(),
            r[0],
            r[r.len() - 1],
            o.retries
        );
    } else {
        line += &format!(
            "p50 {:.1} us, p99 {:.1} us, {:.0} calls/s ({} calls)",
            o.pct(0.50),
            o.pct(0.99),
            o.rate(),
            o.lat.len()
        );
    }
    println!("{line}");
}

// ----- child processes -----

/// A server in a child process (see [`tern_benches::child`]).
fn server(role: &str, peer: Option<&str>) -> Server {
    Server::start(ROLE, role, PEER, peer)
}

fn serve(role: &str) {
    // The parent closes our standard input when it is done (or dies): exit then.
    exit_when_stdin_closes();
    match role {
        "zmq-pull" => zmq_pull_server(),
        "zmq-rep" => zmq_echo_server(zmq::REP),
        "zmq-router" => zmq_echo_server(zmq::ROUTER),
        "tern" => tern_server(false, false),
        "tern-ops" => tern_server(false, true),
        "tern-curve" => tern_server(true, false),
        "tonic-mt" => tonic_server(true),
        "tonic-ct" => tonic_server(false),
        other => panic!("unknown role {other:?}"),
    }
}

// ----- raw ZeroMQ -----

fn zmq_socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_sndhwm(HWM).unwrap();
    s.set_rcvhwm(HWM).unwrap();
    s
}

fn zmq_bind(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, String) {
    let s = zmq_socket(ctx, kind);
    s.bind("tcp://127.0.0.1:0").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    (s, ep)
}

/// Counts messages on a `PULL`; a round starts with an 8-byte count and ends with that
/// count sent back on a `PUSH`.
fn zmq_pull_server() {
    let ctx = zmq::Context::new();
    let (pull, a) = zmq_bind(&ctx, zmq::PULL);
    let (push, b) = zmq_bind(&ctx, zmq::PUSH);
    ready(&format!("{a} {b}"));
    loop {
        let head = pull.recv_bytes(0).unwrap();
        let n = u64::from_le_bytes(head[..8].try_into().unwrap());
        let mut bytes = 0;
        for _ in 0..n {
            bytes += pull.recv_bytes(0).unwrap().len();
        }
        std::hint::black_box(bytes);
        push.send(&n.to_le_bytes()[..], 0).unwrap();
    }
}

/// Echoes every message (`REP`: one at a time; `ROUTER`: the routing id goes back too).
fn zmq_echo_server(kind: zmq::SocketType) {
    let ctx = zmq::Context::new();
    let (s, ep) = zmq_bind(&ctx, kind);
    ready(&ep);
    loop {
        let parts = s.recv_multipart(0).unwrap();
        s.send_multipart(parts, 0).unwrap();
    }
}

fn zmq_tell(size: usize, n: u64) -> Outcome {
    let srv = server("zmq-pull", None);
    let (a, b) = srv.addr.split_once(' ').unwrap();
    let ctx = zmq::Context::new();
    let push = zmq_socket(&ctx, zmq::PUSH);
    push.connect(a).unwrap();
    let done = zmq_socket(&ctx, zmq::PULL);
    done.connect(b).unwrap();
    let data = payload(size);
    let round = |n: u64| {
        push.send(&n.to_le_bytes()[..], 0).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            push.send(&data[..], 0).unwrap();
        }
        let back = done.recv_bytes(0).unwrap();
        let t = start.elapsed();
        assert_eq!(back, n.to_le_bytes());
        n as f64 / t.as_secs_f64()
    };
    round(n / 4);
    Outcome {
        rates: (0..ROUNDS).map(|_| round(n)).collect(),
        ..Outcome::default()
    }
}

fn zmq_ask(size: usize, n: u64) -> Outcome {
    let srv = server("zmq-rep", None);
    let ctx = zmq::Context::new();
    let req = zmq_socket(&ctx, zmq::REQ);
    req.connect(&srv.addr).unwrap();
    let data = payload(size);
    let call = || {
        req.send(&data[..], 0).unwrap();
        let back = req.recv_bytes(0).unwrap();
        assert_eq!(back.len(), size);
    };
    for _ in 0..n / 10 {
        call();
    }
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call();
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Outcome::from_latencies(lat, start.elapsed())
}

fn zmq_ask_in_flight(size: usize, n: u64) -> Outcome {
    let srv = server("zmq-router", None);
    let ctx = zmq::Context::new();
    let dealer = zmq_socket(&ctx, zmq::DEALER);
    dealer.connect(&srv.addr).unwrap();
    let data = payload(size);
    let run = |n: u64| {
        let mut sent_at = VecDeque::with_capacity(IN_FLIGHT);
        let mut lat = Vec::with_capacity(n as usize);
        let mut sent = 0;
        let start = Instant::now();
        while sent < n && sent_at.len() < IN_FLIGHT {
            sent_at.push_back(Instant::now());
            dealer.send(&data[..], 0).unwrap();
            sent += 1;
        }
        while let Some(t) = sent_at.pop_front() {
            // The ROUTER answers in order, so the oldest request is the one answered.
            let back = dealer.recv_bytes(0).unwrap();
            lat.push(t.elapsed().as_nanos() as u64);
            assert_eq!(back.len(), size);
            if sent < n {
                sent_at.push_back(Instant::now());
                dealer.send(&data[..], 0).unwrap();
                sent += 1;
            }
        }
        (lat, start.elapsed())
    };
    run(n / 10);
    let (lat, total) = run(n);
    Outcome::from_latencies(lat, total)
}

// ----- tern -----

/// The payload: bytes through the `Raw` codec, untouched.
struct Chunk(Vec<u8>);

impl RawBytes for Chunk {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Ok(Self(bytes.to_vec()))
    }
}

impl RemoteMessage for Chunk {
    const NAME: &'static str = "bench.v1.Chunk";
    type Codec = Raw;
}

/// Starts a tell round: the sink resets its count and reports on the `n`-th message.
#[derive(Serialize, Deserialize)]
struct Expect(u64);
impl RemoteMessage for Expect {
    const NAME: &'static str = "bench.v1.Expect";
    type Codec = Postcard;
}

/// The sink has had all `n` messages of a round.
#[derive(Serialize, Deserialize)]
struct Done(u64);
impl RemoteMessage for Done {
    const NAME: &'static str = "bench.v1.Done";
    type Codec = Postcard;
}

/// How far the sink got, and what the server node dropped (for a failed round).
#[derive(Serialize, Deserialize)]
struct Progress;
impl RemoteMessage for Progress {
    const NAME: &'static str = "bench.v1.Progress";
    type Codec = Postcard;
}

struct Sink {
    seen: u64,
    expect: u64,
}
impl Actor for Sink {}

impl Handler<Chunk> for Sink {
    type Reply = ();
    async fn handle(&mut self, m: Chunk, _: &mut Context<Self>) {
        std::hint::black_box(m.0.len());
        self.seen += 1;
        if self.seen == self.expect {
            let node = Node::current().unwrap();
            if let Err(e) = node.lookup::<Waiter>("done").try_tell(Done(self.seen)) {
                eprintln!("sink: done not sent: {e}");
            }
        }
    }
}

impl Handler<Expect> for Sink {
    type Reply = u64;
    async fn handle(&mut self, m: Expect, _: &mut Context<Self>) -> u64 {
        self.expect = m.0;
        std::mem::take(&mut self.seen)
    }
}

impl Handler<Progress> for Sink {
    type Reply = (u64, u64);
    async fn handle(&mut self, _: Progress, _: &mut Context<Self>) -> (u64, u64) {
        (self.seen, Node::current().unwrap().stats().dropped)
    }
}

struct Echo;
impl Actor for Echo {}

impl Handler<Chunk> for Echo {
    type Reply = Chunk;
    async fn handle(&mut self, m: Chunk, _: &mut Context<Self>) -> Chunk {
        m
    }
}

/// On the client: hands the sink's `Done` to the waiting bench.
struct Waiter {
    tx: Option<oneshot::Sender<u64>>,
}
impl Actor for Waiter {}

struct Arm(oneshot::Sender<u64>);
impl Handler<Arm> for Waiter {
    type Reply = ();
    async fn handle(&mut self, m: Arm, _: &mut Context<Self>) {
        self.tx = Some(m.0);
    }
}

impl Handler<Done> for Waiter {
    type Reply = ();
    async fn handle(&mut self, m: Done, _: &mut Context<Self>) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(m.0);
        }
    }
}

fn tern_server(curve: bool, ops: bool) {
    let client = std::env::var(PEER).unwrap();
    Runtime::new().unwrap().block_on(async move {
        tern_benches::tern_peer::tracing_on();
        let t = ZmqTransport::bind(secured(
            ZmqConfig::new("server")
                .listen("tcp://127.0.0.1:0")
                .peer("client", &client),
            curve,
            "server",
        ))
        .unwrap();
        let endpoint = t.endpoints()[0].clone();
        let mut config = NodeConfig::new("server").peers(["client"]);
        if ops {
            // The receiver's side of the admission stack: the adaptive (AIMD) ingress
            // limit on asks, starting at its default of 100 in flight.
            config = config.ingress(IngressConfig::enabled(100));
        }
        let node = Node::start(config, t).unwrap();
        // "sink" has the default mailbox (1,024); "sink-big" one that holds what the
        // transport reads ahead of the node (see `tern_all`).
        let default_sink = tern::spawn(Sink { seen: 0, expect: 0 });
        let big_sink = tern::build(|| Sink { seen: 0, expect: 0 })
            .mailbox(BIG_MAILBOX)
            .spawn();
        for (name, sink) in [("sink", default_sink), ("sink-big", big_sink)] {
            node.export(name, &sink)
                .unwrap()
                .accept::<Chunk>()
                .accept::<Expect>()
                .accept::<Progress>();
        }
        node.export("echo", &tern::spawn(Echo))
            .unwrap()
            .accept::<Chunk>();
        ready(&endpoint);
        std::future::pending::<()>().await;
    });
}

/// One tell round: messages per second, or why the sink did not report all `n` within
/// `wait`.
async fn tern_tell_round(
    sink: &Ref<Sink>,
    waiter: &Addr<Waiter>,
    data: &[u8],
    n: u64,
    retries: &mut u64,
    wait: Duration,
) -> Result<f64, String> {
    let sleep_on_backpressure = std::env::var(BACKOFF).map_or(true, |b| b != "yield");
    sink.ask(Expect(n)).await.unwrap();
    let (_, dropped_before) = sink.ask(Progress).await.unwrap();
    let (tx, rx) = oneshot::channel();
    waiter.tell(Arm(tx)).await.map_err(|_| ()).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        let mut msg = Chunk(data.to_vec());
        loop {
            match sink.try_tell(msg) {
                Ok(()) => break,
                // A full queue to the server (the zmq high-water mark): retry.
                Err(Undelivered {
                    reason: CallError::Backpressure(_) | CallError::Unreachable(_),
                    message,
                }) => {
                    *retries += 1;
                    msg = message;
                    if sleep_on_backpressure {
                        tern::time::sleep(Duration::from_millis(1)).await;
                    } else {
                        yield_now().await;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    match tern::time::timeout(wait, rx).await {
        Ok(Ok(got)) => {
            assert_eq!(got, n);
            Ok(n as f64 / start.elapsed().as_secs_f64())
        }
        _ => {
            let (seen, dropped) = sink.ask(Progress).await.unwrap();
            Err(format!(
                "the sink had {seen} of {n} after {wait:?}; the receiving node dropped {} (mailbox full)",
                dropped - dropped_before
            ))
        }
    }
}

/// tern's remote layer, in plaintext or with CURVE; `stack: true` turns the admission
/// stack on (the caller's breakers and outlier ejection, and the server's adaptive
/// ingress limit, all off by default; the in-flight caps are unset either way), to
/// measure what it costs.
fn tern_all(results: &mut Results, curve: bool, stack: bool) {
    let (sys, sys_1024) = match (curve, stack) {
        (true, _) => ("tern-curve", "tern-curve-1024"),
        (false, false) => ("tern", "tern-1024"),
        (false, true) => ("tern-ops", "tern-ops-1024"),
    };
    Runtime::new().unwrap().block_on(async {
        tern_benches::tern_peer::tracing_on();
        let t = ZmqTransport::bind(secured(
            ZmqConfig::new("client").listen("tcp://127.0.0.1:0"),
            curve,
            "client",
        ))
        .unwrap();
        let srv = server(sys, Some(&t.endpoints()[0]));
        t.connect("server", &srv.addr).unwrap();
        let mut config = NodeConfig::new("client").peers(["server"]);
        if stack {
            config = config
                .breaker(BreakerConfig::default())
                .ejection(EjectionConfig::default());
        }
        let node = Node::start(config, t).unwrap();
        let waiter = tern::spawn(Waiter { tx: None });
        node.export("done", &waiter).unwrap().accept::<Done>();
        let default_sink = node.lookup::<Sink>("sink");
        let sink = node.lookup::<Sink>("sink-big");
        let echo = node.lookup::<Echo>("echo");
        // Waits for the server's directory (the name) and the connection.
        sink.ask(Expect(0))
            .timeout(Duration::from_secs(10))
            .await
            .unwrap();

        for size in sizes() {
            let (tells, asks, par) = counts(size);
            let data = payload(size);

            if want(Workload::Tell) {
                // With the default mailbox, the receiving node drops what does not fit
                // (counted, logged there): one round shows whether it does.
                let mut o = Outcome::default();
                let wait = Duration::from_secs(10);
                let r = tern_tell_round(&default_sink, &waiter, &data, tells, &mut o.retries, wait);
                match r.await {
                    Ok(rate) => o.rates.push(rate),
                    Err(e) => o.failed = Some(e),
                }
                show(size, Workload::Tell, sys_1024, &o);
                results.insert((size, Workload::Tell, sys_1024), o);

                let mut o = Outcome::default();
                let mut retries = 0;
                let wait = Duration::from_secs(60);
                match tern_tell_round(&sink, &waiter, &data, tells / 4, &mut retries, wait).await {
                    Ok(_) => {
                        for _ in 0..ROUNDS {
                            let r =
                                tern_tell_round(&sink, &waiter, &data, tells, &mut o.retries, wait)
                                    .await;
                            match r {
                                Ok(rate) => o.rates.push(rate),
                                Err(e) => {
                                    o.failed = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => o.failed = Some(format!("warm-up: {e}")),
                }
                show(size, Workload::Tell, sys, &o);
                results.insert((size, Workload::Tell, sys), o);
            }

            if want(Workload::Ask1) {
                let call = async |echo: &Ref<Echo>| {
                    let back = echo.ask(Chunk(data.to_vec())).await.unwrap();
                    assert_eq!(back.0.len(), size);
                };
                for _ in 0..asks / 10 {
                    call(&echo).await;
                }
                let mut lat = Vec::with_capacity(asks as usize);
                let start = Instant::now();
                for _ in 0..asks {
                    let t = Instant::now();
                    call(&echo).await;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                let o = Outcome::from_latencies(lat, start.elapsed());
                show(size, Workload::Ask1, sys, &o);
                results.insert((size, Workload::Ask1, sys), o);
            }

            if want(Workload::Ask16) {
                let data = Rc::new(data);
                let run = async |n: u64| {
                    let lat = Rc::new(RefCell::new(Vec::with_capacity(n as usize)));
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..IN_FLIGHT)
                        .map(|_| {
                            let (echo, data, lat) = (echo.clone(), data.clone(), lat.clone());
                            tern::spawn_task(async move {
                                for _ in 0..n / IN_FLIGHT as u64 {
                                    let t = Instant::now();
                                    let back = echo.ask(Chunk(data.to_vec())).await.unwrap();
                                    lat.borrow_mut().push(t.elapsed().as_nanos() as u64);
                                    assert_eq!(back.0.len(), size);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    let total = start.elapsed();
                    (lat.take(), total)
                };
                run(par / 10).await;
                let (lat, total) = run(par).await;
                let o = Outcome::from_latencies(lat, total);
                show(size, Workload::Ask16, sys, &o);
                results.insert((size, Workload::Ask16, sys), o);
            }
        }
        node.shutdown();
    });
}

// ----- tonic gRPC -----

/// The request and the reply: `message Blob { bytes data = 1; }`, as prost-build
/// writes it.
#[derive(Clone, PartialEq, prost::Message)]
struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

mod grpc {
    //! `service Echo { rpc Echo(Blob) returns (Blob); }` in package `bench.v1`, server
    //! and client as `tonic-build` writes them (minus the trait indirection).

    use std::convert::Infallible;

    use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
    use tonic::server::{NamedService, UnaryService};
    use tonic::transport::Channel;
    use tonic_prost::ProstCodec;

    use super::Blob;

    const PATH: &str = "/bench.v1.Echo/Echo";

    #[derive(Clone, Copy, Debug)]
    pub(super) struct EchoServer;

    impl NamedService for EchoServer {
        const NAME: &'static str = "bench.v1.Echo";
    }

    struct EchoSvc;

    impl UnaryService<Blob> for EchoSvc {
        type Response = Blob;
        type Future = BoxFuture<tonic::Response<Blob>, tonic::Status>;
        fn call(&mut self, request: tonic::Request<Blob>) -> Self::Future {
            Box::pin(async move { Ok(tonic::Response::new(request.into_inner())) })
        }
    }

    impl<B> Service<http::Request<B>> for EchoServer
    where
        B: tonic::codegen::Body + Send + 'static,
        B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<B>) -> Self::Future {
            if req.uri().path() == PATH {
                Box::pin(async move {
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Blob, Blob>::default());
                    Ok(grpc.unary(EchoSvc, req).await)
                })
            } else {
                Box::pin(async move { Ok(tonic::Status::unimplemented(PATH).into_http()) })
            }
        }
    }

    #[derive(Clone, Debug)]
    pub(super) struct EchoClient(tonic::client::Grpc<Channel>);

    impl EchoClient {
        pub(super) async fn connect(addr: &str) -> Self {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            Self(tonic::client::Grpc::new(channel))
        }

        pub(super) async fn echo(&mut self, request: Blob) -> Result<Blob, tonic::Status> {
            self.0
                .ready()
                .await
                .map_err(|e| tonic::Status::unknown(e.to_string()))?;
            let mut req = tonic::Request::new(request);
            req.extensions_mut()
                .insert(tonic::GrpcMethod::new("bench.v1.Echo", "Echo"));
            let path = http::uri::PathAndQuery::from_static(PATH);
            let reply = self
                .0
                .unary(req, path, ProstCodec::<Blob, Blob>::default())
                .await?;
            Ok(reply.into_inner())
        }
    }
}

fn tokio_runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all().build().unwrap()
}

fn tonic_server(multi_thread: bool) {
    tokio_runtime(multi_thread).block_on(async {
        let incoming = tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into())
            .unwrap()
            .with_nodelay(Some(true));
        ready(&incoming.local_addr().unwrap().to_string());
        tonic::transport::Server::builder()
            .add_service(grpc::EchoServer)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
}

fn tonic_all(results: &mut Results, multi_thread: bool) {
    let name = if multi_thread { "tonic-mt" } else { "tonic-ct" };
    let srv = server(name, None);
    tokio_runtime(multi_thread).block_on(async {
        let client = grpc::EchoClient::connect(&srv.addr).await;
        for size in sizes() {
            let (_, asks, par) = counts(size);
            let data = payload(size);
            if want(Workload::Ask1) {
                let mut c = client.clone();
                for _ in 0..asks / 10 {
                    let back = c.echo(Blob { data: data.clone() }).await.unwrap();
                    assert_eq!(back.data.len(), size);
                }
                let mut lat = Vec::with_capacity(asks as usize);
                let start = Instant::now();
                for _ in 0..asks {
                    let t = Instant::now();
                    let back = c.echo(Blob { data: data.clone() }).await.unwrap();
                    lat.push(t.elapsed().as_nanos() as u64);
                    assert_eq!(back.data.len(), size);
                }
                let o = Outcome::from_latencies(lat, start.elapsed());
                show(size, Workload::Ask1, name, &o);
                results.insert((size, Workload::Ask1, name), o);
            }

            if want(Workload::Ask16) {
                let data = std::sync::Arc::new(data);
                let run = async |n: u64| {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..IN_FLIGHT)
                        .map(|_| {
                            let (mut c, data) = (client.clone(), data.clone());
                            tokio::spawn(async move {
                                let mut lat = Vec::with_capacity(n as usize / IN_FLIGHT);
                                for _ in 0..n / IN_FLIGHT as u64 {
                                    let t = Instant::now();
                                    let back = c
                                        .echo(Blob {
                                            data: data.to_vec(),
                                        })
                                        .await
                                        .unwrap();
                                    lat.push(t.elapsed().as_nanos() as u64);
                                    assert_eq!(back.data.len(), size);
                                }
                                lat
                            })
                        })
                        .collect();
                    let mut lat = Vec::with_capacity(n as usize);
                    for t in tasks {
                        lat.extend(t.await.unwrap());
                    }
                    (lat, start.elapsed())
                };
                run(par / 10).await;
                let (lat, total) = run(par).await;
                let o = Outcome::from_latencies(lat, total);
                show(size, Workload::Ask16, name, &o);
                results.insert((size, Workload::Ask16, name), o);
            }
        }
    });
}

// ----- the table -----

fn summary(results: &Results) {
    let get = |size, w, s| results.get(&(size, w, s));
    let ratio = |a: f64, b: f64| {
        if a.is_finite() && b.is_finite() && b > 0.0 {
            format!("{:.2}", a / b)
        } else {
            "-".to_owned()
        }
    };
    println!();
    println!("## tell throughput (messages/s, median of {ROUNDS} rounds)");
    println!();
    println!(
        "| payload | raw zmq PUSH/PULL | tern tell (sink mailbox {BIG_MAILBOX}) | tern / zmq (target >= 0.9) | tern retries | tern tell, default mailbox (1,024) |"
    );
    println!("|---|---|---|---|---|---|");
    let cell = |o: Option<&Outcome>| match o {
        None => "-".to_owned(),
        Some(o) => match &o.failed {
            Some(f) => format!("failed: {f}"),
            None => format!("{:.0}", o.rate()),
        },
    };
    for size in sizes() {
        let z = get(size, Workload::Tell, "zmq");
        let t = get(size, Workload::Tell, "tern");
        let zr = z.map_or(f64::NAN, Outcome::rate);
        let tr = t
            .filter(|t| t.failed.is_none())
            .map_or(f64::NAN, Outcome::rate);
        println!(
            "| {size} B | {} | {} | {} | {} | {} |",
            cell(z),
            cell(t),
            ratio(tr, zr),
            t.map_or(0, |t| t.retries),
            cell(get(size, Workload::Tell, "tern-1024")),
        );
    }
    for (w, title) in [
        (Workload::Ask1, "ask, one in flight"),
        (Workload::Ask16, "ask, 16 in flight"),
    ] {
        println!();
        println!("## {title} (round trip p50 / p99 in us, calls/s)");
        println!();
        println!(
            "| payload | system | p50 | p99 | calls/s | tern p50 / this | tern p99 / this | this calls/s / tern |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for size in sizes() {
            let t = get(size, w, "tern");
            for s in [
                "zmq",
                "tern",
                "tern-nostack",
                "tern-curve",
                "tonic-mt",
                "tonic-ct",
            ] {
                let Some(o) = get(size, w, s) else { continue };
                let (tp50, tp99, trate) = t.map_or((f64::NAN, f64::NAN, f64::NAN), |t| {
                    (t.pct(0.5), t.pct(0.99), t.rate())
                });
                println!(
                    "| {size} B | {s} | {:.1} | {:.1} | {:.0} | {} | {} | {} |",
                    o.pct(0.5),
                    o.pct(0.99),
                    o.rate(),
                    ratio(tp50, o.pct(0.5)),
                    ratio(tp99, o.pct(0.99)),
                    ratio(o.rate(), trate),
                );
            }
        }
    }
    println!();
    println!("## the cost of CURVE (tern with CURVE / tern in plaintext)");
    println!();
    println!("| payload | workload | plaintext | CURVE | CURVE / plaintext |");
    println!("|---|---|---|---|---|");
    for size in sizes() {
        for w in [Workload::Tell, Workload::Ask1, Workload::Ask16] {
            let (Some(p), Some(c)) = (get(size, w, "tern"), get(size, w, "tern-curve")) else {
                continue;
            };
            let (unit, p50) = if w == Workload::Tell {
                ("msgs/s", String::new())
            } else {
                (
                    "calls/s",
                    format!(" (p50 {:.1} -> {:.1} us)", p.pct(0.5), c.pct(0.5)),
                )
            };
            println!(
                "| {size} B | {w:?} | {:.0} {unit} | {:.0} {unit} | {}{p50} |",
                p.rate(),
                c.rate(),
                ratio(c.rate(), p.rate())
            );
        }
    }
    println!();
    println!("## the cost of the admission stack (tern, breakers and ejection on / off)");
    println!();
    println!("| payload | workload | off | on | on / off |");
    println!("|---|---|---|---|---|");
    for size in sizes() {
        for w in [Workload::Tell, Workload::Ask1, Workload::Ask16] {
            let (Some(off), Some(on)) = (get(size, w, "tern"), get(size, w, "tern-ops")) else {
                continue;
            };
            let unit = if w == Workload::Tell {
                "msgs/s"
            } else {
                "calls/s"
            };
            println!(
                "| {size} B | {w:?} | {:.0} {unit} (p50 {:.1} us) | {:.0} {unit} (p50 {:.1} us) | {} |",
                off.rate(),
                off.pct(0.5),
                on.rate(),
                on.pct(0.5),
                ratio(on.rate(), off.rate())
            );
        }
    }
    println!();
    println!(
        "targets: ask p50 at most 1.2x raw REQ/REP (tern p50 / zmq <= 1.2) and at most 0.7x tonic (tern p50 / tonic <= 0.7)"
    );
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        serve(&role);
        return;
    }
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var(ONLY).ok();
    let wanted = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|o| o == s));
    let mut results = Results::new();
    if wanted("zmq") {
        for size in sizes() {
            let (tells, asks, par) = counts(size);
            let runs: [(Workload, &dyn Fn() -> Outcome); 3] = [
                (Workload::Tell, &|| zmq_tell(size, tells)),
                (Workload::Ask1, &|| zmq_ask(size, asks)),
                (Workload::Ask16, &|| zmq_ask_in_flight(size, par)),
            ];
            for (w, run) in runs {
                if want(w) {
                    let o = run();
                    show(size, w, "zmq", &o);
                    results.insert((size, w, "zmq"), o);
                }
            }
        }
    }
    if wanted("tern") {
        tern_all(&mut results, false, false);
    }
    if wanted("tern-ops") {
        tern_all(&mut results, false, true);
    }
    if wanted("tern-curve") {
        tern_all(&mut results, true, false);
    }
    if wanted("tonic-mt") {
        tonic_all(&mut results, true);
    }
    if wanted("tonic-ct") {
        tonic_all(&mut results, false);
    }
    summary(&results);
}
