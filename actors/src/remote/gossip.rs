//! The directory from membership: which node hosts which component, learnt from the
//! facts each node gossips about itself (see `tern-discovery`).

use std::rc::{Rc, Weak};

use tern_discovery::{Discovery, MemberEvent, MemberInfo};

use super::error::CallError;
use super::node::{Node, PeerView, PendingCall, Shared, now};

/// The fact listing a node's exported components, one name per line.
pub const COMPONENTS_FACT: &str = "components";
/// The fact giving the address a node's transport is reached at (for ZeroMQ, a
/// `tcp://host:port` endpoint).
pub const ENDPOINT_FACT: &str = "endpoint";

impl Node {
    /// Takes this node's directory from membership: its exports are published as the
    /// [`COMPONENTS_FACT`] fact (and `endpoint`, if given, as [`ENDPOINT_FACT`]), and
    /// every member's facts say which components it hosts and where its transport
    /// listens. Nothing else is configured: no static peers are needed.
    ///
    /// - A member that becomes alive, or publishes a new component, is routed to at once;
    ///   calls that were waiting for the name go out.
    /// - A member declared dead or that left is forgotten: its outstanding asks fail with
    ///   [`CallError::PeerLost`] at once, calls pinned to it fail the same way, and its
    ///   transport connection closes. A new generation of it is a new member.
    pub fn use_discovery(&self, discovery: &Discovery, endpoint: Option<&str>) {
        if let Some(e) = endpoint
            && let Err(err) = discovery.set_fact(ENDPOINT_FACT, e.as_bytes())
        {
            tracing::error!(node = %self.name(), error = %err, "cannot publish the endpoint fact");
        }
        self.shared.state.borrow_mut().discovery = Some(discovery.clone());
        self.publish_components();
        for m in discovery.members() {
            if m.name != self.name() && !m.state.is_down() {
                self.refresh_peer(&m);
            }
        }
        let weak: Weak<Shared> = Rc::downgrade(&self.shared);
        let d = discovery.clone();
        discovery.subscribe(move |event| {
            if let Some(shared) = weak.upgrade() {
                Self { shared }.on_member_event(&d, event);
            }
        });
    }

    /// Publishes the exported names as this node's [`COMPONENTS_FACT`].
    pub(super) fn publish_components(&self) {
        let (discovery, names) = {
            let st = self.shared.state.borrow();
            let Some(d) = st.discovery.clone() else {
                return;
            };
            let names: Vec<&str> = st
                .exports
                .iter()
                .filter(|(_, e)| !e.is_stopped())
                .map(|(n, _)| n.as_str())
                .collect();
            (d, names.join("\n"))
        };
        if let Err(e) = discovery.set_fact(COMPONENTS_FACT, names.as_bytes()) {
            tracing::error!(node = %self.name(), error = %e,
                "the exported names do not fit this node's facts; peers will not see the change");
        }
    }

    fn on_member_event(&self, discovery: &Discovery, event: &MemberEvent) {
        match event {
            MemberEvent::Up { name, .. } | MemberEvent::Fact { name, .. } => {
                if let Some(m) = discovery.member(name)
                    && !m.state.is_down()
                    && m.name != self.name()
                {
                    self.refresh_peer(&m);
                }
            }
            MemberEvent::Down { name, left, .. } => self.drop_peer(name, *left),
            _ => {}
        }
    }

    fn refresh_peer(&self, m: &MemberInfo) {
        if let Some(endpoint) = m.fact(ENDPOINT_FACT)
            && let Err(e) = (self.shared.learn)(&m.name, endpoint)
        {
            tracing::warn!(node = %self.name(), peer = %m.name, error = %e, "discovered peer unreachable");
        }
        let components: Vec<String> = m
            .fact(COMPONENTS_FACT)
            .unwrap_or("")
            .split('\n')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let now = now();
        let mut st = self.shared.state.borrow_mut();
        st.down.remove(&m.name);
        let view = st.peers.entry(m.name.clone()).or_insert_with(|| PeerView {
            gossip: true,
            ..PeerView::default()
        });
        view.known = Some((m.generation, 0));
        let old = std::mem::replace(&mut view.components, components.clone());
        if old == components {
            return;
        }
        st.unhost(&m.name, &old);
        for c in &components {
            st.gone.remove(c);
            st.hosts
                .entry(c.clone())
                .or_default()
                .insert(m.name.clone());
        }
        st.stats.directory_updates += 1;
        tracing::debug!(node = %self.name(), peer = %m.name, components = components.len(), "directory from membership");
        self.retry_pending(&mut st, now);
        drop(st);
        for held in self.pump(now) {
            tern_executor::spawn(held).detach();
        }
    }

    fn drop_peer(&self, name: &str, left: bool) {
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            st.down.insert(name.to_owned());
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
                        PendingCall::Ask { slot, .. } => {
                            slot.complete(Err(CallError::PeerLost(name.to_owned())));
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
        for held in self.pump(now) {
            tern_executor::spawn(held).detach();
        }
    }
}
