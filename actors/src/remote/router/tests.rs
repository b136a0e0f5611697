//! The router alone: its promises under a deterministic sweep of arbitrary inputs
//! (the fuzz target's checks, in every `cargo test`), and the timing of its one
//! deadline per call.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use tern_proto::session::Outgoing;

use super::{AskSlot, Event, ExportSlot, Reach, Router, Slots};
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
struct Live;

impl ExportSlot for Live {
    fn is_stopped(&self) -> bool {
        false
    }
}

struct T;

impl Slots for T {
    type Ask = Rc<Slot>;
    type Stream = ();
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
        vec![Err(CallError::UnknownComponent("echo".into()))]
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
