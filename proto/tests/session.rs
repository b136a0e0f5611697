//! The sans-IO wire session between two in-memory peers.

use tern_proto::session::{Event, Failure, Outgoing, Request, Session};
use tern_proto::v1::{Envelope, ErrorCode, Kind};
use tern_proto::{PROTOCOL_VERSION, encode_envelope};

const MS: u64 = 1_000_000;

fn out(n: u8) -> Outgoing {
    Outgoing::new("worker", "demo.Job", "application/octet-stream", vec![n])
}

/// Moves every queued frame from `from` (node `from_name`) into `to`.
fn pump(from: &mut Session, from_name: &str, to: &mut Session, now: u64) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        to.handle_frame(now, from_name, &t.envelope, t.payload);
        n += 1;
    }
    n
}

fn request(s: &mut Session) -> Request {
    match s.poll_event() {
        Some(Event::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn frames_to_a_peer_keep_their_order() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    for n in 0..50 {
        if n % 3 == 0 {
            a.ask(0, "b", out(n), None);
        } else {
            a.tell(0, "b", out(n));
        }
    }
    assert_eq!(pump(&mut a, "a", &mut b, 1), 50);
    let got: Vec<u8> = std::iter::from_fn(|| b.poll_event())
        .map(|e| match e {
            Event::Request(r) => {
                assert_eq!(r.expects_reply, r.payload[0] % 3 == 0);
                r.payload[0]
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

#[test]
fn an_ask_times_out_at_its_deadline_and_a_late_reply_is_counted_not_delivered() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let id = a.ask(1_000, "b", out(1), Some(50 * MS));
    assert_eq!(a.poll_timeout(), Some(1_000 + 50 * MS));
    pump(&mut a, "a", &mut b, 2_000);
    let req = request(&mut b);
    // The receiver learns the deadline from the remaining time in the envelope.
    assert_eq!(req.deadline, Some(2_000 + 50 * MS));

    a.handle_timeout(1_000 + 50 * MS - 1);
    assert_eq!(a.poll_event(), None);
    a.handle_timeout(1_000 + 50 * MS);
    assert_eq!(
        a.poll_event(),
        Some(Event::Reply {
            id,
            result: Err(Failure::Timeout)
        })
    );
    assert_eq!(a.poll_timeout(), None);

    b.reply(
        60 * MS,
        &req,
        Ok((vec![9], "application/octet-stream".into())),
    );
    pump(&mut b, "b", &mut a, 61 * MS);
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.stats().unmatched_replies, 1);
    assert_eq!(a.stats().timeouts, 1);
}

#[test]
fn errors_travel_back_with_their_code_and_only_the_asked_peer_may_answer() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let id = a.ask(0, "b", out(1), Some(1_000 * MS));
    pump(&mut a, "a", &mut b, 1);
    let req = request(&mut b);
    b.reply(2, &req, Err((ErrorCode::MailboxFull, "busy".into())));
    let t = b.poll_transmit().unwrap();
    // The same frame from another node is refused...
    a.handle_frame(3, "mallory", &t.envelope, t.payload.clone());
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.stats().unmatched_replies, 1);
    // ...and accepted from the peer the ask went to.
    a.handle_frame(4, "b", &t.envelope, t.payload);
    assert_eq!(
        a.poll_event(),
        Some(Event::Reply {
            id,
            result: Err(Failure::Remote {
                code: ErrorCode::MailboxFull,
                detail: "busy".into()
            })
        })
    );
    assert_eq!(a.outstanding(), 0);
}

#[test]
fn losing_a_peer_fails_only_the_asks_sent_to_it() {
    let mut a = Session::new("a");
    let to_b = a.ask(0, "b", out(1), Some(MS));
    let to_c = a.ask(0, "c", out(2), None);
    let to_b2 = a.ask(0, "b", out(3), None);
    a.peer_lost("b");
    assert_eq!(
        a.poll_event(),
        Some(Event::Reply {
            id: to_b,
            result: Err(Failure::PeerLost)
        })
    );
    assert_eq!(
        a.poll_event(),
        Some(Event::Reply {
            id: to_b2,
            result: Err(Failure::PeerLost)
        })
    );
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.outstanding(), 1);
    assert_eq!(
        a.poll_timeout(),
        None,
        "the lost ask's deadline is gone too"
    );
    let _ = to_c;
}

#[test]
fn a_frame_in_an_unknown_version_is_counted_and_its_ask_refused_fast() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let id = a.ask(0, "b", out(1), Some(1_000 * MS));
    let t = a.poll_transmit().unwrap();
    // Rewrite the envelope as a future protocol version.
    let mut env = <Envelope as prost::Message>::decode(t.envelope.as_slice()).unwrap();
    env.version = PROTOCOL_VERSION + 1;
    b.handle_frame(1, "a", &encode_envelope(&env), t.payload);
    assert_eq!(b.poll_event(), None);
    assert_eq!(b.stats().malformed, 1);
    pump(&mut b, "b", &mut a, 2);
    match a.poll_event() {
        Some(Event::Reply {
            id: got,
            result: Err(Failure::Remote { code, .. }),
        }) => {
            assert_eq!((got, code), (id, ErrorCode::UnsupportedVersion));
        }
        other => panic!("{other:?}"),
    }

    // Garbage and refused non-asks are only counted: no answer, so no refusal loops.
    b.handle_frame(3, "a", &[0xde, 0xad, 0xbe, 0xef], vec![]);
    let stray = Envelope {
        version: 9,
        message_id: 5,
        kind: Kind::Error.into(),
        ..Default::default()
    };
    b.handle_frame(4, "a", &encode_envelope(&stray), vec![]);
    assert_eq!(b.stats().malformed, 3);
    assert!(b.poll_transmit().is_none());
}

