//! The router under arbitrary input, for the `router` fuzz target and the tests.
//!
//! [`router_ops`] reads a sequence of operations from raw bytes (what libFuzzer
//! generated, a committed corpus file, or a test's pseudo-random bytes) and feeds
//! them to one node's sans-IO router: calls from references (tells, asks, streams,
//! callers giving up), frames from three peers (garbage, directories, replies and
//! errors to its asks, requests for its components, stream frames), connection and
//! membership events, exports coming and going, the driver's choices for each
//! delivery (queued, mailbox full, refused), and time passing the way the driver's
//! single timer would see it. After every step it checks what the router promises,
//! and panics naming the broken promise:
//!
//! - nothing panics, and the timer never asks to be woken in the past (no spin);
//! - memory is bounded: calls waiting for a name never exceed
//!   [`NodeConfig::pending_limit`], held inbound bytes never exceed
//!   [`NodeConfig::held_bytes_limit`], bytes charged to the inbound budget never
//!   exceed [`NodeConfig::inbound_bytes_limit`] nor what is still held or unanswered
//!   (nothing leaks), and the asks on the wire are the callers' live asks, nothing
//!   more;
//! - every ask ends exactly once, and by its deadline (an ask still open has a
//!   deadline in the future); every stream ends at most once, with no item after its
//!   end; frames never go to this node itself;
//! - when time runs past every deadline, every ask has ended; a shutdown leaves
//!   nothing outstanding, waiting or held.
//!
//! It is not meant for production code paths.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use arbitrary::{Result as ArbResult, Unstructured};
use tern_proto::control::{
    DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE, encode_directory,
};
use tern_proto::session::{Nanos, Outgoing, Reply, Request};
use tern_proto::v1::{ComponentRef, Directory, Envelope, ErrorInfo, Kind};
use tern_proto::{PROTOCOL_VERSION, encode_envelope};

use super::config::NodeConfig;
use super::router::{AskSlot, Event, ExportSlot, Reach, Router, Slots, StreamSlot};

mod frames;

const ME: &str = "me";
const PEERS: [&str; 3] = ["p0", "p1", "p2"];
const COMPONENTS: [&str; 3] = ["c0", "c1", "c2"];
const MAX_OPS: usize = 400;
const MS: Nanos = 1_000_000;

/// The limits the run checks against.
fn config() -> NodeConfig {
    NodeConfig::new(ME)
        .peers(["p0"])
        .pending_limit(4)
        .pending_ttl(Duration::from_millis(700))
        .announce_interval(Duration::from_millis(100))
        .default_timeout(Duration::from_secs(2))
        .relink_after(Duration::from_millis(300))
        .held_bytes_limit(600)
        .inbound_bytes_limits(1_000, 500)
}

/// An ask as its caller sees it.
#[derive(Debug, Default)]
struct AskProbe {
    n: usize,
    id: Cell<Option<u64>>,
    abandoned: Cell<bool>,
    done: Cell<bool>,
}

impl AskSlot for Rc<AskProbe> {
    fn sent(&self, id: u64) {
        self.id.set(Some(id));
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.get() || self.done.get()
    }
}

/// A stream as its caller sees it.
#[derive(Debug, Default)]
struct StreamProbe {
    n: usize,
    id: Cell<Option<u64>>,
    abandoned: Cell<bool>,
    ended: Cell<bool>,
}

impl StreamSlot for Rc<StreamProbe> {
    fn opened(&self, id: u64) {
        self.id.set(Some(id));
    }

    fn is_abandoned(&self) -> bool {
        self.abandoned.get()
    }
}

#[derive(Clone, Debug)]
struct ExportProbe(Rc<Cell<bool>>);

impl ExportSlot for ExportProbe {
    fn is_stopped(&self) -> bool {
        self.0.get()
    }
}

struct Probe;

impl Slots for Probe {
    type Ask = Rc<AskProbe>;
    type Stream = Rc<StreamProbe>;
    type Source = usize;
    type Export = ExportProbe;
}

