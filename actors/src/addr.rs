//! Addresses: how everyone else reaches a component.

use std::fmt;
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::actor::{Actor, Handler};
use crate::ask::{AskRequest, Tell};
use crate::error::SendError;
use crate::mailbox::{AskEnvelope, ComponentStats, Envelope, Interrupt, Mailbox, TellEnvelope};
use crate::reply::{OnReply, ReplySlot, Responder};
use crate::trace::{Open, Traced};

/// A tell envelope for `msg`, reusing a spent one when the pool has one.
#[inline]
pub(crate) fn tell_envelope<A: Handler<M>, M: 'static>(
    mb: &Mailbox<A>,
    msg: M,
) -> Box<dyn Envelope<A>> {
    match mb.reuse::<TellEnvelope<M>>() {
        Some(mut env) => {
            env.0 = Some(msg);
            env
        }
        None => Box::new(TellEnvelope(Some(msg))),
    }
}

/// What an address points to: the mailbox plus the component's fixed settings.
pub(crate) struct Component<A: Actor> {
    pub(crate) mailbox: Mailbox<A>,
    pub(crate) id: u64,
    pub(crate) timeout: Duration,
}

/// The address of a local component; cheap to clone, valid across restarts.
///
/// Every message to a component goes through an address:
///
/// | call | waits? | on a full mailbox | on a stopped component |
/// |---|---|---|---|
/// | [`try_tell`](Addr::try_tell) | no | `Err(Full(msg))` | `Err(Stopped(msg))` |
/// | [`tell`](Addr::tell)`.await` | for room, up to the deadline | waits; `Err(Timeout(msg))` | `Err(Stopped(msg))` |
/// | [`ask`](Addr::ask)`.await` | for room and the reply, up to the deadline | waits | `Err(AskError::Stopped)` |
///
/// Messages from one sender arrive in the order sent. An address is not `Send`: the
/// component lives on this thread. Other threads use [`Addr::remote`].
///
/// # Examples
///
/// ```
/// use tern_actors::{Actor, Context, Handler, spawn};
/// # use tern_executor::Runtime;
///
/// struct Counter(u64);
/// impl Actor for Counter {}
/// impl Handler<u64> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, n: u64, _: &mut Context<Self>) -> u64 { self.0 += n; self.0 }
/// }
///
/// # Runtime::new().unwrap().block_on(async {
/// let counter = spawn(Counter(0));
/// counter.try_tell(1).unwrap();            // queued at once, or the message comes back
/// counter.tell(2).await.unwrap();          // waits for room if the mailbox is full
/// assert_eq!(counter.ask(3).await, Ok(6)); // typed reply, or a typed error by the deadline
/// # });
/// ```
pub struct Addr<A: Actor> {
    pub(crate) inner: Rc<Component<A>>,
}

impl<A: Actor> Clone for Addr<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> PartialEq for Addr<A> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<A: Actor> Eq for Addr<A> {}

impl<A: Actor> fmt::Debug for Addr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addr")
            .field("component", &std::any::type_name::<A>())
            .field("id", &self.inner.id)
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

impl<A: Actor> Addr<A> {
    /// Queues `msg` now, or gives it back.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] when the mailbox holds its capacity; [`SendError::Stopped`]
    /// when the component has stopped for good.
    #[inline]
    pub fn try_tell<M: 'static>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
    {
        let mb = &self.inner.mailbox;
        if mb.is_stopped() {
            return Err(SendError::Stopped(msg));
        }
        if mb.is_full() {
            return Err(SendError::Full(msg));
        }
        mb.push(tell_envelope(mb, msg));
        Ok(())
    }

