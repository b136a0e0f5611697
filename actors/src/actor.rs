//! The component traits.

use std::future::Future;

use crate::context::Context;
use crate::error::ActorError;

/// A component: private state that handles one message at a time.
///
/// Lifecycle, per incarnation (a restart begins a new one from the factory):
///
/// 1. [`started`](Actor::started) runs before the first message. An `Err` counts as a
///    failure for supervision.
/// 2. Messages are handled one at a time, in mailbox order, each to completion (even
///    across `.await`) before the next starts.
/// 3. When the incarnation ends (stop, failure), its children stop, newest first, and
///    then [`stopped`](Actor::stopped) runs.
///
/// No `Send` bound anywhere: a component lives on one container thread for its life.
///
/// # Examples
///
/// ```
/// use tern_actors::{Actor, ActorError, Context};
///
/// struct Greeter { greeted: u32 }
/// impl Actor for Greeter {
///     async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), ActorError> {
///         self.greeted = 0;
///         Ok(())
///     }
/// }
/// ```
pub trait Actor: Sized + 'static {
    /// Runs before the first message of each incarnation.
    fn started(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<(), ActorError>> {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once an incarnation has ended and its children have stopped.
    fn stopped(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = ()> {
        let _ = ctx;
        async {}
    }
}

/// How a component handles messages of type `M`, with a typed reply.
///
/// `handle` is an `async fn` with no `Send` bound. While it awaits, the component takes
/// no other message, and other components on the same thread keep running.
///
/// The reply goes to an [`ask`](crate::Addr::ask)er; for a [`tell`](crate::Addr::tell)
/// it is dropped. To fail the component (and let supervision restart it), call
/// [`Context::fail`] or panic; returning an `Err` reply only informs the caller.
///
/// # Examples
///
/// ```
/// use tern_actors::{Actor, Context, Handler};
///
/// struct Counter { n: u64 }
/// impl Actor for Counter {}
///
/// struct Add(u64);
/// impl Handler<Add> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) -> u64 {
///         self.n += msg.0;
///         self.n
///     }
/// }
/// ```
pub trait Handler<M: 'static>: Actor {
    /// What an `ask` of `M` returns.
    type Reply: 'static;

    /// Handles one message.
    // `async fn` in a public trait normally warns that callers cannot add a `Send`
    // bound; a tern container is single-threaded, so no caller ever needs one.
    #[allow(async_fn_in_trait)]
    async fn handle(&mut self, msg: M, ctx: &mut Context<Self>) -> Self::Reply;
}
