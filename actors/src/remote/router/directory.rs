//! The directory: this node's exports, which peer hosts which component (learnt from
//! directory messages with configured peers, or from membership input), and where a
//! call goes now.

use std::rc::Rc;

use tern_proto::control::{
    DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE, decode_directory,
    encode_directory,
};
use tern_proto::session::{Nanos, Outgoing, Request};
use tern_proto::v1::Directory;

use super::{Event, ExportSlot, Reach, Router, Slots, nanos};
use crate::remote::error::CallError;

/// What one peer has told this node.
#[derive(Debug, Default)]
pub(super) struct PeerView {
    /// `(generation, version)` of the directory held; `None` until one arrives, and
    /// again after the connection is lost.
    pub(super) known: Option<(u64, u64)>,
    pub(super) components: Vec<String>,
    /// Learnt from membership gossip rather than configured: no directory messages.
    pub(super) gossip: bool,
}

impl<K: Slots> Router<K> {
    // ----- exports -----

    /// The export called `name`, if any.
    pub(crate) fn export(&self, name: &str) -> Option<&K::Export> {
        self.exports.get(name)
    }

    /// The live export called `name`: exported now, or withdrawn by
    /// [`Router::shutdown`] (still called locally while the container drains).
    pub(crate) fn export_or_retired(&self, name: &str) -> Option<&K::Export> {
        self.exports.get(name).or_else(|| self.retired.get(name))
    }

    /// Every export, by name.
    pub(crate) fn exports(&self) -> impl Iterator<Item = (&String, &K::Export)> {
        self.exports.iter()
    }

