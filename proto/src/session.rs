//! The wire session: request ids, reply correlation, deadlines, order per peer.
//!
//! A [`Session`] is a pure state machine (sans-IO): it never reads a clock, touches a
//! socket or spawns anything. A driver feeds it inputs with the current time and drains
//! its outputs:
//!
//! 1. inputs: [`Session::tell`], [`Session::ask`], [`Session::reply`] (commands from
//!    the application), [`Session::handle_frame`] (bytes from a peer),
//!    [`Session::handle_timeout`] and [`Session::peer_lost`];
//! 2. outputs, drained in this order after every input: [`Session::poll_transmit`]
//!    (frames to send, in order), [`Session::poll_event`] (what the application must
//!    see), then [`Session::poll_timeout`] (when to call `handle_timeout` next).
//!
//! Time is a plain count of nanoseconds on the driver's clock, so the same session runs
//! on real time, on the simulator's virtual time, and under a fuzzer.
//!
//! # Guarantees
//!
//! - Frames to one peer leave in the order they were produced.
//! - Every ask ends exactly once: with the peer's reply or error, with
//!   [`Failure::Timeout`] at its deadline, or with [`Failure::PeerLost`].
//! - A reply that matches no outstanding ask (late, duplicated, or forged) is dropped
//!   and counted in [`SessionStats::unmatched_replies`]; a frame that fails to decode is
//!   dropped and counted in [`SessionStats::malformed`]. Neither panics.
//! - **Streamed replies** ([`Session::ask_stream`]; see [Streams](self#streams)): items
//!   reach the caller as [`Event::StreamItem`]s in the order produced, each once, and
//!   never more than the credit granted; every stream ends with exactly one
//!   [`Event::StreamEnd`] unless cancelled here.
//! - A refused frame still ends what it names, as far as its wire format can be read
//!   without decoding it (at any size): a refused ask is answered with an error (its
//!   `ErrorCode` says why: `DecodeFailed`, `TooLarge` or `UnsupportedVersion`), and a
//!   refused answer to an outstanding ask ends that ask with [`Failure::Remote`], so an
//!   ask without a deadline cannot wait forever for an answer that was refused.
//!
//! # Streams
//!
//! A caller opens a stream with [`Session::ask_stream`] (an ask whose `credit` is the
//! initial window), grants more with [`Session::grant`] and stops it with
//! [`Session::cancel_stream`]. The producer sees a [`Request`] with a nonzero
//! [`Request::credit`], sends items with [`Session::stream_item`] (refused without
//! credit) and ends with [`Session::stream_end`]; it learns of grants and cancels
//! through [`Event::Credit`] and [`Event::Cancelled`]. Items carry sequence numbers: the
//! caller delivers them in order, drops repeats and holds early ones (within the
//! credit) until the missing ones arrive.
//!
//! # Examples
//!
//! ```
//! use tern_proto::session::{Event, Outgoing, Session};
//! use tern_proto::v1::ErrorCode;
//!
//! let mut a = Session::new("a");
//! let mut b = Session::new("b");
//! let out = Outgoing::new("worker", "demo.Square", "application/json", b"7".to_vec());
//! let id = a.ask(0, "b", out, Some(1_000_000_000));
//! let frame = a.poll_transmit().unwrap();
//! b.handle_frame(10, "a", &frame.envelope, frame.payload);
//! let Some(Event::Request(req)) = b.poll_event() else { panic!() };
//! b.reply(20, &req, Ok((b"49".to_vec(), "application/json".into())));
//! let back = b.poll_transmit().unwrap();
//! a.handle_frame(30, "b", &back.envelope, back.payload);
//! match a.poll_event() {
//!     Some(Event::Reply { id: got, result: Ok(reply) }) => {
//!         assert_eq!((got, reply.payload.as_slice()), (id, &b"49"[..]));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! # let _ = ErrorCode::Timeout;
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::envelope::{PROTOCOL_VERSION, decode_envelope, encode_envelope, scan_ids};
use crate::error::DecodeError;
use crate::limits::Limits;
use crate::v1::{ComponentRef, Envelope, ErrorCode, ErrorInfo, Kind};

