//! Spawning tasks and joining them.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use futures_lite::FutureExt;

use crate::runtime::Core;

/// Why a task produced no value.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The task panicked; the payload's message, if it was a string, is kept.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The task was aborted through [`JoinHandle::abort`] before it finished, or its
    /// runtime shut down first.
    #[error("task aborted")]
    Aborted,
}

/// Turns a panic payload into its message.
#[must_use]
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

type Caught<T> = Result<T, Box<dyn Any + Send>>;

/// An owned permission to await a task's result.
///
/// - Await it to get the task's output, or [`JoinError::Panicked`] if the task panicked
///   (the runtime keeps running either way).
/// - **Dropping it cancels the task**: its future is dropped at once, on this thread, and
///   it is never polled again. Call [`JoinHandle::detach`] to let the task run on.
/// - [`JoinHandle::abort`] cancels the task and makes the handle resolve to
///   [`JoinError::Aborted`].
#[must_use = "dropping a JoinHandle cancels its task; call `.detach()` to let it run in the background"]
pub struct JoinHandle<T> {
    task: Option<async_task::FallibleTask<Caught<T>>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    /// Lets the task run to completion with nobody awaiting it. A panic in a detached
    /// task is logged at `error` level and counted in the runtime's stats.
    pub fn detach(mut self) {
        if let Some(t) = self.task.take() {
            t.detach();
        }
    }

    /// Cancels the task: its future is dropped now if it is not running, and the
    /// handle resolves to [`JoinError::Aborted`]. Aborting a finished task drops its
    /// output.
    pub fn abort(&mut self) {
        self.task = None;
    }

    /// Whether the task has finished (or was aborted).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task
            .as_ref()
            .is_none_or(async_task::FallibleTask::is_finished)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(Err(JoinError::Aborted));
        };
        match Pin::new(task).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                self.task = None;
                Poll::Ready(match out {
                    Some(Ok(v)) => Ok(v),
                    Some(Err(p)) => Err(JoinError::Panicked(panic_message(&*p))),
                    // Cancelled without output: its runtime shut down first.
                    None => Err(JoinError::Aborted),
                })
            }
        }
    }
}

/// Removes a task from the runtime's live set when its future is dropped (finished or
/// cancelled), on the runtime's thread.
struct Tracked {
    core: Weak<Core>,
    index: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade()
            && let Ok(mut tasks) = core.tasks.try_borrow_mut()
            && tasks.contains(self.index)
        {
            tasks.remove(self.index);
            core.bump(|s| s.tasks_alive = tasks.len() as u64);
        }
    }
}

pin_project_lite::pin_project! {
    /// A spawned future with its panic caught and its live-set entry attached.
    ///
    /// Written by hand rather than as an `async` block: an `async` block that awaits
    /// its captured future stores it twice, doubling every task's size.
    struct Wrapped<F> {
        tracked: Tracked,
        #[pin]
        inner: futures_lite::future::CatchUnwind<AssertUnwindSafe<F>>,
    }
}

impl<F: Future> Future for Wrapped<F> {
    type Output = Caught<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Err(p) = &out {
            let msg = panic_message(&**p);
            tracing::error!(panic = %msg, "task panicked");
            if let Some(core) = this.tracked.core.upgrade() {
                core.bump(|s| s.tasks_panicked += 1);
            }
        }
        Poll::Ready(out)
    }
}

pub(crate) fn spawn_on<F>(core: &Rc<Core>, future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let index = core.tasks.borrow().vacant_key();
    let tracked = Tracked {
        core: Rc::downgrade(core),
        index,
    };
    let wrapped = Wrapped {
        tracked,
        inner: AssertUnwindSafe(future).catch_unwind(),
    };
    let remote = core.remote.clone();
    let (runnable, task) = async_task::spawn_local(wrapped, move |r| remote.schedule(r));
    {
        let mut tasks = core.tasks.borrow_mut();
        let got = tasks.insert(runnable.waker());
        debug_assert_eq!(got, index);
        let alive = tasks.len() as u64;
        core.bump(|s| {
            s.tasks_spawned += 1;
            s.tasks_alive = alive;
        });
    }
    core.local.borrow_mut().push_back(runnable);
    JoinHandle {
        task: Some(task.fallible()),
    }
}
