//! Components reachable from other nodes, and how a request reaches them.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::codec::{Codec, RemoteMessage, With};
use super::error::CallError;
use super::stream::{Source, StreamDispatch};
use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::SendError;
use crate::mailbox::ComponentStats;

/// An encoded reply and its content type.
pub(crate) type Encoded = (Vec<u8>, &'static str);

/// The wait for an ask's reply, encoded.
pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = Result<Encoded, CallError>>>>;

/// The wait for room in a full mailbox, then the delivery.
pub(crate) type Waiting = Pin<Box<dyn Future<Output = Result<Delivered, CallError>>>>;

/// What delivering a request did: a tell was queued, an ask's reply is on its way, or
/// the mailbox is full and the request waits for room (up to a bound; the node reads
/// nothing else meanwhile, so the wait pushes back to the senders).
pub(crate) enum Delivered {
    Told,
    Asked(ReplyFuture),
    Full(Waiting),
}

type Dispatch<A> =
    Box<dyn Fn(&Addr<A>, &str, &[u8], bool, Duration) -> Result<Delivered, CallError>>;

/// One exported component, type-erased for the node's table.
pub(crate) trait Exported {
    /// Whether the component has stopped for good.
    fn is_stopped(&self) -> bool;
    /// The `Addr<A>`, for typed local lookups.
    fn addr(&self) -> &dyn Any;
    /// The component's counters (mailbox depth, handled, ...).
    fn stats(&self) -> ComponentStats;
    /// Decodes a request and queues it in the component's mailbox: now, or after
    /// waiting up to `wait` for room.
    fn deliver(
        &self,
        message_type: &str,
        content_type: &str,
        payload: &[u8],
        expects_reply: bool,
        wait: Duration,
    ) -> Result<Delivered, CallError>;
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
    addr: Addr<A>,
    handlers: RefCell<BTreeMap<&'static str, Dispatch<A>>>,
    streams: RefCell<BTreeMap<&'static str, StreamDispatch<A>>>,
}

impl<A: Actor> Export<A> {
    pub(crate) fn new(addr: Addr<A>) -> Self {
        Self {
            addr,
            handlers: RefCell::new(BTreeMap::new()),
            streams: RefCell::new(BTreeMap::new()),
        }
    }

    pub(crate) fn accept_stream(&self, name: &'static str, dispatch: StreamDispatch<A>) {
        self.streams.borrow_mut().insert(name, dispatch);
    }
}

/// Queues `msg` now: a tell, or an ask whose encoded reply the result waits for.
fn deliver_now<A, M>(addr: &Addr<A>, msg: M, expects_reply: bool) -> Result<Delivered, SendError<M>>
where
    A: Handler<M>,
    M: RemoteMessage,
    M::Codec: Codec<A::Reply>,
{
    if !expects_reply {
        addr.try_tell(msg)?;
        return Ok(Delivered::Told);
    }
    let slot = addr.try_ask(msg)?;
    Ok(Delivered::Asked(Box::pin(async move {
        let reply = poll_fn(|cx| slot.poll(cx)).await?;
        // The request was fine; the reply is what could not be encoded.
        let bytes = With::<M::Codec, A::Reply>::encode(&reply).map_err(|e| CallError::Remote {
            code: tern_proto::v1::ErrorCode::Unspecified,
            detail: format!("the reply could not be encoded: {e}"),
        })?;
        Ok((bytes, <M::Codec as Codec<A::Reply>>::CONTENT_TYPE))
    })))
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

    fn stats(&self) -> ComponentStats {
        self.addr.stats()
    }

    fn deliver(
        &self,
        message_type: &str,
        content_type: &str,
        payload: &[u8],
        expects_reply: bool,
        wait: Duration,
    ) -> Result<Delivered, CallError> {
        let handlers = self.handlers.borrow();
        let Some(dispatch) = handlers.get(message_type) else {
            return Err(CallError::Remote {
                code: tern_proto::v1::ErrorCode::UnknownMessageType,
                detail: format!("this component does not accept {message_type:?}"),
            });
        };
        dispatch(&self.addr, content_type, payload, expects_reply, wait)
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
        let dispatch: Dispatch<A> = Box::new(|addr, content_type, payload, expects_reply, wait| {
            let msg = With::<M::Codec, M>::decode(content_type, payload)?;
            match deliver_now::<A, M>(addr, msg, expects_reply) {
                Ok(d) => Ok(d),
                Err(SendError::Full(msg)) => {
                    let addr = addr.clone();
                    Ok(Delivered::Full(Box::pin(async move {
                        let mut msg = msg;
                        let deadline = tern_executor::time::now() + wait;
                        loop {
                            let left =
                                deadline.saturating_duration_since(tern_executor::time::now());
                            if tern_executor::time::timeout(left, addr.room())
                                .await
                                .is_err()
                            {
                                return Err(CallError::MailboxFull);
                            }
                            match deliver_now::<A, M>(&addr, msg, expects_reply) {
                                Err(SendError::Full(m)) => msg = m,
                                other => return other.map_err(refused),
                            }
                        }
                    })))
                }
                Err(e) => Err(refused(e)),
            }
        });
        self.export.handlers.borrow_mut().insert(M::NAME, dispatch);
        self
    }
}
