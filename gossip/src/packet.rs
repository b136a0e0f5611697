//! Building datagrams (piggy-back within budgets, never over the MTU) and taking them
//! apart (seal first, then the protobuf, then each part).

use std::net::SocketAddr;

use prost::Message;
use prost::encoding::{encoded_len_varint, key_len};
use tern_proto::v1::gossip::{Ack, Fact, Nack, Packet, Ping, Update, packet::Body};

use crate::error::OpenError;
use crate::membership::{Membership, Nanos};
use crate::replay::{Replay, Window};
use crate::sync::QUERY_NAME;

/// Replay windows kept for `members` queries (one per asking run).
pub(crate) const QUERY_WINDOWS: usize = 64;
use crate::seal::{Nonce, OVERHEAD, sender_hash};

/// Bytes a repeated message field entry takes in its parent.
pub(crate) fn entry_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

impl Membership {
    /// Sends `body` to `to` with `first` updates (always included) and as many queued
    /// updates and facts as fit, membership and facts each within their own budget.
    pub(crate) fn send(&mut self, to: SocketAddr, body: Option<Body>, first: Vec<Update>) {
        let mut packet = Packet {
            from: self.name.clone(),
            generation: self.generation,
            body,
            updates: first,
            facts: Vec::new(),
        };
        let limit = self.cfg.mtu - OVERHEAD;
        let used = packet.encoded_len();
        if used > limit {
            // A body alone over the MTU is a bug in the caller; never send it.
            tracing::error!(node = %self.name, used, limit, "gossip datagram over the MTU not sent");
            return;
        }
        let room = limit - used;
        let member_budget = room * usize::from(self.cfg.membership_share_percent) / 100;
        let retransmits = self.retransmit_limit();
        let mut left = member_budget;
        let mut updates = self.member_queue.take_except(retransmits, &[], |u| {
            let n = entry_len(20, u.encoded_len());
            (n <= left).then(|| {
                left -= n;
                n
            })
        });
        let mut fact_room = room - (member_budget - left);
        let facts = self.fact_queue.take_except(retransmits, &[], |f| {
            let n = entry_len(21, f.encoded_len());
            (n <= fact_room).then(|| {
                fact_room -= n;
                n
            })
        });
        // Membership may use what facts left.
        // Only updates not already taken: a second pass over the whole queue put the
        // same update twice in one datagram and spent two of its transmits on it, so
        // membership changes reached fewer members than facts (found by gossip_sim
        // T5, T6, T9: a leave or a new generation often missed a node or two).
        if fact_room > 0 {
            let taken: Vec<String> = updates.iter().map(|(k, _)| k.clone()).collect();
            let more = self.member_queue.take_except(retransmits, &taken, |u| {
                let n = entry_len(20, u.encoded_len());
                (n <= fact_room).then(|| {
                    fact_room -= n;
                    n
                })
            });
            updates.extend(more);
        }
        packet.updates.extend(updates.into_iter().map(|(_, u)| u));
        packet.facts = facts.into_iter().map(|(_, f)| f).collect();
        self.emit(to, &packet);
    }

    /// Seals and queues a packet that is known to fit.
    pub(crate) fn emit(&mut self, to: SocketAddr, packet: &Packet) {
        let plain = packet.encode_to_vec();
        let sealed = self.sealer.seal(&plain);
        if sealed.is_empty() || sealed.len() > self.cfg.mtu {
            tracing::error!(node = %self.name, len = sealed.len(), "gossip datagram over the MTU not sent");
            return;
        }
        self.stats.sent += 1;
        self.stats.bytes_sent += sealed.len() as u64;
        self.stats.largest_sent = self.stats.largest_sent.max(sealed.len());
        self.out.push_back((to, sealed));
    }

