//! The bounded mailbox and the envelopes it holds.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures_lite::FutureExt;
use tern_executor::panic_message;

use crate::actor::{Actor, Handler};
use crate::context::Context;
use crate::error::AskError;
use crate::reply::Responder;

/// A handler running for one message; borrows the component and its context.
pub(crate) type Handling<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// One queued message, its type erased so a component can take many message types.
///
/// Envelopes are recycled: once the handler has taken the message out, the empty box
/// goes back to its mailbox's pool and carries the next message of the same type, so a
/// busy mailbox allocates for its handlers' futures but not for its messages.
pub(crate) trait Envelope<A: Actor> {
    /// Takes the message out and starts handling it: the returned future runs the
    /// handler (and sends the reply). `None` if the envelope was already empty.
    fn handle<'a>(&mut self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Option<Handling<'a>>;
    /// The component stopped with this message still queued.
    fn reject(&mut self);
    /// The empty box, for reuse.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

pub(crate) struct TellEnvelope<M>(pub(crate) Option<M>);

impl<A: Handler<M>, M: 'static> Envelope<A> for TellEnvelope<M> {
    fn handle<'a>(&mut self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Option<Handling<'a>> {
        let msg = self.0.take()?;
        Some(Box::pin(async move {
            let _reply = actor.handle(msg, ctx).await;
        }))
    }

