//! The names local component code uses, for `use tern::prelude::*`.
//!
//! Components and their messages ([`Actor`], [`Handler`], [`Context`]), starting them
//! ([`spawn`], [`build`]), talking to them ([`Addr`], [`SendError`], [`AskError`]), the
//! container-wide [`Environment`],
//! supervision ([`Supervision`], [`Restart`]), streamed replies ([`StreamMessage`],
//! [`Streaming`], [`ItemStream`], read with [`StreamExt`]), the [`Runtime`] and its
//! clock ([`time`], [`Instant`]) and plain tasks ([`spawn_task`]).
//!
//! Code that talks to other nodes or runs on the simulator uses
//! [`tern::remote::prelude`](crate::remote::prelude), which holds all of this too.
//!
//! ```
//! use tern::prelude::*;
//!
//! struct Counter(u64);
//! impl Actor for Counter {}
//!
//! struct Upto(u64);
//! impl StreamMessage for Upto {
//!     type Item = u64;
//! }
//! impl Handler<Streaming<Upto>> for Counter {
//!     type Reply = ();
//!     async fn handle(&mut self, req: Streaming<Upto>, _: &mut Context<Self>) {
//!         let (upto, out) = req.into_parts();
//!         out.detach(futures_lite::stream::iter(0..upto.0));
//!     }
//! }
//!
//! Runtime::new().unwrap().block_on(async {
//!     let counter = spawn(Counter(0));
//!     let items: Vec<u64> = counter.ask_stream(Upto(3)).map(|r| r.unwrap()).collect().await;
//!     assert_eq!(items, [0, 1, 2]);
//! });
//! ```

pub use futures_lite::StreamExt;
pub use tern_actors::{
    Actor, ActorError, Addr, AskError, Cancelled, Context, Emitter, Environment, Handler,
    ItemStream, MissedTicks, Restart, SendError, Spawn, StreamError, StreamMessage, Streaming,
    Supervision, WeakAddr, build, spawn,
};
pub use tern_executor::{Instant, JoinHandle, Runtime, spawn as spawn_task, time};
