//! Unit tests of the stream half of the session.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::session::Transmit;

fn pass(from: &mut Session, to: &mut Session, now: Nanos) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        to.handle_frame(now, from.node.as_str(), &t.envelope, t.payload);
        n += 1;
    }
    n
}

fn item(p: &[u8]) -> Reply {
    Reply {
        content_type: "application/octet-stream".into(),
        payload: p.to_vec(),
    }
}

fn open(a: &mut Session, b: &mut Session, window: u32) -> (u64, super::super::Request) {
    let out = Outgoing::new("scan", "t.Scan", "application/json", b"{}".to_vec());
    let id = a.ask_stream(0, "b", out, Some(1_000_000_000), window);
    pass(a, b, 1);
    let Some(Event::Request(req)) = b.poll_event() else {
        panic!("no request")
    };
    assert_eq!(req.credit, window);
    (id, req)
}

#[test]
fn items_flow_within_credit_and_end_once() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let (id, req) = open(&mut a, &mut b, 2);
    b.stream_item(2, "a", req.message_id, item(b"1")).unwrap();
    b.stream_item(2, "a", req.message_id, item(b"2")).unwrap();
    assert_eq!(
        b.stream_item(2, "a", req.message_id, item(b"3")),
        Err(StreamSendError::NoCredit)
    );
    pass(&mut b, &mut a, 3);
    for want in [b"1", b"2"] {
        match a.poll_event() {
            Some(Event::StreamItem { id: got, item }) => {
                assert_eq!((got, item.payload.as_slice()), (id, &want[..]));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(a.grant(id, 1));
    pass(&mut a, &mut b, 4);
    assert_eq!(
        b.poll_event(),
        Some(Event::Credit {
            peer: "a".into(),
            id: req.message_id,
            credit: 1
        })
    );
    b.stream_item(5, "a", req.message_id, item(b"3")).unwrap();
    assert!(b.stream_end(5, "a", req.message_id, Ok(())));
    assert!(!b.stream_end(5, "a", req.message_id, Ok(())));
    pass(&mut b, &mut a, 6);
    assert!(matches!(a.poll_event(), Some(Event::StreamItem { .. })));
    assert_eq!(
        a.poll_event(),
        Some(Event::StreamEnd { id, result: Ok(()) })
    );
    assert_eq!((a.streams_outstanding(), b.streams_producing()), (0, 0));
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn repeats_overruns_and_unknown_frames_are_counted_not_delivered() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let (id, req) = open(&mut a, &mut b, 1);
    b.stream_item(2, "a", req.message_id, item(b"1")).unwrap();
    let t = b.poll_transmit().unwrap();
    a.handle_frame(3, "b", &t.envelope, t.payload.clone());
    a.handle_frame(3, "b", &t.envelope, t.payload.clone());
    // From the wrong peer.
    a.handle_frame(3, "c", &t.envelope, t.payload.clone());
    assert!(matches!(a.poll_event(), Some(Event::StreamItem { .. })));
    assert_eq!(a.poll_event(), None);
    assert_eq!(a.stats().unmatched_stream_frames, 2);
    // An overrun: forge a second item with a fresh id and no credit.
    let mut env = crate::decode_envelope(&t.envelope, &crate::Limits::default()).unwrap();
    env.message_id += 10;
    env.sequence += 1;
    a.handle_frame(4, "b", &crate::encode_envelope(&env), Vec::new());
    assert!(matches!(
        a.poll_event(),
        Some(Event::StreamEnd {
            id: got,
            result: Err(Failure::Remote { .. })
        }) if got == id
    ));
    assert_eq!(a.stats().credit_overruns, 1);
    // The cancel reaches the producer.
    pass(&mut a, &mut b, 5);
    assert_eq!(
        b.poll_event(),
        Some(Event::Cancelled {
            peer: "a".into(),
            id: req.message_id
        })
    );
    assert_eq!(
        b.stream_item(6, "a", req.message_id, item(b"x")),
        Err(StreamSendError::Closed)
    );
}

#[test]
fn items_out_of_order_are_delivered_in_order_and_the_end_waits_for_them() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let (id, req) = open(&mut a, &mut b, 8);
    for p in [b"1", b"2", b"3"] {
        b.stream_item(2, "a", req.message_id, item(p)).unwrap();
    }
    b.stream_end(2, "a", req.message_id, Ok(()));
    let frames: Vec<Transmit> = std::iter::from_fn(|| b.poll_transmit()).collect();
    // End first, then 3, 1, 1 again, 2.
    for i in [3, 2, 0, 0, 1] {
        let t = &frames[i];
        a.handle_frame(3, "b", &t.envelope, t.payload.clone());
    }
    let mut got = Vec::new();
    while let Some(e) = a.poll_event() {
        got.push(e);
    }
    let want: Vec<Event> = [b"1", b"2", b"3"]
        .iter()
        .map(|p| Event::StreamItem { id, item: item(*p) })
        .chain([Event::StreamEnd { id, result: Ok(()) }])
        .collect();
    assert_eq!(got, want);
    assert_eq!(a.stats().unmatched_stream_frames, 1);
}

#[test]
fn deadline_cancel_and_peer_loss_end_streams() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let (id, req) = open(&mut a, &mut b, 4);
    assert_eq!(a.poll_timeout(), Some(1_000_000_000));
    a.handle_timeout(1_000_000_000);
    assert_eq!(
        a.poll_event(),
        Some(Event::StreamEnd {
            id,
            result: Err(Failure::Timeout)
        })
    );
    pass(&mut a, &mut b, 2);
    assert!(matches!(b.poll_event(), Some(Event::Cancelled { .. })));
    let (id2, _) = open(&mut a, &mut b, 4);
    assert!(a.cancel_stream(id2));
    assert!(!a.cancel_stream(id2));
    assert_eq!(a.poll_timeout(), None);
    pass(&mut a, &mut b, 3);
    assert!(matches!(b.poll_event(), Some(Event::Cancelled { .. })));
    let (id3, req3) = open(&mut a, &mut b, 4);
    a.peer_lost("b");
    assert_eq!(
        a.poll_event(),
        Some(Event::StreamEnd {
            id: id3,
            result: Err(Failure::PeerLost)
        })
    );
    b.poll_event();
    b.peer_lost("a");
    let mut cancelled = Vec::new();
    while let Some(e) = b.poll_event() {
        cancelled.push(e);
    }
    assert!(cancelled.contains(&Event::Cancelled {
        peer: "a".into(),
        id: req3.message_id
    }));
    assert_eq!(b.streams_producing(), 0);
    let _ = req;
}

#[test]
fn an_error_or_a_plain_reply_ends_a_stream_with_a_failure() {
    let (mut a, mut b) = (Session::new("a"), Session::new("b"));
    let (id, req) = open(&mut a, &mut b, 4);
    assert!(b.stream_end(
        1,
        "a",
        req.message_id,
        Err((ErrorCode::Stopped, "x".into()))
    ));
    pass(&mut b, &mut a, 2);
    assert!(matches!(
        a.poll_event(),
        Some(Event::StreamEnd { id: got, result: Err(Failure::Remote { code: ErrorCode::Stopped, .. }) }) if got == id
    ));
    let (id, req) = open(&mut a, &mut b, 4);
    b.reply(1, &req, Ok((b"1".to_vec(), "x".into())));
    assert_eq!(b.streams_producing(), 0);
    pass(&mut b, &mut a, 2);
    assert!(matches!(
        a.poll_event(),
        Some(Event::StreamEnd { id: got, result: Err(Failure::Remote { .. }) }) if got == id
    ));
}
