//! Protocols: the message types a component accepts and their replies, named without
//! the component's actor type, so a client binary needs only the message types.
//!
//! [`protocol!`](crate::protocol) declares one. A [`Ref`](super::Ref) is typed either by
//! the actor (`Ref<Store>`, when the caller has the type) or by a protocol (`Ref<Kv>`):
//! both call with the same `tell`, `ask` and `ask_stream`, and both are checked at
//! compile time.

use std::any::{Any, TypeId};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::codec::RemoteMessage;
use super::error::CallError;
use super::export::{Export, ExportBuilder, Exported};
use super::stream::{LocalStream, Open, Opened};
use crate::actor::{Actor, Handler};
use crate::addr::Addr;
use crate::error::{AskError, SendError};
use crate::stream::{StreamMessage, Streaming};

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

/// `Self` answers message `M` with a stream of `M::Item`s: what a
/// [`Ref<Self>`](super::Ref) needs to [`ask_stream`](super::Ref::ask_stream) an `M`.
///
/// Every actor that handles [`Streaming<M>`] accepts it. A protocol declared with
/// [`protocol!`](crate::protocol) accepts the streams it lists (`Scan => stream Row`),
/// so a client can open a stream through `Ref<Protocol>` without the component's
/// type. A stream the protocol does not list is a compile error:
///
/// ```compile_fail
/// use serde::{Deserialize, Serialize};
/// use tern_actors::StreamMessage;
/// use tern_actors::remote::{Postcard, Ref, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// struct Scan;
/// impl RemoteMessage for Scan { const NAME: &'static str = "log.v1.Scan"; type Codec = Postcard; }
/// impl StreamMessage for Scan { type Item = String; }
/// #[derive(Serialize, Deserialize)]
/// struct Follow;
/// impl RemoteMessage for Follow { const NAME: &'static str = "log.v1.Follow"; type Codec = Postcard; }
/// impl StreamMessage for Follow { type Item = String; }
///
/// tern_actors::protocol! {
///     /// Past lines only.
///     pub History { Scan => stream String }
/// }
///
/// fn follow(log: &Ref<History>) {
///     let _ = log.ask_stream(Follow); // History does not stream Follow
/// }
/// ```
///
/// The same code with a stream the protocol lists compiles:
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use tern_actors::StreamMessage;
/// # use tern_actors::remote::{Postcard, Ref, RemoteMessage};
/// # #[derive(Serialize, Deserialize)]
/// # struct Scan;
/// # impl RemoteMessage for Scan { const NAME: &'static str = "log.v1.Scan"; type Codec = Postcard; }
/// # impl StreamMessage for Scan { type Item = String; }
/// # tern_actors::protocol! {
/// #     /// Past lines only.
/// #     pub History { Scan => stream String }
/// # }
/// fn scan(log: &Ref<History>) {
///     let _ = log.ask_stream(Scan).credit(4);
/// }
/// ```
pub trait AcceptsStream<M: RemoteMessage + StreamMessage>: 'static {
    /// How a stream request `M` reaches a component on this node, without encoding.
    /// Implemented by tern: an actor type opens it on its own `Addr`, a protocol
    /// through the message's entry in the component's export (see
    /// [`ExportBuilder::accept_stream`]).
    #[doc(hidden)]
    fn open_here(found: &Found, msg: M) -> Opened<M> {
        found.streamed(msg)
    }
}

impl<A, M> AcceptsStream<M> for A
where
    A: Handler<Streaming<M>>,
    M: RemoteMessage + StreamMessage,
{
    fn open_here(found: &Found, msg: M) -> Opened<M> {
        Opened(match found.addr::<A>() {
            Some(addr) => Open::Here(addr.ask_stream(msg)),
            None => Open::Remote(msg),
        })
    }
}

/// A protocol a component of type `A` serves in full: every message it lists, with
/// the reply it lists, and every stream it lists (as [`Handler<Streaming<M>>`]).
/// [`protocol!`](crate::protocol) implements it for every actor type that does, so
/// [`ExportBuilder::serve`] checks at compile time that the server implements what its
/// clients call. A component that does not stream what the protocol lists is refused:
///
/// ```compile_fail
/// use serde::{Deserialize, Serialize};
/// use tern_actors::{Actor, StreamMessage};
/// use tern_actors::remote::{ExportBuilder, Postcard, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// struct Scan;
/// impl RemoteMessage for Scan { const NAME: &'static str = "log.v1.Scan"; type Codec = Postcard; }
/// impl StreamMessage for Scan { type Item = String; }
/// tern_actors::protocol! {
///     /// Past lines.
///     pub History { Scan => stream String }
/// }
///
/// struct Silent; // handles no `Streaming<Scan>`
/// impl Actor for Silent {}
/// fn export(b: ExportBuilder<Silent>) -> ExportBuilder<Silent> {
///     b.serve::<History>()
/// }
/// ```
pub trait ServedBy<A: Actor>: 'static {
    /// Lets other nodes send every message of the protocol to the export.
    fn accept_all(export: ExportBuilder<A>) -> ExportBuilder<A>;
}

