//! Sealed datagrams: a cluster check and authenticated encryption before any parsing.
//!
//! Layout of every gossip datagram (all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 2 | magic `b"TG"` |
//! | 1 | format version, 1 |
//! | 1 | key id |
//! | 4 | cluster tag: FNV-1a 32 of the cluster id |
//! | 24 | XChaCha20-Poly1305 nonce: sender generation (8), FNV-1a 64 of the sender name (8), counter (8) |
//! | n | ciphertext of the [`Packet`](tern_proto::v1::gossip::Packet) protobuf |
//! | 16 | Poly1305 tag |
//!
//! The authenticated data is the 8-byte header followed by the cluster id itself, so a
//! datagram sealed for another cluster fails even if the tags collide. Nonces never
//! repeat for a key as long as `(name, generation)` is unique per boot, which identity
//! requires anyway; no random source is needed, which keeps simulation deterministic.

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key as AeadKey, XChaCha20Poly1305, XNonce};

use crate::error::{KeyError, KeyringError, OpenError};

/// Magic bytes at the start of every gossip datagram.
pub const MAGIC: [u8; 2] = *b"TG";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the header in the clear.
pub const HEADER_LEN: usize = 8;
/// Bytes of the nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of the authentication tag.
pub const TAG_LEN: usize = 16;
/// What sealing adds to a plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// A 256-bit gossip key. Its `Debug` form never shows the bytes.
///
/// ```
/// use tern_gossip::Key;
///
/// let key: Key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".parse().unwrap();
/// assert!("too short".parse::<Key>().is_err());
/// assert_eq!(format!("{key:?}"), "Key(..)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl Key {
    /// A key from its 32 bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl std::str::FromStr for Key {
    type Err = KeyError;

    /// Parses 64 hexadecimal digits.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return Err(KeyError(format!(
                "want 64 hexadecimal digits (32 bytes), got {} characters",
                s.chars().count()
            )));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| KeyError(format!("not hexadecimal at position {}", 2 * i)))?;
        }
        Ok(Self(out))
    }
}

/// The keys a node accepts, one of them primary (used to seal).
///
/// Rotation without false failures: install the new key on every node, then make it
/// primary on every node, then remove the old one. Between the steps every node can
/// open what every other node seals.
///
/// ```
/// use tern_gossip::{Key, Keyring};
///
/// let mut ring = Keyring::new(1, Key::from_bytes([1; 32]));
/// ring.install(2, Key::from_bytes([2; 32])).unwrap();
/// ring.set_primary(2).unwrap();
/// ring.remove(1).unwrap();
/// assert!(ring.remove(2).is_err()); // the primary stays
/// assert_eq!(ring.ids(), vec![2]);
/// ```
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(u8, XChaCha20Poly1305)>,
    primary: u8,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("primary", &self.primary)
            .finish()
    }
}

impl Keyring {
    /// A keyring holding one key, primary.
    #[must_use]
    pub fn new(id: u8, key: Key) -> Self {
        Self {
            keys: vec![(id, cipher(&key))],
            primary: id,
        }
    }

    /// Adds a key that opens datagrams (it seals only once made primary).
    ///
    /// # Errors
    ///
    /// [`KeyringError::DuplicateId`].
    pub fn install(&mut self, id: u8, key: Key) -> Result<(), KeyringError> {
        if self.keys.iter().any(|(k, _)| *k == id) {
            return Err(KeyringError::DuplicateId(id));
        }
        self.keys.push((id, cipher(&key)));
        Ok(())
    }

    /// Makes an installed key the one that seals.
    ///
    /// # Errors
    ///
    /// [`KeyringError::NoSuchKey`].
    pub fn set_primary(&mut self, id: u8) -> Result<(), KeyringError> {
        if !self.keys.iter().any(|(k, _)| *k == id) {
            return Err(KeyringError::NoSuchKey(id));
        }
        self.primary = id;
        Ok(())
    }

    /// Removes a key that is not primary.
    ///
    /// # Errors
    ///
    /// [`KeyringError::RemovePrimary`] or [`KeyringError::NoSuchKey`].
    pub fn remove(&mut self, id: u8) -> Result<(), KeyringError> {
        if id == self.primary {
            return Err(KeyringError::RemovePrimary(id));
        }
        let before = self.keys.len();
        self.keys.retain(|(k, _)| *k != id);
        if self.keys.len() == before {
            return Err(KeyringError::NoSuchKey(id));
        }
        Ok(())
    }

