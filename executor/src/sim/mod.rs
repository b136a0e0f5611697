//! Building blocks of the deterministic simulator: seeded random streams and the
//! canonical trace hash.
//!
//! Everything here is pure and platform-independent (integer arithmetic only), so a
//! seed gives the same draws and the same hash on every machine and in every process.

mod rng;
mod trace;

pub use rng::{SeedTree, SimRng};
pub use trace::TraceHash;
