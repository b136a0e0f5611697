//! Streamed, lazy replies with credit-based backpressure.
//!
//! A message that is answered with a stream of items implements [`StreamMessage`]
//! (its [`Item`](StreamMessage::Item) type), and the component handles it wrapped in
//! [`Streaming`], which carries the message and an [`Emitter`] for the items. The caller
//! gets an [`ItemStream`] from [`Addr::ask_stream`] (or a
//! [`RefStream`](crate::remote::RefStream) from
//! [`Ref::ask_stream`](crate::remote::Ref::ask_stream), the same across the network):
//! a [`Stream`] of `Result<Item, _>` that it consumes at its own pace.
//!
//! ```
//! use futures_lite::StreamExt;
//! use tern_actors::{Actor, Context, Handler, StreamMessage, Streaming, spawn};
//!
//! struct Table { rows: Vec<u32> }
//! impl Actor for Table {}
//!
//! struct Scan;
//! impl StreamMessage for Scan { type Item = u32; }
//!
//! impl Handler<Streaming<Scan>> for Table {
//!     type Reply = ();
//!     async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
//!         let (_scan, mut out) = req.into_parts();
//!         // Borrows the state: the component is busy until the stream ends.
//!         for row in &self.rows {
//!             if out.send(*row).await.is_err() {
//!                 return; // the caller cancelled
//!             }
//!         }
//!         out.end();
//!     }
//! }
//!
//! tern_executor::Runtime::new().unwrap().block_on(async {
//!     let table = spawn(Table { rows: vec![1, 2, 3] });
//!     let rows: Vec<_> = table.ask_stream(Scan).credit(2).collect().await;
//!     assert_eq!(rows, vec![Ok(1), Ok(2), Ok(3)]);
//! });
//! ```
//!
//! # Guarantees
//!
//! - **Lazy, bounded by credit.** The caller grants a window of credit
//!   ([`ItemStream::credit`], default [`DEFAULT_CREDIT`]) when it first polls, and
//!   grants more as it consumes (half a window at a time). [`Emitter::send`] waits for
//!   credit, and a detached stream ([`Emitter::detach`]) is polled only while there is
//!   credit, so at most one window of items exists between producer and consumer. A
//!   stalled caller stalls the producer; nothing buffers without bound.
//! - **Order**: items arrive in the order sent, each once.
//! - **Every stream ends, exactly once**: normally after [`Emitter::end`], or with a
//!   typed [`StreamError`]: the producer failed ([`Emitter::fail`]), dropped its emitter
//!   without ending ([`StreamError::Abandoned`], also after a panic), the component
//!   stopped before handling the request, or a deadline passed.
//! - **Cancellation**: dropping the [`ItemStream`] cancels the producer at once:
//!   queued items are freed, a waiting [`Emitter::send`] returns
//!   [`Cancelled`], and a detached stream is dropped the next time its task is polled
//!   (it is woken immediately).
//! - **Deadlines**: [`ItemStream::timeout`] bounds the whole stream, from the first poll;
//!   [`ItemStream::idle_timeout`] bounds each wait for the next item, counted only while
//!   the caller waits (a caller that stops polling never times itself out). Default: no
//!   whole-stream deadline, and the component's default timeout between items.
//!
//! # Borrowed or detached: the one-message-at-a-time trade-off
//!
//! A handler that sends items itself, from its own state (above), keeps the component
//! busy until the stream ends: it takes no other message meanwhile, which is what lets
//! it borrow `&mut self` safely, and also what makes a slow consumer slow down every
//! other caller of the component. A handler that moves owned data into a stream and
//! hands it to [`Emitter::detach`] returns at once: the component takes its next
//! message while a separate task feeds the caller, at the price of copying (or
//! snapshotting) what the stream needs. Choose detached for long or slow streams.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use futures_lite::Stream;
use tern_executor::time::{self, Sleep};

use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::SendError;

/// The credit window of a stream that sets none: items the producer may run ahead of
/// the consumer.
pub const DEFAULT_CREDIT: u32 = 16;

/// A message answered with a stream of [`Item`](Self::Item)s. Handle it as
/// [`Handler<Streaming<M>>`](Streaming).
pub trait StreamMessage: 'static {
    /// What the stream yields.
    type Item: 'static;
}

/// Why a stream ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The producer ended the stream with an error ([`Emitter::fail`]).
    #[error("the stream failed: {0}")]
    Failed(String),
    /// The producer dropped its [`Emitter`] without [`Emitter::end`]: its handler
    /// returned early or panicked. The items received are not the whole stream.
    #[error("the producer stopped without ending the stream")]
    Abandoned,
    /// The handler panicked while producing.
    #[error("handler panicked: {0}")]
    HandlerPanicked(String),
    /// The component had stopped, or stopped before handling the request.
    #[error("component stopped")]
    Stopped,
    /// The component's mailbox was full; nothing was sent.
    #[error("mailbox full")]
    MailboxFull,
    /// The whole-stream deadline ([`ItemStream::timeout`]) passed.
    #[error("the stream's deadline passed")]
    Timeout,
    /// No item came within the idle timeout ([`ItemStream::idle_timeout`]).
    #[error("no item within the idle timeout")]
    Idle,
}

