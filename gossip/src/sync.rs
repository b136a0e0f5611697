//! Anti-entropy over UDP: bucketed digests, then summaries of the buckets that differ,
//! then deltas, all in MTU-sized datagrams. Joining uses the same path. Also the
//! operator's query.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use prost::Message;
use prost::encoding::encoded_len_varint;
use tern_proto::v1::gossip::{
    Digest, MemberRow, Packet, Query, QueryReply, Summaries, Update, packet::Body,
};

use crate::error::OpenError;
use crate::member::{Member, MemberInfo, State};
use crate::membership::{Membership, Nanos};
use crate::packet::entry_len;
use crate::seal::{OVERHEAD, Sealer, fnv64};

/// Buckets of a digest.
pub const BUCKETS: usize = 64;

fn bucket_of(name: &str) -> usize {
    usize::try_from(fnv64(name.as_bytes()) % BUCKETS as u64).unwrap_or(0)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn record_hash(m: &Member) -> u64 {
    mix(fnv64(m.name.as_bytes())
        ^ mix(m.generation)
        ^ mix(m.incarnation.wrapping_add(0x9e37))
        ^ mix(m.state as u64 + 0x51)
        ^ mix(m.facts_version.wrapping_add(0x7f4a)))
}

impl Membership {
    fn records(&self) -> impl Iterator<Item = Member> + '_ {
        std::iter::once(self.self_member()).chain(self.members.values().cloned())
    }

    fn buckets(&self) -> Vec<u64> {
        let mut b = vec![0u64; BUCKETS];
        // By reference: cloning every member (facts included) at every digest was most
        // of the cost of anti-entropy at 1,000 nodes.
        let me = self.self_member();
        for m in std::iter::once(&me).chain(self.members.values()) {
            let i = bucket_of(&m.name);
            b[i] = b[i].wrapping_add(record_hash(m));
        }
        b
    }

    /// Sends a digest to `to` (a join request when `join`).
    pub(crate) fn start_sync(&mut self, to: SocketAddr, join: bool) {
        self.stats.syncs += 1;
        let digest = Body::Digest(Digest {
            buckets: self.buckets(),
            members: self.members.len() as u64 + 1,
            reply_wanted: true,
            join,
        });
        let me = self.self_update();
        self.send(to, Some(digest), vec![me]);
    }

    pub(crate) fn on_digest(&mut self, _now: Nanos, from: SocketAddr, d: &Digest) {
        if !d.reply_wanted {
            return;
        }
        let mine = self.buckets();
        let differ: BTreeSet<usize> = (0..BUCKETS)
            .filter(|&i| d.buckets.get(i) != Some(&mine[i]))
            .collect();
        if differ.is_empty() {
            return;
        }
        self.send_summaries(from, &differ, None, true);
    }

    /// Sends this node's records for `buckets` (or only the names in `only`), split
    /// at bucket boundaries into MTU-sized datagrams.
    fn send_summaries(
        &mut self,
        to: SocketAddr,
        buckets: &BTreeSet<usize>,
        only: Option<&BTreeSet<String>>,
        reply_wanted: bool,
    ) {
        let mut by_bucket: Vec<Vec<Update>> = vec![Vec::new(); BUCKETS];
        let me = self.self_member();
        for m in std::iter::once(&me).chain(self.members.values()) {
            let i = bucket_of(&m.name);
            if buckets.contains(&i) && only.is_none_or(|o| o.contains(&m.name)) {
                by_bucket[i].push(m.update(""));
            }
        }
        let limit = self.cfg.mtu - OVERHEAD - 16;
        let empty = Packet {
            from: self.name.clone(),
            generation: self.generation,
            body: Some(Body::Summaries(Summaries {
                entries: Vec::new(),
                buckets: Vec::new(),
                reply_wanted,
            })),
            updates: Vec::new(),
            facts: Vec::new(),
        };
        let mut current = Summaries {
            entries: Vec::new(),
            buckets: Vec::new(),
            reply_wanted,
        };
        let mut sent = 0;
        // The size is counted as entries are added (each entry's bytes in the repeated
        // field, the packed bucket list, and slack for the body's length prefix growing)
        // instead of encoding a trial packet per entry, which was quadratic.
        let base = empty.encoded_len() + 4;
        let buckets_len = |n: usize| {
            if n == 0 {
                0
            } else {
                1 + encoded_len_varint(n as u64) + n
            }
        };
        let mut used = 0;
        let flush = |this: &mut Self, s: &mut Summaries| {
            if s.entries.is_empty() && s.buckets.is_empty() {
                return;
            }
            let p = Packet {
                body: Some(Body::Summaries(std::mem::take(s))),
                ..empty.clone()
            };
            if let Some(Body::Summaries(x)) = &p.body {
                s.reply_wanted = x.reply_wanted;
            }
            this.emit(to, &p);
        };
        for (i, entries) in by_bucket.into_iter().enumerate() {
            if !buckets.contains(&i) {
                continue;
            }
            let complete = only.is_none();
            for e in entries {
                let n = entry_len(1, e.encoded_len());
                if base + used + n + buckets_len(current.buckets.len() + 1) > limit {
                    flush(self, &mut current);
                    used = 0;
                    sent += 1;
                    if sent >= self.cfg.max_sync_datagrams {
                        return;
                    }
                }
                used += n;
                current.entries.push(e);
            }
            if complete {
                current.buckets.push(u32::try_from(i).unwrap_or(0));
            }
        }
        flush(self, &mut current);
    }

    pub(crate) fn on_summaries(&mut self, now: Nanos, from: SocketAddr, s: &Summaries) {
        let covered: BTreeSet<usize> = s
            .buckets
            .iter()
            .filter_map(|b| usize::try_from(*b).ok())
            .filter(|b| *b < BUCKETS)
            .collect();
        let listed: BTreeSet<&str> = s.entries.iter().map(|e| e.name.as_str()).collect();
        let mut deltas: Vec<Update> = Vec::new();
        let mut facts = Vec::new();
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for e in &s.entries {
            self.apply_update(now, e, true);
            let mine = if e.name == self.name {
                Some(self.self_member())
            } else {
                self.members.get(&e.name).cloned()
            };
            let Some(mine) = mine else {
                continue;
            };
            let theirs_state = tern_proto::v1::gossip::MemberState::try_from(e.state)
                .ok()
                .and_then(State::from_wire);
            let newer_here = mine.generation > e.generation
                || (mine.generation == e.generation
                    && theirs_state.is_some_and(|st| {
                        crate::member::wins(mine.state, mine.incarnation, st, e.incarnation)
                    }));
            if mine.generation == e.generation && mine.facts_version > e.facts_version {
                facts.extend(self.facts_after(&e.name, e.facts_version));
            }
            if newer_here {
                deltas.push(mine.update(""));
                if mine.generation > e.generation {
                    facts.extend(self.facts_after(&e.name, 0));
                }
            }
            if mine.generation == e.generation && e.facts_version > mine.facts_version {
                wanted.insert(e.name.clone());
            }
        }
        // Records of covered buckets the peer does not have at all.
        let me = self.self_member();
        let missing: Vec<Member> = std::iter::once(&me)
            .chain(self.members.values())
            .filter(|m| covered.contains(&bucket_of(&m.name)) && !listed.contains(m.name.as_str()))
            .cloned()
            .collect();
        for m in missing {
            deltas.push(m.update(""));
            facts.extend(self.facts_after(&m.name, 0));
        }
        let max = self.cfg.max_sync_datagrams;
        let complete = self.send_bulk(from, deltas, facts, max);
        if !wanted.is_empty() {
            let buckets: BTreeSet<usize> = wanted.iter().map(|n| bucket_of(n)).collect();
            self.send_summaries(from, &buckets, Some(&wanted), false);
        }
        if !wanted.is_empty() || !complete {
            // Behind (or could not say everything): sync again soon, with anyone.
            let soon = now.saturating_add(crate::membership::nanos(self.cfg.gossip_interval));
            self.next_sync = self.next_sync.min(soon);
        }
    }

    /// Answers an operator's query with the table in MTU-sized parts, from the part it
    /// asks for on, at most [`QUERY_AMPLIFICATION`] times the request's size in all:
    /// the source address of a datagram is not authenticated, so an answer must not be
    /// a way to send a third party more than the asker sent.
    pub(crate) fn answer_query(&mut self, to: SocketAddr, q: &Query, request_len: usize) {
        let limit = self.cfg.mtu - OVERHEAD - 24;
        let mut rows: Vec<MemberRow> = Vec::new();
        for m in self.records() {
            rows.push(MemberRow {
                member: Some(m.update("")),
                facts: self.facts_after(&m.name, 0),
                health: if m.name == self.name { self.health } else { 0 },
            });
        }
        let mut parts: Vec<Vec<MemberRow>> = vec![Vec::new()];
        let mut used = 0;
        for r in rows {
            let n = r.encoded_len() + 4;
            if used + n > limit && parts.last().is_some_and(|p| !p.is_empty()) {
                parts.push(Vec::new());
                used = 0;
            }
            used += n;
            if n <= limit
                && let Some(last) = parts.last_mut()
            {
                last.push(r);
            }
        }
        let total = u32::try_from(parts.len()).unwrap_or(u32::MAX);
        let mut budget = request_len.saturating_mul(QUERY_AMPLIFICATION);
        let first = usize::try_from(q.first_part).unwrap_or(usize::MAX);
        let mut sent = 0;
        for (i, rows) in parts.into_iter().enumerate().skip(first) {
            let p = Packet {
                from: self.name.clone(),
                generation: self.generation,
                body: Some(Body::QueryReply(QueryReply {
                    seq: q.seq,
                    part: u32::try_from(i).unwrap_or(0),
                    parts: total,
                    rows,
                })),
                updates: Vec::new(),
                facts: Vec::new(),
            };
            let size = p.encoded_len() + OVERHEAD;
            if size > budget {
                break;
            }
            budget -= size;
            sent += 1;
            self.emit(to, &p);
        }
        if sent == 0 {
            self.stats.queries_refused += 1;
            tracing::debug!(node = %self.name, %to, request_len, first_part = q.first_part,
                "members query not answered: the request is too small for a part, or asks past the end");
        }
    }
}