    /// Runs an authenticated datagram's nonce through its sender's replay window. A
    /// generation older than the member's known one is refused even with no window yet.
    fn check_replay(&mut self, sender: &str, nonce: Nonce) -> Result<(), Replay> {
        if self
            .members
            .get(sender)
            .is_some_and(|m| nonce.generation < m.generation)
        {
            return Err(Replay::OldGeneration);
        }
        if sender == QUERY_NAME {
            return self.check_query_replay(nonce);
        }
        if let Some(w) = self.windows.get_mut(&nonce.sender) {
            return w.accept(nonce.generation, nonce.counter);
        }
        // Bounded between collections (which keep only members' windows): beyond the
        // member table's size, a new sender is refused until the next collection.
        if self.windows.len() > self.cfg.max_members {
            return Err(Replay::TableFull);
        }
        self.windows
            .insert(nonce.sender, Window::new(nonce.generation, nonce.counter));
        Ok(())
    }

    /// Queries come from separate runs of the `members` command, each its own
    /// generation (its nonce seed) with no order between askers: one window per
    /// generation, the [`QUERY_WINDOWS`] highest kept. A generation below all of them
    /// once the table is full is refused, so a query whose window was dropped cannot
    /// be replayed.
    fn check_query_replay(&mut self, nonce: Nonce) -> Result<(), Replay> {
        if let Some(w) = self.query_windows.get_mut(&nonce.generation) {
            return w.accept(nonce.generation, nonce.counter);
        }
        if self.query_windows.len() >= QUERY_WINDOWS {
            if self
                .query_windows
                .first_key_value()
                .is_some_and(|(&g, _)| nonce.generation < g)
            {
                return Err(Replay::OldGeneration);
            }
            self.query_windows.pop_first();
        }
        self.query_windows.insert(
            nonce.generation,
            Window::new(nonce.generation, nonce.counter),
        );
        Ok(())
    }

    /// Handles one datagram from `from`. Refused datagrams are counted (see
    /// [`GossipStats`](crate::GossipStats)) and logged at debug level; nothing in a
    /// datagram can make this panic.
    pub fn handle_datagram(&mut self, now: Nanos, from: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        self.stats.bytes_received += data.len() as u64;
        if data.len() > self.cfg.mtu {
            // Nothing over the MTU is ever sent, so nothing over it is decrypted.
            self.stats.oversize += 1;
            tracing::debug!(node = %self.name, %from, len = data.len(), "gossip datagram over the MTU refused");
            return;
        }
        let (plain, nonce) = match self.sealer.open_with_nonce(data) {
            Ok(p) => p,
            Err(e) => {
                match e {
                    OpenError::OtherCluster => self.stats.other_cluster += 1,
                    OpenError::UnknownKey(_) => self.stats.unknown_key += 1,
                    OpenError::Forged => self.stats.forged += 1,
                    _ => self.stats.bad_header += 1,
                }
                tracing::debug!(node = %self.name, %from, error = %e, "gossip datagram refused");
                return;
            }
        };
        let Ok(packet) = Packet::decode(plain.as_slice()) else {
            self.stats.malformed += 1;
            tracing::debug!(node = %self.name, %from, "gossip datagram malformed");
            return;
        };
        if packet.from == self.name && packet.generation == self.generation {
            return;
        }
        if packet.from.is_empty() || packet.from.len() > 255 {
            self.stats.malformed += 1;
            return;
        }
        // The nonce must be the sender's own: its name and generation, so the replay
        // window below is the window of the sender the packet names.
        if nonce.sender != sender_hash(&packet.from) || nonce.generation != packet.generation {
            self.stats.malformed += 1;
            tracing::debug!(node = %self.name, %from, peer = %packet.from, "gossip nonce of another sender refused");
            return;
        }
        if let Err(r) = self.check_replay(&packet.from, nonce) {
            match r {
                Replay::Duplicate => self.stats.replayed += 1,
                Replay::TooOld => self.stats.too_old += 1,
                Replay::OldGeneration => self.stats.old_generation += 1,
                Replay::TableFull => self.stats.replay_table_full += 1,
            }
            tracing::debug!(node = %self.name, %from, peer = %packet.from, reason = ?r, "gossip datagram replay refused");
            return;
        }
        if let Some(Body::Query(q)) = &packet.body {
            // An operator's query: answered, nothing of it is applied.
            self.answer_query(from, q, data.len());
            return;
        }
        if self.leaving.is_some() && self.left {
            return;
        }
        if !self.joined && self.members.is_empty() {
            tracing::info!(node = %self.name, %from, peer = %packet.from, "joined the cluster");
        }
        self.joined = true;
        for u in &packet.updates {
            self.apply_update(now, u, false);
        }
        for f in &packet.facts {
            self.apply_fact(f);
        }
        match packet.body {
            None | Some(Body::Query(_)) => {}
            Some(Body::Ping(p)) => {
                if !p.target.is_empty() && p.target != self.name {
                    self.stats.malformed += 1;
                    return;
                }
                let ack = Body::Ack(Ack {
                    seq: p.seq,
                    target: self.name.clone(),
                });
                self.send(from, Some(ack), Vec::new());
            }
            Some(Body::Ack(a)) => self.on_ack(&packet.from, a),
            Some(Body::Nack(Nack { seq })) => {
                if let Some(p) = self.probe.as_mut()
                    && p.seq == seq
                    && p.helpers.contains(&packet.from)
                {
                    p.nacks += 1;
                    self.stats.nacks += 1;
                } else {
                    self.stats.stray_acks += 1;
                }
            }
            Some(Body::PingReq(r)) => {
                if r.target.is_empty() {
                    self.stats.malformed += 1;
                    return;
                }
                let Ok(target) = r.target_addr.parse::<SocketAddr>() else {
                    self.stats.malformed += 1;
                    return;
                };
                let seq = self.next_seq();
                self.relays.insert(
                    seq,
                    crate::membership::Relay {
                        requester: from,
                        target: r.target.clone(),
                        seq: r.seq,
                        deadline: now
                            .saturating_add(crate::membership::nanos(self.cfg.probe_timeout)),
                    },
                );
                let ping = Body::Ping(Ping {
                    seq,
                    target: r.target,
                });
                self.send(target, Some(ping), Vec::new());
            }
            Some(Body::Digest(d)) => self.on_digest(now, from, &d),
            Some(Body::Summaries(s)) => self.on_summaries(now, from, &s),
            Some(Body::QueryReply(_)) => {}
        }
    }