/// The caller no longer wants the stream: stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream was cancelled by its caller")]
pub struct Cancelled;

struct Inner<T> {
    queue: VecDeque<T>,
    credit: u64,
    end: Option<Result<(), StreamError>>,
    cancelled: bool,
    producer: Option<Waker>,
    consumer: Option<Waker>,
}

/// The state shared by one stream's producer and consumer.
pub(crate) struct Chan<T> {
    inner: RefCell<Inner<T>>,
}

fn wake(w: Option<Waker>) {
    if let Some(w) = w {
        w.wake();
    }
}

impl<T> Chan<T> {
    pub(crate) fn new(credit: u64) -> Rc<Self> {
        Rc::new(Self {
            inner: RefCell::new(Inner {
                queue: VecDeque::new(),
                credit,
                end: None,
                cancelled: false,
                producer: None,
                consumer: None,
            }),
        })
    }

    /// Lets the producer send `n` more items.
    pub(crate) fn grant(&self, n: u64) {
        let w = {
            let mut i = self.inner.borrow_mut();
            i.credit = i.credit.saturating_add(n);
            i.producer.take()
        };
        wake(w);
    }

    /// The consumer is gone: free the queue and wake the producer (and whoever
    /// forwards its items).
    pub(crate) fn cancel(&self) {
        let (p, c, queue) = {
            let mut i = self.inner.borrow_mut();
            i.cancelled = true;
            (
                i.producer.take(),
                i.consumer.take(),
                std::mem::take(&mut i.queue),
            )
        };
        drop(queue);
        wake(p);
        wake(c);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.inner.borrow().cancelled
    }

    /// Items queued for the consumer now.
    pub(crate) fn queued(&self) -> usize {
        self.inner.borrow().queue.len()
    }

