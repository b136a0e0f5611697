//! How a [`World`](super::World) chooses which node runs next: a uniform random pick,
//! or PCT (probabilistic concurrency testing).

use super::SimRng;

/// How a [`World`](super::World) picks, at each step, the node whose oldest ready task
/// runs next (design/simulation.md S1). Set it with
/// [`World::set_scheduler`](super::World::set_scheduler).
///
/// Either way each node stays first come, first served inside; only the interleaving
/// *between* nodes is chosen. And either way a node is a candidate only while it has
/// ready work and its thread is not busy (see
/// [`World::set_poll_cost`](super::World::set_poll_cost)): the scheduler decides among
/// the nodes that can run at the same virtual instant.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::{Scheduler, World};
///
/// let mut world = World::new(3).unwrap();
/// // PCT decides every step only when polls cost no virtual time (otherwise the node
/// // that just ran is busy and the other one runs regardless of priorities).
/// world.set_poll_cost(Duration::ZERO, Duration::ZERO);
/// world.set_scheduler(Scheduler::Pct { depth: 2, expected_steps: 20 });
/// let a = world.add_node("a").unwrap();
/// world.spawn_on(a, async {}).detach();
/// world.run_until_idle();
/// assert_eq!(world.scheduler(), Scheduler::Pct { depth: 2, expected_steps: 20 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduler {
    /// Each step picks uniformly among the nodes that can run, from the world's `sched`
    /// seed stream (madsim's random pick). Good at shallow bugs and at varying
    /// everything a little; the default.
    #[default]
    Random,
    /// PCT, the randomized scheduler of Burckhardt, Kothari, Musuvathi and Nagarakatte
    /// ("A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs", ASPLOS
    /// 2010), as in the `shuttle` crate's `PctScheduler`, with nodes in the place of
    /// threads.
    ///
    /// Every node gets a distinct random priority when the world first sees it (nodes
    /// added later too), drawn from the world's `pct` seed stream. Each step runs the
    /// highest-priority node that can run, so one node runs ahead for long stretches,
    /// which a uniform pick almost never does. Before the run, `depth - 1` *change
    /// points* are drawn uniformly in `0..expected_steps`; when the count of scheduling
    /// decisions reaches one, the node about to run drops below every other node. Only
    /// steps where more than one node could run count as decisions (a change point in a
    /// stretch where one node runs alone would change nothing).
    ///
    /// **What it is for**: ordering bugs that need a few specific events in a specific
    /// order, which a uniform pick finds with a probability that shrinks exponentially
    /// with the run's length. The *depth* of a bug is the number of ordering
    /// constraints that must hold for it to show (an atomicity violation between two
    /// nodes has depth 2: the other node must run after the first step and before the
    /// second). **Guarantee**: with `n` nodes and at most `expected_steps` decisions, one
    /// run finds a bug of depth at most `depth` with probability at least
    /// `1 / (n * expected_steps^(depth - 1))`, however long the run; so a few times
    /// `n * expected_steps` seeds find a depth-2 bug almost surely.
    ///
    /// `expected_steps` should be about the number of decisions a run makes (too low
    /// and the change points miss the end of the run; too high and they are spread
    /// thin). The guarantee assumes each decision is the scheduler's: set poll costs to
    /// zero ([`World::set_poll_cost`](super::World::set_poll_cost)), since a node that
    /// is busy with the cost of its last poll cannot run whatever its priority. With
    /// `depth` 0 or 1 there are no change points: the highest-priority node always
    /// runs first.
    Pct {
        /// The bug depth aimed at: `depth - 1` change points.
        depth: u32,
        /// About how many scheduling decisions a run makes; change points fall in
        /// `0..expected_steps`.
        expected_steps: u64,
    },
}

/// The state of a PCT run.
#[derive(Debug)]
pub(super) struct Pct {
    rng: SimRng,
    /// Node indices, highest priority first.
    order: Vec<usize>,
    /// Whether each node (by index) has been lowered by a change point; the lowered
    /// nodes are the tail of `order`.
    lowered: Vec<bool>,
    /// How many nodes are lowered.
    lowered_count: usize,
    /// Sorted decision counts at which the node about to run is lowered.
    change_points: Vec<u64>,
    /// Scheduling decisions so far (steps where more than one node could run).
    decisions: u64,
}