    /// An ack counts only when it matches on (sequence number, target, sender): from
    /// the probed member itself, or (for this node's probe) from a member asked to probe
    /// it indirectly. Anything else is counted as stray.
    fn on_ack(&mut self, sender: &str, a: Ack) {
        if let Some(p) = self.probe.as_mut()
            && p.seq == a.seq
            && p.target == a.target
            && (sender == p.target || p.helpers.iter().any(|h| h == sender))
        {
            p.acked = true;
            return;
        }
        if self
            .relays
            .get(&a.seq)
            .is_some_and(|r| r.target == a.target && sender == a.target)
            && let Some(relay) = self.relays.remove(&a.seq)
        {
            let ack = Body::Ack(Ack {
                seq: relay.seq,
                target: relay.target,
            });
            self.send(relay.requester, Some(ack), Vec::new());
            return;
        }
        self.stats.stray_acks += 1;
    }

    /// Packs updates then facts into as few datagrams as fit the MTU, at most `max`
    /// datagrams; returns whether everything went.
    pub(crate) fn send_bulk(
        &mut self,
        to: SocketAddr,
        mut updates: Vec<Update>,
        mut facts: Vec<Fact>,
        max: usize,
    ) -> bool {
        let limit = self.cfg.mtu - OVERHEAD;
        updates.reverse();
        facts.reverse();
        for _ in 0..max {
            if updates.is_empty() && facts.is_empty() {
                return true;
            }
            let mut packet = Packet {
                from: self.name.clone(),
                generation: self.generation,
                body: None,
                updates: Vec::new(),
                facts: Vec::new(),
            };
            let mut used = packet.encoded_len();
            while let Some(u) = updates.last() {
                let n = entry_len(20, u.encoded_len());
                if used + n > limit {
                    break;
                }
                used += n;
                packet.updates.extend(updates.pop());
            }
            while let Some(f) = facts.last() {
                let n = entry_len(21, f.encoded_len());
                if used + n > limit {
                    break;
                }
                used += n;
                packet.facts.extend(facts.pop());
            }
            if packet.updates.is_empty() && packet.facts.is_empty() {
                // One entry larger than a datagram: cannot happen within the limits;
                // skip it rather than loop.
                updates.pop();
                facts.pop();
                continue;
            }
            self.emit(to, &packet);
        }
        updates.is_empty() && facts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use prost::Message;
    use tern_proto::v1::gossip::{MemberState, Packet, Ping, Update, packet::Body};

    use crate::seal::Sealer;
    use crate::{GossipConfig, Identity, Key, Keyring, Membership};

    /// One queued update goes into a datagram once, and spends one transmit per
    /// datagram: it is sent in `retransmit_limit` datagrams, not half as many.
    #[test]
    fn a_queued_update_is_sent_once_per_datagram_and_limit_times() {
        let ring = Keyring::new(1, Key::from_bytes([5; 32]));
        let id = Identity {
            name: "a".into(),
            generation: 1,
            addr: SocketAddr::from(([127, 0, 0, 1], 7001)),
        };
        let mut m = Membership::new(GossipConfig::new("t"), ring.clone(), id, 1).unwrap();
        let u = Update {
            name: "b".into(),
            generation: 1,
            incarnation: 3,
            state: MemberState::Left.into(),
            addr: "127.0.0.1:7002".into(),
            facts_version: 0,
            from: String::new(),
        };
        m.member_queue.push("b".into(), u);
        let limit = m.retransmit_limit();
        let to = SocketAddr::from(([127, 0, 0, 1], 7003));
        let opener = Sealer::new("t", ring, "other", 1);
        let mut datagrams = 0;
        while m.queue_depths().0 > 0 {
            m.send(to, None, Vec::new());
            let (_, d) = m.poll_transmit().unwrap();
            let p = Packet::decode(opener.open(&d).unwrap().as_slice()).unwrap();
            assert_eq!(p.updates.len(), 1, "the update twice in one datagram");
            datagrams += 1;
            assert!(datagrams <= 100);
        }
        assert_eq!(datagrams, limit);
    }

    fn sealed(name: &str, generation: u64, from: &str, body: Body) -> (Sealer, Vec<u8>) {
        let mut s = Sealer::new("t", ring(), name, generation);
        let p = Packet {
            from: from.into(),
            generation,
            body: Some(body),
            updates: Vec::new(),
            facts: Vec::new(),
        };
        let d = s.seal(&p.encode_to_vec());
        (s, d)
    }

    fn ring() -> Keyring {
        Keyring::new(1, Key::from_bytes([5; 32]))
    }

    fn node() -> Membership {
        let id = Identity {
            name: "a".into(),
            generation: 1,
            addr: SocketAddr::from(([127, 0, 0, 1], 7001)),
        };
        Membership::new(GossipConfig::new("t"), ring(), id, 1).unwrap()
    }

    fn ping() -> Body {
        Body::Ping(Ping {
            seq: 9,
            target: "a".into(),
        })
    }

    fn answers(m: &mut Membership) -> usize {
        std::iter::from_fn(|| m.poll_transmit()).count()
    }

    const B: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7002);