    fn poll_credit(&self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Cancelled>> {
        let mut i = self.inner.borrow_mut();
        if i.cancelled || i.end.is_some() {
            return Poll::Ready(Err(Cancelled));
        }
        if i.credit > 0 {
            return Poll::Ready(Ok(()));
        }
        i.producer = Some(cx.waker().clone());
        Poll::Pending
    }

    fn push(&self, item: T) -> Result<(), Cancelled> {
        let w = {
            let mut i = self.inner.borrow_mut();
            if i.cancelled || i.end.is_some() {
                return Err(Cancelled);
            }
            i.credit = i.credit.saturating_sub(1);
            i.queue.push_back(item);
            i.consumer.take()
        };
        wake(w);
        Ok(())
    }

    /// Ends the stream (the first end wins; nothing after a cancel).
    pub(crate) fn finish(&self, result: Result<(), StreamError>) {
        let w = {
            let mut i = self.inner.borrow_mut();
            if i.end.is_some() || i.cancelled {
                return;
            }
            i.end = Some(result);
            i.consumer.take()
        };
        wake(w);
    }

    /// The next item, or the end: `None` after a normal end, `Some(Err(_))` once after
    /// a failed one (then `None`).
    pub(crate) fn poll_next(
        &self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<T, StreamError>>> {
        let mut i = self.inner.borrow_mut();
        if let Some(item) = i.queue.pop_front() {
            return Poll::Ready(Some(Ok(item)));
        }
        if i.cancelled {
            return Poll::Ready(None);
        }
        match i.end.take() {
            Some(Ok(())) => {
                i.end = Some(Ok(()));
                Poll::Ready(None)
            }
            Some(Err(e)) => {
                i.end = Some(Ok(()));
                Poll::Ready(Some(Err(e)))
            }
            None => {
                i.consumer = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Registers the producer's waker, so that a cancel wakes it.
    fn watch(&self, cx: &mut TaskContext<'_>) {
        self.inner.borrow_mut().producer = Some(cx.waker().clone());
    }
}

/// The producer's end of a stream: send items as credit allows, then [`end`](Self::end)
/// (or [`fail`](Self::fail)), or hand the work to a task with [`detach`](Self::detach).
///
/// Dropping an emitter without ending it ends the stream with
/// [`StreamError::Abandoned`], so a truncated stream never looks complete.
pub struct Emitter<T> {
    chan: Rc<Chan<T>>,
    done: bool,
}

impl<T> fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.chan.inner.borrow();
        f.debug_struct("Emitter")
            .field("credit", &i.credit)
            .field("queued", &i.queue.len())
            .field("cancelled", &i.cancelled)
            .finish()
    }
}

impl<T: 'static> Emitter<T> {
    pub(crate) fn new(chan: Rc<Chan<T>>) -> Self {
        Self { chan, done: false }
    }

    /// Waits until the caller has granted credit for another item, so the item is
    /// computed only when wanted.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] when the caller is gone (or the stream has ended).
    pub async fn ready(&self) -> Result<(), Cancelled> {
        poll_fn(|cx| self.chan.poll_credit(cx)).await
    }

    /// Sends one item, first waiting for credit.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] when the caller is gone: stop producing.
    pub async fn send(&mut self, item: T) -> Result<(), Cancelled> {
        self.ready().await?;
        self.chan.push(item)
    }

    /// Credit left: items that may be sent without waiting.
    #[must_use]
    pub fn credit(&self) -> u64 {
        self.chan.inner.borrow().credit
    }

    /// Whether the caller has cancelled the stream.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.chan.is_cancelled()
    }

    /// Ends the stream normally, after the items sent.
    pub fn end(mut self) {
        self.done = true;
        self.chan.finish(Ok(()));
    }

    /// Ends the stream with an error, after the items sent.
    pub fn fail(mut self, detail: impl Into<String>) {
        self.done = true;
        self.chan.finish(Err(StreamError::Failed(detail.into())));
    }

    /// Feeds the caller from `items` on a separate task and returns at once, so the
    /// handler can return and the component take its next message. `items` is polled
    /// only while the caller has granted credit (lazy), ends the stream when it ends,
    /// and is dropped as soon as the caller cancels.
    pub fn detach<S>(self, items: S)
    where
        S: Stream<Item = T> + 'static,
    {
        self.detach_fallible(futures_lite::StreamExt::map(items, Ok::<T, String>));
    }

    /// Like [`detach`](Self::detach), for a stream whose items may fail: the first
    /// `Err` ends the stream with [`StreamError::Failed`].
    pub fn detach_fallible<S, E>(mut self, items: S)
    where
        S: Stream<Item = Result<T, E>> + 'static,
        E: fmt::Display,
    {
        self.done = true;
        let chan = self.chan.clone();
        tern_executor::spawn(async move {
            let mut items = std::pin::pin!(items);
            loop {
                if poll_fn(|cx| chan.poll_credit(cx)).await.is_err() {
                    return;
                }
                // Poll the source, but give up at once if the caller cancels.
                let next = poll_fn(|cx| {
                    if chan.is_cancelled() {
                        return Poll::Ready(None);
                    }
                    chan.watch(cx);
                    items.as_mut().poll_next(cx).map(Some)
                })
                .await;
                match next {
                    None => return,
                    Some(None) => return chan.finish(Ok(())),
                    Some(Some(Ok(item))) => {
                        if chan.push(item).is_err() {
                            return;
                        }
                    }
                    Some(Some(Err(e))) => {
                        return chan.finish(Err(StreamError::Failed(e.to_string())));
                    }
                }
            }
        })
        .detach();
    }
}

impl<T> Drop for Emitter<T> {
    fn drop(&mut self) {
        if !self.done {
            let why = if std::thread::panicking() {
                StreamError::HandlerPanicked("panicked while producing a stream".into())
            } else {
                StreamError::Abandoned
            };
            self.chan.finish(Err(why));
        }
    }
}

/// A stream request as its handler receives it: the message and the [`Emitter`] for
/// its items. Take both with [`into_parts`](Self::into_parts).
///
/// A request dropped unhandled (its component stopped first) ends the caller's stream
/// with [`StreamError::Stopped`].
pub struct Streaming<M: StreamMessage> {
    msg: Option<M>,
    out: Option<Emitter<M::Item>>,
}

impl<M: StreamMessage> fmt::Debug for Streaming<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streaming")
            .field("message", &std::any::type_name::<M>())
            .finish_non_exhaustive()
    }
}

impl<M: StreamMessage> Streaming<M> {
    pub(crate) fn new(msg: M, chan: Rc<Chan<M::Item>>) -> Self {
        Self {
            msg: Some(msg),
            out: Some(Emitter::new(chan)),
        }
    }

    /// The message and the emitter for its items.
    ///
    /// # Panics
    ///
    /// Never: both are present until this consumes the request.
    #[must_use]
    #[allow(clippy::missing_panics_doc)]
    pub fn into_parts(mut self) -> (M, Emitter<M::Item>) {
        match (self.msg.take(), self.out.take()) {
            (Some(m), Some(o)) => (m, o),
            _ => unreachable!("a Streaming request is taken apart once"),
        }
    }
}

