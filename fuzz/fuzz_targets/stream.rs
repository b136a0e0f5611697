#![no_main]
//! `tern_proto::fuzzing::stream_ops`: streamed replies between two wire sessions
//! through a lossy, duplicating, reordering network with forged stream frames; see its
//! docs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern_proto::fuzzing::stream_ops(data));
