//! Entry into a container from other threads.

use std::any::Any;
use std::fmt;
use std::future::IntoFuture;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tern_executor::crossing::{self, TrySendError};

use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::{AskError, SendError};

/// Capacity of the channel behind one [`RemoteAddr`].
pub const REMOTE_CHANNEL_CAPACITY: usize = 1024;

type Job<A> = Box<dyn Deliver<A> + Send>;

trait Deliver<A: Actor> {
    fn deliver(self: Box<Self>, addr: &Addr<A>) -> Pin<Box<dyn Future<Output = ()> + '_>>;
    /// For getting the message back out of a refused job.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    /// The component stopped before this job could be delivered.
    fn reject(self: Box<Self>, component: u64);
}

struct TellJob<M>(M);

impl<A: Handler<M>, M: 'static> Deliver<A> for TellJob<M> {
    fn deliver(self: Box<Self>, addr: &Addr<A>) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(async move {
            if let Err(e) = addr.tell(self.0).await {
                tracing::warn!(component = addr.id(), error = %e, "message from another thread dropped");
            }
        })
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn reject(self: Box<Self>, component: u64) {
        tracing::warn!(
            component,
            message = std::any::type_name::<M>(),
            "component stopped; message from another thread dropped"
        );
    }
}

struct AskJob<M, R> {
    msg: M,
    reply: ReplyTx<R>,
}

impl<A: Handler<M>, M: 'static> Deliver<A> for AskJob<M, A::Reply>
where
    A::Reply: Send,
    M: 'static,
{
    fn deliver(self: Box<Self>, addr: &Addr<A>) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        let Self { msg, reply } = *self;
        let mut ask = addr.ask(msg).into_future();
        Box::pin(async move {
            // Queue the ask before the next job from this channel (waiting for room if
            // the mailbox is full), so one thread's order holds across asks and tells;
            // then wait for the reply in a task of its own, so one slow reply does not
            // hold up later messages.
            let done = poll_fn(|cx| match Pin::new(&mut ask).poll(cx) {
                Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
                Poll::Pending if ask.is_queued() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            })
            .await;
            match done {
                Some(outcome) => reply.send(outcome),
                None => tern_executor::spawn(async move { reply.send(ask.await) }).detach(),
            }
        })
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
    fn reject(self: Box<Self>, _component: u64) {
        // Dropping the reply sender answers the asker with `AskError::Stopped`.
    }
}

/// A `Send + Sync` handle that lets any thread send to a component.
///
/// Get one with [`Addr::remote`]. Messages sent through one `RemoteAddr` (and its
/// clones) from one thread arrive in the order sent. A full channel refuses at once
/// and gives the message back; a foreign thread never blocks on the container.
///
/// # Examples
///
/// ```
/// use tern_actors::{Actor, Context, Handler, spawn};
///
/// struct Sum(u64);
/// impl Actor for Sum {}
/// impl Handler<u64> for Sum {
///     type Reply = u64;
///     async fn handle(&mut self, n: u64, _: &mut Context<Self>) -> u64 { self.0 += n; self.0 }
/// }
///
/// let rt = tern_executor::Runtime::new().unwrap();
/// let (sum, remote) = rt.block_on(async {
///     let sum = spawn(Sum(0));
///     let remote = sum.remote();
///     (sum, remote)
/// });
/// let reply = std::thread::scope(|s| {
///     s.spawn(move || {
///         remote.try_tell(1).unwrap();
///         remote.ask(2).unwrap() // a Send future, for any executor
///     })
///     .join()
///     .unwrap()
/// });
/// assert_eq!(rt.block_on(reply), Ok(3));
/// # drop(sum);
/// ```
pub struct RemoteAddr<A: Actor> {
    tx: crossing::Sender<Job<A>>,
}

impl<A: Actor> Clone for RemoteAddr<A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<A: Actor> fmt::Debug for RemoteAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAddr")
            .field("component", &std::any::type_name::<A>())
            .finish()
    }
}

/// Gives back the message of a job the channel refused.
fn refused<A: Actor, J: 'static, M>(
    e: TrySendError<Job<A>>,
    unwrap: impl FnOnce(J) -> M,
) -> Result<SendError<M>, ()> {
    let (job, full) = match e {
        TrySendError::Full(j) => (j, true),
        TrySendError::Closed(j) => (j, false),
    };
    let job = job.into_any().downcast::<J>().map_err(|_| ())?;
    let msg = unwrap(*job);
    Ok(if full {
        SendError::Full(msg)
    } else {
        SendError::Stopped(msg)
    })
}

