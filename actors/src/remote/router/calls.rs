//! Outbound calls: tells and asks, the asks on the wire, and the calls waiting for
//! their component name or a connection.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use tern_proto::session::{Nanos, Outgoing};

use super::flow::Admitted;
use super::{AskSlot, Event, Reach, Router, Slots, StreamSlot, nanos};
use crate::ops::admission::Pass;
use crate::ops::{Outcome, classify};
use crate::remote::error::CallError;

/// One of this node's asks on the wire.
pub(crate) struct Sent<S> {
    pub(super) slot: S,
    pub(super) component: Rc<str>,
    pub(super) peer: Rc<str>,
    /// What the caller's admission chain let through (the breaker's ticket).
    pub(super) pass: Pass,
}

/// This node's asks on the wire, by session id. Ids are a keyed permutation of a
/// counter (unguessable, so in no useful order): an ordered map, so draining it at
/// shutdown goes in a fixed order.
pub(crate) struct Asks<S>(BTreeMap<u64, Sent<S>>);

impl<S> Default for Asks<S> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<S> Asks<S> {
    pub(super) fn insert(&mut self, id: u64, sent: Sent<S>) {
        self.0.insert(id, sent);
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<Sent<S>> {
        self.0.remove(&id)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = (u64, Sent<S>)> + use<S> {
        std::mem::take(&mut self.0).into_iter()
    }
}

/// What a waiting call is: tells, asks and stream requests wait for a name the same
/// way, in one queue, in call order.
pub(crate) enum Call<K: Slots> {
    Tell,
    Ask(K::Ask),
    Stream {
        stream: K::Stream,
        window: u32,
        /// The whole stream's deadline, if it has one.
        deadline: Option<Nanos>,
    },
}

/// A call waiting for its component name (or its host's connection).
pub(crate) struct Pending<K: Slots> {
    pub(super) component: Rc<str>,
    pub(super) pin: Option<Rc<str>>,
    pub(super) out: Outgoing,
    pub(super) call: Call<K>,
    /// When it stops waiting: an ask's deadline, a stream's wait, a tell's TTL.
    pub(super) expires: Nanos,
    /// What the caller's admission chain let through.
    pub(super) pass: Pass,
}

impl<K: Slots> Pending<K> {
    pub(super) fn is_abandoned(&self) -> bool {
        match &self.call {
            Call::Tell => false,
            Call::Ask(slot) => slot.is_abandoned(),
            Call::Stream { stream, .. } => stream.is_abandoned(),
        }
    }
}

impl<K: Slots> Router<K> {
    /// Where a call to `component` (on `pin`, if given) goes now: `Err` if it must fail
    /// at once (the node is gone, or its connection was lost), `Ok(None)` if it must
    /// wait (the name is unknown, messages for it already wait, or the host's
    /// connection is not up yet), `Ok(Some(host))` to send it now. One place decides
    /// for tells, asks and streams alike.
    pub(crate) fn target<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &str,
        pin: Option<&str>,
    ) -> Result<Option<Rc<str>>, CallError> {
        if let Some(error) = self.lost(component, pin) {
            return Err(error);
        }
        if let Some(node) = self.unreachable(component, pin, now) {
            return Err(CallError::Unreachable(node));
        }
        Ok(self
            .route(now, component, pin)
            .filter(|h| reach.connected(h)))
    }

    /// A tell: queued for its host now (counted in `tells_sent` by the driver once the
    /// transport took it), or parked until its name is known. Refusals are counted by
    /// kind.
    pub(crate) fn tell<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        out: Outgoing,
    ) -> Result<bool, CallError> {
        let sent = self.tell_inner(now, reach, component, pin, out);
        if let Err(e) = &sent {
            self.stats.tells_refused.count(e);
        }
        sent
    }

