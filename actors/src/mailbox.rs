//! The bounded mailbox and the envelopes it holds.

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
pub(crate) trait Envelope<A: Actor> {
    /// Starts handling: the returned future runs the handler (and sends the reply).
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a>;
    /// The component stopped with this message still queued.
    fn reject(self: Box<Self>);
}

pub(crate) struct TellEnvelope<M>(pub(crate) M);

impl<A: Handler<M>, M: 'static> Envelope<A> for TellEnvelope<M> {
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        Box::pin(async move {
            let _reply = actor.handle(self.0, ctx).await;
        })
    }

    fn reject(self: Box<Self>) {
        tracing::warn!(
            message = std::any::type_name::<M>(),
            "component stopped with a tell queued; message dropped"
        );
    }
}

pub(crate) struct AskEnvelope<M, R> {
    pub(crate) msg: M,
    pub(crate) reply: Responder<R>,
}

impl<A: Handler<M>, M: 'static> Envelope<A> for AskEnvelope<M, A::Reply> {
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> Handling<'a> {
        let Self { msg, reply } = *self;
        Box::pin(async move {
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
        })
    }

    fn reject(self: Box<Self>) {
        // Dropping the responder fails the ask with `Stopped`.
    }
}

/// Lifecycle of a component as its address sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Taking messages (possibly between incarnations, in restart backoff).
    Running,
    /// Stopped for good.
    Stopped,
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
    /// Messages handled to completion (including ones whose handler failed).
    pub handled: u64,
    /// Tells dropped because the component stopped with them queued (each one is also
    /// logged at `warn`).
    pub dropped: u64,
    /// Incarnations started after the first.
    pub restarts: u64,
    /// Handler panics and `Context::fail` calls.
    pub failures: u64,
}

/// The mailbox and lifecycle flags shared by a component's addresses and its task.
pub(crate) struct Mailbox<A: Actor> {
    queue: RefCell<VecDeque<Box<dyn Envelope<A>>>>,
    capacity: Cell<usize>,
    /// The component task's waker, stored once: the task never changes.
    receiver: RefCell<Option<Waker>>,
    /// Whether the component task is waiting for a message (so a send must wake it).
    idle: Cell<bool>,
    /// Senders waiting for room, woken in arrival order.
    senders: RefCell<VecDeque<Waker>>,
    phase: Cell<Phase>,
    interrupt: RefCell<Option<Interrupt>>,
    pub(crate) stats: Cell<ComponentStats>,
    /// Tasks waiting for the component to stop for good.
    watchers: RefCell<Vec<Waker>>,
}

impl<A: Actor> Mailbox<A> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: RefCell::new(VecDeque::new()),
            capacity: Cell::new(capacity.max(1)),
            receiver: RefCell::new(None),
            idle: Cell::new(false),
            senders: RefCell::new(VecDeque::new()),
            phase: Cell::new(Phase::Running),
            interrupt: RefCell::new(None),
            stats: Cell::new(ComponentStats::default()),
            watchers: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut ComponentStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.phase.get() == Phase::Stopped
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
        if self.idle.replace(false)
            && let Some(w) = self.receiver.borrow().as_ref()
        {
            w.wake_by_ref();
        }
    }

    fn wake_senders(&self, n: usize) {
        for _ in 0..n {
            let w = self.senders.borrow_mut().pop_front();
            match w {
                Some(w) => w.wake(),
                None => break,
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
        let mut s = self.senders.borrow_mut();
        if !s.iter().any(|w| w.will_wake(cx.waker())) {
            s.push_back(cx.waker().clone());
        }
    }

    /// The component task takes its next envelope, or learns it must end.
    pub(crate) fn poll_next(
        &self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Result<Box<dyn Envelope<A>>, Interrupt>> {
        if let Some(i) = self.interrupt.borrow_mut().take() {
            return Poll::Ready(Err(i));
        }
        let next = self.queue.borrow_mut().pop_front();
        if let Some(env) = next {
            if !self.senders.borrow().is_empty() {
                self.wake_senders(1);
            }
            return Poll::Ready(Ok(env));
        }
        let mut r = self.receiver.borrow_mut();
        match r.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *r = Some(cx.waker().clone()),
        }
        self.idle.set(true);
        Poll::Pending
    }

    /// Waits until an interrupt is raised (used during restart backoff).
    pub(crate) fn poll_interrupt(&self, cx: &mut TaskContext<'_>) -> Poll<Interrupt> {
        if let Some(i) = self.interrupt.borrow_mut().take() {
            return Poll::Ready(i);
        }
        *self.receiver.borrow_mut() = Some(cx.waker().clone());
        self.idle.set(true);
        Poll::Pending
    }

    /// Raises an interrupt; a stop request wins over an escalation.
    pub(crate) fn interrupt(&self, why: Interrupt) {
        if self.is_stopped() {
            return;
        }
        {
            let mut cur = self.interrupt.borrow_mut();
            if cur.as_ref() != Some(&Interrupt::Stop) {
                *cur = Some(why);
            }
        }
        self.idle.set(true);
        self.wake_receiver();
    }

    /// Marks the component stopped for good: queued messages are rejected (asks fail
    /// with `Stopped`, tells are counted and logged), and every waiter is woken.
    pub(crate) fn close(&self) {
        self.phase.set(Phase::Stopped);
        self.interrupt.borrow_mut().take();
        let rest: Vec<_> = self.queue.borrow_mut().drain(..).collect();
        let mut dropped = 0;
        for env in rest {
            dropped += 1;
            env.reject();
        }
        self.bump(|s| s.dropped += dropped);
        self.wake_senders(usize::MAX);
        for w in self.watchers.borrow_mut().drain(..) {
            w.wake();
        }
        self.receiver.borrow_mut().take();
    }

    pub(crate) fn poll_stopped(&self, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.is_stopped() {
            return Poll::Ready(());
        }
        self.watchers.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}
