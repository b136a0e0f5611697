//! ractor 0.16 (`tokio_runtime`, default features off) on a current-thread tokio runtime.
//! Tells are `cast`, asks are `call!`. `Actor::spawn` is async and returns once the
//! actor's `pre_start` has run: that is ractor's only way to spawn, so it is what the
//! spawn benchmark measures. Mailboxes are ractor's (unbounded).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, call};
use tokio::sync::oneshot;

use crate::{IdleMemory, Peer, tokio_current_thread};

/// The ractor peer.
#[derive(Debug, Clone, Copy)]
pub struct Ractor;

struct Counter;

enum CounterMsg {
    Add(u64),
    Get(RpcReplyPort<u64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: CounterMsg,
        n: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Add(m) => *n = n.wrapping_add(m),
            CounterMsg::Get(reply) => {
                let _ = reply.send(*n);
            }
        }
        Ok(())
    }
}

async fn counter() -> (ActorRef<CounterMsg>, JoinHandle<()>) {
    Actor::spawn(None, Counter, ()).await.unwrap()
}

async fn stop(actor: ActorRef<CounterMsg>, handle: JoinHandle<()>) {
    actor.stop(None);
    handle.await.unwrap();
}

struct Ping;
enum PingMsg {
    Peer(ActorRef<u64>),
    Start(u64, oneshot::Sender<()>),
    Back(u64),
}
#[derive(Default)]
struct PingState {
    pong: Option<ActorRef<u64>>,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Ping {
    type Msg = PingMsg;
    type State = PingState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<PingState, ActorProcessingErr> {
        Ok(PingState::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: PingMsg,
        st: &mut PingState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PingMsg::Peer(p) => st.pong = Some(p),
            PingMsg::Start(k, done) => {
                st.done = Some(done);
                st.pong.as_ref().unwrap().cast(k)?;
            }
            PingMsg::Back(1) => {
                let _ = st.done.take().unwrap().send(());
            }
            PingMsg::Back(k) => st.pong.as_ref().unwrap().cast(k - 1)?,
        }
        Ok(())
    }
}

struct Pong;
impl Actor for Pong {
    type Msg = u64;
    type State = ActorRef<PingMsg>;
    type Arguments = ActorRef<PingMsg>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        ping: ActorRef<PingMsg>,
    ) -> Result<ActorRef<PingMsg>, ActorProcessingErr> {
        Ok(ping)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        k: u64,
        ping: &mut ActorRef<PingMsg>,
    ) -> Result<(), ActorProcessingErr> {
        ping.cast(PingMsg::Back(k))?;
        Ok(())
    }
}

struct Node;
enum NodeMsg {
    Next(ActorRef<Self>),
    Token(u64, oneshot::Sender<()>),
}
impl Actor for Node {
    type Msg = NodeMsg;
    type State = Option<ActorRef<NodeMsg>>;
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(None)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: NodeMsg,
        next: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeMsg::Next(n) => *next = Some(n),
            NodeMsg::Token(1, done) => {
                let _ = done.send(());
            }
            NodeMsg::Token(hops, done) => {
                next.as_ref()
                    .unwrap()
                    .cast(NodeMsg::Token(hops - 1, done))?;
            }
        }
        Ok(())
    }
}

impl Peer for Ractor {
    fn name(&self) -> &'static str {
        "ractor"
    }

    fn tell_batched(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (actor, handle) = counter().await;
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    actor.cast(CounterMsg::Add(i)).unwrap();
                }
                black_box(call!(actor, CounterMsg::Get).unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor, handle).await;
            elapsed
        })
    }

    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (ping, ping_h) = Actor::spawn(None, Ping, ()).await.unwrap();
            let (pong, pong_h) = Actor::spawn(None, Pong, ping.clone()).await.unwrap();
            ping.cast(PingMsg::Peer(pong.clone())).unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ping.cast(PingMsg::Start(n, done)).unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            ping.stop(None);
            pong.stop(None);
            ping_h.await.unwrap();
            pong_h.await.unwrap();
            elapsed
        })
    }

    fn ask(&self, iters: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (actor, handle) = counter().await;
            let start = Instant::now();
            for _ in 0..iters {
                black_box(call!(actor, CounterMsg::Get).unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor, handle).await;
            elapsed
        })
    }

    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (actor, handle) = counter().await;
            let mut handles = Vec::with_capacity(senders);
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..senders {
                    let actor = actor.clone();
                    handles.push(tokio::spawn(async move {
                        for i in 0..per_sender {
                            actor.cast(CounterMsg::Add(i)).unwrap();
                        }
                    }));
                }
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
                black_box(call!(actor, CounterMsg::Get).unwrap());
            }
            let elapsed = start.elapsed();
            stop(actor, handle).await;
            elapsed
        })
    }

    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let mut ring = Vec::with_capacity(nodes);
            for _ in 0..nodes {
                ring.push(Actor::spawn(None, Node, ()).await.unwrap());
            }
            for i in 0..nodes {
                let next = ring[(i + 1) % nodes].0.clone();
                ring[i].0.cast(NodeMsg::Next(next)).unwrap();
            }
            let hops = nodes as u64 * laps;
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ring[0].0.cast(NodeMsg::Token(hops, done)).unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            for (actor, _) in &ring {
                actor.stop(None);
            }
            for (_, handle) in ring {
                handle.await.unwrap();
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
                    comps.push(counter().await);
                }
                black_box(call!(comps.last().unwrap().0, CounterMsg::Get).unwrap());
                elapsed += start.elapsed();
                for (actor, handle) in comps.drain(..) {
                    stop(actor, handle).await;
                }
            }
            elapsed
        })
    }

    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory {
        tokio_current_thread().block_on(async {
            let (actor, handle) = counter().await;
            call!(actor, CounterMsg::Get).unwrap();
            stop(actor, handle).await;
            let mut comps = Vec::with_capacity(k);
            let before = live_bytes();
            for _ in 0..k {
                comps.push(counter().await);
            }
            black_box(call!(comps.last().unwrap().0, CounterMsg::Get).unwrap());
            let after = live_bytes();
            for (actor, handle) in comps.drain(..) {
                stop(actor, handle).await;
            }
            IdleMemory {
                components: k,
                before,
                after,
                handle_size: size_of::<(ActorRef<CounterMsg>, JoinHandle<()>)>(),
            }
        })
    }
}
