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
use super::export::{Export, ExportBuilder, Exported};
use super::node::Node;
use super::service::{Accepts, Found, Route, ServedBy};
use crate::actor::Actor;
use crate::addr::Addr;
use crate::error::SendError;
use crate::flow::Horizon;
use crate::trace::{Open, SpanKind};

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
/// `tell`, `ask` and `ask_stream` as an [`Addr`](crate::Addr), with [`CallError`] for
/// every way a call across the network can fail.
///
/// `T` is what the caller knows of the component: its actor type (`Ref<Store>`), or a
/// protocol declared with [`protocol!`](crate::protocol) (`Ref<Kv>`) when the caller
/// has only the message types. Either way a message `T` does not accept
/// ([`Accepts`]), or a stream it does not list
/// ([`AcceptsStream`](super::AcceptsStream)), is a compile error.
///
/// The name is resolved at each call, so a reference stays valid while its component
/// restarts, moves, or has not started yet. A component on this node is called
/// directly, without encoding; elsewhere the message is encoded with its
/// [`RemoteMessage::Codec`]. (On this node, a reference typed by the actor also finds
/// a component only registered under the name; one typed by a protocol finds it
/// through its export, with the message types the export accepts.)
///
/// Get one from [`Node::lookup`] or [`Node::lookup_on`], or, for a component in this
/// process with no node and no transport, from [`Ref::local`] or [`Ref::local_as`].
pub struct Ref<T> {
    via: Via,
    name: Rc<str>,
    pin: Option<Rc<str>>,
    /// The flow its messages carry, and the horizon the caller asked for
    /// ([`Ref::with_flow`], [`Ref::with_horizon`]).
    flow: Option<Rc<str>>,
    horizon: Option<Horizon>,
    _target: PhantomData<fn() -> T>,
}

/// How a [`Ref`] reaches its component.
#[derive(Clone)]
enum Via {
    /// By name, through this container's node.
    Node(Node),
    /// A component in this process, held directly: no node, no transport.
    Here(Rc<dyn Exported>),
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Self {
            via: self.via.clone(),
            name: self.name.clone(),
            pin: self.pin.clone(),
            flow: self.flow.clone(),
            horizon: self.horizon,
            _target: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ref")
            .field("name", &self.name)
            .field("node", &self.pin)
            .field("local", &matches!(self.via, Via::Here(_)))
            .finish()
    }
}

impl<A: Actor> Ref<A> {
    /// A reference to the component `addr` in this process, with no node and no
    /// transport: calls go straight to its mailbox, never encoded, and fail with the
    /// same [`CallError`]s as any `Ref`. Code written against `Ref` (a client
    /// library, a test) then runs unchanged in one process.
    ///
    /// ```
    /// use tern_actors::{Actor, Context, Handler, spawn};
    /// use tern_actors::remote::{Postcard, Ref, RemoteMessage};
    ///
    /// struct Counter(u64);
    /// impl Actor for Counter {}
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Add(u64);
    /// impl RemoteMessage for Add { const NAME: &'static str = "demo.v1.Add"; type Codec = Postcard; }
    /// impl Handler<Add> for Counter {
    ///     type Reply = u64;
    ///     async fn handle(&mut self, m: Add, _: &mut Context<Self>) -> u64 { self.0 += m.0; self.0 }
    /// }
    ///
    /// tern_executor::Runtime::new().unwrap().block_on(async {
    ///     let counter: Ref<Counter> = Ref::local(&spawn(Counter(0)));
    ///     assert_eq!(counter.ask(Add(2)).await, Ok(2));
    /// });
    /// ```
    #[must_use]
    pub fn local(addr: &Addr<A>) -> Self {
        let export: Rc<dyn Exported> = Rc::new(Export::new(addr.clone()));
        Self::here(export)
    }
}

impl<A: Actor> From<&Addr<A>> for Ref<A> {
    fn from(addr: &Addr<A>) -> Self {
        Self::local(addr)
    }
}

