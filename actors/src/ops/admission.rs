//! The admission chains: the caller's (`CallerGate`), run before a call leaves
//! this container, and the receiver's (`IngressGate`), run when a request arrives.
//!
//! The caller's checks run cheapest first, each refusing before any work is done:
//!
//! 1. horizon (reserved: the `flow` layer slots its check in here);
//! 2. circuit breaker of (this container, component): [`CallError::CircuitOpen`];
//! 3. flow throttle (reserved: the `flow` layer slots its check in here);
//! 4. in-flight caps of the [`LimitSet`]: [`CallError::LimitReached`].
//!
//! The receiving container then applies the mailbox bound (the router's backlogs) and,
//! if enabled, the adaptive ingress limit ([`IngressLimit`]). Replies, stream credits
//! and control frames never pass through either chain.

use std::collections::BTreeMap;
use std::rc::Rc;

use tern_proto::session::{Nanos, Request};

use super::breaker::{Admit, Breaker, BreakerConfig, BreakerState, Outcome, Ticket};
use super::ejection::{Ejection, EjectionConfig};
use super::ingress::{IngressConfig, IngressLimit};
use super::limits::LimitSet;
use crate::remote::CallError;

/// How a call's end counts for the breaker and for outlier ejection: what cost the
/// caller its deadline or shows a broken instance (timeout, lost or unreachable peer,
/// handler panic, failed stream) is a failure. Capacity signals (full mailbox,
/// backpressure, limits, an open circuit), errors of the caller's own making (codec, a
/// refusal by the receiver's rules, an unknown name) and definite answers that already
/// come at once (no host for the name, the component stopped for good) are not: an
/// open breaker would only hide them behind `CircuitOpen`.
#[must_use]
pub fn classify<T>(result: &Result<T, CallError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(e) => match e {
            CallError::Timeout
            | CallError::PeerLost(_)
            | CallError::Unreachable(_)
            | CallError::HandlerPanicked(_)
            | CallError::IdleTimeout
            | CallError::StreamFailed(_) => Outcome::Failure,
            _ => Outcome::Ignored,
        },
    }
}

/// What the caller's chain let through: carry it to the call's end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    /// The breaker's ticket, for an ask (a tell has no outcome to report).
    pub(crate) ticket: Option<Ticket>,
}

impl Pass {
    /// The deadline of a probe, if this call is one.
    pub(crate) fn probe_deadline(&self) -> Option<Nanos> {
        self.ticket.and_then(|t| t.probe_deadline())
    }
}

/// Counts of the caller's chain, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdmissionCounts {
    /// Calls refused by an open breaker ([`CallError::CircuitOpen`]).
    pub circuit_open: u64,
    /// Asks refused by an in-flight cap ([`CallError::LimitReached`]).
    pub limit_reached: u64,
    /// Times a breaker opened.
    pub breaker_opened: u64,
    /// Times a breaker half-opened.
    pub breaker_half_opened: u64,
    /// Times a breaker closed again.
    pub breaker_closed: u64,
    /// Half-open probes that had no outcome by their deadline.
    pub probes_expired: u64,
    /// Instances ejected by this container.
    pub ejections: u64,
    /// Inbound asks refused by the ingress limit.
    pub ingress_shed: u64,
}

/// The caller's chain; see the [module docs](crate::ops::admission).
#[derive(Debug)]
pub(crate) struct CallerGate {
    config: BreakerConfig,
    seed: u64,
    breakers: BTreeMap<Rc<str>, Breaker>,
    ejection: Ejection,
    limits: LimitSet,
    /// This container's asks on the wire, per component and in all.
    in_flight: BTreeMap<Rc<str>, usize>,
    total_in_flight: usize,
    counts: AdmissionCounts,
}

impl CallerGate {
    pub(crate) fn new(config: BreakerConfig, ejection: EjectionConfig, seed: u64) -> Self {
        Self {
            config,
            seed,
            breakers: BTreeMap::new(),
            ejection: Ejection::new(ejection),
            limits: LimitSet::default(),
            in_flight: BTreeMap::new(),
            total_in_flight: 0,
            counts: AdmissionCounts::default(),
        }
    }

    pub(crate) fn limits(&self) -> &LimitSet {
        &self.limits
    }

    pub(crate) fn limits_mut(&mut self) -> &mut LimitSet {
        &mut self.limits
    }

    /// The counts, breakers' transitions summed.
    pub(crate) fn counts(&self) -> AdmissionCounts {
        let mut c = self.counts;
        for b in self.breakers.values() {
            let b = b.counts();
            c.breaker_opened += b.opened;
            c.breaker_half_opened += b.half_opened;
            c.breaker_closed += b.closed;
            c.probes_expired += b.probes_expired;
        }
        c.ejections = self.ejection.ejections();
        c
    }