mod fence;
mod ids;
mod stream;
mod types;

pub use stream::StreamSendError;
pub use types::{Event, Failure, Outgoing, Reply, Request, SessionStats, Transmit};

/// Nanoseconds on the driver's clock.
pub type Nanos = u64;

/// Names a peer node (its node name); the driver maps it to an address.
pub type PeerId = String;

#[derive(Debug)]
struct Outstanding {
    peer: PeerId,
    deadline: Option<Nanos>,
}

/// The per-node wire protocol state; see the [module docs](self).
#[derive(Debug)]
pub struct Session {
    node: String,
    /// This node's generation; requests addressed to another one are refused (see
    /// `fence.rs`).
    generation: u64,
    /// The generation each peer is believed to run, stamped on requests to it.
    peer_generations: BTreeMap<PeerId, u64>,
    limits: Limits,
    /// Message ids: a keyed permutation of a counter (`ids.rs`).
    ids: ids::Ids,
    outstanding: BTreeMap<u64, Outstanding>,
    deadlines: BTreeSet<(Nanos, u64)>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: SessionStats,
    streams: stream::Streams,
}

fn millis_left(deadline: Option<Nanos>, now: Nanos) -> u32 {
    deadline.map_or(0, |d| {
        let ms = d.saturating_sub(now).div_ceil(1_000_000).max(1);
        u32::try_from(ms).unwrap_or(u32::MAX)
    })
}

impl Session {
    /// A session for the node called `node`, with default [`Limits`].
    pub fn new(node: impl Into<String>) -> Self {
        Self::with_limits(node, Limits::default())
    }

    /// A session with explicit decoding limits.
    pub fn with_limits(node: impl Into<String>, limits: Limits) -> Self {
        Self {
            node: node.into(),
            generation: 0,
            peer_generations: BTreeMap::new(),
            limits,
            ids: ids::Ids::new([0; 16]),
            outstanding: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SessionStats::default(),
            streams: stream::Streams::default(),
        }
    }

    /// Counters of dropped and refused input.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Asks still waiting for an answer.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Keys the permutation that makes message ids; call it before the first message.
    ///
    /// Ids are a counter enciphered under this key (Speck64/128): unique among the
    /// 2^64 messages a session can send whatever the key, never 0, and, under a secret
    /// key, not predictable from the ids a peer has seen. A session that is never
    /// given a key uses the all-zero one: its ids are distinct but anyone can compute
    /// them. Replies are matched to the peer an ask went to *and* its id, so a guessed
    /// id is refused anyway; the key makes guessing it hopeless too.
    ///
    /// ```
    /// use tern_proto::session::{Outgoing, Session};
    ///
    /// let out = || Outgoing::new("c", "t", "application/json", Vec::new());
    /// let mut a = Session::new("a");
    /// a.set_id_key([9; 16]);
    /// let (first, second) = (a.tell(0, "b", out()), a.tell(0, "b", out()));
    /// assert_ne!(first, second);
    /// assert_ne!(second, first.wrapping_add(1)); // not a counter
    /// let mut b = Session::new("b");
    /// b.set_id_key([9; 16]);
    /// assert_eq!(b.tell(0, "a", out()), first); // the key decides the sequence
    /// ```
    pub fn set_id_key(&mut self, key: [u8; 16]) {
        self.ids = ids::Ids::new(key);
    }

    fn take_id(&mut self) -> u64 {
        self.ids.next()
    }

    fn push(&mut self, peer: &str, env: &Envelope, payload: Vec<u8>) {
        self.transmits.push_back(Transmit {
            peer: peer.to_owned(),
            envelope: encode_envelope(env),
            payload,
        });
    }