#[test]
fn an_oversized_ask_is_answered_too_large_at_any_size() {
    let mut b = Session::new("b");
    for len in [9_000, 200_000] {
        let ask = Envelope {
            version: PROTOCOL_VERSION,
            message_id: 5,
            kind: Kind::Ask.into(),
            message_type: "x".repeat(len),
            ..Envelope::default()
        };
        b.handle_frame(0, "a", &encode_envelope(&ask), Vec::new());
        let t = b.poll_transmit().expect("an answer");
        let answer = tern_proto::decode_envelope(&t.envelope, &tern_proto::Limits::default())
            .expect("valid");
        assert_eq!(answer.correlation_id, 5);
        assert_eq!(
            answer.error.expect("error").code,
            i32::from(ErrorCode::TooLarge)
        );
    }
    assert_eq!(b.stats().malformed, 2);
}

#[test]
fn a_request_for_another_generation_is_refused_not_handled() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    b.set_generation(2);
    // a still believes b runs generation 1: its requests must not reach generation 2.
    a.set_peer_generation("b", 1);
    let stale = a.ask(0, "b", out(1), Some(100 * MS));
    a.tell(0, "b", out(2));
    assert_eq!(pump(&mut a, "a", &mut b, 1), 2);
    assert_eq!(b.poll_event(), None, "nothing reaches the application");
    assert_eq!(b.stats().fenced, 2);
    // The ask gets a typed answer at once; the tell is only counted.
    assert_eq!(pump(&mut b, "b", &mut a, 2), 1);
    match a.poll_event() {
        Some(Event::Reply {
            id,
            result: Err(Failure::Remote { code, detail }),
        }) => {
            assert_eq!((id, code), (stale, ErrorCode::Stopped));
            assert!(detail.contains("generation 1"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    // Once a learns the new generation (or addresses any), requests go through.
    a.set_peer_generation("b", 2);
    a.tell(3, "b", out(4));
    a.set_peer_generation("b", 0);
    a.tell(3, "b", out(5));
    pump(&mut a, "a", &mut b, 4);
    assert_eq!(request(&mut b).payload, [4]);
    assert_eq!(request(&mut b).payload, [5]);
    assert_eq!(b.stats().fenced, 2);
}

#[test]
fn reply_owned_sends_the_same_answer_as_reply() {
    let mut a = Session::new("a");
    let mut b = Session::new("b");
    let ids = [
        a.ask(0, "b", out(1), Some(1_000_000_000)),
        a.ask(0, "b", out(2), Some(1_000_000_000)),
    ];
    pump(&mut a, "a", &mut b, 1);
    let (first, second) = (request(&mut b), request(&mut b));
    let ok = || Ok((b"r".to_vec(), "application/json".to_owned()));
    b.reply(2, &first, ok());
    b.reply_owned(2, second, ok());
    let (x, y) = (
        b.poll_transmit().expect("reply"),
        b.poll_transmit().expect("reply"),
    );
    assert_eq!((x.peer.as_str(), y.peer.as_str()), ("a", "a"));
    let (ex, ey) = (
        tern_proto::decode_envelope(&x.envelope, &tern_proto::Limits::default()).expect("valid"),
        tern_proto::decode_envelope(&y.envelope, &tern_proto::Limits::default()).expect("valid"),
    );
    assert_eq!((ex.source, ex.destination), (ey.source, ey.destination));
    assert_eq!((ex.correlation_id, ey.correlation_id), (ids[0], ids[1]));
    a.handle_frame(3, "b", &x.envelope, x.payload);
    a.handle_frame(3, "b", &y.envelope, y.payload);
    for id in ids {
        assert!(
            matches!(a.poll_event(), Some(Event::Reply { id: got, result: Ok(_) }) if got == id)
        );
    }
}
