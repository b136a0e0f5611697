//! The circuit breaker of one (caller container, component): `Closed`, `Open`,
//! `HalfOpen`, as a pure state machine fed `now`.
//!
//! - **Closed → Open** on either rule: `consecutive` counted failures in a row, or a
//!   failure rate of at least `failure_rate_percent` over the last `window` calls once
//!   at least `min_calls` of them are in the window. The first rule catches failures at
//!   low volume, the second partial degradation at high volume.
//! - **Open → HalfOpen** after `open_for × 2^k` (capped at `max_open_for`), times a
//!   seeded jitter of ±`jitter_percent`; `k` counts re-opens in a row.
//! - **HalfOpen** admits `probes` calls; the others are refused. Every probe has its own
//!   deadline (`probe_deadline`): a probe without an outcome by then counts as failed,
//!   so the breaker can never stick half-open, whatever happens to the probe's reply.
//!   All probes succeed: `Closed`, with `k` and the window reset. One fails: `Open`
//!   again with `k + 1`.
//!
//! Capacity signals (a full mailbox, backpressure) are not failures: the caller passes
//! [`Outcome::Ignored`] for them (see `ops::admission::classify`).

use std::collections::VecDeque;
use std::time::Duration;

use tern_executor::sim::SimRng;
use tern_proto::session::Nanos;

use super::OpsError;

/// A breaker's settings; [`BreakerConfig::validate`] checks them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::ops::BreakerConfig;
///
/// let config = BreakerConfig::default().consecutive(3).open_for(Duration::from_secs(1));
/// assert!(config.validate().is_ok());
/// assert!(BreakerConfig::default().probes(20).validate().is_err()); // probes > min_calls
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Whether calls go through the breaker at all (default `true`).
    pub enabled: bool,
    /// Counted failures in a row that open it (default 5).
    pub consecutive: u32,
    /// Calls in the sliding window of the rate rule (default 20).
    pub window: u32,
    /// Calls the window must hold before the rate rule applies (default 10).
    pub min_calls: u32,
    /// Failure rate, in percent of the window, that opens it (default 50).
    pub failure_rate_percent: u32,
    /// First open period (default 5 s); doubled at each re-open in a row.
    pub open_for: Duration,
    /// Longest open period (default 60 s).
    pub max_open_for: Duration,
    /// Jitter on open periods, in percent either way (default 20), from the seeded
    /// generator.
    pub jitter_percent: u32,
    /// Calls admitted while half-open (default 1, at most `min_calls`).
    pub probes: u32,
    /// How long a probe may take before it counts as failed (default 2 s; finite and
    /// not zero). A probe's ask deadline is also cut to it.
    pub probe_deadline: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive: 5,
            window: 20,
            min_calls: 10,
            failure_rate_percent: 50,
            open_for: Duration::from_secs(5),
            max_open_for: Duration::from_secs(60),
            jitter_percent: 20,
            probes: 1,
            probe_deadline: Duration::from_secs(2),
        }
    }
}

impl BreakerConfig {
    /// Sets the consecutive rule.
    #[must_use]
    pub const fn consecutive(mut self, n: u32) -> Self {
        self.consecutive = n;
        self
    }

    /// Sets the rate rule: `percent` failures over the last `window` calls, once
    /// `min_calls` are in it.
    #[must_use]
    pub const fn rate(mut self, percent: u32, window: u32, min_calls: u32) -> Self {
        self.failure_rate_percent = percent;
        self.window = window;
        self.min_calls = min_calls;
        self
    }

