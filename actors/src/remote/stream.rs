//! Streamed replies across the network: the caller's [`RefStream`], the producer's
//! side of an export ([`ExportBuilder::accept_stream`]), and a stream opened on this
//! node without encoding.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use futures_lite::Stream;
use tern_executor::time::{self, Sleep};
use tern_proto::session::{Outgoing, Reply};

use super::codec::{Codec, CodecError, RemoteMessage, With};
use super::error::CallError;
use super::export::{Encoded, ExportBuilder};
use super::node::Node;
use super::reference::Ref;
use super::router::StreamSlot;
use super::service::AcceptsStream;
use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::SendError;
use crate::stream::{Chan, DEFAULT_CREDIT, ItemStream, StreamMessage, Streaming};

/// The producer side of one remote stream, type-erased for the node: items come out
/// encoded, credit and cancels go in.
pub(crate) trait Source {
    /// The next encoded item, the end (`None`), or why the stream failed.
    fn poll_item(&self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Encoded, CallError>>>;
    /// The caller granted `n` more items.
    fn grant(&self, n: u64);
    /// The caller is gone: stop the producer and free what it holds.
    fn cancel(&self);
}

struct ChanSource<T, C> {
    chan: Rc<Chan<T>>,
    _codec: PhantomData<fn() -> C>,
}

impl<T: 'static, C: Codec<T>> Source for ChanSource<T, C> {
    fn poll_item(&self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Encoded, CallError>>> {
        self.chan.poll_next(cx).map(|next| {
            next.map(|item| match item {
                Ok(item) => With::<C, T>::encode(&item)
                    .map(|bytes| (bytes, C::CONTENT_TYPE))
                    .map_err(|e| {
                        CallError::StreamFailed(format!("an item could not be encoded: {e}"))
                    }),
                Err(e) => Err(e.into()),
            })
        })
    }

    fn grant(&self, n: u64) {
        self.chan.grant(n);
    }

    fn cancel(&self) {
        self.chan.cancel();
    }
}

/// Decodes a request and queues it, with a new stream of `credit` items, in the
/// component's mailbox; the source yields its items encoded.
pub(crate) type StreamDispatch<A> =
    Box<dyn Fn(&Addr<A>, &str, &[u8], u32) -> Result<Rc<dyn Source>, CallError>>;

impl<A: Actor> ExportBuilder<A> {
    /// Lets other nodes ask `M` of this component with a streamed reply
    /// ([`Ref::ask_stream`]); its items travel in `M`'s codec. A request that finds
    /// the mailbox full is refused with [`CallError::MailboxFull`] (it is not held in
    /// the component's backlog as a plain request is).
    #[allow(clippy::return_self_not_must_use)]
    pub fn accept_stream<M>(self) -> Self
    where
        A: Handler<Streaming<M>>,
        M: RemoteMessage + StreamMessage,
        M::Codec: Codec<M::Item>,
    {
        let dispatch: StreamDispatch<A> = Box::new(|addr, content_type, payload, credit| {
            let msg = With::<M::Codec, M>::decode(content_type, payload)?;
            let chan = Chan::new(u64::from(credit));
            match addr.try_tell(Streaming::new(msg, chan.clone())) {
                Ok(()) => Ok(Rc::new(ChanSource::<M::Item, M::Codec> {
                    chan,
                    _codec: PhantomData,
                })),
                Err(SendError::Full(_)) => Err(CallError::MailboxFull),
                Err(_) => Err(CallError::Stopped),
            }
        });
        let local: Rc<dyn LocalStream<M>> = Rc::new(self.export.addr.clone());
        let local: Rc<dyn Any> = Rc::new(local);
        self.export
            .accept_stream(M::NAME, dispatch, (TypeId::of::<Streaming<M>>(), local));
        self
    }
}

/// A component on this node that streams `M`, whatever its type: the entry of an
/// export that a protocol-typed [`Ref::ask_stream`] opens without encoding.
pub(crate) trait LocalStream<M: StreamMessage> {
    fn ask_stream(&self, msg: M) -> ItemStream<M::Item>;
}

impl<A, M> LocalStream<M> for Addr<A>
where
    A: Handler<Streaming<M>>,
    M: StreamMessage,
{
    fn ask_stream(&self, msg: M) -> ItemStream<M::Item> {
        Self::ask_stream(self, msg)
    }
}

/// How a stream request found its component on this node: opened here, refused here,
/// or (with the message back) to be sent through the node. Internal to
/// [`AcceptsStream::open_here`].
#[doc(hidden)]
pub struct Opened<M: StreamMessage>(pub(super) Open<M>);

impl<M: StreamMessage> fmt::Debug for Opened<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = match &self.0 {
            Open::Here(_) => "here",
            Open::Refused(_) => "refused",
            Open::Remote(_) => "remote",
        };
        f.debug_tuple("Opened").field(&open).finish()
    }
}

