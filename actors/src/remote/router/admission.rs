//! Inbound admission: the backlogs of full mailboxes, refusals, and answers.
//!
//! A request for a component whose mailbox has room is handed to the driver as
//! [`Event::Deliver`](super::Event::Deliver). One that finds it full comes back with
//! [`Router::hold`] and waits in that component's backlog, in arrival order; later
//! requests for the same component queue behind it here without reaching the driver,
//! so order holds. Nothing else waits. The bytes held are bounded
//! ([`NodeConfig::held_bytes_limit`](crate::remote::NodeConfig::held_bytes_limit));
//! past the bound, or past its wait, a request is refused: an ask is answered with
//! [`CallError::MailboxFull`], a tell dropped, counted and logged.
//!
//! Before any of that, a request is charged to the inbound byte budgets of its peer
//! and of the node (`budget.rs`); one over either is refused the same way. The
//! driver gives the charge back with [`Router::release`] when it is done with the
//! request, or passes it to [`Router::answer`].

use std::collections::VecDeque;

use tern_proto::session::{Nanos, Request};

use tern_proto::v1::ErrorCode;

use super::budget::{OverBudget, charge_of};
use super::{Router, Slots, nanos};
use crate::remote::error::CallError;

/// A request waiting in a component's backlog.
pub(crate) struct Held {
    pub(crate) req: Request,
    /// When it stops waiting: its deadline, or arrival + the default timeout.
    pub(crate) until: Nanos,
    /// What it is charged against the node's bound.
    pub(crate) bytes: usize,
}

impl<K: Slots> Router<K> {
    /// Whether requests for `component` wait in a backlog now (a new one must queue
    /// behind them).
    pub(crate) fn is_holding(&self, component: &str) -> bool {
        self.backlogs.contains_key(component)
    }

    /// Puts a request whose component's mailbox is full in its backlog. Returns
    /// whether the backlog is new (the driver starts waiting for room); a request past
    /// the node's bound is refused instead (and `false` returned).
    pub(crate) fn hold(&mut self, now: Nanos, req: Request) -> bool {
        let bytes = charge_of(&req);
        let limit = self.config.held_bytes_limit;
        if self.held_bytes.saturating_add(bytes) > limit {
            self.stats.inbound_refused.backlog += 1;
            self.release(&req.peer, bytes);
            self.refuse_gated(now, &req, "the backlog bound (held_bytes_limit)");
            return false;
        }
        let wait = nanos(self.config.default_timeout);
        let until = req.deadline.unwrap_or_else(|| now.saturating_add(wait));
        self.held_bytes += bytes;
        self.stats.held += 1;
        let fresh = !self.backlogs.contains_key(&req.component);
        self.backlogs
            .entry(req.component.clone())
            .or_default()
            .push_back(Held { req, until, bytes });
        fresh
    }

    /// When the first request held for `component` stops waiting, if any waits.
    pub(crate) fn held_until(&self, component: &str) -> Option<Nanos> {
        self.backlogs
            .get(component)
            .and_then(VecDeque::front)
            .map(|h| h.until)
    }

    /// Takes the first request held for `component`.
    pub(crate) fn pop_held(&mut self, component: &str) -> Option<Held> {
        let backlog = self.backlogs.get_mut(component)?;
        let held = backlog.pop_front();
        if backlog.is_empty() {
            self.backlogs.remove(component);
        }
        if let Some(h) = &held {
            self.held_bytes -= h.bytes;
        }
        held
    }

    /// Puts back a request taken with [`Router::pop_held`] (the mailbox was full
    /// again), first in line.
    pub(crate) fn unpop_held(&mut self, held: Held) {
        self.held_bytes += held.bytes;
        self.backlogs
            .entry(held.req.component.clone())
            .or_default()
            .push_front(held);
    }

