//! The futures behind `tell(..).await` and `ask(..).await`.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tern_executor::time::{self, Sleep};

use crate::actor::Handler;
use crate::addr::{Addr, tell_envelope};
use crate::error::{AskError, SendError};
use crate::mailbox::AskEnvelope;
use crate::reply::{ReplySlot, Responder};

/// Polls the deadline timer, creating it on first use so the fast path (room in the
/// mailbox, reply already there) never touches the timer queue.
fn deadline_passed(sleep: &mut Option<Sleep>, timeout: Duration, cx: &mut Context<'_>) -> bool {
    let s = sleep.get_or_insert_with(|| time::sleep(timeout));
    Pin::new(s).poll(cx).is_ready()
}

/// A `tell` that waits for mailbox room; see [`Addr::tell`].
#[must_use = "a tell does nothing unless awaited; use `try_tell` to send without waiting"]
pub struct Tell<A: Handler<M>, M: 'static> {
    addr: Addr<A>,
    msg: Option<M>,
    timeout: Duration,
    sleep: Option<Sleep>,
}

// `msg` is moved out, never pinned.
impl<A: Handler<M>, M> Unpin for Tell<A, M> {}

impl<A: Handler<M>, M> fmt::Debug for Tell<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tell")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<A: Handler<M>, M> Tell<A, M> {
    pub(crate) fn new(addr: Addr<A>, msg: M) -> Self {
        let timeout = addr.default_timeout();
        Self {
            addr,
            msg: Some(msg),
            timeout,
            sleep: None,
        }
    }

    /// How long to wait for room before giving the message back.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<A: Handler<M>, M> Future for Tell<A, M> {
    type Output = Result<(), SendError<M>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(msg) = this.msg.take() else {
            return Poll::Ready(Ok(()));
        };
        let mb = &this.addr.inner.mailbox;
        if mb.is_stopped() {
            return Poll::Ready(Err(SendError::Stopped(msg)));
        }
        if !mb.is_full() {
            mb.push(tell_envelope(mb, msg));
            return Poll::Ready(Ok(()));
        }
        if deadline_passed(&mut this.sleep, this.timeout, cx) {
            return Poll::Ready(Err(SendError::Timeout(msg)));
        }
        mb.wait_for_room(cx);
        this.msg = Some(msg);
        Poll::Pending
    }
}

/// An ask being built; await it (it is [`IntoFuture`]) to send and get the reply.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # use tern_actors::{Actor, Context, Handler, spawn};
/// # struct Echo;
/// # impl Actor for Echo {}
/// # impl Handler<u8> for Echo { type Reply = u8; async fn handle(&mut self, m: u8, _: &mut Context<Self>) -> u8 { m } }
/// # tern_executor::Runtime::new().unwrap().block_on(async {
/// let echo = spawn(Echo);
/// let r = echo.ask(7u8).timeout(Duration::from_millis(50)).await;
/// assert_eq!(r, Ok(7));
/// # });
/// ```
#[must_use = "an ask does nothing unless awaited"]
pub struct AskRequest<A: Handler<M>, M: 'static> {
    addr: Addr<A>,
    msg: M,
    timeout: Duration,
}

impl<A: Handler<M>, M> fmt::Debug for AskRequest<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AskRequest")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<A: Handler<M>, M> AskRequest<A, M> {
    pub(crate) fn new(addr: Addr<A>, msg: M) -> Self {
        let timeout = addr.default_timeout();
        Self { addr, msg, timeout }
    }

    /// The deadline for the whole ask: waiting for mailbox room, then for the reply.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<A: Handler<M>, M> IntoFuture for AskRequest<A, M> {
    type Output = Result<A::Reply, AskError>;
    type IntoFuture = Ask<A, M>;

    fn into_future(self) -> Ask<A, M> {
        Ask {
            addr: self.addr,
            msg: Some(self.msg),
            slot: None,
            timeout: self.timeout,
            sleep: None,
        }
    }
}

/// The future of an ask; see [`AskRequest`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Ask<A: Handler<M>, M: 'static> {
    addr: Addr<A>,
    msg: Option<M>,
    slot: Option<Rc<ReplySlot<A::Reply>>>,
    timeout: Duration,
    sleep: Option<Sleep>,
}

// `msg` is moved out, never pinned.
impl<A: Handler<M>, M> Unpin for Ask<A, M> {}

impl<A: Handler<M>, M> fmt::Debug for Ask<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ask")
            .field("addr", &self.addr)
            .field("sent", &self.slot.is_some())
            .finish_non_exhaustive()
    }
}

impl<A: Handler<M>, M> Ask<A, M> {
    /// Whether the message is in the mailbox already (or the ask ended without it).
    pub(crate) fn is_queued(&self) -> bool {
        self.msg.is_none()
    }
}

impl<A: Handler<M>, M> Future for Ask<A, M> {
    type Output = Result<A::Reply, AskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(msg) = this.msg.take() {
            let mb = &this.addr.inner.mailbox;
            if mb.is_stopped() {
                return Poll::Ready(Err(AskError::Stopped));
            }
            if mb.is_full() {
                if deadline_passed(&mut this.sleep, this.timeout, cx) {
                    return Poll::Ready(Err(AskError::Timeout));
                }
                mb.wait_for_room(cx);
                this.msg = Some(msg);
                return Poll::Pending;
            }
            if cfg!(debug_assertions)
                && crate::supervision::quiet::current_component() == Some(this.addr.id())
            {
                // Debug builds only: the handler waits for a reply that only it can
                // give, so the ask can end only by its deadline.
                tracing::warn!(
                    component = this.addr.id(),
                    timeout = ?this.timeout,
                    "a component asked itself: it cannot answer while its handler waits, \
                     so this ask ends with a timeout (tell yourself, or call the code directly)"
                );
            }
            let slot = Rc::new(ReplySlot::new());
            let reply = Some(Responder { slot: slot.clone() });
            let env = match mb.reuse::<AskEnvelope<M, A::Reply>>() {
                Some(mut env) => {
                    env.msg = Some(msg);
                    env.reply = reply;
                    env
                }
                None => Box::new(AskEnvelope {
                    msg: Some(msg),
                    reply,
                }),
            };
            mb.push(env);
            this.slot = Some(slot);
        }
        let Some(slot) = &this.slot else {
            return Poll::Ready(Err(AskError::Stopped));
        };
        if let Poll::Ready(r) = slot.poll(cx) {
            return Poll::Ready(r);
        }
        if deadline_passed(&mut this.sleep, this.timeout, cx) {
            return Poll::Ready(Err(AskError::Timeout));
        }
        Poll::Pending
    }
}
