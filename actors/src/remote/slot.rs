//! Where a remote ask's outcome lands.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use tern_proto::session::Reply;

use super::error::CallError;
use super::router::AskSlot;

/// One remote ask: the wire id once sent, and its outcome.
#[derive(Debug, Default)]
pub(crate) struct CallSlot {
    /// The session's ask id, once the request left (`None` while it waits for its
    /// component name).
    pub(crate) id: Cell<Option<u64>>,
    /// The caller gave up (it dropped the ask): a waiting request is not sent.
    pub(crate) abandoned: Cell<bool>,
    outcome: RefCell<Option<Result<Reply, CallError>>>,
    /// Set once the outcome has been taken by the caller.
    taken: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl CallSlot {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Sets the outcome (the first one wins) and wakes the caller.
    pub(crate) fn complete(&self, outcome: Result<Reply, CallError>) {
        {
            let mut slot = self.outcome.borrow_mut();
            if slot.is_some() || self.taken.get() {
                return;
            }
            *slot = Some(outcome);
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Whether the ask has its outcome (or its caller left).
    pub(crate) fn is_done(&self) -> bool {
        self.abandoned.get() || self.taken.get() || self.outcome.borrow().is_some()
    }

    pub(crate) async fn wait(&self) -> Result<Reply, CallError> {
        poll_fn(|cx| {
            if let Some(outcome) = self.outcome.borrow_mut().take() {
                self.taken.set(true);
                return Poll::Ready(outcome);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl AskSlot for Rc<CallSlot> {
    fn sent(&self, id: u64) {
        self.id.set(Some(id));
    }

    fn is_abandoned(&self) -> bool {
        self.is_done()
    }
}
