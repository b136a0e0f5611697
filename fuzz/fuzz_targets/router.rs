#![no_main]
//! `tern_actors::remote::fuzzing::router_ops`: one node's sans-IO router fed
//! arbitrary calls, frames, connection and membership events and time, its promises
//! (bounded memory, every ask ended by its deadline, no panic) checked after every
//! step; see its docs.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tern_actors::remote::fuzzing::router_ops(data));