    /// The envelope of a request; takes `out`'s names rather than copying them (only
    /// its payload and generation are read after).
    fn envelope(&self, id: u64, kind: Kind, out: &mut Outgoing, peer: &str) -> Envelope {
        let generation = out.generation.unwrap_or_else(|| self.peer_generation(peer));
        Envelope {
            version: PROTOCOL_VERSION,
            message_id: id,
            kind: kind.into(),
            source: Some(ComponentRef {
                node: self.node.clone(),
                name: String::new(),
                generation: self.generation,
            }),
            destination: Some(ComponentRef {
                node: peer.to_owned(),
                name: std::mem::take(&mut out.component),
                generation,
            }),
            message_type: std::mem::take(&mut out.message_type),
            content_type: std::mem::take(&mut out.content_type),
            flow: std::mem::take(&mut out.flow),
            horizon: out.horizon,
            trace: out.trace.take(),
            ..Envelope::default()
        }
    }

    /// Queues a one-way message to `peer`; returns its message id.
    pub fn tell(&mut self, now: Nanos, peer: &str, mut out: Outgoing) -> u64 {
        let _ = now;
        let id = self.take_id();
        let env = self.envelope(id, Kind::Tell, &mut out, peer);
        self.push(peer, &env, out.payload);
        id
    }

    /// Queues a request to `peer`; its outcome arrives as [`Event::Reply`] with the
    /// returned id, by `now + timeout` if a timeout is given.
    pub fn ask(
        &mut self,
        now: Nanos,
        peer: &str,
        mut out: Outgoing,
        timeout: Option<Nanos>,
    ) -> u64 {
        let id = self.take_id();
        let deadline = timeout.map(|t| now.saturating_add(t));
        let mut env = self.envelope(id, Kind::Ask, &mut out, peer);
        env.timeout_ms = millis_left(deadline, now);
        self.push(peer, &env, out.payload);
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        self.outstanding.insert(
            id,
            Outstanding {
                peer: peer.to_owned(),
                deadline,
            },
        );
        id
    }

    /// Answers a request that expects a reply: a payload with its content type, or an
    /// error. Answering a tell does nothing.
    pub fn reply(
        &mut self,
        now: Nanos,
        req: &Request,
        result: Result<(Vec<u8>, String), (ErrorCode, String)>,
    ) {
        if req.expects_reply {
            let (name, destination) = (req.component.clone(), req.source.clone());
            self.answer_to(now, req.peer.clone(), req, name, destination, result);
        }
    }

    /// As [`Session::reply`], taking the request: its names move into the answer
    /// instead of being copied.
    pub fn reply_owned(
        &mut self,
        now: Nanos,
        mut req: Request,
        result: Result<(Vec<u8>, String), (ErrorCode, String)>,
    ) {
        if req.expects_reply {
            let name = std::mem::take(&mut req.component);
            let destination = req.source.take();
            let peer = std::mem::take(&mut req.peer);
            self.answer_to(now, peer, &req, name, destination, result);
        }
    }

    fn answer_to(
        &mut self,
        now: Nanos,
        peer: PeerId,
        req: &Request,
        name: String,
        destination: Option<ComponentRef>,
        result: Result<(Vec<u8>, String), (ErrorCode, String)>,
    ) {
        let _ = now;
        if req.credit > 0 {
            self.streams.inbound.remove(&(peer.clone(), req.message_id));
        }
        let id = self.take_id();
        let mut env = Envelope {
            version: PROTOCOL_VERSION,
            message_id: id,
            correlation_id: req.message_id,
            source: Some(ComponentRef {
                node: self.node.clone(),
                name,
                generation: 0,
            }),
            destination,
            ..Envelope::default()
        };
        let payload = match result {
            Ok((payload, content_type)) => {
                env.kind = Kind::Reply.into();
                env.content_type = content_type;
                payload
            }
            Err((code, detail)) => {
                env.kind = Kind::Error.into();
                env.error = Some(ErrorInfo {
                    code: code.into(),
                    detail,
                });
                Vec::new()
            }
        };
        self.transmits.push_back(Transmit {
            peer,
            envelope: encode_envelope(&env),
            payload,
        });
    }