    /// Sets the first open period.
    #[must_use]
    pub const fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }

    /// Sets the longest open period.
    #[must_use]
    pub const fn max_open_for(mut self, d: Duration) -> Self {
        self.max_open_for = d;
        self
    }

    /// Sets the jitter on open periods, in percent either way.
    #[must_use]
    pub const fn jitter_percent(mut self, p: u32) -> Self {
        self.jitter_percent = p;
        self
    }

    /// Sets the number of half-open probes.
    #[must_use]
    pub const fn probes(mut self, n: u32) -> Self {
        self.probes = n;
        self
    }

    /// Sets the probe deadline.
    #[must_use]
    pub const fn probe_deadline(mut self, d: Duration) -> Self {
        self.probe_deadline = d;
        self
    }

    /// Turns the breaker off (every call goes through, nothing is counted).
    #[must_use]
    pub const fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Checks the settings, naming the first bad key.
    ///
    /// # Errors
    ///
    /// [`OpsError::Invalid`] when a rule can never fire or the breaker could stick:
    /// `consecutive` or `window` 0, `min_calls` not in `1..=window`, `probes` not in
    /// `1..=min_calls`, a rate over 100 %, a jitter of 100 % or more, `open_for` zero or
    /// above `max_open_for`, `probe_deadline` zero or over an hour.
    pub fn validate(&self) -> Result<(), OpsError> {
        let bad = |key: &'static str, why: &str| {
            Err(OpsError::Invalid {
                key,
                why: why.to_owned(),
            })
        };
        if self.consecutive == 0 {
            return bad("breaker.consecutive", "must be at least 1");
        }
        if self.window == 0 || self.window > 1024 {
            return bad("breaker.window", "must be in 1..=1024");
        }
        if self.min_calls == 0 || self.min_calls > self.window {
            return bad("breaker.min_calls", "must be in 1..=breaker.window");
        }
        if self.failure_rate_percent == 0 || self.failure_rate_percent > 100 {
            return bad("breaker.failure_rate_percent", "must be in 1..=100");
        }
        if self.probes == 0 || self.probes > self.min_calls {
            return bad(
                "breaker.probes",
                "must be in 1..=breaker.min_calls (else the breaker can open again before it could close)",
            );
        }
        if self.jitter_percent >= 100 {
            return bad("breaker.jitter_percent", "must be below 100");
        }
        if self.open_for.is_zero() || self.open_for > self.max_open_for {
            return bad(
                "breaker.open_for",
                "must be above zero and at most breaker.max_open_for",
            );
        }
        if self.probe_deadline.is_zero() || self.probe_deadline > Duration::from_secs(3600) {
            return bad(
                "breaker.probe_deadline",
                "must be above zero and at most one hour (a probe without a deadline can leave the breaker half-open for ever)",
            );
        }
        Ok(())
    }
}

/// A breaker's state as callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail at once with `CircuitOpen`.
    Open,
    /// A few probe calls go through; the rest fail at once.
    HalfOpen,
}

/// What the breaker says about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Let it through; report its outcome with this ticket.
    Go(Ticket),
    /// Refuse it now; the breaker may let calls through again after `retry_after`.
    Refuse {
        /// How long until the breaker half-opens (zero while a probe is out).
        retry_after: Duration,
    },
}

/// Identifies an admitted call when its outcome is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// `Some(epoch)` for a half-open probe, `None` for a call while closed.
    probe: Option<u64>,
    /// The closed period the call started in.
    closed: u64,
    /// When a probe's outcome stops counting (its deadline), if it is a probe.
    deadline: Option<Nanos>,
}

impl Ticket {
    /// The deadline of a probe (the call's own deadline must not be later); `None`
    /// for an ordinary call.
    #[must_use]
    pub const fn probe_deadline(&self) -> Option<Nanos> {
        self.deadline
    }
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A reply (an application error in the reply is a reply).
    Success,
    /// A counted failure: timeout, lost or unreachable peer, handler panic.
    Failure,
    /// Not a verdict on the target's health: a full mailbox, backpressure, a codec
    /// error, a refusal by the caller's own limits.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed,
    Open {
        until: Nanos,
    },
    HalfOpen {
        admitted: u32,
        passed: u32,
        deadline: Nanos,
    },
}

/// Counts of a breaker's transitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerCounts {
    /// Times it opened (from closed or half-open).
    pub opened: u64,
    /// Times it half-opened.
    pub half_opened: u64,
    /// Times it closed again after half-open.
    pub closed: u64,
    /// Probes that had no outcome by their deadline.
    pub probes_expired: u64,
    /// Calls refused because it was open or its probes were out.
    pub refused: u64,
}

