#![no_main]
//! `tern_discovery::fuzzing::datagram` (see its docs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_discovery::fuzzing::datagram(data);
});