    /// The installed key ids, in installation order.
    #[must_use]
    pub fn ids(&self) -> Vec<u8> {
        self.keys.iter().map(|(k, _)| *k).collect()
    }

    /// The primary key's id.
    #[must_use]
    pub const fn primary(&self) -> u8 {
        self.primary
    }

    fn get(&self, id: u8) -> Option<&XChaCha20Poly1305> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, c)| c)
    }
}

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(AeadKey::from_slice(&key.0))
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// FNV-1a, 32 bits.
fn fnv32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The fields of an authenticated nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    /// The sender's generation.
    pub generation: u64,
    /// FNV-1a 64 of the sender's name ([`sender_hash`]).
    pub sender: u64,
    /// The sender's datagram counter: 1 for its first datagram, one more for each next.
    pub counter: u64,
}

impl Nonce {
    fn parse(nonce: &[u8]) -> Self {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            if let Some(s) = nonce.get(i * 8..i * 8 + 8) {
                b.copy_from_slice(s);
            }
            u64::from_be_bytes(b)
        };
        Self {
            generation: word(0),
            sender: word(1),
            counter: word(2),
        }
    }
}

/// The hash of a sender name carried in every nonce: FNV-1a 64.
#[must_use]
pub fn sender_hash(name: &str) -> u64 {
    fnv64(name.as_bytes())
}

/// Seals and opens one node's datagrams: the cluster id, the keyring and the nonce
/// counter.
///
/// ```
/// use tern_gossip::{Key, Keyring, Sealer, OpenError};
///
/// let ring = Keyring::new(1, Key::from_bytes([7; 32]));
/// let mut a = Sealer::new("prod", ring.clone(), "a", 1);
/// let b = Sealer::new("prod", ring.clone(), "b", 1);
/// let sealed = a.seal(b"hello");
/// assert_eq!(b.open(&sealed).unwrap(), b"hello");
///
/// let other = Sealer::new("staging", ring, "c", 1);
/// assert_eq!(other.open(&sealed), Err(OpenError::OtherCluster));
/// let mut forged = sealed.clone();
/// forged[40] ^= 1;
/// assert_eq!(b.open(&forged), Err(OpenError::Forged));
/// ```
#[derive(Debug, Clone)]
pub struct Sealer {
    cluster: Vec<u8>,
    tag: u32,
    keyring: Keyring,
    nonce_prefix: [u8; 16],
    counter: u64,
}

impl Sealer {
    /// A sealer for node `name` of generation `generation` in cluster `cluster`.
    #[must_use]
    pub fn new(cluster: &str, keyring: Keyring, name: &str, generation: u64) -> Self {
        let mut nonce_prefix = [0u8; 16];
        nonce_prefix[..8].copy_from_slice(&generation.to_be_bytes());
        nonce_prefix[8..].copy_from_slice(&fnv64(name.as_bytes()).to_be_bytes());
        Self {
            cluster: cluster.as_bytes().to_vec(),
            tag: fnv32(cluster.as_bytes()),
            keyring,
            nonce_prefix,
            counter: 0,
        }
    }

