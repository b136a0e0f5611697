//! The step loop: which node runs next, timers and deliveries, the trace record, and the
//! checks after every step (invariants, time limit, livelock).

use std::time::Duration;

use super::{CHARGED, Instant, Node, NodeId, TraceEvent, TraceKind, Violation, World};
use crate::runtime::Runtime;

impl World {
    /// Steps until `done(world)` holds, the world is idle, or an invariant fails.
    /// Returns whether `done` held.
    pub fn run_until_with(&mut self, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
    }

    /// One step: run one ready task of a node chosen by seed, or, when no node can
    /// run, move the clock to the earliest timer, network delivery or end of charged
    /// work, and deliver and fire what is due. Returns `false` when nothing is ready
    /// and nothing is pending (the world is idle).
    pub fn step(&mut self) -> bool {
        if self.violation.is_some() {
            return false;
        }
        let progressed = self.step_inner();
        if progressed {
            self.check_invariants();
        }
        progressed && self.violation.is_none()
    }

    /// Records a failure: the world stops, and the violation carries the node status
    /// table and the last trace events (design/simulation.md T4, T5).
    fn fail(&mut self, message: String) {
        if self.violation.is_some() {
            return;
        }
        let mut report = message;
        report.push_str("\nnodes:");
        for (i, n) in self.nodes.iter().enumerate() {
            report.push_str(&format!(
                "\n  {i} {:<12} up={} paused={} gen={} busy={:?} ready={} next_timer={:?}",
                n.name,
                n.rt.is_some(),
                n.paused,
                n.generation,
                n.busy,
                n.rt.as_ref().is_some_and(Runtime::has_ready),
                n.next_deadline().map(Instant::as_nanos),
            ));
        }
        let events = self.trace_events();
        if !events.is_empty() {
            report.push_str("\nlast events:");
            for e in &events[events.len().saturating_sub(10)..] {
                report.push_str(&format!("\n  {e}"));
            }
        }
        report.push_str(&format!("\nrepro: SIM_SEED={}", self.seeds.root()));
        self.violation = Some(Violation {
            step: self.steps,
            at: self.clock.now(),
            message: report,
        });
    }

    /// Stops the world with a violation when virtual time would pass `limit` while
    /// work is still pending.
    pub fn set_time_limit(&mut self, limit: Instant) {
        self.limits.time_limit = Some(limit);
    }

    /// Stops the world with a livelock violation after `polls` task polls in a row
    /// with no timer fired and no message delivered (default 1,000,000). Virtual time
    /// moved only by poll costs or charged work does not count as progress.
    pub fn set_livelock_limit(&mut self, polls: u64) {
        self.limits.livelock_polls = polls;
    }

    fn check_invariants(&mut self) {
        let failed = self.invariants.0.iter().find_map(|check| check(self).err());
        if let Some(message) = failed {
            self.fail(format!("invariant violated: {message}"));
        }
    }

    /// The cost of one poll, drawn from the `poll` stream (nothing drawn when off or
    /// fixed).
    fn poll_cost(&mut self) -> Duration {
        let (min, max) = self.poll_cost;
        if max == min {
            return Duration::from_nanos(min);
        }
        Duration::from_nanos(min + self.poll_rng.below(max - min + 1))
    }

    /// The node to run now, by the scheduler; `None` when no node can run.
    fn pick(&mut self, now: Instant) -> Option<usize> {
        let nodes = &self.nodes;
        if let Some(pct) = &mut self.pct {
            return pct.pick(nodes.len(), |i| nodes[i].schedulable(now));
        }
        // One pass over the nodes: `schedulable` looks into each runtime's queue.
        self.ready.clear();
        self.ready
            .extend((0..nodes.len()).filter(|&i| nodes[i].schedulable(now)));
        if self.ready.is_empty() {
            return None;
        }
        let pick = usize::try_from(self.sched.below(self.ready.len() as u64)).unwrap_or(0);
        self.ready.get(pick).copied()
    }

