//! tern on its own single-threaded `Runtime`. Components are spawned with `tern::spawn`
//! (default mailbox, capacity 1024); tells are `tell(..).await` (waits for room, like
//! kameo's and tokio's bounded sends), asks are `ask(..).await`. A component keeps
//! running until stopped, so teardown is `Addr::stop` then `Addr::stopped().await`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tern::prelude::*;
use tokio::sync::oneshot;

use crate::{IdleMemory, Peer};

/// The tern peer.
#[derive(Debug, Clone, Copy)]
pub struct Tern;

fn runtime() -> Runtime {
    Runtime::new().unwrap()
}

/// With `TERN_BENCH_METRICS=1`, what a container with `[admin]` on runs beside its
/// components: the admin listener (a TCP socket in the reactor) and its poll-lag and
/// rate probes; with `TERN_BENCH_METRICS=fd`, only an idle socket in the reactor, as
/// every container's transport has (BENCHMARKS.md, "Cost of metrics"). Call inside
/// the runtime.
fn metrics_on() -> Option<Box<dyn std::any::Any>> {
    let mode = std::env::var("TERN_BENCH_METRICS").ok()?;
    if mode == "fd" {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        return Some(Box::new(tern::executor::Async::new(socket)));
    }
    let settings = tern::app::config::AdminSettings::new(([127, 0, 0, 1], 0).into());
    Some(Box::new(
        tern::app::AdminListener::start(&settings, "bench", None).unwrap(),
    ))
}

/// With `TERN_BENCH_TRACING=1`, tracing on as in a container run by `App`: a span
/// ring installed on the thread, the process-wide flag set (BENCHMARKS.md, "Cost of
/// tracing"). Local calls never look at it; remote calls carry trace context and
/// record spans. Call inside the runtime.
pub fn tracing_on() {
    if std::env::var("TERN_BENCH_TRACING").is_ok_and(|v| v == "1") {
        let ring = std::rc::Rc::new(tern::trace::SpanRing::new(tern::trace::DEFAULT_SPANS));
        tern::trace::install(ring, 1);
    }
}

struct Counter {
    n: u64,
}
impl Actor for Counter {}

impl Handler<u64> for Counter {
    type Reply = ();
    async fn handle(&mut self, m: u64, _ctx: &mut Context<Self>) {
        self.n = self.n.wrapping_add(m);
    }
}

struct Get;
impl Handler<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _m: Get, _ctx: &mut Context<Self>) -> u64 {
        self.n
    }
}

fn counter() -> Addr<Counter> {
    spawn(Counter { n: 0 })
}

async fn stop<A: Actor>(addr: &Addr<A>) {
    addr.stop();
    addr.stopped().await;
}

struct Ping {
    pong: Option<Addr<Pong>>,
    done: Option<oneshot::Sender<()>>,
}
impl Actor for Ping {}
struct Pong {
    ping: Option<Addr<Ping>>,
}
impl Actor for Pong {}
struct PingPeer(Addr<Pong>);
struct PongPeer(Addr<Ping>);
struct Start(u64, oneshot::Sender<()>);
struct Back(u64);

impl Handler<PingPeer> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: PingPeer, _ctx: &mut Context<Self>) {
        self.pong = Some(m.0);
    }
}
impl Handler<Start> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: Start, _ctx: &mut Context<Self>) {
        self.done = Some(m.1);
        self.pong.as_ref().unwrap().tell(m.0).await.unwrap();
    }
}
impl Handler<Back> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: Back, _ctx: &mut Context<Self>) {
        if m.0 == 1 {
            let _ = self.done.take().unwrap().send(());
        } else {
            self.pong.as_ref().unwrap().tell(m.0 - 1).await.unwrap();
        }
    }
}
impl Handler<PongPeer> for Pong {
    type Reply = ();
    async fn handle(&mut self, m: PongPeer, _ctx: &mut Context<Self>) {
        self.ping = Some(m.0);
    }
}
impl Handler<u64> for Pong {
    type Reply = ();
    async fn handle(&mut self, k: u64, _ctx: &mut Context<Self>) {
        self.ping.as_ref().unwrap().tell(Back(k)).await.unwrap();
    }
}