    fn reject(&mut self) {
        if self.0.take().is_some() {
            tracing::warn!(
                message = std::any::type_name::<M>(),
                "component stopped with a tell queued; message dropped"
            );
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

pub(crate) struct AskEnvelope<M, R> {
    pub(crate) msg: Option<M>,
    pub(crate) reply: Option<Responder<R>>,
}

impl<A: Handler<M>, M: 'static> Envelope<A> for AskEnvelope<M, A::Reply> {
    fn handle<'a>(&mut self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Option<Handling<'a>> {
        let msg = self.msg.take()?;
        let reply = self.reply.take()?;
        if reply.slot.expired() {
            // The asker gave up while this waited: not handled.
            drop(msg);
            reply.slot.complete(Err(AskError::Timeout));
            return None;
        }
        Some(Box::pin(async move {
            match AssertUnwindSafe(actor.handle(msg, ctx))
                .catch_unwind()
                .await
            {
                Ok(r) => reply.slot.complete(Ok(r)),
                Err(p) => {
                    reply
                        .slot
                        .complete(Err(AskError::HandlerPanicked(panic_message(&*p))));
                    // The component boundary catches it again and applies supervision.
                    resume_unwind(p);
                }
            }
        }))
    }

    fn reject(&mut self) {
        self.msg = None;
        // Dropping the responder fails the ask with `Stopped`.
        self.reply = None;
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Why the current incarnation must end before its next message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Interrupt {
    /// `Addr::stop` or a stopping parent: end for good.
    Stop,
    /// A child exhausted its restarts and escalated.
    Escalated(String),
}

/// Counters kept per component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComponentStats {
    /// Messages waiting in the mailbox now.
    pub queued: usize,
    /// Messages the mailbox holds before senders wait (or `try_tell` refuses).
    pub capacity: usize,
    /// Messages handled to completion (including ones whose handler failed).
    pub handled: u64,
    /// Messages rejected because the component stopped with them queued (each tell is
    /// also logged at `warn`; each ask fails with `AskError::Stopped`).
    pub dropped: u64,
    /// Incarnations started after the first.
    pub restarts: u64,
    /// Handler panics, `Context::fail` calls, failed `started` hooks and escalations.
    pub failures: u64,
}

/// Counters as stored: compact, since every component carries them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) handled: u64,
    pub(crate) dropped: u32,
    pub(crate) restarts: u32,
    pub(crate) failures: u32,
}

/// Mailbox state that most components never touch: it is allocated on first use, so
/// an idle component does not pay for it.
#[derive(Default)]
struct Cold {
    /// Senders waiting for room, woken in arrival order.
    senders: VecDeque<Waker>,
    /// Tasks waiting for the component to stop for good.
    watchers: Vec<Waker>,
    /// Why the current incarnation must end.
    interrupt: Option<Interrupt>,
}

const IDLE: u8 = 1;
const STOPPED: u8 = 2;
const INTERRUPTED: u8 = 4;
const SENDERS_WAITING: u8 = 8;

/// The mailbox and lifecycle flags shared by a component's addresses and its task.
pub(crate) struct Mailbox<A: Actor> {
    queue: RefCell<VecDeque<Box<dyn Envelope<A>>>>,
    capacity: Cell<usize>,
    /// The component task's waker, stored once: the task never changes.
    receiver: Cell<Option<Waker>>,
    flags: Cell<u8>,
    counters: Cell<Counters>,
    /// Spent envelopes kept for reuse, at most `capacity` of them.
    pool: RefCell<Vec<Box<dyn Any>>>,
    cold: RefCell<Option<Box<Cold>>>,
}

impl<A: Actor> Mailbox<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: RefCell::new(VecDeque::new()),
            capacity: Cell::new(capacity.max(1)),
            receiver: Cell::new(None),
            flags: Cell::new(0),
            counters: Cell::new(Counters::default()),
            pool: RefCell::new(Vec::new()),
            cold: RefCell::new(None),
        }
    }

    fn flag(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }

    fn set_flag(&self, f: u8, on: bool) {
        let v = self.flags.get();
        self.flags.set(if on { v | f } else { v & !f });
    }

    fn with_cold<R>(&self, f: impl FnOnce(&mut Cold) -> R) -> R {
        let mut cold = self.cold.borrow_mut();
        f(cold.get_or_insert_with(Box::default))
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut Counters)) {
        let mut c = self.counters.get();
        f(&mut c);
        self.counters.set(c);
    }

    pub(crate) fn stats(&self) -> ComponentStats {
        let c = self.counters.get();
        ComponentStats {
            queued: self.len(),
            capacity: self.capacity(),
            handled: c.handled,
            dropped: c.dropped.into(),
            restarts: c.restarts.into(),
            failures: c.failures.into(),
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.flag(STOPPED)
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity.get()
    }

    /// Changes the capacity at run time; messages already queued stay.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.set(capacity.max(1));
        self.wake_senders(usize::MAX);
    }

    fn wake_receiver(&self) {
        if self.flag(IDLE) {
            self.set_flag(IDLE, false);
            let w = self.receiver.take();
            if let Some(w) = &w {
                w.wake_by_ref();
            }
            self.receiver.set(w);
        }
    }

    fn wake_senders(&self, n: usize) {
        if !self.flag(SENDERS_WAITING) {
            return;
        }
        for _ in 0..n {
            let w = self.with_cold(|c| c.senders.pop_front());
            match w {
                Some(w) => w.wake(),
                None => {
                    self.set_flag(SENDERS_WAITING, false);
                    break;
                }
            }
        }
    }

    /// Queues an envelope. Callers check [`Mailbox::is_stopped`] and
    /// [`Mailbox::is_full`] first, so the message can go back to them untouched.
    #[inline]
    pub(crate) fn push(&self, env: Box<dyn Envelope<A>>) {
        self.queue.borrow_mut().push_back(env);
        self.wake_receiver();
    }

    /// Whether a push would be refused because the mailbox is full (not stopped).
    pub(crate) fn is_full(&self) -> bool {
        self.queue.borrow().len() >= self.capacity.get()
    }

    /// Registers a sender to be woken when room frees up.
    pub(crate) fn wait_for_room(&self, cx: &mut TaskContext<'_>) {
        self.with_cold(|c| {
            if !c.senders.iter().any(|w| w.will_wake(cx.waker())) {
                c.senders.push_back(cx.waker().clone());
            }
        });
        self.set_flag(SENDERS_WAITING, true);
    }

    fn park_receiver(&self, cx: &mut TaskContext<'_>) {
        let w = self.receiver.take();
        match w {
            Some(w) if w.will_wake(cx.waker()) => self.receiver.set(Some(w)),
            _ => self.receiver.set(Some(cx.waker().clone())),
        }
        self.set_flag(IDLE, true);
    }

    /// The component task takes its next envelope, or learns it must end.
    pub(crate) fn poll_next(
        &self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<Box<dyn Envelope<A>>, Interrupt>> {
        if self.flag(INTERRUPTED)
            && let Some(i) = self.take_interrupt()
        {
            return Poll::Ready(Err(i));
        }
        let next = self.queue.borrow_mut().pop_front();
        if let Some(env) = next {
            self.wake_senders(1);
            return Poll::Ready(Ok(env));
        }
        self.park_receiver(cx);
        Poll::Pending
    }

    fn take_interrupt(&self) -> Option<Interrupt> {
        self.set_flag(INTERRUPTED, false);
        self.cold.borrow_mut().as_mut()?.interrupt.take()
    }

    /// An empty envelope of type `T` from the pool, if the most recently spent one is
    /// of that type.
    #[inline]
    pub(crate) fn reuse<T: 'static>(&self) -> Option<Box<T>> {
        let mut pool = self.pool.borrow_mut();
        let spent = pool.pop()?;
        match spent.downcast::<T>() {
            Ok(t) => Some(t),
            Err(other) => {
                pool.push(other);
                None
            }
        }
    }

    /// Returns a spent envelope to the pool, up to `capacity` of them.
    #[inline]
    pub(crate) fn recycle(&self, env: Box<dyn Envelope<A>>) {
        let mut pool = self.pool.borrow_mut();
        if pool.len() < self.capacity.get() && !self.is_stopped() {
            pool.push(env.into_any());
        }
    }

    /// Waits until an interrupt is raised (used during restart backoff).
    pub(crate) fn poll_interrupt(&self, cx: &mut TaskContext<'_>) -> Poll<Interrupt> {
        if let Some(i) = self.take_interrupt() {
            return Poll::Ready(i);
        }
        self.park_receiver(cx);
        Poll::Pending
    }

    /// Raises an interrupt; a stop request wins over an escalation.
    pub(crate) fn interrupt(&self, why: Interrupt) {
        if self.is_stopped() {
            return;
        }
        self.with_cold(|c| {
            if c.interrupt.as_ref() != Some(&Interrupt::Stop) {
                c.interrupt = Some(why);
            }
        });
        self.set_flag(INTERRUPTED, true);
        self.set_flag(IDLE, true);
        self.wake_receiver();
    }

    /// Marks the component stopped for good: queued messages are rejected (asks fail
    /// with `Stopped`, tells are counted and logged), and every waiter is woken.
    pub(crate) fn close(&self) {
        self.set_flag(STOPPED, true);
        self.take_interrupt();
        self.pool.borrow_mut().clear();
        let rest: Vec<_> = self.queue.borrow_mut().drain(..).collect();
        let dropped = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        for mut env in rest {
            env.reject();
        }
        self.bump(|c| c.dropped = c.dropped.saturating_add(dropped));
        self.wake_senders(usize::MAX);
        let watchers = self.with_cold(|c| std::mem::take(&mut c.watchers));
        for w in watchers {
            w.wake();
        }
        self.receiver.take();
    }

    pub(crate) fn poll_stopped(&self, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.is_stopped() {
            return Poll::Ready(());
        }
        self.with_cold(|c| c.watchers.push(cx.waker().clone()));
        Poll::Pending
    }
}
