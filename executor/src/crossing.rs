//! A bounded channel from any thread into a container.
//!
//! This is how code outside the container (a user's tokio thread, an HTTP server's
//! worker, a signal handler) hands messages in. The [`Sender`] is `Send + Sync + Clone`;
//! the [`Receiver`] lives on the container's thread and is awaited by one of its tasks.
//!
//! # Guarantees
//!
//! - Messages from one sending thread are received in the order that thread sent them
//!   (one lock orders all pushes).
//! - A full channel refuses at once and gives the message back: nothing is dropped
//!   silently, and a foreign thread never blocks on the container.
//! - A wake from another thread is never lost: the receiver's waker is taken under the
//!   same lock that guards the queue (checked by the loom model `loom_crossing`).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, Mutex, lock};

/// Why [`Sender::try_send`] refused a message; the message comes back.
#[derive(PartialEq, Eq, thiserror::Error)]
pub enum TrySendError<T> {
    /// The channel holds its capacity already; try later.
    #[error("channel full")]
    Full(T),
    /// The receiver is gone (its container stopped); no message will ever be received.
    #[error("channel closed")]
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Closed(t) => t,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

struct State<T> {
    queue: VecDeque<T>,
    waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
}

/// Creates a channel holding at most `capacity` messages (at least 1).
///
/// # Examples
///
/// ```
/// use tern_executor::{Runtime, crossing};
///
/// let rt = Runtime::new().unwrap();
/// let (tx, mut rx) = crossing::channel::<u32>(16);
/// let tx2 = tx.clone();
/// // In real code the sender moves to another thread; it is `Send + Sync`.
/// std::thread::scope(|s| {
///     s.spawn(move || {
///         tx2.try_send(1).unwrap();
///         tx2.try_send(2).unwrap();
///     });
/// });
/// drop(tx);
/// let got = rt.block_on(async {
///     let mut got = Vec::new();
///     while let Some(v) = rx.recv().await {
///         got.push(v);
///     }
///     got
/// });
/// assert_eq!(got, [1, 2]);
/// ```
#[must_use]
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            senders: 1,
            receiver_alive: true,
        }),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

/// The sending half; `Send + Sync + Clone`, usable from any thread.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Queues `msg`, or gives it back at once if the channel is full or closed.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] when `capacity` messages wait already;
    /// [`TrySendError::Closed`] when the receiver was dropped.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut st = lock(&self.shared.state);
            if !st.receiver_alive {
                return Err(TrySendError::Closed(msg));
            }
            if st.queue.len() >= self.shared.capacity {
                return Err(TrySendError::Full(msg));
            }
            st.queue.push_back(msg);
            st.waker.take()
        };
        // Wake outside the lock: the waker may run the scheduler's notify path.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver is gone.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        !lock(&self.shared.state).receiver_alive
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        lock(&self.shared.state).senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut st = lock(&self.shared.state);
            st.senders -= 1;
            if st.senders == 0 {
                st.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving half, owned by one task on the container's thread.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// Takes the next message, or `None` once every sender is gone and the queue is
    /// empty.
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { rx: self }
    }

    /// Takes the next message if one is waiting.
    pub fn try_recv(&mut self) -> Option<T> {
        lock(&self.shared.state).queue.pop_front()
    }

    /// Polls for the next message.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut st = lock(&self.shared.state);
        if let Some(v) = st.queue.pop_front() {
            return Poll::Ready(Some(v));
        }
        if st.senders == 0 {
            return Poll::Ready(None);
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let drained = {
            let mut st = lock(&self.shared.state);
            st.receiver_alive = false;
            st.waker = None;
            std::mem::take(&mut st.queue)
        };
        drop(drained);
    }
}

/// The future of [`Receiver::recv`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Recv<'a, T> {
    rx: &'a mut Receiver<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.rx.poll_recv(cx)
    }
}