pub(super) enum Open<M: StreamMessage> {
    /// The component runs here: its stream, never encoded.
    Here(ItemStream<M::Item>),
    /// It runs here and does not stream `M`.
    Refused(CallError),
    /// Not here: through the node.
    Remote(M),
}

/// The caller's buffer of one remote stream: items as they arrive (never more than
/// the credit window), then the end.
#[derive(Debug, Default)]
pub(crate) struct CallStream {
    /// The session's id once the request left (`None` while it waits for a name).
    id: Cell<Option<u64>>,
    /// The caller dropped it: a waiting request is not sent.
    abandoned: Cell<bool>,
    queue: RefCell<VecDeque<Reply>>,
    end: RefCell<Option<Result<(), CallError>>>,
    waker: RefCell<Option<Waker>>,
}

impl CallStream {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub(crate) fn push(&self, item: Reply) {
        self.queue.borrow_mut().push_back(item);
        self.wake();
    }

    pub(crate) fn finish(&self, result: Result<(), CallError>) {
        {
            let mut end = self.end.borrow_mut();
            if end.is_some() {
                return;
            }
            *end = Some(result);
        }
        self.wake();
    }

    pub(crate) fn buffered(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Stops the stream from the caller's side: cancelled on the wire if it left,
    /// never sent if it still waits for its name.
    fn cancel(&self, node: &Node) {
        match self.id.get() {
            Some(id) => node.cancel_stream(id),
            None => self.abandoned.set(true),
        }
    }
}

impl StreamSlot for Rc<CallStream> {
    fn opened(&self, id: u64) {
        self.id.set(Some(id));
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.get()
    }
}

type Decode<T> = fn(&str, &[u8]) -> Result<T, CodecError>;

enum State<T> {
    Local(ItemStream<T>),
    Unsent {
        name: Rc<str>,
        pin: Option<Rc<str>>,
        out: Outgoing,
    },
    Open {
        name: Rc<str>,
        call: Rc<CallStream>,
    },
    Failed(CallError),
    Done,
}

/// A streamed reply through a [`Ref`]: a [`Stream`] of `Result<Item, CallError>`, the
/// same whether the component is on this node or another. Nothing is sent until the
/// first poll; set the credit window and deadlines before. Dropping it cancels the
/// producer (across the network, with a cancel frame).
///
/// Deadlines: [`timeout`](Self::timeout) bounds the whole stream (it is also sent to
/// the producer, which stops at it); [`idle_timeout`](Self::idle_timeout) bounds each
/// wait for the next item while the caller waits (default: the node's
/// [`default_timeout`](super::NodeConfig::default_timeout)). A caller that stops
/// polling never times itself out: it only stops granting credit, which stalls the
/// producer.
#[must_use = "streams do nothing unless polled"]
pub struct RefStream<T> {
    /// `None` for a reference to a component in this process with no node.
    node: Option<Node>,
    state: State<T>,
    decode: Decode<T>,
    window: u32,
    unacked: u32,
    timeout: Option<Duration>,
    idle: Duration,
    deadline: Option<Sleep>,
    idle_sleep: Option<Sleep>,
}

impl<T> fmt::Debug for RefStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Local(_) => "local",
            State::Unsent { .. } => "unsent",
            State::Open { .. } => "open",
            State::Failed(_) => "failed",
            State::Done => "done",
        };
        f.debug_struct("RefStream")
            .field("state", &state)
            .field("window", &self.window)
            .field("timeout", &self.timeout)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> RefStream<T> {
    /// The credit window: how many items the producer may run ahead of this caller
    /// (at least 1; default [`DEFAULT_CREDIT`]). It bounds the memory the stream holds
    /// anywhere.
    pub fn credit(mut self, window: u32) -> Self {
        self.window = window.max(1);
        self.configure_local();
        self
    }

    /// The deadline of the whole stream, from its first poll.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self.configure_local();
        self
    }

    /// The longest wait for each next item while the caller waits for it.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self.configure_local();
        self
    }

    fn configure_local(&mut self) {
        if let State::Local(s) = &mut self.state {
            s.configure(self.window, self.timeout, self.idle);
        }
    }

    /// Items received and not yet taken (at most the credit window).
    #[must_use]
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Local(s) => s.buffered(),
            State::Open { call, .. } => call.buffered(),
            _ => 0,
        }
    }

    fn end_with(&mut self, error: CallError) -> Poll<Option<Result<T, CallError>>> {
        if let (State::Open { call, .. }, Some(node)) =
            (std::mem::replace(&mut self.state, State::Done), &self.node)
        {
            call.cancel(node);
        }
        Poll::Ready(Some(Err(error)))
    }

    fn poll_open(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Result<T, CallError>>> {
        let State::Open { call, .. } = &self.state else {
            return Poll::Ready(None);
        };
        let call = call.clone();
        let next = call.queue.borrow_mut().pop_front();
        if let Some(item) = next {
            self.idle_sleep = None;
            self.unacked += 1;
            if self.unacked >= (self.window / 2).max(1)
                && let Some(id) = call.id.get()
                && let Some(node) = &self.node
            {
                node.grant_stream(id, self.unacked);
                self.unacked = 0;
            }
            return match (self.decode)(&item.content_type, &item.payload) {
                Ok(v) => Poll::Ready(Some(Ok(v))),
                Err(e) => self.end_with(e.into()),
            };
        }
        let end = call.end.borrow_mut().take();
        if let Some(end) = end {
            self.state = State::Done;
            return Poll::Ready(end.err().map(Err));
        }
        *call.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

fn fired(sleep: &mut Option<Sleep>, cx: &mut TaskContext<'_>) -> bool {
    sleep
        .as_mut()
        .is_some_and(|s| Pin::new(s).poll(cx).is_ready())
}

impl<T: 'static> Stream for RefStream<T> {
    type Item = Result<T, CallError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match std::mem::replace(&mut this.state, State::Done) {
            State::Done => return Poll::Ready(None),
            State::Failed(e) => return Poll::Ready(Some(Err(e))),
            State::Local(mut s) => {
                let r = Pin::new(&mut s).poll_next(cx);
                if !matches!(r, Poll::Ready(None | Some(Err(_)))) {
                    this.state = State::Local(s);
                }
                return r.map(|o| o.map(|r| r.map_err(Into::into)));
            }
            State::Unsent { name, pin, out } => {
                let Some(node) = this.node.clone() else {
                    // Only a reference through a node sends requests.
                    return Poll::Ready(Some(Err(CallError::NotHosted {
                        name: name.to_string(),
                    })));
                };
                this.deadline = this.timeout.map(time::sleep);
                // Goes out now, or waits for its name like a tell or an ask: within
                // the idle timeout and the whole deadline.
                let wait = this.timeout.map_or(this.idle, |t| t.min(this.idle));
                let (window, timeout) = (this.window, this.timeout);
                match node.open_stream(&name, pin.as_ref(), out, window, timeout, wait) {
                    Ok(call) => this.state = State::Open { name, call },
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
            }
            open @ State::Open { .. } => this.state = open,
        }
        if let Poll::Ready(r) = this.poll_open(cx) {
            return Poll::Ready(r);
        }
        if let State::Open { name, call } = &this.state
            && call.id.get().is_none()
        {
            // Still waiting for its name.
            let name = name.to_string();
            let idle = this.idle;
            this.idle_sleep.get_or_insert_with(|| time::sleep(idle));
            if fired(&mut this.deadline, cx) || fired(&mut this.idle_sleep, cx) {
                let error = this.node.as_ref().map_or_else(
                    || CallError::UnknownName { name: name.clone() },
                    |node| node.unhosted(&name),
                );
                return this.end_with(error);
            }
            return Poll::Pending;
        }
        if fired(&mut this.deadline, cx) {
            return this.end_with(CallError::Timeout);
        }
        let idle = this.idle;
        this.idle_sleep.get_or_insert_with(|| time::sleep(idle));
        if fired(&mut this.idle_sleep, cx) {
            return this.end_with(CallError::IdleTimeout);
        }
        Poll::Pending
    }
}

impl<T> Drop for RefStream<T> {
    fn drop(&mut self) {
        if let (State::Open { call, .. }, Some(node)) = (&self.state, &self.node) {
            call.cancel(node);
        }
    }
}

impl<T: 'static> Ref<T> {
    /// Sends `msg` and returns its streamed reply, consumed at the caller's pace with
    /// credit-based flow control: on this node without encoding, on another node over
    /// the wire. `T` is the component's actor type (it handles [`Streaming<M>`]) or a
    /// protocol that lists the stream (`M => stream Item`, see
    /// [`protocol!`](crate::protocol)); see [`AcceptsStream`].
    ///
    /// The request goes out at the first poll, or as soon as a node announces the
    /// name, waiting in order with the tells and asks for it (bounded by
    /// [`NodeConfig::pending_limit`](super::NodeConfig::pending_limit)) up to the idle
    /// timeout or the stream's deadline (then the stream fails with
    /// [`CallError::UnknownName`], or [`CallError::NotHosted`] for a name that was
    /// hosted). A component on this node that does not stream `M` (a protocol-typed
    /// reference finds it through its export) fails the stream at once, as a remote
    /// node would. See [`RefStream`] for credit and deadlines.
    pub fn ask_stream<M>(&self, msg: M) -> RefStream<M::Item>
    where
        T: AcceptsStream<M>,
        M: RemoteMessage + StreamMessage,
        M::Codec: Codec<M::Item>,
    {
        let node = self.node().cloned();
        let idle = node
            .as_ref()
            .map_or(crate::DEFAULT_TIMEOUT, Node::default_timeout);
        let state = match T::open_here(&self.found(), msg).0 {
            Open::Here(local) => State::Local(local),
            Open::Refused(e) => State::Failed(e),
            // A reference to a component in this process never goes to a network.
            Open::Remote(_) if node.is_none() => State::Failed(CallError::NotHosted {
                name: self.name().to_owned(),
            }),
            Open::Remote(msg) => match With::<M::Codec, M>::encode(&msg) {
                Ok(payload) => State::Unsent {
                    name: self.name().into(),
                    pin: self.pinned_to().map(Into::into),
                    out: Outgoing::new(
                        self.name(),
                        M::NAME,
                        <M::Codec as Codec<M>>::CONTENT_TYPE,
                        payload,
                    ),
                },
                Err(e) => State::Failed(e.into()),
            },
        };
        let mut stream = RefStream {
            node,
            state,
            decode: With::<M::Codec, M::Item>::decode,
            window: DEFAULT_CREDIT,
            unacked: 0,
            timeout: None,
            idle,
            deadline: None,
            idle_sleep: None,
        };
        stream.configure_local();
        stream
    }
}
