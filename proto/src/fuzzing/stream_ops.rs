//! The `stream` fuzz target: streamed replies between two sessions through a network
//! that loses, duplicates and reorders frames, with forged stream frames from a third
//! node.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arbitrary::Unstructured;

use crate::session::{Event, Nanos, Outgoing, Reply, Session, StreamSendError};
use crate::v1::{ComponentRef, Envelope, ErrorCode, Kind};
use crate::{PROTOCOL_VERSION, encode_envelope};

const MAX_OPS: usize = 1_024;

/// A frame in flight: `to_b` says its direction.
#[derive(Debug, Clone)]
struct Wire {
    to_b: bool,
    envelope: Vec<u8>,
    payload: Vec<u8>,
}

/// What the caller (`a`) knows of one stream it opened.
#[derive(Debug, Default)]
struct Caller {
    /// Items delivered, in order.
    got: Vec<Vec<u8>>,
    ended: bool,
    cancelled: bool,
}

/// The model: what `b` produced for each stream (by `a`'s id, matched through the
/// request's message id), what `a` received.
#[derive(Debug, Default)]
struct Model {
    /// a's stream id -> state.
    calls: BTreeMap<u64, Caller>,
    /// b's open producer streams: request message id, with what it sent.
    produced: BTreeMap<u64, Vec<Vec<u8>>>,
    /// b's request message id -> a's stream id (the same number: the ask's message id).
    ended_by_b: BTreeSet<u64>,
}

/// Runs a caller session `a` and a producer session `b` through streamed replies driven
/// by `data`: opening streams with random windows and deadlines, producing items,
/// ending and failing streams, granting credit, cancelling, time passing, peers lost,
/// and a network that delivers, drops, duplicates and swaps frames in both directions,
/// plus stream frames forged by a third node `c`.
///
/// Checked after every step: items of each stream reach `a` exactly as `b` produced
/// them, in order, each once (a prefix of what was produced, whatever the network
/// did); nothing arrives after a stream's end; each stream ends at most once; `b` never
/// sends more items than it was granted ([`Session::stream_item`] refuses); forged
/// frames change nothing; and at the end, losing the peers closes every stream on both
/// sides with no deadline left.
///
/// # Panics
///
/// When one of those promises is broken.
pub fn stream_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut a = Session::new("a");
    let mut b = Session::new("b");
    let mut wire: VecDeque<Wire> = VecDeque::new();
    let mut model = Model::default();
    let mut now: Nanos = 0;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = u.int_in_range(0u8..=13) else {
            break;
        };
        match op {
            0 => {
                let window = u.int_in_range(1u32..=8).unwrap_or(1);
                let timeout = if u.arbitrary().unwrap_or(false) {
                    Some(u.int_in_range(1u64..=50_000_000).unwrap_or(1))
                } else {
                    None
                };
                let out = Outgoing::new("scan", "t.Scan", "application/octet-stream", Vec::new());
                let id = a.ask_stream(now, "b", out, timeout, window);
                assert!(
                    model.calls.insert(id, Caller::default()).is_none(),
                    "id reused"
                );
            }
            1..=3 => {
                // b produces an item for one of its open streams.
                let keys: Vec<u64> = model.produced.keys().copied().collect();
                if let Ok(&id) = u.choose(&keys) {
                    let n = model.produced.get(&id).map_or(0, Vec::len);
                    let payload = (n as u64).to_le_bytes().to_vec();
                    let credit = b.stream_credit("a", id);
                    let item = Reply {
                        content_type: "application/octet-stream".into(),
                        payload: payload.clone(),
                    };
                    match b.stream_item(now, "a", id, item) {
                        Ok(()) => {
                            assert!(credit.is_some_and(|c| c > 0), "item sent without credit");
                            if let Some(p) = model.produced.get_mut(&id) {
                                p.push(payload);
                            }
                        }
                        Err(StreamSendError::NoCredit) => assert_eq!(credit, Some(0)),
                        Err(StreamSendError::Closed) => {
                            assert_eq!(credit, None);
                            model.produced.remove(&id);
                        }
                    }
                }
            }
            4 => {
                let keys: Vec<u64> = model.produced.keys().copied().collect();
                if let Ok(&id) = u.choose(&keys) {
                    let result = if u.arbitrary().unwrap_or(true) {
                        Ok(())
                    } else {
                        Err((ErrorCode::StreamFailed, "failed".to_owned()))
                    };
                    if b.stream_end(now, "a", id, result) {
                        model.ended_by_b.insert(id);
                    }
                    model.produced.remove(&id);
                }
            }
            5 => {
                let keys: Vec<u64> = model.calls.keys().copied().collect();
                if let Ok(&id) = u.choose(&keys) {
                    let n = u.int_in_range(0u32..=4).unwrap_or(1);
                    a.grant(id, n);
                }
            }
            6 => {
                let keys: Vec<u64> = model.calls.keys().copied().collect();
                if let Ok(&id) = u.choose(&keys) {
                    let open = a.cancel_stream(id);
                    let c = model.calls.entry(id).or_default();
                    assert_eq!(open, !c.ended && !c.cancelled, "cancel_stream({id})");
                    c.cancelled = true;
                }
            }
            7 | 8 => {
                let n = u.int_in_range(1usize..=8).unwrap_or(1);
                for _ in 0..n {
                    let Some(w) = wire.pop_front() else { break };
                    deliver(&mut a, &mut b, now, w);
                }
            }
            9 => {
                wire.pop_front();
            }
            10 => {
                if let Some(w) = wire.front().cloned() {
                    wire.push_back(w);
                }
            }
            11 => {
                let len = wire.len();
                if len >= 2 {
                    let i = u.choose_index(len).unwrap_or(0);
                    let j = u.choose_index(len).unwrap_or(0);
                    wire.swap(i, j);
                }
            }
            12 => {
                now = now.saturating_add(u.int_in_range(0u64..=20_000_000).unwrap_or(0));
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            _ => {
                // A stream frame forged by c, for ids that may be open.
                let kind = *u
                    .choose(&[
                        Kind::StreamItem,
                        Kind::StreamEnd,
                        Kind::Credit,
                        Kind::Cancel,
                        Kind::Error,
                    ])
                    .unwrap_or(&Kind::StreamItem);
                let env = Envelope {
                    version: PROTOCOL_VERSION,
                    message_id: u.int_in_range(1u64..=100).unwrap_or(1),
                    correlation_id: u.int_in_range(1u64..=16).unwrap_or(1),
                    kind: kind.into(),
                    source: Some(ComponentRef {
                        node: "c".into(),
                        name: String::new(),
                        generation: 0,
                    }),
                    credit: u.int_in_range(1u32..=4).unwrap_or(1),
                    sequence: u.int_in_range(0u64..=8).unwrap_or(0),
                    error: (kind == Kind::Error).then(Default::default),
                    ..Envelope::default()
                };
                let to_b = u.arbitrary().unwrap_or(false);
                let target = if to_b { &mut b } else { &mut a };
                target.handle_frame(now, "c", &encode_envelope(&env), b"forged".to_vec());
            }
        }
        drain(&mut a, &mut b, &mut wire, &mut model);
    }
    // Deliver what is left, then lose the peers: everything must close.
    while let Some(w) = wire.pop_front() {
        deliver(&mut a, &mut b, now, w);
        drain(&mut a, &mut b, &mut wire, &mut model);
    }
    a.peer_lost("b");
    b.peer_lost("a");
    drain(&mut a, &mut b, &mut wire, &mut model);
    assert_eq!(a.streams_outstanding(), 0);
    assert_eq!(b.streams_producing(), 0);
    assert_eq!(a.poll_timeout(), None);
}

