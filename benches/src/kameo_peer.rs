//! kameo 0.22 (default features) on a current-thread tokio runtime. Actors are spawned
//! with `Spawn::spawn_with_mailbox(.., mailbox::bounded(1024))` (kameo's default is a
//! bounded mailbox of 64; 1024 matches tern's default and leaves room for a tell batch).
//! Tells are `tell(..).await` (waits for room), asks are `ask(..).await`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use kameo::Actor;
use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use tokio::sync::oneshot;

use crate::{IdleMemory, MAILBOX, Peer, tokio_current_thread};

/// The kameo peer.
#[derive(Debug, Clone, Copy)]
pub struct Kameo;

#[derive(Actor)]
struct Counter {
    n: u64,
}

impl Message<u64> for Counter {
    type Reply = ();
    async fn handle(&mut self, m: u64, _ctx: &mut Context<Self, Self::Reply>) {
        self.n = self.n.wrapping_add(m);
    }
}

struct Get;
impl Message<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _m: Get, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
        self.n
    }
}

fn counter() -> ActorRef<Counter> {
    Counter::spawn_with_mailbox(Counter { n: 0 }, mailbox::bounded(MAILBOX))
}

async fn stop<A: Actor>(actor: ActorRef<A>) {
    actor.kill();
    actor.wait_for_shutdown().await;
}

#[derive(Actor)]
struct Ping {
    pong: Option<ActorRef<Pong>>,
    done: Option<oneshot::Sender<()>>,
}
#[derive(Actor)]
struct Pong {
    ping: Option<ActorRef<Ping>>,
}
struct PingPeer(ActorRef<Pong>);
struct PongPeer(ActorRef<Ping>);
struct Start(u64, oneshot::Sender<()>);
struct Back(u64);

impl Message<PingPeer> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: PingPeer, _ctx: &mut Context<Self, Self::Reply>) {
        self.pong = Some(m.0);
    }
}
impl Message<Start> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: Start, _ctx: &mut Context<Self, Self::Reply>) {
        self.done = Some(m.1);
        self.pong.as_ref().unwrap().tell(m.0).await.unwrap();
    }
}
impl Message<Back> for Ping {
    type Reply = ();
    async fn handle(&mut self, m: Back, _ctx: &mut Context<Self, Self::Reply>) {
        if m.0 == 1 {
            let _ = self.done.take().unwrap().send(());
        } else {
            self.pong.as_ref().unwrap().tell(m.0 - 1).await.unwrap();
        }
    }
}
impl Message<PongPeer> for Pong {
    type Reply = ();
    async fn handle(&mut self, m: PongPeer, _ctx: &mut Context<Self, Self::Reply>) {
        self.ping = Some(m.0);
    }
}
impl Message<u64> for Pong {
    type Reply = ();
    async fn handle(&mut self, k: u64, _ctx: &mut Context<Self, Self::Reply>) {
        self.ping.as_ref().unwrap().tell(Back(k)).await.unwrap();
    }
}

#[derive(Actor)]
struct Node {
    next: Option<ActorRef<Self>>,
}
struct Next(ActorRef<Node>);
struct Token(u64, oneshot::Sender<()>);
impl Message<Next> for Node {
    type Reply = ();
    async fn handle(&mut self, m: Next, _ctx: &mut Context<Self, Self::Reply>) {
        self.next = Some(m.0);
    }
}
impl Message<Token> for Node {
    type Reply = ();
    async fn handle(&mut self, Token(hops, done): Token, _ctx: &mut Context<Self, Self::Reply>) {
        if hops == 1 {
            let _ = done.send(());
        } else {
            let next = self.next.as_ref().unwrap();
            next.tell(Token(hops - 1, done)).await.unwrap();
        }
    }
}

impl Peer for Kameo {
    fn name(&self) -> &'static str {
        "kameo"
    }

    fn tell_batched(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let actor = counter();
            actor.ask(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    actor.tell(i).await.unwrap();
                }
                black_box(actor.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor).await;
            elapsed
        })
    }

    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let ping = Ping::spawn_with_mailbox(
                Ping {
                    pong: None,
                    done: None,
                },
                mailbox::bounded(MAILBOX),
            );
            let pong = Pong::spawn_with_mailbox(Pong { ping: None }, mailbox::bounded(MAILBOX));
            ping.ask(PingPeer(pong.clone())).await.unwrap();
            pong.ask(PongPeer(ping.clone())).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ping.tell(Start(n, done)).await.unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            stop(ping).await;
            stop(pong).await;
            elapsed
        })
    }

    fn ask(&self, iters: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let actor = counter();
            actor.ask(Get).await.unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                black_box(actor.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor).await;
            elapsed
        })
    }

    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let actor = counter();
            actor.ask(Get).await.unwrap();
            let mut handles = Vec::with_capacity(senders);
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..senders {
                    let actor = actor.clone();
                    handles.push(tokio::spawn(async move {
                        for i in 0..per_sender {
                            actor.tell(i).await.unwrap();
                        }
                    }));
                }
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
                black_box(actor.ask(Get).await.unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor).await;
            elapsed
        })
    }

    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let ring: Vec<ActorRef<Node>> = (0..nodes)
                .map(|_| Node::spawn_with_mailbox(Node { next: None }, mailbox::bounded(MAILBOX)))
                .collect();
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
            for node in ring {
                stop(node).await;
            }
            elapsed
        })
    }

    fn spawn(&self, iters: u64, k: usize) -> Duration {
        tokio_current_thread().block_on(async {
            let mut comps = Vec::with_capacity(k);
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..k {
                    comps.push(counter());
                }
                black_box(comps.last().unwrap().ask(Get).await.unwrap());
                elapsed += start.elapsed();
                for actor in comps.drain(..) {
                    stop(actor).await;
                }
            }
            elapsed
        })
    }

    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory {
        tokio_current_thread().block_on(async {
            let warm = counter();
            warm.ask(Get).await.unwrap();
            stop(warm).await;
            let mut comps = Vec::with_capacity(k);
            let before = live_bytes();
            for _ in 0..k {
                comps.push(counter());
            }
            black_box(comps.last().unwrap().ask(Get).await.unwrap());
            let after = live_bytes();
            for actor in comps.drain(..) {
                stop(actor).await;
            }
            IdleMemory {
                components: k,
                before,
                after,
                handle_size: size_of::<ActorRef<Counter>>(),
            }
        })
    }
}
