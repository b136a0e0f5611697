//! A [`Timeline`] in the Chrome trace event format, which ui.perfetto.dev and
//! chrome://tracing open.
//!
//! Written by hand: the output is a few fixed shapes of numbers and fixed words, and
//! the only free text (node names) goes through [`escape`]; a JSON library would be
//! the executor's only use of one. Integers only, in event order, so a seed gives the
//! same bytes every time.
//!
//! The layout:
//! - one process per node (`pid` = node index, with `process_name` and
//!   `process_sort_index` metadata), three threads in each: `faults` (tid 0), `net out`
//!   (tid 1), `net in` (tid 2);
//! - a send is a 1 ns slice on `net out` named `send`, a delivery one on `net in` named
//!   `deliver`, with `args` giving the peer, sequence number, kind and size; a flow
//!   (`ph` `s` at the send, `f` with `bp` `e` at the delivery, `id` = the network
//!   sequence number) links them, so an arrow follows the message across nodes. A send
//!   whose delivery is not in the timeline gets no flow and `"lost":true` in its
//!   `args` (dropped, in flight at the end, or past the cap);
//! - crashes, restarts, pauses, resumes, partitions, heals, drops, resets and
//!   reconnections are instant events (`ph` `i`) on `faults`;
//! - `ts` is virtual time in microseconds (three decimals: nanoseconds);
//! - `otherData` holds the event count, the cap, how many events were left out past
//!   it, and `truncated`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::NodeId;
use super::timeline::{Timeline, TimelineKind};
use crate::time::Instant;

const FAULTS: u8 = 0;
const NET_OUT: u8 = 1;
const NET_IN: u8 = 2;

/// Appends `s` to `out` as the inside of a JSON string.
fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Virtual time in microseconds with nanosecond decimals.
fn ts(at: Instant) -> String {
    let ns = at.as_nanos();
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

struct Writer<'a> {
    out: String,
    names: &'a [&'a str],
    first: bool,
}

impl Writer<'_> {
    fn name(&self, node: NodeId) -> &str {
        self.names.get(node.0).copied().unwrap_or("?")
    }

    /// Starts one event object: the comma, `ph`, `pid`, `tid`.
    fn open(&mut self, ph: &str, node: NodeId, tid: u8) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        let _ = write!(
            self.out,
            "\n{{\"ph\":\"{ph}\",\"pid\":{},\"tid\":{tid}",
            node.0
        );
    }

    fn meta(&mut self, node: NodeId, tid: u8, what: &str, name: &str) {
        self.open("M", node, tid);
        let _ = write!(self.out, ",\"name\":\"{what}\",\"args\":{{\"name\":\"");
        escape(&mut self.out, name);
        self.out.push_str("\"}}");
    }

    /// A `"peer":"name"` argument.
    fn peer(&mut self, peer: NodeId) {
        self.out.push_str("\"peer\":\"");
        let name = self.name(peer).to_owned();
        escape(&mut self.out, &name);
        self.out.push('"');
    }

    fn instant(&mut self, node: NodeId, at: Instant, name: &str, peer: Option<NodeId>) {
        self.open("i", node, FAULTS);
        let _ = write!(
            self.out,
            ",\"s\":\"p\",\"cat\":\"fault\",\"name\":\"{name}\",\"ts\":{},\"args\":{{",
            ts(at)
        );
        if let Some(p) = peer {
            self.peer(p);
        }
        self.out.push_str("}}");
    }
}

