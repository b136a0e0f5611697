//! CURVE key pairs and their files.

use std::fmt;
use std::path::Path;

use super::security::SecurityError;

/// A node's CURVE key pair (Curve25519), held as raw 32-byte keys.
///
/// The public key is what peers list in their [`AllowList`](super::AllowList); the
/// secret key never leaves the node. `Debug` shows the public key only.
///
/// Key files use ZeroMQ's certificate format (what `zmq.auth.create_certificates` and
/// `zmq.auth.load_certificate` of pyzmq write and read), so one file serves a Rust
/// node and a Python client alike:
///
/// ```text
/// metadata
/// curve
///     public-key = "<40 characters of Z85>"
///     secret-key = "<40 characters of Z85>"
/// ```
///
/// # Examples
///
/// ```
/// use tern_transport::KeyPair;
///
/// let keys = KeyPair::generate().unwrap();
/// let text = keys.to_file_text();
/// let back = KeyPair::from_file_text(&text).unwrap();
/// assert_eq!(back.public_z85(), keys.public_z85());
/// assert_eq!(keys.public_z85().len(), 40);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    public: [u8; 32],
    secret: [u8; 32],
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public_z85())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A new key pair from the operating system's random source (libsodium's
    /// `randombytes`, through libzmq's `zmq_curve_keypair`): key material is never
    /// drawn from a seeded generator.
    ///
    /// # Errors
    ///
    /// [`SecurityError::CurveUnavailable`] if libzmq was built without CURVE.
    pub fn generate() -> Result<Self, SecurityError> {
        let pair = zmq::CurveKeyPair::new().map_err(|_| SecurityError::CurveUnavailable)?;
        Ok(Self {
            public: pair.public_key,
            secret: pair.secret_key,
        })
    }

    /// A key pair from its two Z85 texts (40 characters each).
    ///
    /// # Errors
    ///
    /// [`SecurityError::BadKey`] if either is not a Z85-encoded 32-byte key.
    pub fn from_z85(public: &str, secret: &str) -> Result<Self, SecurityError> {
        Ok(Self {
            public: decode_key(public, "public-key")?,
            secret: decode_key(secret, "secret-key")?,
        })
    }

    /// The public key as 40 characters of Z85.
    #[must_use]
    pub fn public_z85(&self) -> String {
        encode_key(&self.public)
    }

    /// The raw public key.
    #[must_use]
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    pub(super) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The key pair in ZeroMQ's certificate format (secret key included).
    #[must_use]
    pub fn to_file_text(&self) -> String {
        format!(
            "#   ZeroMQ CURVE **Secret** Certificate (tern)\n\
             #   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n\
             metadata\ncurve\n    public-key = \"{}\"\n    secret-key = \"{}\"\n",
            self.public_z85(),
            encode_key(&self.secret)
        )
    }

    /// Parses a certificate: the `public-key` and `secret-key` lines; comments (`#`)
    /// and other lines are ignored.
    ///
    /// # Errors
    ///
    /// [`SecurityError::BadKey`] if a key is missing or malformed.
    pub fn from_file_text(text: &str) -> Result<Self, SecurityError> {
        let public = cert_field(text, "public-key").ok_or_else(|| SecurityError::BadKey {
            what: "public-key".into(),
            why: "missing".into(),
        })?;
        let secret = cert_field(text, "secret-key").ok_or_else(|| SecurityError::BadKey {
            what: "secret-key".into(),
            why: "missing (a public certificate is not a key pair)".into(),
        })?;
        Self::from_z85(public, secret)
    }

    /// Reads a key pair from a certificate file.
    ///
    /// # Errors
    ///
    /// [`SecurityError::Io`] if the file cannot be read, [`SecurityError::BadKey`] if
    /// it holds no valid key pair.
    pub fn load(path: &Path) -> Result<Self, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|e| SecurityError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_file_text(&text)
    }

    /// Writes the key pair to a new certificate file, readable by its owner only
    /// (mode 0600 on Unix). An existing file is not overwritten.
    ///
    /// # Errors
    ///
    /// [`SecurityError::Io`] if the file exists or cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), SecurityError> {
        use std::io::Write;
        let io = |e| SecurityError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(self.to_file_text().as_bytes()).map_err(io)
    }
}

/// The value of `name = "value"` in a certificate.
fn cert_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches(|c| c == '"' || c == '\''))
        })
}

/// Decodes a Z85 key of 32 bytes.
pub(super) fn decode_key(z85: &str, what: &str) -> Result<[u8; 32], SecurityError> {
    let bad = |why: &str| SecurityError::BadKey {
        what: what.to_owned(),
        why: why.to_owned(),
    };
    const Z85: &str =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if z85.len() != 40 {
        return Err(bad("expected 40 characters of Z85"));
    }
    // libzmq's decoder does not report a character outside the alphabet.
    if !z85.chars().all(|c| Z85.contains(c)) {
        return Err(bad("not Z85"));
    }
    let bytes = zmq::z85_decode(z85).map_err(|_| bad("not Z85"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad("not a 32-byte key"))
}

/// Encodes a 32-byte key as Z85 (always 40 characters).
pub(super) fn encode_key(key: &[u8; 32]) -> String {
    // 32 is a multiple of 4, the only thing Z85 encoding can refuse.
    zmq::z85_encode(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_round_trip_and_bad_keys_are_refused() -> Result<(), SecurityError> {
        let keys = KeyPair::generate()?;
        assert_eq!(KeyPair::from_file_text(&keys.to_file_text())?, keys);
        assert!(format!("{keys:?}").contains(&keys.public_z85()));
        assert!(!format!("{keys:?}").contains(&encode_key(keys.secret())));
        let public_only = format!("curve\n    public-key = \"{}\"\n", keys.public_z85());
        assert!(matches!(
            KeyPair::from_file_text(&public_only),
            Err(SecurityError::BadKey { .. })
        ));
        assert!(decode_key("short", "k").is_err());
        assert!(decode_key(&"~".repeat(40), "k").is_err());
        Ok(())
    }

    #[test]
    fn pyzmq_certificates_parse() -> Result<(), SecurityError> {
        // The layout zmq.auth.create_certificates writes (single quotes too).
        let keys = KeyPair::generate()?;
        let text = format!(
            "#   ****  Generated by pyzmq  ****\nmetadata\ncurve\n    public-key = '{}'\n    secret-key = \"{}\"\n",
            keys.public_z85(),
            encode_key(keys.secret())
        );
        assert_eq!(KeyPair::from_file_text(&text)?, keys);
        Ok(())
    }
}
