//! Where a remote ask's outcome lands.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

use tern_proto::session::Reply;

use super::error::CallError;

/// One remote ask: the component it is for, the wire id once sent, and its outcome.
#[derive(Debug)]
pub(crate) struct CallSlot {
    pub(crate) component: String,
    /// The session's ask id, once the request left (`None` while it waits for its
    /// component name).
    pub(crate) id: Cell<Option<u64>>,
    /// The node the request went to.
    pub(crate) node: RefCell<String>,
    /// The caller gave up (deadline or drop): a waiting request is not sent.
    pub(crate) abandoned: Cell<bool>,
    outcome: RefCell<Option<Result<Reply, CallError>>>,
    waker: RefCell<Option<Waker>>,
}

impl CallSlot {
    pub(crate) fn new(component: &str) -> Self {
        Self {
            component: component.to_owned(),
            id: Cell::new(None),
            node: RefCell::new(String::new()),
            abandoned: Cell::new(false),
            outcome: RefCell::new(None),
            waker: RefCell::new(None),
        }
    }

    /// Sets the outcome (the first one wins) and wakes the caller.
    pub(crate) fn complete(&self, outcome: Result<Reply, CallError>) {
        {
            let mut slot = self.outcome.borrow_mut();
            if slot.is_some() {
                return;
            }
            *slot = Some(outcome);
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.abandoned.get() || self.outcome.borrow().is_some()
    }

    pub(crate) async fn wait(&self) -> Result<Reply, CallError> {
        poll_fn(|cx| {
            if let Some(outcome) = self.outcome.borrow_mut().take() {
                return Poll::Ready(outcome);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}
