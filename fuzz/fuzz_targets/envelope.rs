#![no_main]
//! `tern_proto::fuzzing::envelope` (see its docs), plus reliability test 21's allocation
//! bound measured on the heap: decoding N bytes never holds more than 2 × N bytes
//! alive at once, beyond a small constant for the error value.

use libfuzzer_sys::fuzz_target;
use tern_fuzz::{Counting, peak_heap};
use tern_proto::Limits;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Room for a `DecodeError`'s message and prost's error context.
const SLACK: usize = 1024;

fuzz_target!(|data: &[u8]| {
    tern_proto::fuzzing::envelope(data);
    let peak = peak_heap(|| {
        let _ = tern_proto::decode_envelope(data, &Limits::default());
    });
    assert!(
        peak <= 2 * data.len() + SLACK,
        "decode_envelope held {peak} heap bytes for a {}-byte input",
        data.len()
    );
});
