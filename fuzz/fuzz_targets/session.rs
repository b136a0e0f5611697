#![no_main]
//! `tern_proto::fuzzing::session_ops`: two wire sessions driven by an operation
//! sequence and checked against a model after every step; see its docs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern_proto::fuzzing::session_ops(data));
