//! The deterministic simulator's core: a [`World`] of many nodes on one thread under one
//! virtual clock, seeded random streams, and the canonical trace hash.
//!
//! Everything here is pure and platform-independent (integer arithmetic only), so a
//! seed gives the same draws and the same hash on every machine and in every process.

mod net;
mod rng;
mod sched;
mod socket;
mod trace;
mod world;

pub use net::{Delivery, LinkConfig, NetConfig, NetStats, Packet, SendOutcome, SocketEvent};
pub use rng::{SeedTree, SimRng};
pub use sched::Scheduler;
pub use socket::SimSocket;
pub use trace::TraceHash;
pub use world::{
    Divergence, NodeId, NodeStatus, TraceEvent, TraceKind, Violation, World, charge,
    check_determinism,
};
