//! Outbound calls: tells and asks from references, messages waiting for their
//! component name, and the outcome of this node's asks.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::time;
use tern_proto::session::{Failure, Nanos, Outgoing, Reply, Transmit};
use tern_transport::TransportError;

use super::{Node, State, nanos, now, transport_error};
use crate::remote::error::CallError;
use crate::remote::slot::CallSlot;

pub(in crate::remote) enum PendingCall {
    Tell,
    Ask { slot: Rc<CallSlot>, deadline: Nanos },
}

/// A message waiting for its component name.
pub(in crate::remote) struct Pending {
    pub(in crate::remote) component: String,
    pub(in crate::remote) pin: Option<String>,
    pub(in crate::remote) out: Outgoing,
    pub(in crate::remote) call: PendingCall,
    pub(in crate::remote) expires: Nanos,
}

impl Pending {
    pub(in crate::remote) fn is_abandoned(&self) -> bool {
        matches!(&self.call, PendingCall::Ask { slot, .. } if slot.is_done())
    }
}

impl Node {
    /// Where a call to `component` (on `pin`, if given) goes now: `Err` if it must fail
    /// at once (the node is gone, or its connection was lost), `Ok(None)` if it must
    /// wait (the name is unknown, messages for it already wait, or the host's
    /// connection is not up yet), `Ok(Some(host))` to send it now. One place decides
    /// for tells, asks and streams alike.
    pub(in crate::remote) fn target(
        &self,
        st: &mut State,
        component: &str,
        pin: Option<&str>,
        now: Nanos,
    ) -> Result<Option<String>, CallError> {
        if let Some(error) = st.lost(component, pin) {
            return Err(error);
        }
        if let Some(node) = st.unreachable(component, pin, now, &self.shared.config) {
            return Err(CallError::Unreachable(node));
        }
        Ok(st
            .route(component, pin)
            .filter(|h| (self.shared.connected)(h)))
    }

    /// Sends a tell now, or parks it until `component` is known.
    pub(in crate::remote) fn tell_now(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
    ) -> Result<(), CallError> {
        let now = now();
        let mut st = self.shared.state.borrow_mut();
        let Some(host) = self.target(&mut st, component, pin, now)? else {
            let expires = now.saturating_add(nanos(self.shared.config.pending_ttl));
            return self.park(&mut st, component, pin, out, PendingCall::Tell, expires);
        };
        st.session.tell(now, &host, out);
        let transmits = st.take_transmits();
        drop(st);
        self.send_all(transmits).map_err(transport_error)?;
        self.shared.state.borrow_mut().stats.tells_sent += 1;
        Ok(())
    }

    /// Sends a tell now or parks it until its component is known (see
    /// `Node::tell_now`; accepted ones are counted where they are sent), and counts a
    /// refusal by kind.
    pub(crate) fn tell(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
    ) -> Result<(), CallError> {
        let sent = self.tell_now(component, pin, out);
        if let Err(e) = &sent {
            self.shared.state.borrow_mut().stats.tells_refused.count(e);
        }
        sent
    }

    /// Sends an ask and waits for its outcome by `timeout`.
    pub(crate) async fn ask(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let now = now();
        let deadline = now.saturating_add(nanos(timeout));
        let slot = Rc::new(CallSlot::new(component));
        let _guard = Abandon {
            node: self,
            slot: &slot,
        };
        {
            let mut st = self.shared.state.borrow_mut();
            match self.target(&mut st, component, pin, now)? {
                Some(host) => {
                    st.start_ask(now, &host, out, deadline, &slot);
                    let transmits = st.take_transmits();
                    drop(st);
                    if let Err(e) = self.send_all(transmits) {
                        self.fail_ask(&slot, transport_error(e));
                    }
                }
                None => {
                    let call = PendingCall::Ask {
                        slot: slot.clone(),
                        deadline,
                    };
                    self.park(&mut st, component, pin, out, call, deadline)?;
                }
            }
        }
        match time::timeout(timeout, slot.wait()).await {
            Ok(outcome) => outcome,
            // Still waiting for a host of the name.
            Err(_) if slot.id.get().is_none() => {
                Err(self.shared.state.borrow().unhosted(component))
            }
            Err(_) => {
                // The session's own deadline is this one: let it expire the ask, so
                // its `timeouts` and `NodeStats::asks_timed_out` count it.
                let now = self::now();
                self.shared.state.borrow_mut().session.handle_timeout(now);
                self.pump(now);
                Err(CallError::Timeout)
            }
        }
    }

