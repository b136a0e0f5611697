//! The decoder targets: envelopes and directories from raw bytes, and built field by
//! field for the round trips.

use arbitrary::Unstructured;
use prost::Message;

use crate::control::{decode_directory, encode_directory};
use crate::envelope::{Ids, scan_ids};
use crate::v1::{Directory, Envelope, Kind};
use crate::{DecodeError, Limits, PROTOCOL_VERSION, decode_envelope, encode_envelope};

use super::arb::*;
use super::*;

/// Decodes `data` as an envelope under the default and under tight [`Limits`].
///
/// Checks: no panic; a decoded envelope passes the validation rules, holds no more
/// string and bytes content than `data.len()` (the bounded-allocation promise),
/// re-encodes to at most `data.len()` bytes and decodes back to the same value; a
/// refused input is refused for the reason the rules give when it parses as protobuf,
/// and as [`DecodeError::Malformed`] (or [`DecodeError::TooLarge`]) when it does not;
/// the allocation-free wire scanner the session reads refused frames with finds the
/// same ids as prost in every input prost decodes.
pub fn envelope(data: &[u8]) {
    if let Ok(raw) = Envelope::decode(data) {
        let ids = Ids {
            kind: raw.kind,
            message_id: raw.message_id,
            correlation_id: raw.correlation_id,
        };
        assert_eq!(
            scan_ids(data),
            Some(ids),
            "the wire scanner disagrees with prost"
        );
    }
    for limits in [Limits::default(), TIGHT] {
        match decode_envelope(data, &limits) {
            Ok(env) => {
                assert!(
                    envelope_content_len(&env) <= data.len(),
                    "a {}-byte input decoded to {} bytes of strings and bytes",
                    data.len(),
                    envelope_content_len(&env)
                );
                assert_eq!(expected_envelope_error(&env, data.len(), &limits), None);
                let again = encode_envelope(&env);
                assert!(
                    again.len() <= data.len(),
                    "re-encoding grew {} bytes to {}",
                    data.len(),
                    again.len()
                );
                assert_eq!(decode_envelope(&again, &limits).as_ref(), Ok(&env));
            }
            Err(e) => {
                let expected = if data.len() > limits.max_envelope_bytes {
                    Some(DecodeError::TooLarge {
                        len: data.len(),
                        max: limits.max_envelope_bytes,
                    })
                } else {
                    match Envelope::decode(data) {
                        Ok(raw) => expected_envelope_error(&raw, data.len(), &limits),
                        Err(_) => {
                            assert!(matches!(e, DecodeError::Malformed(_)), "{e:?}");
                            continue;
                        }
                    }
                };
                assert_eq!(Some(e), expected);
            }
        }
    }
}

/// Builds an envelope (and decoding limits) field by field from `data`, encodes it with
/// [`encode_envelope`] and decodes it with [`decode_envelope`].
///
/// Checks: a valid envelope comes back equal (values, not bytes); an invalid one is
/// refused with exactly the [`DecodeError`] the validation rules predict; nothing
/// panics.
pub fn envelope_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(limits) = arb_limits(&mut u) else {
        return;
    };
    let Ok(env) = arb_envelope(&mut u, &[]) else {
        return;
    };
    let bytes = encode_envelope(&env);
    let got = decode_envelope(&bytes, &limits);
    match expected_envelope_error(&env, bytes.len(), &limits) {
        None => assert_eq!(got, Ok(env)),
        Some(e) => assert_eq!(got, Err(e), "for {env:?}"),
    }
}

/// Total length of an envelope's strings and bytes: what decoding it had to allocate
/// for content.
fn envelope_content_len(env: &Envelope) -> usize {
    let refs = [&env.source, &env.destination]
        .into_iter()
        .flatten()
        .map(|r| r.node.len() + r.name.len())
        .sum::<usize>();
    let trace = env
        .trace
        .as_ref()
        .map_or(0, |t| t.trace_id.len() + t.span_id.len());
    let error = env.error.as_ref().map_or(0, |e| e.detail.len());
    refs + trace + error + env.message_type.len() + env.content_type.len() + env.flow.len()
}