    /// A captured ping or `members` query replayed (from anywhere) is not answered
    /// again; each replay is counted.
    #[test]
    fn a_replayed_datagram_is_refused_and_counted() {
        let mut a = node();
        let (_, d) = sealed("b", 1, "b", ping());
        a.handle_datagram(1, B, &d);
        assert_eq!(answers(&mut a), 1);
        let elsewhere = SocketAddr::from(([127, 0, 0, 9], 9));
        for _ in 0..3 {
            a.handle_datagram(2, elsewhere, &d);
        }
        assert_eq!(answers(&mut a), 0);
        assert_eq!(a.stats().replayed, 3);

        let mut q = crate::MembersQuery::new("t", ring(), 77);
        let req = q.request();
        a.handle_datagram(3, elsewhere, &req);
        assert!(answers(&mut a) >= 1);
        a.handle_datagram(4, elsewhere, &req);
        assert_eq!(answers(&mut a), 0);
        assert_eq!(a.stats().replayed, 4);
        // Another asker with a lower seed (another host's clock) is answered too.
        let mut other = crate::MembersQuery::new("t", ring(), 5);
        a.handle_datagram(5, elsewhere, &other.request());
        assert!(answers(&mut a) >= 1);
        a.handle_datagram(6, elsewhere, &req);
        assert_eq!(answers(&mut a), 0);
    }

