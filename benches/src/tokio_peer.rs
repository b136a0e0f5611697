//! Plain tokio: a component is a spawned task draining a bounded `mpsc` channel; an ask is
//! a message carrying a `oneshot::Sender`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{IdleMemory, MAILBOX, Peer, tokio_current_thread};

/// The tokio peer.
#[derive(Debug, Clone, Copy)]
pub struct Tokio;

enum CounterMsg {
    Add(u64),
    Get(oneshot::Sender<u64>),
}

/// A counter component: a task owning `n`, and the sending half of its mailbox.
fn spawn_counter(capacity: usize) -> (mpsc::Sender<CounterMsg>, JoinHandle<u64>) {
    let (tx, mut rx) = mpsc::channel(capacity);
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(msg) = rx.recv().await {
            match msg {
                CounterMsg::Add(m) => n = n.wrapping_add(m),
                CounterMsg::Get(reply) => {
                    let _ = reply.send(n);
                }
            }
        }
        n
    });
    (tx, task)
}

async fn ask_get(tx: &mpsc::Sender<CounterMsg>) -> u64 {
    let (reply, rx) = oneshot::channel();
    tx.send(CounterMsg::Get(reply)).await.unwrap();
    rx.await.unwrap()
}

enum PingMsg {
    Start(u64, oneshot::Sender<()>),
    Back(u64),
}

impl Peer for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn tell_batched(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (tx, task) = spawn_counter(MAILBOX);
            ask_get(&tx).await;
            let start = Instant::now();
            for _ in 0..iters {
                for i in 0..n {
                    tx.send(CounterMsg::Add(i)).await.unwrap();
                }
                black_box(ask_get(&tx).await);
            }
            let elapsed = start.elapsed();
            drop(tx);
            task.await.unwrap();
            elapsed
        })
    }

    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (ping_tx, mut ping_rx) = mpsc::channel::<PingMsg>(MAILBOX);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u64>(MAILBOX);
            let back = ping_tx.clone();
            let pong = tokio::spawn(async move {
                while let Some(k) = pong_rx.recv().await {
                    if back.send(PingMsg::Back(k)).await.is_err() {
                        break;
                    }
                }
            });
            let ping = tokio::spawn(async move {
                let mut done = None;
                while let Some(msg) = ping_rx.recv().await {
                    match msg {
                        PingMsg::Start(k, d) => {
                            done = Some(d);
                            pong_tx.send(k).await.unwrap();
                        }
                        PingMsg::Back(1) => {
                            let _ = done.take().unwrap().send(());
                        }
                        PingMsg::Back(k) => pong_tx.send(k - 1).await.unwrap(),
                    }
                }
            });
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                ping_tx.send(PingMsg::Start(n, done)).await.unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            // Pong holds a sender to ping and ping one to pong: abort rather than drain.
            ping.abort();
            pong.abort();
            let _ = ping.await;
            let _ = pong.await;
            elapsed
        })
    }

    fn ask(&self, iters: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (tx, task) = spawn_counter(MAILBOX);
            ask_get(&tx).await;
            let start = Instant::now();
            for _ in 0..iters {
                black_box(ask_get(&tx).await);
            }
            let elapsed = start.elapsed();
            drop(tx);
            task.await.unwrap();
            elapsed
        })
    }

    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration {
        tokio_current_thread().block_on(async {
            let (tx, task) = spawn_counter(MAILBOX);
            ask_get(&tx).await;
            let mut handles = Vec::with_capacity(senders);
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..senders {
                    let tx = tx.clone();
                    handles.push(tokio::spawn(async move {
                        for i in 0..per_sender {
                            tx.send(CounterMsg::Add(i)).await.unwrap();
                        }
                    }));
                }
                for h in handles.drain(..) {
                    h.await.unwrap();
                }
                black_box(ask_get(&tx).await);
            }
            let elapsed = start.elapsed();
            drop(tx);
            task.await.unwrap();
            elapsed
        })
    }

    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration {
        tokio_current_thread().block_on(async {
            type Token = (u64, oneshot::Sender<()>);
            let (txs, rxs): (Vec<_>, Vec<_>) =
                (0..nodes).map(|_| mpsc::channel::<Token>(MAILBOX)).unzip();
            let mut tasks = Vec::with_capacity(nodes);
            for (i, mut rx) in rxs.into_iter().enumerate() {
                let next = txs[(i + 1) % nodes].clone();
                tasks.push(tokio::spawn(async move {
                    while let Some((hops, done)) = rx.recv().await {
                        if hops == 1 {
                            let _ = done.send(());
                        } else {
                            next.send((hops - 1, done)).await.unwrap();
                        }
                    }
                }));
            }
            let first = txs[0].clone();
            drop(txs);
            let hops = nodes as u64 * laps;
            let start = Instant::now();
            for _ in 0..iters {
                let (done, finished) = oneshot::channel();
                first.send((hops, done)).await.unwrap();
                finished.await.unwrap();
            }
            let elapsed = start.elapsed();
            // Each node holds a sender to the next, so the ring never closes by itself.
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
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
                    comps.push(spawn_counter(MAILBOX));
                }
                black_box(ask_get(&comps.last().unwrap().0).await);
                elapsed += start.elapsed();
                for (tx, task) in comps.drain(..) {
                    drop(tx);
                    task.await.unwrap();
                }
            }
            elapsed
        })
    }

    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory {
        tokio_current_thread().block_on(async {
            // Warm up lazily allocated runtime state first.
            let (tx, task) = spawn_counter(MAILBOX);
            ask_get(&tx).await;
            drop(tx);
            task.await.unwrap();
            let mut comps = Vec::with_capacity(k);
            let before = live_bytes();
            for _ in 0..k {
                comps.push(spawn_counter(MAILBOX));
            }
            black_box(ask_get(&comps.last().unwrap().0).await);
            let after = live_bytes();
            for (tx, task) in comps.drain(..) {
                drop(tx);
                task.await.unwrap();
            }
            IdleMemory {
                components: k,
                before,
                after,
                handle_size: size_of::<(mpsc::Sender<CounterMsg>, JoinHandle<u64>)>(),
            }
        })
    }
}
