//! Membership as input: which peers are up, at which generation, where their transport
//! listens and which components they host. A membership layer (the facade's gossip
//! feed, or a test) calls [`Node::peer_up`] and [`Node::peer_down`]; this crate does not
//! depend on any membership protocol.

use std::rc::{Rc, Weak};

use super::error::CallError;
use super::node::{Node, PeerView, PendingCall, Shared, now};

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
        let names: Vec<String> = {
            let st = self.shared.state.borrow();
            st.exports
                .iter()
                .filter(|(_, e)| !e.is_stopped())
                .map(|(n, _)| n.clone())
                .collect()
        };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(watch) = &*self.shared.exports_watch.borrow() {
            watch(&names);
        }
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
            && let Err(e) = (self.shared.learn)(name, endpoint)
        {
            tracing::warn!(node = %self.name(), peer = name, error = %e, "peer unreachable at its endpoint");
        }
        let now = now();
        let mut st = self.shared.state.borrow_mut();
        let view = st.peers.entry(name.to_owned()).or_insert_with(|| PeerView {
            gossip: true,
            ..PeerView::default()
        });
        view.gossip = true;
        let known = view.known.map(|(g, _)| g);
        if known.is_some_and(|g| generation < g) {
            tracing::debug!(node = %self.name(), peer = name, generation, "stale membership input ignored");
            return;
        }
        let restarted = known.is_some_and(|g| generation > g);
        view.known = Some((generation, 0));
        let components: Vec<String> = components.iter().map(|c| (*c).to_owned()).collect();
        let old = std::mem::replace(&mut view.components, components.clone());
        st.down.remove(name);
        st.session.set_peer_generation(name, generation);
        if restarted {
            // The old incarnation will never answer what it was asked, and the new
            // one has a connection of its own.
            st.session.peer_lost(name);
            st.links_down.remove(name);
            tracing::info!(node = %self.name(), peer = name, generation, "peer restarted (membership)");
        }
        if old != components || known.is_none() {
            st.unhost(name, &old);
            st.heard.extend(components.iter().cloned());
            for c in &components {
                st.gone.remove(c);
                st.hosts
                    .entry(c.clone())
                    .or_default()
                    .insert(name.to_owned());
            }
            st.stats.directory_updates += 1;
            tracing::debug!(node = %self.name(), peer = name, generation,
                components = components.len(), "directory from membership");
        }
        self.retry_pending(&mut st, now);
        drop(st);
        self.pump(now);
    }

    /// Membership input: peer `name` is gone, dead or (`left`) departed for good; its
    /// generation will not come back. Its outstanding asks fail with
    /// [`CallError::PeerLost`] at once, calls pinned to it fail with
    /// [`CallError::Unreachable`] and calls to a component only it hosted with
    /// [`CallError::NotHosted`] until a host is up again, and its transport
    /// connection closes. A new generation of it comes back through
    /// [`Node::peer_up`].
    pub fn peer_down(&self, name: &str, left: bool) {
        if name == self.name() {
            return;
        }
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            st.down.insert(name.to_owned());
            st.links_down.remove(name);
            if let Some(view) = st.peers.remove(name) {
                st.unhost(name, &view.components);
                for c in view.components {
                    if !st.hosts.contains_key(&c) {
                        st.gone.insert(c, name.to_owned());
                    }
                }
            }
            st.session.peer_lost(name);
            // Calls waiting for that node, or for a name only it had, will never go.
            let waiting = std::mem::take(&mut st.pending);
            for p in waiting {
                let hopeless = p.pin.as_deref() == Some(name)
                    || (p.pin.is_none() && st.gone.get(&p.component).is_some_and(|n| n == name));
                if hopeless {
                    match p.call {
                        // Never sent: the node is unreachable for good, or the name
                        // has no host left.
                        PendingCall::Ask { slot, .. } => {
                            slot.complete(Err(if p.pin.is_some() {
                                CallError::Unreachable(name.to_owned())
                            } else {
                                CallError::NotHosted {
                                    name: p.component.clone(),
                                }
                            }));
                        }
                        PendingCall::Tell => {
                            st.stats.dropped += 1;
                            tracing::warn!(node = %self.name(), peer = name, component = %p.component,
                                "waiting tell dropped: its node is gone");
                        }
                    }
                } else {
                    st.pending.push_back(p);
                }
            }
        }
        (self.shared.forget)(name);
        tracing::info!(node = %self.name(), peer = name, left, "peer gone (membership)");
        self.pump(now);
    }
}
