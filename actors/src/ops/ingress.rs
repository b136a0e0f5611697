//! The adaptive concurrency limit at container ingress: AIMD on delay, a pure state
//! machine fed `now`.
//!
//! It bounds the remote-origin asks a container holds (queued in a mailbox or in a
//! handler, not yet answered) by a limit `L` that adapts every `window`:
//!
//! - if the 90th percentile of the window's delays is above `target_delay`:
//!   `L ← max(min, ⌊L × decrease_percent / 100⌋)` (multiplicative decrease);
//! - otherwise, if the window used at least half of `L` (not app-limited):
//!   `L ← min(max, L + 1)` (additive increase).
//!
//! Over `L`, a request is refused at once (the caller sees a full mailbox, a capacity
//! signal, never a breaker failure). Replies, stream credits and control frames never
//! pass through it.
//!
//! Why AIMD and not Gradient2: Gradient2 estimates congestion from the ratio of a
//! long-term to a short-term RTT, because a proxy cannot see the queue it feeds. A
//! container is one thread and sees its own mailbox, so the delay a request spends
//! there is measured, not estimated; a fixed delay target with AIMD is then enough,
//! has two knobs that are easy to explain, and never has to starve traffic to learn a
//! baseline. The delay measured is from the request's queueing to its answer; for a
//! component handling one message at a time it is the queue delay plus one handler
//! run, so `target_delay` should sit above the usual handler time.

use std::time::Duration;

use tern_proto::session::Nanos;

use super::OpsError;

/// Settings of the ingress limit; off by default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::ops::IngressConfig;
///
/// let c = IngressConfig::enabled(32).target_delay(Duration::from_millis(50));
/// assert!(c.validate().is_ok());
/// assert!(IngressConfig::enabled(0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressConfig {
    /// Whether the limit applies (default `false`: existing deployments see no new
    /// refusal until they opt in).
    pub enabled: bool,
    /// The limit at start.
    pub initial: u32,
    /// The lowest the limit goes (default 4).
    pub min: u32,
    /// The highest the limit goes (default 10,000; lowered by `ingress.max`).
    pub max: u32,
    /// The delay above which the limit shrinks (default 100 ms).
    pub target_delay: Duration,
    /// How often the limit adapts (default 1 s).
    pub window: Duration,
    /// The factor of a decrease, in percent (default 90).
    pub decrease_percent: u32,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            initial: 100,
            min: 4,
            max: 10_000,
            target_delay: Duration::from_millis(100),
            window: Duration::from_secs(1),
            decrease_percent: 90,
        }
    }
}

impl IngressConfig {
    /// On, starting at `initial`.
    #[must_use]
    pub fn enabled(initial: u32) -> Self {
        Self {
            enabled: true,
            initial,
            min: initial.clamp(1, 4),
            ..Self::default()
        }
    }

    /// Sets the delay target.
    #[must_use]
    pub const fn target_delay(mut self, d: Duration) -> Self {
        self.target_delay = d;
        self
    }

    /// Sets the bounds of the limit.
    #[must_use]
    pub const fn bounds(mut self, min: u32, max: u32) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// Sets the adaptation window.
    #[must_use]
    pub const fn window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }

    /// Checks the settings, naming the first bad key.
    ///
    /// # Errors
    ///
    /// [`OpsError::Invalid`]: `min` 0 or above `max`, `initial` outside
    /// `min..=max`, a zero window or target, a decrease not in `1..100`.
    pub fn validate(&self) -> Result<(), OpsError> {
        let bad = |key: &'static str, why: &str| {
            Err(OpsError::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        if self.min == 0 || self.min > self.max {
            return bad("ingress.min", "must be in 1..=ingress.max");
        }
        if self.initial < self.min || self.initial > self.max {
            return bad("ingress.initial", "must be in ingress.min..=ingress.max");
        }
        if self.window.is_zero() || self.target_delay.is_zero() {
            return bad(
                "ingress.window",
                "the window and the delay target must be above zero",
            );
        }
        if self.decrease_percent == 0 || self.decrease_percent >= 100 {
            return bad("ingress.decrease_percent", "must be in 1..100");
        }
        Ok(())
    }
}