fn deliver(a: &mut Session, b: &mut Session, now: Nanos, w: Wire) {
    if w.to_b {
        b.handle_frame(now, "a", &w.envelope, w.payload);
    } else {
        a.handle_frame(now, "b", &w.envelope, w.payload);
    }
}

/// Moves both sessions' frames to the wire and checks `a`'s events against the model.
fn drain(a: &mut Session, b: &mut Session, wire: &mut VecDeque<Wire>, model: &mut Model) {
    while let Some(t) = a.poll_transmit() {
        assert_eq!(t.peer, "b");
        wire.push_back(Wire {
            to_b: true,
            envelope: t.envelope,
            payload: t.payload,
        });
    }
    while let Some(t) = b.poll_transmit() {
        assert_eq!(t.peer, "a");
        wire.push_back(Wire {
            to_b: false,
            envelope: t.envelope,
            payload: t.payload,
        });
    }
    while let Some(e) = b.poll_event() {
        match e {
            Event::Request(req) => {
                assert!(req.credit > 0, "a only asks for streams");
                if model.calls.contains_key(&req.message_id) {
                    // A duplicated request restarts the producer side from scratch;
                    // its items would repeat sequence numbers, so only the first
                    // request produces.
                    model.produced.entry(req.message_id).or_default();
                }
            }
            Event::Credit { peer, .. } | Event::Cancelled { peer, .. } => {
                assert_eq!(peer, "a", "only a's frames reach b's open streams");
            }
            Event::Reply { .. } | Event::StreamItem { .. } | Event::StreamEnd { .. } => {
                panic!("b asked for nothing: {e:?}")
            }
        }
    }
    // Streams b no longer has open (cancelled, lost) stop producing in the model.
    model
        .produced
        .retain(|id, _| b.stream_credit("a", *id).is_some());
    while let Some(e) = a.poll_event() {
        match e {
            Event::StreamItem { id, item } => {
                let c = model.calls.entry(id).or_default();
                assert!(
                    !c.ended && !c.cancelled,
                    "item after the end of stream {id}"
                );
                c.got.push(item.payload);
            }
            Event::StreamEnd { id, result } => {
                let c = model.calls.entry(id).or_default();
                assert!(!c.ended && !c.cancelled, "stream {id} ended twice");
                c.ended = true;
                if result.is_ok() {
                    assert!(
                        model.ended_by_b.contains(&id),
                        "stream {id} ended Ok but b never ended it"
                    );
                }
            }
            other => panic!("a produces nothing: {other:?}"),
        }
    }
    // Items are exactly what b produced, in order, each once: a prefix. (A duplicated
    // request restarts b's record, so compare against the first items numbered 0..)
    for (id, c) in &model.calls {
        for (i, p) in c.got.iter().enumerate() {
            assert_eq!(
                p.as_slice(),
                (i as u64).to_le_bytes().as_slice(),
                "stream {id}: item {i} is not the {i}th produced"
            );
        }
    }
}
