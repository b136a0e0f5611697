//! Membership as input: which peers are up, at which generation, where their transport
//! listens and which components they host. A membership layer (the facade's gossip
//! feed, or a test) calls [`Node::peer_up`] and [`Node::peer_down`]; this crate does not
//! depend on any membership protocol.

use std::rc::{Rc, Weak};

#[cfg(doc)]
use super::error::CallError;
use super::node::{Node, Shared, now};

/// The fact listing a node's exported components, one name per line (the convention
/// a membership feed uses to publish [`Node::watch_exports`] and read `components`).
pub const COMPONENTS_FACT: &str = "components";
/// The fact giving the address a node's transport is reached at (for ZeroMQ, a
/// `tcp://host:port` endpoint).
pub const ENDPOINT_FACT: &str = "endpoint";

/// A [`Node`] that does not keep it alive; see [`Node::downgrade`].
#[derive(Clone, Debug, Default)]
pub struct WeakNode(Weak<Shared>);

impl WeakNode {
    /// The node, if it still exists.
    #[must_use]
    pub fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|shared| Node { shared })
    }
}

impl Node {
    /// A handle that does not keep this node alive (for callbacks the node's own
    /// state may end up holding, such as a membership subscription).
    #[must_use]
    pub fn downgrade(&self) -> WeakNode {
        WeakNode(Rc::downgrade(&self.shared))
    }

    /// Calls `f` with this node's exported component names now and after every
    /// change (export, unexport, a component that stopped for good), so a membership
    /// layer can publish them (as [`COMPONENTS_FACT`]). One watcher; a new one replaces
    /// the old.
    pub fn watch_exports(&self, f: impl Fn(&[&str]) + 'static) {
        *self.shared.exports_watch.borrow_mut() = Some(Box::new(f));
        self.publish_components();
    }

    /// Gives the current exported names to the watcher, if any.
    pub(super) fn publish_components(&self) {
        let watch = self.shared.exports_watch.borrow();
        let Some(watch) = &*watch else {
            return;
        };
        let names: Vec<String> = {
            let router = self.shared.router.borrow();
            router
                .exports()
                .filter(|(_, e)| !e.is_stopped())
                .map(|(n, _)| n.clone())
                .collect()
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        watch(&names);
    }

    /// Membership input: peer `name` is alive at `generation`, its transport listens
    /// at `endpoint` (if given), and it hosts `components`. Call it when a peer comes
    /// up and whenever one of these changes.
    ///
    /// - Calls for its components are routed to it at once; calls that were waiting
    ///   for one of the names go out.
    /// - A higher `generation` than the one known is a restart: the asks the old
    ///   incarnation had fail with [`CallError::PeerLost`] at once, requests are
    ///   addressed to the new generation only, and a lost connection no longer
    ///   blocks calls. A lower one is stale and ignored.
    /// - A peer fed this way is owned by membership: it gets no directory messages,
    ///   and a lost connection does not forget its components (it fails calls fast
    ///   instead, until the connection is back; see [`Node`]).
    pub fn peer_up(
        &self,
        name: &str,
        generation: u64,
        endpoint: Option<&str>,
        components: &[&str],
    ) {
        if name == self.name() {
            return;
        }
        if let Some(endpoint) = endpoint
            && let Err(e) = self.shared.link.learn(name, endpoint)
        {
            tracing::warn!(node = %self.name(), peer = name, error = %e, "peer unreachable at its endpoint");
        }
        let now = now();
        self.shared.router.borrow_mut().peer_up(
            now,
            &*self.shared.link,
            name,
            generation,
            components,
        );
        self.pump(now);
    }

    /// Membership input: peer `name` is gone, dead or (`left`) departed for good; its
    /// generation will not come back. Its outstanding asks fail with
    /// [`CallError::PeerLost`] at once, calls pinned to it (or to a component only it
    /// hosted) fail the same way until a host is up again, and its transport
    /// connection closes. A new generation of it comes back through
    /// [`Node::peer_up`].
    pub fn peer_down(&self, name: &str, left: bool) {
        if name == self.name() {
            return;
        }
        let now = now();
        self.shared
            .router
            .borrow_mut()
            .peer_down(now, &*self.shared.link, name);
        self.shared.link.forget(name);
        tracing::info!(node = %self.name(), peer = name, left, "peer gone (membership)");
        self.pump(now);
    }
}