    /// Takes in one frame pair from `peer`.
    pub fn handle_frame(&mut self, now: Nanos, peer: &str, envelope: &[u8], payload: Vec<u8>) {
        let env = match decode_envelope(envelope, &self.limits) {
            Ok(env) => env,
            Err(e) => {
                self.refuse(peer, envelope, &e);
                return;
            }
        };
        match Kind::try_from(env.kind) {
            Ok(k @ (Kind::Tell | Kind::Ask)) => {
                let timeout = (env.timeout_ms > 0).then(|| u64::from(env.timeout_ms) * 1_000_000);
                let credit = if k == Kind::Ask { env.credit } else { 0 };
                let addressed = env.destination.as_ref().map_or(0, |d| d.generation);
                if addressed != 0 && addressed != self.generation {
                    self.fence(peer, k, env.message_id, addressed);
                    return;
                }
                let component = env.destination.map(|d| d.name).unwrap_or_default();
                if credit > 0 {
                    if self.is_producing(peer, env.message_id) {
                        // A repeated stream request: the stream is already produced.
                        self.stats.unmatched_stream_frames += 1;
                        return;
                    }
                    self.open_inbound(peer, env.message_id, credit, &component);
                }
                self.events.push_back(Event::Request(Request {
                    peer: peer.to_owned(),
                    message_id: env.message_id,
                    expects_reply: k == Kind::Ask,
                    source: env.source,
                    component,
                    message_type: env.message_type,
                    content_type: env.content_type,
                    payload,
                    deadline: timeout.map(|t| now.saturating_add(t)),
                    credit,
                    flow: env.flow,
                    horizon: env.horizon,
                    trace: env.trace.map(Box::new),
                }));
            }
            Ok(Kind::Reply) if self.streams.outbound.contains_key(&env.correlation_id) => {
                let failure = Failure::Remote {
                    code: ErrorCode::Unspecified,
                    detail: "a single reply answered a stream request".to_owned(),
                };
                self.end_outbound(peer, env.correlation_id, env.sequence, Err(failure));
            }
            Ok(Kind::Error) if self.streams.outbound.contains_key(&env.correlation_id) => {
                let info = env.error.unwrap_or_default();
                let code = ErrorCode::try_from(info.code).unwrap_or(ErrorCode::Unspecified);
                let failure = Failure::Remote {
                    code,
                    detail: info.detail,
                };
                self.end_outbound(peer, env.correlation_id, env.sequence, Err(failure));
            }
            Ok(Kind::Reply) => {
                let reply = Reply {
                    content_type: env.content_type,
                    payload,
                };
                self.answer(peer, env.correlation_id, Ok(reply));
            }
            Ok(Kind::Error) => {
                let info = env.error.unwrap_or_default();
                let code = ErrorCode::try_from(info.code).unwrap_or(ErrorCode::Unspecified);
                let failure = Failure::Remote {
                    code,
                    detail: info.detail,
                };
                self.answer(peer, env.correlation_id, Err(failure));
            }
            Ok(Kind::StreamItem) => self.on_item(peer, &env, payload),
            Ok(Kind::StreamEnd) => {
                self.end_outbound(peer, env.correlation_id, env.sequence, Ok(()))
            }
            Ok(Kind::Credit) => self.on_credit(peer, env.correlation_id, env.credit),
            Ok(Kind::Cancel) => self.on_cancel(peer, env.correlation_id),
            // The decoder refuses unknown kinds; count one if it ever got here.
            Ok(Kind::Unspecified) | Err(_) => self.stats.malformed += 1,
        }
    }

