#![no_main]
//! `tern_gossip::fuzzing::datagram` (see its docs).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tern_gossip::fuzzing::datagram(data);
});
