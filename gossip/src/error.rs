//! The crate's errors.

use thiserror::Error;

/// A bad [`GossipConfig`](crate::GossipConfig) value, named.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("gossip config: `{field}` {reason}")]
pub struct ConfigError {
    /// The field, as spelled in the configuration file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Why a datagram was refused before its contents were parsed (see
/// [`Sealer::open`](crate::Sealer::open)). Each refusal is counted in
/// [`GossipStats`](crate::GossipStats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Shorter than the sealed header, nonce and tag.
    #[error("datagram of {0} bytes is too short to be sealed")]
    TooShort(usize),
    /// Not a tern gossip datagram.
    #[error("not a tern gossip datagram (bad magic)")]
    BadMagic,
    /// A gossip format version this node does not speak.
    #[error("unsupported gossip version {0}")]
    UnsupportedVersion(u8),
    /// Sealed for another cluster (its cluster tag differs).
    #[error("datagram from another cluster")]
    OtherCluster,
    /// Sealed with a key id this node's keyring does not hold.
    #[error("no installed key has id {0}")]
    UnknownKey(u8),
    /// Authentication failed: forged, corrupted, or sealed with another key under
    /// the same id.
    #[error("authentication failed")]
    Forged,
}

/// A keyring operation that cannot be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// A key with this id is installed already (remove it first).
    #[error("a key with id {0} is installed already")]
    DuplicateId(u8),
    /// No key with this id is installed.
    #[error("no key with id {0} is installed")]
    NoSuchKey(u8),
    /// The primary key cannot be removed; switch the primary first.
    #[error("key {0} is the primary key; make another key primary before removing it")]
    RemovePrimary(u8),
}

/// A key that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad gossip key: {0}")]
pub struct KeyError(pub String);

/// A fact the API refuses (see [`Membership::set_fact`](crate::Membership::set_fact)).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FactError {
    /// The key is empty, too long, or not printable ASCII.
    #[error("bad fact key {0:?}: 1 to 64 printable ASCII bytes")]
    BadKey(String),
    /// The facts would exceed the per-node budget.
    #[error("facts would take {size} bytes, over the limit of {max}")]
    TooLarge {
        /// The size the facts would have.
        size: usize,
        /// The configured limit ([`GossipConfig::max_facts_bytes`](crate::GossipConfig::max_facts_bytes)).
        max: usize,
    },
    /// The node has left the cluster.
    #[error("the node has left the cluster")]
    Left,
}