#[derive(Default)]
struct Links(BTreeSet<&'static str>);

impl Reach for Links {
    fn connected(&self, peer: &str) -> bool {
        self.0.contains(peer)
    }
}

struct World {
    router: Router<Probe>,
    links: Links,
    now: Nanos,
    asks: Vec<(Rc<AskProbe>, Nanos)>,
    /// Streams this node asked for.
    streams: Vec<Rc<StreamProbe>>,
    /// Inbound asks delivered and not answered yet, with the bytes charged for each.
    inbound: Vec<(Request, usize)>,
    exports: BTreeMap<&'static str, ExportProbe>,
    sources: usize,
    limits: NodeConfig,
}

fn pick<'a, T>(u: &mut Unstructured<'_>, items: &'a [T]) -> ArbResult<&'a T> {
    u.choose(items)
}

impl World {
    fn new() -> Self {
        let limits = config();
        Self {
            router: Router::new(limits.clone()),
            links: Links(PEERS.iter().copied().collect()),
            now: 0,
            asks: Vec::new(),
            streams: Vec::new(),
            inbound: Vec::new(),
            exports: BTreeMap::new(),
            sources: 0,
            limits,
        }
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> ArbResult<()> {
        let now = self.now;
        match u.int_in_range(0..=15u8)? {
            0 => {
                let c: Rc<str> = (*pick(u, &COMPONENTS)?).into();
                let pin: Option<Rc<str>> = if u.arbitrary()? {
                    Some((*pick(u, &PEERS)?).into())
                } else {
                    None
                };
                let out = Outgoing::new(&*c, "t.Tell", "application/json", b"1".to_vec());
                let _ = self.router.tell(now, &self.links, &c, pin.as_ref(), out);
            }
            1 | 2 => {
                let c: Rc<str> = (*pick(u, &COMPONENTS)?).into();
                let pin: Option<Rc<str>> = if u.arbitrary()? {
                    Some((*pick(u, &PEERS)?).into())
                } else {
                    None
                };
                let timeout = u64::from(u.int_in_range(1..=3_000u16)?) * MS;
                let out = Outgoing::new(&*c, "t.Ask", "application/json", b"2".to_vec());
                let slot = Rc::new(AskProbe {
                    n: self.asks.len(),
                    ..AskProbe::default()
                });
                let deadline = now + timeout;
                let r = self.router.ask(
                    now,
                    &self.links,
                    &c,
                    pin.as_ref(),
                    out,
                    deadline,
                    slot.clone(),
                );
                if r.is_err() {
                    slot.done.set(true);
                }
                self.asks.push((slot, deadline));
            }
            3 => {
                // A caller gives up (drops its ask), as `Abandon` does.
                if !self.asks.is_empty() {
                    let i = u.choose_index(self.asks.len())?;
                    let slot = self.asks[i].0.clone();
                    if !slot.done.get() && !slot.abandoned.get() {
                        slot.abandoned.set(true);
                        if let Some(id) = slot.id.get() {
                            assert!(
                                self.router.cancel_ask(id).is_some(),
                                "a live ask on the wire was not in the router's map"
                            );
                        }
                    }
                }
            }
            4..=7 => self.frame(u)?,
            8 => {
                let p = *pick(u, &PEERS)?;
                if u.arbitrary()? {
                    self.links.0.remove(p);
                    self.router.handle_peer_lost(now, &self.links, p);
                } else {
                    self.links.0.insert(p);
                    self.router.handle_peer_up(now, &self.links, p);
                }
            }
            9 => {
                let p = *pick(u, &PEERS)?;
                if u.arbitrary()? {
                    let generation = u64::from(u.int_in_range(0..=3u8)?);
                    let mask: u8 = u.arbitrary()?;
                    let comps: Vec<&str> = COMPONENTS
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, c)| *c)
                        .collect();
                    self.router.peer_up(now, &self.links, p, generation, &comps);
                } else {
                    self.router.peer_down(now, &self.links, p);
                }
            }
            10 => {
                let c = *pick(u, &COMPONENTS)?;
                match u.int_in_range(0..=2u8)? {
                    0 => {
                        let e = ExportProbe(Rc::new(Cell::new(false)));
                        if self.router.add_export(now, &self.links, c, e.clone()) {
                            self.exports.insert(c, e);
                        }
                    }
                    1 => {
                        self.router.remove_export(now, &self.links, c);
                        self.exports.remove(c);
                    }
                    _ => {
                        if let Some(e) = self.exports.get(c) {
                            e.0.set(true);
                        }
                    }
                }
            }
            11 => {
                // Room appeared in a mailbox: the driver moves held requests in.
                let c = *pick(u, &COMPONENTS)?;
                while let Some(held) = self.router.pop_held(c) {
                    if u.arbitrary()? {
                        self.router.unpop_held(held);
                        break;
                    }
                    self.router.delivered();
                    if held.req.expects_reply {
                        self.inbound.push((held.req, held.bytes));
                    } else {
                        self.router.release(&held.req.peer, held.bytes);
                    }
                }
            }
            12 => {
                if !self.inbound.is_empty() {
                    let i = u.choose_index(self.inbound.len())?;
                    let (req, charged) = self.inbound.swap_remove(i);
                    let outcome = if u.arbitrary()? {
                        Ok((b"ok".to_vec(), "application/json"))
                    } else {
                        Err(super::CallError::Timeout)
                    };
                    self.router.answer(now, req, charged, outcome);
                }
            }
            13 => {
                let c: Rc<str> = (*pick(u, &COMPONENTS)?).into();
                let window = u.int_in_range(1..=8u32)?;
                let timeout = if u.arbitrary()? {
                    Some(u64::from(u.int_in_range(1..=2_000u16)?) * MS)
                } else {
                    None
                };
                let out = Outgoing::new(&*c, "t.Scan", "application/json", Vec::new());
                let wait = now + u64::from(u.int_in_range(1..=2_000u16)?) * MS;
                let stream = Rc::new(StreamProbe {
                    n: self.streams.len(),
                    ..StreamProbe::default()
                });
                let opened = self.router.open_stream(
                    now,
                    &self.links,
                    &c,
                    None,
                    out,
                    window,
                    timeout,
                    wait,
                    stream.clone(),
                );
                if let Ok(id) = opened {
                    assert_eq!(id, stream.id.get(), "a stream's id not given to it");
                    self.streams.push(stream);
                }
            }
            14 => {
                if !self.streams.is_empty() {
                    let i = u.choose_index(self.streams.len())?;
                    let stream = self.streams[i].clone();
                    if u.arbitrary()? {
                        if let Some(id) = stream.id.get() {
                            self.router.grant_stream(id, u.int_in_range(1..=4u32)?);
                        }
                    } else if !stream.ended.get() && !stream.abandoned.get() {
                        // The caller drops it, as `RefStream` does.
                        match stream.id.get() {
                            Some(id) => {
                                self.router.cancel_stream(id);
                                stream.ended.set(true);
                            }
                            None => stream.abandoned.set(true),
                        }
                    }
                }
            }
            _ => {
                let ms = u64::from(u.int_in_range(1..=1_500u16)?);
                self.advance(self.now + ms * MS);
            }
        }
        self.drain(u)
    }

    /// Time passes to `to`, the driver's timer firing at each timeout on the way.
    fn advance(&mut self, to: Nanos) {
        while let Some(at) = self.router.poll_timeout() {
            if at > to {
                break;
            }
            self.now = self.now.max(at);
            self.router.handle_timeout(self.now, &self.links);
            let next = self.router.poll_timeout();
            assert!(
                next.is_none_or(|n| n > self.now),
                "the timer asks to be woken at {next:?}, not after now ({})",
                self.now
            );
            self.drain_quiet();
        }
        self.now = self.now.max(to);
    }

    /// Acts on every event as the driver would, its choices read from `u`.
    fn drain(&mut self, u: &mut Unstructured<'_>) -> ArbResult<()> {
        while let Some(event) = self.router.poll_event() {
            let choice = if u.is_empty() {
                0
            } else {
                u.int_in_range(0..=2u8)?
            };
            self.on_event(event, choice);
        }
        self.transmits();
        self.check();
        Ok(())
    }

    fn drain_quiet(&mut self) {
        while let Some(event) = self.router.poll_event() {
            self.on_event(event, 0);
        }
        self.transmits();
        self.check();
    }

    fn on_event(&mut self, event: Event<Probe>, choice: u8) {
        let now = self.now;
        match event {
            Event::Deliver(req) => {
                let charged = super::router::charge_of(&req);
                match choice {
                    0 => {
                        self.router.delivered();
                        if req.expects_reply {
                            self.inbound.push((req, charged));
                        } else {
                            self.router.release(&req.peer, charged);
                        }
                    }
                    1 => {
                        self.router.hold(now, req);
                    }
                    _ => {
                        self.router.release(&req.peer, charged);
                        self.router
                            .refuse(now, &req, &super::CallError::MailboxFull);
                    }
                }
            }
            Event::DeliverStream(req) => {
                self.sources += 1;
                self.router
                    .start_producing(&req.peer, req.message_id, self.sources);
                if choice == 0 {
                    let item = Reply {
                        content_type: "application/json".into(),
                        payload: b"4".to_vec(),
                    };
                    if self
                        .router
                        .stream_item(now, &req.peer, req.message_id, item)
                    {
                        self.router
                            .stream_end(now, &req.peer, req.message_id, Ok(()));
                    }
                } else if choice == 1 {
                    self.router.stream_deadline(&req.peer, req.message_id);
                }
            }
            Event::Completed { slot, outcome } => {
                assert!(!slot.done.get(), "ask {} ended twice: {outcome:?}", slot.n);
                slot.done.set(true);
            }
            Event::StreamItem { stream, .. } => {
                assert!(
                    stream.id.get().is_some(),
                    "stream {}: an item before it left",
                    stream.n
                );
                assert!(
                    !stream.ended.get(),
                    "stream {}: an item after its end",
                    stream.n
                );
            }
            Event::StreamEnd { stream, .. } => {
                assert!(!stream.ended.get(), "stream {} ended twice", stream.n);
                stream.ended.set(true);
            }
            Event::Credit { .. } | Event::Cancel { .. } | Event::ExportsChanged => {}
        }
    }

    fn transmits(&mut self) {
        while let Some(t) = self.router.poll_transmit() {
            assert_ne!(t.peer, ME, "a frame to this node itself");
        }
    }

    fn check(&self) {
        assert!(
            self.router.pending_len() <= self.limits.pending_limit,
            "{} calls wait for a name, over the limit of {}",
            self.router.pending_len(),
            self.limits.pending_limit
        );
        assert!(
            self.router.held_bytes() <= self.limits.held_bytes_limit,
            "{} bytes held, over the limit of {}",
            self.router.held_bytes(),
            self.limits.held_bytes_limit
        );
        let charged = self.router.stats().inbound_bytes;
        let owed = self.router.held_bytes() + self.inbound.iter().map(|(_, b)| b).sum::<usize>();
        assert!(
            charged <= self.limits.inbound_bytes_limit && charged <= owed,
            "{charged} inbound bytes charged: limit {}, held or unanswered {owed}",
            self.limits.inbound_bytes_limit
        );
        let live = self
            .asks
            .iter()
            .filter(|(s, _)| !s.done.get() && !s.abandoned.get())
            .count();
        assert!(
            self.router.asks_outstanding() <= live,
            "{} asks on the wire, only {live} callers wait",
            self.router.asks_outstanding()
        );
        for (slot, deadline) in &self.asks {
            if !slot.done.get() && !slot.abandoned.get() {
                assert!(
                    *deadline > self.now,
                    "ask {} still open at {} past its deadline {deadline}",
                    slot.n,
                    self.now
                );
            }
        }
    }

    fn settle(&mut self) {
        let last = self.asks.iter().map(|(_, d)| *d).max().unwrap_or(0);
        self.advance(last.max(self.now) + 10_000 * MS);
        for (slot, _) in &self.asks {
            assert!(
                slot.done.get() || slot.abandoned.get(),
                "ask {} never ended",
                slot.n
            );
        }
        self.router.shutdown(self.now, &self.links);
        self.drain_quiet();
        assert_eq!(
            self.router.asks_outstanding(),
            0,
            "asks left after shutdown"
        );
        assert_eq!(self.router.pending_len(), 0, "calls waiting after shutdown");
        assert_eq!(self.router.held_bytes(), 0, "requests held after shutdown");
        for s in &self.streams {
            assert!(
                s.ended.get() || s.abandoned.get(),
                "stream {} still open after shutdown",
                s.n
            );
        }
    }
}

/// Drives one node's router with the operations `data` encodes and checks its
/// promises after every step (see the [module docs](self)); panics naming the first
/// broken one.
pub fn router_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut world = World::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() || world.step(&mut u).is_err() {
            break;
        }
    }
    world.settle();
}
