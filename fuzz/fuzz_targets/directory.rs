#![no_main]
//! `tern_proto::fuzzing::directory` (see its docs), plus the allocation bound measured
//! on the heap: decoding N bytes holds at most the names (N bytes), one `String` per
//! entry (at most N / 2 entries and at most `max_directory_entries`) and twice the
//! input beside that, beyond a small constant for the error value.

use libfuzzer_sys::fuzz_target;
use tern_fuzz::{Counting, peak_heap};
use tern_proto::Limits;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Room for a `DecodeError`'s message and prost's error context.
const SLACK: usize = 1024;

fuzz_target!(|data: &[u8]| {
    tern_proto::fuzzing::directory(data);
    let limits = Limits::default();
    let peak = peak_heap(|| {
        let _ = tern_proto::control::decode_directory(data, &limits);
    });
    let entries = (data.len() / 2).min(limits.max_directory_entries);
    let bound = 2 * data.len() + entries * size_of::<String>() + SLACK;
    assert!(
        peak <= bound,
        "decode_directory held {peak} heap bytes for a {}-byte input (bound {bound})",
        data.len()
    );
});
