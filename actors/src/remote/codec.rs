//! How messages that cross nodes are named and encoded.

use std::marker::PhantomData;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec}: {detail}")]
pub struct CodecError {
    /// The codec's content type.
    pub codec: &'static str,
    /// What went wrong.
    pub detail: String,
}

impl CodecError {
    fn new(codec: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            codec,
            detail: detail.to_string(),
        }
    }
}

/// An encoding for values of type `T`. The content type travels in every envelope, so
/// a receiver in another language knows how to read the payload.
pub trait Codec<T> {
    /// The payload's content type, such as `application/postcard`.
    const CONTENT_TYPE: &'static str;

    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] when the value cannot be represented.
    fn encode(value: &T) -> Result<Vec<u8>, CodecError>;

    /// Decodes a value.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] when the bytes are not a valid `T`.
    fn decode(bytes: &[u8]) -> Result<T, CodecError>;
}

/// [postcard](https://docs.rs/postcard): compact binary serde, for Rust peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Postcard;

impl Postcard {
    const CONTENT_TYPE_STR: &'static str = "application/postcard";
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Postcard {
    const CONTENT_TYPE: &'static str = Self::CONTENT_TYPE_STR;

    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        postcard::to_allocvec(value).map_err(|e| CodecError::new(Self::CONTENT_TYPE_STR, e))
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        postcard::from_bytes(bytes).map_err(|e| CodecError::new(Self::CONTENT_TYPE_STR, e))
    }
}

/// JSON through serde: readable, and spoken by every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Json;

impl Json {
    const CONTENT_TYPE_STR: &'static str = "application/json";
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec<T> for Json {
    const CONTENT_TYPE: &'static str = Self::CONTENT_TYPE_STR;

    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::new(Self::CONTENT_TYPE_STR, e))
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::new(Self::CONTENT_TYPE_STR, e))
    }
}

/// Protocol buffers through prost, for schemas shared with other languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prost;

impl Prost {
    const CONTENT_TYPE_STR: &'static str = "application/x-protobuf";
}

impl<T: prost::Message + Default> Codec<T> for Prost {
    const CONTENT_TYPE: &'static str = Self::CONTENT_TYPE_STR;

    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        Ok(value.encode_to_vec())
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        T::decode(bytes).map_err(|e| CodecError::new(Self::CONTENT_TYPE_STR, e))
    }
}

/// Raw bytes, passed through untouched: for payloads the application encodes itself.
/// Works for `Vec<u8>` and for any type that converts to and from it (`Bytes`
/// newtypes, for instance) through [`RawBytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw;

/// Types carried by the [`Raw`] codec.
pub trait RawBytes: Sized {
    /// The bytes to send.
    fn to_bytes(&self) -> Vec<u8>;
    /// The value from received bytes.
    ///
    /// # Errors
    ///
    /// A description of why the bytes are not a valid value.
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

impl RawBytes for Vec<u8> {
    fn to_bytes(&self) -> Vec<u8> {
        self.clone()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        Ok(bytes.to_vec())
    }
}

impl RawBytes for () {
    fn to_bytes(&self) -> Vec<u8> {
        Vec::new()
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("expected no bytes, got {}", bytes.len()))
        }
    }
}

impl<T: RawBytes> Codec<T> for Raw {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        Ok(value.to_bytes())
    }

    fn decode(bytes: &[u8]) -> Result<T, CodecError> {
        T::from_bytes(bytes).map_err(|e| CodecError::new("application/octet-stream", e))
    }
}

/// A message type that may cross nodes: a stable name and a codec.
///
/// The name identifies the type on the wire (`message_type` in the envelope), so it
/// must not change when the Rust type is renamed or moved; a package-style name with a
/// version (`"shop.v1.AddItem"`) is the convention. The codec encodes the message and
/// also the reply of every handler of it, so the reply type must be encodable by the
/// same codec.
///
/// Messages sent to a component on the same node never touch the codec.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tern_actors::remote::{Postcard, RemoteMessage};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl RemoteMessage for Square {
///     const NAME: &'static str = "demo.v1.Square";
///     type Codec = Postcard;
/// }
/// ```
pub trait RemoteMessage: Sized + 'static {
    /// The stable wire name of this message type.
    const NAME: &'static str;
    /// How this message and its replies are encoded.
    type Codec: Codec<Self>;
}

/// Encodes and decodes `T` with codec `C` (a zero-sized helper).
pub(crate) struct With<C, T>(PhantomData<(C, T)>);

impl<C: Codec<T>, T> With<C, T> {
    pub(crate) fn encode(value: &T) -> Result<Vec<u8>, CodecError> {
        C::encode(value)
    }

    /// Decodes `bytes`, checking that they were sent in this codec's content type.
    pub(crate) fn decode(content_type: &str, bytes: &[u8]) -> Result<T, CodecError> {
        if content_type != C::CONTENT_TYPE {
            return Err(CodecError {
                codec: C::CONTENT_TYPE,
                detail: format!("payload is {content_type:?}"),
            });
        }
        C::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Point {
        x: i32,
        label: String,
    }

    #[test]
    fn serde_codecs_round_trip_and_refuse_garbage() {
        let p = Point {
            x: -3,
            label: "a".into(),
        };
        let bytes = Postcard::encode(&p).unwrap();
        assert_eq!(<Postcard as Codec<Point>>::decode(&bytes).unwrap(), p);
        let json = Json::encode(&p).unwrap();
        assert_eq!(json, br#"{"x":-3,"label":"a"}"#);
        assert_eq!(<Json as Codec<Point>>::decode(&json).unwrap(), p);
        assert!(<Postcard as Codec<Point>>::decode(&[0xff]).is_err());
        assert!(<Json as Codec<Point>>::decode(b"{").is_err());
    }

    #[test]
    fn a_payload_in_another_content_type_is_refused() {
        let bytes = Json::encode(&7u32).unwrap();
        let err = With::<Postcard, u32>::decode("application/json", &bytes).unwrap_err();
        assert!(err.detail.contains("application/json"), "{err}");
        assert_eq!(With::<Json, u32>::decode("application/json", &bytes), Ok(7));
    }

    #[test]
    fn raw_and_prost_pass_bytes_through() {
        let raw = vec![0u8, 1, 2];
        assert_eq!(Raw::encode(&raw).unwrap(), raw);
        assert!(<Raw as Codec<()>>::decode(&[1]).is_err());
        let dir = tern_proto::v1::ComponentRef {
            node: "n".into(),
            name: "c".into(),
            generation: 0,
        };
        let bytes = Prost::encode(&dir).unwrap();
        assert_eq!(
            <Prost as Codec<tern_proto::v1::ComponentRef>>::decode(&bytes).unwrap(),
            dir
        );
    }
}
