//! The flow rate triggered throttle: a [`Gcra`] with a trip state machine.
//!
//! ```text
//! Flowing --(first non-conforming message)--> Throttled
//! Throttled: conforming messages still pass; the others go to the overflow policy
//! Throttled --(offered-rate EWMA below rate * (1 - hysteresis) for `hold`)--> Flowing
//! ```
//!
//! The offered rate is an exponentially decaying count of arrivals (time constant
//! `tau`): `level = level * exp(-dt / tau) + 1`, rate = `level / tau`. The instant the
//! rate fell below the calm threshold is computed exactly from the decay, so the hold
//! is measured the same way whether messages keep coming or not.

use std::time::Duration;

use tern_proto::session::Nanos;

use super::gcra::{Gcra, Rate};

/// A throttle's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// The limit.
    pub rate: Rate,
    /// How far below the limit the offered rate must fall to calm down (0.2 = 80 %).
    pub hysteresis: f64,
    /// How long it must stay there before the throttle lets go.
    pub hold: Duration,
    /// Time constant of the offered-rate average.
    pub tau: Duration,
}

impl ThrottleConfig {
    /// `rate` with the defaults: hysteresis 0.2, hold 5 s, tau 2 s.
    #[must_use]
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            hysteresis: 0.2,
            hold: Duration::from_secs(5),
            tau: Duration::from_secs(2),
        }
    }
}

/// Whether a throttle is letting everything through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleState {
    /// Every message so far conformed (or the offered rate calmed down since).
    Flowing,
    /// A message did not conform: the excess goes to the overflow policy.
    Throttled,
}

/// What the throttle says of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// It conforms; it is counted as sent.
    Admit,
    /// It does not; it would conform `retry_after` nanoseconds from now.
    Excess {
        /// Nanoseconds until a message would conform.
        retry_after: Nanos,
    },
}

/// One throttle; see the [module docs](crate::flow).
///
/// ```
/// use tern_actors::flow::{Offer, Rate, Throttle, ThrottleConfig, ThrottleState};
///
/// let mut t = Throttle::new(ThrottleConfig::new(Rate::new(10, 1)));
/// assert_eq!(t.offer(0), Offer::Admit);
/// assert!(matches!(t.offer(0), Offer::Excess { .. }));
/// assert_eq!(t.state(0), ThrottleState::Throttled);
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    config: ThrottleConfig,
    gcra: Gcra,
    state: ThrottleState,
    /// Decaying arrival count at `last`.
    level: f64,
    last: Nanos,
    /// Since when the offered rate has been calm without a break, if it is.
    calm_start: Option<Nanos>,
    /// When the throttle tripped.
    tripped_at: Nanos,
    /// Flowing/Throttled transitions so far.
    transitions: u64,
}

impl Throttle {
    /// A flowing throttle.
    #[must_use]
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            gcra: Gcra::new(config.rate),
            state: ThrottleState::Flowing,
            level: 0.0,
            last: 0,
            calm_start: Some(0),
            tripped_at: 0,
            transitions: 0,
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Transitions between [`ThrottleState::Flowing`] and [`ThrottleState::Throttled`]
    /// so far.
    #[must_use]
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The state at `now` (a throttled throttle whose hold has passed lets go here).
    pub fn state(&mut self, now: Nanos) -> ThrottleState {
        self.settle(now);
        self.state
    }

    /// How long after `now` a message would conform (0: now).
    #[must_use]
    pub fn wait(&self, now: Nanos) -> Nanos {
        self.gcra.wait(now)
    }

    /// Offers one message at `now`.
    pub fn offer(&mut self, now: Nanos) -> Offer {
        self.settle(now);
        self.arrive(now);
        match self.gcra.check(now) {
            Ok(()) => Offer::Admit,
            Err(wait) => {
                if self.state == ThrottleState::Flowing {
                    self.state = ThrottleState::Throttled;
                    self.tripped_at = now;
                    self.transitions += 1;
                }
                Offer::Excess { retry_after: wait }
            }
        }
    }

    /// Reserves the next free slot for a message queued at `now` (the shaping queue):
    /// when it may go, counted as sent then. `None` for a zero rate.
    pub fn reserve(&mut self, now: Nanos) -> Option<Nanos> {
        self.gcra.reserve(now)
    }

    /// Changes the limit at `now` without granting a burst (see [`Gcra::set_rate`]).
    pub fn set_rate(&mut self, rate: Rate, now: Nanos) {
        self.config.rate = rate;
        self.gcra.set_rate(rate, now);
    }