impl<T: 'static> Ref<T> {
    pub(crate) fn new(node: Node, name: &str, pin: Option<&str>) -> Self {
        Self {
            via: Via::Node(node),
            name: name.into(),
            pin: pin.map(Into::into),
            flow: None,
            horizon: None,
            _target: PhantomData,
        }
    }

    /// A reference whose messages carry flow `name`: the flow's horizon and rate
    /// limits apply to them ([`crate::flow`]), and the receiver sees the name.
    ///
    /// ```
    /// use tern_actors::flow::Horizon;
    /// use tern_actors::remote::Ref;
    /// # struct Cache;
    /// # impl tern_actors::Actor for Cache {}
    /// # tern_executor::Runtime::new().unwrap().block_on(async {
    /// let cache = Ref::local(&tern_actors::spawn(Cache))
    ///     .with_flow("thumbnails")
    ///     .with_horizon(Horizon::Node);
    /// assert_eq!(cache.flow(), Some("thumbnails"));
    /// # });
    /// ```
    #[must_use]
    pub fn with_flow(&self, name: &str) -> Self {
        let mut r = self.clone();
        r.flow = (!name.is_empty()).then(|| name.into());
        r
    }

    /// A reference whose messages may travel at most as far as `horizon`: it can only
    /// narrow the horizon the settings give (see [`Horizons`](crate::flow::Horizons)).
    #[must_use]
    pub fn with_horizon(&self, horizon: Horizon) -> Self {
        let mut r = self.clone();
        r.horizon = Some(horizon);
        r
    }

    /// The flow set with [`Ref::with_flow`].
    #[must_use]
    pub fn flow(&self) -> Option<&str> {
        self.flow.as_deref()
    }

    /// The wire form of a message through this reference.
    fn outgoing(&self, message_type: &str, content_type: &str, payload: Vec<u8>) -> Outgoing {
        let mut out = Outgoing::new(&*self.name, message_type, content_type, payload);
        if let Some(flow) = &self.flow {
            out.flow = flow.to_string();
        }
        out.horizon = self.horizon.map_or(0, Horizon::to_wire);
        out
    }

    fn here(export: Rc<dyn Exported>) -> Self {
        // The type's own name: `Counter` for `app::Counter`, `Cache` for
        // `app::Cache<app::Key>`.
        let full = std::any::type_name::<T>();
        let path = full.split('<').next().unwrap_or(full);
        Self {
            via: Via::Here(export),
            name: path.rsplit("::").next().unwrap_or(path).into(),
            pin: None,
            flow: None,
            horizon: None,
            _target: PhantomData,
        }
    }

    /// A reference typed by protocol `T` (see [`protocol!`](crate::protocol)) to the
    /// component `addr` in this process, with no node and no transport, like
    /// [`Ref::local`]. The component must serve the whole protocol (checked at compile
    /// time).
    #[must_use]
    pub fn local_as<A>(addr: &Addr<A>) -> Self
    where
        A: Actor,
        T: ServedBy<A>,
    {
        let export = T::accept_all(ExportBuilder::detached(addr)).exported();
        Self::here(export)
    }

    /// The component's name (for a reference from [`Ref::local`], its type's name).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node this reference is pinned to, if any.
    #[must_use]
    pub fn pinned_to(&self) -> Option<&str> {
        self.pin.as_deref()
    }

    /// The node calls go through; `None` for a reference to a component in this
    /// process ([`Ref::local`]).
    pub(super) fn node(&self) -> Option<&Node> {
        match &self.via {
            Via::Node(node) => Some(node),
            Via::Here(_) => None,
        }
    }

    /// The deadline of calls that set none.
    fn default_timeout(&self) -> Duration {
        match &self.via {
            Via::Node(node) => node.default_timeout(),
            Via::Here(_) => crate::DEFAULT_TIMEOUT,
        }
    }

    /// The component as a local call finds it.
    pub(super) fn found(&self) -> Found {
        match &self.via {
            Via::Here(export) => Found::new(self.name.clone(), Some(export.clone()), false),
            Via::Node(node) => match self.pin.as_deref() {
                Some(n) if n != node.name() => Found::new(self.name.clone(), None, false),
                _ => Found::new(self.name.clone(), node.export_of(&self.name), true),
            },
        }
    }

    /// Where a call of `M` goes: to a component here (no encoding), refused here, or
    /// through the node.
    fn route<M: RemoteMessage>(&self) -> Route<M, T::Reply>
    where
        T: Accepts<M>,
    {
        match (T::direct(&self.found()).0, &self.via) {
            (Route::Remote, Via::Here(_)) => Route::Refused(CallError::NotHosted {
                name: self.name.to_string(),
            }),
            (route, _) => route,
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
        T: Accepts<M>,
        M: RemoteMessage,
    {
        let node = match (self.route::<M>(), &self.via) {
            (Route::Here(target), _) => return target.try_tell(msg).map_err(undelivered),
            (Route::Refused(reason), _) => {
                return Err(Undelivered {
                    reason,
                    message: msg,
                });
            }
            (Route::Remote, Via::Node(node)) => node,
            // `route` never sends a reference to a local component to the network.
            (Route::Remote, Via::Here(_)) => {
                return Err(Undelivered {
                    reason: CallError::NotHosted {
                        name: self.name.to_string(),
                    },
                    message: msg,
                });
            }
        };
        let payload = match With::<M::Codec, M>::encode(&msg) {
            Ok(p) => p,
            Err(e) => {
                return Err(Undelivered {
                    reason: e.into(),
                    message: msg,
                });
            }
        };
        let mut out = self.outgoing(M::NAME, <M::Codec as Codec<M>>::CONTENT_TYPE, payload);
        let span = Open::call(
            SpanKind::Producer,
            node.name(),
            &self.name,
            M::NAME,
            self.flow.as_deref().unwrap_or_default(),
        );
        out.trace = span.as_ref().map(|s| s.context().to_wire());
        let sent = node.tell(&self.name, self.pin.as_ref(), out);
        if let Some(span) = span {
            span.finish(sent.as_ref().err().map(ToString::to_string));
        }
        sent.map_err(|reason| Undelivered {
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
    pub fn tell<M>(&self, msg: M) -> RefTell<T, M>
    where
        T: Accepts<M>,
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
    pub fn ask<M>(&self, msg: M) -> RefAsk<T, M>
    where
        T: Accepts<M>,
        M: RemoteMessage,
        M::Codec: Codec<T::Reply>,
    {
        RefAsk {
            target: self.clone(),
            msg,
            timeout: None,
        }
    }
}

/// A local refusal as a [`Ref`] reports it.
fn undelivered<M>(e: SendError<M>) -> Undelivered<M> {
    match e {
        SendError::Stopped(message) => Undelivered {
            reason: CallError::Stopped,
            message,
        },
        SendError::Full(message) | SendError::Timeout(message) => Undelivered {
            reason: CallError::MailboxFull,
            message,
        },
    }
}

type Sending<M> = Pin<Box<dyn Future<Output = Result<(), Undelivered<M>>>>>;

/// A tell through a [`Ref`] that waits for room; see [`Ref::tell`]. Set how long it
/// may wait with [`RefTell::timeout`], then `.await` it.
#[must_use = "a tell does nothing unless awaited; use `try_tell` to send without waiting"]
pub struct RefTell<T, M> {
    target: Ref<T>,
    msg: Option<M>,
    timeout: Option<Duration>,
    sending: Option<Sending<M>>,
}

// `msg` is moved out, never pinned; `sending` is boxed.
impl<T, M> Unpin for RefTell<T, M> {}

impl<T, M> fmt::Debug for RefTell<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefTell")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T, M> RefTell<T, M> {
    /// How long to wait for room before giving the message back.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<T, M> Future for RefTell<T, M>
where
    T: Accepts<M>,
    M: RemoteMessage,
{
    type Output = Result<(), Undelivered<M>>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(msg) = this.msg.take() {
            let timeout = this
                .timeout
                .unwrap_or_else(|| this.target.default_timeout());
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
async fn tell_waiting<T, M>(target: Ref<T>, msg: M, timeout: Duration) -> Result<(), Undelivered<M>>
where
    T: Accepts<M>,
    M: RemoteMessage,
{
    match target.route::<M>() {
        Route::Here(local) => return local.tell(msg, timeout).await.map_err(undelivered),
        Route::Refused(reason) => {
            return Err(Undelivered {
                reason,
                message: msg,
            });
        }
        Route::Remote => {}
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
pub struct RefAsk<T, M> {
    target: Ref<T>,
    msg: M,
    timeout: Option<Duration>,
}

impl<T, M> fmt::Debug for RefAsk<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefAsk")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T, M> RefAsk<T, M> {
    /// The deadline of the whole ask.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<T, M> IntoFuture for RefAsk<T, M>
where
    T: Accepts<M>,
    M: RemoteMessage,
    M::Codec: Codec<T::Reply>,
{
    type Output = Result<T::Reply, CallError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Self {
                target,
                msg,
                timeout,
            } = self;
            let timeout = timeout.unwrap_or_else(|| target.default_timeout());
            let node = match (target.route::<M>(), &target.via) {
                (Route::Here(local), _) => {
                    return local.ask(msg, timeout).await.map_err(Into::into);
                }
                (Route::Refused(e), _) => return Err(e),
                (Route::Remote, Via::Node(node)) => node,
                (Route::Remote, Via::Here(_)) => {
                    return Err(CallError::NotHosted {
                        name: target.name.to_string(),
                    });
                }
            };
            let payload = With::<M::Codec, M>::encode(&msg)?;
            let mut out = target.outgoing(M::NAME, <M::Codec as Codec<M>>::CONTENT_TYPE, payload);
            let span = Open::call(
                SpanKind::Client,
                node.name(),
                &target.name,
                M::NAME,
                target.flow.as_deref().unwrap_or_default(),
            );
            out.trace = span.as_ref().map(|s| s.context().to_wire());
            let reply = node
                .ask(&target.name, target.pin.as_ref(), out, timeout)
                .await;
            if let Some(span) = span {
                span.finish(reply.as_ref().err().map(ToString::to_string));
            }
            let reply = reply?;
            Ok(With::<M::Codec, T::Reply>::decode(
                &reply.content_type,
                &reply.payload,
            )?)
        })
    }
}
