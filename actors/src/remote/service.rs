//! Protocols: the message types a component accepts and their replies, named without
//! the component's actor type, so a client binary needs only the message types.
//!
//! [`protocol!`](crate::protocol) declares one. A [`Ref`](super::Ref) is typed either by
//! the actor (`Ref<Store>`, when the caller has the type) or by a protocol (`Ref<Kv>`):
//! both call with the same `tell` and `ask`, and both are checked at compile time.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::codec::RemoteMessage;
use super::error::CallError;
use super::export::{Export, ExportBuilder, Exported};
use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::{AskError, SendError};

/// `Self` accepts message `M` and answers it with [`Accepts::Reply`]: what a
/// [`Ref<Self>`](super::Ref) needs to `tell` or `ask` an `M`.
///
/// Every actor accepts the messages it handles (`A: Handler<M>` implies
/// `A: Accepts<M>`, with the handler's reply). A protocol declared with
/// [`protocol!`](crate::protocol) accepts the messages it lists, so a client can call a
/// component through `Ref<Protocol>` without the component's type. A message a
/// protocol does not list is a compile error:
///
/// ```compile_fail
/// use serde::{Deserialize, Serialize};
/// use tern_actors::remote::{Postcard, Ref, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// struct Get(String);
/// impl RemoteMessage for Get { const NAME: &'static str = "kv.v1.Get"; type Codec = Postcard; }
/// #[derive(Serialize, Deserialize)]
/// struct Delete(String);
/// impl RemoteMessage for Delete { const NAME: &'static str = "kv.v1.Delete"; type Codec = Postcard; }
///
/// tern_actors::protocol! {
///     /// Reads only.
///     pub ReadOnly { Get => Option<String> }
/// }
///
/// fn delete(kv: &Ref<ReadOnly>) {
///     let _ = kv.ask(Delete("k".into())); // ReadOnly does not accept Delete
/// }
/// ```
///
/// The same code with a message the protocol lists compiles:
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use tern_actors::remote::{Postcard, Ref, RemoteMessage};
/// # #[derive(Serialize, Deserialize)]
/// # struct Get(String);
/// # impl RemoteMessage for Get { const NAME: &'static str = "kv.v1.Get"; type Codec = Postcard; }
/// # tern_actors::protocol! {
/// #     /// Reads only.
/// #     pub ReadOnly { Get => Option<String> }
/// # }
/// fn get(kv: &Ref<ReadOnly>) {
///     let _ = kv.ask(Get("k".into()));
/// }
/// ```
pub trait Accepts<M: RemoteMessage>: 'static {
    /// What an ask of `M` returns.
    type Reply: 'static;

    /// How a call of `M` reaches a component on this node, without encoding.
    /// Implemented by tern: an actor type calls its own `Addr`, a protocol the
    /// message's entry in the component's export (see [`ExportBuilder::accept`]).
    #[doc(hidden)]
    fn direct(found: &Found) -> Direct<M, Self::Reply> {
        found.accepted::<M, Self::Reply>()
    }
}

impl<A, M> Accepts<M> for A
where
    A: Handler<M>,
    M: RemoteMessage,
{
    type Reply = <A as Handler<M>>::Reply;

    fn direct(found: &Found) -> Direct<M, Self::Reply> {
        found
            .target::<A, M>()
            .map_or(Direct(Route::Remote), |target| Direct(Route::Here(target)))
    }
}

/// A protocol a component of type `A` serves in full: every message it lists, with
/// the reply it lists. [`protocol!`](crate::protocol) implements it for every actor
/// type that does, so [`ExportBuilder::serve`] checks at compile time that the server
/// implements what its clients call.
pub trait ServedBy<A: Actor>: 'static {
    /// Lets other nodes send every message of the protocol to the export.
    fn accept_all(export: ExportBuilder<A>) -> ExportBuilder<A>;
}

