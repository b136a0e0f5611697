//! Tern's single-threaded executor.
//!
//! A tern container is one process on one thread. This crate is that thread's loop: a
//! FIFO run queue of [`async-task`](async_task) runnables, timers on a [`Clock`] that is
//! real or virtual, and a reactor that waits in `zmq::poll` on ZeroMQ sockets and raw
//! descriptors at once. Tasks need not be `Send`.
//!
//! ```
//! use std::time::Duration;
//! use tern_executor::{Runtime, spawn, time};
//!
//! let rt = Runtime::builder().virtual_time().build().unwrap();
//! let order = rt.block_on(async {
//!     let late = spawn(async { time::sleep(Duration::from_secs(2)).await; "late" });
//!     let early = spawn(async { time::sleep(Duration::from_secs(1)).await; "early" });
//!     vec![early.await.unwrap(), late.await.unwrap()]
//! });
//! assert_eq!(order, ["early", "late"]);
//! assert_eq!(rt.clock().now().as_nanos(), 2_000_000_000); // virtual: no real waiting
//! ```
//!
//! # Guarantees
//!
//! - **First come, first served.** Woken tasks run in the order they were woken, with no
//!   priorities; a task that wakes itself goes to the back. Wakes from other threads
//!   join the back of the queue at the start of the next turn.
//! - **No starvation.** While tasks keep being ready, the loop fires due timers and polls
//!   I/O (without blocking) at least once every `poll_budget` polls; when nothing is
//!   ready it does both at once, blocking in I/O until the next timer or wake.
//! - **Stable timer order.** Timers fire in (deadline, creation order).
//! - **Cancelling is immediate.** A dropped [`time::Sleep`] or [`time::Timeout`] leaves the
//!   timer queue at once, so the queue holds only live timers however many are
//!   cancelled (an ask that is answered before its deadline costs nothing afterwards).
//! - **Virtual time is exact.** Under a virtual clock, time moves only when no task is
//!   ready, straight to the next deadline; the same program sees the same instants.
//! - **Wakes are never lost**, from any thread (the loom models in `src/loom_tests.rs`
//!   check the park/unpark protocol, the injector and the [`crossing`] channel).
//! - **Panics are contained.** A panicking task resolves its [`JoinHandle`] to
//!   [`JoinError::Panicked`]; the runtime and every other task keep running.
//!
//! A runtime stays on the thread that made it:
//!
//! ```compile_fail
//! fn needs_send<T: Send>(_: T) {}
//! needs_send(tern_executor::Runtime::new().unwrap()); // error: `Rc<..>` is not `Send`
//! ```
//!
//! # Features
//!
//! - `zmq` (default): the reactor's I/O sources, [`ZmqSocket`] and [`Async`] (any raw
//!   descriptor), polled together by `zmq::poll`. Without it the runtime runs tasks,
//!   timers and cross-thread wakes only, and libzmq is not linked: the loom models and
//!   the fuzz targets build that way. The `tern` facade always turns it on.
//!
//! # Non-goals
//!
//! - No multi-threaded scheduler and no work stealing: one container, one thread.
//! - No task priorities.
//! - No `Send` futures API; cross-thread entry is [`crossing`] and [`std::task::Waker`].
//! - No file-system I/O.

pub mod crossing;
mod error;
#[cfg(all(test, tern_loom))]
mod loom_tests;
mod parker;
mod queue;
mod reactor;
mod runtime;
pub mod sim;
mod sync;
mod task;
pub mod time;

pub use error::Error;
#[cfg(feature = "zmq")]
pub use reactor::{Async, Interest, ZmqSocket};
pub use runtime::{
    Builder, DEFAULT_POLL_BUDGET, Runtime, RuntimeStats, extension, next_id, spawn, stats,
    yield_now,
};
pub use task::{JoinError, JoinHandle, panic_message};
pub use time::{Clock, Instant};
