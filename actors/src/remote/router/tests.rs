//! The router alone: its promises under a deterministic sweep of arbitrary inputs
//! (the fuzz target's checks, in every `cargo test`), and the timing of its one
//! deadline per call.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use tern_proto::session::Outgoing;

use super::{AskSlot, Event, ExportSlot, Reach, Router, Slots, StreamSlot};
use crate::remote::config::NodeConfig;
use crate::remote::error::CallError;

#[derive(Default)]
struct Slot {
    id: Cell<Option<u64>>,
}

impl AskSlot for Rc<Slot> {
    fn sent(&self, id: u64) {
        self.id.set(Some(id));
    }

    fn is_abandoned(&self) -> bool {
        false
    }
}

#[derive(Clone)]
struct NoStream;

impl StreamSlot for NoStream {
    fn opened(&self, _: u64) {}

    fn is_abandoned(&self) -> bool {
        false
    }
}

#[derive(Clone)]
struct Live;

impl ExportSlot for Live {
    fn is_stopped(&self) -> bool {
        false
    }
}

struct T;

impl Slots for T {
    type Ask = Rc<Slot>;
    type Stream = NoStream;
    type Source = ();
    type Export = Live;
}

struct Up(BTreeSet<&'static str>);

impl Reach for Up {
    fn connected(&self, peer: &str) -> bool {
        self.0.contains(peer)
    }
}

const MS: u64 = 1_000_000;

fn out() -> Outgoing {
    Outgoing::new("echo", "t.Ping", "application/json", b"1".to_vec())
}

fn completions(r: &mut Router<T>) -> Vec<Result<(), CallError>> {
    let mut got = Vec::new();
    while let Some(e) = r.poll_event() {
        if let Event::Completed { outcome, .. } = e {
            got.push(outcome.map(|_| ()));
        }
    }
    got
}

/// The fuzz target's checks over pseudo-random inputs of every length up to 2 KiB.
#[test]
fn promises_hold_for_a_sweep_of_arbitrary_inputs() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for case in 0..1_500u32 {
        let len = usize::try_from(case * 7 % 2_048).unwrap_or(0);
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        crate::remote::fuzzing::router_ops(&data);
    }
}

#[test]
fn an_ask_for_an_unknown_name_ends_at_its_deadline() {
    let up = Up(BTreeSet::new());
    let mut r = Router::<T>::new(NodeConfig::new("a"));
    let name: Rc<str> = "echo".into();
    r.ask(0, &up, &name, None, out(), 250 * MS, Rc::default())
        .expect("parked");
    assert_eq!(r.pending_len(), 1);
    // The driver's single timer is due at the ask's deadline.
    assert_eq!(r.poll_timeout(), Some(250 * MS));
    r.handle_timeout(250 * MS - 1, &up);
    assert!(completions(&mut r).is_empty());
    r.handle_timeout(250 * MS, &up);
    assert_eq!(
        completions(&mut r),
        vec![Err(CallError::UnknownName {
            name: "echo".into()
        })]
    );
    assert_eq!(r.pending_len(), 0);
}

