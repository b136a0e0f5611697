//! Tern's wire envelope: the protobuf schema and its strict, bounded decoder.
//!
//! Every message between containers is one [`v1::Envelope`] followed by an opaque
//! payload frame. The schema is `protos/tern/v1/envelope.proto`; the Rust types are
//! generated from it at build time by protox (no system `protoc` needed).
//!
//! ```
//! use tern_proto::{Limits, PROTOCOL_VERSION, decode_envelope, encode_envelope, v1};
//!
//! let env = v1::Envelope {
//!     version: PROTOCOL_VERSION,
//!     message_id: 7,
//!     kind: v1::Kind::Tell.into(),
//!     destination: Some(v1::ComponentRef { node: String::new(), name: "counter".into(), generation: 0 }),
//!     message_type: "demo.Add".into(),
//!     content_type: "application/postcard".into(),
//!     ..Default::default()
//! };
//! let bytes = encode_envelope(&env);
//! assert_eq!(decode_envelope(&bytes, &Limits::default()).unwrap(), env);
//! ```
//!
//! [`session::Session`] is the sans-IO wire protocol on top: request ids, reply
//! correlation, deadlines and order per peer, fed `(input, now)`.
//!
//! # Guarantees
//!
//! - Decoding never panics and never allocates more than the input's own length in
//!   total: the input size is checked against [`Limits::max_envelope_bytes`] before
//!   parsing, and protobuf strings and bytes cannot claim more than the input holds.
//! - A decoded envelope is valid: a supported version, a known kind, the fields its kind
//!   needs, and every string within its limit. Anything else is a typed [`DecodeError`].
//! - **Versions**: an envelope whose `version` is not [`PROTOCOL_VERSION`] is refused
//!   with [`DecodeError::UnsupportedVersion`] (a receiver answers it with
//!   `ERROR_CODE_UNSUPPORTED_VERSION`). **Unknown fields** are skipped, so a newer sender
//!   may add fields within a version without breaking older receivers.
//!
//! # Non-goals
//!
//! - Payloads are not decoded here: they are opaque bytes in the application's encoding.
//! - No framing: the transport carries envelope and payload as separate frames.

pub mod control;
mod envelope;
mod error;
pub mod fuzzing;
mod limits;
pub mod session;

pub use envelope::{PROTOCOL_VERSION, decode_envelope, encode_envelope};
pub use error::DecodeError;
pub use limits::Limits;

/// Generated from `protos/tern/v1/envelope.proto` and `control.proto`; the `.proto` comments become the docs.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::use_self)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tern.v1.rs"));

    /// Generated from `protos/tern/v1/gossip.proto`: the plaintext of a membership
    /// gossip datagram (decoded and checked by `tern-discovery`).
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::use_self)]
    pub mod gossip {
        include!(concat!(env!("OUT_DIR"), "/tern.v1.gossip.rs"));
    }
}