    /// A frame failed to decode: count it. If its wire format still names what it is
    /// (read without decoding strings, at any size), act on that so no ask waits for an
    /// answer that was refused:
    /// - an ask is answered with an error saying why, so the sender's ask fails fast
    ///   instead of timing out (or never ending, if it has no deadline);
    /// - a reply or error answering one of this session's asks to `peer` ends that ask
    ///   with [`Failure::Remote`] carrying the decode failure.
    ///
    /// Errors, replies and tells are never answered, so two peers cannot loop on each
    /// other's refusals.
    fn refuse(&mut self, peer: &str, raw: &[u8], e: &DecodeError) {
        self.stats.malformed += 1;
        let code = match e {
            DecodeError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::DecodeFailed,
        };
        let Some(ids) = scan_ids(raw) else {
            return;
        };
        match Kind::try_from(ids.kind) {
            Ok(Kind::Ask) if ids.message_id != 0 => {
                let id = self.take_id();
                let answer = Envelope {
                    version: PROTOCOL_VERSION,
                    message_id: id,
                    correlation_id: ids.message_id,
                    kind: Kind::Error.into(),
                    error: Some(ErrorInfo {
                        code: code.into(),
                        detail: e.to_string(),
                    }),
                    ..Envelope::default()
                };
                self.push(peer, &answer, Vec::new());
            }
            Ok(Kind::Reply | Kind::Error | Kind::StreamItem | Kind::StreamEnd)
                if self
                    .streams
                    .outbound
                    .get(&ids.correlation_id)
                    .is_some_and(|o| o.peer == peer) =>
            {
                let failure = Failure::Remote {
                    code,
                    detail: e.to_string(),
                };
                self.end_stream_now(ids.correlation_id, Err(failure));
            }
            Ok(Kind::Reply | Kind::Error)
                if self
                    .outstanding
                    .get(&ids.correlation_id)
                    .is_some_and(|o| o.peer == peer) =>
            {
                let failure = Failure::Remote {
                    code,
                    detail: e.to_string(),
                };
                self.answer(peer, ids.correlation_id, Err(failure));
            }
            _ => {}
        }
    }

    fn answer(&mut self, peer: &str, id: u64, result: Result<Reply, Failure>) {
        // Only the peer the ask went to may answer it.
        match self.outstanding.get(&id) {
            Some(o) if o.peer == peer => {}
            _ => {
                self.stats.unmatched_replies += 1;
                return;
            }
        }
        if let Some(o) = self.outstanding.remove(&id)
            && let Some(d) = o.deadline
        {
            self.deadlines.remove(&(d, id));
        }
        self.events.push_back(Event::Reply { id, result });
    }

    /// Expires every ask whose deadline is at or before `now`, in deadline order.
    pub fn handle_timeout(&mut self, now: Nanos) {
        while let Some(&(d, id)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            if self.streams.outbound.contains_key(&id) {
                self.stats.timeouts += 1;
                self.expire_stream(id);
            } else if self.outstanding.remove(&id).is_some() {
                self.stats.timeouts += 1;
                self.events.push_back(Event::Reply {
                    id,
                    result: Err(Failure::Timeout),
                });
            }
        }
    }

    /// Forgets ask `id` without an event (its caller gave up, or its frame could not be
    /// sent); a reply that still arrives is counted as unmatched. Returns whether the
    /// ask was outstanding.
    pub fn cancel(&mut self, id: u64) -> bool {
        match self.outstanding.remove(&id) {
            Some(o) => {
                if let Some(d) = o.deadline {
                    self.deadlines.remove(&(d, id));
                }
                true
            }
            None => false,
        }
    }

    /// The driver lost `peer` (connection reset, node declared dead): every ask to it
    /// fails with [`Failure::PeerLost`], in id order, then every stream from it ends
    /// with [`Event::StreamEnd`] and [`Failure::PeerLost`], then every stream this
    /// session produces for it is [`Event::Cancelled`], each in id order.
    pub fn peer_lost(&mut self, peer: &str) {
        self.asks_lost(peer);
        self.streams_lost(peer);
    }

    fn asks_lost(&mut self, peer: &str) {
        let lost: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.peer == peer)
            .map(|(&id, _)| id)
            .collect();
        for id in lost {
            if let Some(o) = self.outstanding.remove(&id)
                && let Some(d) = o.deadline
            {
                self.deadlines.remove(&(d, id));
            }
            self.events.push_back(Event::Reply {
                id,
                result: Err(Failure::PeerLost),
            });
        }
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Session::handle_timeout`] next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Nanos> {
        self.deadlines.first().map(|&(d, _)| d)
    }
}