/// Declares a protocol: a type that names the messages a component accepts and their
/// replies, for clients that do not have the component's type (see [`Accepts`]).
///
/// It expands to an uninhabited `enum` with the given name, an [`Accepts`] impl per
/// message, and a [`ServedBy`] impl for every actor that handles them all with these
/// replies. Each message's codec must be able to carry its reply (checked here).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tern_actors::remote::{Json, Postcard, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Put { pub key: String, pub value: String }
/// impl RemoteMessage for Put { const NAME: &'static str = "kv.v1.Put"; type Codec = Postcard; }
/// #[derive(Serialize, Deserialize)]
/// pub struct Get { pub key: String }
/// impl RemoteMessage for Get { const NAME: &'static str = "kv.v1.Get"; type Codec = Json; }
///
/// tern_actors::protocol! {
///     /// The key-value store, as its clients see it.
///     pub Kv {
///         Put => Option<String>,
///         Get => Option<String>,
///     }
/// }
///
/// fn reply_of<P: tern_actors::remote::Accepts<M>, M: RemoteMessage>() -> &'static str {
///     std::any::type_name::<P::Reply>()
/// }
/// assert_eq!(reply_of::<Kv, Get>(), std::any::type_name::<Option<String>>());
/// ```
#[macro_export]
macro_rules! protocol {
    (
        $(#[$meta:meta])*
        $vis:vis $name:ident { $($msg:ty => $reply:ty),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {}

        $(
            impl $crate::remote::Accepts<$msg> for $name {
                type Reply = $reply;
            }
        )+

        impl<A> $crate::remote::ServedBy<A> for $name
        where
            A: $crate::Actor $(+ $crate::Handler<$msg, Reply = $reply>)+,
        {
            fn accept_all(
                export: $crate::remote::ExportBuilder<A>,
            ) -> $crate::remote::ExportBuilder<A> {
                export $(.accept::<$msg>())+
            }
        }

        const _: () = {
            // Each message's codec carries its reply.
            fn carries<M, R>()
            where
                M: $crate::remote::RemoteMessage,
                M::Codec: $crate::remote::Codec<R>,
            {
            }
            fn check() {
                $(carries::<$msg, $reply>();)+
            }
        };
    };
}

/// A local component as a call finds it: its export on this node (or the one a
/// transport-free [`Ref::local`](super::Ref::local) holds), and whether the name
/// registry may be asked too. Internal to [`Accepts::direct`].
#[doc(hidden)]
pub struct Found {
    name: Rc<str>,
    export: Option<Rc<dyn Exported>>,
    registry: bool,
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Found")
            .field("name", &self.name)
            .field("exported", &self.export.is_some())
            .finish_non_exhaustive()
    }
}

impl Found {
    pub(super) fn new(name: Rc<str>, export: Option<Rc<dyn Exported>>, registry: bool) -> Self {
        Self {
            name,
            export,
            registry,
        }
    }

    /// The component as an `Addr<A>`, if it is one.
    pub(crate) fn addr<A: Actor>(&self) -> Option<Addr<A>> {
        self.export
            .as_ref()
            .and_then(|e| e.addr().downcast_ref::<Addr<A>>().cloned())
            .or_else(|| {
                self.registry
                    .then(|| crate::registry::lookup::<A>(&self.name).ok())
                    .flatten()
            })
    }

    /// The component as a target of `M`, if it is an `A`: its export (no allocation),
    /// or a component registered under the name.
    pub(crate) fn target<A, M>(&self) -> Option<Rc<dyn LocalTarget<M, A::Reply>>>
    where
        A: Handler<M>,
        M: 'static,
    {
        let exported = self
            .export
            .clone()
            .and_then(|e| e.into_any().downcast::<Export<A>>().ok());
        match exported {
            Some(export) => Some(export),
            None => self
                .addr::<A>()
                .map(|addr| Rc::new(addr) as Rc<dyn LocalTarget<M, A::Reply>>),
        }
    }

    /// The export's entry for `M` with reply `R`: a message it does not accept (or
    /// with another reply type) is refused as a remote node would refuse it.
    pub(crate) fn accepted<M: RemoteMessage, R: 'static>(&self) -> Direct<M, R> {
        let Some(export) = &self.export else {
            return Direct(Route::Remote);
        };
        let entry = export
            .local(TypeId::of::<M>())
            .and_then(|e| e.downcast_ref::<Rc<dyn LocalTarget<M, R>>>().cloned());
        Direct(match entry {
            Some(target) => Route::Here(target),
            None => Route::Refused(CallError::Remote {
                code: tern_proto::v1::ErrorCode::UnknownMessageType,
                detail: format!(
                    "component {:?} does not accept {:?} with this reply type",
                    self.name,
                    M::NAME
                ),
            }),
        })
    }
}