/// One breaker; see the [module docs](crate::ops).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_actors::ops::{Admit, Breaker, BreakerConfig, BreakerState, Outcome};
///
/// let mut b = Breaker::new(BreakerConfig::default().consecutive(2).jitter_percent(0), 7);
/// for now in [0, 1] {
///     let Admit::Go(ticket) = b.admit(now) else { panic!() };
///     b.record(now, ticket, Outcome::Failure);
/// }
/// assert_eq!(b.state(2), BreakerState::Open);
/// assert!(matches!(b.admit(2), Admit::Refuse { .. }));
/// let later = 1 + 5_000_000_000; // open_for, 5 s
/// let Admit::Go(probe) = b.admit(later) else { panic!() };
/// assert!(probe.probe_deadline().is_some());
/// b.record(later, probe, Outcome::Success);
/// assert_eq!(b.state(later), BreakerState::Closed);
/// ```
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Inner,
    consecutive: u32,
    /// The outcomes of the last `window` counted calls (`true` = failure).
    window: VecDeque<bool>,
    failures_in_window: u32,
    /// Re-opens in a row.
    reopens: u32,
    /// Bumped at each half-open, so a late probe outcome is told apart.
    epoch: u64,
    /// Bumped at each close, so outcomes of calls from before an open are ignored.
    closed_epoch: u64,
    rng: SimRng,
    counts: BreakerCounts,
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Breaker {
    /// A closed breaker; `seed` drives its jitter.
    #[must_use]
    pub fn new(config: BreakerConfig, seed: u64) -> Self {
        Self {
            config,
            inner: Inner::Closed,
            consecutive: 0,
            window: VecDeque::new(),
            failures_in_window: 0,
            reopens: 0,
            epoch: 0,
            closed_epoch: 0,
            rng: SimRng::new(seed),
            counts: BreakerCounts::default(),
        }
    }

    /// Its settings.
    #[must_use]
    pub const fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Replaces its settings (at run time); the state and counts stay.
    pub fn set_config(&mut self, config: BreakerConfig) {
        self.config = config;
        while self.window.len() > self.config.window as usize {
            if self.window.pop_front() == Some(true) {
                self.failures_in_window -= 1;
            }
        }
    }

    /// Its transition counts.
    #[must_use]
    pub const fn counts(&self) -> BreakerCounts {
        self.counts
    }

    /// Its state at `now` (a half-open breaker whose probe deadline passed reads as
    /// open).
    #[must_use]
    pub fn state(&self, now: Nanos) -> BreakerState {
        match self.inner {
            Inner::Closed => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen { deadline, .. } if now >= deadline => BreakerState::Open,
            Inner::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// When its state changes by itself next (the end of an open period, or a probe
    /// deadline), if it is not closed.
    #[must_use]
    pub const fn next_change(&self) -> Option<Nanos> {
        match self.inner {
            Inner::Closed => None,
            Inner::Open { until } => Some(until),
            Inner::HalfOpen { deadline, .. } => Some(deadline),
        }
    }

    /// Whether a call may go now; a probe is counted as out until its outcome or its
    /// deadline.
    pub fn admit(&mut self, now: Nanos) -> Admit {
        if !self.config.enabled {
            return Admit::Go(Ticket {
                probe: None,
                closed: self.closed_epoch,
                deadline: None,
            });
        }
        self.advance(now);
        match &mut self.inner {
            Inner::Closed => Admit::Go(Ticket {
                probe: None,
                closed: self.closed_epoch,
                deadline: None,
            }),
            Inner::Open { until } => {
                self.counts.refused += 1;
                Admit::Refuse {
                    retry_after: Duration::from_nanos(until.saturating_sub(now)),
                }
            }
            Inner::HalfOpen {
                admitted, deadline, ..
            } => {
                if *admitted < self.config.probes {
                    *admitted += 1;
                    Admit::Go(Ticket {
                        probe: Some(self.epoch),
                        closed: self.closed_epoch,
                        deadline: Some(*deadline),
                    })
                } else {
                    self.counts.refused += 1;
                    Admit::Refuse {
                        retry_after: Duration::from_nanos(deadline.saturating_sub(now)),
                    }
                }
            }
        }
    }

    /// The outcome of a call admitted with `ticket`.
    pub fn record(&mut self, now: Nanos, ticket: Ticket, outcome: Outcome) {
        if !self.config.enabled || outcome == Outcome::Ignored {
            return;
        }
        self.advance(now);
        match (ticket.probe, &mut self.inner) {
            (Some(epoch), Inner::HalfOpen { passed, .. }) if epoch == self.epoch => {
                if outcome == Outcome::Failure {
                    self.open(now, "probe failed");
                } else {
                    *passed += 1;
                    if *passed >= self.config.probes {
                        self.close();
                    }
                }
            }
            (None, Inner::Closed) if ticket.closed == self.closed_epoch => {
                self.count(now, outcome == Outcome::Failure);
            }
            // A late probe, or a call from before the breaker opened.
            _ => {}
        }
    }

    /// Moves an open breaker to half-open when its time is up, and a half-open one
    /// back to open when its probes' deadline passed.
    fn advance(&mut self, now: Nanos) {
        match self.inner {
            Inner::Open { until } if now >= until => {
                self.epoch += 1;
                self.counts.half_opened += 1;
                self.inner = Inner::HalfOpen {
                    admitted: 0,
                    passed: 0,
                    deadline: now.saturating_add(nanos(self.config.probe_deadline)),
                };
                tracing::info!(name: "tern.breaker.half_open", "circuit breaker half-open: probing");
            }
            Inner::HalfOpen { deadline, .. } if now >= deadline => {
                self.counts.probes_expired += 1;
                // The probe deadline is the reference point, so the time spent
                // half-open is never more than `probe_deadline`.
                self.open(deadline, "probe deadline passed");
                // Possibly already past the new open period too.
                self.advance(now);
            }
            _ => {}
        }
    }

    fn count(&mut self, now: Nanos, failed: bool) {
        if failed {
            self.consecutive += 1;
        } else {
            self.consecutive = 0;
        }
        self.window.push_back(failed);
        self.failures_in_window += u32::from(failed);
        if self.window.len() > self.config.window as usize && self.window.pop_front() == Some(true)
        {
            self.failures_in_window -= 1;
        }
        let calls = u32::try_from(self.window.len()).unwrap_or(u32::MAX);
        let rate_hit = calls >= self.config.min_calls
            && u64::from(self.failures_in_window) * 100
                >= u64::from(self.config.failure_rate_percent) * u64::from(calls);
        if failed && self.consecutive >= self.config.consecutive {
            self.open(now, "consecutive failures");
        } else if failed && rate_hit {
            self.open(now, "failure rate");
        }
    }

    fn open(&mut self, now: Nanos, why: &'static str) {
        let from_half_open = matches!(self.inner, Inner::HalfOpen { .. });
        if from_half_open {
            self.reopens = self.reopens.saturating_add(1);
        } else {
            self.reopens = 0;
        }
        let base = nanos(self.config.open_for);
        let cap = nanos(self.config.max_open_for);
        let period = base.saturating_mul(1u64 << self.reopens.min(32)).min(cap);
        let jitter = u64::from(self.config.jitter_percent);
        // period × (1 + U(-j, +j)), in integer arithmetic: U over 0..=2j percent.
        let factor = 100 - jitter + self.rng.below(2 * jitter + 1);
        let period = u64::try_from(u128::from(period) * u128::from(factor) / 100)
            .unwrap_or(u64::MAX)
            .max(1);
        self.inner = Inner::Open {
            until: now.saturating_add(period),
        };
        self.counts.opened += 1;
        tracing::warn!(name: "tern.breaker.open", reason = why, open_ms = period / 1_000_000,
            reopens = self.reopens, "circuit breaker open");
    }

    fn close(&mut self) {
        self.inner = Inner::Closed;
        self.reopens = 0;
        self.consecutive = 0;
        self.window.clear();
        self.failures_in_window = 0;
        self.closed_epoch += 1;
        self.counts.closed += 1;
        tracing::info!(name: "tern.breaker.closed", "circuit breaker closed");
    }
}

#[cfg(test)]
mod tests;
