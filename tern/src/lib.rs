//! Tern: distributed applications built from components in single-threaded containers.
//!
//! A **component** owns its state and talks only by messages, one at a time. A
//! **container** is one process on one thread, running every component's mailbox first
//! come, first served on tern's own executor. Component code needs no locks and no
//! `Send` bounds.
//!
//! ```
//! use tern::prelude::*;
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
//! Runtime::new().unwrap().block_on(async {
//!     let counter = spawn(Counter { n: 0 });
//!     counter.try_tell(Add(1)).unwrap();             // fire and forget
//!     assert_eq!(counter.ask(Add(2)).await, Ok(3));  // typed reply by a deadline
//! });
//! ```
//!
//! The guarantees (one message at a time, per-sender order, at-most-once delivery with
//! no silent loss, contained failures, stop order) are stated in [`tern_actors`]; the
//! executor's (FIFO, no starvation, virtual time, lossless cross-thread wakes) in
//! [`tern_executor`].
//!
//! # Imports and dependencies
//!
//! - [`prelude`]: `use tern::prelude::*;` for components in one process: [`Actor`],
//!   [`Handler`], [`Context`], [`spawn`], [`build`], [`Addr`], supervision, streamed
//!   replies and [`StreamExt`](prelude::StreamExt) to read them, the [`Runtime`] and
//!   [`time`].
//! - [`remote::prelude`]: `use tern::remote::prelude::*;` for code that talks to other
//!   nodes or runs on the simulator: all of the above plus [`remote::Node`],
//!   [`remote::Ref`], [`remote::CallError`], `#[derive(RemoteMessage)]` and the codecs,
//!   the transports, [`sim::World`], [`remote::sim_nodes`] and [`app::App`].
//!
//! A user's `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! tern = { git = "…" }                                # or a path
//! serde = { version = "1", features = ["derive"] }    # for messages that cross nodes
//! ```
//!
//! `futures-lite` is needed only to name its items directly (`StreamExt` is in the
//! preludes, `futures_lite::stream::iter` and friends are not).
//!
//! # The crates behind the facade
//!
//! - [`remote`]: components on other nodes: [`remote::Node`], typed references by name
//!   ([`remote::Ref`]) with the same `tell` and `ask`, codecs for message types that
//!   cross nodes.
//! - [`sim`]: the deterministic simulator: many nodes on one thread, virtual time, a
//!   seeded network with partitions, crashes and held messages, and a trace hash that
//!   replays exactly from a seed.
//! - [`transport`]: the transport SPI and its simulated implementation.
//! - [`check`]: checkers for the delivery promises, fed by the application under test.
//! - [`log`]: logging: text or JSON lines, `RUST_LOG`-style filters, stable event
//!   names, virtual time and node under the simulator, flood control.
//! - [`metrics`]: a container's counters as OpenMetrics text and a status document,
//!   served by the admin listener.
//! - [`discovery`]: membership from a seed list: SWIM with Lifeguard over sealed UDP
//!   gossip, per-node facts, and the directory that routes component names
//!   ([`membership::use_discovery`]).
//! - [`membership`]: the wiring from discovery into a node's directory.
//! - [`app`]: container processes: a command line (`run`, `node --config`,
//!   `check-config`, `print-config`, `members`), TOML configuration with environment
//!   overrides, gossip discovery, clean shutdown (and a graceful leave) on SIGINT and
//!   SIGTERM.

pub mod app;
pub mod check;
pub mod compat;
pub mod log;
pub mod membership;
pub mod metrics;
pub mod prelude;
pub mod remote;
pub mod trace;

#[doc(inline)]
pub use tern_actors as actors;
#[doc(inline)]
pub use tern_actors::flow;
pub use tern_actors::ops;
#[doc(inline)]
pub use tern_discovery as discovery;
#[doc(inline)]
pub use tern_executor as executor;

/// The Rust examples of `docs/operations.md`, compiled and run as doc tests.
#[doc = include_str!("../../docs/operations.md")]
#[cfg(doctest)]
pub struct OperationsDoc;
#[doc(inline)]
pub use tern_executor::sim;
#[doc(inline)]
pub use tern_proto as proto;
#[doc(inline)]
pub use tern_transport as transport;

pub use tern_actors::{
    Actor, ActorError, Addr, Ask, AskError, AskRequest, ComponentStats, Context, Environment,
    Handler, MissedTicks, RegistryError, RemoteAddr, RemoteReply, Restart, SendError, Spawn,
    Supervision, Tell, WeakAddr, build, lookup, register, spawn,
};
pub use tern_executor::{
    Instant, JoinError, JoinHandle, Runtime, crossing, spawn as spawn_task, time, yield_now,
};