    fn tau(&self) -> f64 {
        self.config.tau.as_secs_f64().max(1e-3)
    }

    fn decayed(&self, now: Nanos) -> f64 {
        let dt = now.saturating_sub(self.last) as f64 / 1e9;
        self.level * (-dt / self.tau()).exp()
    }

    fn arrive(&mut self, now: Nanos) {
        let calm_from = self.calm_from();
        if self.calm_start.is_none() && calm_from <= now {
            self.calm_start = Some(calm_from);
        }
        self.level = self.decayed(now) + 1.0;
        self.last = self.last.max(now);
        if self.level > self.calm_level() {
            self.calm_start = None;
        }
    }

    /// The level under which the offered rate counts as calm.
    fn calm_level(&self) -> f64 {
        f64::from(self.config.rate.per_second) * (1.0 - self.config.hysteresis) * self.tau()
    }

    /// When the offered rate fell (or will fall) under the calm level since the last
    /// arrival, with no new one.
    fn calm_from(&self) -> Nanos {
        let calm = self.calm_level();
        if self.level <= calm {
            return self.last;
        }
        if calm <= 0.0 {
            return Nanos::MAX;
        }
        let secs = self.tau() * (self.level / calm).ln();
        self.last.saturating_add((secs * 1e9) as Nanos)
    }

    fn settle(&mut self, now: Nanos) {
        if self.state != ThrottleState::Throttled {
            return;
        }
        let hold = u64::try_from(self.config.hold.as_nanos()).unwrap_or(u64::MAX);
        let calm = self.calm_start.unwrap_or_else(|| self.calm_from());
        if now >= calm.max(self.tripped_at).saturating_add(hold) {
            self.state = ThrottleState::Flowing;
            self.transitions += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn throttle(rate: u32) -> Throttle {
        Throttle::new(ThrottleConfig::new(Rate::new(rate, 1)))
    }

    #[test]
    fn trips_on_the_first_non_conforming_message() {
        let mut t = throttle(100);
        for i in 0..50 {
            assert_eq!(t.offer(i * 10 * MS), Offer::Admit);
            assert_eq!(t.state(i * 10 * MS), ThrottleState::Flowing);
        }
        assert!(
            matches!(t.offer(495 * MS), Offer::Excess { retry_after } if retry_after == 5 * MS)
        );
        assert_eq!(t.state(495 * MS), ThrottleState::Throttled);
        assert_eq!(t.transitions(), 1);
    }

    #[test]
    fn lets_go_only_after_a_calm_hold() {
        let mut t = throttle(100);
        // 200/s for 2 s: throttled.
        for i in 0..400 {
            t.offer(i * 5 * MS);
        }
        assert_eq!(t.state(2_000 * MS), ThrottleState::Throttled);
        // 50/s from then on (calm: under 80/s): flowing again once the average fell
        // under 80/s and stayed there 5 s, not before.
        let mut flowing_at = None;
        for i in 0..500u64 {
            let now = 2_000 * MS + i * 20 * MS;
            t.offer(now);
            if flowing_at.is_none() && t.state(now) == ThrottleState::Flowing {
                flowing_at = Some(now);
            }
        }
        let at = flowing_at.expect("calmed down");
        assert!(at >= 7_000 * MS, "let go at {at}");
        assert!(at <= 9_000 * MS, "let go at {at}");
        assert_eq!(t.transitions(), 2);
    }

    #[test]
    fn an_offered_rate_around_the_limit_changes_state_at_most_once_per_hold() {
        // 90/s and 110/s alternating each second around a limit of 100/s.
        let mut t = throttle(100);
        let mut now = 0;
        let mut changes = Vec::new();
        let mut last = ThrottleState::Flowing;
        for second in 0..60u64 {
            let per_s = if second % 2 == 0 { 90 } else { 110 };
            for _ in 0..per_s {
                t.offer(now);
                let s = t.state(now);
                if s != last {
                    changes.push(now);
                    last = s;
                }
                now += 1_000 * MS / per_s;
            }
        }
        assert!(!changes.is_empty(), "110/s over 100/s trips it");
        for pair in changes.windows(2) {
            assert!(pair[1] - pair[0] >= 5_000 * MS, "{changes:?}");
        }
    }

    #[test]
    fn retry_after_is_when_the_message_would_conform() {
        let mut t = throttle(10);
        assert_eq!(t.offer(0), Offer::Admit);
        let Offer::Excess { retry_after } = t.offer(30 * MS) else {
            panic!("conformed");
        };
        assert_eq!(t.offer(30 * MS + retry_after), Offer::Admit);
    }
}
