//! Components reachable from other nodes, and how a request reaches them.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use super::codec::{Codec, RemoteMessage, With};
use super::error::CallError;
use super::node::Answer;
use super::service::{ServedBy, local_entry};
use super::stream::{Source, StreamDispatch};
use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::SendError;
use crate::mailbox::ComponentStats;
use crate::reply::OnReply;
use crate::trace::{Open, SpanContext};

/// An encoded reply and its content type.
pub(crate) type Encoded = (Vec<u8>, &'static str);

/// What delivering a request did: it is in the mailbox, or the mailbox is full and the
/// request stays with the caller (who waits for [`Exported::room`] and tries again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivered {
    Queued,
    Full,
}

type Dispatch<A> =
    Box<dyn Fn(&Addr<A>, &Incoming<'_>, &mut Option<Answer>) -> Result<Delivered, CallError>>;

/// One request to deliver: its message type, encoding and payload, and for an ask
/// the deadline past which it is not handled.
pub(crate) struct Incoming<'a> {
    pub(crate) message_type: &'a str,
    pub(crate) content_type: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) expects_reply: bool,
    pub(crate) deadline: Option<tern_executor::Instant>,
    /// The caller's span, if the request carried trace context.
    pub(crate) trace: Option<SpanContext>,
    /// The envelope's flow name (empty: none), for debug switches on a flow.
    pub(crate) flow: &'a str,
    /// This node's name and the component's, for the handler's span.
    pub(crate) node: &'a str,
    pub(crate) component: &'a str,
}

impl Incoming<'_> {
    /// The handler's span: a child of the caller's, `None` when tracing is off.
    fn span(&self) -> Option<Open> {
        Open::serve(
            self.trace,
            self.node,
            self.component,
            self.message_type,
            self.flow,
        )
    }
}

/// One exported component, type-erased for the node's table.
pub(crate) trait Exported {
    /// Whether the component has stopped for good.
    fn is_stopped(&self) -> bool;
    /// The `Addr<A>`, for typed local lookups.
    fn addr(&self) -> &dyn Any;
    /// The `Export<A>` itself, for typed local calls without another allocation.
    fn into_any(self: Rc<Self>) -> Rc<dyn Any>;
    /// The component's counters (mailbox depth, handled, ...).
    fn stats(&self) -> ComponentStats;
    /// Changes the mailbox capacity at run time; queued messages stay.
    fn set_mailbox_capacity(&self, capacity: usize);
    /// Decodes a request and queues it in the component's mailbox if there is room.
    /// An ask's `answer` is taken only when queued.
    fn deliver(
        &self,
        req: &Incoming<'_>,
        answer: &mut Option<Answer>,
    ) -> Result<Delivered, CallError>;
    /// Waits until the mailbox has room (or the component stopped).
    fn room(&self) -> Pin<Box<dyn Future<Output = ()>>>;
    /// The entry a local call of the message type `message` (a `TypeId`) uses, if
    /// the component accepts it (see `service::Found::accepted`).
    fn local(&self, message: TypeId) -> Option<Rc<dyn Any>>;
    /// Decodes a stream request and queues it with a stream of `credit` items.
    fn deliver_stream(
        &self,
        message_type: &str,
        content_type: &str,
        payload: &[u8],
        credit: u32,
    ) -> Result<Rc<dyn Source>, CallError>;
}

pub(crate) struct Export<A: Actor> {
    pub(super) addr: Addr<A>,
    handlers: RefCell<BTreeMap<&'static str, Dispatch<A>>>,
    streams: RefCell<BTreeMap<&'static str, StreamDispatch<A>>>,
    /// Local calls through a protocol-typed `Ref`, by message type.
    locals: RefCell<BTreeMap<TypeId, Rc<dyn Any>>>,
}

impl<A: Actor> Export<A> {
    pub(crate) fn new(addr: Addr<A>) -> Self {
        Self {
            addr,
            handlers: RefCell::new(BTreeMap::new()),
            streams: RefCell::new(BTreeMap::new()),
            locals: RefCell::new(BTreeMap::new()),
        }
    }

    /// Streams the message type `name` to other nodes through `dispatch`, and to
    /// local calls through a protocol-typed `Ref` through `local` (its key is the
    /// `TypeId` of the `Streaming` request).
    pub(crate) fn accept_stream(
        &self,
        name: &'static str,
        dispatch: StreamDispatch<A>,
        local: (TypeId, Rc<dyn Any>),
    ) {
        self.streams.borrow_mut().insert(name, dispatch);
        self.locals.borrow_mut().insert(local.0, local.1);
    }
}

