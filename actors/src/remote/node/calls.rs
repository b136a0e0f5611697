//! Outbound calls from references: tells and asks go through the router, and their
//! frames to the transport from the caller's own task, so a refusal comes back at
//! once.

use std::rc::Rc;
use std::time::Duration;

use tern_proto::session::{Outgoing, Reply};

use super::{Node, now, transport_error};
use crate::remote::error::CallError;
use crate::remote::router::nanos;
use crate::remote::slot::CallSlot;

impl Node {
    /// The error for a call to `component` that found no host: [`CallError::NotHosted`]
    /// for a name this node exported or heard announced, [`CallError::UnknownName`]
    /// otherwise.
    pub(crate) fn unhosted(&self, component: &str) -> CallError {
        self.shared.router.borrow().unhosted(component)
    }

    /// Sends a tell now or parks it until its component is known; refusals are
    /// counted by kind.
    pub(crate) fn tell(
        &self,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        out: Outgoing,
    ) -> Result<(), CallError> {
        let now = now();
        let sent_now =
            self.shared
                .router
                .borrow_mut()
                .tell(now, &*self.shared.link, component, pin, out)?;
        if !sent_now {
            // Parked: its wait may end before the driver's timer.
            self.rearm();
            return Ok(());
        }
        let sent = self.flush().map_err(transport_error);
        let mut router = self.shared.router.borrow_mut();
        match &sent {
            Ok(()) => router.stats_mut().tells_sent += 1,
            Err(e) => router.stats_mut().tells_refused.count(e),
        }
        sent
    }

    /// Sends an ask and waits for its outcome by `timeout` (the router ends it at its
    /// deadline: the one deadline of the call).
    pub(crate) async fn ask(
        &self,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        out: Outgoing,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let now = now();
        let deadline = now.saturating_add(nanos(timeout));
        let slot = Rc::new(CallSlot::new());
        let _guard = Abandon {
            node: self,
            slot: &slot,
        };
        self.shared.router.borrow_mut().ask(
            now,
            &*self.shared.link,
            component,
            pin,
            out,
            deadline,
            slot.clone(),
        )?;
        if let Err(e) = self.flush() {
            if let Some(id) = slot.id.get() {
                self.shared.router.borrow_mut().cancel_ask(id);
            }
            slot.complete(Err(transport_error(e)));
        }
        self.rearm();
        let outcome = slot.wait().await;
        let took = Duration::from_nanos(super::now().saturating_sub(now));
        self.shared.latency.borrow_mut().observe(took);
        outcome
    }
}

/// Cleans up after an ask whose caller dropped it before its end.
struct Abandon<'a> {
    node: &'a Node,
    slot: &'a Rc<CallSlot>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        let finished = self.slot.is_done();
        self.slot.abandoned.set(true);
        if !finished
            && let Some(id) = self.slot.id.get()
            && let Ok(mut router) = self.node.shared.router.try_borrow_mut()
        {
            router.cancel_ask(id);
        }
    }
}
