//! Applying what is heard: member state transitions, suspicion and refutation,
//! membership updates and facts (with re-gossip), suspicion timeouts and tombstones.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use tern_proto::v1::gossip::{Fact, MemberState, Update};

use crate::member::{Member, MemberEvent, State, Suspicion, wins};
use crate::membership::{Membership, Nanos, nanos};
use crate::seal::sender_hash;

impl Membership {
    fn add_to_probe_list(&mut self, name: &str) {
        let len = self.probe_list.len() as u64;
        let at = usize::try_from(self.rng.below(len + 1)).unwrap_or(0);
        self.probe_list.insert(at, name.to_owned());
        if at <= self.probe_next && self.probe_next < self.probe_list.len() {
            self.probe_next += 1;
        }
    }

    /// Moves member `name` to `state` (bookkeeping for counts, suspicion and events).
    fn transition(&mut self, now: Nanos, name: &str, state: State, incarnation: u64) {
        let Some(m) = self.members.get_mut(name) else {
            return;
        };
        let was = m.state;
        m.state = state;
        m.incarnation = incarnation;
        if was != state {
            m.since = now;
        }
        if let Some(s) = m.suspicion.take() {
            self.suspects.remove(&(s.deadline, name.to_owned()));
        }
        let generation = m.generation;
        let addr = m.addr;
        match (was.is_down(), state.is_down()) {
            (false, true) => self.live = self.live.saturating_sub(1),
            (true, false) => {
                self.live += 1;
                self.add_to_probe_list(name);
            }
            _ => {}
        }
        let event = match state {
            State::Alive if was == State::Suspect => Some(MemberEvent::Refuted {
                name: name.to_owned(),
            }),
            State::Alive if was.is_down() => Some(MemberEvent::Up {
                name: name.to_owned(),
                generation,
                addr,
            }),
            State::Suspect if was != State::Suspect => Some(MemberEvent::Suspect {
                name: name.to_owned(),
            }),
            State::Dead | State::Left if !was.is_down() => {
                if state == State::Dead {
                    self.recent_dead.push_back((now, name.to_owned()));
                }
                Some(MemberEvent::Down {
                    name: name.to_owned(),
                    generation,
                    left: state == State::Left,
                })
            }
            _ => None,
        };
        if let Some(e) = event {
            tracing::debug!(node = %self.name, member = %name, ?state, incarnation, "member state");
            self.events.push_back(e);
        }
    }

    /// Starts or confirms a suspicion of `name`.
    fn suspect(&mut self, now: Nanos, name: &str, incarnation: u64, from: &str) {
        let Some(m) = self.members.get(name) else {
            return;
        };
        let same = m.state == State::Suspect && m.incarnation == incarnation;
        if same {
            // A confirmation (Lifeguard): independent suspecters shorten the timeout.
            let (started, old_deadline, count, known) = {
                let s = m.suspicion.as_ref();
                (
                    s.map_or(now, |s| s.started),
                    s.map_or(0, |s| s.deadline),
                    s.map_or(0, |s| s.confirmations.len()),
                    s.is_some_and(|s| s.confirmations.iter().any(|c| c == from)),
                )
            };
            if known || from.is_empty() || count > self.cfg.confirmations as usize {
                return;
            }
            let deadline = started.saturating_add(self.suspicion_timeout(count + 1));
            if let Some(m) = self.members.get_mut(name)
                && let Some(s) = m.suspicion.as_mut()
            {
                s.confirmations.push(from.to_owned());
                s.deadline = deadline;
                self.suspects.remove(&(old_deadline, name.to_owned()));
                self.suspects.insert((deadline, name.to_owned()));
            }
            // Pass the confirmation on so others shorten theirs too.
            let mut up = self.members.get(name).map(|m| m.update(from));
            if let Some(u) = up.take() {
                self.member_queue.push(format!("{name}/{from}"), u);
            }
            return;
        }
        self.transition(now, name, State::Suspect, incarnation);
        let deadline = now.saturating_add(self.suspicion_timeout(1));
        if let Some(m) = self.members.get_mut(name) {
            m.suspicion = Some(Suspicion {
                started: now,
                confirmations: if from.is_empty() {
                    Vec::new()
                } else {
                    vec![from.to_owned()]
                },
                deadline,
            });
            let up = m.update(from);
            self.suspects.insert((deadline, name.to_owned()));
            self.member_queue.push(name.to_owned(), up);
        }
    }

