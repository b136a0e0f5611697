//! actix 0.13 on its single-threaded `System`: actors started with `Actor::start` run on
//! the system arbiter, a current-thread tokio runtime with a `LocalSet`, on this thread.
//! Tells are `Addr::do_send` (actix's fire-and-forget, which ignores the mailbox
//! capacity), asks are `Addr::send(..).await`.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::{IdleMemory, Peer};

/// The actix peer.
#[derive(Debug, Clone, Copy)]
pub struct Actix;

/// Counters started and not yet stopped; actix has no join handle, so teardown waits for
/// this to drop back. One relaxed increment per start: noise next to a spawn.
static LIVE: AtomicUsize = AtomicUsize::new(0);

struct Counter {
    n: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        LIVE.fetch_add(1, Ordering::Relaxed);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

// actix messages must implement `actix::Message`, which the orphan rule forbids for `u64`.
struct Add(u64);
impl Message for Add {
    type Result = ();
}

struct Get;
impl Message for Get {
    type Result = u64;
}

impl Handler<Add> for Counter {
    type Result = ();
    fn handle(&mut self, m: Add, _ctx: &mut Context<Self>) {
        self.n = self.n.wrapping_add(m.0);
    }
}

impl Handler<Get> for Counter {
    type Result = u64;
    fn handle(&mut self, _m: Get, _ctx: &mut Context<Self>) -> u64 {
        self.n
    }
}

fn counter() -> Addr<Counter> {
    Counter { n: 0 }.start()
}

/// Drives the arbiter until every counter has stopped (their addresses are dropped).
async fn wait_stopped() {
    while LIVE.load(Ordering::Relaxed) != 0 {
        tokio::task::yield_now().await;
    }
}

struct Ping {
    pong: Option<Addr<Pong>>,
    done: Option<oneshot::Sender<()>>,
}
impl Actor for Ping {
    type Context = Context<Self>;
}
struct Pong {
    ping: Option<Addr<Ping>>,
}
impl Actor for Pong {
    type Context = Context<Self>;
}

struct Start(u64, oneshot::Sender<()>);
impl Message for Start {
    type Result = ();
}
struct PingPeer(Addr<Pong>);
impl Message for PingPeer {
    type Result = ();
}
struct PongPeer(Addr<Ping>);
impl Message for PongPeer {
    type Result = ();
}
struct Ball(u64);
impl Message for Ball {
    type Result = ();
}
struct Back(u64);
impl Message for Back {
    type Result = ();
}

impl Handler<PingPeer> for Ping {
    type Result = ();
    fn handle(&mut self, m: PingPeer, _ctx: &mut Context<Self>) {
        self.pong = Some(m.0);
    }
}
impl Handler<Start> for Ping {
    type Result = ();
    fn handle(&mut self, m: Start, _ctx: &mut Context<Self>) {
        self.done = Some(m.1);
        self.pong.as_ref().unwrap().do_send(Ball(m.0));
    }
}
impl Handler<Back> for Ping {
    type Result = ();
    fn handle(&mut self, m: Back, _ctx: &mut Context<Self>) {
        if m.0 == 1 {
            let _ = self.done.take().unwrap().send(());
        } else {
            self.pong.as_ref().unwrap().do_send(Ball(m.0 - 1));
        }
    }
}
impl Handler<PongPeer> for Pong {
    type Result = ();
    fn handle(&mut self, m: PongPeer, _ctx: &mut Context<Self>) {
        self.ping = Some(m.0);
    }
}
impl Handler<Ball> for Pong {
    type Result = ();
    fn handle(&mut self, m: Ball, _ctx: &mut Context<Self>) {
        self.ping.as_ref().unwrap().do_send(Back(m.0));
    }
}

struct Node {
    next: Option<Addr<Self>>,
}
impl Actor for Node {
    type Context = Context<Self>;
}
struct Next(Addr<Node>);
impl Message for Next {
    type Result = ();
}
struct Token(u64, oneshot::Sender<()>);
impl Message for Token {
    type Result = ();
}
impl Handler<Next> for Node {
    type Result = ();
    fn handle(&mut self, m: Next, _ctx: &mut Context<Self>) {
        self.next = Some(m.0);
    }
}
impl Handler<Token> for Node {
    type Result = ();
    fn handle(&mut self, Token(hops, done): Token, _ctx: &mut Context<Self>) {
        if hops == 1 {
            let _ = done.send(());
        } else {
            self.next.as_ref().unwrap().do_send(Token(hops - 1, done));
        }
    }
}
struct Stop;
impl Message for Stop {
    type Result = ();
}
impl Handler<Stop> for Node {
    type Result = ();
    fn handle(&mut self, _m: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
impl Handler<Stop> for Ping {
    type Result = ();
    fn handle(&mut self, _m: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
impl Handler<Stop> for Pong {
    type Result = ();
    fn handle(&mut self, _m: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Peer for Actix {
    fn name(&self) -> &'static str {
        "actix"
    }

    fn tell_batched(&self, iters: u64, n: u64) -> Duration {
        System::new().block_on(async {
            let addr = counter();
            addr.send(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    addr.do_send(Add(i));
                }
                black_box(addr.send(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            drop(addr);
            wait_stopped().await;
            elapsed
        })
    }

    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration {
        System::new().block_on(async {
            let ping = Ping {
                pong: None,
                done: None,
            }
            .start();
            let pong = Pong { ping: None }.start();
            ping.send(PingPeer(pong.clone())).await.unwrap();
            pong.send(PongPeer(ping.clone())).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ping.do_send(Start(n, done));
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            ping.send(Stop).await.unwrap();
            pong.send(Stop).await.unwrap();
            elapsed
        })
    }

    fn ask(&self, iters: u64) -> Duration {
        System::new().block_on(async {
            let addr = counter();
            addr.send(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(addr.send(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            drop(addr);
            wait_stopped().await;
            elapsed
        })
    }

    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration {
        System::new().block_on(async {
            let addr = counter();
            addr.send(Get).await.unwrap();
            let mut handles = Vec::with_capacity(senders);
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..senders {
                    let addr = addr.clone();
                    handles.push(actix_rt::spawn(async move {
                        for i in 0..per_sender {
                            addr.do_send(Add(i));
                        }
                    }));
                }
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
                black_box(addr.send(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            drop(addr);
            wait_stopped().await;
            elapsed
        })
    }

    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration {
        System::new().block_on(async {
            let ring: Vec<Addr<Node>> = (0..nodes).map(|_| Node { next: None }.start()).collect();
            for (i, node) in ring.iter().enumerate() {
                node.send(Next(ring[(i + 1) % nodes].clone()))
                    .await
                    .unwrap();
            }
            let hops = nodes as u64 * laps;
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ring[0].do_send(Token(hops, done));
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            for node in &ring {
                node.send(Stop).await.unwrap();
            }
            elapsed
        })
    }

    fn spawn(&self, iters: u64, k: usize) -> Duration {
        System::new().block_on(async {
            let mut comps = Vec::with_capacity(k);
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..k {
                    comps.push(counter());
                }
                black_box(comps.last().unwrap().send(Get).await.unwrap());
                elapsed += start.elapsed();
                comps.clear();
                wait_stopped().await;
            }
            elapsed
        })
    }

    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory {
        System::new().block_on(async {
            let warm = counter();
            warm.send(Get).await.unwrap();
            drop(warm);
            wait_stopped().await;
            let mut comps = Vec::with_capacity(k);
            let before = live_bytes();
            for _ in 0..k {
                comps.push(counter());
            }
            black_box(comps.last().unwrap().send(Get).await.unwrap());
            let after = live_bytes();
            comps.clear();
            wait_stopped().await;
            IdleMemory {
                components: k,
                before,
                after,
                handle_size: size_of::<Addr<Counter>>(),
            }
        })
    }
}