/// Declares a protocol: a type that names the messages a component accepts and their
/// replies, for clients that do not have the component's type (see [`Accepts`] and
/// [`AcceptsStream`]).
///
/// Each entry is a message and what answers it: `Get => Option<String>` for a tell or
/// an ask with that reply, `Scan => stream Row` for a request answered with a stream
/// of `Row`s ([`Ref::ask_stream`](super::Ref::ask_stream); the message implements
/// [`StreamMessage`] with `Item = Row`, checked here).
///
/// It expands to an uninhabited `enum` with the given name, an [`Accepts`] or
/// [`AcceptsStream`] impl per entry, and a [`ServedBy`] impl for every actor that
/// handles them all: each message with the reply listed, each stream as
/// [`Streaming<M>`](crate::Streaming). Each message's codec must be able to carry its
/// reply or its items (checked here).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tern_actors::StreamMessage;
/// use tern_actors::remote::{Json, Postcard, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Put { pub key: String, pub value: String }
/// impl RemoteMessage for Put { const NAME: &'static str = "kv.v1.Put"; type Codec = Postcard; }
/// #[derive(Serialize, Deserialize)]
/// pub struct Get { pub key: String }
/// impl RemoteMessage for Get { const NAME: &'static str = "kv.v1.Get"; type Codec = Json; }
/// /// Every pair whose key starts with `prefix`, in key order.
/// #[derive(Serialize, Deserialize)]
/// pub struct Scan { pub prefix: String }
/// impl RemoteMessage for Scan { const NAME: &'static str = "kv.v1.Scan"; type Codec = Postcard; }
/// impl StreamMessage for Scan { type Item = (String, String); }
///
/// tern_actors::protocol! {
///     /// The key-value store, as its clients see it.
///     pub Kv {
///         Put => Option<String>,
///         Get => Option<String>,
///         Scan => stream (String, String),
///     }
/// }
///
/// fn reply_of<P: tern_actors::remote::Accepts<M>, M: RemoteMessage>() -> &'static str {
///     std::any::type_name::<P::Reply>()
/// }
/// assert_eq!(reply_of::<Kv, Get>(), std::any::type_name::<Option<String>>());
/// ```
///
/// A stream listed with another item type than its message's is refused:
///
/// ```compile_fail
/// # use serde::{Deserialize, Serialize};
/// # use tern_actors::StreamMessage;
/// # use tern_actors::remote::{Postcard, RemoteMessage};
/// # #[derive(Serialize, Deserialize)]
/// # pub struct Scan { pub prefix: String }
/// # impl RemoteMessage for Scan { const NAME: &'static str = "kv.v1.Scan"; type Codec = Postcard; }
/// impl StreamMessage for Scan { type Item = (String, String); }
///
/// tern_actors::protocol! {
///     /// Keys only? Not what `Scan` yields.
///     pub Keys { Scan => stream String }
/// }
/// ```
#[macro_export]
macro_rules! protocol {
    // Sorts the entries, one at a time: `M => stream Item` ...
    (@entries $head:tt [$($asks:tt)*] [$($streams:tt)*]
        $msg:ty => stream $item:ty $(, $($rest:tt)*)?
    ) => {
        $crate::protocol! { @entries $head [$($asks)*] [$($streams)* ($msg, $item)] $($($rest)*)? }
    };
    // ... and `M => Reply`.
    (@entries $head:tt [$($asks:tt)*] [$($streams:tt)*]
        $msg:ty => $reply:ty $(, $($rest:tt)*)?
    ) => {
        $crate::protocol! { @entries $head [$($asks)* ($msg, $reply)] [$($streams)*] $($($rest)*)? }
    };
    // Every entry sorted.
    (@entries [$(#[$meta:meta])* $vis:vis $name:ident]
        [$(($msg:ty, $reply:ty))*] [$(($smsg:ty, $item:ty))*]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {}

        $(
            impl $crate::remote::Accepts<$msg> for $name {
                type Reply = $reply;
            }
        )*

        $(
            impl $crate::remote::AcceptsStream<$smsg> for $name {}
        )*

        impl<A> $crate::remote::ServedBy<A> for $name
        where
            A: $crate::Actor
                $(+ $crate::Handler<$msg, Reply = $reply>)*
                $(+ $crate::Handler<$crate::Streaming<$smsg>>)*,
        {
            fn accept_all(
                export: $crate::remote::ExportBuilder<A>,
            ) -> $crate::remote::ExportBuilder<A> {
                export $(.accept::<$msg>())* $(.accept_stream::<$smsg>())*
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
            // Each stream yields the items listed, and its codec carries them.
            fn streams<M, I>()
            where
                M: $crate::remote::RemoteMessage + $crate::StreamMessage<Item = I>,
                M::Codec: $crate::remote::Codec<I>,
            {
            }
            fn check() {
                $(carries::<$msg, $reply>();)*
                $(streams::<$smsg, $item>();)*
            }
        };
    };
    (
        $(#[$meta:meta])*
        $vis:vis $name:ident { $($entries:tt)+ }
    ) => {
        $crate::protocol! { @entries [$(#[$meta])* $vis $name] [] [] $($entries)+ }
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

    /// The export's stream entry for `M`: opened here without encoding, or refused
    /// as a remote node would refuse it if the export does not stream `M`.
    pub(crate) fn streamed<M: RemoteMessage + StreamMessage>(&self, msg: M) -> Opened<M> {
        let Some(export) = &self.export else {
            return Opened(Open::Remote(msg));
        };
        let entry = export
            .local(TypeId::of::<Streaming<M>>())
            .and_then(|e| e.downcast_ref::<Rc<dyn LocalStream<M>>>().cloned());
        Opened(match entry {
            Some(target) => Open::Here(target.ask_stream(msg)),
            None => Open::Refused(CallError::Remote {
                code: tern_proto::v1::ErrorCode::UnknownMessageType,
                detail: format!("component {:?} does not stream {:?}", self.name, M::NAME),
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
