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

/// Reads one protobuf varint (at most 10 bytes).
fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Walks the top-level fields of a protobuf message without allocating: calls
/// `f(field_number, wire_type, value)` for each, `value` being the varint's value for
/// wire type 0 and 0 otherwise. Fields inside groups are skipped. Returns whether the
/// whole input is well-formed wire format; on `false`, `f` has seen the fields before
/// the break. Accepts everything prost's decoder accepts (and may accept more, such as
/// groups nested deeper than prost's recursion limit).
pub(crate) fn walk_fields(mut buf: &[u8], mut f: impl FnMut(u64, u8, u64)) -> bool {
    let mut depth = 0usize;
    while !buf.is_empty() {
        let Some(key) = read_varint(&mut buf) else {
            return false;
        };
        let (number, wire_type) = (key >> 3, (key & 7) as u8);
        if key > u64::from(u32::MAX) || number == 0 {
            return false;
        }
        let mut value = 0;
        let skip = match wire_type {
            0 => match read_varint(&mut buf) {
                Some(v) => {
                    value = v;
                    0
                }
                None => return false,
            },
            1 => 8,
            2 => match read_varint(&mut buf).map(usize::try_from) {
                Some(Ok(len)) => len,
                _ => return false,
            },
            3 => {
                depth += 1;
                0
            }
            4 => match depth.checked_sub(1) {
                Some(d) => {
                    depth = d;
                    continue;
                }
                None => return false,
            },
            5 => 4,
            _ => return false,
        };
        match buf.get(skip..) {
            Some(rest) => buf = rest,
            None => return false,
        }
        if depth == 0 {
            f(number, wire_type, value);
        }
    }
    depth == 0
}

/// The fields of an envelope that say what it answers, read from well-formed wire
/// format of any size without decoding strings or allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ids {
    pub(crate) kind: i32,
    pub(crate) message_id: u64,
    pub(crate) correlation_id: u64,
}

/// [`Ids`] of an envelope that failed to decode or validate, so that a refused ask can
/// still be answered and a refused answer still matched; `None` when `buf` is not
/// well-formed protobuf. Agrees with prost on every input prost decodes.
pub(crate) fn scan_ids(buf: &[u8]) -> Option<Ids> {
    let mut ids = Ids::default();
    let ok = walk_fields(buf, |number, wire_type, value| {
        if wire_type == 0 {
            match number {
                2 => ids.message_id = value,
                3 => ids.correlation_id = value,
                // prost reads an int32 enum as a varint truncated to 32 bits.
                4 => ids.kind = value as i32,
                _ => {}
            }
        }
    });
    ok.then_some(ids)
}