impl<M: StreamMessage> Drop for Streaming<M> {
    fn drop(&mut self) {
        if let Some(mut out) = self.out.take() {
            out.done = true;
            out.chan.finish(Err(StreamError::Stopped));
        }
    }
}

/// The caller's end of an in-process stream: a [`Stream`] of `Result<Item,
/// StreamError>`, from [`Addr::ask_stream`]. Set the credit window and deadlines before
/// the first poll; dropping it cancels the producer.
#[must_use = "streams do nothing unless polled"]
pub struct ItemStream<T> {
    chan: Rc<Chan<T>>,
    window: u32,
    unacked: u32,
    started: bool,
    done: bool,
    failed: Option<StreamError>,
    timeout: Option<Duration>,
    idle: Option<Duration>,
    deadline: Option<Sleep>,
    idle_sleep: Option<Sleep>,
}

impl<T> fmt::Debug for ItemStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemStream")
            .field("window", &self.window)
            .field("queued", &self.chan.queued())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T> ItemStream<T> {
    pub(crate) fn new(chan: Rc<Chan<T>>, idle: Option<Duration>) -> Self {
        Self {
            chan,
            window: DEFAULT_CREDIT,
            unacked: 0,
            started: false,
            done: false,
            failed: None,
            timeout: None,
            idle,
            deadline: None,
            idle_sleep: None,
        }
    }

    /// Sets the window and deadlines (before the first poll).
    pub(crate) fn configure(&mut self, window: u32, timeout: Option<Duration>, idle: Duration) {
        self.window = window.max(1);
        self.timeout = timeout;
        self.idle = Some(idle);
    }

    fn failed(error: StreamError) -> Self {
        let mut s = Self::new(Chan::new(0), None);
        s.failed = Some(error);
        s
    }

    /// The credit window: how many items the producer may run ahead (at least 1).
    pub fn credit(mut self, window: u32) -> Self {
        self.window = window.max(1);
        self
    }

    /// The deadline of the whole stream, from its first poll.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The longest wait for each next item while the caller waits for it.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Items received and not yet taken (never more than the window).
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.chan.queued()
    }

    fn stop(&mut self, error: StreamError) -> Poll<Option<Result<T, StreamError>>> {
        self.done = true;
        self.chan.cancel();
        Poll::Ready(Some(Err(error)))
    }
}

fn fired(sleep: &mut Option<Sleep>, cx: &mut TaskContext<'_>) -> bool {
    sleep
        .as_mut()
        .is_some_and(|s| Pin::new(s).poll(cx).is_ready())
}

impl<T> Stream for ItemStream<T> {
    type Item = Result<T, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(e) = this.failed.take() {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if !this.started {
            this.started = true;
            this.chan.grant(u64::from(this.window));
            this.deadline = this.timeout.map(time::sleep);
        }
        match this.chan.poll_next(cx) {
            Poll::Ready(Some(Ok(item))) => {
                this.idle_sleep = None;
                this.unacked += 1;
                if this.unacked >= (this.window / 2).max(1) {
                    this.chan.grant(u64::from(this.unacked));
                    this.unacked = 0;
                }
                return Poll::Ready(Some(Ok(item)));
            }
            Poll::Ready(end) => {
                this.done = true;
                return Poll::Ready(end);
            }
            Poll::Pending => {}
        }
        if fired(&mut this.deadline, cx) {
            return this.stop(StreamError::Timeout);
        }
        if let Some(idle) = this.idle {
            this.idle_sleep.get_or_insert_with(|| time::sleep(idle));
            if fired(&mut this.idle_sleep, cx) {
                return this.stop(StreamError::Idle);
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for ItemStream<T> {
    fn drop(&mut self) {
        if !self.done {
            self.chan.cancel();
        }
    }
}

impl<A: Actor> Addr<A> {
    /// Sends `msg` and returns its streamed reply, lazily: the producer computes items
    /// as the returned stream is polled, within its credit window
    /// ([`ItemStream::credit`]). The request is queued now; a full mailbox or a stopped
    /// component makes the stream's only item an error. See the [module docs](crate::stream)
    /// for deadlines and cancellation.
    pub fn ask_stream<M>(&self, msg: M) -> ItemStream<M::Item>
    where
        A: Handler<Streaming<M>>,
        M: StreamMessage,
    {
        let chan = Chan::new(0);
        match self.try_tell(Streaming::new(msg, chan.clone())) {
            Ok(()) => ItemStream::new(chan, Some(self.default_timeout())),
            Err(e) => {
                // The request is dropped with the error; its emitter must not report.
                let error = match &e {
                    SendError::Full(_) => StreamError::MailboxFull,
                    SendError::Stopped(_) | SendError::Timeout(_) => StreamError::Stopped,
                };
                drop(e);
                ItemStream::failed(error)
            }
        }
    }
}