/// An answer to a `members` query is at most this many times the request's size (as
/// QUIC bounds a server before address validation).
pub const QUERY_AMPLIFICATION: usize = 3;

/// The sender name of the operator's `members` query.
pub(crate) const QUERY_NAME: &str = "tern-members";

/// The operator's side of the `members` query: builds the sealed request and reads
/// the sealed answers (see [`Membership`] for the member side).
#[derive(Debug)]
pub struct MembersQuery {
    sealer: Sealer,
    /// The generation in the request: the nonce seed, so the request's nonce is bound
    /// to its sender like a member's.
    generation: u64,
    /// The datagram size requests are padded to.
    mtu: usize,
    seq: u64,
    parts: Vec<Option<Vec<MemberRow>>>,
    health: u32,
}

impl MembersQuery {
    /// A query for cluster `cluster` with `keyring`; `nonce_seed` must differ between
    /// queries made with the same key (the boot time in nanoseconds will do).
    #[must_use]
    pub fn new(cluster: &str, keyring: crate::Keyring, nonce_seed: u64) -> Self {
        Self {
            sealer: Sealer::new(cluster, keyring, QUERY_NAME, nonce_seed),
            generation: nonce_seed,
            mtu: crate::GossipConfig::new(cluster).mtu,
            seq: nonce_seed | 1,
            parts: Vec::new(),
            health: 0,
        }
    }