impl<A: Actor> RemoteAddr<A> {
    pub(crate) fn new(addr: &Addr<A>) -> Self {
        let (tx, mut rx) = crossing::channel::<Job<A>>(REMOTE_CHANNEL_CAPACITY);
        let addr = addr.clone();
        tern_executor::spawn(async move {
            while let Some(job) = rx.recv().await {
                job.deliver(&addr).await;
                if addr.is_stopped() {
                    break;
                }
            }
            // Whatever arrived meanwhile is rejected, not dropped silently; closing the
            // channel then refuses later sends with `Stopped`.
            while let Some(job) = rx.try_recv() {
                job.reject(addr.id());
            }
        })
        .detach();
        Self { tx }
    }

    /// Sends `msg` without waiting.
    ///
    /// # Errors
    ///
    /// [`SendError::Full`] when the channel into the container is full;
    /// [`SendError::Stopped`] when the component or its container is gone. (A full
    /// *mailbox* is absorbed: the container waits for room up to the component's
    /// default timeout, and logs a drop past it.)
    pub fn try_tell<M: Send + 'static>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
    {
        self.tx.try_send(Box::new(TellJob(msg))).map_err(|e| {
            refused::<A, TellJob<M>, M>(e, |j| j.0)
                .unwrap_or_else(|()| unreachable!("a refused job has the type it was sent as"))
        })
    }

    /// Sends `msg` and returns a `Send` future of the reply, usable on any executor.
    ///
    /// # Errors
    ///
    /// As [`RemoteAddr::try_tell`]; the future itself resolves to an [`AskError`].
    pub fn ask<M: Send + 'static>(&self, msg: M) -> Result<RemoteReply<A::Reply>, SendError<M>>
    where
        A: Handler<M>,
        A::Reply: Send,
    {
        let shared = Arc::new(Mutex::new(ReplyState::<A::Reply>::default()));
        let job = AskJob {
            msg,
            reply: ReplyTx(Some(shared.clone())),
        };
        self.tx.try_send(Box::new(job)).map_err(|e| {
            refused::<A, AskJob<M, A::Reply>, M>(e, |j| {
                let AskJob { msg, mut reply } = j;
                reply.0 = None; // refused: nobody waits for this reply
                msg
            })
            .unwrap_or_else(|()| unreachable!("a refused job has the type it was sent as"))
        })?;
        Ok(RemoteReply { shared })
    }
}

struct ReplyState<R> {
    value: Option<Result<R, AskError>>,
    waker: Option<Waker>,
}

impl<R> Default for ReplyState<R> {
    fn default() -> Self {
        Self {
            value: None,
            waker: None,
        }
    }
}

/// The container side of a cross-thread reply; dropping it unanswered reports
/// [`AskError::Stopped`].
struct ReplyTx<R>(Option<Arc<Mutex<ReplyState<R>>>>);

impl<R> ReplyTx<R> {
    fn send(mut self, v: Result<R, AskError>) {
        if let Some(s) = self.0.take() {
            fill(&s, v);
        }
    }
}

fn fill<R>(s: &Mutex<ReplyState<R>>, v: Result<R, AskError>) {
    let waker = {
        let mut st = s.lock().unwrap_or_else(PoisonError::into_inner);
        if st.value.is_none() {
            st.value = Some(v);
        }
        st.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

impl<R> Drop for ReplyTx<R> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            fill(&s, Err(AskError::Stopped));
        }
    }
}

/// The reply to [`RemoteAddr::ask`]: a `Send` future for any executor.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct RemoteReply<R> {
    shared: Arc<Mutex<ReplyState<R>>>,
}

impl<R> fmt::Debug for RemoteReply<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteReply").finish_non_exhaustive()
    }
}

impl<R> Future for RemoteReply<R> {
    type Output = Result<R, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match st.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl<A: Actor> Addr<A> {
    /// A handle other threads can use to send to this component; see [`RemoteAddr`].
    ///
    /// # Panics
    ///
    /// Outside the component's runtime.
    #[must_use]
    pub fn remote(&self) -> RemoteAddr<A> {
        RemoteAddr::new(self)
    }
}