    fn step_inner(&mut self) -> bool {
        let now = self.clock.now();
        if let Some(i) = self.pick(now) {
            CHARGED.with(|c| c.set(Duration::ZERO));
            if let Some(rt) = &self.nodes[i].rt {
                // The thread was idle since its last poll's cost ended: its runtime
                // counts that as parked, as a real one's park would.
                rt.add_parked(now.saturating_duration_since(self.nodes[i].idle_from));
                rt.run_one();
            }
            let cost = CHARGED.with(|c| c.replace(Duration::ZERO)) + self.poll_cost();
            let n = &mut self.nodes[i];
            n.idle_from = now + cost;
            if !cost.is_zero() {
                n.busy += cost;
                n.busy_until = now + cost;
            }
            self.steps += 1;
            self.record_event(TraceKind::Poll, i, 0);
            self.polls_without_progress += 1;
            if self.polls_without_progress > self.limits.livelock_polls {
                self.fail(format!(
                    "livelock: {} polls without a timer or a delivery",
                    self.polls_without_progress
                ));
            }
            return true;
        }
        let Some(at) = self.next_event() else {
            return false;
        };
        if let Some(limit) = self.limits.time_limit
            && at > limit
        {
            self.clock.advance(limit - self.clock.now());
            self.fail(format!(
                "time limit of {} ns reached with work pending",
                limit.as_nanos()
            ));
            return false;
        }
        self.clock.advance(at - self.clock.now());
        // Deliveries first, in (time, send order); then timers, in node order.
        let mut arrived = std::mem::take(&mut self.arrived);
        let mut wakers = std::mem::take(&mut self.wakers);
        self.net
            .borrow_mut()
            .deliver_due(at, &mut arrived, &mut wakers);
        let mut progressed = !arrived.is_empty();
        for (kind, node, detail) in arrived.drain(..) {
            self.record_event(kind, node.0, detail);
        }
        for w in wakers.drain(..) {
            w.wake();
        }
        self.arrived = arrived;
        self.wakers = wakers;
        for i in 0..self.nodes.len() {
            if self.nodes[i].next_deadline().is_some_and(|d| d <= at)
                && let Some(rt) = &self.nodes[i].rt
            {
                rt.fire_timers();
                self.record_event(TraceKind::Timers, i, 0);
                progressed = true;
            }
        }
        if progressed {
            self.polls_without_progress = 0;
        }
        true
    }

    /// The earliest timer of any running node, network delivery, or end of charged work
    /// of a node that has work waiting.
    fn next_event(&self) -> Option<Instant> {
        let now = self.clock.now();
        let timers = self.nodes.iter().filter_map(Node::next_deadline).min();
        let delivery = self.net.borrow().next_delivery();
        let busy = self
            .nodes
            .iter()
            .filter(|n| {
                !n.paused && n.busy_until > now && n.rt.as_ref().is_some_and(Runtime::has_ready)
            })
            .map(|n| n.busy_until)
            .min();
        [timers, delivery, busy].into_iter().flatten().min()
    }

    /// Appends one event to the canonical trace (and to the kept log, if enabled).
    pub(super) fn record_event(&mut self, kind: TraceKind, node: usize, detail: u64) {
        let event = TraceEvent {
            index: self.trace.records(),
            at: self.clock.now(),
            node: NodeId(node),
            kind,
            detail,
        };
        self.trace.record(&event.canonical());
        if let Some(log) = &mut self.log {
            log.push(event);
        }
    }

    /// Steps until the world is idle. Returns the steps taken.
    pub fn run_until_idle(&mut self) -> u64 {
        let start = self.steps;
        while self.step() {}
        self.steps - start
    }

    /// Steps until virtual time reaches `deadline` or the world is idle, whichever is
    /// first; the clock never passes `deadline`, and ends exactly on it.
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            let now = self.clock.now();
            let ready = self.nodes.iter().any(|n| n.schedulable(now));
            if !ready && self.next_event().is_none_or(|at| at > deadline) {
                if now < deadline {
                    self.clock.advance(deadline - now);
                }
                return;
            }
            if !self.step() {
                return;
            }
        }
    }
}