    /// Exports `export` as `name` (peers are told); `false` if a live component holds
    /// the name.
    pub(crate) fn add_export<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        name: &str,
        export: K::Export,
    ) -> bool {
        if self.exports.get(name).is_some_and(|e| !e.is_stopped()) {
            return false;
        }
        self.exports.insert(name.to_owned(), export);
        self.remember([name]);
        self.exports_changed(now, reach);
        true
    }

    /// Withdraws the export `name`; returns whether there was one.
    pub(crate) fn remove_export<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        name: &str,
    ) -> bool {
        let removed = self.exports.remove(name).is_some();
        if removed {
            self.exports_changed(now, reach);
        }
        removed
    }

    /// Withdraws exports whose component stopped for good, and tells the peers.
    pub(crate) fn withdraw_stopped<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        let before = self.exports.len();
        self.exports.retain(|_, e| !e.is_stopped());
        if self.exports.len() != before {
            self.exports_changed(now, reach);
        }
    }

    fn exports_changed<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        self.version += 1;
        self.announce_all(now, reach);
    }

    /// The nodes known to host `component` (other than this one).
    pub(crate) fn hosts_of(&self, component: &str) -> impl Iterator<Item = &str> {
        self.hosts
            .get(component)
            .into_iter()
            .flat_map(|h| h.iter().map(|n| &**n))
    }

    // ----- directory messages -----

    fn directory(&self, reply_wanted: bool) -> Directory {
        Directory {
            node: self.name().to_owned(),
            generation: self.config.generation,
            version: self.version,
            components: self.exports.keys().cloned().collect(),
            reply_wanted,
        }
    }

    /// Sends this node's directory to every connected configured peer (at start).
    pub(crate) fn announce<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        self.announce_all(now, reach);
    }

    pub(super) fn send_directory(&mut self, now: Nanos, to: &str, reply_wanted: bool) {
        let payload = encode_directory(&self.directory(reply_wanted));
        let out = Outgoing::new(
            DIRECTORY_COMPONENT,
            DIRECTORY_MESSAGE_TYPE,
            PROTOBUF_CONTENT_TYPE,
            payload,
        );
        self.session.tell(now, to, out);
    }

    /// Sends this node's directory to every connected configured peer (asking for
    /// theirs where unknown); a peer not connected yet hears it on `PeerUp`. Tells the
    /// driver the exported names changed.
    pub(super) fn announce_all<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        if !self.config.static_directories {
            self.events.push_back(Event::ExportsChanged);
            return;
        }
        let peers: Vec<(String, bool)> = self
            .peers
            .iter()
            .filter(|(name, view)| !view.gossip && reach.connected(name))
            .map(|(name, view)| (name.clone(), view.known.is_none()))
            .collect();
        for (peer, unknown) in peers {
            self.send_directory(now, &peer, unknown);
        }
        self.events.push_back(Event::ExportsChanged);
    }

    pub(super) fn on_directory<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R, req: &Request) {
        let dir = match decode_directory(&req.payload, &self.config.limits) {
            Ok(dir) if dir.node == req.peer && req.message_type == DIRECTORY_MESSAGE_TYPE => dir,
            other => {
                self.stats.bad_control += 1;
                let why = other
                    .err()
                    .map_or_else(|| "sender mismatch".to_owned(), |e| e.to_string());
                tracing::warn!(node = %self.name(), peer = %req.peer, why, "bad directory message dropped");
                return;
            }
        };
        if !self.config.static_directories {
            // Discovery is on: membership says who hosts what, and a directory on the
            // data plane would let its sender draw calls.
            self.stats.directories_refused += 1;
            tracing::warn!(node = %self.name(), peer = %req.peer,
                "directory refused: static directories are off (discovery is on)");
            if dir.reply_wanted {
                self.send_directory(now, &req.peer, false);
            }
            return;
        }
        let Some(view) = self.peers.get_mut(&req.peer) else {
            // Only a peer (configured, or a member found by gossip) may tell this node
            // where components are: anyone else would draw its calls. It still gets
            // this node's directory when it asks, so a client can find components.
            self.stats.directories_refused += 1;
            tracing::warn!(node = %self.name(), peer = %req.peer,
                "directory from a node that is not a peer refused");
            if dir.reply_wanted {
                self.send_directory(now, &req.peer, false);
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
            self.unhost(&req.peer, &old);
            self.session.set_peer_generation(&req.peer, dir.generation);
            self.remember(dir.components.iter().map(String::as_str));
            let peer: Rc<str> = req.peer.as_str().into();
            for c in &dir.components {
                self.hosts
                    .entry(c.clone())
                    .or_default()
                    .insert(peer.clone());
            }
            self.stats.directory_updates += 1;
            tracing::debug!(node = %self.name(), peer = %req.peer, generation = dir.generation,
                version = dir.version, components = dir.components.len(), "directory update");
        }
        if restarted {
            // The old incarnation will never answer what it was asked.
            self.session.peer_lost(&req.peer);
            self.gate.host_restarted(&req.peer);
        }
        if dir.reply_wanted || first || restarted {
            self.send_directory(now, &req.peer, false);
        }
        if newer {
            self.retry_pending(now, reach);
        }
    }

    /// The periodic work: ask silent configured peers for their directory.
    pub(super) fn tick<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R) {
        let on = self.config.static_directories;
        let silent: Vec<String> = self
            .peers
            .iter()
            .filter(|(name, v)| on && v.known.is_none() && !v.gossip && reach.connected(name))
            .map(|(name, _)| name.clone())
            .collect();
        for peer in silent {
            self.send_directory(now, &peer, true);
        }
        // Calls whose host's connection came back without a `PeerUp` go now.
        self.retry_pending(now, reach);
    }

    pub(super) fn needs_tick(&self) -> bool {
        !self.pending.is_empty()
            || (self.config.static_directories
                && self.peers.values().any(|v| v.known.is_none() && !v.gossip))
    }

    // ----- routing -----

    /// Why a call to `component` (on `pin`) fails at once because of a death or leave,
    /// if it does: the pinned node is gone ([`CallError::Unreachable`]), or every host
    /// of the name is ([`CallError::NotHosted`]). Never sent, so never handled.
    pub(super) fn lost(&self, component: &str, pin: Option<&str>) -> Option<CallError> {
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

    /// The error for a call to `component` that found no host:
    /// [`CallError::NotHosted`] if this node exported the name or a peer announced it,
    /// [`CallError::UnknownName`] otherwise.
    pub(crate) fn unhosted(&self, component: &str) -> CallError {
        if self.heard.contains(component) {
            CallError::NotHosted {
                name: component.to_owned(),
            }
        } else {
            CallError::UnknownName {
                name: component.to_owned(),
            }
        }
    }

    /// Where to send a message for `component` (on `pin`, if given) now, if anywhere.
    /// Messages already waiting for the same target go first, so a later one waits
    /// behind them.
    pub(super) fn route(
        &mut self,
        now: Nanos,
        component: &str,
        pin: Option<&str>,
    ) -> Option<Rc<str>> {
        if self
            .pending
            .iter()
            .any(|p| &*p.component == component && p.pin.as_deref() == pin)
        {
            return None;
        }
        self.route_now(now, component, pin)
    }

    fn route_now(&mut self, now: Nanos, component: &str, pin: Option<&str>) -> Option<Rc<str>> {
        if let Some(node) = pin {
            let view = self.peers.get(node)?;
            view.known?;
            return view
                .components
                .iter()
                .any(|c| c == component)
                .then(|| node.into());
        }
        let hosts = self.hosts.get(component)?;
        let connected = || {
            hosts
                .iter()
                .filter(|h| !self.links_down.contains_key(&***h))
        };
        // Hosts this node ejected (outlier ejection) get no calls, unless every
        // connected host is ejected.
        let gate = &self.gate;
        let kept = || connected().filter(|h| !gate.is_ejected(now, component, h));
        let all_ejected = kept().next().is_none();
        let live = || connected().filter(|h| all_ejected || !gate.is_ejected(now, component, h));
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
    /// [`CallError::Unreachable`](crate::remote::CallError::Unreachable) now, if any:
    /// the pinned node's, or every host's. Marks older than
    /// [`NodeConfig::relink_after`](crate::remote::NodeConfig::relink_after) are
    /// lifted here.
    pub(super) fn unreachable(
        &mut self,
        component: &str,
        pin: Option<&str>,
        now: Nanos,
    ) -> Option<String> {
        if self.links_down.is_empty() {
            return None;
        }
        let after = nanos(self.config.relink_after);
        self.links_down
            .retain(|_, since| now < since.saturating_add(after));
        match pin {
            Some(node) => self.links_down.contains_key(node).then(|| node.to_owned()),
            None if self.exports.contains_key(component) => None,
            None => {
                let hosts = self.hosts.get(component)?;
                let mut all = hosts.iter().filter(|h| self.links_down.contains_key(&***h));
                let first = all.next()?.to_string();
                (all.count() + 1 == hosts.len()).then_some(first)
            }
        }
    }

    /// Remembers component names as heard of, up to
    /// [`NodeConfig::max_names`](crate::remote::NodeConfig::max_names).
    fn remember<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if self.heard.contains(name) {
                continue;
            }
            if self.heard.len() >= self.config.max_names {
                self.stats.names_dropped += 1;
                continue;
            }
            self.heard.insert(name.to_owned());
        }
    }

    fn unhost(&mut self, peer: &str, components: &[String]) {
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
    pub(super) fn forget(&mut self, peer: &str) {
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

    // ----- membership input -----

    /// Membership input: peer `name` is alive at `generation` and hosts
    /// `components`; see [`Node::peer_up`](crate::remote::Node::peer_up).
    pub(crate) fn peer_up<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        name: &str,
        generation: u64,
        components: &[&str],
    ) {
        if name == self.name() {
            return;
        }
        if !self.peers.contains_key(name) && self.peers.len() >= self.config.max_peers {
            self.stats.peers_refused += 1;
            if let Some(skipped) = self.log_gate.admit(name, now) {
                tracing::warn!(name: "tern.node.peer_refused", node = %self.name(), remote = name,
                    max_peers = self.config.max_peers, skipped, "member refused: max_peers reached");
            }
            return;
        }
        let view = self
            .peers
            .entry(name.to_owned())
            .or_insert_with(|| PeerView {
                gossip: true,
                ..PeerView::default()
            });
        view.gossip = true;
        let known = view.known.map(|(g, _)| g);
        if known.is_some_and(|g| generation < g) {
            tracing::debug!(node = %self.config.name, peer = name, generation, "stale membership input ignored");
            return;
        }
        let restarted = known.is_some_and(|g| generation > g);
        view.known = Some((generation, 0));
        let changed = view.components.len() != components.len()
            || view.components.iter().zip(components).any(|(a, b)| a != b);
        let old = if changed || known.is_none() {
            let new = components.iter().map(|c| (*c).to_owned()).collect();
            Some(std::mem::replace(&mut view.components, new))
        } else {
            None
        };
        self.down.remove(name);
        self.session.set_peer_generation(name, generation);
        if restarted {
            // The old incarnation will never answer what it was asked, and the new
            // one has a connection of its own.
            self.session.peer_lost(name);
            self.links_down.remove(name);
            self.gate.host_restarted(name);
            tracing::info!(node = %self.name(), peer = name, generation, "peer restarted (membership)");
        }
        if let Some(old) = old {
            self.unhost(name, &old);
            self.remember(components.iter().copied());
            let peer: Rc<str> = name.into();
            for c in components {
                self.gone.remove(*c);
                self.hosts
                    .entry((*c).to_owned())
                    .or_default()
                    .insert(peer.clone());
            }
            self.stats.directory_updates += 1;
            tracing::debug!(node = %self.name(), peer = name, generation,
                components = components.len(), "directory from membership");
        }
        self.retry_pending(now, reach);
        self.absorb(now, reach);
    }

    /// Membership input: peer `name` is gone (dead, or `left`); see
    /// [`Node::peer_down`](crate::remote::Node::peer_down).
    pub(crate) fn peer_down<R: Reach + ?Sized>(&mut self, now: Nanos, reach: &R, name: &str) {
        if name == self.name() {
            return;
        }
        if self.down.len() >= self.config.max_peers {
            // Bounded: the oldest name by order is forgotten (a call pinned to it
            // then waits for the name instead of failing at once).
            self.down.pop_first();
        }
        self.down.insert(name.to_owned());
        self.links_down.remove(name);
        if let Some(view) = self.peers.remove(name) {
            self.unhost(name, &view.components);
            for c in view.components {
                // Bounded like the names heard of: past it, a call to the name waits
                // for a host instead of failing at once.
                if !self.hosts.contains_key(&c) && self.gone.len() < self.config.max_names {
                    self.gone.insert(c, name.to_owned());
                }
            }
        }
        self.session.peer_lost(name);
        // Calls waiting for that node, or for a name only it had, will never go.
        self.fail_pending_for(name);
        self.absorb(now, reach);
    }
}
