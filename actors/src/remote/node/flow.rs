//! Flow control settings of a node: where it and its peers run, its horizons and its
//! flow rate limits ([`crate::flow`]).

use super::{Node, now};
use crate::flow::{FlowPolicy, Place};

impl Node {
    /// Where this node runs: its network and host. Until set, the network is
    /// [`DEFAULT_NETWORK`](crate::flow::DEFAULT_NETWORK) and the host the node's name.
    pub fn set_place(&self, place: Place) {
        self.shared.router.borrow_mut().flow_mut().set_place(place);
    }

    /// Where this node runs.
    #[must_use]
    pub fn place(&self) -> Place {
        self.shared.router.borrow_mut().flow_mut().place().clone()
    }

    /// Membership input: peer `name` runs at `place` (its `net` fact). A peer whose
    /// place was never given counts as on its own host in
    /// [`DEFAULT_NETWORK`](crate::flow::DEFAULT_NETWORK).
    pub fn set_peer_place(&self, name: &str, place: Place) {
        self.shared
            .router
            .borrow_mut()
            .flow_mut()
            .set_peer_place(name, place);
    }

    /// Sets this node's horizons and flow rate limits, at once and at run time: the
    /// next call uses them; a limit that stays keeps what it spent (no fresh burst);
    /// nothing already queued is dropped.
    ///
    /// ```
    /// use tern_actors::flow::{FlowPolicy, Horizon, Limit, Overflow, Rate};
    /// use tern_actors::remote::Node;
    ///
    /// fn configure(node: &Node) {
    ///     let mut policy = FlowPolicy::default();
    ///     policy.horizons.flow("metrics", Horizon::Global);
    ///     policy.limits.link("eu", "us", Limit::new(Rate::new(1000, 100), Overflow::Drop));
    ///     node.set_flow_policy(policy);
    /// }
    /// ```
    pub fn set_flow_policy(&self, policy: FlowPolicy) {
        let now = now();
        self.shared
            .router
            .borrow_mut()
            .flow_mut()
            .set_policy(policy, now);
    }
}
