//! Control-plane messages: what travels between nodes besides application payloads.
//!
//! Control messages ride in ordinary [`Kind::Tell`](crate::v1::Kind::Tell) envelopes
//! addressed to a reserved component name (every name starting with
//! [`RESERVED_PREFIX`] belongs to the framework); their payload is a protobuf message
//! from `protos/tern/v1/control.proto`.

use prost::Message;

use crate::error::DecodeError;
use crate::limits::Limits;
use crate::v1::Directory;

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
    let dir = Directory::decode(buf).map_err(|e| DecodeError::Malformed(e.to_string()))?;
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
    for name in std::iter::once(&dir.node).chain(&dir.components) {
        if name.is_empty() {
            return Err(DecodeError::MissingField {
                kind: "Directory",
                field: "components[]",
            });
        }
        if name.len() > limits.max_name_len {
            return Err(DecodeError::FieldTooLong {
                field: "components[]",
                len: name.len(),
                max: limits.max_name_len,
            });
        }
    }
    Ok(dir)
}
