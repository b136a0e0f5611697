//! Outlier ejection at (caller container, instance): a host of a component that fails
//! `consecutive` counted calls in a row gets no calls from this container for
//! `base × times ejected` (capped), as long as no more than `max_percent` of the
//! component's hosts are ejected at once. Past that cap the component's breaker
//! decides. A pure state machine fed `now`.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tern_proto::session::Nanos;

use super::breaker::Outcome;

/// Settings of outlier ejection.
///
/// # Examples
///
/// ```
/// use tern_actors::ops::EjectionConfig;
///
/// let c = EjectionConfig::default();
/// assert_eq!((c.consecutive, c.max_percent), (5, 50));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EjectionConfig {
    /// Whether hosts are ejected at all (default `true`).
    pub enabled: bool,
    /// Counted failures in a row that eject a host (default 5).
    pub consecutive: u32,
    /// The first ejection's length, multiplied by the times ejected (default 30 s).
    pub base: Duration,
    /// The longest ejection (default 300 s).
    pub max: Duration,
    /// The most of a component's hosts ejected at once, in percent (default 50).
    pub max_percent: u32,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            consecutive: 5,
            base: Duration::from_secs(30),
            max: Duration::from_secs(300),
            max_percent: 50,
        }
    }
}

impl EjectionConfig {
    /// Turns ejection off (every host gets calls whatever its record).
    #[must_use]
    pub const fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Health {
    consecutive: u32,
    until: Option<Nanos>,
    times: u32,
}

/// The ejection table of one caller container.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use tern_actors::ops::{Ejection, EjectionConfig, Outcome};
///
/// let mut e = Ejection::new(EjectionConfig::default());
/// let (kv, w2): (Rc<str>, Rc<str>) = ("kv".into(), "w2".into());
/// for _ in 0..5 {
///     e.record(0, &kv, &w2, Outcome::Failure, 4);
/// }
/// assert!(e.is_ejected(1, "kv", "w2"));
/// assert!(!e.is_ejected(30_000_000_000, "kv", "w2")); // 30 s later
/// ```
#[derive(Debug, Clone)]
pub struct Ejection {
    config: EjectionConfig,
    /// Component -> host -> health.
    hosts: BTreeMap<Rc<str>, BTreeMap<Rc<str>, Health>>,
    ejections: u64,
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Ejection {
    /// An empty table.
    #[must_use]
    pub const fn new(config: EjectionConfig) -> Self {
        Self {
            config,
            hosts: BTreeMap::new(),
            ejections: 0,
        }
    }

    /// Ejections so far.
    #[must_use]
    pub const fn ejections(&self) -> u64 {
        self.ejections
    }

    /// Forgets what was held against `host`: it restarted (a new generation is a new
    /// instance, with a clean record).
    pub fn forget_host(&mut self, host: &str) {
        for hosts in self.hosts.values_mut() {
            hosts.remove(host);
        }
        self.hosts.retain(|_, hosts| !hosts.is_empty());
    }

    /// Whether `host` gets no calls for `component` from this container at `now`.
    #[must_use]
    pub fn is_ejected(&self, now: Nanos, component: &str, host: &str) -> bool {
        self.hosts
            .get(component)
            .and_then(|hosts| hosts.get(host))
            .and_then(|health| health.until)
            .is_some_and(|until| now < until)
    }

    fn ejected_now(&self, now: Nanos, component: &str) -> usize {
        self.hosts.get(component).map_or(0, |hosts| {
            hosts
                .values()
                .filter(|h| h.until.is_some_and(|u| now < u))
                .count()
        })
    }

    /// The outcome of a call to `component` on `host`, which has `hosts` hosts now.
    pub fn record(
        &mut self,
        now: Nanos,
        component: &Rc<str>,
        host: &Rc<str>,
        outcome: Outcome,
        hosts: usize,
    ) {
        if !self.config.enabled || outcome == Outcome::Ignored {
            return;
        }
        if outcome == Outcome::Success {
            // Only failures need an entry; a success resets the run.
            if let Some(h) = self
                .hosts
                .get_mut(&**component)
                .and_then(|hosts| hosts.get_mut(&**host))
            {
                h.consecutive = 0;
            }
            return;
        }
        let ejected = self.ejected_now(now, component);
        let health = self
            .hosts
            .entry(component.clone())
            .or_default()
            .entry(host.clone())
            .or_default();
        if health.until.is_some_and(|u| now < u) {
            return;
        }
        health.consecutive += 1;
        if health.consecutive < self.config.consecutive {
            return;
        }
        let allowed = (ejected + 1) * 100 <= hosts * self.config.max_percent as usize;
        if !allowed {
            return;
        }
        health.times = health.times.saturating_add(1);
        health.consecutive = 0;
        let length = nanos(self.config.base)
            .saturating_mul(u64::from(health.times))
            .min(nanos(self.config.max));
        health.until = Some(now.saturating_add(length));
        self.ejections += 1;
        tracing::warn!(name: "tern.breaker.ejected", component = %component, host = %host,
            times = health.times, eject_ms = length / 1_000_000, "instance ejected by this caller");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn fail(e: &mut Ejection, now: Nanos, host: &str, n: u32, hosts: usize) {
        let (c, h): (Rc<str>, Rc<str>) = ("kv".into(), host.into());
        for _ in 0..n {
            e.record(now, &c, &h, Outcome::Failure, hosts);
        }
    }

    #[test]
    fn ejected_for_30_s_then_60_s_after_the_second_time() {
        let mut e = Ejection::new(EjectionConfig::default());
        fail(&mut e, 0, "w1", 4, 10);
        assert!(!e.is_ejected(0, "kv", "w1"));
        fail(&mut e, 0, "w1", 1, 10);
        assert!(e.is_ejected(29 * S, "kv", "w1"));
        assert!(!e.is_ejected(30 * S, "kv", "w1"));
        fail(&mut e, 30 * S, "w1", 5, 10);
        assert!(e.is_ejected(89 * S, "kv", "w1"));
        assert!(!e.is_ejected(90 * S, "kv", "w1"));
        // A restarted host starts clean.
        fail(&mut e, 90 * S, "w1", 5, 10);
        assert!(e.is_ejected(91 * S, "kv", "w1"));
        e.forget_host("w1");
        assert!(!e.is_ejected(91 * S, "kv", "w1"));
    }

    #[test]
    fn at_most_half_the_hosts_are_ejected() {
        let mut e = Ejection::new(EjectionConfig::default());
        for i in 0..6 {
            fail(&mut e, 0, &format!("w{i}"), 5, 10);
        }
        let ejected = (0..10)
            .filter(|i| e.is_ejected(1, "kv", &format!("w{i}")))
            .count();
        assert_eq!(ejected, 5);
    }

    #[test]
    fn a_success_resets_the_run() {
        let mut e = Ejection::new(EjectionConfig::default());
        let (c, h): (Rc<str>, Rc<str>) = ("kv".into(), "w1".into());
        for _ in 0..20 {
            fail(&mut e, 0, "w1", 4, 2);
            e.record(0, &c, &h, Outcome::Success, 2);
        }
        assert!(!e.is_ejected(0, "kv", "w1"));
        assert_eq!(e.ejections(), 0);
    }
}
