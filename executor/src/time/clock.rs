//! Real and virtual time behind one type.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use super::Instant;

/// The one source of time in a tern container.
///
/// - [`Clock::real`] follows the operating system's monotonic clock.
/// - [`Clock::virtual_at`] stands still until the runtime advances it: when no task is
///   ready, the runtime jumps it to the next timer's deadline, so an hour of timeouts
///   costs microseconds and repeats exactly.
///
/// Everything in tern reads time through the clock of the runtime it runs on
/// ([`now`](crate::time::now)); `std::time::Instant::now` is banned elsewhere by the
/// workspace's clippy configuration.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::time::{Clock, Instant};
///
/// let clock = Clock::virtual_at(Instant::ZERO);
/// assert_eq!(clock.now(), Instant::ZERO);
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(clock.now(), Instant::ZERO + Duration::from_secs(3));
/// ```
#[derive(Clone, Debug)]
pub struct Clock(Rc<Kind>);

#[derive(Debug)]
enum Kind {
    Real { origin: std::time::Instant },
    Virtual { now: Cell<Instant> },
}

impl Clock {
    /// A clock that follows the operating system's monotonic time, with its origin now.
    #[must_use]
    pub fn real() -> Self {
        // The real clock is one of the two places allowed to read the OS clock: it is
        // what "real time" means.
        #[allow(clippy::disallowed_methods)]
        let origin = std::time::Instant::now();
        Self(Rc::new(Kind::Real { origin }))
    }

    /// A virtual clock standing at `start`; it moves only through [`Clock::advance`] or
    /// the runtime jumping to the next timer.
    #[must_use]
    pub fn virtual_at(start: Instant) -> Self {
        Self(Rc::new(Kind::Virtual {
            now: Cell::new(start),
        }))
    }

    /// Whether this clock is virtual.
    #[must_use]
    pub fn is_virtual(&self) -> bool {
        matches!(*self.0, Kind::Virtual { .. })
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> Instant {
        match &*self.0 {
            Kind::Real { origin } => {
                // See `Clock::real`: the real clock reads the OS clock by definition.
                #[allow(clippy::disallowed_methods)]
                let elapsed = std::time::Instant::now().saturating_duration_since(*origin);
                Instant::ZERO + elapsed
            }
            Kind::Virtual { now } => now.get(),
        }
    }

    /// Moves a virtual clock forward by `d`. Does nothing to a real clock, which cannot
    /// be moved.
    pub fn advance(&self, d: Duration) {
        if let Kind::Virtual { now } = &*self.0 {
            now.set(now.get() + d);
        }
    }

    /// Moves a virtual clock forward to `t` if `t` is later than now.
    pub(crate) fn advance_to(&self, t: Instant) {
        if let Kind::Virtual { now } = &*self.0
            && t > now.get()
        {
            now.set(t);
        }
    }
}