    /// The state of the breaker for `component` (closed if it has none yet).
    pub(crate) fn breaker_state(&self, now: Nanos, component: &str) -> BreakerState {
        self.breakers
            .get(component)
            .map_or(BreakerState::Closed, |b| b.state(now))
    }

    /// Runs the chain for a call to `component` (an ask if `ask`).
    pub(crate) fn admit(
        &mut self,
        now: Nanos,
        component: &Rc<str>,
        ask: bool,
    ) -> Result<Pass, CallError> {
        // 1. horizon: the flow layer's check goes here.
        let ticket = self.breaker(now, component, ask)?;
        // 3. flow throttle: the flow layer's check goes here.
        if ask {
            self.in_flight_cap(component)?;
        }
        Ok(Pass { ticket })
    }

    fn breaker(
        &mut self,
        now: Nanos,
        component: &Rc<str>,
        ask: bool,
    ) -> Result<Option<Ticket>, CallError> {
        if !self.config.enabled {
            return Ok(None);
        }
        let breaker = match self.breakers.get_mut(&**component) {
            Some(b) => b,
            None if ask => {
                // The jitter stream of each breaker: this node's seed and the name.
                let seed = component.bytes().fold(self.seed, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                });
                self.breakers
                    .entry(component.clone())
                    .or_insert_with(|| Breaker::new(self.config, seed))
            }
            // A tell to a component never asked: nothing is known against it.
            None => return Ok(None),
        };
        let admit = if ask {
            breaker.admit(now)
        } else {
            // A tell has no outcome to report, so it is never a probe: it goes only
            // while the breaker is closed.
            match breaker.state(now) {
                BreakerState::Closed => return Ok(None),
                _ => Admit::Refuse {
                    retry_after: std::time::Duration::from_nanos(
                        breaker.next_change().map_or(0, |t| t.saturating_sub(now)),
                    ),
                },
            }
        };
        match admit {
            Admit::Go(ticket) => Ok(Some(ticket)),
            Admit::Refuse { retry_after } => {
                self.counts.circuit_open += 1;
                Err(CallError::CircuitOpen { retry_after })
            }
        }
    }

    fn in_flight_cap(&mut self, component: &str) -> Result<(), CallError> {
        let mine = self.in_flight.get(component).copied().unwrap_or(0);
        if let Some(cap) = self.limits.component(component).in_flight
            && mine >= cap
        {
            self.counts.limit_reached += 1;
            return Err(CallError::LimitReached {
                limit: format!("in_flight.{component}"),
            });
        }
        if let Some(cap) = self.limits.container_in_flight()
            && self.total_in_flight >= cap
        {
            self.counts.limit_reached += 1;
            return Err(CallError::LimitReached {
                limit: "container.in_flight".to_owned(),
            });
        }
        Ok(())
    }

    /// An ask to `component` went on the wire.
    pub(crate) fn ask_started(&mut self, component: &Rc<str>) {
        *self.in_flight.entry(component.clone()).or_default() += 1;
        self.total_in_flight += 1;
    }

    /// An ask to `component` left the wire (answered, failed, cancelled).
    pub(crate) fn ask_ended(&mut self, component: &str) {
        if let Some(n) = self.in_flight.get_mut(component) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(component);
            }
            self.total_in_flight = self.total_in_flight.saturating_sub(1);
        }
    }

    /// How a call admitted with `pass` ended; `host` is where it went (for ejection),
    /// `hosts` how many hosts the component has.
    pub(crate) fn record(
        &mut self,
        now: Nanos,
        component: &Rc<str>,
        host: Option<&Rc<str>>,
        pass: Pass,
        outcome: Outcome,
        hosts: usize,
    ) {
        if let (Some(ticket), Some(b)) = (pass.ticket, self.breakers.get_mut(&**component)) {
            b.record(now, ticket, outcome);
        }
        if let Some(host) = host {
            self.ejection.record(now, component, host, outcome, hosts);
        }
    }

    /// `host` restarted: what ejection held against its old incarnation is dropped.
    pub(crate) fn host_restarted(&mut self, host: &str) {
        self.ejection.forget_host(host);
    }

    /// Whether this container sends no calls for `component` to `host` now.
    pub(crate) fn is_ejected(&self, now: Nanos, component: &str, host: &str) -> bool {
        self.ejection.is_ejected(now, component, host)
    }
}

