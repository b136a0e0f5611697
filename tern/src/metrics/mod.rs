//! Metrics and status of a container: a snapshot of its counters, written as
//! OpenMetrics text for `/metrics` and as JSON for `/status` by the admin listener
//! ([`crate::app`]'s `[admin]` section).
//!
//! Counters are read when a scrape asks for them ([`Snapshot::collect`]), from the
//! public accessors of the node, the components, the runtime and gossip; nothing is
//! counted twice and nothing costs anything on the message path. Two things are
//! measured for the listener: the poll-loop lag (a task asks to wake every 100 ms and
//! records how late it is) and per-component rates over the last ten seconds
//! ([`Sampler`]).
//!
//! Labels are per node (`node` on every metric) and per component name, never per
//! instance or message id.
//!
//! # Catalogue
//!
//! | metric | type | labels | meaning |
//! |--------|------|--------|---------|
//! | `tern_mailbox_depth` | gauge | `component` | messages waiting |
//! | `tern_mailbox_capacity` | gauge | `component` | mailbox size before senders wait |
//! | `tern_component_handled_total` | counter | `component` | messages handled, failed handlers included |
//! | `tern_component_failures_total` | counter | `component` | panics, `Context::fail`, failed `started`, escalations |
//! | `tern_component_restarts_total` | counter | `component` | incarnations after the first |
//! | `tern_component_dropped_total` | counter | `component` | messages rejected when the component stopped |
//! | `tern_remote_messages_total` | counter | `kind` = `tells_sent`, `asks_sent`, `requests_delivered`, `requests_held` | remote traffic |
//! | `tern_remote_requests_failed_total` | counter | `reason` = `refused_inbound`, `dropped_inbound`, `expired_in_mailbox`, `fenced_generation`, `pending_expired`, `send_failed`, `ask_timeout`, `ask_lost_with_connection`, `tell_refused_peer_lost`, `tell_refused_unreachable`, `tell_refused_backpressure`, `tell_refused_pending_full`, `tell_refused_other` | requests that did not get through |
//! | `tern_remote_frames_rejected_total` | counter | `reason` = `malformed`, `unmatched_reply`, `unmatched_stream_frame`, `credit_overrun`, `bad_control` | frames dropped on arrival |
//! | `tern_remote_pending` | gauge | | messages waiting for a component name |
//! | `tern_remote_streams` | gauge | `side` = `consumer`, `producer` | open streams |
//! | `tern_remote_directory_updates_total` | counter | | directory updates from peers |
//! | `tern_runtime_tasks` | gauge | | tasks alive on the container thread |
//! | `tern_runtime_tasks_panicked_total` | counter | | tasks that ended in a panic |
//! | `tern_runtime_polls_total` | counter | | task polls |
//! | `tern_runtime_parks_total` | counter | | times the thread blocked for I/O, a timer or a wake |
//! | `tern_poll_lag_seconds` | histogram | | how late the poll loop woke a task that asked for a time |
//! | `tern_gossip_members` | gauge | `state` = `alive`, `suspect`, `dead`, `left` | membership (with `[gossip]`) |
//! | `tern_gossip_health` | gauge | | Lifeguard local health score, 0 healthy |
//! | `tern_gossip_datagrams_total`, `tern_gossip_bytes_total` | counter | `direction` = `in`, `out` | gossip traffic |
//! | `tern_gossip_datagrams_rejected_total` | counter | `reason` | gossip datagrams refused |
//!
//! | `tern_ask_latency_seconds` | histogram | | this node's remote asks, from the call to the outcome (100 µs doubling to 6.5 s) |
//! | `tern_peer_frames_total`, `tern_peer_bytes_total` | counter | `peer`, `direction` = `in`, `out` | frames and bytes to and from each peer (at most 1024 peers, the rest as `(other)`) |
//! | `tern_runtime_busy_ratio` | gauge | | fraction of the last ten seconds the container thread was not parked |
//! | `tern_spans_exported_total` | counter | | spans an OpenTelemetry collector took (with `[trace] otlp_endpoint`) |
//! | `tern_span_batches_total` | counter | `outcome` = `exported`, `failed`, `dropped` | span batches posted to the collector: taken, failed (refused, error status, timeout), dropped unsent (queue full) |
//! | `tern_spans_export_lost_total` | counter | | spans in failed or dropped batches, or pushed out of the ring before export |
//!
//! Not yet exported, because no counter exists today: inbound refusals by finer
//! reason (unknown component, full mailbox) wait for the rebuilt remote layer;
//! connection counts (the ZeroMQ transport counts them in `ZmqStats`, which the node
//! does not hand to the admin listener).
//!
//! The mapping from counters to metrics is in one file, `metrics/catalogue.rs`.

mod catalogue;
mod cluster;
mod sampler;
mod status;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tern_discovery::{Discovery, GossipStats};
use tern_executor::RuntimeStats;

use crate::ComponentStats;
use crate::remote::{ASK_LATENCY_BOUNDS, AskLatency, Node, NodeStats};

pub use cluster::{components, components_table};
pub use sampler::{Rate, Sampler};
pub use status::status_table;