    /// The keyring, to rotate keys at run time.
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        &mut self.keyring
    }

    /// The keyring.
    #[must_use]
    pub const fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    fn header(&self, key_id: u8) -> [u8; HEADER_LEN] {
        let t = self.tag.to_be_bytes();
        [
            MAGIC[0],
            MAGIC[1],
            FORMAT_VERSION,
            key_id,
            t[0],
            t[1],
            t[2],
            t[3],
        ]
    }

    fn aad(&self, header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(header.len() + self.cluster.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(&self.cluster);
        aad
    }

    /// Seals `plaintext` with the primary key: `OVERHEAD` bytes longer.
    #[must_use]
    pub fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let id = self.keyring.primary;
        let header = self.header(id);
        self.counter = self.counter.wrapping_add(1);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..16].copy_from_slice(&self.nonce_prefix);
        nonce[16..].copy_from_slice(&self.counter.to_be_bytes());
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let aad = self.aad(&header);
        let Some(cipher) = self.keyring.get(id) else {
            // The primary is always installed (remove refuses it).
            return Vec::new();
        };
        match cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[start..])
        {
            Ok(tag) => out.extend_from_slice(&tag),
            // Only for plaintexts over 256 GiB.
            Err(_) => return Vec::new(),
        }
        out
    }

    /// Checks a datagram's header, cluster and authentication, in that order, and
    /// returns the plaintext. Nothing is parsed before the tag is verified.
    ///
    /// # Errors
    ///
    /// [`OpenError`] naming the first check that failed.
    pub fn open(&self, datagram: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_with_nonce(datagram).map(|(plain, _)| plain)
    }

    /// [`Sealer::open`], also returning the authenticated nonce's fields, for the
    /// replay window.
    ///
    /// # Errors
    ///
    /// [`OpenError`] naming the first check that failed.
    pub fn open_with_nonce(&self, datagram: &[u8]) -> Result<(Vec<u8>, Nonce), OpenError> {
        if datagram.len() < 2 || datagram[..2] != MAGIC {
            return Err(OpenError::BadMagic);
        }
        if datagram.len() < OVERHEAD {
            return Err(OpenError::TooShort(datagram.len()));
        }
        if datagram[2] != FORMAT_VERSION {
            return Err(OpenError::UnsupportedVersion(datagram[2]));
        }
        let header = &datagram[..HEADER_LEN];
        if header[4..8] != self.tag.to_be_bytes() {
            return Err(OpenError::OtherCluster);
        }
        let id = header[3];
        let cipher = self.keyring.get(id).ok_or(OpenError::UnknownKey(id))?;
        let nonce = &datagram[HEADER_LEN..HEADER_LEN + NONCE_LEN];
        let body_end = datagram.len() - TAG_LEN;
        let mut body = datagram[HEADER_LEN + NONCE_LEN..body_end].to_vec();
        let tag = &datagram[body_end..];
        cipher
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                &self.aad(header),
                &mut body,
                chacha20poly1305::Tag::from_slice(tag),
            )
            .map_err(|_| OpenError::Forged)?;
        Ok((body, Nonce::parse(nonce)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: u8, b: u8) -> Keyring {
        Keyring::new(id, Key::from_bytes([b; 32]))
    }

    #[test]
    fn every_check_has_its_error() {
        let mut a = Sealer::new("c", ring(1, 1), "a", 1);
        let b = Sealer::new("c", ring(2, 1), "b", 1);
        let sealed = a.seal(b"x");
        assert_eq!(sealed.len(), 1 + OVERHEAD);
        assert_eq!(b.open(&sealed), Err(OpenError::UnknownKey(1)));
        assert_eq!(b.open(b"TG"), Err(OpenError::TooShort(2)));
        assert_eq!(b.open(b""), Err(OpenError::BadMagic));
        let mut v = sealed.clone();
        v[2] = 9;
        assert_eq!(b.open(&v), Err(OpenError::UnsupportedVersion(9)));
        let other_key = Sealer::new("c", ring(1, 2), "b", 1);
        assert_eq!(other_key.open(&sealed), Err(OpenError::Forged));
    }

    #[test]
    fn nonces_differ_per_datagram_and_per_sender() {
        let mut a = Sealer::new("c", ring(1, 1), "a", 1);
        let mut b = Sealer::new("c", ring(1, 1), "b", 1);
        let (x, y, z) = (a.seal(b"same"), a.seal(b"same"), b.seal(b"same"));
        let nonce = |d: &[u8]| d[HEADER_LEN..HEADER_LEN + NONCE_LEN].to_vec();
        assert_ne!(nonce(&x), nonce(&y));
        assert_ne!(nonce(&x), nonce(&z));
        assert_ne!(x[HEADER_LEN + NONCE_LEN..], y[HEADER_LEN + NONCE_LEN..]);
    }

    #[test]
    fn rotation_keeps_every_pair_talking() {
        // Old ring everywhere; install, switch, remove, one node at a time.
        let mut nodes: Vec<Sealer> = (0..3)
            .map(|i| Sealer::new("c", ring(1, 1), &format!("n{i}"), 1))
            .collect();
        let all_talk = |nodes: &mut Vec<Sealer>| {
            for i in 0..nodes.len() {
                let d = nodes[i].seal(b"hi");
                for n in nodes.iter() {
                    assert_eq!(n.open(&d).unwrap(), b"hi");
                }
            }
        };
        for i in 0..3 {
            nodes[i]
                .keyring_mut()
                .install(2, Key::from_bytes([2; 32]))
                .unwrap();
            all_talk(&mut nodes);
        }
        for i in 0..3 {
            nodes[i].keyring_mut().set_primary(2).unwrap();
            all_talk(&mut nodes);
        }
        for i in 0..3 {
            nodes[i].keyring_mut().remove(1).unwrap();
            all_talk(&mut nodes);
        }
    }
}