impl Timeline {
    /// The timeline in the Chrome trace event format (`{"traceEvents":[...]}`); see
    /// the [module docs](super) for how to open it. `names` are the nodes' names, by
    /// node index.
    #[must_use]
    pub fn to_chrome_json(&self, names: &[&str]) -> String {
        let delivered: BTreeSet<u64> = self
            .events()
            .iter()
            .filter_map(|e| match e.kind {
                TimelineKind::Deliver { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        let mut w = Writer {
            out: String::with_capacity(128 * (self.events().len() + 8 * names.len())),
            names,
            first: true,
        };
        w.out.push_str("{\"traceEvents\":[");
        for (i, name) in names.iter().enumerate() {
            let node = NodeId(i);
            w.meta(node, 0, "process_name", name);
            w.open("M", node, 0);
            let _ = write!(
                w.out,
                ",\"name\":\"process_sort_index\",\"args\":{{\"sort_index\":{i}}}}}"
            );
            w.meta(node, FAULTS, "thread_name", "faults");
            w.meta(node, NET_OUT, "thread_name", "net out");
            w.meta(node, NET_IN, "thread_name", "net in");
        }
        for e in self.events() {
            let (node, at) = (e.node, e.at);
            match e.kind {
                TimelineKind::Send {
                    to,
                    seq,
                    stream,
                    bytes,
                } => {
                    let lost = !delivered.contains(&seq);
                    w.open("X", node, NET_OUT);
                    let _ = write!(
                        w.out,
                        ",\"cat\":\"msg\",\"name\":\"send\",\"ts\":{},\"dur\":0.001,\"args\":{{\"to\":\"",
                        ts(at)
                    );
                    let to_name = w.name(to).to_owned();
                    escape(&mut w.out, &to_name);
                    let _ = write!(
                        w.out,
                        "\",\"seq\":{seq},\"kind\":\"{}\",\"bytes\":{bytes}{}}}}}",
                        if stream { "stream" } else { "datagram" },
                        if lost { ",\"lost\":true" } else { "" }
                    );
                    if !lost {
                        w.open("s", node, NET_OUT);
                        let _ = write!(
                            w.out,
                            ",\"cat\":\"msg\",\"name\":\"msg\",\"id\":{seq},\"ts\":{}}}",
                            ts(at)
                        );
                    }
                }
                TimelineKind::Deliver { from, seq } => {
                    w.open("X", node, NET_IN);
                    let _ = write!(
                        w.out,
                        ",\"cat\":\"msg\",\"name\":\"deliver\",\"ts\":{},\"dur\":0.001,\"args\":{{\"from\":\"",
                        ts(at)
                    );
                    let from_name = w.name(from).to_owned();
                    escape(&mut w.out, &from_name);
                    let _ = write!(w.out, "\",\"seq\":{seq}}}}}");
                    w.open("f", node, NET_IN);
                    let _ = write!(
                        w.out,
                        ",\"bp\":\"e\",\"cat\":\"msg\",\"name\":\"msg\",\"id\":{seq},\"ts\":{}}}",
                        ts(at)
                    );
                }
                TimelineKind::Drop { peer, seq, reason } => {
                    w.open("i", node, FAULTS);
                    let _ = write!(
                        w.out,
                        ",\"s\":\"t\",\"cat\":\"drop\",\"name\":\"drop {}\",\"ts\":{},\"args\":{{\"seq\":{seq},",
                        reason.as_str(),
                        ts(at)
                    );
                    w.peer(peer);
                    w.out.push_str("}}");
                }
                TimelineKind::Crash => w.instant(node, at, "crash", None),
                TimelineKind::Restart => w.instant(node, at, "restart", None),
                TimelineKind::Pause => w.instant(node, at, "pause", None),
                TimelineKind::Resume => w.instant(node, at, "resume", None),
                TimelineKind::Partition { peer, both } => w.instant(
                    node,
                    at,
                    if both {
                        "partition"
                    } else {
                        "partition one-way"
                    },
                    Some(peer),
                ),
                TimelineKind::Heal { peer } => w.instant(node, at, "heal", Some(peer)),
                TimelineKind::HealAll => w.instant(node, at, "heal all", None),
                TimelineKind::Reset { peer } => w.instant(node, at, "reset", Some(peer)),
                TimelineKind::Up { peer } => w.instant(node, at, "up", Some(peer)),
            }
        }
        let _ = write!(
            w.out,
            "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{{\"events\":{},\"cap\":{},\"events_left_out\":{},\"truncated\":{}}}}}\n",
            self.events().len(),
            self.cap(),
            self.dropped(),
            self.truncated()
        );
        w.out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sim::DropReason;

    fn at(ns: u64) -> Instant {
        Instant::ZERO + Duration::from_nanos(ns)
    }

    #[test]
    fn escapes_quotes_backslashes_and_control_characters() {
        let mut s = String::new();
        escape(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "a\\\"b\\\\c\\nd\\u0001é");
    }

    #[test]
    fn time_is_microseconds_with_nanosecond_decimals() {
        assert_eq!(ts(at(1_234_567)), "1234.567");
        assert_eq!(ts(at(5)), "0.005");
    }

    #[test]
    fn a_delivered_send_gets_a_flow_and_an_undelivered_one_is_marked_lost() {
        let mut t = Timeline::new(10);
        let (a, b) = (NodeId(0), NodeId(1));
        let send = |seq| TimelineKind::Send {
            to: b,
            seq,
            stream: true,
            bytes: 3,
        };
        t.push(at(1000), a, send(1));
        t.push(at(1000), a, send(2));
        t.push(at(2500), b, TimelineKind::Deliver { from: a, seq: 1 });
        t.push(
            at(2600),
            b,
            TimelineKind::Drop {
                peer: a,
                seq: 2,
                reason: DropReason::Crashed,
            },
        );
        let json = t.to_chrome_json(&["a", "b\"q"]);
        assert_eq!(json.matches("\"ph\":\"s\"").count(), 1);
        assert_eq!(json.matches("\"ph\":\"f\"").count(), 1);
        assert!(json.contains("\"id\":1,\"ts\":1.000"));
        assert!(json.contains("\"seq\":2,\"kind\":\"stream\",\"bytes\":3,\"lost\":true"));
        assert!(json.contains("\"name\":\"b\\\"q\""));
        assert!(json.contains("\"truncated\":false"));
    }
}
