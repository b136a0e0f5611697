//! The catalogue: which counter becomes which `tern_` metric. This is the one place
//! that reads the fields of [`NodeStats`], [`ComponentStats`](crate::ComponentStats),
//! [`RuntimeStats`](tern_executor::RuntimeStats) and
//! [`GossipStats`](tern_discovery::GossipStats); when a counter moves or is renamed,
//! only this file changes.

use crate::remote::NodeStats;

use super::Snapshot;

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Only goes up (written with a `_total` suffix).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family: a name, its help, and one value per label set.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Family {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) kind: Kind,
    pub(super) samples: Vec<(Vec<(&'static str, String)>, u64)>,
}

fn one(name: &'static str, help: &'static str, kind: Kind, v: u64) -> Family {
    Family {
        name,
        help,
        kind,
        samples: vec![(Vec::new(), v)],
    }
}

fn by(
    name: &'static str,
    help: &'static str,
    kind: Kind,
    label: &'static str,
    rows: &[(&str, u64)],
) -> Family {
    Family {
        name,
        help,
        kind,
        samples: rows
            .iter()
            .map(|(l, v)| (vec![(label, (*l).to_owned())], *v))
            .collect(),
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Requests that did not get through, by reason: the same rows feed `/metrics` and
/// `/status`.
pub(super) fn failed_requests(s: &NodeStats) -> [(&'static str, u64); 13] {
    let t = &s.tells_refused;
    [
        ("refused_inbound", s.refused),
        ("dropped_inbound", s.dropped),
        ("expired_in_mailbox", s.requests_expired),
        ("fenced_generation", s.session.fenced),
        ("pending_expired", s.pending_expired),
        ("send_failed", s.send_failures),
        ("ask_timeout", s.asks_timed_out),
        ("ask_lost_with_connection", s.asks_lost),
        ("tell_refused_peer_lost", t.peer_lost),
        ("tell_refused_unreachable", t.unreachable),
        ("tell_refused_backpressure", t.backpressure),
        ("tell_refused_pending_full", t.pending_full),
        ("tell_refused_other", t.other),
    ]
}

/// What this node sent and delivered: the same rows feed `/metrics` and `/status`.
pub(super) fn traffic(s: &NodeStats) -> [(&'static str, u64); 4] {
    [
        ("tells_sent", s.tells_sent),
        ("asks_sent", s.asks_sent),
        ("requests_delivered", s.requests_delivered),
        ("requests_held", s.held),
    ]
}

/// Every family of the snapshot, in catalogue order.
pub(super) fn families(snap: &Snapshot) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let per_component = |name, help, kind, f: &dyn Fn(&crate::ComponentStats) -> u64| Family {
        name,
        help,
        kind,
        samples: snap
            .components
            .iter()
            .map(|(c, s)| (vec![("component", c.clone())], f(s)))
            .collect(),
    };
    let r = &snap.remote;
    let rt = &snap.runtime;
    let mut out = vec![
        per_component(
            "tern_mailbox_depth",
            "Messages waiting in the component's mailbox.",
            Gauge,
            &|s| to_u64(s.queued),
        ),
        per_component(
            "tern_mailbox_capacity",
            "Messages the component's mailbox holds before senders wait.",
            Gauge,
            &|s| to_u64(s.capacity),
        ),
        per_component(
            "tern_component_handled",
            "Messages handled to completion, failed handlers included.",
            Counter,
            &|s| s.handled,
        ),
        per_component(
            "tern_component_failures",
            "Handler panics, Context::fail calls, failed started hooks and escalations.",
            Counter,
            &|s| s.failures,
        ),
        per_component(
            "tern_component_restarts",
            "Incarnations started after the first.",
            Counter,
            &|s| s.restarts,
        ),
        per_component(
            "tern_component_dropped",
            "Messages rejected because the component stopped with them queued.",
            Counter,
            &|s| s.dropped,
        ),
        by(
            "tern_remote_messages",
            "Remote traffic of this node, by kind.",
            Counter,
            "kind",
            &traffic(r),
        ),
        by(
            "tern_remote_requests_failed",
            "Requests that did not get through, by reason.",
            Counter,
            "reason",
            &failed_requests(r),
        ),
        by(
            "tern_remote_frames_rejected",
            "Frames dropped on arrival, by reason.",
            Counter,
            "reason",
            &[
                ("malformed", r.session.malformed),
                ("unmatched_reply", r.session.unmatched_replies),
                ("unmatched_stream_frame", r.session.unmatched_stream_frames),
                ("credit_overrun", r.session.credit_overruns),
                ("bad_control", r.bad_control),
            ],
        ),
        one(
            "tern_remote_pending",
            "Messages waiting now for a component name to become known.",
            Gauge,
            to_u64(r.pending),
        ),
        by(
            "tern_remote_streams",
            "Streams open now, by this node's side.",
            Gauge,
            "side",
            &[
                ("consumer", to_u64(r.streams_open)),
                ("producer", to_u64(r.streams_producing)),
            ],
        ),
        one(
            "tern_remote_directory_updates",
            "Directory updates taken from peers.",
            Counter,
            r.directory_updates,
        ),
        one(
            "tern_runtime_tasks",
            "Tasks alive on the container thread.",
            Gauge,
            rt.tasks_alive,
        ),
        one(
            "tern_runtime_tasks_panicked",
            "Tasks that ended in a panic.",
            Counter,
            rt.tasks_panicked,
        ),
        one(
            "tern_runtime_polls",
            "Task polls by the container's executor.",
            Counter,
            rt.polls,
        ),
        one(
            "tern_runtime_parks",
            "Times the container thread blocked waiting for I/O, a timer or a wake.",
            Counter,
            rt.parks,
        ),
    ];
    if let Some(g) = &snap.gossip {
        let count = |state: &str| to_u64(g.members.iter().filter(|m| m.1 == state).count());
        out.extend([
            by(
                "tern_gossip_members",
                "Members as this node sees them, by state.",
                Gauge,
                "state",
                &["alive", "suspect", "dead", "left"].map(|s| (s, count(s))),
            ),
            one(
                "tern_gossip_health",
                "Lifeguard local health score: 0 is healthy, higher means this node's own probes are unreliable.",
                Gauge,
                u64::from(g.health),
            ),
            by(
                "tern_gossip_datagrams",
                "Gossip datagrams, by direction.",
                Counter,
                "direction",
                &[("in", g.stats.received), ("out", g.stats.sent)],
            ),
            by(
                "tern_gossip_bytes",
                "Gossip bytes, by direction.",
                Counter,
                "direction",
                &[("in", g.stats.bytes_received), ("out", g.stats.bytes_sent)],
            ),
            by(
                "tern_gossip_datagrams_rejected",
                "Gossip datagrams refused, by reason.",
                Counter,
                "reason",
                &[
                    ("bad_header", g.stats.bad_header),
                    ("other_cluster", g.stats.other_cluster),
                    ("unknown_key", g.stats.unknown_key),
                    ("forged", g.stats.forged),
                    ("malformed", g.stats.malformed),
                ],
            ),
        ]);
    }
    if let Some(e) = &snap.export {
        out.extend([
            one(
                "tern_spans_exported",
                "Spans an OpenTelemetry collector took.",
                Counter,
                e.spans_exported,
            ),
            one(
                "tern_spans_export_lost",
                "Spans not exported: in failed or dropped batches, or pushed out of the ring first.",
                Counter,
                e.spans_lost,
            ),
            by(
                "tern_span_batches",
                "Span batches sent to the collector, by outcome: exported, failed (refused, error status, timeout), dropped (queue full).",
                Counter,
                "outcome",
                &[
                    ("exported", e.batches_exported),
                    ("failed", e.batches_failed),
                    ("dropped", e.batches_dropped),
                ],
            ),
        ]);
    }
    out.extend(per_peer(snap));
    out
}

/// Frames and bytes per peer and direction.
fn per_peer(snap: &Snapshot) -> [Family; 2] {
    let rows = |f: &dyn Fn(&crate::remote::PeerTraffic) -> (u64, u64)| {
        snap.traffic
            .iter()
            .flat_map(|(peer, t)| {
                let (i, o) = f(t);
                [
                    (
                        vec![("peer", peer.clone()), ("direction", "in".to_owned())],
                        i,
                    ),
                    (
                        vec![("peer", peer.clone()), ("direction", "out".to_owned())],
                        o,
                    ),
                ]
            })
            .collect()
    };
    [
        Family {
            name: "tern_peer_frames",
            help: "Frames to and from each peer (out: handed to the transport).",
            kind: Kind::Counter,
            samples: rows(&|t| (t.frames_in, t.frames_out)),
        },
        Family {
            name: "tern_peer_bytes",
            help: "Bytes (envelope and payload) to and from each peer.",
            kind: Kind::Counter,
            samples: rows(&|t| (t.bytes_in, t.bytes_out)),
        },
    ]
}