/// Queues `msg` now if there is room: a tell, or an ask whose encoded reply goes to
/// `answer`.
fn deliver_now<A, M>(
    addr: &Addr<A>,
    msg: M,
    deadline: Option<tern_executor::Instant>,
    answer: &mut Option<Answer>,
    span: Option<Open>,
) -> Result<Delivered, CallError>
where
    A: Handler<M>,
    M: RemoteMessage,
    M::Codec: Codec<A::Reply>,
{
    if addr.is_stopped() {
        return Err(CallError::Stopped);
    }
    if addr.is_full() {
        return Ok(Delivered::Full);
    }
    let Some(answer) = answer.take() else {
        return match addr.try_tell_in(msg, span) {
            Ok(()) => Ok(Delivered::Queued),
            Err(SendError::Full(_)) => Ok(Delivered::Full),
            Err(e) => Err(refused(e)),
        };
    };
    let mut on_reply: Option<OnReply<A::Reply>> = Some(Box::new(move |reply| {
        answer.send(match reply {
            // The request was fine; the reply is what could not be encoded.
            Ok(reply) => With::<M::Codec, A::Reply>::encode(&reply)
                .map(|bytes| (bytes, <M::Codec as Codec<A::Reply>>::CONTENT_TYPE))
                .map_err(|e| CallError::Remote {
                    code: tern_proto::v1::ErrorCode::Unspecified,
                    detail: format!("the reply could not be encoded: {e}"),
                }),
            Err(e) => Err(e.into()),
        });
    }));
    let queued = addr.try_ask_then(msg, deadline, &mut on_reply, span);
    if let Some(f) = on_reply {
        // Not queued after all (checked just above, so this does not happen): the
        // caller still gets an answer.
        f(Err(crate::AskError::Stopped));
    }
    queued.map(|()| Delivered::Queued).map_err(refused)
}

fn refused<M>(e: SendError<M>) -> CallError {
    match e {
        SendError::Stopped(_) => CallError::Stopped,
        SendError::Full(_) | SendError::Timeout(_) => CallError::MailboxFull,
    }
}

impl<A: Actor> Exported for Export<A> {
    fn is_stopped(&self) -> bool {
        self.addr.is_stopped()
    }

    fn addr(&self) -> &dyn Any {
        &self.addr
    }

    fn into_any(self: Rc<Self>) -> Rc<dyn Any> {
        self
    }

    fn stats(&self) -> ComponentStats {
        self.addr.stats()
    }

    fn set_mailbox_capacity(&self, capacity: usize) {
        self.addr.set_mailbox_capacity(capacity);
    }

    fn deliver(
        &self,
        req: &Incoming<'_>,
        answer: &mut Option<Answer>,
    ) -> Result<Delivered, CallError> {
        let handlers = self.handlers.borrow();
        let Some(dispatch) = handlers.get(req.message_type) else {
            return Err(CallError::Remote {
                code: tern_proto::v1::ErrorCode::UnknownMessageType,
                detail: format!("this component does not accept {:?}", req.message_type),
            });
        };
        dispatch(&self.addr, req, answer)
    }

    fn local(&self, message: TypeId) -> Option<Rc<dyn Any>> {
        self.locals.borrow().get(&message).cloned()
    }

    fn room(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        let addr = self.addr.clone();
        Box::pin(async move { addr.room().await })
    }

    fn deliver_stream(
        &self,
        message_type: &str,
        content_type: &str,
        payload: &[u8],
        credit: u32,
    ) -> Result<Rc<dyn Source>, CallError> {
        let streams = self.streams.borrow();
        let Some(dispatch) = streams.get(message_type) else {
            return Err(CallError::Remote {
                code: tern_proto::v1::ErrorCode::UnknownMessageType,
                detail: format!("this component does not stream {message_type:?}"),
            });
        };
        dispatch(&self.addr, content_type, payload, credit)
    }
}

/// A component exported by [`Node::export`](super::Node::export): say which message types other nodes may
/// send it with [`ExportBuilder::accept`].
///
/// # Examples
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use tern_actors::{Actor, Context, Handler, spawn};
/// # use tern_actors::remote::{Json, Node, NodeConfig, RemoteMessage};
/// # use tern_transport::SimTransport;
/// # use tern_executor::sim::World;
/// # use std::{collections::BTreeMap, rc::Rc};
/// struct Doubler;
/// impl Actor for Doubler {}
/// #[derive(Serialize, Deserialize)]
/// struct Double(u32);
/// impl RemoteMessage for Double {
///     const NAME: &'static str = "demo.v1.Double";
///     type Codec = Json;
/// }
/// impl Handler<Double> for Doubler {
///     type Reply = u32;
///     async fn handle(&mut self, m: Double, _: &mut Context<Self>) -> u32 { m.0 * 2 }
/// }
/// # let mut world = World::new(1).unwrap();
/// # let a = world.add_node("a").unwrap();
/// # let dir = Rc::new(BTreeMap::from([("a".to_owned(), a)]));
/// # let t = SimTransport::new("a", world.socket(a), dir);
/// # world.spawn_on(a, async move {
/// let node = Node::start(NodeConfig::new("a"), t).unwrap();
/// node.export("doubler", &spawn(Doubler)).unwrap().accept::<Double>();
/// # }).detach();
/// # world.run_until_idle();
/// ```
pub struct ExportBuilder<A: Actor> {
    pub(crate) export: Rc<Export<A>>,
    pub(crate) name: String,
}