#[test]
fn an_ask_on_the_wire_lives_in_one_map_and_times_out_once() {
    let up = Up(BTreeSet::from(["b"]));
    let mut r = Router::<T>::new(NodeConfig::new("a"));
    r.peer_up(0, &up, "b", 1, &["echo"]);
    let name: Rc<str> = "echo".into();
    let slot = Rc::new(Slot::default());
    r.ask(MS, &up, &name, None, out(), 100 * MS, slot.clone())
        .expect("sent");
    assert!(slot.id.get().is_some());
    assert_eq!(r.asks_outstanding(), 1);
    let sent = r.poll_transmit().expect("the request");
    assert_eq!(sent.peer, "b");
    assert_eq!(r.poll_timeout(), Some(100 * MS));
    r.handle_timeout(100 * MS, &up);
    assert_eq!(completions(&mut r), vec![Err(CallError::Timeout)]);
    assert_eq!(r.asks_outstanding(), 0);
    assert_eq!(r.stats().asks_timed_out, 1);
    // Nothing is left to wake for.
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn waiting_calls_are_bounded() {
    let up = Up(BTreeSet::new());
    let mut r = Router::<T>::new(
        NodeConfig::new("a")
            .pending_limit(2)
            .pending_ttl(Duration::from_secs(1)),
    );
    let name: Rc<str> = "echo".into();
    assert_eq!(r.tell(0, &up, &name, None, out()), Ok(false));
    assert_eq!(r.tell(0, &up, &name, None, out()), Ok(false));
    assert_eq!(
        r.tell(0, &up, &name, None, out()),
        Err(CallError::PendingFull)
    );
    assert_eq!(r.stats().tells_refused.pending_full, 1);
    r.handle_timeout(1_000 * MS, &up);
    assert_eq!((r.pending_len(), r.stats().pending_expired), (0, 2));
}

/// Tells, asks and stream requests wait for a name in one queue, and leave in call
/// order when it is known.
#[test]
fn every_kind_of_call_waits_for_a_name_the_same_way() {
    use tern_proto::v1::Kind;
    let mut up = Up(BTreeSet::new());
    let mut r = Router::<T>::new(NodeConfig::new("a"));
    let name: Rc<str> = "echo".into();
    assert_eq!(r.tell(0, &up, &name, None, out()), Ok(false));
    let opened = r.open_stream(0, &up, &name, None, out(), 4, None, 500 * MS, NoStream);
    assert_eq!(opened, Ok(None));
    r.ask(0, &up, &name, None, out(), 500 * MS, Rc::default())
        .expect("parked");
    assert_eq!(r.pending_len(), 3);
    assert!(r.poll_transmit().is_none());
    up.0.insert("b");
    r.peer_up(MS, &up, "b", 1, &["echo"]);
    let kinds: Vec<(Kind, u32)> = std::iter::from_fn(|| r.poll_transmit())
        .map(|t| {
            let env = tern_proto::decode_envelope(&t.envelope, &tern_proto::Limits::default())
                .expect("valid");
            (Kind::try_from(env.kind).expect("known"), env.credit)
        })
        .collect();
    assert_eq!(kinds, vec![(Kind::Tell, 0), (Kind::Ask, 4), (Kind::Ask, 0)]);
    assert_eq!(r.pending_len(), 0);
}

/// A forged envelope from another network that claims a `global` horizon: the
/// receiver checks its own settings (the default, `network`) and refuses it; an
/// envelope narrower than the receiver's settings (`node`, from another host) is
/// refused too; one with no horizon from the same network is delivered.
#[test]
fn the_receiver_checks_the_horizon_of_a_forged_envelope() {
    use tern_proto::v1::{ComponentRef, Envelope, ErrorCode, Kind};

    use crate::flow::{Horizon, Place};

    let up = Up(["a1", "b2"].into_iter().collect());
    let mut r = Router::<T>::new(NodeConfig::new("b1"));
    r.flow_mut().set_place(Place::new("b", "hb1"));
    r.flow_mut().set_peer_place("a1", Place::new("a", "ha1"));
    r.flow_mut().set_peer_place("b2", Place::new("b", "hb2"));
    assert!(r.add_export(0, &up, "echo", Live));
    while r.poll_transmit().is_some() {}
    let forged = |id: u64, horizon: Horizon| {
        tern_proto::encode_envelope(&Envelope {
            version: tern_proto::PROTOCOL_VERSION,
            message_id: id,
            kind: Kind::Ask.into(),
            destination: Some(ComponentRef {
                node: "b1".into(),
                name: "echo".into(),
                generation: 0,
            }),
            message_type: "t.Ping".into(),
            content_type: "application/json".into(),
            horizon: horizon.to_wire(),
            ..Envelope::default()
        })
    };
    let refused = |r: &mut Router<T>| {
        let mut codes = Vec::new();
        while let Some(t) = r.poll_transmit() {
            let env = tern_proto::decode_envelope(&t.envelope, &tern_proto::Limits::default())
                .expect("valid");
            if let Some(e) = env.error {
                codes.push((ErrorCode::try_from(e.code).expect("known"), e.detail));
            }
        }
        codes
    };
    let delivered = |r: &mut Router<T>| {
        let mut n = 0;
        while let Some(e) = r.poll_event() {
            n += usize::from(matches!(e, Event::Deliver(_)));
        }
        n
    };

    r.handle_frame(MS, &up, "a1", &forged(7, Horizon::Global), b"1".to_vec());
    assert_eq!(delivered(&mut r), 0);
    let codes = refused(&mut r);
    assert_eq!(
        codes,
        [(
            ErrorCode::OutsideHorizon,
            "horizon=network needed=global".to_owned()
        )]
    );
    r.handle_frame(2 * MS, &up, "b2", &forged(8, Horizon::Node), b"1".to_vec());
    assert_eq!(delivered(&mut r), 0);
    assert_eq!(refused(&mut r).len(), 1);
    let mut plain = forged(9, Horizon::Global);
    plain = {
        let mut env =
            tern_proto::decode_envelope(&plain, &tern_proto::Limits::default()).expect("valid");
        env.horizon = 0;
        tern_proto::encode_envelope(&env)
    };
    r.handle_frame(3 * MS, &up, "b2", &plain, b"1".to_vec());
    assert_eq!(delivered(&mut r), 1);
    let stats = r.stats();
    assert_eq!(stats.flow.horizon_refused_inbound, 2);
    assert_eq!(stats.refused, 2);
}

/// The sender's horizon applies to every kind of call: a tell, an ask and a stream
/// request to a component hosted only in another network are refused at once and
/// nothing is sent; once a host in this network appears, it gets them.
#[test]
fn the_sender_refuses_every_call_beyond_the_horizon() {
    use crate::flow::{Horizon, Place};

    let up = Up(["a2", "b1"].into_iter().collect());
    let mut r = Router::<T>::new(NodeConfig::new("a1"));
    r.flow_mut().set_place(Place::new("a", "ha1"));
    r.flow_mut().set_peer_place("a2", Place::new("a", "ha2"));
    r.flow_mut().set_peer_place("b1", Place::new("b", "hb1"));
    r.peer_up(0, &up, "b1", 1, &["echo"]);
    while r.poll_transmit().is_some() {}
    let name: Rc<str> = "echo".into();
    let refused = CallError::OutsideHorizon {
        horizon: Horizon::Network,
        needed: Horizon::Global,
    };
    assert_eq!(r.tell(MS, &up, &name, None, out()), Err(refused.clone()));
    let ask = r.ask(MS, &up, &name, None, out(), 100 * MS, Rc::default());
    assert_eq!(ask, Err(refused.clone()));
    let stream = r.open_stream(MS, &up, &name, None, out(), 4, None, 100 * MS, NoStream);
    assert_eq!(stream, Err(refused));
    assert!(r.poll_transmit().is_none(), "nothing sent");
    assert_eq!(r.stats().flow.horizon_refused, 3);

    r.peer_up(2 * MS, &up, "a2", 1, &["echo"]);
    while r.poll_transmit().is_some() {}
    for _ in 0..4 {
        assert_eq!(r.tell(3 * MS, &up, &name, None, out()), Ok(true));
        let t = r.poll_transmit().expect("sent");
        assert_eq!(t.peer, "a2");
    }
}

/// Replies are matched to (the peer the ask went to, its id): the same answer from
/// another authenticated peer is refused and counted, and ids are keyed, not a
/// counter another peer could extrapolate.
#[test]
fn a_reply_from_another_peer_is_refused_and_counted() {
    use tern_proto::session::{Event as WireEvent, Session};
    let up = Up(BTreeSet::from(["b", "c"]));
    let mut r = Router::<T>::new(NodeConfig::new("a"));
    r.set_id_key([3; 16]);
    r.peer_up(0, &up, "b", 1, &["echo"]);
    let name: Rc<str> = "echo".into();
    let ask = |r: &mut Router<T>| {
        let slot = Rc::new(Slot::default());
        r.ask(MS, &up, &name, None, out(), 100 * MS, slot.clone())
            .expect("sent");
        (
            slot.id.get().expect("an id"),
            r.poll_transmit().expect("a frame"),
        )
    };
    let (id, frame) = ask(&mut r);
    let (next, _) = ask(&mut r);
    assert!(id.abs_diff(next) > 1 << 32, "{id:#x} then {next:#x}");
    // b answers; c replays b's answer (same id) as its own, first.
    let mut b = Session::new("b");
    b.set_generation(1);
    b.handle_frame(2 * MS, "a", &frame.envelope, frame.payload);
    let Some(WireEvent::Request(req)) = b.poll_event() else {
        panic!("no request")
    };
    b.reply(3 * MS, &req, Ok((b"7".to_vec(), "application/json".into())));
    let answer = b.poll_transmit().expect("the answer");
    r.handle_frame(4 * MS, &up, "c", &answer.envelope, answer.payload.clone());
    assert!(completions(&mut r).is_empty());
    assert_eq!(r.stats().session.unmatched_replies, 1);
    assert_eq!(r.asks_outstanding(), 2);
    r.handle_frame(5 * MS, &up, "b", &answer.envelope, answer.payload);
    assert_eq!(completions(&mut r), vec![Ok(())]);
    assert_eq!(r.asks_outstanding(), 1);
    // Another key, other ids.
    let mut other = Router::<T>::new(NodeConfig::new("a"));
    other.set_id_key([4; 16]);
    other.peer_up(0, &up, "b", 1, &["echo"]);
    assert_ne!(ask(&mut other).0, id);
}

/// With discovery on, a directory on the data plane is refused and counted, even from
/// a member, and nothing is announced there.
#[test]
fn a_directory_is_refused_when_static_directories_are_off() {
    use tern_proto::control::{
        DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, PROTOBUF_CONTENT_TYPE, encode_directory,
    };
    use tern_proto::session::Session;
    use tern_proto::v1::Directory;
    let up = Up(BTreeSet::from(["b"]));
    let directory = |claims: &str| {
        let dir = Directory {
            node: "b".into(),
            generation: 1,
            version: 9,
            components: vec![claims.into()],
            reply_wanted: false,
        };
        let mut b = Session::new("b");
        let out = Outgoing::new(
            DIRECTORY_COMPONENT,
            DIRECTORY_MESSAGE_TYPE,
            PROTOBUF_CONTENT_TYPE,
            encode_directory(&dir),
        );
        b.tell(0, "a", out);
        b.poll_transmit().expect("a frame")
    };
    let name: Rc<str> = "echo".into();
    for on in [true, false] {
        let mut r = Router::<T>::new(NodeConfig::new("a").static_directories(on));
        r.peer_up(0, &up, "b", 1, &["other"]);
        let frame = directory("echo");
        r.handle_frame(MS, &up, "b", &frame.envelope, frame.payload);
        let routed = r.target(2 * MS, &up, &name, None).ok().flatten();
        if on {
            assert_eq!(routed.as_deref(), Some("b"));
            assert_eq!(r.stats().directories_refused, 0);
        } else {
            assert_eq!(routed, None, "the directory drew the call");
            assert_eq!(r.stats().directories_refused, 1);
        }
        // A configured peer hears this node's directory only with them on.
        let mut r = Router::<T>::new(NodeConfig::new("a").peers(["b"]).static_directories(on));
        r.add_export(0, &up, "mine", Live);
        r.handle_peer_up(MS, &up, "b");
        r.handle_timeout(10_000 * MS, &up);
        assert_eq!(r.poll_transmit().is_some(), on);
    }
}

/// Members past `max_peers` are refused and names past `max_names` not remembered,
/// each counted; the peers and names already known keep working.
#[test]
fn peers_and_names_are_capped() {
    let up = Up(BTreeSet::from(["p0", "p1", "p2"]));
    let mut r = Router::<T>::new(NodeConfig::new("a").max_peers(2).max_names(3));
    r.peer_up(0, &up, "p0", 1, &["c0", "c1"]);
    r.peer_up(0, &up, "p1", 1, &["c2", "c3"]);
    r.peer_up(0, &up, "p2", 1, &["c4"]);
    assert_eq!(r.stats().peers_refused, 1);
    assert_eq!(r.stats().names_dropped, 1);
    let route = |r: &mut Router<T>, c: &str| {
        let c: Rc<str> = c.into();
        r.target(MS, &up, &c, None)
            .ok()
            .flatten()
            .map(|h| h.to_string())
    };
    assert_eq!(route(&mut r, "c0").as_deref(), Some("p0"));
    assert_eq!(route(&mut r, "c3").as_deref(), Some("p1"));
    assert_eq!(route(&mut r, "c4"), None, "the refused member's component");
    // A known member still updates; the dropped name still routes, it is only not
    // remembered once its host is gone.
    r.peer_up(2 * MS, &up, "p1", 2, &["c3"]);
    assert_eq!(r.stats().peers_refused, 1);
    assert_eq!(route(&mut r, "c3").as_deref(), Some("p1"));
    assert_eq!(
        r.unhosted("c3"),
        CallError::UnknownName { name: "c3".into() }
    );
    assert_eq!(r.unhosted("c2"), CallError::NotHosted { name: "c2".into() });
}