    pub(in crate::remote) fn park(
        &self,
        st: &mut State,
        component: &str,
        pin: Option<&str>,
        mut out: Outgoing,
        call: PendingCall,
        expires: Nanos,
    ) -> Result<(), CallError> {
        if st.pending.len() >= self.shared.config.pending_limit {
            st.pending.retain(|p| !p.is_abandoned());
            if st.pending.len() >= self.shared.config.pending_limit {
                return Err(CallError::PendingFull);
            }
        }
        // A call pinned to a node addresses the generation it runs now: if the call
        // goes out only after that node restarted, the new incarnation refuses it.
        if let Some(node) = pin
            && out.generation.is_none()
        {
            out.generation = Some(st.session.peer_generation(node));
        }
        tracing::debug!(node = %self.name(), component, "waiting for a component name or a connection");
        st.pending.push_back(Pending {
            component: component.to_owned(),
            pin: pin.map(str::to_owned),
            out,
            call,
            expires,
        });
        if let Some(w) = st.ticker.take() {
            w.wake();
        }
        Ok(())
    }

    pub(in crate::remote) fn fail_ask(&self, slot: &CallSlot, error: CallError) {
        if let Some(id) = slot.id.get() {
            let mut st = self.shared.state.borrow_mut();
            st.waiters.remove(&id);
            st.session.cancel(id);
        }
        slot.complete(Err(error));
    }

    /// Hands frames to the transport; counts and logs refusals and returns the first.
    pub(in crate::remote) fn send_all(
        &self,
        transmits: Vec<Transmit>,
    ) -> Result<(), TransportError> {
        let mut first = Ok(());
        for t in transmits {
            if let Err(e) = (self.shared.send)(&t.peer, t.envelope, t.payload) {
                self.shared.state.borrow_mut().stats.send_failures += 1;
                tracing::debug!(node = %self.name(), peer = %t.peer, error = %e, "frame not sent");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    pub(in crate::remote) fn flush(&self) {
        let transmits = self.shared.state.borrow_mut().take_transmits();
        let _ = self.send_all(transmits);
    }

    pub(in crate::remote) fn on_reply(&self, id: u64, result: Result<Reply, Failure>) {
        let Some(slot) = self.shared.state.borrow_mut().waiters.remove(&id) else {
            return;
        };
        let outcome = result.map_err(|f| match f {
            Failure::Remote { code, detail } => CallError::from_wire(code, detail, &slot.component),
            Failure::Timeout => CallError::Timeout,
            Failure::PeerLost => CallError::PeerLost(slot.node.borrow().clone()),
        });
        {
            let mut st = self.shared.state.borrow_mut();
            match &outcome {
                Err(CallError::Timeout) => st.stats.asks_timed_out += 1,
                Err(CallError::PeerLost(_)) => st.stats.asks_lost += 1,
                _ => {}
            }
        }
        slot.complete(outcome);
    }

    /// Sends every waiting message whose name is now known, keeping their order.
    pub(in crate::remote) fn retry_pending(&self, st: &mut State, now: Nanos) {
        let waiting = std::mem::take(&mut st.pending);
        let mut blocked = BTreeSet::new();
        for p in waiting {
            if p.is_abandoned() {
                continue;
            }
            let key = (p.component.clone(), p.pin.clone());
            if blocked.contains(&key) {
                st.pending.push_back(p);
                continue;
            }
            let host = st
                .route(&p.component, p.pin.as_deref())
                .filter(|h| (self.shared.connected)(h));
            let Some(host) = host else {
                blocked.insert(key);
                st.pending.push_back(p);
                continue;
            };
            match p.call {
                PendingCall::Tell => {
                    st.session.tell(now, &host, p.out);
                    st.stats.tells_sent += 1;
                }
                PendingCall::Ask { slot, deadline } => {
                    st.start_ask(now, &host, p.out, deadline, &slot);
                }
            }
        }
    }
}

impl State {
    pub(in crate::remote) fn start_ask(
        &mut self,
        now: Nanos,
        host: &str,
        out: Outgoing,
        deadline: Nanos,
        slot: &Rc<CallSlot>,
    ) {
        let id = self
            .session
            .ask(now, host, out, Some(deadline.saturating_sub(now)));
        slot.id.set(Some(id));
        host.clone_into(&mut slot.node.borrow_mut());
        self.waiters.insert(id, slot.clone());
        self.stats.asks_sent += 1;
    }
}

/// Cleans up after an ask that ends early (its deadline, or its caller dropped it).
struct Abandon<'a> {
    node: &'a Node,
    slot: &'a Rc<CallSlot>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        self.slot.abandoned.set(true);
        if let Some(id) = self.slot.id.get()
            && let Ok(mut st) = self.node.shared.state.try_borrow_mut()
            && st.waiters.remove(&id).is_some()
        {
            st.session.cancel(id);
        }
    }
}