    /// The datagram to send to any member: a fresh one each time (members refuse a
    /// replayed request), asking from the first part still missing. Send another
    /// after an answer that did not complete the table.
    #[must_use]
    pub fn request(&mut self) -> Vec<u8> {
        let p = Packet {
            from: QUERY_NAME.into(),
            generation: self.generation,
            body: Some(Body::Query(Query {
                seq: self.seq,
                first_part: self
                    .parts
                    .iter()
                    .position(Option::is_none)
                    .map_or(0, |i| u32::try_from(i).unwrap_or(0)),
                padding: Vec::new(),
            })),
            updates: Vec::new(),
            facts: Vec::new(),
        };
        // Padded to the MTU: a member answers at most QUERY_AMPLIFICATION times the
        // request's size, so a full request gets that many full parts.
        let room = self.mtu.saturating_sub(OVERHEAD + p.encoded_len() + 3);
        let mut p = p;
        if let Some(Body::Query(q)) = p.body.as_mut() {
            q.padding = vec![0; room];
        }
        let mut plain = p.encode_to_vec();
        // The length prefix of the padding may take a byte or two: trim to the MTU.
        while plain.len() + OVERHEAD > self.mtu
            && let Some(Body::Query(q)) = p.body.as_mut()
            && q.padding.pop().is_some()
        {
            plain = p.encode_to_vec();
        }
        self.sealer.seal(&plain)
    }

