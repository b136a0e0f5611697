//! [`FlowControl`]: the sans-IO state of a container's horizons and flow rate limits,
//! asked by the router before a call leaves and when a request arrives.

use std::collections::BTreeMap;

use tern_proto::session::Nanos;

use super::horizon::{Horizon, Horizons, Place};
use super::limits::{FlowLimits, Limit, Overflow};
use super::stats::FlowStats;
use super::throttle::{Offer, Throttle};

/// The network of a container whose network nobody said (this node's default, and
/// the `net` fact's).
pub const DEFAULT_NETWORK: &str = "default";

/// A container's horizon settings and flow rate limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowPolicy {
    /// Where horizons are set.
    pub horizons: Horizons,
    /// The rate limits.
    pub limits: FlowLimits,
}

/// What the rate limits say of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It fits every limit; it is counted as sent.
    Pass,
    /// It does not: apply `overflow`. It would fit `retry_after` nanoseconds from now.
    Excess {
        /// The policy of the limit that refused it.
        overflow: Overflow,
        /// Nanoseconds until it would fit.
        retry_after: Nanos,
    },
}

/// Horizons and rate limits of one container; see the [module docs](crate::flow).
///
/// ```
/// use tern_actors::flow::{FlowControl, FlowPolicy, Horizon, Limit, Overflow, Place, Rate, Verdict};
///
/// let mut policy = FlowPolicy::default();
/// policy.horizons.app(Horizon::Global);
/// policy.limits.link("eu", "us", Limit::new(Rate::new(1, 1), Overflow::Drop));
/// let mut fc = FlowControl::new(Place::new("eu", "h1"));
/// fc.set_policy(policy, 0);
/// fc.set_peer_place("w1", Place::new("us", "h9"));
/// assert_eq!(fc.offer(0, "", "w1"), Verdict::Pass);
/// assert!(matches!(fc.offer(0, "", "w1"), Verdict::Excess { overflow: Overflow::Drop, .. }));
/// ```
#[derive(Debug, Clone)]
pub struct FlowControl {
    place: Place,
    peers: BTreeMap<String, Place>,
    policy: FlowPolicy,
    flows: BTreeMap<String, Throttle>,
    /// Destination network -> throttle (the source is this node's network).
    links: BTreeMap<String, Throttle>,
    /// (flow, destination network) -> messages in its shaping queue.
    queued: BTreeMap<(String, String), usize>,
    stats: FlowStats,
    /// When a horizon refusal was last logged (at most one line a second).
    logged_at: Option<Nanos>,
}

impl FlowControl {
    /// Flow control for a container at `place`, with no limits and the default
    /// horizons.
    #[must_use]
    pub fn new(place: Place) -> Self {
        Self {
            place,
            peers: BTreeMap::new(),
            policy: FlowPolicy::default(),
            flows: BTreeMap::new(),
            links: BTreeMap::new(),
            queued: BTreeMap::new(),
            stats: FlowStats::default(),
            logged_at: None,
        }
    }

    /// Where this container runs.
    #[must_use]
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// Moves this container (its network or host changed).
    pub fn set_place(&mut self, place: Place) {
        self.place = place;
        self.links.clear();
    }

    /// Where peer `name` runs (from the `net` fact).
    pub fn set_peer_place(&mut self, name: &str, place: Place) {
        self.peers.insert(name.to_owned(), place);
    }

    /// Where peer `name` runs: as set, or on its own host in [`DEFAULT_NETWORK`].
    #[must_use]
    pub fn place_of(&self, name: &str) -> Place {
        self.peers
            .get(name)
            .cloned()
            .unwrap_or_else(|| Place::new(DEFAULT_NETWORK, name))
    }

