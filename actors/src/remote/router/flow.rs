//! FLOW HOOK: horizons and flow rate limits ([`crate::flow`]) on the call path.
//!
//! The checks themselves are the sans-IO [`FlowControl`]; this file is the glue the
//! router calls at three points, each marked `FLOW HOOK` where it is called:
//!
//! 1. a tell or ask that has a host ([`Router::admit_flow`], from `calls.rs`, also for
//!    calls that waited for their name): the horizon (another host within it, or
//!    [`CallError::OutsideHorizon`]), then the rate limits and their overflow policy;
//!    a stream request: the horizon only ([`Router::admit_horizon`], from
//!    `streams.rs` and `calls.rs`);
//! 2. the clock ([`Router::release_shaped`], from `handle_timeout`): messages of the
//!    shaping queue whose slot came go out, in order;
//! 3. a request that arrives ([`Router::check_inbound_horizon`], from `on_request`):
//!    the receiver checks the horizon again.
//!
//! Stream requests are not rate limited (their credit window bounds them); replies,
//! credits and control messages never pass here.

use std::rc::Rc;
use std::time::Duration;

use tern_proto::session::{Nanos, Outgoing, Request};

use super::calls::Call;
use super::{AskSlot, Event, Reach, Router, Slots, StreamSlot};
use crate::flow::{FlowControl, Horizon, Overflow, Secondary, Verdict};
use crate::ops::admission::Pass;
use crate::remote::error::CallError;

/// Where a call that passed flow control goes.
pub(super) enum Admitted {
    /// To this host, now.
    Send(Rc<str>),
    /// Into the shaping queue: to this host at this time.
    Shape(Rc<str>, Nanos),
    /// Nowhere: a tell dropped by the `drop` policy (counted; the caller sees `Ok`).
    Dropped,
}

/// A message in the shaping queue.
pub(crate) struct Shaped<K: Slots> {
    host: Rc<str>,
    component: Rc<str>,
    out: Outgoing,
    call: Call<K>,
    /// The ask's deadline (unused for tells).
    expires: Nanos,
    /// What the caller's admission chain let through (the breaker's ticket).
    pass: Pass,
}

impl<K: Slots> Router<K> {
    /// The flow control state (horizons, rate limits), to configure.
    pub(crate) fn flow_mut(&mut self) -> &mut FlowControl {
        &mut self.flow
    }

