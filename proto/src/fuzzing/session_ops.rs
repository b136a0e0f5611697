//! The session target: two sessions through a lossy, reordering, forging network,
//! step by step against a model.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use arbitrary::Unstructured;
use prost::Message;

use crate::envelope::scan_ids;
use crate::session::{Event, Failure, Nanos, Reply, Request, Session};
use crate::v1::{Envelope, ErrorCode, Kind};
use crate::{DecodeError, Limits, decode_envelope, encode_envelope};

use super::arb::*;

/// The nodes of the session harness: `a` and `b` run a [`Session`] each; `c` is a node
/// that never answers (frames to it vanish), though frames can be forged from it.
const NODES: [&str; 3] = ["a", "b", "c"];

/// Most operations one input runs.
const MAX_OPS: usize = 512;

mod op;

use op::{Choice, Op};

/// What the harness knows of one ask still waiting.
#[derive(Debug)]
struct AskModel {
    peer: usize,
    deadline: Option<Nanos>,
}

/// One session and the model it is checked against.
#[derive(Debug)]
struct Side {
    session: Session,
    limits: Limits,
    /// Asks not ended yet.
    asks: BTreeMap<u64, AskModel>,
    /// Every ask id handed out, ended or not.
    issued: Vec<u64>,
    /// Requests received (tells and asks), for `Op::Reply`.
    requests: Vec<Request>,
    /// Streams this side produces (a forged ask with credit opens one): (caller, id).
    producing: BTreeSet<(usize, u64)>,
    /// Every message id this side has sent: ids are never 0 and never repeat (they
    /// are a keyed permutation of a counter, so not in any order).
    sent_ids: BTreeSet<u64>,
    /// The latest time `handle_timeout` ran.
    handled: Option<Nanos>,
    /// `Failure::Timeout` events seen.
    timeouts: u64,
    /// Stats expected after the current step.
    malformed: u64,
    unmatched: u64,
    unmatched_streams: u64,
    fenced: u64,
}

/// A frame on the simulated network, from node `from` to side `to`.
#[derive(Debug, Clone)]
struct Frame {
    from: usize,
    to: usize,
    envelope: Vec<u8>,
    payload: Vec<u8>,
}

/// Two sessions, the network between them, and the clock.
#[derive(Debug)]
struct World {
    sides: [Side; 2],
    now: Nanos,
    wire: VecDeque<Frame>,
    /// Whether a frame was lost or damaged: then an answer may never come.
    lossy: bool,
}

/// Runs two [`Session`]s (nodes `a` and `b`, with a silent node `c` beside them)
/// through a sequence of operations decoded from `data`: asks, tells and replies from
/// the applications; delivery, loss, duplication, reordering and corruption of frames
/// on the network; time passing and timeouts firing; lost peers; cancels; raw and
/// forged frames.
///
/// After every operation each session's outputs are compared with a model: the exact
/// events and frames it must produce and its counters. In particular every ask ends
/// exactly once (a reply, an error, [`Failure::Timeout`] at or after its deadline, or
/// [`Failure::PeerLost`]) unless cancelled; [`Session::outstanding`] is the number of
/// asks not ended; [`Session::poll_timeout`] is the earliest deadline among them and is
/// never earlier than a time already handled; frames leave in the order they were made.
/// At the end, when no frame was lost or damaged, every ask to a live peer has been
/// answered once all frames are delivered and all requests answered.
///
/// With `TERN_FUZZ_TRACE` set in the environment, each operation is printed to stderr
/// before it runs, to read a crashing input.
pub fn session_ops(data: &[u8]) {
    let trace = std::env::var_os("TERN_FUZZ_TRACE").is_some();
    let mut u = Unstructured::new(data);
    let Ok(limits_b) = arb_limits(&mut u) else {
        return;
    };
    let mut world = World {
        sides: [
            Side::new(NODES[0], Limits::default()),
            Side::new(NODES[1], limits_b),
        ],
        now: 0,
        wire: VecDeque::new(),
        lossy: false,
    };
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u, &world) else {
            break;
        };
        if trace {
            eprintln!("t={} {op:?}", world.now);
        }
        world.apply(op);
        world.check();
    }
    world.settle();
}