    fn network_of(&self, name: &str) -> &str {
        self.peers
            .get(name)
            .map_or(DEFAULT_NETWORK, |p| p.network.as_str())
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> &FlowPolicy {
        &self.policy
    }

    /// Replaces the policy at `now`. A throttle whose limit is still set keeps what it
    /// spent (a changed rate grants no fresh burst); one whose limit is gone is
    /// forgotten.
    pub fn set_policy(&mut self, policy: FlowPolicy, now: Nanos) {
        self.flows
            .retain(|name, t| match policy.limits.flows.get(name) {
                Some(limit) => {
                    t.set_rate(limit.throttle.rate, now);
                    true
                }
                None => false,
            });
        let mine = policy.limits.links.get(&self.place.network);
        self.links
            .retain(|to, t| match mine.and_then(|m| m.get(to)) {
                Some(limit) => {
                    t.set_rate(limit.throttle.rate, now);
                    true
                }
                None => false,
            });
        self.policy = policy;
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> FlowStats {
        let transitions = self
            .flows
            .values()
            .chain(self.links.values())
            .map(Throttle::transitions)
            .sum();
        FlowStats {
            throttle_transitions: transitions,
            shaping: self.queued.values().sum(),
            ..self.stats
        }
    }

    /// The counters, for the router to count what it did.
    pub fn stats_mut(&mut self) -> &mut FlowStats {
        &mut self.stats
    }

    /// The effective horizon of a call from here to `component` on `flow`, with the
    /// caller's `requested` horizon (an envelope value; 0 for none).
    #[must_use]
    pub fn horizon(&self, component: &str, flow: &str, requested: u32) -> Horizon {
        self.policy.horizons.resolve(
            component,
            flow,
            &self.place.network,
            Horizon::from_wire(requested),
        )
    }

    /// Whether a message with `horizon` may go from here to `peer`; the refusal
    /// otherwise, counted.
    ///
    /// # Errors
    ///
    /// `(horizon, needed)` when `peer` is beyond it.
    pub fn check_outbound(
        &mut self,
        horizon: Horizon,
        peer: &str,
    ) -> Result<(), (Horizon, Horizon)> {
        let needed = self.needed(peer);
        if needed <= horizon {
            Ok(())
        } else {
            self.stats.horizon_refused += 1;
            Err((horizon, needed))
        }
    }

    /// The narrowest horizon a message from here to `peer` needs (no allocation: it
    /// is on every remote call's path).
    #[must_use]
    pub fn needed(&self, peer: &str) -> Horizon {
        let (network, host) = self.peers.get(peer).map_or((DEFAULT_NETWORK, peer), |p| {
            (p.network.as_str(), p.host.as_str())
        });
        if network != self.place.network {
            Horizon::Global
        } else if host != self.place.host {
            Horizon::Network
        } else {
            Horizon::Node
        }
    }

    /// Whether `peer` is within `horizon` of here (not counted).
    #[must_use]
    pub fn within(&self, horizon: Horizon, peer: &str) -> bool {
        self.needed(peer) <= horizon
    }

    /// The receiver's check of a request from `peer` to `component` carrying `flow`
    /// and the envelope horizon `wire`: its origin must be within the narrowest of the
    /// envelope's horizon and this node's settings (resolved for the origin's
    /// network). Refusals are counted; `log` says whether to log this one (at most one
    /// a second).
    ///
    /// # Errors
    ///
    /// `(horizon, needed)` when the origin is beyond it.
    pub fn check_inbound(
        &mut self,
        now: Nanos,
        peer: &str,
        component: &str,
        flow: &str,
        wire: u32,
    ) -> Result<(), (Horizon, Horizon, bool)> {
        let network = self
            .peers
            .get(peer)
            .map_or(DEFAULT_NETWORK, |p| p.network.as_str());
        let horizon =
            self.policy
                .horizons
                .resolve(component, flow, network, Horizon::from_wire(wire));
        let needed = self.needed(peer);
        if needed <= horizon {
            return Ok(());
        }
        self.stats.horizon_refused_inbound += 1;
        let log = self
            .logged_at
            .is_none_or(|t| now >= t.saturating_add(1_000_000_000));
        if log {
            self.logged_at = Some(now);
        }
        Err((horizon, needed, log))
    }

    /// The limits of a message on `flow` to `peer`: the flow's (if it has one) and the
    /// link's (if `peer` is in another network and the link has one).
    fn limits(&self, flow: &str, to: &str) -> (Option<Limit>, Option<Limit>) {
        let f = if flow.is_empty() {
            None
        } else {
            self.policy.limits.flows.get(flow).copied()
        };
        let l = if to == self.place.network {
            None
        } else {
            self.policy
                .limits
                .links
                .get(&self.place.network)
                .and_then(|m| m.get(to))
                .copied()
        };
        (f, l)
    }

    fn waits(
        &mut self,
        now: Nanos,
        flow: &str,
        to: &str,
    ) -> (Option<Limit>, Nanos, Option<Limit>, Nanos) {
        let (f, l) = self.limits(flow, to);
        // Looked up before inserting: no allocation once the throttle exists.
        let wf = f.map_or(0, |f| {
            if !self.flows.contains_key(flow) {
                self.flows
                    .insert(flow.to_owned(), Throttle::new(f.throttle));
            }
            self.flows.get(flow).map_or(0, |t| t.wait(now))
        });
        let wl = l.map_or(0, |l| {
            if !self.links.contains_key(to) {
                self.links.insert(to.to_owned(), Throttle::new(l.throttle));
            }
            self.links.get(to).map_or(0, |t| t.wait(now))
        });
        (f, wf, l, wl)
    }

    /// How long until a message on `flow` to `peer` would fit every limit (0: now;
    /// past the slots reserved for its shaping queue).
    pub fn wait(&mut self, now: Nanos, flow: &str, peer: &str) -> Nanos {
        if self.policy.limits.is_empty() {
            return 0;
        }
        let to = self.network_of(peer).to_owned();
        let (_, wf, _, wl) = self.waits(now, flow, &to);
        wf.max(wl)
    }

    /// The overflow policy of a message on `flow` to `peer`: its flow limit's if it has
    /// one, else its link's; `None` if neither limits it.
    #[must_use]
    pub fn overflow_for(&self, flow: &str, peer: &str) -> Option<Overflow> {
        let (f, l) = self.limits(flow, self.network_of(peer));
        f.or(l).map(|limit| limit.overflow)
    }

    /// Whether a message on `flow` to `peer` would fit every limit now (nothing
    /// counted).
    pub fn fits(&mut self, now: Nanos, flow: &str, peer: &str) -> bool {
        if self.policy.limits.is_empty() {
            return true;
        }
        let to = self.network_of(peer).to_owned();
        let (_, wf, _, wl) = self.waits(now, flow, &to);
        wf == 0 && wl == 0
    }

    /// Offers a message on `flow` ("" for none) to `peer` at `now`: counted as sent
    /// if it fits every limit; otherwise the throttles that refused it trip and the
    /// verdict names the policy to apply.
    pub fn offer(&mut self, now: Nanos, flow: &str, peer: &str) -> Verdict {
        if self.policy.limits.is_empty() {
            return Verdict::Pass;
        }
        let to = self.network_of(peer).to_owned();
        let (f, wf, l, wl) = self.waits(now, flow, &to);
        if wf == 0 && wl == 0 {
            if f.is_some() {
                self.throttle_offer(now, Some(flow), &to);
            }
            if l.is_some() {
                self.throttle_offer(now, None, &to);
            }
            return Verdict::Pass;
        }
        // Only the refusing throttles see it (they trip); the others did not send it.
        let mut retry_after = 0;
        if wf > 0 {
            retry_after = retry_after.max(self.throttle_offer(now, Some(flow), &to));
        }
        if wl > 0 {
            retry_after = retry_after.max(self.throttle_offer(now, None, &to));
        }
        let overflow = match (f, l) {
            (Some(f), _) if wf > 0 => f.overflow,
            (_, Some(l)) => l.overflow,
            (Some(f), None) => f.overflow,
            (None, None) => return Verdict::Pass,
        };
        Verdict::Excess {
            overflow,
            retry_after,
        }
    }

    fn throttle_offer(&mut self, now: Nanos, flow: Option<&str>, to: &str) -> Nanos {
        let t = match flow {
            Some(f) => self.flows.get_mut(f),
            None => self.links.get_mut(to),
        };
        match t.map(|t| t.offer(now)) {
            Some(Offer::Excess { retry_after }) => retry_after,
            _ => 0,
        }
    }

    /// Queues a message on `flow` to `peer` for shaping under `local` overflow with a
    /// queue of `max_queue`: when it may go (its slot reserved in every limit), or
    /// `None` if the queue is full, the rate is zero, or the slot would come after
    /// `deadline`. Release it with [`FlowControl::unshape`] when it leaves the queue.
    pub fn shape(
        &mut self,
        now: Nanos,
        flow: &str,
        peer: &str,
        max_queue: usize,
        deadline: Option<Nanos>,
    ) -> Option<Nanos> {
        let to = self.network_of(peer).to_owned();
        let key = (flow.to_owned(), to.clone());
        if self.queued.get(&key).copied().unwrap_or(0) >= max_queue {
            return None;
        }
        let (f, wf, l, wl) = self.waits(now, flow, &to);
        let at = now.saturating_add(wf.max(wl));
        if deadline.is_some_and(|d| at > d) || wf == Nanos::MAX || wl == Nanos::MAX {
            return None;
        }
        let mut go = now;
        if f.is_some()
            && let Some(t) = self.flows.get_mut(flow)
        {
            go = go.max(t.reserve(now)?);
        }
        if l.is_some()
            && let Some(t) = self.links.get_mut(&to)
        {
            go = go.max(t.reserve(now)?);
        }
        *self.queued.entry(key).or_insert(0) += 1;
        self.stats.shaped += 1;
        Some(go)
    }

    /// A message [`FlowControl::shape`] queued on `flow` to `peer` left its queue.
    pub fn unshape(&mut self, flow: &str, peer: &str) {
        let key = (flow.to_owned(), self.network_of(peer).to_owned());
        if let Some(n) = self.queued.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.queued.remove(&key);
            }
        }
    }

