//! Entry points for the fuzz targets (`fuzz/fuzz_targets/gossip_*.rs`) and for the
//! corpus replay test that runs them on stable (`tests/fuzz_corpus.rs`).
//!
//! Each function feeds arbitrary bytes to a fresh [`Membership`] that already knows a
//! few members, runs its timers, and checks what must hold whatever came in: it does
//! not panic, every datagram it sends fits the MTU and opens with the cluster's key,
//! and its queues stay within their bounds.

use std::net::SocketAddr;

use prost::Message;
use tern_proto::v1::gossip::{
    Ack, Digest, Fact, MemberState, Packet, Ping, PingReq, Query, Summaries, Update, packet::Body,
};

use crate::config::GossipConfig;
use crate::membership::{Identity, Membership};
use crate::seal::{Key, Keyring, Sealer};

const CLUSTER: &str = "fuzz";

fn ring() -> Keyring {
    Keyring::new(1, Key::from_bytes([0x42; 32]))
}

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

/// A node "m0" that knows "m1" to "m3".
fn subject() -> Membership {
    let me = Identity {
        name: "m0".into(),
        generation: 1,
        addr: addr(1),
    };
    let mut m = match Membership::new(GossipConfig::new(CLUSTER), ring(), me, 7) {
        Ok(m) => m,
        Err(e) => panic!("the fuzz configuration is valid: {e}"),
    };
    m.join(&[addr(2)], 0);
    for i in 1..4u8 {
        let u = sample_update(&format!("m{i}"), i + 1, MemberState::Alive);
        m.apply_update(0, &u, false);
    }
    m
}

fn check(m: &mut Membership) {
    let sealer = Sealer::new(CLUSTER, ring(), "checker", 9);
    for t in [1_000_000_000, 3_000_000_000, 60_000_000_000] {
        m.handle_timer(t);
    }
    while let Some((_, d)) = m.poll_transmit() {
        assert!(
            d.len() <= m.cfg.mtu,
            "datagram of {} bytes over the MTU",
            d.len()
        );
        let plain = sealer
            .open(&d)
            .expect("every datagram opens with the cluster key");
        Packet::decode(plain.as_slice()).expect("every datagram decodes");
    }
    let (a, b) = m.queue_depths();
    assert!(a <= m.cfg.max_queue && b <= m.cfg.max_queue);
    while m.poll_event().is_some() {}
}

/// Raw bytes as a datagram: the header, cluster and seal checks must refuse it (or,
/// for the rare input that is a real sealed datagram, handle it).
pub fn datagram(data: &[u8]) {
    let mut m = subject();
    m.handle_datagram(1, addr(2), data);
    check(&mut m);
}

/// Bytes as the plaintext of an authentic datagram: sealed with the cluster's key and
/// handed over, so the protobuf decoding and every handler behind it are reached.
/// Inputs are split on the byte sequence `0xff 0x00 0xff` into several datagrams.
pub fn packet(data: &[u8]) {
    let mut m = subject();
    let mut sealer = Sealer::new(CLUSTER, ring(), "m1", 2);
    let mut now = 1;
    for part in split(data) {
        now += 100_000_000;
        let sealed = sealer.seal(part);
        m.handle_datagram(now, addr(2), &sealed);
        if part.first().is_some_and(|b| b & 1 == 1) {
            m.handle_timer(now);
        }
    }
    check(&mut m);
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0xff, 0x00, 0xff] {
            out.push(&data[start..i]);
            start = i + 3;
            i = start;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

fn sample_update(name: &str, i: u8, state: MemberState) -> Update {
    Update {
        name: name.into(),
        generation: 1,
        incarnation: u64::from(i),
        state: state.into(),
        addr: addr(i).to_string(),
        facts_version: 1,
        from: "m1".into(),
    }
}

/// Plaintexts of one datagram of each kind, for the seed corpus of [`packet`].
#[must_use]
pub fn sample_packets() -> Vec<Vec<u8>> {
    let base = |body| Packet {
        from: "m1".into(),
        generation: 2,
        body,
        updates: vec![
            sample_update("m2", 3, MemberState::Suspect),
            sample_update("m0", 0, MemberState::Dead),
            sample_update("m9", 9, MemberState::Alive),
        ],
        facts: vec![Fact {
            node: "m2".into(),
            generation: 1,
            key: "components".into(),
            value: b"worker\nfront".to_vec(),
            version: 1,
            since: 0,
        }],
    };
    let bodies = vec![
        None,
        Some(Body::Ping(Ping {
            seq: 1,
            target: "m0".into(),
        })),
        Some(Body::Ack(Ack {
            seq: 1,
            target: "m2".into(),
        })),
        Some(Body::PingReq(PingReq {
            seq: 5,
            target: "m3".into(),
            target_addr: addr(4).to_string(),
        })),
        Some(Body::Digest(Digest {
            buckets: vec![7; 64],
            members: 4,
            reply_wanted: true,
            join: true,
        })),
        Some(Body::Summaries(Summaries {
            entries: vec![sample_update("m3", 1, MemberState::Left)],
            buckets: vec![0, 1, 2, 63],
            reply_wanted: true,
        })),
        Some(Body::Query(Query {
            seq: 3,
            first_part: 0,
            padding: Vec::new(),
        })),
    ];
    bodies
        .into_iter()
        .map(|b| base(b).encode_to_vec())
        .collect()
}

/// Sealed datagrams of each kind, for the seed corpus of [`datagram`].
#[must_use]
pub fn sample_datagrams() -> Vec<Vec<u8>> {
    let mut sealer = Sealer::new(CLUSTER, ring(), "m1", 2);
    sample_packets().iter().map(|p| sealer.seal(p)).collect()
}
