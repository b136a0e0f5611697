//! The directory: which peer hosts which component, learnt from directory messages
//! (configured peers) or membership input, and where a call goes now.

use std::future::poll_fn;
use std::task::Poll;

use tern_executor::time;
use tern_proto::control::{
    DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE, decode_directory,
    encode_directory,
};
use tern_proto::session::{Nanos, Outgoing, Request};
use tern_proto::v1::Directory;

use super::{Node, PendingCall, State, nanos, now};
use crate::remote::config::NodeConfig;
use crate::remote::error::CallError;

/// What one peer has told this node.
#[derive(Debug, Default)]
pub(in crate::remote) struct PeerView {
    /// `(generation, version)` of the directory held; `None` until one arrives, and
    /// again after the connection is lost.
    pub(in crate::remote) known: Option<(u64, u64)>,
    pub(in crate::remote) components: Vec<String>,
    /// Learnt from membership gossip rather than configured: no directory messages.
    pub(in crate::remote) gossip: bool,
}

impl Node {
    pub(in crate::remote) fn directory(&self, st: &State, reply_wanted: bool) -> Directory {
        Directory {
            node: self.name().to_owned(),
            generation: self.shared.config.generation,
            version: st.version,
            components: st.exports.keys().cloned().collect(),
            reply_wanted,
        }
    }

    pub(in crate::remote) fn send_directory(
        &self,
        st: &mut State,
        now: Nanos,
        to: &str,
        reply_wanted: bool,
    ) {
        let payload = encode_directory(&self.directory(st, reply_wanted));
        let out = Outgoing::new(
            DIRECTORY_COMPONENT,
            DIRECTORY_MESSAGE_TYPE,
            PROTOBUF_CONTENT_TYPE,
            payload,
        );
        st.session.tell(now, to, out);
    }

    /// Sends this node's directory to every connected peer (asking for theirs where
    /// unknown). A peer whose connection is not up yet hears it on `PeerUp`.
    pub(in crate::remote) fn announce_all(&self) {
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            let peers: Vec<(String, bool)> = st
                .peers
                .iter()
                .filter(|(name, view)| !view.gossip && (self.shared.connected)(name))
                .map(|(name, view)| (name.clone(), view.known.is_none()))
                .collect();
            for (peer, unknown) in peers {
                self.send_directory(&mut st, now, &peer, unknown);
            }
        }
        self.flush();
        self.publish_components();
    }

    pub(in crate::remote) fn on_directory(&self, now: Nanos, req: &Request) {
        let dir = match decode_directory(&req.payload, &self.shared.config.limits) {
            Ok(dir) if dir.node == req.peer && req.message_type == DIRECTORY_MESSAGE_TYPE => dir,
            other => {
                self.shared.state.borrow_mut().stats.bad_control += 1;
                let why = other
                    .err()
                    .map_or_else(|| "sender mismatch".to_owned(), |e| e.to_string());
                tracing::warn!(node = %self.name(), peer = %req.peer, why, "bad directory message dropped");
                return;
            }
        };
        let mut st = self.shared.state.borrow_mut();
        let Some(view) = st.peers.get_mut(&req.peer) else {
            // Only a peer (configured, or a member found by gossip) may tell this node
            // where components are: anyone else would draw its calls. It still gets
            // this node's directory when it asks, so a client can find components.
            st.stats.directories_refused += 1;
            tracing::warn!(node = %self.name(), peer = %req.peer,
                "directory from a node that is not a peer refused");
            if dir.reply_wanted {
                self.send_directory(&mut st, now, &req.peer, false);
            }
            return;
        };
        let key = (dir.generation, dir.version);
        let first = view.known.is_none();
        let newer = view.known.is_none_or(|k| key > k);
        let restarted = view.known.is_some_and(|(g, _)| dir.generation > g);
        if newer {
            view.known = Some(key);
            let old = std::mem::replace(&mut view.components, dir.components.clone());
            st.unhost(&req.peer, &old);
            st.session.set_peer_generation(&req.peer, dir.generation);
            st.heard.extend(dir.components.iter().cloned());
            for c in &dir.components {
                st.hosts
                    .entry(c.clone())
                    .or_default()
                    .insert(req.peer.clone());
            }
            st.stats.directory_updates += 1;
            tracing::debug!(node = %self.name(), peer = %req.peer, generation = dir.generation,
                version = dir.version, components = dir.components.len(), "directory update");
        }
        if restarted {
            // The old incarnation will never answer what it was asked.
            st.session.peer_lost(&req.peer);
        }
        if dir.reply_wanted || first || restarted {
            self.send_directory(&mut st, now, &req.peer, false);
        }
        if newer {
            self.retry_pending(&mut st, now);
        }
    }

    /// Withdraws exports whose component stopped for good, and tells the peers.
    pub(in crate::remote) fn withdraw_stopped(&self) {
        let changed = {
            let mut st = self.shared.state.borrow_mut();
            let before = st.exports.len();
            st.exports.retain(|_, e| !e.is_stopped());
            let changed = st.exports.len() != before;
            if changed {
                st.version += 1;
            }
            changed
        };
        if changed {
            self.announce_all();
        }
    }

    // ----- the ticker -----

    pub(in crate::remote) async fn tick_loop(&self) {
        loop {
            poll_fn(|cx| {
                let mut st = self.shared.state.borrow_mut();
                if st.needs_tick() {
                    Poll::Ready(())
                } else {
                    st.ticker = Some(cx.waker().clone());
                    Poll::Pending
                }
            })
            .await;
            time::sleep(self.shared.config.announce_interval).await;
            self.tick();
        }
    }

    pub(in crate::remote) fn tick(&self) {
        self.withdraw_stopped();
        let now = now();
        {
            let mut st = self.shared.state.borrow_mut();
            let silent: Vec<String> = st
                .peers
                .iter()
                .filter(|(name, v)| v.known.is_none() && !v.gossip && (self.shared.connected)(name))
                .map(|(name, _)| name.clone())
                .collect();
            for peer in silent {
                self.send_directory(&mut st, now, &peer, true);
            }
            let mut expired = 0;
            let st = &mut *st;
            let heard = &st.heard;
            st.pending.retain(|p| match &p.call {
                _ if p.is_abandoned() => false,
                PendingCall::Tell if p.expires <= now => {
                    expired += 1;
                    tracing::warn!(node = %self.name(), component = %p.component,
                        message_type = %p.out.message_type, "tell dropped: component name unknown until its wait expired");
                    false
                }
                PendingCall::Ask { slot, deadline } if *deadline <= now => {
                    slot.complete(Err(unhosted(heard, &p.component)));
                    false
                }
                _ => true,
            });
            st.stats.pending_expired += expired;
            st.session.handle_timeout(now);
        }
        self.pump(now);
    }
}