/// Counts of what the ingress limit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngressCounts {
    /// Requests admitted.
    pub admitted: u64,
    /// Requests refused over the limit.
    pub shed: u64,
    /// Times the limit shrank.
    pub decreases: u64,
    /// Times the limit grew.
    pub increases: u64,
}

/// Delays kept per window for the percentile (more are sampled down by stride).
const SAMPLES: usize = 256;

/// The limit; see the [module docs](crate::ops).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::ops::{IngressConfig, IngressLimit};
///
/// let mut l = IngressLimit::new(IngressConfig::enabled(2));
/// assert!(l.try_acquire(0).is_ok());
/// assert!(l.try_acquire(0).is_ok());
/// assert!(l.try_acquire(0).is_err()); // over the limit of 2
/// l.release(1_000, 1_000); // one answered, after 1 µs
/// assert!(l.try_acquire(1_000).is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct IngressLimit {
    config: IngressConfig,
    /// `ingress.max` from the LimitSet, if lower than the configured max.
    cap: Option<u32>,
    limit: u32,
    in_flight: u32,
    window_end: Option<Nanos>,
    delays: Vec<Nanos>,
    seen: u64,
    peak: u32,
    counts: IngressCounts,
}

impl IngressLimit {
    /// A limit at `config.initial`.
    #[must_use]
    pub fn new(config: IngressConfig) -> Self {
        Self {
            config,
            cap: None,
            limit: config.initial,
            in_flight: 0,
            window_end: None,
            delays: Vec::new(),
            seen: 0,
            peak: 0,
            counts: IngressCounts::default(),
        }
    }

    /// The limit now.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// Whether it applies at all.
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// Requests held now.
    #[must_use]
    pub const fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// What it did.
    #[must_use]
    pub const fn counts(&self) -> IngressCounts {
        self.counts
    }

    /// Sets the run-time cap (`ingress.max`): the limit drops to it at once if above
    /// it (requests held stay), and never grows past it.
    pub fn set_cap(&mut self, cap: Option<u32>) {
        self.cap = cap;
        self.limit = self
            .limit
            .min(self.ceiling())
            .max(self.config.min.min(self.ceiling()));
    }

    fn ceiling(&self) -> u32 {
        self.cap
            .map_or(self.config.max, |c| c.min(self.config.max))
            .max(1)
    }

    /// Admits one request, or refuses it with how long to wait (one window).
    ///
    /// # Errors
    ///
    /// The wait before trying again, when `limit` requests are held.
    pub fn try_acquire(&mut self, now: Nanos) -> Result<(), Duration> {
        if !self.config.enabled {
            return Ok(());
        }
        self.roll(now);
        if self.in_flight >= self.limit {
            self.counts.shed += 1;
            return Err(self.config.window);
        }
        self.in_flight += 1;
        self.peak = self.peak.max(self.in_flight);
        self.counts.admitted += 1;
        Ok(())
    }

    /// One admitted request was answered, `delay` after it was admitted.
    pub fn release(&mut self, now: Nanos, delay: Nanos) {
        if !self.config.enabled || self.in_flight == 0 {
            return;
        }
        self.in_flight -= 1;
        self.roll(now);
        self.seen += 1;
        if self.delays.len() < SAMPLES {
            self.delays.push(delay);
        } else if self.seen.is_power_of_two() {
            // Past the sample budget, keep replacing so late delays count too.
            let i = usize::try_from(self.seen % SAMPLES as u64).unwrap_or(0);
            self.delays[i] = delay;
        }
    }

