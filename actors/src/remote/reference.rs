//! Typed references to components by name, wherever they run.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use tern_executor::time;

use tern_proto::session::Outgoing;

use super::codec::{Codec, RemoteMessage, With};
use super::error::CallError;
use super::node::Node;
use crate::actor::{Actor, Handler};
use crate::error::SendError;

/// A message a [`Ref::tell`] could not send, given back with the reason.
#[derive(thiserror::Error)]
#[error("tell not sent: {reason}")]
pub struct Undelivered<M> {
    /// Why it was not sent.
    pub reason: CallError,
    /// The message.
    pub message: M,
}

impl<M> fmt::Debug for Undelivered<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Undelivered")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

/// A typed reference to a component by name, on this node or another one: the same
/// `tell` and `ask` as an [`Addr`](crate::Addr), with [`CallError`] for every way a
/// call across the network can fail.
///
/// The name is resolved at each call, so a reference stays valid while its component
/// restarts, moves, or has not started yet. A component on this node is called
/// directly, without encoding; elsewhere the message is encoded with its
/// [`RemoteMessage::Codec`].
///
/// Get one from [`Node::lookup`] or [`Node::lookup_on`].
pub struct Ref<A: Actor> {
    node: Node,
    name: Rc<str>,
    pin: Option<Rc<str>>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> Clone for Ref<A> {
    fn clone(&self) -> Self {
        Self {
            node: self.node.clone(),
            name: self.name.clone(),
            pin: self.pin.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A: Actor> fmt::Debug for Ref<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref")
            .field("name", &self.name)
            .field("node", &self.pin)
            .finish()
    }
}

impl<A: Actor> Ref<A> {
    pub(crate) fn new(node: Node, name: &str, pin: Option<&str>) -> Self {
        Self {
            node,
            name: name.into(),
            pin: pin.map(Into::into),
            _actor: PhantomData,
        }
    }

    /// The component's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node this reference is pinned to, if any.
    #[must_use]
    pub fn pinned_to(&self) -> Option<&str> {
        self.pin.as_deref()
    }

    pub(super) fn node(&self) -> &Node {
        &self.node
    }

    /// The component, if it runs on this node (no encoding needed).
    pub(super) fn local(&self) -> Option<crate::Addr<A>> {
        match self.pin.as_deref() {
            Some(n) if n != self.node.name() => None,
            _ => self.node.local::<A>(&self.name),
        }
    }

    /// Sends `msg` without waiting for an answer or for room: queued in the local
    /// mailbox, handed to the transport, or parked until the name is known, now.
    ///
    /// # Errors
    ///
    /// The message comes back in [`Undelivered`] when it cannot be queued now: a full
    /// mailbox or a stopped component here, an unreachable node, a full transport
    /// queue, too many messages waiting for unknown names, or an encoding failure.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), Undelivered<M>>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        if let Some(addr) = self.local() {
            return addr.try_tell(msg).map_err(|e| match e {
                SendError::Stopped(message) => Undelivered {
                    reason: CallError::Stopped,
                    message,
                },
                SendError::Full(message) | SendError::Timeout(message) => Undelivered {
                    reason: CallError::MailboxFull,
                    message,
                },
            });
        }
        let payload = match With::<M::Codec, M>::encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                return Err(Undelivered {
                    reason: e.into(),
                    message: msg,
                });
            }
        };
        let out = Outgoing::new(
            &*self.name,
            M::NAME,
            <M::Codec as Codec<M>>::CONTENT_TYPE,
            payload,
        );
        self.node
            .tell(&self.name, self.pin.as_ref(), out)
            .map_err(|reason| Undelivered {
                reason,
                message: msg,
            })
    }

    /// Sends `msg` without waiting for an answer, but waiting for room, like
    /// [`Addr::tell`](crate::Addr::tell): for a full mailbox here, a full transport
    /// queue ([`CallError::Backpressure`]) or a full table of messages waiting for
    /// names ([`CallError::PendingFull`]), up to the node's default timeout or the one
    /// set with [`RefTell::timeout`]. Other refusals come back at once; see
    /// [`Ref::try_tell`].
    pub fn tell<M>(&self, msg: M) -> RefTell<A, M>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        RefTell {
            target: self.clone(),
            msg: Some(msg),
            timeout: None,
            sending: None,
        }
    }

    /// Sends `msg` and waits for the typed reply, by the node's default deadline
    /// ([`NodeConfig::default_timeout`](super::NodeConfig::default_timeout)) or the
    /// one set with [`RefAsk::timeout`]. The deadline covers everything: waiting for
    /// the name, the network both ways, and the handler.
    pub fn ask<M>(&self, msg: M) -> RefAsk<A, M>
    where
        A: Handler<M>,
        M: RemoteMessage,
        M::Codec: Codec<A::Reply>,
    {
        RefAsk {
            target: self.clone(),
            msg,
            timeout: None,
        }
    }
}

