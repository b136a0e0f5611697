//! Streamed replies (issue 6, item 9): items per second in process and over tcp
//! loopback, against tonic gRPC server streaming with the same item size, and the
//! memory of a producer whose consumer stalls.
//!
//! 1. **in process**: `Addr::ask_stream` on one tern runtime; the producer is a
//!    detached lazy stream of `n` items of `size` opaque bytes (the `Raw` codec); the
//!    caller takes every item. Credit window 256.
//! 2. **tcp loopback**: `Ref::ask_stream` to a component exported by a tern node in a
//!    child process (this binary, re-executed), over ZeroMQ; the same producer and
//!    window. The time is from the request to the last item.
//! 3. **tonic**: a server-streaming rpc (`rpc Scan(Want) returns (stream Blob)`),
//!    server and client written the way `tonic-build` writes them, the server in a child
//!    process; multi-threaded tokio runtime (`tonic-mt`) and current-thread
//!    (`tonic-ct`).
//! 4. **stalled consumer**: the tern caller asks for 1,000,000 items of 16 KiB (16 GB
//!    if buffered), takes one, then stops reading for 3 s; the resident memory of both
//!    processes is sampled every 500 ms. It stays flat: the producer computes only
//!    within the credit window (64 items here).
//!
//! Run with `cargo bench -p tern-benches --bench stream`; it prints a table.
//! `TERN_STREAM_BENCH_ONLY=inproc|tern|tonic-mt|tonic-ct|stall` runs one part.

// Benches are binaries: nothing public to document; an unwrap that fires means the
// benchmark itself is wrong; the wall clock is what a benchmark measures, and the
// servers run in processes of their own.
#![allow(clippy::unwrap_used, missing_docs, clippy::disallowed_methods)]
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tern::actors::{StreamMessage, Streaming};
use tern::remote::{Node, NodeConfig, Raw, RawBytes, RemoteMessage};
use tern::transport::{ZmqConfig, ZmqTransport};
use tern::{Actor, Context, Handler, Runtime};
use tern_benches::child::{Server, exit_when_stdin_closes, ready};

const ROLE: &str = "TERN_STREAM_BENCH_ROLE";
const PEER: &str = "TERN_STREAM_BENCH_PEER";
const ONLY: &str = "TERN_STREAM_BENCH_ONLY";

const SIZES: [usize; 2] = [64, 16 * 1024];
const WINDOW: u32 = 256;
const STALL_WINDOW: u32 = 64;
const ROUNDS: usize = 3;

fn count(size: usize) -> u64 {
    if size <= 64 { 200_000 } else { 20_000 }
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

// ----- tern -----

/// One item: opaque bytes through the `Raw` codec.
struct Chunk(Vec<u8>);

impl RawBytes for Chunk {
    fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Ok(Self(bytes.to_vec()))
    }
}

/// Asks for `n` items of `size` bytes.
struct Want {
    n: u64,
    size: u32,
}

impl RawBytes for Want {
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.n.to_le_bytes().to_vec();
        b.extend(self.size.to_le_bytes());
        b
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let n = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        let size = bytes
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        match (n, size) {
            (Some(n), Some(size)) => Ok(Self { n, size }),
            _ => Err("bad Want".into()),
        }
    }
}

impl RemoteMessage for Want {
    const NAME: &'static str = "bench.v1.Want";
    type Codec = Raw;
}

impl StreamMessage for Want {
    type Item = Chunk;
}

struct Producer;
impl Actor for Producer {}

