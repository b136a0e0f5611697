//! The deterministic simulator's core: a [`World`] of many nodes on one thread under one
//! virtual clock, seeded random streams, and the canonical trace hash.
//!
//! Everything here is pure and platform-independent (integer arithmetic only), so a
//! seed gives the same draws and the same hash on every machine and in every process.
//!
//! # Looking at a run on a timeline
//!
//! [`World::keep_timeline`] keeps a bounded [`Timeline`] of what each node did (sends,
//! deliveries, drops with their reason, crashes, restarts, pauses, partitions, heals,
//! resets, reconnections), apart from the canonical trace, so the trace hash does not
//! change. [`World::chrome_trace`] writes it as Chrome trace event JSON
//! (`{"traceEvents":[...]}`): one process per node, events at their virtual time in
//! microseconds, faults as instant events, and a flow arrow (`ph` `s` / `f`, `id` =
//! the network sequence number) from each send to its delivery; sends with no delivery
//! are marked `"lost":true`, and `otherData.truncated` says whether the cap left events
//! out. Open the file in <https://ui.perfetto.dev> (Open trace file) or
//! `chrome://tracing` (Load): both read it locally in the browser, nothing is
//! uploaded. `cargo run --release --example sim_cluster -- --seed 7 --trace-out
//! trace.json` writes one for the example cluster.

mod chrome_trace;
mod net;
mod rng;
mod sched;
mod socket;
mod timeline;
mod trace;
mod world;

pub use net::{Delivery, LinkConfig, NetConfig, NetStats, Packet, SendOutcome, SocketEvent};
pub use rng::{SeedTree, SimRng};
pub use sched::Scheduler;
pub use socket::SimSocket;
pub use timeline::{DropReason, Timeline, TimelineEvent, TimelineKind};
pub use trace::{TraceEvent, TraceHash, TraceKind};
pub use world::{Divergence, NodeId, NodeStatus, Violation, World, charge, check_determinism};
