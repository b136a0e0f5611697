//! The one-shot slot an ask's reply travels through.

use std::cell::{Cell, RefCell};
use std::task::{Context, Poll, Waker};

use tern_executor::Instant;

use crate::error::AskError;

/// Where a reply goes instead of the slot, for a caller that does not poll (the
/// network side answers a remote ask from here, without a task per ask).
pub(crate) type OnReply<R> = Box<dyn FnOnce(Result<R, AskError>)>;

/// Written once by the handler side, read once by the asker. Single-threaded, so plain
/// cells; the first completion wins.
pub(crate) struct ReplySlot<R> {
    value: RefCell<Option<Result<R, AskError>>>,
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
    on_reply: RefCell<Option<OnReply<R>>>,
    /// When the asker gives up: a message still queued then is not handled; the slot
    /// completes with [`AskError::Timeout`] instead.
    deadline: Cell<Option<Instant>>,
}

impl<R> ReplySlot<R> {
    pub(crate) fn new() -> Self {
        Self {
            value: RefCell::new(None),
            done: Cell::new(false),
            waker: RefCell::new(None),
            on_reply: RefCell::new(None),
            deadline: Cell::new(None),
        }
    }

    /// A slot whose reply goes to `on_reply`, and whose message is not handled once
    /// `deadline` has passed.
    pub(crate) fn with_callback(on_reply: OnReply<R>, deadline: Option<Instant>) -> Self {
        let slot = Self::new();
        *slot.on_reply.borrow_mut() = Some(on_reply);
        slot.deadline.set(deadline);
        slot
    }

    /// Whether the asker's deadline has passed (the message should not be handled).
    pub(crate) fn expired(&self) -> bool {
        self.deadline
            .get()
            .is_some_and(|d| tern_executor::time::now() >= d)
    }

    pub(crate) fn complete(&self, v: Result<R, AskError>) {
        if self.done.replace(true) {
            return;
        }
        let on_reply = self.on_reply.borrow_mut().take();
        if let Some(f) = on_reply {
            f(v);
            return;
        }
        *self.value.borrow_mut() = Some(v);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<R, AskError>> {
        if let Some(v) = self.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        let mut w = self.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Held by the envelope side; if it is dropped without a reply (the message was
/// rejected, or its handler future was cancelled), the asker gets `AskError::Stopped`.
pub(crate) struct Responder<R> {
    pub(crate) slot: std::rc::Rc<ReplySlot<R>>,
}

impl<R> Drop for Responder<R> {
    fn drop(&mut self) {
        self.slot.complete(Err(AskError::Stopped));
    }
}
