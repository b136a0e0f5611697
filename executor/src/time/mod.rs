//! Time: the runtime's clock, timers, timeouts and intervals.
//!
//! All of these read the clock of the runtime they run on, so the same code runs on
//! real time in production and on virtual time in tests and the simulator. Timers with
//! equal deadlines fire in the order they were created.
//!
//! # Panics
//!
//! Every function here but [`try_now`] and [`is_virtual`] must be called on a runtime's
//! thread, inside [`Runtime::block_on`](crate::Runtime::block_on) or a task it runs;
//! elsewhere it panics with a message that says so (a programming error, not something
//! input can cause). Those two answer `None` outside a runtime, for code such as a
//! logging layer that may run anywhere.

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

/// The current time on the clock of the runtime running on this thread, or `None`
/// outside a runtime: [`now`] for code that may also run elsewhere, such as a logging
/// layer that stamps records with the (possibly virtual) time. Inside a simulated
/// `World`, a node's task reads the world's virtual time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::{Instant, Runtime, time};
///
/// assert_eq!(time::try_now(), None); // no runtime on this thread
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async {
///     time::sleep(Duration::from_secs(5)).await;
///     assert_eq!(time::try_now(), Some(Instant::ZERO + Duration::from_secs(5)));
/// });
/// ```
#[must_use]
pub fn try_now() -> Option<Instant> {
    Core::try_current().map(|c| c.fresh_now())
}

/// Whether the clock of the runtime running on this thread is virtual (tests, the
/// simulator) rather than real, or `None` outside a runtime; a logging layer uses it
/// to label [`try_now`]'s reading as virtual time.
///
/// # Examples
///
/// ```
/// use tern_executor::{Runtime, time};
///
/// assert_eq!(time::is_virtual(), None); // no runtime on this thread
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async { assert_eq!(time::is_virtual(), Some(true)) });
/// let rt = Runtime::builder().build().unwrap();
/// rt.block_on(async { assert_eq!(time::is_virtual(), Some(false)) });
/// ```
#[must_use]
pub fn is_virtual() -> Option<bool> {
    Core::try_current().map(|c| c.clock().is_virtual())
}

/// This runtime's clock.
#[must_use]
pub fn clock() -> Clock {
    Core::with_current(|c| c.clock().clone())
}

/// Seconds from the Unix epoch to a virtual clock's origin as [`wall_now`] reports it
/// (2023-11-14T22:13:20Z): a plausible date, the same in every run.
pub const VIRTUAL_WALL_ORIGIN_SECS: u64 = 1_700_000_000;

/// The wall-clock time ("what time is it"), for timestamps and protocols that exchange
/// dates; measure durations and deadlines with [`now`] instead, which never goes back.
///
/// - On a real clock it is the operating system's `SystemTime::now()`.
/// - On a virtual clock it is `UNIX_EPOCH + VIRTUAL_WALL_ORIGIN_SECS` plus the virtual
///   time, so runs repeat exactly.
///
/// Either way the runtime's wall offset is added
/// ([`Runtime::set_wall_offset`](crate::Runtime::set_wall_offset); the simulator sets
/// it per node with `World::set_clock_offset`), so nodes' wall clocks can disagree and
/// jump while their monotonic clocks stay together.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use tern_executor::{Runtime, time};
///
/// let rt = Runtime::builder().virtual_time().build().unwrap();
/// rt.set_wall_offset(5_000_000_000); // five seconds fast
/// rt.block_on(async {
///     time::sleep(Duration::from_secs(1)).await;
///     let wall = time::wall_now().duration_since(UNIX_EPOCH).unwrap();
///     assert_eq!(wall, Duration::from_secs(time::VIRTUAL_WALL_ORIGIN_SECS + 1 + 5));
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[must_use]
pub fn wall_now() -> std::time::SystemTime {
    use std::time::{SystemTime, UNIX_EPOCH};
    Core::with_current(|c| {
        let offset = c.wall_offset();
        if c.clock().is_virtual() {
            let nanos = i128::from(VIRTUAL_WALL_ORIGIN_SECS) * 1_000_000_000
                + i128::from(c.clock().now().as_nanos())
                + i128::from(offset);
            return UNIX_EPOCH
                + Duration::from_nanos(u64::try_from(nanos.max(0)).unwrap_or(u64::MAX));
        }
        // The one place allowed to read the OS wall clock: on a real clock, this is what
        // "wall-clock time" means (`Clock::real` is the monotonic one).
        #[allow(clippy::disallowed_methods)]
        let real = SystemTime::now();
        let by = Duration::from_nanos(offset.unsigned_abs());
        let shifted = if offset >= 0 {
            real.checked_add(by)
        } else {
            real.checked_sub(by)
        };
        shifted.unwrap_or(real)
    })
}