impl Side {
    fn new(node: &str, limits: Limits) -> Self {
        Self {
            session: Session::with_limits(node, limits),
            limits,
            asks: BTreeMap::new(),
            issued: Vec::new(),
            requests: Vec::new(),
            producing: BTreeSet::new(),
            sent_ids: BTreeSet::new(),
            handled: None,
            timeouts: 0,
            malformed: 0,
            unmatched: 0,
            unmatched_streams: 0,
            fenced: 0,
        }
    }

    fn earliest_deadline(&self) -> Option<Nanos> {
        self.asks.values().filter_map(|a| a.deadline).min()
    }

    /// Drains the events, which must be exactly `expected`, and ends the asks they
    /// answer in the model.
    fn expect_events(&mut self, expected: &[Event]) {
        let mut got = Vec::new();
        while let Some(e) = self.session.poll_event() {
            got.push(e);
        }
        assert_eq!(got, expected, "events");
        for e in expected {
            if let Event::Reply { id, result } = e {
                assert!(self.asks.remove(id).is_some(), "ask {id} ended twice");
                if result == &Err(Failure::Timeout) {
                    self.timeouts += 1;
                }
            }
        }
    }
}

/// The envelope a session's own encoder produced; it always parses.
fn parse_own(bytes: &[u8]) -> Envelope {
    match Envelope::decode(bytes) {
        Ok(env) => env,
        Err(e) => panic!("a session encoded an unparsable envelope: {e}"),
    }
}

fn node_index(name: &str) -> usize {
    match NODES.iter().position(|n| *n == name) {
        Some(i) => i,
        None => panic!("a frame to unknown node {name:?}"),
    }
}