impl Handler<Streaming<Want>> for Producer {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Want>, _: &mut Context<Self>) {
        let (want, out) = req.into_parts();
        let data = payload(want.size as usize);
        out.detach(futures_lite::stream::iter(
            (0..want.n).map(move |_| Chunk(data.clone())),
        ));
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn tern_server() {
    let client = std::env::var(PEER).unwrap();
    Runtime::new().unwrap().block_on(async move {
        let t = ZmqTransport::bind(
            ZmqConfig::new("server")
                .plaintext()
                .listen("tcp://127.0.0.1:0")
                .peer("client", &client),
        )
        .unwrap();
        let endpoint = t.endpoints()[0].clone();
        let node = Node::start(NodeConfig::new("server").peers(["client"]), t).unwrap();
        node.export("producer", &tern::spawn(Producer))
            .unwrap()
            .accept_stream::<Want>();
        ready(&endpoint);
        std::future::pending::<()>().await;
    });
}

async fn take_all<S, E>(mut s: S, n: u64, size: usize)
where
    S: futures_lite::Stream<Item = Result<Chunk, E>> + Unpin,
    E: std::fmt::Debug,
{
    use futures_lite::StreamExt;
    let mut got = 0;
    while let Some(item) = s.next().await {
        assert_eq!(item.unwrap().0.len(), size);
        got += 1;
    }
    assert_eq!(got, n);
}

fn inproc(results: &mut Results) {
    Runtime::new().unwrap().block_on(async {
        let p = tern::spawn(Producer);
        for size in SIZES {
            let n = count(size);
            let mut rates = Vec::new();
            for round in 0..=ROUNDS {
                let start = Instant::now();
                let s = p
                    .ask_stream(Want {
                        n,
                        size: size as u32,
                    })
                    .credit(WINDOW);
                take_all(s, n, size).await;
                if round > 0 {
                    rates.push(n as f64 / start.elapsed().as_secs_f64());
                }
            }
            report(results, "tern in process", size, rates);
        }
    });
}

fn tern_tcp(results: &mut Results) {
    Runtime::new().unwrap().block_on(async {
        let t = ZmqTransport::bind(
            ZmqConfig::new("client")
                .plaintext()
                .listen("tcp://127.0.0.1:0"),
        )
        .unwrap();
        let me = t.endpoints()[0].clone();
        let srv = server("tern", Some(&me));
        t.connect("server", &srv.addr).unwrap();
        let node = Node::start(NodeConfig::new("client").peers(["server"]), t).unwrap();
        while node.hosts("producer").is_empty() {
            tern::time::sleep(Duration::from_millis(5)).await;
        }
        let producer = node.lookup::<Producer>("producer");
        for size in SIZES {
            let n = count(size);
            let mut rates = Vec::new();
            for round in 0..=ROUNDS {
                let start = Instant::now();
                let s = producer
                    .ask_stream(Want {
                        n,
                        size: size as u32,
                    })
                    .credit(WINDOW)
                    .idle_timeout(Duration::from_secs(30));
                take_all(s, n, size).await;
                if round > 0 {
                    rates.push(n as f64 / start.elapsed().as_secs_f64());
                }
            }
            report(results, "tern tcp", size, rates);
        }
        drop(srv);
    });
}

fn stall() {
    Runtime::new().unwrap().block_on(async {
        use futures_lite::StreamExt;
        let t = ZmqTransport::bind(ZmqConfig::new("client").plaintext().listen("tcp://127.0.0.1:0")).unwrap();
        let me = t.endpoints()[0].clone();
        let srv = server("tern", Some(&me));
        t.connect("server", &srv.addr).unwrap();
        let node = Node::start(NodeConfig::new("client").peers(["server"]), t).unwrap();
        while node.hosts("producer").is_empty() {
            tern::time::sleep(Duration::from_millis(5)).await;
        }
        let size = 16 * 1024;
        let (server_pid, client_pid) = (srv.pid(), std::process::id());
        println!(
            "stalled consumer: 1,000,000 items of {size} B wanted (16 GB), credit window {STALL_WINDOW}"
        );
        println!(
            "  before the stream: producer RSS {} KiB, consumer RSS {} KiB",
            rss_kib(server_pid),
            rss_kib(client_pid)
        );
        let mut s = node
            .lookup::<Producer>("producer")
            .ask_stream(Want {
                n: 1_000_000,
                size: size as u32,
            })
            .credit(STALL_WINDOW)
            .idle_timeout(Duration::from_secs(60));
        assert!(s.next().await.is_some());
        for i in 1..=6 {
            // The consumer does not read.
            tern::time::sleep(Duration::from_millis(500)).await;
            println!(
                "  stalled {:.1} s: producer RSS {} KiB, consumer RSS {} KiB, items buffered at the consumer {} ({} KiB)",
                f64::from(i) * 0.5,
                rss_kib(server_pid),
                rss_kib(client_pid),
                s.buffered(),
                s.buffered() * size / 1024
            );
        }
        // Then it reads 10,000 items and stalls again.
        for _ in 0..10_000 {
            assert!(s.next().await.is_some());
        }
        tern::time::sleep(Duration::from_millis(500)).await;
        println!(
            "  after reading 10,000 more and stalling 0.5 s: producer RSS {} KiB, consumer RSS {} KiB, buffered {}",
            rss_kib(server_pid),
            rss_kib(client_pid),
            s.buffered()
        );
        drop(s);
        drop(srv);
    });
}

// ----- tonic -----

#[derive(Clone, PartialEq, prost::Message)]
pub struct WantMsg {
    #[prost(uint64, tag = "1")]
    pub n: u64,
    #[prost(uint32, tag = "2")]
    pub size: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Blob {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

mod grpc {
    //! `service Scan { rpc Scan(Want) returns (stream Blob); }` in package `bench.v1`,
    //! server and client as `tonic-build` writes them (minus the trait indirection).

    use std::convert::Infallible;
    use std::pin::Pin;

    use tonic::codegen::tokio_stream::{self, Stream};
    use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
    use tonic::server::{NamedService, ServerStreamingService};
    use tonic::transport::Channel;
    use tonic_prost::ProstCodec;

    use super::{Blob, WantMsg};

    const PATH: &str = "/bench.v1.Scan/Scan";

    #[derive(Clone, Copy, Debug)]
    pub(super) struct ScanServer;

    impl NamedService for ScanServer {
        const NAME: &'static str = "bench.v1.Scan";
    }

    struct ScanSvc;

    type Items = Pin<Box<dyn Stream<Item = Result<Blob, tonic::Status>> + Send>>;

    impl ServerStreamingService<WantMsg> for ScanSvc {
        type Response = Blob;
        type ResponseStream = Items;
        type Future = BoxFuture<tonic::Response<Items>, tonic::Status>;
        fn call(&mut self, request: tonic::Request<WantMsg>) -> Self::Future {
            Box::pin(async move {
                let want = request.into_inner();
                let data = super::payload(want.size as usize);
                let items: Items = Box::pin(tokio_stream::iter(
                    (0..want.n).map(move |_| Ok(Blob { data: data.clone() })),
                ));
                Ok(tonic::Response::new(items))
            })
        }
    }

    impl<B> Service<http::Request<B>> for ScanServer
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
                    let mut grpc = tonic::server::Grpc::new(ProstCodec::<Blob, WantMsg>::default());
                    Ok(grpc.server_streaming(ScanSvc, req).await)
                })
            } else {
                Box::pin(async move { Ok(tonic::Status::unimplemented(PATH).into_http()) })
            }
        }
    }

    #[derive(Clone, Debug)]
    pub(super) struct ScanClient(tonic::client::Grpc<Channel>);

    impl ScanClient {
        pub(super) async fn connect(addr: &str) -> Self {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            Self(tonic::client::Grpc::new(channel))
        }

        pub(super) async fn scan(
            &mut self,
            request: WantMsg,
        ) -> Result<tonic::Streaming<Blob>, tonic::Status> {
            self.0
                .ready()
                .await
                .map_err(|e| tonic::Status::unknown(e.to_string()))?;
            let mut req = tonic::Request::new(request);
            req.extensions_mut()
                .insert(tonic::GrpcMethod::new("bench.v1.Scan", "Scan"));
            let path = http::uri::PathAndQuery::from_static(PATH);
            let reply = self
                .0
                .server_streaming(req, path, ProstCodec::<WantMsg, Blob>::default())
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
            .add_service(grpc::ScanServer)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
}

fn tonic_all(results: &mut Results, multi_thread: bool) {
    let name = if multi_thread { "tonic-mt" } else { "tonic-ct" };
    let srv = server(name, None);
    tokio_runtime(multi_thread).block_on(async {
        let mut client = grpc::ScanClient::connect(&srv.addr).await;
        for size in SIZES {
            let n = count(size);
            let mut rates = Vec::new();
            for round in 0..=ROUNDS {
                let start = Instant::now();
                let mut s = client
                    .scan(WantMsg {
                        n,
                        size: size as u32,
                    })
                    .await
                    .unwrap();
                let mut got = 0;
                while let Some(b) = s.message().await.unwrap() {
                    assert_eq!(b.data.len(), size);
                    got += 1;
                }
                assert_eq!(got, n);
                if round > 0 {
                    rates.push(n as f64 / start.elapsed().as_secs_f64());
                }
            }
            report(results, name, size, rates);
        }
    });
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
        "tern" => tern_server(),
        "tonic-mt" => tonic_server(true),
        "tonic-ct" => tonic_server(false),
        other => panic!("unknown role {other:?}"),
    }
}