    /// FLOW HOOK 1: the horizon and rate limits of a call to `component` that `route`
    /// sent to `host`. Writes the effective horizon into `out`.
    #[allow(clippy::too_many_arguments)] // the inputs of one decision, each needed once
    pub(super) fn admit_flow<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &str,
        pinned: bool,
        host: Rc<str>,
        out: &mut Outgoing,
        ask_deadline: Option<Nanos>,
    ) -> Result<Admitted, CallError> {
        let host = self.admit_horizon(reach, component, pinned, host, out)?;
        let horizon = Horizon::from_wire(out.horizon).unwrap_or(Horizon::Global);
        if self.flow.is_queueing(&out.flow, &host) {
            // Behind what already waits in its shaping queue: no overtaking.
            return self.shape_or(now, host, out, ask_deadline, Overflow::LOCAL, 0);
        }
        let (overflow, retry_after) = match self.flow.offer(now, &out.flow, &host) {
            Verdict::Pass => return Ok(Admitted::Send(host)),
            Verdict::Excess {
                overflow,
                retry_after,
            } => (overflow, retry_after),
        };
        match overflow {
            Overflow::Drop => self.rate_drop(ask_deadline.is_some()),
            Overflow::Bounce => Err(self.rate_bounce(retry_after)),
            Overflow::Local { .. } => {
                let network = self.flow.place().network.clone();
                let flow = out.flow.clone();
                let spill = (!pinned)
                    .then(|| {
                        self.hosts_where(component, reach, |r, h| {
                            r.flow.place_of(h).network == network && r.flow.within(horizon, h)
                        })
                    })
                    .flatten()
                    .filter(|h| self.flow.fits(now, &flow, h))
                    .filter(|h| self.flow.offer(now, &flow, h) == Verdict::Pass);
                if let Some(h) = spill {
                    self.flow.stats_mut().spilled_local += 1;
                    return Ok(Admitted::Send(h));
                }
                self.shape_or(now, host, out, ask_deadline, overflow, retry_after)
            }
        }
    }

    /// FLOW HOOK 1a: the horizon alone (also for stream requests, which no rate limit
    /// applies to): `host`, or another host of `component` within the horizon, or
    /// [`CallError::OutsideHorizon`]. Writes the effective horizon into `out`.
    pub(super) fn admit_horizon<R: Reach + ?Sized>(
        &mut self,
        reach: &R,
        component: &str,
        pinned: bool,
        host: Rc<str>,
        out: &mut Outgoing,
    ) -> Result<Rc<str>, CallError> {
        let horizon = self.flow.horizon(component, &out.flow, out.horizon);
        out.horizon = horizon.to_wire();
        if self.flow.within(horizon, &host) {
            return Ok(host);
        }
        // Another host within the horizon, if there is one.
        let other = (!pinned)
            .then(|| self.hosts_where(component, reach, |r, h| r.flow.within(horizon, h)))
            .flatten();
        if let Some(h) = other {
            return Ok(h);
        }
        // The narrowest scope that has a host, as a diagnostic.
        let needed = self
            .hosts
            .get(component)
            .filter(|_| !pinned)
            .and_then(|hs| hs.iter().map(|h| self.flow.needed(h)).min())
            .unwrap_or_else(|| self.flow.needed(&host));
        self.flow.stats_mut().horizon_refused += 1;
        Err(CallError::OutsideHorizon { horizon, needed })
    }

    /// Queues for shaping under `overflow` (`local`), or applies its secondary policy.
    fn shape_or(
        &mut self,
        now: Nanos,
        host: Rc<str>,
        out: &Outgoing,
        ask_deadline: Option<Nanos>,
        overflow: Overflow,
        retry_after: Nanos,
    ) -> Result<Admitted, CallError> {
        // A message queued behind others keeps the policy of its limit.
        let policy = self.flow.overflow_for(&out.flow, &host).unwrap_or(overflow);
        let (max_queue, then) = match policy {
            Overflow::Local { max_queue, then } => (max_queue, then),
            Overflow::Drop => (0, Secondary::Drop),
            Overflow::Bounce => (0, Secondary::Bounce),
        };
        match self
            .flow
            .shape(now, &out.flow, &host, max_queue, ask_deadline)
        {
            Some(at) => Ok(Admitted::Shape(host, at)),
            None => match then {
                Secondary::Drop => self.rate_drop(ask_deadline.is_some()),
                Secondary::Bounce => {
                    let wait = self.flow.wait(now, &out.flow, &host).max(retry_after);
                    Err(self.rate_bounce(wait))
                }
            },
        }
    }

    fn rate_drop(&mut self, ask: bool) -> Result<Admitted, CallError> {
        let stats = self.flow.stats_mut();
        if ask {
            stats.rate_dropped_asks += 1;
            Err(CallError::Dropped)
        } else {
            stats.rate_dropped += 1;
            Ok(Admitted::Dropped)
        }
    }

    fn rate_bounce(&mut self, retry_after: Nanos) -> CallError {
        self.flow.stats_mut().rate_bounced += 1;
        CallError::Bounced {
            retry_after: Duration::from_nanos(retry_after),
        }
    }

    /// The first live, connected host of `component` that `ok` accepts, in the
    /// directory's order.
    fn hosts_where<R: Reach + ?Sized>(
        &self,
        component: &str,
        reach: &R,
        ok: impl Fn(&Self, &str) -> bool,
    ) -> Option<Rc<str>> {
        self.hosts
            .get(component)?
            .iter()
            .filter(|h| !self.links_down.contains_key(&***h) && reach.connected(h))
            .find(|h| ok(self, h))
            .cloned()
    }

    /// Puts a message in the shaping queue, to go to `host` at `at`.
    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(super) fn enqueue_shaped(
        &mut self,
        at: Nanos,
        host: Rc<str>,
        component: Rc<str>,
        out: Outgoing,
        call: Call<K>,
        expires: Nanos,
        pass: Pass,
    ) {
        self.shaped_seq += 1;
        self.shaped.insert(
            (at, self.shaped_seq),
            Shaped {
                host,
                component,
                out,
                call,
                expires,
                pass,
            },
        );
    }

    /// When the first message of the shaping queue goes.
    pub(super) fn next_shaped(&self) -> Option<Nanos> {
        self.shaped.keys().next().map(|(at, _)| *at)
    }

    /// FLOW HOOK 2: sends the messages of the shaping queue whose slot came, in order.
    pub(super) fn release_shaped(&mut self, now: Nanos) {
        while let Some(entry) = self.shaped.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let s = entry.remove();
            self.flow.unshape(&s.out.flow, &s.host);
            match s.call {
                Call::Tell => {
                    self.session.tell(now, &s.host, s.out);
                    self.stats.tells_sent += 1;
                }
                Call::Ask(slot) if !slot.is_abandoned() => {
                    self.start_ask(now, s.host, s.component, s.out, s.expires, slot, s.pass);
                }
                Call::Ask(_) => self.flow.stats_mut().shaping_abandoned += 1,
                Call::Stream { stream, .. } => {
                    // Streams are never shaped; end it rather than lose it.
                    self.flow.stats_mut().shaping_abandoned += 1;
                    if !stream.is_abandoned() {
                        self.events.push_back(Event::StreamEnd {
                            stream,
                            result: Err(CallError::Stopped),
                        });
                    }
                }
            }
        }
    }

    /// Ends every message of the shaping queue with [`CallError::Stopped`] (the node
    /// stops).
    pub(super) fn shutdown_shaped(&mut self) {
        for (_, s) in std::mem::take(&mut self.shaped) {
            self.flow.unshape(&s.out.flow, &s.host);
            self.flow.stats_mut().shaping_abandoned += 1;
            self.end_waiting(s.call, CallError::Stopped);
        }
    }

    /// FLOW HOOK 3: the receiver's horizon check of a request. `false` when it was
    /// refused (an ask answered with [`CallError::OutsideHorizon`], a tell dropped;
    /// counted, logged at most once a second).
    pub(super) fn check_inbound_horizon(&mut self, now: Nanos, req: &Request) -> bool {
        let Err((horizon, needed, log)) =
            self.flow
                .check_inbound(now, &req.peer, &req.component, &req.flow, req.horizon)
        else {
            return true;
        };
        let error = CallError::OutsideHorizon { horizon, needed };
        if log {
            tracing::warn!(node = %self.name(), peer = %req.peer, component = %req.component,
                flow = %req.flow, %error, "inbound message refused: outside its horizon (logged at most once a second)");
        }
        if req.expects_reply {
            self.stats.refused += 1;
            if req.deadline.is_none_or(|d| d > now) {
                self.session.reply(now, req, Err(error.to_wire()));
            }
        } else {
            self.stats.dropped += 1;
        }
        false
    }
}
