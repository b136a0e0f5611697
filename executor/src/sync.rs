//! The one place cross-thread primitives come from.
//!
//! Ordinary builds use `std`; builds with `RUSTFLAGS="--cfg tern_loom"` swap in loom's
//! model-checked versions, so the loom tests exercise the exact code that ships
//! (design/simulation.md L1). Everything in this crate that another thread can touch
//! imports from here, never from `std::sync` directly.

#[cfg(not(tern_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
#[cfg(not(tern_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(tern_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, Ordering};
#[cfg(tern_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

/// Locks a mutex, recovering the data if another thread panicked while holding it.
///
/// Every critical section in this crate leaves its data consistent before any call that
/// could panic, so a poisoned lock carries no broken invariant and must not turn one
/// thread's panic into a cascade.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}