    /// A datagram older than the window, or of an older generation than the member's
    /// known one, is refused and counted by reason.
    #[test]
    fn too_old_and_old_generation_are_refused() {
        let mut a = node();
        let (mut s, first) = sealed("b", 2, "b", ping());
        let p = Packet {
            from: "b".into(),
            generation: 2,
            body: Some(ping()),
            updates: Vec::new(),
            facts: Vec::new(),
        };
        let later: Vec<Vec<u8>> = (0..crate::replay::WINDOW)
            .map(|_| s.seal(&p.encode_to_vec()))
            .collect();
        if let Some(last) = later.last() {
            a.handle_datagram(1, B, last);
        }
        a.handle_datagram(1, B, &first);
        assert_eq!(a.stats().too_old, 1);
        // One inside the window is still accepted.
        a.handle_datagram(1, B, &later[1]);
        assert_eq!(answers(&mut a), 2);

        let (_, old) = sealed("b", 1, "b", ping());
        a.handle_datagram(2, B, &old);
        assert_eq!(a.stats().old_generation, 1);
        assert_eq!(answers(&mut a), 0);
    }

    /// The nonce names its sender: a packet claiming another sender is refused.
    #[test]
    fn a_nonce_of_another_sender_is_refused() {
        let mut a = node();
        let (_, d) = sealed("x", 1, "b", ping());
        a.handle_datagram(1, B, &d);
        assert_eq!(a.stats().malformed, 1);
        assert_eq!(answers(&mut a), 0);
    }

    /// Over the MTU: refused before any decryption, not counted as forged.
    #[test]
    fn a_datagram_over_the_mtu_is_refused_before_opening() {
        let mut a = node();
        let big = vec![0u8; a.config().mtu + 1];
        a.handle_datagram(1, B, &big);
        assert_eq!(a.stats().oversize, 1);
        assert_eq!(a.stats().bad_header + a.stats().forged, 0);
    }

    /// A `members` query's answer is at most 3 times the request: a small (unpadded)
    /// request gets nothing, a full one a few parts, and the asker gets the rest part by
    /// part with fresh requests.
    #[test]
    fn a_query_answer_is_bounded_by_the_request() {
        let mut a = node();
        for i in 0..300u16 {
            let u = Update {
                name: format!("member-with-a-long-name-{i:04}"),
                generation: 1,
                incarnation: 0,
                state: MemberState::Alive.into(),
                addr: format!("127.0.1.{}:{}", i % 250, 7000 + i),
                facts_version: 0,
                from: String::new(),
            };
            a.apply_update(0, &u, false);
        }
        let elsewhere = SocketAddr::from(([127, 0, 0, 9], 9));
        let (_, small) = sealed(
            crate::sync::QUERY_NAME,
            5,
            crate::sync::QUERY_NAME,
            Body::Query(tern_proto::v1::gossip::Query {
                seq: 1,
                first_part: 0,
                padding: Vec::new(),
            }),
        );
        a.handle_datagram(1, elsewhere, &small);
        assert_eq!(answers(&mut a), 0);
        assert_eq!(a.stats().queries_refused, 1);

        let mut q = crate::MembersQuery::new("t", ring(), 77);
        let mut table = None;
        for round in 0..100 {
            let req = q.request();
            a.handle_datagram(2 + round, elsewhere, &req);
            let out: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_transmit())
                .map(|(_, d)| d)
                .collect();
            let bytes: usize = out.iter().map(Vec::len).sum();
            assert!(
                !out.is_empty() && bytes <= 3 * req.len(),
                "{bytes} for {}",
                req.len()
            );
            for d in out {
                if let Some((rows, _)) = q.take(&d).unwrap() {
                    table = Some(rows);
                }
            }
            if table.is_some() {
                break;
            }
        }
        assert_eq!(table.map(|t| t.len()), Some(301));
    }
}
