//! Control-plane messages: what travels between nodes besides application payloads.
//!
//! Control messages ride in ordinary [`Kind::Tell`](crate::v1::Kind::Tell) envelopes
//! addressed to a reserved component name (every name starting with
//! [`RESERVED_PREFIX`] belongs to the framework); their payload is a protobuf message
//! from `protos/tern/v1/control.proto`.

use prost::Message;

use crate::envelope::walk_fields;
use crate::error::DecodeError;
use crate::limits::Limits;
use crate::v1::Directory;

/// `Directory.components`' field number and wire type (length-delimited).
const COMPONENTS_FIELD: u64 = 4;
const LENGTH_DELIMITED: u8 = 2;

/// Component names starting with this prefix are reserved for the framework.
pub const RESERVED_PREFIX: &str = "tern.";

/// The reserved destination of [`Directory`] messages.
pub const DIRECTORY_COMPONENT: &str = "tern.directory";

/// The `message_type` of a [`Directory`] message.
pub const DIRECTORY_MESSAGE_TYPE: &str = "tern.v1.Directory";

/// The `content_type` of protobuf payloads.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";

/// Encodes a [`Directory`].
#[must_use]
pub fn encode_directory(dir: &Directory) -> Vec<u8> {
    dir.encode_to_vec()
}

/// Decodes and validates a [`Directory`]: at most
/// [`Limits::max_directory_entries`] components, every name non-empty and within
/// [`Limits::max_name_len`], the sending node named.
///
/// Allocation is bounded before decoding: the entries are counted on the wire first
/// (without allocating) and a directory with too many is refused then; otherwise the
/// list is allocated once, at its final size. Decoding N bytes holds at most N bytes of
/// names plus one `String` per entry (at most `max_directory_entries` and at most N / 2).
///
/// # Errors
///
/// A [`DecodeError`] naming what was wrong.
///
/// # Examples
///
/// ```
/// use tern_proto::control::{decode_directory, encode_directory};
/// use tern_proto::{Limits, v1::Directory};
///
/// let dir = Directory { node: "a".into(), generation: 1, version: 3,
///                       components: vec!["worker".into()], reply_wanted: true };
/// let limits = Limits::default();
/// assert_eq!(decode_directory(&encode_directory(&dir), &limits).unwrap(), dir);
/// assert!(decode_directory(&[0xff], &limits).is_err());
/// ```
pub fn decode_directory(buf: &[u8], limits: &Limits) -> Result<Directory, DecodeError> {
    let max = limits.max_directory_entries * (limits.max_name_len + 3) + limits.max_name_len + 32;
    if buf.len() > max {
        return Err(DecodeError::TooLarge {
            len: buf.len(),
            max,
        });
    }
    // Each entry costs a `String` (24 bytes) for as little as 2 input bytes: count them
    // before prost allocates any. On broken wire format this counts the entries before
    // the break, which are all prost would decode before failing.
    let mut entries = 0usize;
    walk_fields(buf, |number, wire_type, _| {
        if number == COMPONENTS_FIELD && wire_type == LENGTH_DELIMITED {
            entries += 1;
        }
    });
    if entries > limits.max_directory_entries {
        return Err(DecodeError::FieldTooLong {
            field: "components",
            len: entries,
            max: limits.max_directory_entries,
        });
    }
    let mut dir = Directory {
        components: Vec::with_capacity(entries),
        ..Directory::default()
    };
    dir.merge(buf)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if dir.node.is_empty() {
        return Err(DecodeError::MissingField {
            kind: "Directory",
            field: "node",
        });
    }
    if dir.components.len() > limits.max_directory_entries {
        return Err(DecodeError::FieldTooLong {
            field: "components",
            len: dir.components.len(),
            max: limits.max_directory_entries,
        });
    }
    let names = std::iter::once(("node", &dir.node))
        .chain(dir.components.iter().map(|c| ("components[]", c)));
    for (field, name) in names {
        if name.is_empty() {
            return Err(DecodeError::MissingField {
                kind: "Directory",
                field,
            });
        }
        if name.len() > limits.max_name_len {
            return Err(DecodeError::FieldTooLong {
                field,
                len: name.len(),
                max: limits.max_name_len,
            });
        }
    }
    Ok(dir)
}