/// The first rule an envelope of `encoded_len` bytes breaks, as [`decode_envelope`]
/// must report it; `None` when it is valid. Written from the rules in the crate docs
/// and `envelope.proto`, independently of the decoder.
fn expected_envelope_error(
    env: &Envelope,
    encoded_len: usize,
    limits: &Limits,
) -> Option<DecodeError> {
    if encoded_len > limits.max_envelope_bytes {
        return Some(DecodeError::TooLarge {
            len: encoded_len,
            max: limits.max_envelope_bytes,
        });
    }
    if env.version == 0 {
        return Some(DecodeError::MissingVersion);
    }
    if env.version != PROTOCOL_VERSION {
        return Some(DecodeError::UnsupportedVersion(env.version));
    }
    let kind = match Kind::try_from(env.kind) {
        Ok(Kind::Unspecified) | Err(_) => return Some(DecodeError::UnknownKind(env.kind)),
        Ok(k) => k,
    };
    let missing = |field| {
        Some(DecodeError::MissingField {
            kind: kind.as_str_name(),
            field,
        })
    };
    let too_long = |field, len: usize, max: usize| {
        (len > max).then_some(DecodeError::FieldTooLong { field, len, max })
    };
    if env.message_id == 0 {
        return missing("message_id");
    }
    let mut lengths = Vec::new();
    for (field, r) in [("source", &env.source), ("destination", &env.destination)] {
        if let Some(r) = r {
            lengths.push((field, r.node.len(), limits.max_name_len));
            lengths.push((field, r.name.len(), limits.max_name_len));
        }
    }
    lengths.push((
        "message_type",
        env.message_type.len(),
        limits.max_message_type_len,
    ));
    lengths.push((
        "content_type",
        env.content_type.len(),
        limits.max_content_type_len,
    ));
    lengths.push(("flow", env.flow.len(), limits.max_flow_len));
    if let Some(e) = lengths
        .into_iter()
        .find_map(|(field, len, max)| too_long(field, len, max))
    {
        return Some(e);
    }
    if let Some(t) = &env.trace
        && (t.trace_id.len() != 16 || t.span_id.len() != 8)
    {
        return Some(DecodeError::BadTraceContext);
    }
    match kind {
        Kind::Tell | Kind::Ask => {
            if env.destination.as_ref().is_none_or(|d| d.name.is_empty()) {
                return missing("destination.name");
            }
            if env.message_type.is_empty() {
                return missing("message_type");
            }
        }
        Kind::Unspecified => return Some(DecodeError::UnknownKind(env.kind)),
        _ => {
            if env.correlation_id == 0 {
                return missing("correlation_id");
            }
            match (kind, &env.error) {
                (Kind::Credit, _) if env.credit == 0 => return missing("credit"),
                (Kind::Error, None) => return missing("error"),
                (Kind::Error, Some(info)) => {
                    return too_long(
                        "error.detail",
                        info.detail.len(),
                        limits.max_error_detail_len,
                    );
                }
                _ => {}
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------

/// Decodes `data` as a control-plane [`Directory`] under the default and under tight
/// [`Limits`].
///
/// Checks: no panic; a decoded directory passes the rules of [`decode_directory`],
/// holds no more string content than `data.len()` and no more names than the input could
/// frame (two bytes each), and round-trips; a refused input is refused for the reason
/// the rules give when it parses as protobuf.
pub fn directory(data: &[u8]) {
    for limits in [Limits::default(), TIGHT] {
        match decode_directory(data, &limits) {
            Ok(dir) => {
                let content: usize =
                    dir.node.len() + dir.components.iter().map(String::len).sum::<usize>();
                assert!(
                    content <= data.len(),
                    "{content} bytes of names from {} bytes",
                    data.len()
                );
                assert!(2 * dir.components.len() <= data.len());
                assert_eq!(expected_directory_error(&dir, data.len(), &limits), None);
                let again = encode_directory(&dir);
                assert!(again.len() <= data.len());
                assert_eq!(decode_directory(&again, &limits).as_ref(), Ok(&dir));
            }
            Err(e) => {
                if data.len() > directory_max_bytes(&limits) {
                    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
                } else if let Ok(raw) = Directory::decode(data) {
                    assert_eq!(Some(e), expected_directory_error(&raw, data.len(), &limits));
                } else {
                    // Broken wire format: malformed, unless the entries before the break
                    // were already too many.
                    let ok = match &e {
                        DecodeError::Malformed(_) => true,
                        DecodeError::FieldTooLong { field, len, max } => {
                            *field == "components" && len > max
                        }
                        _ => false,
                    };
                    assert!(ok, "{e:?}");
                }
            }
        }
    }
}

/// Builds a [`Directory`] (and decoding limits) field by field from `data`, encodes it
/// with [`encode_directory`] and decodes it with [`decode_directory`].
///
/// Checks: a valid directory comes back equal; an invalid one is refused with exactly
/// the [`DecodeError`] the rules predict; nothing panics.
pub fn directory_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(limits) = arb_limits(&mut u) else {
        return;
    };
    let Ok(dir) = arb_directory(&mut u) else {
        return;
    };
    let bytes = encode_directory(&dir);
    let got = decode_directory(&bytes, &limits);
    match expected_directory_error(&dir, bytes.len(), &limits) {
        None => assert_eq!(got, Ok(dir)),
        Some(e) => assert_eq!(got, Err(e)),
    }
}

/// The largest encoded directory [`decode_directory`] reads: every entry at its longest
/// with a 3-byte key and length, plus the node name and the scalar fields.
fn directory_max_bytes(limits: &Limits) -> usize {
    limits.max_directory_entries * (limits.max_name_len + 3) + limits.max_name_len + 32
}

/// The first rule a directory of `encoded_len` bytes breaks; `None` when it is valid.
fn expected_directory_error(
    dir: &Directory,
    encoded_len: usize,
    limits: &Limits,
) -> Option<DecodeError> {
    let max = directory_max_bytes(limits);
    if encoded_len > max {
        return Some(DecodeError::TooLarge {
            len: encoded_len,
            max,
        });
    }
    // Too many entries is seen before decoding, so it comes before every other rule.
    if dir.components.len() > limits.max_directory_entries {
        return Some(DecodeError::FieldTooLong {
            field: "components",
            len: dir.components.len(),
            max: limits.max_directory_entries,
        });
    }
    if dir.node.is_empty() {
        return Some(DecodeError::MissingField {
            kind: "Directory",
            field: "node",
        });
    }
    let names = std::iter::once(("node", &dir.node))
        .chain(dir.components.iter().map(|c| ("components[]", c)));
    for (field, name) in names {
        if name.is_empty() {
            return Some(DecodeError::MissingField {
                kind: "Directory",
                field,
            });
        }
        if name.len() > limits.max_name_len {
            return Some(DecodeError::FieldTooLong {
                field,
                len: name.len(),
                max: limits.max_name_len,
            });
        }
    }
    None
}

// ---------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------
