//! Sleeping and waking the container thread.
//!
//! The runtime thread parks when it has nothing to run; any thread can unpark it. The
//! protocol is three states in one atomic, so a wake is never lost and a wake that
//! arrives while the runtime is busy costs one atomic swap and no system call:
//!
//! - `unpark`: swap in `NOTIFIED`; only if the old state was `PARKED` signal the
//!   blocking primitive (the notify descriptor in the reactor's poll set).
//! - `park`: consume a pending `NOTIFIED`, or move `EMPTY -> PARKED` and block; on the
//!   way out swap back to `EMPTY`.
//!
//! The blocking primitive is a parameter ([`Signal`]), so loom can check this exact code
//! with a condition variable in place of the file descriptor.

use crate::sync::{AtomicU8, Ordering};

const EMPTY: u8 = 0;
const PARKED: u8 = 1;
const NOTIFIED: u8 = 2;

/// What a parked thread blocks on, and how another thread interrupts it.
pub(crate) trait Signal {
    /// Interrupts a current or the next `wait`. Called from any thread.
    fn signal(&self);
}

/// The atomic half of the park/unpark protocol.
#[derive(Debug)]
pub(crate) struct ParkState {
    state: AtomicU8,
}

impl ParkState {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
        }
    }

    /// Records a wake; signals the blocking primitive only if the owner is parked.
    pub(crate) fn unpark(&self, signal: &impl Signal) {
        if self.state.swap(NOTIFIED, Ordering::SeqCst) == PARKED {
            signal.signal();
        }
    }

    /// Runs `block` unless a wake is already pending. Returns `true` if a wake was
    /// consumed (before or during the block), so the caller drains its signal.
    pub(crate) fn park(&self, block: impl FnOnce()) -> bool {
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return true;
        }
        if self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            // Only the owner moves to PARKED, so the state became NOTIFIED meanwhile.
            self.state.store(EMPTY, Ordering::SeqCst);
            return true;
        }
        block();
        self.state.swap(EMPTY, Ordering::SeqCst) == NOTIFIED
    }
}
