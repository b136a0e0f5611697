//! The cross-thread half of the run queue.
//!
//! Runnables woken on the runtime's own thread go straight onto its local FIFO queue
//! (no atomics). Runnables woken from any other thread land here, and the runtime moves
//! them to the back of the local queue at the start of each turn, so the whole queue
//! stays first come, first served.

use std::collections::VecDeque;

use crate::sync::{AtomicBool, Mutex, Ordering, lock};

/// A multi-producer, single-consumer FIFO with a cheap emptiness hint.
#[derive(Debug)]
pub(crate) struct Injector<T> {
    queue: Mutex<VecDeque<T>>,
    nonempty: AtomicBool,
}

impl<T> Injector<T> {
    pub(crate) fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            nonempty: AtomicBool::new(false),
        }
    }

    /// Appends an item. Callable from any thread.
    pub(crate) fn push(&self, item: T) {
        let mut q = lock(&self.queue);
        q.push_back(item);
        self.nonempty.store(true, Ordering::SeqCst);
    }

    /// Whether an item may be waiting.
    pub(crate) fn maybe_nonempty(&self) -> bool {
        self.nonempty.load(Ordering::SeqCst)
    }

    /// Moves every queued item, in order, to the back of `out`.
    pub(crate) fn drain_into(&self, out: &mut VecDeque<T>) -> usize {
        if !self.maybe_nonempty() {
            return 0;
        }
        let mut q = lock(&self.queue);
        self.nonempty.store(false, Ordering::SeqCst);
        let n = q.len();
        out.extend(q.drain(..));
        n
    }
}