    /// Whether a message on `flow` to `peer` must queue behind others already in its
    /// shaping queue (no overtaking).
    #[must_use]
    pub fn is_queueing(&self, flow: &str, peer: &str) -> bool {
        !self.queued.is_empty()
            && self
                .queued
                .contains_key(&(flow.to_owned(), self.network_of(peer).to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Rate, Secondary};

    const MS: Nanos = 1_000_000;

    fn control(limits: FlowLimits) -> FlowControl {
        let mut fc = FlowControl::new(Place::new("a", "ha"));
        let mut policy = FlowPolicy {
            limits,
            ..FlowPolicy::default()
        };
        policy.horizons.app(Horizon::Global);
        fc.set_policy(policy, 0);
        fc.set_peer_place("b1", Place::new("b", "hb1"));
        fc.set_peer_place("a2", Place::new("a", "ha2"));
        fc
    }

    #[test]
    fn a_link_limit_counts_only_what_crosses_to_its_network() {
        let mut limits = FlowLimits::default();
        limits.link("a", "b", Limit::new(Rate::new(10, 1), Overflow::Drop));
        let mut fc = control(limits);
        assert_eq!(fc.offer(0, "", "b1"), Verdict::Pass);
        assert!(
            matches!(fc.offer(0, "", "b1"), Verdict::Excess { overflow: Overflow::Drop, retry_after } if retry_after == 100 * MS)
        );
        // Inside the network: not limited.
        for _ in 0..100 {
            assert_eq!(fc.offer(0, "", "a2"), Verdict::Pass);
        }
        assert!(fc.fits(0, "", "a2"));
        assert!(!fc.fits(0, "", "b1"));
    }

    #[test]
    fn the_flows_policy_applies_when_the_flow_limit_refuses() {
        let mut limits = FlowLimits::default();
        limits
            .flow("bulk", Limit::new(Rate::new(1, 1), Overflow::Bounce))
            .link("a", "b", Limit::new(Rate::new(100, 100), Overflow::Drop));
        let mut fc = control(limits);
        assert_eq!(fc.offer(0, "bulk", "b1"), Verdict::Pass);
        assert!(matches!(
            fc.offer(0, "bulk", "b1"),
            Verdict::Excess {
                overflow: Overflow::Bounce,
                ..
            }
        ));
        // The refused message did not spend the link's budget: 99 more fit.
        for _ in 0..99 {
            assert_eq!(fc.offer(0, "", "b1"), Verdict::Pass);
        }
        assert!(matches!(
            fc.offer(0, "", "b1"),
            Verdict::Excess {
                overflow: Overflow::Drop,
                ..
            }
        ));
        assert_eq!(fc.stats().throttle_transitions, 2);
    }

    #[test]
    fn the_shaping_queue_is_bounded_by_length_and_deadline() {
        let local = Overflow::Local {
            max_queue: 3,
            then: Secondary::Drop,
        };
        let mut limits = FlowLimits::default();
        limits.link("a", "b", Limit::new(Rate::new(10, 1), local));
        let mut fc = control(limits);
        assert_eq!(fc.offer(0, "", "b1"), Verdict::Pass);
        assert!(!fc.is_queueing("", "b1"));
        assert_eq!(fc.shape(0, "", "b1", 3, None), Some(100 * MS));
        assert!(fc.is_queueing("", "b1"));
        // Past the deadline: refused, nothing reserved.
        assert_eq!(fc.shape(0, "", "b1", 3, Some(150 * MS)), None);
        assert_eq!(fc.shape(0, "", "b1", 3, None), Some(200 * MS));
        assert_eq!(fc.shape(0, "", "b1", 3, None), Some(300 * MS));
        assert_eq!(fc.shape(0, "", "b1", 3, None), None, "full");
        assert_eq!(fc.stats().shaping, 3);
        for _ in 0..3 {
            fc.unshape("", "b1");
        }
        assert_eq!(fc.stats().shaping, 0);
        assert!(!fc.is_queueing("", "b1"));
    }

    #[test]
    fn horizons_are_checked_both_ways_and_counted() {
        let mut fc = FlowControl::new(Place::new("a", "ha"));
        fc.set_peer_place("b1", Place::new("b", "hb1"));
        fc.set_peer_place("a2", Place::new("a", "ha2"));
        let h = fc.horizon("kv", "", 0);
        assert_eq!(h, Horizon::Network, "the default");
        assert_eq!(fc.check_outbound(h, "a2"), Ok(()));
        assert_eq!(
            fc.check_outbound(h, "b1"),
            Err((Horizon::Network, Horizon::Global))
        );
        // A request from b claiming global is still refused by this node's default.
        let inbound = fc.check_inbound(0, "b1", "kv", "", Horizon::Global.to_wire());
        assert_eq!(inbound, Err((Horizon::Network, Horizon::Global, true)));
        // Logged at most once a second.
        assert_eq!(
            fc.check_inbound(MS, "b1", "kv", "", 0),
            Err((Horizon::Network, Horizon::Global, false))
        );
        // An envelope narrower than the receiver's settings is refused too.
        assert!(
            fc.check_inbound(0, "a2", "kv", "", Horizon::Node.to_wire())
                .is_err()
        );
        assert_eq!(fc.check_inbound(0, "a2", "kv", "", 0), Ok(()));
        let stats = fc.stats();
        assert_eq!(
            (stats.horizon_refused, stats.horizon_refused_inbound),
            (1, 3)
        );
    }

    #[test]
    fn a_new_policy_keeps_what_was_spent() {
        let mut limits = FlowLimits::default();
        limits.link("a", "b", Limit::new(Rate::new(10, 5), Overflow::Drop));
        let mut fc = control(limits);
        for _ in 0..5 {
            assert_eq!(fc.offer(0, "", "b1"), Verdict::Pass);
        }
        let mut raised = FlowLimits::default();
        raised.link("a", "b", Limit::new(Rate::new(1000, 5), Overflow::Drop));
        let mut policy = fc.policy().clone();
        policy.limits = raised;
        fc.set_policy(policy, 0);
        assert!(
            matches!(fc.offer(0, "", "b1"), Verdict::Excess { .. }),
            "no fresh burst"
        );
    }
}