struct Node {
    next: Option<Addr<Self>>,
}
impl Actor for Node {}
struct Next(Addr<Node>);
struct Token(u64, oneshot::Sender<()>);
impl Handler<Next> for Node {
    type Reply = ();
    async fn handle(&mut self, m: Next, _ctx: &mut Context<Self>) {
        self.next = Some(m.0);
    }
}
impl Handler<Token> for Node {
    type Reply = ();
    async fn handle(&mut self, Token(hops, done): Token, _ctx: &mut Context<Self>) {
        if hops == 1 {
            let _ = done.send(());
        } else {
            let next = self.next.as_ref().unwrap();
            next.tell(Token(hops - 1, done)).await.unwrap();
        }
    }
}

impl Tern {
    /// [`Peer::tell_batched`] with `try_tell` (no future per message) instead of
    /// `tell(..).await`; an extra row, to show what the `Tell` future costs.
    #[must_use]
    pub fn tell_batched_try(&self, iters: u64, n: u64) -> Duration {
        runtime().block_on(async {
            let _metrics = metrics_on();
            tracing_on();
            let addr = counter();
            addr.ask(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    addr.try_tell(i).unwrap();
                }
                black_box(addr.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(&addr).await;
            elapsed
        })
    }
}

impl Peer for Tern {
    fn name(&self) -> &'static str {
        "tern"
    }

    fn tell_batched(&self, iters: u64, n: u64) -> Duration {
        runtime().block_on(async {
            let _metrics = metrics_on();
            tracing_on();
            let addr = counter();
            addr.ask(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    addr.tell(i).await.unwrap();
                }
                black_box(addr.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(&addr).await;
            elapsed
        })
    }

    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration {
        runtime().block_on(async {
            let _metrics = metrics_on();
            tracing_on();
            let ping = spawn(Ping {
                pong: None,
                done: None,
            });
            let pong = spawn(Pong { ping: None });
            ping.ask(PingPeer(pong.clone())).await.unwrap();
            pong.ask(PongPeer(ping.clone())).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ping.tell(Start(n, done)).await.unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            stop(&ping).await;
            stop(&pong).await;
            elapsed
        })
    }

    fn ask(&self, iters: u64) -> Duration {
        runtime().block_on(async {
            let _metrics = metrics_on();
            tracing_on();
            let addr = counter();
            addr.ask(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(addr.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(&addr).await;
            elapsed
        })
    }

    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration {
        runtime().block_on(async {
            let addr = counter();
            addr.ask(Get).await.unwrap();
            let mut handles = Vec::with_capacity(senders);
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..senders {
                    let addr = addr.clone();
                    handles.push(spawn_task(async move {
                        for i in 0..per_sender {
                            addr.tell(i).await.unwrap();
                        }
                    }));
                }
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
                black_box(addr.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(&addr).await;
            elapsed
        })
    }

    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration {
        runtime().block_on(async {
            let ring: Vec<Addr<Node>> = (0..nodes).map(|_| spawn(Node { next: None })).collect();
            for (i, node) in ring.iter().enumerate() {
                node.ask(Next(ring[(i + 1) % nodes].clone())).await.unwrap();
            }
            let hops = nodes as u64 * laps;
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ring[0].tell(Token(hops, done)).await.unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            for node in &ring {
                stop(node).await;
            }
            elapsed
        })
    }

    fn spawn(&self, iters: u64, k: usize) -> Duration {
        runtime().block_on(async {
            let mut comps = Vec::with_capacity(k);
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..k {
                    comps.push(counter());
                }
                black_box(comps.last().unwrap().ask(Get).await.unwrap());
                elapsed += start.elapsed();
                for c in &comps {
                    c.stop();
                }
                for c in comps.drain(..) {
                    c.stopped().await;
                }
            }
            elapsed
        })
    }

    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory {
        runtime().block_on(async {
            let warm = counter();
            warm.ask(Get).await.unwrap();
            stop(&warm).await;
            drop(warm);
            let mut comps = Vec::with_capacity(k);
            let before = live_bytes();
            for _ in 0..k {
                comps.push(counter());
            }
            black_box(comps.last().unwrap().ask(Get).await.unwrap());
            let after = live_bytes();
            for c in &comps {
                c.stop();
            }
            for c in comps.drain(..) {
                c.stopped().await;
            }
            IdleMemory {
                components: k,
                before,
                after,
                handle_size: size_of::<Addr<Counter>>(),
            }
        })
    }
}
