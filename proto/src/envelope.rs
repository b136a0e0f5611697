//! Encoding and strict decoding of envelopes.

use prost::Message;

use crate::error::DecodeError;
use crate::limits::Limits;
use crate::v1::{Envelope, Kind};

/// The protocol version this build speaks and writes.
pub const PROTOCOL_VERSION: u32 = 1;

/// Encodes an envelope. Encoding cannot fail: the buffer grows as needed.
#[must_use]
pub fn encode_envelope(env: &Envelope) -> Vec<u8> {
    env.encode_to_vec()
}

/// Decodes and validates one envelope.
///
/// # Errors
///
/// A [`DecodeError`] naming the first problem found: size, wire format, version, kind,
/// a field the kind requires, a string over its limit, or a malformed trace context.
/// Unknown error codes are accepted (see [`ErrorCode`](crate::v1::ErrorCode)'s
/// forward compatibility in the `.proto`).
///
/// # Examples
///
/// ```
/// use tern_proto::{DecodeError, Limits, decode_envelope};
///
/// let huge = vec![0u8; 1 << 20];
/// assert!(matches!(decode_envelope(&huge, &Limits::default()), Err(DecodeError::TooLarge { .. })));
/// assert!(decode_envelope(&[0xff, 0xff], &Limits::default()).is_err());
/// ```
pub fn decode_envelope(buf: &[u8], limits: &Limits) -> Result<Envelope, DecodeError> {
    if buf.len() > limits.max_envelope_bytes {
        return Err(DecodeError::TooLarge {
            len: buf.len(),
            max: limits.max_envelope_bytes,
        });
    }
    let env = Envelope::decode(buf).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    validate(&env, limits)?;
    Ok(env)
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), DecodeError> {
    if s.len() > max {
        return Err(DecodeError::FieldTooLong {
            field,
            len: s.len(),
            max,
        });
    }
    Ok(())
}

fn require(ok: bool, kind: Kind, field: &'static str) -> Result<(), DecodeError> {
    if ok {
        Ok(())
    } else {
        Err(DecodeError::MissingField {
            kind: kind.as_str_name(),
            field,
        })
    }
}

fn validate(env: &Envelope, limits: &Limits) -> Result<(), DecodeError> {
    match env.version {
        0 => return Err(DecodeError::MissingVersion),
        PROTOCOL_VERSION => {}
        v => return Err(DecodeError::UnsupportedVersion(v)),
    }
    let kind = match Kind::try_from(env.kind) {
        Ok(Kind::Unspecified) | Err(_) => return Err(DecodeError::UnknownKind(env.kind)),
        Ok(k) => k,
    };
    require(env.message_id != 0, kind, "message_id")?;

    for (field, r) in [("source", &env.source), ("destination", &env.destination)] {
        if let Some(r) = r {
            check_len(field, &r.node, limits.max_name_len)?;
            check_len(field, &r.name, limits.max_name_len)?;
        }
    }
    check_len(
        "message_type",
        &env.message_type,
        limits.max_message_type_len,
    )?;
    check_len(
        "content_type",
        &env.content_type,
        limits.max_content_type_len,
    )?;
    check_len("flow", &env.flow, limits.max_flow_len)?;
    if let Some(t) = &env.trace
        && (t.trace_id.len() != 16 || t.span_id.len() != 8)
    {
        return Err(DecodeError::BadTraceContext);
    }

    match kind {
        Kind::Tell | Kind::Ask => {
            let named = env.destination.as_ref().is_some_and(|d| !d.name.is_empty());
            require(named, kind, "destination.name")?;
            require(!env.message_type.is_empty(), kind, "message_type")?;
        }
        Kind::Reply | Kind::StreamItem | Kind::StreamEnd | Kind::Cancel => {
            require(env.correlation_id != 0, kind, "correlation_id")?;
        }
        Kind::Credit => {
            require(env.correlation_id != 0, kind, "correlation_id")?;
            require(env.credit != 0, kind, "credit")?;
        }
        Kind::Error => {
            require(env.correlation_id != 0, kind, "correlation_id")?;
            // Any error code is accepted: a newer peer may send codes this build does
            // not know, which receivers treat as `ERROR_CODE_UNSPECIFIED`.
            let Some(info) = &env.error else {
                return Err(DecodeError::MissingField {
                    kind: kind.as_str_name(),
                    field: "error",
                });
            };
            check_len("error.detail", &info.detail, limits.max_error_detail_len)?;
        }
        Kind::Unspecified => return Err(DecodeError::UnknownKind(env.kind)),
    }
    Ok(())
}