/// Where a call goes: to a component here, refused here, or to the network.
/// Internal to [`Accepts::direct`].
#[doc(hidden)]
pub struct Direct<M, R>(pub(super) Route<M, R>);

impl<M, R> std::fmt::Debug for Direct<M, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match &self.0 {
            Route::Here(_) => "here",
            Route::Refused(_) => "refused",
            Route::Remote => "remote",
        };
        f.debug_tuple("Direct").field(&route).finish()
    }
}

pub(super) enum Route<M, R> {
    /// The component runs here: call it without encoding.
    Here(Rc<dyn LocalTarget<M, R>>),
    /// It runs here and refuses the message.
    Refused(CallError),
    /// Not here: through the node.
    Remote,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T>>>;

/// A component on this node, called with `M` and answering `R`, whatever its type.
pub(crate) trait LocalTarget<M, R> {
    fn try_tell(&self, msg: M) -> Result<(), SendError<M>>;
    fn tell(&self, msg: M, timeout: Duration) -> Boxed<Result<(), SendError<M>>>;
    fn ask(&self, msg: M, timeout: Duration) -> Boxed<Result<R, AskError>>;
}

impl<A, M> LocalTarget<M, A::Reply> for Export<A>
where
    A: Handler<M>,
    M: 'static,
{
    fn try_tell(&self, msg: M) -> Result<(), SendError<M>> {
        LocalTarget::<M, A::Reply>::try_tell(&self.addr, msg)
    }

    fn tell(&self, msg: M, timeout: Duration) -> Boxed<Result<(), SendError<M>>> {
        LocalTarget::<M, A::Reply>::tell(&self.addr, msg, timeout)
    }

    fn ask(&self, msg: M, timeout: Duration) -> Boxed<Result<A::Reply, AskError>> {
        LocalTarget::<M, A::Reply>::ask(&self.addr, msg, timeout)
    }
}

impl<A, M> LocalTarget<M, A::Reply> for Addr<A>
where
    A: Handler<M>,
    M: 'static,
{
    fn try_tell(&self, msg: M) -> Result<(), SendError<M>> {
        Self::try_tell(self, msg)
    }

    fn tell(&self, msg: M, timeout: Duration) -> Boxed<Result<(), SendError<M>>> {
        Box::pin(Self::tell(self, msg).timeout(timeout))
    }

    fn ask(&self, msg: M, timeout: Duration) -> Boxed<Result<A::Reply, AskError>> {
        let ask = Self::ask(self, msg).timeout(timeout);
        Box::pin(async move { ask.await })
    }
}

/// The entry [`Found::accepted`] finds for `M` in an export of `addr`.
pub(super) fn local_entry<A, M>(addr: &Addr<A>) -> Rc<dyn Any>
where
    A: Handler<M>,
    M: 'static,
{
    let target: Rc<dyn LocalTarget<M, A::Reply>> = Rc::new(addr.clone());
    Rc::new(target)
}

impl super::Node {
    /// The live export called `name` on this node, if any: exported now, or withdrawn
    /// by `Node::shutdown` (still called locally while the container drains).
    pub(super) fn export_of(&self, name: &str) -> Option<Rc<dyn Exported>> {
        self.shared.router.borrow().export_or_retired(name).cloned()
    }
}