/// Gossip's part of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct GossipSnapshot {
    /// Every member: name, state (`alive`, `suspect`, `dead`, `left`), health fact.
    pub members: Vec<(String, &'static str, Option<String>)>,
    /// This node's Lifeguard health score (0 is healthy).
    pub health: u32,
    /// Gossip's counters.
    pub stats: GossipStats,
}

/// Everything `/metrics` and `/status` say, read at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The node's name.
    pub node: String,
    /// The node's generation.
    pub generation: u64,
    /// Every exported component and its counters.
    pub components: Vec<(String, ComponentStats)>,
    /// The node's remote counters.
    pub remote: NodeStats,
    /// How long the node's remote asks took.
    pub ask_latency: AskLatency,
    /// Frames and bytes to and from each peer.
    pub traffic: Vec<(String, crate::remote::PeerTraffic)>,
    /// The executor's counters.
    pub runtime: RuntimeStats,
    /// Membership, when gossip runs.
    pub gossip: Option<GossipSnapshot>,
    /// Configured peers (static `[peers]`).
    pub peers: Vec<String>,
    /// Lag and rates.
    pub sampler: Sampler,
    /// The span exporter's counters, when spans go to a collector (set by the admin
    /// listener; [`Snapshot::collect`] leaves it `None`).
    pub export: Option<crate::trace::ExportCounts>,
}

impl Snapshot {
    /// Reads the counters of the container `name` now, on its thread: those of
    /// `node` (none without one), of the runtime, and of `discovery`.
    #[must_use]
    pub fn collect(
        name: &str,
        node: Option<&Node>,
        generation: u64,
        discovery: Option<&Discovery>,
        peers: Vec<String>,
        sampler: &Sampler,
    ) -> Self {
        let gossip = discovery.map(|d| GossipSnapshot {
            members: d
                .members()
                .into_iter()
                .map(|m| {
                    let health = m.fact("health").map(str::to_owned);
                    (m.name, m.state.as_str(), health)
                })
                .collect(),
            health: d.health(),
            stats: d.stats(),
        });
        Self {
            node: name.to_owned(),
            generation,
            components: node.map(Node::exports).unwrap_or_default(),
            remote: node.map(Node::stats).unwrap_or_default(),
            ask_latency: node.map(Node::ask_latency).unwrap_or_default(),
            traffic: node.map(Node::traffic).unwrap_or_default(),
            runtime: tern_executor::stats(),
            gossip,
            peers,
            sampler: sampler.clone(),
            export: None,
        }
    }

    /// The snapshot as OpenMetrics text (ends with `# EOF`).
    #[must_use]
    pub fn openmetrics(&self) -> String {
        let mut registry =
            Registry::with_labels([("node".into(), self.node.clone().into())].into_iter());
        registry.register_collector(Box::new(Families(catalogue::families(self))));
        registry.register_collector(Box::new(Lag(self.sampler.lag_histogram())));
        registry.register_collector(Box::new(AskLatencyFamily(self.ask_latency)));
        registry.register_collector(Box::new(Busy(self.sampler.busy())));
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would be a bug in a
        // family's name, and the partial text is still the best answer.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }

    /// The snapshot as the `/status` JSON document.
    #[must_use]
    pub fn status(&self) -> serde_json::Value {
        status::status(self)
    }
}

#[derive(Debug)]
struct Families(Vec<catalogue::Family>);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let kind = match f.kind {
                catalogue::Kind::Counter => MetricType::Counter,
                catalogue::Kind::Gauge => MetricType::Gauge,
            };
            let mut metric = encoder.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, v) in &f.samples {
                let m = metric.encode_family(labels)?;
                match f.kind {
                    catalogue::Kind::Counter => ConstCounter::new(*v).encode(m)?,
                    catalogue::Kind::Gauge => ConstGauge::new(*v).encode(m)?,
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Lag(Histogram);

impl Collector for Lag {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let m = encoder.encode_descriptor(
            "tern_poll_lag_seconds",
            "How late the poll loop woke a task that asked to wake at a given time.",
            None,
            MetricType::Histogram,
        )?;
        self.0.encode(m)
    }
}

#[derive(Debug)]
struct AskLatencyFamily(AskLatency);

impl Collector for AskLatencyFamily {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut m = encoder.encode_descriptor(
            "tern_ask_latency_seconds",
            "How long this node's remote asks took, from the call to the outcome.",
            None,
            MetricType::Histogram,
        )?;
        let buckets: Vec<(f64, u64)> = ASK_LATENCY_BOUNDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.0.buckets().iter().copied())
            .collect();
        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum().as_secs_f64(),
            self.0.count(),
            &buckets,
            None,
        )
    }
}

#[derive(Debug)]
struct Busy(Option<f64>);

impl Collector for Busy {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(busy) = self.0 else {
            return Ok(());
        };
        let m = encoder.encode_descriptor(
            "tern_runtime_busy_ratio",
            "Fraction of the last ten seconds the container thread ran (was not parked).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(busy).encode(m)
    }
}
