//! Run-time limits and breaker state on a node: [`Node::set_limits`] and its readers.

use crate::ops::{BreakerState, LimitChange, LimitKey, LimitSet, OpsError};

use super::{Node, now};

impl Node {
    /// Changes this container's limits at run time, all or none (see
    /// [`LimitSet`]): returns the new version. A mailbox capacity applies to the
    /// exported component at once (and to one exported later under that name);
    /// lowering it evicts nothing already queued, new messages are refused until the
    /// mailbox is below it, and raising it lets the next message in, nothing more.
    /// `mailbox.<c>=none` gives the component its capacity from before the first
    /// change back.
    ///
    /// # Errors
    ///
    /// [`OpsError::StaleVersion`] if `expected` is given and the limits moved on;
    /// [`OpsError::BadLimit`] for a value out of range. Nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use tern_actors::ops::LimitChange;
    /// use tern_actors::remote::{Node, NodeConfig};
    /// use tern_transport::SimTransport;
    /// # use std::{collections::BTreeMap, rc::Rc};
    ///
    /// let mut world = tern_executor::sim::World::new(1).unwrap();
    /// let a = world.add_node("a").unwrap();
    /// let names = Rc::new(BTreeMap::from([("a".to_owned(), a)]));
    /// let t = SimTransport::new("a", world.socket(a), names);
    /// let done = world.spawn_on(a, async move {
    ///     let node = Node::start(NodeConfig::new("a"), t).unwrap();
    ///     let change = LimitChange::parse("in_flight.kv=10").unwrap();
    ///     let v = node.set_limits(&[change], Some(0)).unwrap();
    ///     (v, node.limits().component("kv").in_flight)
    /// });
    /// world.run_until(tern_executor::Instant::from_nanos(1_000_000));
    /// assert_eq!(world.runtime(a).unwrap().block_on(done).unwrap(), (1, Some(10)));
    /// ```
    pub fn set_limits(
        &self,
        changes: &[LimitChange],
        expected: Option<u64>,
    ) -> Result<u64, OpsError> {
        let version = self
            .shared
            .router
            .borrow_mut()
            .set_limits(changes, expected)?;
        for change in changes {
            if let LimitKey::Mailbox(component) = &change.key {
                self.apply_mailbox(component);
            }
        }
        Ok(version)
    }

    /// Gives the exported `component` the mailbox capacity the limits say.
    pub(super) fn apply_mailbox(&self, component: &str) {
        let (export, limit) = {
            let router = self.shared.router.borrow();
            let Some(export) = router.export(component).cloned() else {
                return;
            };
            (export, router.limits().component(component).mailbox)
        };
        let mut defaults = self.shared.mailbox_defaults.borrow_mut();
        let capacity = match limit {
            Some(n) => {
                defaults
                    .entry(component.to_owned())
                    .or_insert_with(|| export.stats().capacity);
                n
            }
            None => match defaults.remove(component) {
                Some(n) => n,
                None => return,
            },
        };
        tracing::info!(name: "tern.limits.mailbox", node = %self.name(), component, capacity,
            "mailbox capacity changed");
        export.set_mailbox_capacity(capacity);
    }

    /// This container's limits now.
    #[must_use]
    pub fn limits(&self) -> LimitSet {
        self.shared.router.borrow().limits().clone()
    }

    /// The state of this container's circuit breaker for calls to `component`
    /// (closed if it was never asked).
    #[must_use]
    pub fn breaker_state(&self, component: &str) -> BreakerState {
        self.shared.router.borrow().breaker_state(now(), component)
    }

    /// The adaptive ingress limit now, if it is enabled
    /// ([`NodeConfig::ingress`](crate::remote::NodeConfig::ingress)).
    #[must_use]
    pub fn ingress_limit(&self) -> Option<u32> {
        self.shared.router.borrow().ingress_limit()
    }
}
