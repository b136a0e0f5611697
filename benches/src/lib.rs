//! The workloads behind tern's comparison benchmarks, written once per framework.
//!
//! Each framework module (`tern_peer`, `tokio_peer`, `actix_peer`, `ractor_peer`,
//! `kameo_peer`) implements [`Peer`]: the same six workloads, each through that framework's
//! idiomatic API, on a single thread:
//!
//! - tern: `tern::Runtime` (single-threaded by design).
//! - tokio: `Builder::new_current_thread().build()`, as a user would set it up, without
//!   `enable_all` (no I/O or time driver: nothing here needs them).
//! - actix: `actix::System::new()`, whose arbiter is a tokio current-thread runtime plus a
//!   `LocalSet`; actors start on the system arbiter, i.e. on the benchmark thread.
//! - ractor and kameo: their tokio integration, on the same current-thread tokio runtime
//!   as the tokio peer.
//!
//! Every method builds its runtime and components, then times only the measured loop
//! (criterion's `iter_custom`), and tears everything down again untimed.
//!
//! # Workloads
//!
//! - **tell, batched** ([`Peer::tell_batched`]): one sender pushes `n` `u64` tells to one
//!   counter without yielding (the mailbox has room for all of them), then one ask tells
//!   it that all were handled.
//! - **tell, forced task switch** ([`Peer::tell_pingpong`]): two components, *ping* and
//!   *pong*. Ping tells pong a `u64`; pong's handler tells it back to ping; ping's handler
//!   tells pong the next one. Only one message is ever in flight, so every message wakes
//!   the other component and the scheduler has to switch tasks once per message, on every
//!   framework the same way. `n` round trips are `2 n` messages; a oneshot ends the batch.
//! - **ask** ([`Peer::ask`]): the sender asks the counter for its value and awaits the
//!   reply, one at a time (tokio: an mpsc message carrying a oneshot sender).
//! - **fan-in** ([`Peer::fan_in`]): `senders` plain tasks each tell `per_sender` messages
//!   to one counter (waiting for mailbox room where the mailbox is bounded); the driver
//!   joins them and then asks the counter once.
//! - **ring** ([`Peer::ring`]): `nodes` components, each knowing the next; a token goes
//!   round `laps` times (`nodes * laps` hops, one tell each).
//! - **spawn** ([`Peer::spawn`]): spawn `k` idle counters and ask the last one once. The
//!   ask makes the timing include each component's start (all five schedulers are FIFO,
//!   so the last one answering means every earlier one has been polled), so a framework
//!   cannot look faster by deferring work.
//! - **idle memory** ([`Peer::idle_memory`]): like spawn, with `k` components kept alive
//!   and a caller-supplied probe of live heap bytes read before and after.
//!
//! Components that stand for the same thing have the same state everywhere: a counter is
//! a `u64`.

// Benchmarks measure wall time with `std::time::Instant`; tern's determinism ban list
// (clippy.toml) is for the runtime's own code, not for code that measures it.
#![allow(clippy::disallowed_methods)]
// Benchmark code fails loudly: an unwrap that fires means the benchmark is wrong.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

pub mod actix_peer;
pub mod child;
pub mod kameo_peer;
pub mod ractor_peer;
pub mod tern_peer;
pub mod tokio_peer;

/// Messages per batch in the batched tell benchmark. At most the smallest bounded
/// mailbox used (1024), so the sender never has to wait for room.
pub const TELL_BATCH: u64 = 1000;
/// Round trips per batch in the ping-pong (forced task switch) benchmark; each round trip
/// is two messages.
pub const PINGPONG_ROUND_TRIPS: u64 = 1000;
/// Sender tasks in the fan-in benchmark.
pub const FAN_IN_SENDERS: usize = 8;
/// Messages each fan-in sender tells.
pub const FAN_IN_PER_SENDER: u64 = 1000;
/// Components in the ring.
pub const RING_NODES: usize = 1000;
/// Laps the token makes round the ring per iteration.
pub const RING_LAPS: u64 = 10;
/// Components spawned per iteration of the spawn benchmark.
pub const SPAWN_BATCH: usize = 1000;
/// Components kept alive for the idle-memory measurement.
pub const IDLE_COMPONENTS: usize = 10_000;
/// Mailbox capacity used where a framework lets the user choose one and the workload
/// needs room for a whole batch (tern's default).
pub const MAILBOX: usize = 1024;

/// Live heap bytes before and after spawning the idle components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleMemory {
    /// Components spawned (and started) between the two readings.
    pub components: usize,
    /// Live bytes just before spawning.
    pub before: isize,
    /// Live bytes with every component spawned, started and idle.
    pub after: isize,
    /// `size_of` the handle the caller keeps per component (stored in a vector allocated
    /// before the first reading, so not part of `after - before`).
    pub handle_size: usize,
}

impl IdleMemory {
    /// Heap bytes per idle component.
    #[must_use]
    #[allow(clippy::cast_precision_loss)]
    pub fn per_component(&self) -> f64 {
        (self.after - self.before) as f64 / self.components as f64
    }
}

/// One framework's implementation of the benchmark workloads (see the crate docs).
///
/// Every method but [`Peer::idle_memory`] runs its workload `iters` times and returns the
/// time the measured part took, for criterion's `iter_custom`.
pub trait Peer: Sync {
    /// The name shown in reports.
    fn name(&self) -> &'static str;
    /// `iters` batches of `n` tells plus one ask.
    fn tell_batched(&self, iters: u64, n: u64) -> Duration;
    /// `iters` batches of `n` ping-pong round trips (`2 n` messages).
    fn tell_pingpong(&self, iters: u64, n: u64) -> Duration;
    /// `iters` sequential ask round trips.
    fn ask(&self, iters: u64) -> Duration;
    /// `iters` rounds of `senders` tasks each telling `per_sender` messages, then one ask.
    fn fan_in(&self, iters: u64, senders: usize, per_sender: u64) -> Duration;
    /// `iters` runs of a token making `laps` laps of a ring of `nodes` components.
    fn ring(&self, iters: u64, nodes: usize, laps: u64) -> Duration;
    /// `iters` rounds of spawning `k` idle components and asking the last one.
    fn spawn(&self, iters: u64, k: usize) -> Duration;
    /// Spawns `k` idle components and reads `live_bytes` before and after.
    fn idle_memory(&self, k: usize, live_bytes: &dyn Fn() -> isize) -> IdleMemory;
}

/// Every framework, tern first.
#[must_use]
pub fn peers() -> Vec<&'static dyn Peer> {
    vec![
        &tern_peer::Tern,
        &tokio_peer::Tokio,
        &actix_peer::Actix,
        &ractor_peer::Ractor,
        &kameo_peer::Kameo,
    ]
}

/// Creates the single-threaded tokio runtime used by the tokio, ractor and kameo peers:
/// current-thread, set up as a user would, without `enable_all` (no I/O or time driver).
#[must_use]
pub fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}
