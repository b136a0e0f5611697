//! Why an envelope was refused.

/// Why [`decode_envelope`](crate::decode_envelope) refused its input. Each variant names
/// what was wrong; none carries the input, so logging one is safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is larger than [`Limits::max_envelope_bytes`](crate::Limits).
    #[error("envelope of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not a well-formed protobuf message (truncated, bad wire type,
    /// invalid UTF-8 in a string, ...).
    #[error("malformed envelope: {0}")]
    Malformed(String),
    /// `version` is absent or 0.
    #[error("envelope has no protocol version")]
    MissingVersion,
    /// `version` is not one this build speaks.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u32),
    /// `kind` is absent, 0 or a value this build does not know.
    #[error("unknown envelope kind {0}")]
    UnknownKind(i32),
    /// A field the envelope's kind requires is absent or zero.
    #[error("{kind} envelope lacks {field}")]
    MissingField {
        /// The envelope's kind.
        kind: &'static str,
        /// The field that is missing.
        field: &'static str,
    },
    /// A string field is longer than its limit.
    #[error("{field} is {len} bytes, limit {max}")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The trace context's ids do not have the W3C lengths (16 and 8 bytes).
    #[error("trace context ids must be 16 and 8 bytes")]
    BadTraceContext,
}