    fn tell_inner<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        mut out: Outgoing,
    ) -> Result<bool, CallError> {
        let pass = self.gate.admit(now, component, false)?;
        let Some(host) = self.target(now, reach, component, pin.map(|p| &**p))? else {
            let expires = now.saturating_add(nanos(self.config.pending_ttl));
            self.park(now, component, pin, out, Call::Tell, expires, pass)?;
            return Ok(false);
        };
        // FLOW HOOK 1: horizon and rate limits.
        match self.admit_flow(now, reach, component, pin.is_some(), host, &mut out, None)? {
            Admitted::Send(host) => {
                self.session.tell(now, &host, out);
                Ok(true)
            }
            Admitted::Shape(host, at) => {
                self.enqueue_shaped(at, host, component.clone(), out, Call::Tell, at, pass);
                Ok(false)
            }
            Admitted::Dropped => Ok(false),
        }
    }

    /// An ask, ending by `deadline`: on the wire now, or parked until its name is
    /// known. Its outcome comes back as [`Event::Completed`] with `slot`.
    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(crate) fn ask<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        mut out: Outgoing,
        deadline: Nanos,
        slot: K::Ask,
    ) -> Result<(), CallError> {
        let pass = self.gate.admit(now, component, true)?;
        let host = match self.target(now, reach, component, pin.map(|p| &**p)) {
            Ok(Some(host)) => host,
            Ok(None) => {
                return self.park(now, component, pin, out, Call::Ask(slot), deadline, pass);
            }
            Err(e) => {
                let hosts = self.hosts_count(component);
                let outcome = classify::<()>(&Err(e.clone()));
                self.gate.record(now, component, None, pass, outcome, hosts);
                return Err(e);
            }
        };
        // FLOW HOOK 1: horizon and rate limits.
        let pinned = pin.is_some();
        match self.admit_flow(
            now,
            reach,
            component,
            pinned,
            host,
            &mut out,
            Some(deadline),
        )? {
            Admitted::Send(host) => {
                self.start_ask(now, host, component.clone(), out, deadline, slot, pass);
            }
            Admitted::Shape(host, at) => {
                let call = Call::Ask(slot);
                self.enqueue_shaped(at, host, component.clone(), out, call, deadline, pass);
            }
            // An ask is never dropped silently: `admit_flow` fails it with `Dropped`.
            Admitted::Dropped => {}
        }
        Ok(())
    }

    /// How many nodes host `component` now (for outlier ejection's cap).
    fn hosts_count(&self, component: &str) -> usize {
        self.hosts.get(component).map_or(0, BTreeSet::len)
    }

    /// How an ask that left the wire ended, for the breaker and ejection; its
    /// in-flight count drops.
    pub(super) fn ask_over(&mut self, now: Nanos, sent: &Sent<K::Ask>, outcome: Outcome) {
        self.gate.ask_ended(&sent.component);
        let hosts = self.hosts_count(&sent.component);
        self.gate.record(
            now,
            &sent.component,
            Some(&sent.peer),
            sent.pass,
            outcome,
            hosts,
        );
    }

    /// Forgets ask `id` (its caller gave up, or its frame could not be sent); returns
    /// its slot if it was outstanding.
    pub(crate) fn cancel_ask(&mut self, id: u64) -> Option<K::Ask> {
        let sent = self.asks.remove(id)?;
        // No outcome: a probe given up counts as failed at its deadline.
        self.gate.ask_ended(&sent.component);
        self.session.cancel(id);
        Some(sent.slot)
    }

    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(super) fn start_ask(
        &mut self,
        now: Nanos,
        host: Rc<str>,
        component: Rc<str>,
        out: Outgoing,
        deadline: Nanos,
        slot: K::Ask,
        pass: Pass,
    ) {
        // A probe never waits longer than its own deadline.
        let deadline = pass.probe_deadline().map_or(deadline, |d| d.min(deadline));
        self.gate.ask_started(&component);
        let id = self
            .session
            .ask(now, &host, out, Some(deadline.saturating_sub(now)));
        slot.sent(id);
        self.asks.insert(
            id,
            Sent {
                slot,
                component,
                peer: host,
                pass,
            },
        );
        self.stats.asks_sent += 1;
    }

    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(super) fn park(
        &mut self,
        now: Nanos,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        mut out: Outgoing,
        call: Call<K>,
        expires: Nanos,
        pass: Pass,
    ) -> Result<(), CallError> {
        if self.pending.len() >= self.config.pending_limit {
            self.pending.retain(|p| !p.is_abandoned());
            if self.pending.len() >= self.config.pending_limit {
                return Err(CallError::PendingFull);
            }
        }
        // A call pinned to a node addresses the generation it runs now: if the call
        // goes out only after that node restarted, the new incarnation refuses it.
        if let Some(node) = pin
            && out.generation.is_none()
        {
            out.generation = Some(self.session.peer_generation(node));
        }
        tracing::debug!(node = %self.name(), component = %component, "waiting for a component name or a connection");
        self.pending.push_back(Pending {
            component: component.clone(),
            pin: pin.cloned(),
            out,
            call,
            expires,
            pass,
        });
        self.want_tick(now);
        Ok(())
    }

    /// Sends every waiting message whose name is now known, keeping their order.
    pub(super) fn retry_pending<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        if self.pending.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.pending);
        let mut blocked: BTreeSet<(Rc<str>, Option<Rc<str>>)> = BTreeSet::new();
        for p in waiting {
            if p.is_abandoned() {
                continue;
            }
            let key = (p.component.clone(), p.pin.clone());
            if blocked.contains(&key) {
                self.pending.push_back(p);
                continue;
            }
            let host = self
                .route(now, &p.component, p.pin.as_deref())
                .filter(|h| reach.connected(h));
            let Some(host) = host else {
                blocked.insert(key);
                self.pending.push_back(p);
                continue;
            };
            // FLOW HOOK 1, for calls that waited (streams are not limited).
            let mut out = p.out;
            let host = match &p.call {
                Call::Stream { .. } => {
                    match self.admit_horizon(reach, &p.component, p.pin.is_some(), host, &mut out) {
                        Ok(host) => host,
                        Err(e) => {
                            self.end_waiting(p.call, e);
                            continue;
                        }
                    }
                }
                Call::Tell | Call::Ask(_) => {
                    let deadline = matches!(p.call, Call::Ask(_)).then_some(p.expires);
                    let pinned = p.pin.is_some();
                    match self.admit_flow(
                        now,
                        reach,
                        &p.component,
                        pinned,
                        host,
                        &mut out,
                        deadline,
                    ) {
                        Ok(Admitted::Send(host)) => host,
                        Ok(Admitted::Shape(host, at)) => {
                            self.enqueue_shaped(
                                at,
                                host,
                                p.component,
                                out,
                                p.call,
                                p.expires,
                                p.pass,
                            );
                            continue;
                        }
                        Ok(Admitted::Dropped) => continue,
                        Err(e) => {
                            if let Call::Tell = p.call {
                                self.stats.tells_refused.count(&e);
                            }
                            self.end_waiting(p.call, e);
                            continue;
                        }
                    }
                }
            };
            match p.call {
                Call::Tell => {
                    self.session.tell(now, &host, out);
                    self.stats.tells_sent += 1;
                }
                Call::Ask(slot) => {
                    self.start_ask(now, host, p.component, out, p.expires, slot, p.pass);
                }
                Call::Stream {
                    stream,
                    window,
                    deadline,
                } => {
                    let timeout = deadline.map(|d| d.saturating_sub(now).max(1));
                    self.start_stream(now, host, p.component, out, window, timeout, stream);
                }
            }
        }
    }

    /// Ends a call that waited in vain.
    pub(super) fn end_waiting(&mut self, call: Call<K>, error: CallError) {
        match call {
            Call::Tell => {}
            Call::Ask(slot) => self.events.push_back(Event::Completed {
                slot,
                outcome: Err(error),
            }),
            Call::Stream { stream, .. } => self.events.push_back(Event::StreamEnd {
                stream,
                result: Err(error),
            }),
        }
    }

    /// Ends waiting calls whose wait is over: asks and streams with
    /// [`CallError::NotHosted`] or [`CallError::UnknownName`] (see
    /// [`Router::unhosted`]), tells dropped (counted and logged).
    pub(super) fn expire_pending(&mut self, now: Nanos) {
        if self
            .pending
            .iter()
            .all(|p| p.expires > now && !p.is_abandoned())
        {
            return;
        }
        let mut expired = 0;
        for p in std::mem::take(&mut self.pending) {
            if p.is_abandoned() {
                continue;
            }
            if p.expires > now {
                self.pending.push_back(p);
                continue;
            }
            if let Call::Tell = p.call {
                expired += 1;
                tracing::warn!(node = %self.name(), component = %p.component,
                    message_type = %p.out.message_type, "tell dropped: component name unknown until its wait expired");
            } else {
                let error = self.unhosted(&p.component);
                self.end_waiting(p.call, error);
            }
        }
        self.stats.pending_expired += expired;
    }

    /// Ends the waiting calls `node` going away makes hopeless: pinned to it, or for a
    /// name only it had.
    pub(super) fn fail_pending_for(&mut self, node: &str) {
        for p in std::mem::take(&mut self.pending) {
            let hopeless = p.pin.as_deref() == Some(node)
                || (p.pin.is_none() && self.gone.get(&*p.component).is_some_and(|n| n == node));
            if !hopeless {
                self.pending.push_back(p);
                continue;
            }
            if let Call::Tell = p.call {
                self.stats.dropped += 1;
                tracing::warn!(node = %self.name(), peer = node, component = %p.component,
                    "waiting tell dropped: its node is gone");
            } else {
                // Never sent: the node is unreachable for good, or the name has no
                // host left.
                let error = if p.pin.is_some() {
                    CallError::Unreachable(node.to_owned())
                } else {
                    CallError::NotHosted {
                        name: p.component.to_string(),
                    }
                };
                self.end_waiting(p.call, error);
            }
        }
    }
}
