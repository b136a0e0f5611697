//! One turn of the run loop: cross-thread wakes in, up to `budget` tasks, due timers,
//! then I/O, and parking when nothing is ready.

use std::time::Duration;

use async_task::Runnable;

use super::Core;
use crate::reactor::Notifier;
use crate::sync::{AtomicBool, Ordering};

impl Core {
    /// One turn: take in cross-thread wakes, run up to `budget` tasks, fire due timers,
    /// then look at I/O (without blocking if work is waiting, otherwise until the next
    /// timer or wake).
    pub(super) fn turn(&self, main_ready: &AtomicBool) {
        self.bump(|s| s.turns += 1);
        self.remote
            .injector
            .drain_into(&mut self.local.borrow_mut());

        let mut ran = 0;
        while ran < self.budget {
            let next = self.local.borrow_mut().pop_front();
            let Some(runnable) = next else { break };
            runnable.run();
            ran += 1;
        }
        self.bump(|s| s.polls += ran as u64);

        let busy = !self.local.borrow().is_empty()
            || main_ready.load(Ordering::Acquire)
            || self.remote.injector.maybe_nonempty();
        // While work keeps coming, timers and I/O are looked at once per `budget` polls:
        // often enough that neither starves, rarely enough that a ping-pong of short
        // turns does not pay a clock read and a system call per message.
        let since = self.polls_since_check.get() + ran;
        if busy && since < self.budget {
            self.polls_since_check.set(since);
            return;
        }
        self.polls_since_check.set(0);
        self.fire_due_timers();
        if busy {
            if self.reactor.borrow().has_sources() {
                self.poll_io(Some(Duration::ZERO));
            }
            return;
        }
        let next = self.timers.borrow_mut().next_deadline();
        match next {
            Some(deadline) if self.clock.is_virtual() => {
                if self.reactor.borrow().has_sources() {
                    self.poll_io(Some(Duration::ZERO));
                }
                if self.local.borrow().is_empty() && !main_ready.load(Ordering::Acquire) {
                    self.clock.advance_to(deadline);
                    self.turn_now.set(None);
                    self.fire_due_timers();
                }
            }
            Some(deadline) => {
                let wait = deadline - self.fresh_now();
                self.park(Some(wait), main_ready);
                self.fire_due_timers();
            }
            None => self.park(None, main_ready),
        }
    }

    /// The next runnable in FIFO order, taking in cross-thread wakes first.
    pub(super) fn next_runnable(&self) -> Option<Runnable> {
        self.remote
            .injector
            .drain_into(&mut self.local.borrow_mut());
        self.local.borrow_mut().pop_front()
    }

    pub(super) fn fire_due_timers(&self) {
        let mut due = self.due.borrow_mut();
        {
            let mut timers = self.timers.borrow_mut();
            if timers.len() == 0 {
                return;
            }
            timers.take_due(self.fresh_now(), &mut due);
        }
        for w in due.drain(..) {
            w.wake();
        }
    }

    fn poll_io(&self, timeout: Option<Duration>) {
        let woken = self.reactor.borrow_mut().poll(timeout);
        for w in woken {
            w.wake();
        }
    }

    /// Makes sure other threads can interrupt a blocking poll. Returns the longest
    /// the poll may block: unchanged, or 1 ms if no notify descriptor could be made
    /// (then cross-thread wakes are noticed by polling).
    fn ensure_notifier(&self, timeout: Option<Duration>) -> Option<Duration> {
        let mut reactor = self.reactor.borrow_mut();
        if reactor.has_notify() {
            return timeout;
        }
        match Notifier::pair() {
            Ok((notifier, reader)) => {
                let _ = self.remote.notifier.set(notifier);
                reactor.set_notify(reader);
                timeout
            }
            Err(e) => {
                tracing::error!(error = %e, "no notify descriptor; polling for cross-thread wakes");
                let tick = Duration::from_millis(1);
                Some(timeout.map_or(tick, |t| t.min(tick)))
            }
        }
    }

    fn park(&self, timeout: Option<Duration>, main_ready: &AtomicBool) {
        let start = self.clock.now();
        self.park_inner(timeout, main_ready);
        let parked = self.clock.now().saturating_duration_since(start);
        let nanos = u64::try_from(parked.as_nanos()).unwrap_or(u64::MAX);
        self.bump(|s| {
            s.parks += 1;
            s.parked_nanos = s.parked_nanos.saturating_add(nanos);
        });
    }

    fn park_inner(&self, timeout: Option<Duration>, main_ready: &AtomicBool) {
        let timeout = self.ensure_notifier(timeout);
        let mut woken = Vec::new();
        let notified = self.remote.park.park(|| {
            // Re-check after announcing PARKED: a wake that raced with the decision to
            // park either set NOTIFIED (and `park` returned early) or will signal the fd.
            if main_ready.load(Ordering::Acquire) || self.remote.injector.maybe_nonempty() {
                return;
            }
            woken = self.reactor.borrow_mut().poll(timeout);
        });
        if notified {
            self.reactor.borrow_mut().drain_notify();
        }
        for w in woken {
            w.wake();
        }
    }
}
