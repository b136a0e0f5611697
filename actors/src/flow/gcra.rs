//! GCRA, the generic cell rate algorithm: one timestamp per limiter.
//!
//! A limiter of `rate` messages per second with a `burst` keeps a theoretical arrival
//! time (TAT). A message at `now` conforms when `TAT - (burst - 1) * T <= now`, `T`
//! being the emission interval `1 s / rate`; a conforming message moves the TAT to
//! `max(TAT, now) + T`. From idle, `burst` messages conform at once, then one per `T`:
//! over a span `t` at most `burst + t / T` conform.
//!
//! Written here rather than taken from `governor`: governor's clock must be `Send +
//! Sync` and its state lives in atomics behind a `Reference` type, its dependency tree
//! (quanta, dashmap, parking_lot, spinning_top, ...) would double this crate's, and
//! the throttle needs operations it does not offer (reserving a future slot for the
//! shaping queue, changing the rate while keeping the TAT so no fresh burst is
//! granted). The algorithm itself is the dozen lines below, on the runtime's
//! nanoseconds, so the simulator drives it exactly.

use tern_proto::session::Nanos;

/// Nanoseconds in a second.
const SECOND: u64 = 1_000_000_000;

/// A rate limit: `per_second` messages a second, `burst` of them at once from idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Messages a second (0 admits nothing).
    pub per_second: u32,
    /// Messages admitted at once from idle (at least 1).
    pub burst: u32,
}

impl Rate {
    /// `per_second` messages a second with a burst of `burst` (raised to 1).
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst: burst.max(1),
        }
    }
}

/// One GCRA limiter; see the [module docs](crate::flow).
///
/// ```
/// use tern_actors::flow::{Gcra, Rate};
///
/// let mut g = Gcra::new(Rate::new(10, 2)); // 10/s, 2 at once
/// assert!(g.check(0).is_ok());
/// assert!(g.check(0).is_ok());
/// assert_eq!(g.check(0), Err(100_000_000)); // the next fits in 100 ms
/// assert!(g.check(100_000_000).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Gcra {
    rate: Rate,
    /// Emission interval, nanoseconds (`u64::MAX` for a zero rate).
    interval: Nanos,
    /// Theoretical arrival time of the next message.
    tat: Nanos,
}

impl Gcra {
    /// A limiter at `rate`, idle.
    #[must_use]
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            interval: interval(rate),
            tat: 0,
        }
    }

    /// The limit.
    #[must_use]
    pub fn rate(&self) -> Rate {
        self.rate
    }

    fn tolerance(&self) -> Nanos {
        self.interval
            .saturating_mul(u64::from(self.rate.burst.saturating_sub(1)))
    }

    /// How long after `now` a message would conform: 0 if it conforms now.
    #[must_use]
    pub fn wait(&self, now: Nanos) -> Nanos {
        if self.rate.per_second == 0 {
            return Nanos::MAX;
        }
        self.tat
            .saturating_sub(self.tolerance())
            .saturating_sub(now)
    }

    /// Admits a message at `now` if it conforms; otherwise `Err(wait)`, the time until
    /// one would (the limiter is unchanged).
    ///
    /// # Errors
    ///
    /// The wait, when the message does not conform.
    pub fn check(&mut self, now: Nanos) -> Result<(), Nanos> {
        match self.wait(now) {
            0 => {
                self.commit(now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    /// Counts a message at `now` whether or not it conforms (after [`Gcra::wait`]
    /// said it does).
    pub fn commit(&mut self, now: Nanos) {
        self.tat = self.tat.max(now).saturating_add(self.interval);
    }

    /// Reserves the first slot at or after `now`: returns when the message may go
    /// (`now` if it conforms now) and counts it as sent then, so later messages queue
    /// behind it. `None` for a zero rate.
    pub fn reserve(&mut self, now: Nanos) -> Option<Nanos> {
        if self.rate.per_second == 0 {
            return None;
        }
        let at = now.saturating_add(self.wait(now));
        self.commit(at);
        Some(at)
    }

    /// Changes the limit at `now` without granting a burst: the TAT (what was spent)
    /// is kept, so a raised rate applies to the next message and a lowered one makes
    /// the messages already admitted count at the old rate.
    pub fn set_rate(&mut self, rate: Rate, now: Nanos) {
        let _ = now;
        self.rate = rate;
        self.interval = interval(rate);
    }
}

fn interval(rate: Rate) -> Nanos {
    match rate.per_second {
        0 => Nanos::MAX,
        r => SECOND / u64::from(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn admits_the_burst_then_one_per_interval() {
        let mut g = Gcra::new(Rate::new(100, 10));
        let admitted = (0..50).filter(|_| g.check(0).is_ok()).count();
        assert_eq!(admitted, 10);
        assert_eq!(g.check(0), Err(10 * MS));
        // Offered every millisecond for 10 s: burst + 10 s * 100/s.
        let mut g = Gcra::new(Rate::new(100, 10));
        let admitted = (0..10_000u64).filter(|i| g.check(i * MS).is_ok()).count();
        assert_eq!(admitted, 10 + 999);
    }

    #[test]
    fn a_zero_rate_admits_nothing_and_reserves_nothing() {
        let mut g = Gcra::new(Rate::new(0, 5));
        assert!(g.check(0).is_err());
        assert_eq!(g.reserve(0), None);
    }

    #[test]
    fn reservations_queue_one_interval_apart() {
        let mut g = Gcra::new(Rate::new(10, 1));
        assert_eq!(g.reserve(0), Some(0));
        assert_eq!(g.reserve(0), Some(100 * MS));
        assert_eq!(g.reserve(50 * MS), Some(200 * MS));
        // A message that arrives while slots are reserved does not conform.
        assert_eq!(g.check(150 * MS), Err(150 * MS));
    }

    #[test]
    fn a_rate_change_grants_no_fresh_burst() {
        let mut g = Gcra::new(Rate::new(10, 5));
        for _ in 0..5 {
            assert!(g.check(0).is_ok());
        }
        // Raised tenfold: the burst already spent stays spent.
        g.set_rate(Rate::new(100, 5), 0);
        let admitted = (0..100).filter(|_| g.check(0).is_ok()).count();
        assert_eq!(admitted, 0);
        assert!(g.check(g.wait(0)).is_ok());
    }
}