impl Pct {
    /// A PCT run drawing from `rng` (the world's `pct` stream).
    pub(super) fn new(mut rng: SimRng, depth: u32, expected_steps: u64) -> Self {
        let points = if expected_steps == 0 {
            0
        } else {
            depth.saturating_sub(1)
        };
        let mut change_points: Vec<u64> = (0..points).map(|_| rng.below(expected_steps)).collect();
        change_points.sort_unstable();
        change_points.dedup();
        Self {
            rng,
            order: Vec::new(),
            lowered: Vec::new(),
            lowered_count: 0,
            change_points,
            decisions: 0,
        }
    }

    /// Picks the node to run among `nodes` nodes, `can_run` telling which can; `None`
    /// if none can. Nodes not seen before get their random priorities first.
    pub(super) fn pick(&mut self, nodes: usize, can_run: impl Fn(usize) -> bool) -> Option<usize> {
        for node in self.order.len()..nodes {
            // A random rank among the nodes not lowered: a fresh node is above every
            // lowered one, as all initial priorities are in the paper.
            let band = self.order.len() - self.lowered_count;
            let rank = usize::try_from(self.rng.below(band as u64 + 1)).unwrap_or(band);
            self.order.insert(rank, node);
            self.lowered.push(false);
        }
        let mut runnable = self.order.iter().copied().filter(|&i| can_run(i));
        let top = runnable.next()?;
        if runnable.next().is_none() {
            return Some(top);
        }
        let decision = self.decisions;
        self.decisions += 1;
        if self.change_points.binary_search(&decision).is_err() {
            return Some(top);
        }
        // A change point: the node about to run drops below all others.
        if let Some(pos) = self.order.iter().position(|&i| i == top) {
            self.order.remove(pos);
            self.order.push(top);
        }
        if !self.lowered[top] {
            self.lowered[top] = true;
            self.lowered_count += 1;
        }
        self.order.iter().copied().find(|&i| can_run(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SeedTree;

    #[test]
    fn change_points_lower_the_running_node_below_every_other_even_later_ones() {
        for seed in 0..50 {
            let mut pct = Pct::new(SeedTree::new(seed).stream("pct"), 2, 1);
            assert_eq!(pct.change_points, [0]);
            // Decision 0 is the change point: the top node drops, the other one runs.
            let top = pct.order_after(2);
            let ran = pct.pick(2, |_| true).unwrap();
            assert_ne!(ran, top, "seed {seed}");
            assert_eq!(pct.order.last(), Some(&top));
            // A node seen now ranks above the lowered one, wherever it lands.
            pct.pick(3, |_| true).unwrap();
            assert_eq!(pct.order.last(), Some(&top), "seed {seed}");
            assert_eq!(pct.order.len(), 3);
            // No more change points: the same node runs every step.
            let next = pct.pick(3, |_| true).unwrap();
            assert!((0..10).all(|_| pct.pick(3, |_| true) == Some(next)));
            // One node that can run is no decision.
            let before = pct.decisions;
            assert_eq!(pct.pick(3, |i| i == top), Some(top));
            assert_eq!(pct.decisions, before);
        }
    }

    #[test]
    fn depth_sets_the_number_of_change_points() {
        let rng = || SeedTree::new(3).stream("pct");
        assert!(Pct::new(rng(), 0, 100).change_points.is_empty());
        assert!(Pct::new(rng(), 1, 100).change_points.is_empty());
        assert!(Pct::new(rng(), 5, 0).change_points.is_empty());
        let points = Pct::new(rng(), 5, 1_000_000).change_points;
        assert_eq!(points.len(), 4);
        assert!(points.windows(2).all(|w| w[0] < w[1]) && points[3] < 1_000_000);
    }

    impl Pct {
        /// Sees `nodes` nodes without deciding anything; returns the top one.
        fn order_after(&mut self, nodes: usize) -> usize {
            let _ = self.pick(nodes, |_| false);
            self.order[0]
        }
    }
}
