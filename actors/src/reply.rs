//! The one-shot slot an ask's reply travels through.

use std::cell::{Cell, RefCell};
use std::task::{Context, Poll, Waker};

use crate::error::AskError;

/// Written once by the handler side, read once by the asker. Single-threaded, so plain
/// cells; the first completion wins.
pub(crate) struct ReplySlot<R> {
    value: RefCell<Option<Result<R, AskError>>>,
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl<R> ReplySlot<R> {
    pub(crate) fn new() -> Self {
        Self {
            value: RefCell::new(None),
            done: Cell::new(false),
            waker: RefCell::new(None),
        }
    }

    pub(crate) fn complete(&self, v: Result<R, AskError>) {
        if self.done.replace(true) {
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