/// The error for a call to `component` that found no host: [`CallError::NotHosted`]
/// if this node exported the name or a peer announced it, [`CallError::UnknownName`]
/// otherwise.
pub(in crate::remote) fn unhosted(
    heard: &std::collections::BTreeSet<String>,
    component: &str,
) -> CallError {
    if heard.contains(component) {
        CallError::NotHosted {
            name: component.to_owned(),
        }
    } else {
        CallError::UnknownName {
            name: component.to_owned(),
        }
    }
}

impl State {
    /// The error for a call to `component` that found no host (see [`unhosted`]).
    pub(in crate::remote) fn unhosted(&self, component: &str) -> CallError {
        unhosted(&self.heard, component)
    }

    /// Why a call to `component` (on `pin`) fails at once because of a death or leave,
    /// if it does: the pinned node is gone ([`CallError::Unreachable`]), or every host
    /// of the name is ([`CallError::NotHosted`]). Never sent, so never handled.
    pub(in crate::remote) fn lost(&self, component: &str, pin: Option<&str>) -> Option<CallError> {
        match pin {
            Some(node) => self
                .down
                .contains(node)
                .then(|| CallError::Unreachable(node.to_owned())),
            None if self.exports.contains_key(component) => None,
            None => self
                .gone
                .contains_key(component)
                .then(|| CallError::NotHosted {
                    name: component.to_owned(),
                }),
        }
    }

    /// Where to send a message for `component` (on `pin`, if given) now, if anywhere.
    /// Messages already waiting for the same target go first, so a later one waits
    /// behind them.
    pub(in crate::remote) fn route(
        &mut self,
        component: &str,
        pin: Option<&str>,
    ) -> Option<String> {
        if self
            .pending
            .iter()
            .any(|p| p.component == component && p.pin.as_deref() == pin)
        {
            return None;
        }
        self.route_now(component, pin)
    }

    pub(in crate::remote) fn route_now(
        &mut self,
        component: &str,
        pin: Option<&str>,
    ) -> Option<String> {
        if let Some(node) = pin {
            let view = self.peers.get(node)?;
            view.known?;
            return view
                .components
                .iter()
                .any(|c| c == component)
                .then(|| node.to_owned());
        }
        let hosts = self.hosts.get(component)?;
        let live = || hosts.iter().filter(|h| !self.links_down.contains_key(*h));
        let n = live().count() as u64;
        if n == 0 {
            return None;
        }
        let i = usize::try_from(self.next_pick % n).unwrap_or(0);
        let host = live().nth(i).cloned();
        self.next_pick = self.next_pick.wrapping_add(1);
        host
    }

    /// The node whose lost connection makes a call to `component` (on `pin`) fail
    /// [`CallError::Unreachable`] now, if any: the pinned node's, or every host's.
    /// Marks older than [`NodeConfig::relink_after`] are lifted here.
    pub(in crate::remote) fn unreachable(
        &mut self,
        component: &str,
        pin: Option<&str>,
        now: Nanos,
        config: &NodeConfig,
    ) -> Option<String> {
        if self.links_down.is_empty() {
            return None;
        }
        let after = nanos(config.relink_after);
        self.links_down
            .retain(|_, since| now < since.saturating_add(after));
        match pin {
            Some(node) => self.links_down.contains_key(node).then(|| node.to_owned()),
            None if self.exports.contains_key(component) => None,
            None => {
                let hosts = self.hosts.get(component)?;
                let mut all = hosts.iter().filter(|h| self.links_down.contains_key(*h));
                let first = all.next()?.clone();
                (all.count() + 1 == hosts.len()).then_some(first)
            }
        }
    }

    pub(in crate::remote) fn unhost(&mut self, peer: &str, components: &[String]) {
        for c in components {
            if let Some(h) = self.hosts.get_mut(c) {
                h.remove(peer);
                if h.is_empty() {
                    self.hosts.remove(c);
                }
            }
        }
    }

    /// Forgets what `peer` announced (its connection is gone); it is asked again.
    pub(in crate::remote) fn forget(&mut self, peer: &str) {
        if let Some(view) = self.peers.get_mut(peer) {
            if view.gossip {
                // Membership owns this peer's liveness: a dropped connection comes
                // back by itself; death or leave arrives as a membership event.
                return;
            }
            view.known = None;
            let old = std::mem::take(&mut view.components);
            self.unhost(peer, &old);
        }
    }

    pub(in crate::remote) fn needs_tick(&self) -> bool {
        !self.pending.is_empty() || self.peers.values().any(|v| v.known.is_none() && !v.gossip)
    }
}
