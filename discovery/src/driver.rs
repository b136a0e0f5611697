//! The thin driver: binds a [`Membership`] to a datagram socket on the current
//! runtime, in the same poll loop as everything else.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_lite::future;
use tern_executor::{Instant, JoinHandle, time};

use tern_gossip::{FactError, GossipStats, MemberEvent, MemberInfo, Membership};

/// A datagram socket a driver can use: UDP ([`crate::UdpSocket`]) or the simulated
/// network ([`crate::SimDatagrams`]).
#[allow(async_fn_in_trait)]
pub trait Datagrams {
    /// Sends one datagram; failures are the network's to lose (UDP semantics).
    fn send_to(&self, to: SocketAddr, data: &[u8]);
    /// Waits for the next datagram.
    async fn recv_from(&self) -> (SocketAddr, Vec<u8>);
    /// The next datagram if one is waiting.
    fn try_recv_from(&self) -> Option<(SocketAddr, Vec<u8>)>;
}

type Listener = Rc<dyn Fn(&MemberEvent)>;

struct Inner {
    core: RefCell<Membership>,
    listeners: RefCell<Vec<Listener>>,
    kicked: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    task: RefCell<Option<JoinHandle<()>>>,
}

/// A running membership: the core plus its driver task on the current runtime.
/// Cloning gives another handle to the same membership.
///
/// The driver reads at most [`GossipConfig::read_batch`](tern_gossip::GossipConfig::read_batch)
/// datagrams per wake-up, then yields, so gossip and the other tasks of the poll loop
/// (ZeroMQ sockets, components) cannot starve each other.
#[derive(Clone)]
pub struct Discovery {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("name", &self.inner.core.borrow().name())
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    time::now().as_nanos()
}

impl Discovery {
    /// Starts `core` on `socket`, joining through `seeds`.
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn start<D: Datagrams + 'static>(
        mut core: Membership,
        socket: D,
        seeds: &[SocketAddr],
    ) -> Self {
        core.join(seeds, now());
        let inner = Rc::new(Inner {
            core: RefCell::new(core),
            listeners: RefCell::new(Vec::new()),
            kicked: Cell::new(false),
            waker: RefCell::new(None),
            task: RefCell::new(None),
        });
        let driver = inner.clone();
        let task = tern_executor::spawn(async move { run(driver, socket).await });
        *inner.task.borrow_mut() = Some(task);
        Self { inner }
    }

    /// Calls `f` with every change in this node's view, from now on.
    pub fn subscribe(&self, f: impl Fn(&MemberEvent) + 'static) {
        self.inner.listeners.borrow_mut().push(Rc::new(f));
    }

    /// The membership table, this node included.
    #[must_use]
    pub fn members(&self) -> Vec<MemberInfo> {
        self.inner.core.borrow().members()
    }

    /// One member by name.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<MemberInfo> {
        self.inner.core.borrow().member(name)
    }

    /// This node's name.
    #[must_use]
    pub fn name(&self) -> String {
        self.inner.core.borrow().name().to_owned()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> GossipStats {
        self.inner.core.borrow().stats()
    }

    /// Updates waiting to be gossiped: (membership, facts); see
    /// [`Membership::queue_depths`].
    #[must_use]
    pub fn queue_depths(&self) -> (usize, usize) {
        self.inner.core.borrow().queue_depths()
    }

    /// How many members are alive or suspect, this node included.
    #[must_use]
    pub fn live_members(&self) -> usize {
        self.inner.core.borrow().live_members()
    }

    /// The local health score (0 is healthy).
    #[must_use]
    pub fn health(&self) -> u32 {
        self.inner.core.borrow().health()
    }

    /// Sets one of this node's facts (see [`Membership::set_fact`]).
    ///
    /// # Errors
    ///
    /// [`FactError`] when the fact is refused.
    pub fn set_fact(&self, key: &str, value: &[u8]) -> Result<(), FactError> {
        let r = self.inner.core.borrow_mut().set_fact(key, value);
        self.kick();
        r
    }

    /// Runs `f` on the core (keyring rotation, tests), then wakes the driver.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Membership) -> R) -> R {
        let r = f(&mut self.inner.core.borrow_mut());
        self.kick();
        r
    }

    /// Leaves gracefully: announces it, keeps answering for
    /// [`GossipConfig::leave_propagate`](tern_gossip::GossipConfig::leave_propagate), then
    /// the driver ends.
    pub async fn leave(&self) {
        self.inner.core.borrow_mut().leave(now());
        self.kick();
        let task = self.inner.task.borrow_mut().take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    /// Stops the driver at once, without telling anyone (as a crash would).
    pub fn stop(&self) {
        if let Some(mut t) = self.inner.task.borrow_mut().take() {
            t.abort();
        }
    }

    fn kick(&self) {
        self.inner.kicked.set(true);
        if let Some(w) = self.inner.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

async fn run<D: Datagrams>(inner: Rc<Inner>, socket: D) {
    let mut batch = Vec::new();
    loop {
        // Send what is due and tell the listeners what changed.
        let (out, events, deadline, left, read_batch) = {
            let mut core = inner.core.borrow_mut();
            let mut out = Vec::new();
            while let Some(t) = core.poll_transmit() {
                out.push(t);
            }
            let mut events = Vec::new();
            while let Some(e) = core.poll_event() {
                events.push(e);
            }
            let deadline = core.next_deadline();
            (
                out,
                events,
                deadline,
                core.has_left(),
                core.config().read_batch,
            )
        };
        for (to, data) in out {
            socket.send_to(to, &data);
        }
        if !events.is_empty() {
            let listeners = inner.listeners.borrow().clone();
            for e in &events {
                for l in &listeners {
                    l(e);
                }
            }
        }
        if left {
            return;
        }
        let timer = async {
            match deadline {
                Some(d) => time::sleep_until(Instant::from_nanos(d)).await,
                None => future::pending::<()>().await,
            }
            Wake::Timer
        };
        let kicked = poll_fn(|cx| {
            if inner.kicked.replace(false) {
                Poll::Ready(Wake::Kick)
            } else {
                *inner.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        let recv = async { Wake::Datagram(socket.recv_from().await) };
        let wake = future::or(recv, future::or(kicked, timer)).await;
        match wake {
            Wake::Datagram(first) => {
                batch.clear();
                batch.push(first);
                while batch.len() < read_batch {
                    match socket.try_recv_from() {
                        Some(d) => batch.push(d),
                        None => break,
                    }
                }
                let t = now();
                {
                    let mut core = inner.core.borrow_mut();
                    for (from, data) in batch.drain(..) {
                        core.handle_datagram(t, from, &data);
                    }
                }
                future::yield_now().await;
            }
            Wake::Timer => inner.core.borrow_mut().handle_timer(now()),
            Wake::Kick => {}
        }
    }
}

enum Wake {
    Datagram((SocketAddr, Vec<u8>)),
    Timer,
    Kick,
}