    /// Charges an inbound request to its peer's and the node's byte budgets; refuses
    /// it (counted by reason, logged at most once a second per peer) and returns
    /// `false` if either is exceeded.
    pub(super) fn admit(&mut self, now: Nanos, req: &Request) -> bool {
        let bytes = charge_of(req);
        let (peer_limit, node_limit) = (
            self.config.peer_inbound_bytes_limit,
            self.config.inbound_bytes_limit,
        );
        match self.budget.charge(&req.peer, bytes, peer_limit, node_limit) {
            Ok(()) => true,
            Err(OverBudget::Peer) => {
                self.stats.inbound_refused.peer_budget += 1;
                self.refuse_gated(now, req, "the peer's inbound byte budget");
                false
            }
            Err(OverBudget::Node) => {
                self.stats.inbound_refused.node_budget += 1;
                self.refuse_gated(now, req, "the node's inbound byte budget");
                false
            }
        }
    }

    /// Gives back `bytes` charged to `peer` by [`Router::admit`].
    pub(crate) fn release(&mut self, peer: &str, bytes: usize) {
        self.budget.release(peer, bytes);
    }

    /// Refuses a request over a budget: an ask is answered `MailboxFull` (saying which
    /// budget), a tell dropped; both counted; one line a second per peer at most.
    fn refuse_gated(&mut self, now: Nanos, req: &Request, budget: &str) {
        if let Some(skipped) = self.log_gate.admit(&req.peer, now) {
            tracing::warn!(name: "tern.node.inbound_refused", node = %self.name(),
                remote = %req.peer, component = %req.component, budget,
                peer_bytes = self.budget.of(&req.peer), node_bytes = self.budget.total(),
                skipped, "inbound request refused: over a byte budget");
        }
        if !req.expects_reply {
            self.stats.dropped += 1;
            return;
        }
        self.stats.refused += 1;
        if req.deadline.is_some_and(|d| d <= now) {
            return;
        }
        let error = CallError::Remote {
            code: ErrorCode::MailboxFull,
            detail: format!("refused: over {budget}"),
        };
        self.session.reply(now, req, Err(error.to_wire()));
    }

    /// Refuses every held request: the node is shutting down.
    pub(super) fn shutdown_backlogs(&mut self, now: Nanos) {
        self.held_bytes = 0;
        self.budget.clear();
        for held in std::mem::take(&mut self.backlogs).into_values().flatten() {
            self.refuse(now, &held.req, &CallError::Stopped);
        }
    }

    /// A request was queued in its component's mailbox.
    pub(crate) fn delivered(&mut self) {
        self.stats.requests_delivered += 1;
    }

    /// An inbound request that cannot be delivered: an ask is answered with `error`,
    /// a tell counted in `dropped`; both logged.
    pub(crate) fn refuse(&mut self, now: Nanos, req: &Request, error: &CallError) {
        self.ingress.done(now, req);
        tracing::warn!(
            node = %self.name(),
            peer = %req.peer,
            component = %req.component,
            message_type = %req.message_type,
            message_id = req.message_id,
            %error,
            "inbound message not delivered"
        );
        if !req.expects_reply {
            self.stats.dropped += 1;
            return;
        }
        self.stats.refused += 1;
        if req.deadline.is_some_and(|d| d <= now) {
            return;
        }
        self.session.reply(now, req, Err(error.to_wire()));
    }

    /// Answers an inbound ask with its component's outcome, and gives back the
    /// `charged` bytes of its budget. An ask whose deadline passed is not answered
    /// (its caller gave up); if it expired in the mailbox (`Timeout`) it is counted in
    /// `requests_expired`.
    pub(crate) fn answer(
        &mut self,
        now: Nanos,
        req: Request,
        charged: usize,
        outcome: Result<(Vec<u8>, &'static str), CallError>,
    ) {
        self.release(&req.peer, charged);
        self.ingress.done(now, &req);
        if req.deadline.is_some_and(|d| d <= now) {
            if outcome == Err(CallError::Timeout) {
                self.stats.requests_expired += 1;
                tracing::debug!(node = %self.name(), peer = %req.peer, component = %req.component,
                    message_id = req.message_id, "ask expired in the mailbox; not handled");
            }
            return;
        }
        let result = outcome
            .map(|(bytes, content_type)| (bytes, content_type.to_owned()))
            .map_err(|e| e.to_wire());
        self.session.reply_owned(now, req, result);
    }
}