    /// Takes one answer datagram; returns the table once every part has come.
    ///
    /// # Errors
    ///
    /// [`OpenError`] for a datagram that is not an authentic answer.
    pub fn take(&mut self, datagram: &[u8]) -> Result<Option<(Vec<MemberInfo>, u32)>, OpenError> {
        let plain = self.sealer.open(datagram)?;
        let Ok(Packet {
            body: Some(Body::QueryReply(r)),
            ..
        }) = Packet::decode(plain.as_slice())
        else {
            return Ok(None);
        };
        if r.seq != self.seq || r.parts == 0 || r.parts > 10_000 || r.part >= r.parts {
            return Ok(None);
        }
        let parts = usize::try_from(r.parts).unwrap_or(0);
        if self.parts.len() != parts {
            self.parts = vec![None; parts];
        }
        if let Some(first) = r.rows.first()
            && first.health > 0
        {
            self.health = first.health;
        }
        self.parts[usize::try_from(r.part).unwrap_or(0)] = Some(r.rows);
        if self.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for rows in self.parts.iter().flatten() {
            for row in rows {
                let Some(u) = &row.member else { continue };
                let Some(state) = tern_proto::v1::gossip::MemberState::try_from(u.state)
                    .ok()
                    .and_then(State::from_wire)
                else {
                    continue;
                };
                let Ok(addr) = u.addr.parse() else { continue };
                out.push(MemberInfo {
                    name: u.name.clone(),
                    generation: u.generation,
                    incarnation: u.incarnation,
                    state,
                    addr,
                    facts: row
                        .facts
                        .iter()
                        .filter(|f| !f.value.is_empty())
                        .map(|f| (f.key.clone(), f.value.clone()))
                        .collect(),
                    since_nanos: 0,
                    confirmations: 0,
                });
            }
        }
        Ok(Some((out, self.health)))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use prost::Message;
    use tern_proto::v1::gossip::{MemberState, Packet, Update, packet::Body};

    use crate::{GossipConfig, Identity, Key, Keyring, Membership};

    use super::BUCKETS;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946))
    }

    /// Summaries are split into datagrams by counted sizes (no trial encoding): every
    /// datagram fits the MTU, the buckets are covered, and every record is sent once.
    #[test]
    fn summaries_fit_the_mtu_and_cover_every_record() {
        let ring = Keyring::new(1, Key::from_bytes([3; 32]));
        let mut cfg = GossipConfig::new("t");
        cfg.max_sync_datagrams = 1000;
        let me = Identity {
            name: "self".into(),
            generation: 1,
            addr: addr(0),
        };
        let mut m = Membership::new(cfg.clone(), ring.clone(), me, 1).unwrap();
        let members = 700;
        for i in 1..=members {
            let u = Update {
                // Names of varied lengths, so entries differ in size.
                name: format!("member-{i}-{}", "x".repeat(usize::from(i % 90))),
                generation: u64::from(i) << 40,
                incarnation: u64::from(i) * 1000,
                state: MemberState::Alive.into(),
                addr: addr(i).to_string(),
                facts_version: u64::from(i),
                from: String::new(),
            };
            m.apply_update(0, &u, true);
        }
        while m.poll_transmit().is_some() {}
        let all = (0..BUCKETS).collect();
        m.send_summaries(addr(9999), &all, None, true);
        let opener = crate::seal::Sealer::new("t", ring, "other", 1);
        let mut entries = 0;
        let mut buckets = Vec::new();
        let mut datagrams = 0;
        while let Some((_, d)) = m.poll_transmit() {
            datagrams += 1;
            assert!(d.len() <= cfg.mtu, "{} bytes", d.len());
            let p = Packet::decode(opener.open(&d).unwrap().as_slice()).unwrap();
            let Some(Body::Summaries(s)) = p.body else {
                panic!("not summaries")
            };
            entries += s.entries.len();
            buckets.extend(s.buckets);
        }
        assert!(datagrams > 10, "{datagrams} datagrams");
        assert_eq!(entries, usize::from(members) + 1);
        buckets.sort_unstable();
        assert_eq!(buckets, (0..64).collect::<Vec<u32>>());
    }
}
