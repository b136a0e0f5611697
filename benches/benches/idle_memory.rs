//! Heap bytes per idle component, for every framework.
//!
//! A counting global allocator (a thin wrapper over `System`) tracks live heap bytes. Per
//! framework: build its single-threaded runtime, warm it up with one component, read live
//! bytes, spawn 10,000 idle counters (the same component as in the timing benchmarks) and
//! ask the last one (so every one has started and is parked on its empty mailbox), read
//! live bytes again. The handles are stored in a vector allocated before the first
//! reading, so the figure is the heap a component costs, not its handle (whose `size_of`
//! is printed beside it). Allocator bookkeeping (malloc chunk headers, fragmentation) is
//! not counted: these are requested bytes.
//!
//! Run with `cargo bench -p tern-benches --bench idle_memory`; it prints a table.

// Benches are binaries: there is no public API to document, and an unwrap that fires
// means the benchmark itself is wrong. `unsafe_code` is allowed for the one
// `unsafe impl GlobalAlloc` below (the crate denies it everywhere else; see Cargo.toml).
#![allow(clippy::unwrap_used, missing_docs, unsafe_code)]
// The table is this binary's output.
#![allow(clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use tern_benches::{IDLE_COMPONENTS, peers};

/// `System`, plus a count of live requested bytes.
struct Counting;

/// Live requested bytes.
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live allocations.
static BLOCKS: AtomicIsize = AtomicIsize::new(0);
/// Live allocations by size, in 8-byte classes up to 4 KiB (the last class holds the rest).
static SIZES: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];
const CLASSES: usize = 513;

fn class(size: usize) -> usize {
    size.div_ceil(8).min(CLASSES - 1)
}

#[allow(clippy::cast_possible_wrap)]
fn add(n: usize) {
    LIVE.fetch_add(n as isize, Ordering::Relaxed);
    BLOCKS.fetch_add(1, Ordering::Relaxed);
    SIZES[class(n)].fetch_add(1, Ordering::Relaxed);
}

#[allow(clippy::cast_possible_wrap)]
fn sub(n: usize) {
    LIVE.fetch_sub(n as isize, Ordering::Relaxed);
    BLOCKS.fetch_sub(1, Ordering::Relaxed);
    SIZES[class(n)].fetch_sub(1, Ordering::Relaxed);
}

/// A snapshot of the live-allocation counters.
/// (Arrays, not vectors: taking one must not allocate.)
struct Snapshot {
    blocks: isize,
    sizes: [isize; CLASSES],
}

fn snapshot() -> Snapshot {
    Snapshot {
        blocks: BLOCKS.load(Ordering::Relaxed),
        sizes: std::array::from_fn(|c| SIZES[c].load(Ordering::Relaxed)),
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees are ours; the counting has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from this allocator, i.e. from `System`.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr` came from `System` with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            sub(layout.size());
            add(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    // `cargo bench` passes `--bench` (and maybe a filter); a filter selects frameworks.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!("idle_memory: {IDLE_COMPONENTS} idle components per framework");
    println!(
        "{:<9} {:>15} {:>13} {:>10} {:>12}  top size classes (bytes x allocs/component)",
        "framework", "bytes/component", "allocs/comp.", "total KiB", "handle bytes"
    );
    for peer in peers() {
        if !filter.is_empty() && !filter.iter().any(|f| peer.name().contains(f.as_str())) {
            continue;
        }
        // The probe also snapshots the allocation counts, by size class, at each reading
        // (into room reserved beforehand, so the probe itself allocates nothing).
        let snaps = std::cell::RefCell::new(Vec::with_capacity(2));
        let m = peer.idle_memory(IDLE_COMPONENTS, &|| {
            let live = LIVE.load(Ordering::Relaxed);
            snaps.borrow_mut().push(snapshot());
            live
        });
        let snaps = snaps.into_inner();
        let (before, after) = (&snaps[0], &snaps[1]);
        #[allow(clippy::cast_precision_loss)]
        let kib = (m.after - m.before) as f64 / 1024.0;
        #[allow(clippy::cast_precision_loss)]
        let blocks = (after.blocks - before.blocks) as f64 / IDLE_COMPONENTS as f64;
        // Size classes that grew by at least one allocation per 10 components, biggest
        // byte contribution first.
        let mut classes: Vec<(usize, isize)> = (0..CLASSES)
            .map(|c| (c, after.sizes[c] - before.sizes[c]))
            .filter(|&(_, d)| d >= (IDLE_COMPONENTS / 10) as isize)
            .collect();
        classes.sort_by_key(|&(c, d)| std::cmp::Reverse(c as isize * d));
        let top: Vec<String> = classes
            .iter()
            .take(5)
            .map(|&(c, d)| {
                #[allow(clippy::cast_precision_loss)]
                let per = d as f64 / IDLE_COMPONENTS as f64;
                if c == CLASSES - 1 {
                    format!(">4096 x{per:.2}")
                } else {
                    format!("{} x{per:.2}", c * 8)
                }
            })
            .collect();
        println!(
            "{:<9} {:>15.1} {:>13.2} {:>10.1} {:>12}  {}",
            peer.name(),
            m.per_component(),
            blocks,
            kib,
            m.handle_size,
            top.join(", ")
        );
    }
}