    /// Closes the window if it ended: adapts the limit.
    fn roll(&mut self, now: Nanos) {
        let window = u64::try_from(self.config.window.as_nanos()).unwrap_or(u64::MAX);
        let Some(end) = self.window_end else {
            self.window_end = Some(now.saturating_add(window));
            return;
        };
        if now < end {
            return;
        }
        let target = u64::try_from(self.config.target_delay.as_nanos()).unwrap_or(u64::MAX);
        if !self.delays.is_empty() {
            self.delays.sort_unstable();
            let at = (self.delays.len() * 9 / 10).min(self.delays.len() - 1);
            let p90 = self.delays[at];
            if p90 > target {
                let lower = u64::from(self.limit) * u64::from(self.config.decrease_percent) / 100;
                let lower = u32::try_from(lower).unwrap_or(u32::MAX);
                let next = lower.max(self.config.min).min(self.ceiling());
                if next < self.limit {
                    self.counts.decreases += 1;
                    tracing::debug!(name: "tern.ingress.decrease", limit = next, p90_us = p90 / 1000, "ingress limit lowered");
                }
                self.limit = next;
            } else if self.peak.saturating_mul(2) >= self.limit && self.limit < self.ceiling() {
                self.limit += 1;
                self.counts.increases += 1;
            }
        }
        self.delays.clear();
        self.seen = 0;
        self.peak = self.in_flight;
        self.window_end = Some(now.saturating_add(window));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    /// Serves `n` requests per window with delay `delay` each, for `windows` windows.
    fn drive(l: &mut IngressLimit, start: Nanos, windows: u64, n: u32, delay: Nanos) -> Nanos {
        let mut now = start;
        for _ in 0..windows {
            for _ in 0..n {
                if l.try_acquire(now).is_ok() {
                    l.release(now, delay);
                }
            }
            now += 1000 * MS;
        }
        now
    }

    #[test]
    fn slow_answers_shrink_the_limit_to_its_floor_and_fast_ones_grow_it_back() {
        let mut l = IngressLimit::new(IngressConfig::enabled(100).bounds(4, 200));
        let now = drive(&mut l, 0, 60, 100, 500 * MS);
        assert_eq!(l.limit(), 4, "{:?}", l.counts());
        assert!(l.counts().decreases > 10);
        // Fast again, and busy (holding many at once): +1 per window.
        let mut now = now;
        for _ in 0..30 {
            let mut held = 0;
            while l.try_acquire(now).is_ok() {
                held += 1;
            }
            for _ in 0..held {
                l.release(now, MS);
            }
            now += 1000 * MS;
        }
        assert!(l.limit() >= 30, "{}", l.limit());
    }

    #[test]
    fn an_idle_container_does_not_grow_its_limit() {
        let mut l = IngressLimit::new(IngressConfig::enabled(10));
        drive(&mut l, 0, 100, 2, MS);
        assert_eq!(l.limit(), 10);
    }

    #[test]
    fn over_the_limit_is_refused_and_counted_and_the_cap_applies_at_once() {
        let mut l = IngressLimit::new(IngressConfig::enabled(8));
        for _ in 0..8 {
            assert!(l.try_acquire(0).is_ok());
        }
        assert_eq!(l.try_acquire(0), Err(Duration::from_secs(1)));
        assert_eq!(l.counts().shed, 1);
        l.set_cap(Some(3));
        assert_eq!(l.limit(), 3);
        // Nothing held is evicted; new requests wait until fewer than 3 are held.
        assert_eq!(l.in_flight(), 8);
        for _ in 0..5 {
            l.release(1, MS);
        }
        assert!(l.try_acquire(1).is_err());
        l.release(1, MS);
        assert!(l.try_acquire(1).is_ok());
    }

    #[test]
    fn off_admits_everything() {
        let mut l = IngressLimit::new(IngressConfig::default());
        for _ in 0..100_000 {
            assert!(l.try_acquire(0).is_ok());
        }
    }
}
