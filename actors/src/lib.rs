//! Tern's components: typed handlers on a single-threaded container.
//!
//! A component owns its state and talks only by messages. It handles one message at a
//! time, so its code needs no locks, and nothing needs to be `Send`.
//!
//! ```
//! use tern_actors::{Actor, Context, Handler, spawn};
//!
//! struct Counter { n: u64 }
//! impl Actor for Counter {}
//!
//! struct Add(u64);
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.n += msg.0;
//!         self.n
//!     }
//! }
//!
//! tern_executor::Runtime::new().unwrap().block_on(async {
//!     let counter = spawn(Counter { n: 0 });
//!     counter.try_tell(Add(1)).unwrap();
//!     assert_eq!(counter.ask(Add(2)).await, Ok(3));
//! });
//! ```
//!
//! # Guarantees
//!
//! - **One message at a time per component.** A handler runs to completion, across
//!   every `.await`, before the component takes its next message. Other components on
//!   the same thread run while it awaits.
//! - **Order.** Messages from one sender to one component are handled in the order
//!   sent. Nothing stronger: how messages from different senders interleave is not
//!   promised.
//! - **First come, first served.** Components are tasks on the container's FIFO run
//!   queue; there are no priorities among application messages. One signal overtakes:
//!   a stop ([`Addr::stop`], or a parent stopping) takes effect before the next queued
//!   message, and an escalation from a child likewise ends the current incarnation
//!   before the next message.
//! - **Delivery: at most once, never silently lost.** `try_tell` gives a message back
//!   when it cannot be queued; `tell` waits for room up to a deadline, then gives it
//!   back; every `ask` ends with a reply or a typed [`AskError`] by its deadline.
//!   Messages still queued when a component stops for good are rejected: asks fail with
//!   [`AskError::Stopped`], tells are counted ([`ComponentStats::dropped`]) and logged.
//! - **Failures stay inside the component.** A panic in a handler or a hook, an `Err`
//!   from [`Actor::started`], or [`Context::fail`] ends the incarnation; the
//!   [`Supervision`] policy restarts it from its factory (with backoff and a restart
//!   limit), stops it, or escalates to its parent. The address stays valid across
//!   restarts. An ask whose handler panicked fails with [`AskError::HandlerPanicked`].
//! - **Stop order.** When a component stops, it first stops taking messages, then its
//!   children stop, newest first, each completely before the next, then its
//!   [`Actor::stopped`] hook runs, then its queued messages are rejected and
//!   [`Addr::stopped`] resolves.
//!
//! # Thread affinity, checked by the compiler
//!
//! An [`Addr`] cannot leave its container's thread:
//!
//! ```compile_fail
//! fn needs_send<T: Send>(_: T) {}
//! struct Quiet;
//! impl tern_actors::Actor for Quiet {}
//! tern_executor::Runtime::new().unwrap().block_on(async {
//!     needs_send(tern_actors::spawn(Quiet)); // error: `Rc<..>` cannot be sent between threads
//! });
//! ```
//!
//! while a [`RemoteAddr`] is made for exactly that:
//!
//! ```
//! fn needs_send_sync<T: Send + Sync>(_: T) {}
//! struct Quiet;
//! impl tern_actors::Actor for Quiet {}
//! tern_executor::Runtime::new().unwrap().block_on(async {
//!     needs_send_sync(tern_actors::spawn(Quiet).remote());
//! });
//! ```
//!
//! # Non-goals
//!
//! - No priorities between application messages, and no preemption of a running
//!   handler: a stop waits for the message in progress to finish.
//! - No delivery guarantee stronger than at most once (no retries, no persistence).
//! - No cross-thread components: other threads reach a component through
//!   [`RemoteAddr`].

mod actor;
mod addr;
mod ask;
mod context;
mod env;
mod error;
pub mod flow;
mod mailbox;
pub mod ops;
mod registry;
pub mod remote;
mod remote_handle;
mod reply;
mod spawn;
pub mod stream;
pub(crate) mod supervision;
pub mod trace;

pub use actor::{Actor, Handler};
pub use addr::{Addr, WeakAddr};
pub use ask::{Ask, AskRequest, Tell};
pub use context::{Context, MissedTicks};
pub use env::Environment;
pub use error::{ActorError, AskError, RegistryError, SendError};
pub use mailbox::ComponentStats;
pub use registry::{lookup, register};
pub use remote_handle::{REMOTE_CHANNEL_CAPACITY, RemoteAddr, RemoteReply};
pub use spawn::{DEFAULT_MAILBOX, DEFAULT_TIMEOUT, Spawn, build, spawn};
pub use stream::{
    Cancelled, DEFAULT_CREDIT, Emitter, ItemStream, StreamError, StreamMessage, Streaming,
};
pub use supervision::{Restart, Supervision};