    /// Waits until the mailbox has room (or the component stopped for good).
    pub(crate) async fn room(&self) {
        poll_fn(|cx| {
            let mb = &self.inner.mailbox;
            if mb.is_stopped() || !mb.is_full() {
                std::task::Poll::Ready(())
            } else {
                mb.wait_for_room(cx);
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// Queues an ask now, or gives the message back; the reply goes to `on_reply`
    /// (taken only when queued), and the message is not handled once `deadline` has
    /// passed (then `on_reply` gets [`AskError::Timeout`](crate::AskError::Timeout)).
    /// (The network side uses it so frames from one peer are queued in arrival order,
    /// and answers without a task per ask.)
    pub(crate) fn try_ask_then<M: 'static>(
        &self,
        msg: M,
        deadline: Option<tern_executor::Instant>,
        on_reply: &mut Option<OnReply<A::Reply>>,
        span: Option<Open>,
    ) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
    {
        let mb = &self.inner.mailbox;
        if mb.is_stopped() {
            return Err(SendError::Stopped(msg));
        }
        if mb.is_full() {
            return Err(SendError::Full(msg));
        }
        // Always there: callers pass one per message, and get it back unless queued.
        let Some(f) = on_reply.take() else {
            return Err(SendError::Full(msg));
        };
        let slot = Rc::new(ReplySlot::with_callback(f, deadline));
        let env = AskEnvelope {
            msg: Some(msg),
            reply: Some(Responder { slot }),
        };
        match span {
            None => mb.push(Box::new(env)),
            Some(span) => mb.push(Box::new(Traced::new(span, env))),
        }
        Ok(())
    }

    /// As [`Addr::try_tell`], the handler running inside `span` if there is one (a
    /// request from another node, traced).
    pub(crate) fn try_tell_in<M: 'static>(
        &self,
        msg: M,
        span: Option<Open>,
    ) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
    {
        let Some(span) = span else {
            return self.try_tell(msg);
        };
        let mb = &self.inner.mailbox;
        if mb.is_stopped() {
            return Err(SendError::Stopped(msg));
        }
        if mb.is_full() {
            return Err(SendError::Full(msg));
        }
        mb.push(Box::new(Traced::new(span, TellEnvelope(Some(msg)))));
        Ok(())
    }

    /// Queues `msg`, waiting for room if the mailbox is full, up to the component's
    /// default timeout (or the one set with [`Tell::timeout`]).
    pub fn tell<M: 'static>(&self, msg: M) -> Tell<A, M>
    where
        A: Handler<M>,
    {
        Tell::new(self.clone(), msg)
    }

    /// Sends `msg` and waits for the typed reply, by the component's default timeout or
    /// the one set with [`AskRequest::timeout`].
    pub fn ask<M: 'static>(&self, msg: M) -> AskRequest<A, M>
    where
        A: Handler<M>,
    {
        AskRequest::new(self.clone(), msg)
    }

    /// Asks the component to stop for good. It finishes the message in progress (if
    /// any), then stops: the stop signal overtakes queued messages, which are rejected
    /// (asks fail with [`AskError::Stopped`](crate::AskError::Stopped), tells are
    /// counted in [`ComponentStats::dropped`] and logged). No restart follows.
    pub fn stop(&self) {
        self.inner.mailbox.interrupt(Interrupt::Stop);
    }

    /// Waits until the component has stopped for good (its `stopped` hook has run and
    /// its children have stopped).
    pub async fn stopped(&self) {
        poll_fn(|cx| self.inner.mailbox.poll_stopped(cx)).await;
    }

    /// Whether the component has stopped for good.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.inner.mailbox.is_stopped()
    }

    /// Whether the mailbox holds its capacity now.
    pub(crate) fn is_full(&self) -> bool {
        self.inner.mailbox.is_full()
    }

    /// Counters for this component.
    #[must_use]
    pub fn stats(&self) -> ComponentStats {
        self.inner.mailbox.stats()
    }

    /// The mailbox capacity.
    #[must_use]
    pub fn mailbox_capacity(&self) -> usize {
        self.inner.mailbox.capacity()
    }

    /// Changes the mailbox capacity at run time (at least 1). Messages already queued
    /// stay; senders waiting for room are woken to try again.
    pub fn set_mailbox_capacity(&self, capacity: usize) {
        self.inner.mailbox.set_capacity(capacity);
    }

    /// This component's id, unique within its container.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The default deadline for asks and for `tell` waiting for room.
    #[must_use]
    pub fn default_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// A weak address, which does not keep the mailbox alive.
    #[must_use]
    pub fn downgrade(&self) -> WeakAddr<A> {
        WeakAddr {
            inner: Rc::downgrade(&self.inner),
        }
    }
}

/// A weak address; see [`Addr::downgrade`].
pub struct WeakAddr<A: Actor> {
    inner: Weak<Component<A>>,
}

impl<A: Actor> Clone for WeakAddr<A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for WeakAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakAddr")
            .field("component", &std::any::type_name::<A>())
            .finish()
    }
}

impl<A: Actor> WeakAddr<A> {
    /// The address, if anyone still holds it.
    #[must_use]
    pub fn upgrade(&self) -> Option<Addr<A>> {
        self.inner.upgrade().map(|inner| Addr { inner })
    }
}