    /// This node is suspected or declared dead: refute with a higher incarnation.
    fn refute(&mut self, incarnation: u64) {
        if self.leaving.is_some() {
            return;
        }
        self.incarnation = self.incarnation.max(incarnation).saturating_add(1);
        self.stats.refutations += 1;
        if self.cfg.lifeguard {
            self.raise_health(1);
        }
        let me = self.self_update();
        self.member_queue.push(self.name.clone(), me);
        tracing::debug!(node = %self.name, incarnation = self.incarnation, "refuting a suspicion of this node");
    }

    /// Applies one membership update. `sync` marks updates from anti-entropy, where a
    /// remote *dead* about a member this node thinks alive only starts a suspicion
    /// (after a partition heals, the other side's verdicts must be confirmed, not
    /// adopted). Returns whether anything changed.
    pub(crate) fn apply_update(&mut self, now: Nanos, u: &Update, sync: bool) -> bool {
        let Some(state) = MemberState::try_from(u.state)
            .ok()
            .and_then(State::from_wire)
        else {
            self.stats.malformed += 1;
            return false;
        };
        if u.name.is_empty() || u.name.len() > 255 {
            self.stats.malformed += 1;
            return false;
        }
        if u.name == self.name {
            // A suspicion, a death or a leave this node did not send: refute it (a
            // leave in progress is this node's own, and refute() keeps it).
            if u.generation == self.generation
                && matches!(state, State::Suspect | State::Dead | State::Left)
                && u.incarnation >= self.incarnation
            {
                self.refute(u.incarnation);
            } else if u.generation > self.generation {
                tracing::error!(node = %self.name, generation = u.generation,
                    "another node with this name and a newer generation exists");
            }
            return false;
        }
        let Ok(addr) = u.addr.parse::<SocketAddr>() else {
            self.stats.malformed += 1;
            return false;
        };
        let known = self
            .members
            .get(&u.name)
            .map(|m| (m.generation, m.incarnation, m.state));
        match known {
            None => {
                if self.members.len() >= self.cfg.max_members {
                    tracing::warn!(node = %self.name, member = %u.name, "member table full; update dropped");
                    return false;
                }
                self.members.insert(
                    u.name.clone(),
                    Member {
                        name: u.name.clone(),
                        generation: u.generation,
                        incarnation: u.incarnation,
                        state: if state.is_down() { state } else { State::Alive },
                        addr,
                        facts: BTreeMap::new(),
                        facts_version: 0,
                        since: now,
                        suspicion: None,
                    },
                );
                if !state.is_down() {
                    self.live += 1;
                    self.add_to_probe_list(&u.name);
                    self.events.push_back(MemberEvent::Up {
                        name: u.name.clone(),
                        generation: u.generation,
                        addr,
                    });
                    if state == State::Suspect {
                        self.suspect(now, &u.name, u.incarnation, &u.from);
                    }
                }
                self.regossip(u);
                true
            }
            Some((generation, _, _)) if u.generation < generation => false,
            Some((generation, _, cur_state)) if u.generation > generation => {
                // A new generation replaces the old one at once.
                if !cur_state.is_down() {
                    self.transition(now, &u.name, State::Dead, 0);
                }
                if let Some(m) = self.members.get_mut(&u.name) {
                    m.generation = u.generation;
                    m.incarnation = u.incarnation;
                    m.addr = addr;
                    m.facts.clear();
                    m.facts_version = 0;
                }
                if state.is_down() {
                    if let Some(m) = self.members.get_mut(&u.name) {
                        m.state = state;
                        m.since = now;
                    }
                } else {
                    self.transition(now, &u.name, State::Alive, u.incarnation);
                    if state == State::Suspect {
                        self.suspect(now, &u.name, u.incarnation, &u.from);
                    }
                }
                self.regossip(u);
                true
            }
            Some((_, inc, cur)) => {
                let effective = if sync && state == State::Dead && !cur.is_down() {
                    State::Suspect
                } else {
                    state
                };
                if effective == State::Suspect && cur == State::Suspect && u.incarnation == inc {
                    self.suspect(now, &u.name, u.incarnation, &u.from);
                    return false;
                }
                if !wins(effective, u.incarnation, cur, inc) {
                    return false;
                }
                if let Some(m) = self.members.get_mut(&u.name) {
                    m.addr = addr;
                }
                match effective {
                    State::Suspect => self.suspect(now, &u.name, u.incarnation, &u.from),
                    s => {
                        if s == State::Dead {
                            tracing::info!(node = %self.name, member = %u.name, "member dead (heard)");
                        }
                        self.transition(now, &u.name, s, u.incarnation);
                        self.regossip(u);
                    }
                }
                true
            }
        }
    }

