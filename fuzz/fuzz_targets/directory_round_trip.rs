#![no_main]
//! `tern_proto::fuzzing::directory_round_trip`: see its docs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern_proto::fuzzing::directory_round_trip(data));