type Sending<M> = Pin<Box<dyn Future<Output = Result<(), Undelivered<M>>>>>;

/// A tell through a [`Ref`] that waits for room; see [`Ref::tell`]. Set how long it
/// may wait with [`RefTell::timeout`], then `.await` it.
#[must_use = "a tell does nothing unless awaited; use `try_tell` to send without waiting"]
pub struct RefTell<A: Actor, M> {
    target: Ref<A>,
    msg: Option<M>,
    timeout: Option<Duration>,
    sending: Option<Sending<M>>,
}

// `msg` is moved out, never pinned; `sending` is boxed.
impl<A: Actor, M> Unpin for RefTell<A, M> {}

impl<A: Actor, M> fmt::Debug for RefTell<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefTell")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<A: Actor, M> RefTell<A, M> {
    /// How long to wait for room before giving the message back.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<A, M> Future for RefTell<A, M>
where
    A: Handler<M>,
    M: RemoteMessage,
{
    type Output = Result<(), Undelivered<M>>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(msg) = this.msg.take() {
            let timeout = this
                .timeout
                .unwrap_or_else(|| this.target.node.default_timeout());
            this.sending = Some(Box::pin(tell_waiting(this.target.clone(), msg, timeout)));
        }
        match &mut this.sending {
            Some(sending) => sending.as_mut().poll(cx),
            // Polled again after it finished.
            None => Poll::Ready(Ok(())),
        }
    }
}

/// [`Ref::tell`]: waits for room in a local mailbox, or retries a remote tell refused
/// for a full queue (backing off up to 50 ms), until `timeout`.
async fn tell_waiting<A, M>(target: Ref<A>, msg: M, timeout: Duration) -> Result<(), Undelivered<M>>
where
    A: Handler<M>,
    M: RemoteMessage,
{
    if let Some(addr) = target.local() {
        return addr.tell(msg).timeout(timeout).await.map_err(|e| match e {
            SendError::Stopped(message) => Undelivered {
                reason: CallError::Stopped,
                message,
            },
            SendError::Full(message) | SendError::Timeout(message) => Undelivered {
                reason: CallError::MailboxFull,
                message,
            },
        });
    }
    let deadline = time::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let mut msg = msg;
    loop {
        match target.try_tell(msg) {
            Err(Undelivered {
                reason: CallError::Backpressure(_) | CallError::PendingFull,
                message,
            }) if time::now() + pause < deadline => {
                msg = message;
                time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// An ask through a [`Ref`]; set a deadline with [`RefAsk::timeout`], then `.await`.
#[must_use = "an ask does nothing unless awaited"]
pub struct RefAsk<A: Actor, M> {
    target: Ref<A>,
    msg: M,
    timeout: Option<Duration>,
}

impl<A: Actor, M> fmt::Debug for RefAsk<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefAsk")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<A: Actor, M> RefAsk<A, M> {
    /// The deadline of the whole ask.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<A, M> IntoFuture for RefAsk<A, M>
where
    A: Handler<M>,
    M: RemoteMessage,
    M::Codec: Codec<A::Reply>,
{
    type Output = Result<A::Reply, CallError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Self {
                target,
                msg,
                timeout,
            } = self;
            let timeout = timeout.unwrap_or_else(|| target.node.default_timeout());
            if let Some(addr) = target.local() {
                return addr.ask(msg).timeout(timeout).await.map_err(Into::into);
            }
            let payload = With::<M::Codec, M>::encode(&msg)?;
            let out = Outgoing::new(
                &*target.name,
                M::NAME,
                <M::Codec as Codec<M>>::CONTENT_TYPE,
                payload,
            );
            let reply = target
                .node
                .ask(&target.name, target.pin.as_ref(), out, timeout)
                .await?;
            Ok(With::<M::Codec, A::Reply>::decode(
                &reply.content_type,
                &reply.payload,
            )?)
        })
    }
}
