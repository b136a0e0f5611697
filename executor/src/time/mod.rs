//! Time: the runtime's clock, timers, timeouts and intervals.
//!
//! All of these read the clock of the runtime they run on, so the same code runs on
//! real time in production and on virtual time in tests and the simulator. Timers with
//! equal deadlines fire in the order they were created.
//!
//! # Panics
//!
//! Every function here must be called on a runtime's thread, inside
//! [`Runtime::block_on`](crate::Runtime::block_on) or a task it runs; elsewhere it panics
//! with a message that says so (a programming error, not something input can cause).

mod clock;
mod instant;
mod sleep;
pub(crate) mod timers;

pub use clock::Clock;
pub use instant::Instant;
pub use sleep::{Elapsed, Interval, Sleep, Timeout, interval, sleep, sleep_until, timeout};
pub use std::time::Duration;

use crate::runtime::Core;

/// The current time on this runtime's clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::{Runtime, time};
///
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async {
///     let t0 = time::now();
///     time::sleep(Duration::from_secs(60)).await; // virtual: returns at once
///     assert_eq!(time::now() - t0, Duration::from_secs(60));
/// });
/// ```
#[must_use]
pub fn now() -> Instant {
    Core::with_current(Core::fresh_now)
}

/// This runtime's clock.
#[must_use]
pub fn clock() -> Clock {
    Core::with_current(|c| c.clock().clone())
}