    /// Passes an accepted update on (without its suspecter, which only a suspicion
    /// needs).
    fn regossip(&mut self, u: &Update) {
        let mut u = u.clone();
        u.from.clear();
        self.member_queue.push(u.name.clone(), u);
    }

    /// Applies one fact of another member. Returns whether it was new.
    pub(crate) fn apply_fact(&mut self, f: &Fact) -> bool {
        if f.node == self.name {
            return false;
        }
        if f.key.is_empty() || f.key.len() > 64 {
            self.stats.malformed += 1;
            return false;
        }
        let max = self.cfg.max_facts_bytes;
        let Some(m) = self.members.get_mut(&f.node) else {
            return false;
        };
        if m.generation != f.generation {
            return false;
        }
        let mut new = false;
        if m.facts.get(&f.key).is_none_or(|(_, v)| f.version > *v) {
            let size: usize = m
                .facts
                .iter()
                .filter(|(k, _)| **k != f.key)
                .map(|(k, (v, _))| k.len() + v.len())
                .sum::<usize>()
                + f.key.len()
                + f.value.len();
            if size > max {
                self.stats.facts_refused += 1;
                tracing::warn!(node = %self.name, member = %f.node, key = %f.key, size, max,
                    "fact over the size limit refused");
                return false;
            }
            m.facts.insert(f.key.clone(), (f.value.clone(), f.version));
            new = true;
        }
        if f.since <= m.facts_version && f.version > m.facts_version {
            m.facts_version = f.version;
        }
        if new {
            self.events.push_back(MemberEvent::Fact {
                name: f.node.clone(),
                key: f.key.clone(),
            });
            let key = format!("{}/{}", f.node, f.key);
            // `since` states a fact about the owner's facts (no live fact between), which
            // stays true as they change, so the fact is passed on as it came.
            self.fact_queue.push(key, f.clone());
        }
        new
    }

    /// Facts of member `m` (or this node) newer than `watermark`, in version order, each
    /// carrying `since` = the previous one's version so the receiver can raise its
    /// watermark as far as it got.
    pub(crate) fn facts_after(&self, name: &str, watermark: u64) -> Vec<Fact> {
        let (facts, generation) = if name == self.name {
            (&self.facts, self.generation)
        } else {
            match self.members.get(name) {
                Some(m) => (&m.facts, m.generation),
                None => return Vec::new(),
            }
        };
        let mut v: Vec<(&String, &(Vec<u8>, u64))> = facts
            .iter()
            .filter(|(_, (_, ver))| *ver > watermark)
            .collect();
        v.sort_by_key(|(_, (_, ver))| *ver);
        let mut since = watermark;
        v.into_iter()
            .map(|(k, (val, ver))| {
                let f = Fact {
                    node: name.to_owned(),
                    generation,
                    key: k.clone(),
                    value: val.clone(),
                    version: *ver,
                    since,
                };
                since = *ver;
                f
            })
            .collect()
    }

    /// Declares suspects whose time ran out dead.
    pub(crate) fn expire_suspicions(&mut self, now: Nanos) {
        while let Some((deadline, name)) = self.suspects.first().cloned() {
            if deadline > now {
                break;
            }
            self.suspects.pop_first();
            let Some(m) = self.members.get(&name) else {
                continue;
            };
            if m.state != State::Suspect {
                continue;
            }
            let inc = m.incarnation;
            self.stats.declared_dead += 1;
            tracing::info!(node = %self.name, member = %name, incarnation = inc, "member declared dead");
            self.transition(now, &name, State::Dead, inc);
            if let Some(m) = self.members.get(&name) {
                let up = m.update(&self.name);
                self.member_queue.push(name.clone(), up);
            }
        }
    }