/// The receiver's ingress limit and the asks it holds, by (peer, message id), so
/// each is released once, whichever way it ends.
#[derive(Debug)]
pub(crate) struct IngressGate {
    limit: IngressLimit,
    /// Admitted asks: when admitted, and when they are forgotten if never answered.
    held: BTreeMap<(Rc<str>, u64), (Nanos, Nanos)>,
}

impl IngressGate {
    pub(crate) fn new(config: IngressConfig) -> Self {
        Self {
            limit: IngressLimit::new(config),
            held: BTreeMap::new(),
        }
    }

    pub(crate) fn limit(&self) -> &IngressLimit {
        &self.limit
    }

    pub(crate) fn set_cap(&mut self, cap: Option<u32>) {
        self.limit.set_cap(cap);
    }

    /// Admits an inbound ask (tells are not counted: they have no end to observe),
    /// or says how long its caller should wait. `expiry` is when it is forgotten if it
    /// is never answered.
    pub(crate) fn admit(
        &mut self,
        now: Nanos,
        req: &Request,
        expiry: Nanos,
    ) -> Result<(), std::time::Duration> {
        if !req.expects_reply {
            return Ok(());
        }
        if !self.limit.is_enabled() {
            return Ok(());
        }
        if self.limit.in_flight() >= self.limit.limit() {
            // Asks whose answer was lost (their deadline long past) leave first.
            let stale: Vec<_> = self
                .held
                .iter()
                .filter(|(_, (_, until))| *until <= now)
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                if let Some((at, _)) = self.held.remove(&key) {
                    self.limit.release(now, now.saturating_sub(at));
                }
            }
        }
        self.limit.try_acquire(now)?;
        self.held
            .insert((Rc::from(req.peer.as_str()), req.message_id), (now, expiry));
        Ok(())
    }

    /// An inbound ask was answered or refused: release it if it was admitted.
    pub(crate) fn done(&mut self, now: Nanos, req: &Request) {
        if self.held.is_empty() || !req.expects_reply {
            return;
        }
        if let Some((at, _)) = self
            .held
            .remove(&(Rc::from(req.peer.as_str()), req.message_id))
        {
            self.limit.release(now, now.saturating_sub(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn capacity_signals_are_not_failures() {
        for e in [
            CallError::MailboxFull,
            CallError::Backpressure("w".into()),
            CallError::PendingFull,
            CallError::CircuitOpen {
                retry_after: Duration::ZERO,
            },
            CallError::LimitReached {
                limit: "in_flight.kv".into(),
            },
            CallError::NotHosted { name: "kv".into() },
            CallError::Stopped,
        ] {
            assert_eq!(classify::<()>(&Err(e)), Outcome::Ignored);
        }
        assert_eq!(classify::<()>(&Err(CallError::Timeout)), Outcome::Failure);
        assert_eq!(classify(&Ok(())), Outcome::Success);
    }

    #[test]
    fn an_open_breaker_refuses_asks_and_tells_with_retry_after() {
        let cfg = BreakerConfig::default().consecutive(2).jitter_percent(0);
        let mut gate = CallerGate::new(cfg, EjectionConfig::default(), 1);
        let kv: Rc<str> = "kv".into();
        for _ in 0..2 {
            let pass = gate.admit(0, &kv, true).expect("closed");
            gate.record(0, &kv, None, pass, Outcome::Failure, 1);
        }
        let refused = gate.admit(1_000, &kv, true);
        assert_eq!(
            refused,
            Err(CallError::CircuitOpen {
                retry_after: Duration::from_nanos(5_000_000_000 - 1_000)
            })
        );
        assert!(matches!(
            gate.admit(1_000, &kv, false),
            Err(CallError::CircuitOpen { .. })
        ));
        assert_eq!(gate.counts().circuit_open, 2);
        assert_eq!(gate.counts().breaker_opened, 1);
    }

    #[test]
    fn in_flight_caps_refuse_with_the_key_and_count_down() {
        let mut gate = CallerGate::new(BreakerConfig::default(), EjectionConfig::default(), 1);
        let kv: Rc<str> = "kv".into();
        let change = crate::ops::LimitChange::parse("in_flight.kv=2").expect("valid");
        gate.limits_mut().apply(&[change], None).expect("valid");
        for _ in 0..2 {
            gate.admit(0, &kv, true).expect("room");
            gate.ask_started(&kv);
        }
        assert_eq!(
            gate.admit(0, &kv, true),
            Err(CallError::LimitReached {
                limit: "in_flight.kv".into()
            })
        );
        // Tells are not asks in flight.
        assert!(gate.admit(0, &kv, false).is_ok());
        gate.ask_ended("kv");
        assert!(gate.admit(0, &kv, true).is_ok());
    }
}