impl World {
    /// Drains side `i`'s frames: each has a fresh id; frames to `a` or `b` go
    /// on the wire.
    fn drain(&mut self, i: usize) -> Vec<Envelope> {
        let mut sent = Vec::new();
        while let Some(t) = self.sides[i].session.poll_transmit() {
            let env = parse_own(&t.envelope);
            let side = &mut self.sides[i];
            assert!(
                env.message_id != 0 && side.sent_ids.insert(env.message_id),
                "message id {} is 0 or was sent before",
                env.message_id
            );
            let to = node_index(&t.peer);
            if to < 2 {
                self.wire.push_back(Frame {
                    from: i,
                    to,
                    envelope: t.envelope,
                    payload: t.payload.clone(),
                });
            }
            sent.push(env);
        }
        sent
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Ask {
                side,
                peer,
                out,
                timeout,
            } => {
                let id = self.sides[side]
                    .session
                    .ask(now, NODES[peer], out.clone(), timeout);
                let sent = self.drain(side);
                let deadline = timeout.map(|t| now.saturating_add(t));
                let s = &mut self.sides[side];
                assert!(!s.issued.contains(&id), "ask id {id} reused");
                assert_eq!(sent.len(), 1);
                let env = &sent[0];
                assert_eq!(
                    (env.kind, env.message_id, env.correlation_id),
                    (Kind::Ask.into(), id, 0)
                );
                let dest = env.destination.clone().unwrap_or_default();
                assert_eq!(
                    (dest.node.as_str(), dest.name.as_str()),
                    (NODES[peer], out.component.as_str())
                );
                assert_eq!(env.message_type, out.message_type);
                match deadline {
                    // A deadline is never sent as "none".
                    Some(d) => {
                        let left = d - now;
                        let ms = u64::from(env.timeout_ms);
                        assert!(ms >= 1, "deadline in {left} ns sent as no deadline");
                        assert!(
                            ms == u64::from(u32::MAX) || ms == left.div_ceil(1_000_000).max(1),
                            "{left} ns sent as {ms} ms"
                        );
                    }
                    None => assert_eq!(env.timeout_ms, 0),
                }
                s.issued.push(id);
                s.asks.insert(id, AskModel { peer, deadline });
                s.expect_events(&[]);
            }
            Op::Tell { side, peer, out } => {
                let id = self.sides[side].session.tell(now, NODES[peer], out.clone());
                let sent = self.drain(side);
                assert_eq!(sent.len(), 1);
                assert_eq!((sent[0].kind, sent[0].message_id), (Kind::Tell.into(), id));
                self.sides[side].expect_events(&[]);
            }
            Op::Reply {
                side,
                pick,
                result,
                keep,
            } => {
                let s = &mut self.sides[side];
                if s.requests.is_empty() {
                    return;
                }
                let at = pick % s.requests.len();
                let req = if keep {
                    s.requests[at].clone()
                } else {
                    s.requests.swap_remove(at)
                };
                s.session.reply(now, &req, result.clone());
                if req.credit > 0 {
                    s.producing.remove(&(node_index(&req.peer), req.message_id));
                }
                let sent = self.drain(side);
                if !req.expects_reply {
                    assert!(sent.is_empty(), "a tell was answered");
                } else {
                    assert_eq!(sent.len(), 1);
                    let env = &sent[0];
                    assert_eq!(env.correlation_id, req.message_id);
                    let want = if result.is_ok() {
                        Kind::Reply
                    } else {
                        Kind::Error
                    };
                    assert_eq!(env.kind, i32::from(want));
                }
                self.sides[side].expect_events(&[]);
            }
            Op::Deliver { n } => {
                for _ in 0..n {
                    let Some(frame) = self.wire.pop_front() else {
                        break;
                    };
                    self.deliver(frame);
                }
            }
            Op::Drop => {
                if self.wire.pop_front().is_some() {
                    self.lossy = true;
                }
            }
            Op::Duplicate => {
                if let Some(f) = self.wire.front().cloned() {
                    self.wire.push_front(f);
                }
            }
            Op::Swap => {
                if self.wire.len() >= 2 {
                    self.wire.swap(0, 1);
                }
            }
            Op::Mutate { pos, xor } => {
                if let Some(f) = self.wire.front_mut() {
                    if f.envelope.is_empty() {
                        f.envelope.push(xor);
                    } else {
                        let at = pos % f.envelope.len();
                        f.envelope[at] ^= xor;
                    }
                    self.lossy = true;
                }
            }
            Op::Advance { delta, fire } => {
                self.now = self.now.saturating_add(delta);
                for (side, go) in fire.into_iter().enumerate() {
                    if go {
                        self.fire(side);
                    }
                }
            }
            Op::PeerLost { side, peer } => {
                let s = &mut self.sides[side];
                let mut expected: Vec<Event> = s
                    .asks
                    .iter()
                    .filter(|(_, a)| a.peer == peer)
                    .map(|(&id, _)| Event::Reply {
                        id,
                        result: Err(Failure::PeerLost),
                    })
                    .collect();
                let lost: Vec<(usize, u64)> = s
                    .producing
                    .iter()
                    .filter(|(p, _)| *p == peer)
                    .copied()
                    .collect();
                for (p, id) in lost {
                    s.producing.remove(&(p, id));
                    expected.push(Event::Cancelled {
                        peer: NODES[p].to_owned(),
                        id,
                    });
                }
                s.session.peer_lost(NODES[peer]);
                assert!(self.drain(side).is_empty());
                self.sides[side].expect_events(&expected);
            }
            Op::Cancel { side, id } => {
                let s = &mut self.sides[side];
                let id = match id {
                    Choice::Issued(_) if s.issued.is_empty() => return,
                    Choice::Issued(pick) => s.issued[pick % s.issued.len()],
                    Choice::Any(id) => id,
                };
                let was = s.asks.remove(&id).is_some();
                assert_eq!(s.session.cancel(id), was, "cancel({id})");
                assert!(self.drain(side).is_empty());
                self.sides[side].expect_events(&[]);
            }
            Op::Inject {
                side,
                from,
                envelope,
                payload,
            } => self.deliver(Frame {
                from,
                to: side,
                envelope,
                payload,
            }),
            Op::Forge {
                side,
                from,
                envelope,
            } => self.deliver(Frame {
                from,
                to: side,
                envelope: encode_envelope(&envelope),
                payload: Vec::new(),
            }),
        }
    }

    /// `handle_timeout(now)` on `side`: exactly the asks due end, in deadline order.
    fn fire(&mut self, side: usize) {
        let now = self.now;
        let s = &mut self.sides[side];
        let mut due: Vec<(Nanos, u64)> = s
            .asks
            .iter()
            .filter_map(|(&id, a)| a.deadline.filter(|&d| d <= now).map(|d| (d, id)))
            .collect();
        due.sort_unstable();
        let expected: Vec<Event> = due
            .into_iter()
            .map(|(_, id)| Event::Reply {
                id,
                result: Err(Failure::Timeout),
            })
            .collect();
        s.session.handle_timeout(now);
        assert!(self.drain(side).is_empty());
        let s = &mut self.sides[side];
        s.expect_events(&expected);
        s.handled = Some(now);
        if let Some(next) = s.session.poll_timeout() {
            assert!(
                next > now,
                "deadline {next} still pending after handling {now}"
            );
        }
    }

    /// Hands `frame` to its side and checks the outcome against what the envelope
    /// says.
    fn deliver(&mut self, frame: Frame) {
        let now = self.now;
        let Frame {
            from,
            to,
            envelope,
            payload,
        } = frame;
        let s = &mut self.sides[to];
        let mut expected = Vec::new();
        // What an undecodable ask is answered with, if it is answered.
        let mut refusal = None;
        match decode_envelope(&envelope, &s.limits) {
            Err(e) => {
                // Refused; what the frame names still ends: an ask is answered, an
                // answer to an outstanding ask ends it.
                s.malformed += 1;
                let code = match e {
                    DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
                    DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
                    _ => ErrorCode::DecodeFailed,
                };
                let ids = scan_ids(&envelope);
                if let Ok(raw) = Envelope::decode(envelope.as_slice()) {
                    assert_eq!(
                        ids.map(|i| (i.kind, i.message_id)),
                        Some((raw.kind, raw.message_id))
                    );
                }
                match ids.map(|i| (Kind::try_from(i.kind), i)) {
                    Some((Ok(Kind::Ask), i)) if i.message_id != 0 => {
                        refusal = Some((i.message_id, code));
                    }
                    Some((Ok(Kind::Reply | Kind::Error), i))
                        if s.asks
                            .get(&i.correlation_id)
                            .is_some_and(|a| a.peer == from) =>
                    {
                        expected.push(Event::Reply {
                            id: i.correlation_id,
                            result: Err(Failure::Remote {
                                code,
                                detail: e.to_string(),
                            }),
                        });
                    }
                    _ => {}
                }
            }
            Ok(env) => match Kind::try_from(env.kind) {
                // Addressed to a generation the receiver (generation 0) does not run:
                // refused, an ask answered with `Stopped`.
                Ok(k @ (Kind::Tell | Kind::Ask))
                    if env.destination.as_ref().is_some_and(|d| d.generation != 0) =>
                {
                    s.fenced += 1;
                    if k == Kind::Ask && env.message_id != 0 {
                        refusal = Some((env.message_id, ErrorCode::Stopped));
                    }
                }
                Ok(k @ (Kind::Tell | Kind::Ask)) => {
                    let deadline = (env.timeout_ms > 0)
                        .then(|| now.saturating_add(u64::from(env.timeout_ms) * 1_000_000));
                    let credit = if k == Kind::Ask { env.credit } else { 0 };
                    if credit > 0 && !s.producing.insert((from, env.message_id)) {
                        // A repeat of a stream request still being produced: dropped.
                        s.unmatched_streams += 1;
                        s.session.handle_frame(now, NODES[from], &envelope, payload);
                        assert!(self.drain(to).is_empty());
                        self.sides[to].expect_events(&[]);
                        return;
                    }
                    let req = Request {
                        peer: NODES[from].to_owned(),
                        message_id: env.message_id,
                        expects_reply: k == Kind::Ask,
                        source: env.source,
                        component: env.destination.map(|d| d.name).unwrap_or_default(),
                        message_type: env.message_type,
                        content_type: env.content_type,
                        payload: payload.clone(),
                        deadline,
                        credit,
                        flow: env.flow,
                        horizon: env.horizon,
                        trace: env.trace.map(Box::new),
                    };
                    s.requests.push(req.clone());
                    expected.push(Event::Request(req));
                }
                Ok(k @ (Kind::Reply | Kind::Error)) => {
                    let id = env.correlation_id;
                    if s.asks.get(&id).is_some_and(|a| a.peer == from) {
                        let result = if k == Kind::Reply {
                            Ok(Reply {
                                content_type: env.content_type,
                                payload: payload.clone(),
                            })
                        } else {
                            let info = env.error.unwrap_or_default();
                            Err(Failure::Remote {
                                code: ErrorCode::try_from(info.code)
                                    .unwrap_or(ErrorCode::Unspecified),
                                detail: info.detail,
                            })
                        };
                        expected.push(Event::Reply { id, result });
                    } else {
                        s.unmatched += 1;
                    }
                }
                // This harness never asks for a stream, so items and ends match none.
                Ok(Kind::StreamItem | Kind::StreamEnd) => s.unmatched_streams += 1,
                Ok(Kind::Credit) if s.producing.contains(&(from, env.correlation_id)) => {
                    expected.push(Event::Credit {
                        peer: NODES[from].to_owned(),
                        id: env.correlation_id,
                        credit: env.credit,
                    });
                }
                Ok(Kind::Cancel) if s.producing.remove(&(from, env.correlation_id)) => {
                    expected.push(Event::Cancelled {
                        peer: NODES[from].to_owned(),
                        id: env.correlation_id,
                    });
                }
                Ok(Kind::Credit | Kind::Cancel) => s.unmatched_streams += 1,
                _ => s.malformed += 1,
            },
        }
        s.session.handle_frame(now, NODES[from], &envelope, payload);
        let sent = self.drain(to);
        match refusal {
            None => assert!(sent.is_empty(), "unexpected frames {sent:?}"),
            Some((id, code)) => {
                assert_eq!(sent.len(), 1, "refusal of ask {id}");
                let env = &sent[0];
                assert_eq!((env.kind, env.correlation_id), (i32::from(Kind::Error), id));
                assert_eq!(env.error.as_ref().map(|e| e.code), Some(code.into()));
            }
        }
        self.sides[to].expect_events(&expected);
    }

    /// The invariants that hold between any two steps.
    fn check(&self) {
        for s in &self.sides {
            assert_eq!(s.session.outstanding(), s.asks.len(), "outstanding()");
            let next = s.session.poll_timeout();
            assert_eq!(next, s.earliest_deadline(), "poll_timeout()");
            if let (Some(next), Some(handled)) = (next, s.handled) {
                assert!(
                    next >= handled,
                    "poll_timeout {next} before handled {handled}"
                );
            }
            let stats = s.session.stats();
            assert_eq!(stats.timeouts, s.timeouts, "stats.timeouts");
            assert_eq!(stats.malformed, s.malformed, "stats.malformed");
            assert_eq!(stats.fenced, s.fenced, "stats.fenced");
            assert_eq!(
                stats.unmatched_replies, s.unmatched,
                "stats.unmatched_replies"
            );
            assert_eq!(
                stats.unmatched_stream_frames, s.unmatched_streams,
                "stats.unmatched_stream_frames"
            );
            assert_eq!(s.session.streams_producing(), s.producing.len());
        }
    }

    /// Delivers everything and answers every request until the network is quiet; then,
    /// unless frames were lost or damaged, only asks to the silent node may still wait.
    /// Finally every peer is lost, which must end every ask.
    fn settle(&mut self) {
        for _ in 0..16 {
            if self.wire.is_empty() && self.sides.iter().all(|s| s.requests.is_empty()) {
                break;
            }
            while let Some(frame) = self.wire.pop_front() {
                self.deliver(frame);
                self.check();
            }
            for side in 0..2 {
                while !self.sides[side].requests.is_empty() {
                    self.apply(Op::Reply {
                        side,
                        pick: 0,
                        result: Ok((Vec::new(), "application/octet-stream".to_owned())),
                        keep: false,
                    });
                    self.check();
                }
            }
        }
        assert!(self.wire.is_empty(), "the network did not settle");
        if !self.lossy {
            for s in &self.sides {
                let waiting: Vec<_> = s.asks.iter().filter(|(_, a)| a.peer != 2).collect();
                assert!(waiting.is_empty(), "asks never answered: {waiting:?}");
            }
        }
        for side in 0..2 {
            for peer in 0..3 {
                self.apply(Op::PeerLost { side, peer });
            }
        }
        self.check();
        for s in &self.sides {
            assert_eq!(s.session.outstanding(), 0);
            assert_eq!(s.session.poll_timeout(), None);
        }
    }
}
