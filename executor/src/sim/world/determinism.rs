//! Whether a seed replays exactly: two runs of one scenario, compared event by event.

use super::World;
use crate::sim::{TraceEvent, TraceHash};

/// Where two runs of the same seed first differed; see [`check_determinism`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The seed.
    pub seed: u64,
    /// Index of the first differing event.
    pub index: u64,
    /// The event in the first run (`None`: that run had ended).
    pub first: Option<TraceEvent>,
    /// The event in the second run.
    pub second: Option<TraceEvent>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show =
            |e: &Option<TraceEvent>| e.map_or_else(|| "(run ended)".to_owned(), |e| e.to_string());
        write!(
            f,
            "non-determinism: seed {} diverged at trace event {}\n  run 1: {}\n  run 2: {}\nrepro: SIM_SEED={}",
            self.seed,
            self.index,
            show(&self.first),
            show(&self.second),
            self.seed
        )
    }
}

/// Runs `scenario` twice on fresh worlds for `seed`, keeping the traces, and returns
/// the trace hash, or the first event at which the runs differ (design/simulation.md
/// D1, D3): a wall-clock read, an unseeded random choice or a default-hashed map that
/// steers behaviour shows up as a divergence at the first step it changed.
///
/// # Errors
///
/// [`Divergence`] when the two runs differ.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::{World, check_determinism};
///
/// let hash = check_determinism(5, |world: &mut World| {
///     let n = world.add_node("n").unwrap();
///     world.spawn_on(n, async { tern_executor::time::sleep(Duration::from_secs(1)).await }).detach();
///     world.run_until_idle();
/// })
/// .unwrap();
/// assert_eq!(hash.hex().len(), 32);
/// ```
pub fn check_determinism(
    seed: u64,
    scenario: impl Fn(&mut World),
) -> Result<TraceHash, Divergence> {
    let run = || {
        let mut world = World::new(seed).unwrap_or_else(|e| panic!("world: {e}"));
        world.keep_trace(true);
        scenario(&mut world);
        let events = world.log.take().unwrap_or_default();
        (world.trace_hash(), events)
    };
    let (hash_a, a) = run();
    let (hash_b, b) = run();
    if hash_a == hash_b && a == b {
        return Ok(hash_a);
    }
    let index = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.len().min(b.len()));
    Err(Divergence {
        seed,
        index: index as u64,
        first: a.get(index).copied(),
        second: b.get(index).copied(),
    })
}