    /// Forgets tombstones past their time, and the oldest beyond the cap.
    pub(crate) fn collect_tombstones(&mut self, now: Nanos) {
        let ttl = nanos(self.cfg.tombstone_ttl);
        let mut down: Vec<(Nanos, String)> = self
            .members
            .values()
            .filter(|m| m.state.is_down())
            .map(|m| (m.since, m.name.clone()))
            .collect();
        down.sort();
        let excess = down.len().saturating_sub(self.cfg.max_tombstones);
        for (i, (since, name)) in down.into_iter().enumerate() {
            if i < excess || since.saturating_add(ttl) <= now {
                self.members.remove(&name);
            } else {
                break;
            }
        }
        let keep = nanos(self.cfg.gossip_to_dead);
        while self
            .recent_dead
            .front()
            .is_some_and(|(t, _)| t.saturating_add(keep) <= now)
        {
            self.recent_dead.pop_front();
        }
        // Replay windows live as long as their member's record (tombstones included),
        // so the table is bounded by the member table.
        let known: BTreeSet<u64> = self.members.keys().map(|n| sender_hash(n)).collect();
        self.windows.retain(|h, _| known.contains(h));
        // Drop names of removed or down members from the probe list.
        let members = &self.members;
        let before = self.probe_list.len();
        self.probe_list
            .retain(|n| members.get(n).is_some_and(|m| !m.state.is_down()));
        if self.probe_list.len() != before {
            self.probe_next = self.probe_next.min(self.probe_list.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tern_proto::v1::gossip::{MemberState, Update};

    use crate::{GossipConfig, Identity, Key, Keyring, Membership, State};

    fn node(name: &str, port: u16) -> Membership {
        let id = Identity {
            name: name.into(),
            generation: 1,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let ring = Keyring::new(1, Key::from_bytes([3; 32]));
        Membership::new(GossipConfig::new("t"), ring, id, u64::from(port)).unwrap()
    }

    fn update(name: &str, port: u16, incarnation: u64, state: MemberState) -> Update {
        Update {
            name: name.into(),
            generation: 1,
            incarnation,
            state: state.into(),
            addr: format!("127.0.0.1:{port}"),
            facts_version: 0,
            from: "mallory".into(),
        }
    }

    /// Issue 11's forged leave: `Update{b, LEFT}` from a third party. b refutes it
    /// with a higher incarnation, and that ALIVE brings b back where the lie landed.
    #[test]
    fn a_live_member_refutes_a_leave_it_did_not_send() {
        let (mut a, mut b) = (node("a", 7001), node("b", 7002));
        a.apply_update(1, &update("b", 7002, 0, MemberState::Alive), false);
        let forged = update("b", 7002, 0, MemberState::Left);
        a.apply_update(2, &forged, false);
        assert_eq!(a.member("b").map(|m| m.state), Some(State::Left));

        b.apply_update(2, &forged, false);
        assert_eq!(b.incarnation(), 1);
        assert_eq!(b.stats().refutations, 1);
        let alive = b.self_update();
        assert_eq!(alive.state, i32::from(MemberState::Alive));
        a.apply_update(3, &alive, false);
        assert_eq!(a.member("b").map(|m| m.state), Some(State::Alive));
    }

    /// A real leave stays: it is one incarnation above anything the member said
    /// before, so no earlier ALIVE (replayed or late) outranks it, and a leaving node
    /// does not refute its own leave.
    #[test]
    fn a_real_leave_is_not_undone() {
        let (mut a, mut b) = (node("a", 7001), node("b", 7002));
        let before = b.self_update();
        b.leave(1);
        let left = b.self_update();
        assert_eq!(left.state, i32::from(MemberState::Left));
        a.apply_update(1, &before, false);
        a.apply_update(2, &left, false);
        a.apply_update(3, &before, false);
        assert_eq!(a.member("b").map(|m| m.state), Some(State::Left));
        b.apply_update(3, &left, false);
        assert_eq!(b.stats().refutations, 0);
    }
}