impl<A: Actor> fmt::Debug for ExportBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportBuilder")
            .field("name", &self.name)
            .field(
                "accepts",
                &self.export.handlers.borrow().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<A: Actor> ExportBuilder<A> {
    /// Lets other nodes send `M` to this component (as a tell or an ask).
    /// The export is live already; the builder only adds message types.
    #[allow(clippy::return_self_not_must_use)]
    pub fn accept<M>(self) -> Self
    where
        A: Handler<M>,
        M: RemoteMessage,
        M::Codec: Codec<A::Reply>,
    {
        let dispatch: Dispatch<A> = Box::new(|addr, req, answer| {
            if req.expects_reply && answer.is_none() {
                return Err(CallError::Stopped);
            }
            if addr.is_full() && !addr.is_stopped() {
                // Decoded only when it can be queued.
                return Ok(Delivered::Full);
            }
            let msg = With::<M::Codec, M>::decode(req.content_type, req.payload)?;
            deliver_now::<A, M>(addr, msg, req.deadline, answer, req.span())
        });
        self.export.handlers.borrow_mut().insert(M::NAME, dispatch);
        self.export
            .locals
            .borrow_mut()
            .insert(TypeId::of::<M>(), local_entry::<A, M>(&self.export.addr));
        self
    }

    /// Accepts every message of protocol `P` (see [`protocol!`](crate::protocol)):
    /// the compiler checks that the component handles each of them with the reply the
    /// protocol names, so clients typed by `P` call what the server implements.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use tern_actors::{Actor, Context, Handler, spawn};
    /// # use tern_actors::remote::{Node, NodeConfig, Postcard, RemoteMessage};
    /// # use tern_transport::SimTransport;
    /// # use tern_executor::sim::World;
    /// # use std::{collections::BTreeMap, rc::Rc};
    /// #[derive(Serialize, Deserialize)]
    /// struct Double(u32);
    /// impl RemoteMessage for Double {
    ///     const NAME: &'static str = "demo.v1.Double";
    ///     type Codec = Postcard;
    /// }
    /// tern_actors::protocol! {
    ///     /// What doublers do.
    ///     pub Doubling { Double => u32 }
    /// }
    ///
    /// struct Doubler;
    /// impl Actor for Doubler {}
    /// impl Handler<Double> for Doubler {
    ///     type Reply = u32;
    ///     async fn handle(&mut self, m: Double, _: &mut Context<Self>) -> u32 { m.0 * 2 }
    /// }
    /// # let mut world = World::new(1).unwrap();
    /// # let a = world.add_node("a").unwrap();
    /// # let dir = Rc::new(BTreeMap::from([("a".to_owned(), a)]));
    /// # let t = SimTransport::new("a", world.socket(a), dir);
    /// # let answer = world.spawn_on(a, async move {
    /// let node = Node::start(NodeConfig::new("a"), t).unwrap();
    /// node.export("doubler", &spawn(Doubler)).unwrap().serve::<Doubling>();
    /// node.lookup::<Doubling>("doubler").ask(Double(21)).await
    /// # });
    /// # world.run_until_idle();
    /// # assert_eq!(world.runtime(a).unwrap().block_on(answer).unwrap(), Ok(42));
    /// ```
    ///
    /// A component that does not handle a message of the protocol is refused:
    ///
    /// ```compile_fail
    /// # use serde::{Deserialize, Serialize};
    /// # use tern_actors::{Actor, Addr};
    /// # use tern_actors::remote::{ExportBuilder, Postcard, RemoteMessage};
    /// #[derive(Serialize, Deserialize)]
    /// struct Double(u32);
    /// impl RemoteMessage for Double {
    ///     const NAME: &'static str = "demo.v1.Double";
    ///     type Codec = Postcard;
    /// }
    /// tern_actors::protocol! {
    ///     /// What doublers do.
    ///     pub Doubling { Double => u32 }
    /// }
    /// struct Idle;
    /// impl Actor for Idle {}
    /// fn export(b: ExportBuilder<Idle>) -> ExportBuilder<Idle> {
    ///     b.serve::<Doubling>()
    /// }
    /// ```
    #[allow(clippy::return_self_not_must_use)]
    pub fn serve<P: ServedBy<A>>(self) -> Self {
        P::accept_all(self)
    }

    /// A builder for an export of `addr` that no node holds: its tables serve a
    /// transport-free `Ref` (see [`Ref::local_as`](super::Ref::local_as)).
    pub(crate) fn detached(addr: &Addr<A>) -> Self {
        Self {
            export: Rc::new(Export::new(addr.clone())),
            name: String::new(),
        }
    }

    pub(crate) fn exported(&self) -> Rc<dyn Exported> {
        self.export.clone()
    }
}