// ----- the table -----

type Results = BTreeMap<(usize, &'static str), f64>;

fn report(results: &mut Results, system: &'static str, size: usize, mut rates: Vec<f64>) {
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "{system:>16} {size:>6} B: {median:>10.0} items/s (median of {}; min {:.0}, max {:.0})",
        rates.len(),
        rates[0],
        rates[rates.len() - 1]
    );
    results.insert((size, system), median);
}

fn summary(results: &Results) {
    println!();
    println!(
        "| item size | tern in process | tern tcp | tonic-mt | tonic-ct | tern tcp / tonic-mt | tern tcp / tonic-ct |"
    );
    println!("|---|---|---|---|---|---|---|");
    for size in SIZES {
        let get = |s| results.get(&(size, s)).copied().unwrap_or(f64::NAN);
        let (ip, tcp, mt, ct) = (
            get("tern in process"),
            get("tern tcp"),
            get("tonic-mt"),
            get("tonic-ct"),
        );
        println!(
            "| {size} B | {ip:.0} | {tcp:.0} | {mt:.0} | {ct:.0} | {:.2} | {:.2} |",
            tcp / mt,
            tcp / ct
        );
    }
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
    let wanted = |s: &str| only.as_deref().is_none_or(|o| o == s);
    let mut results = Results::new();
    if wanted("inproc") {
        inproc(&mut results);
    }
    if wanted("tern") {
        tern_tcp(&mut results);
    }
    if wanted("tonic-mt") {
        tonic_all(&mut results, true);
    }
    if wanted("tonic-ct") {
        tonic_all(&mut results, false);
    }
    if wanted("stall") {
        stall();
    }
    summary(&results);
}
