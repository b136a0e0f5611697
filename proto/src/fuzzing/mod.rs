//! Entry points for the fuzz targets and the corpus replay test.
//!
//! Each function takes raw bytes (what libFuzzer generated, or one file of the committed
//! corpus in `fuzz/corpus/<target>/`), drives one decoder or the wire session with them,
//! and checks what this crate promises. It returns normally when every promise held and
//! panics, naming the broken promise, when one did not: libFuzzer records that input as
//! a crash, and the replay test fails on it.
//!
//! | function | fuzz target | what it checks |
//! |---|---|---|
//! | [`envelope`] | `envelope` | [`decode_envelope`](crate::decode_envelope) on raw bytes: no panic, a decoded envelope is valid and holds at most as many string and bytes as the input, and it round-trips |
//! | [`envelope_round_trip`] | `envelope_round_trip` | an envelope built field by field: encode then decode gives it back, or exactly the [`DecodeError`](crate::DecodeError) the validation rules predict |
//! | [`directory`] | `directory` | [`decode_directory`](crate::control::decode_directory) on raw bytes, as for envelopes |
//! | [`directory_round_trip`] | `directory_round_trip` | a directory built field by field, as for envelopes |
//! | [`session_ops`] | `session` | two [`Session`](crate::session::Session)s talking through a lossy, reordering, forging network, step by step against a model |
//! | [`stream_ops`] | `stream` | streamed replies between two [`Session`](crate::session::Session)s: items in order and once, within credit, through loss, duplication, reordering and forged stream frames |
//!
//! Structured inputs are read from the bytes with [`arbitrary::Unstructured`], so the
//! same bytes mean the same input under libFuzzer (nightly) and under `cargo test`
//! (stable). The `envelope` and `directory` fuzz targets also measure the heap a decode
//! holds (with a counting allocator, which needs `unsafe` and so lives in `fuzz/`).
//! Nothing here is meant for production code paths.

use crate::v1::{ComponentRef, Envelope, Kind, TraceContext};
use crate::{Limits, PROTOCOL_VERSION};

mod arb;
mod decode;
mod session_ops;
mod stream_ops;

pub use decode::{directory, directory_round_trip, envelope, envelope_round_trip};
pub use session_ops::session_ops;
pub use stream_ops::stream_ops;

/// A valid TELL with every optional field set: the seed of the envelope corpus, and
/// the fixture of the decoding tests.
#[must_use]
pub fn sample_tell() -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        message_id: 42,
        kind: Kind::Tell.into(),
        source: Some(ComponentRef {
            node: "n1".into(),
            name: "front".into(),
            generation: 0,
        }),
        destination: Some(ComponentRef {
            node: "n2".into(),
            name: "worker".into(),
            generation: 0,
        }),
        message_type: "demo.v1.Work".into(),
        content_type: "application/postcard".into(),
        timeout_ms: 1500,
        trace: Some(TraceContext {
            trace_id: vec![7; 16],
            span_id: vec![9; 8],
            flags: 1,
        }),
        flow: "checkout".into(),
        horizon: 3,
        ..Envelope::default()
    }
}

/// A minimal answer of `kind` (REPLY, ERROR, a stream kind) to ask 42.
#[must_use]
pub fn sample_answer(kind: Kind) -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        message_id: 43,
        correlation_id: 42,
        kind: kind.into(),
        ..Envelope::default()
    }
}

/// Limits far below the defaults, so short inputs reach every "too long" branch.
const TIGHT: Limits = Limits {
    max_envelope_bytes: 96,
    max_name_len: 6,
    max_message_type_len: 10,
    max_content_type_len: 5,
    max_flow_len: 3,
    max_error_detail_len: 12,
    max_directory_entries: 3,
};

// ---------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------
