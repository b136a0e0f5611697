//! How a [`ZmqTransport`](super::ZmqTransport) protects its connections, and why a
//! security setting is refused.

use std::path::PathBuf;
use std::time::Duration;

use super::{AllowList, KeyPair};

/// How connections are protected: chosen explicitly, there is no default.
///
/// [`ZmqSecurity::Curve`] authenticates both ends of every TCP and IPC connection with
/// CURVE (Curve25519 keys, ZeroMQ's RFC 26) and encrypts everything on it; a ZAP
/// handler admits only keys on the allow-list. [`ZmqSecurity::Plaintext`] does
/// neither: anyone who reaches an endpoint can call every exported component, read
/// and forge traffic. It is for tests and in-process transports, and logged as a
/// warning when a transport starts with it on a network endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZmqSecurity {
    /// Not chosen: [`ZmqTransport::bind`](super::ZmqTransport::bind) refuses to start.
    #[default]
    Unset,
    /// No authentication, no encryption.
    Plaintext,
    /// CURVE with an allow-list.
    Curve(Box<CurveSecurity>),
}

/// The keys of a CURVE transport.
///
/// # Examples
///
/// ```
/// use tern_transport::{AllowList, CurveSecurity, KeyPair};
///
/// let keys = KeyPair::generate().unwrap();
/// let mut allow = AllowList::new();
/// allow.insert("a", *keys.public()).unwrap();
/// let curve = CurveSecurity::new(keys, allow);
/// assert!(curve.allow_list_file.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurveSecurity {
    /// This node's key pair.
    pub keys: KeyPair,
    /// Who may connect, and the server key of each peer this node connects to.
    pub allow_list: AllowList,
    /// The file `allow_list` was read from: re-read when it changes (checked every
    /// `reload_ivl`), so keys can be added, rotated and revoked without a restart.
    pub allow_list_file: Option<PathBuf>,
    /// How often the allow-list file is checked for changes (default 1 s).
    pub reload_ivl: Duration,
}

impl CurveSecurity {
    /// Keys and a fixed allow-list (no file to reload).
    #[must_use]
    pub fn new(keys: KeyPair, allow_list: AllowList) -> Self {
        Self {
            keys,
            allow_list,
            allow_list_file: None,
            reload_ivl: Duration::from_secs(1),
        }
    }

    /// Keys and the allow-list read from `path`, re-read whenever the file changes.
    ///
    /// # Errors
    ///
    /// [`SecurityError`] if the file cannot be read or parsed.
    pub fn with_allow_list_file(keys: KeyPair, path: PathBuf) -> Result<Self, SecurityError> {
        let allow_list = AllowList::load(&path)?;
        Ok(Self {
            allow_list_file: Some(path),
            ..Self::new(keys, allow_list)
        })
    }
}

/// Why a key, a key file or an allow-list was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// This libzmq was built without CURVE.
    #[error("this libzmq has no CURVE support")]
    CurveUnavailable,
    /// A key is not a Z85-encoded 32-byte key.
    #[error("{what}: {why}")]
    BadKey {
        /// Which key.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// A line of an allow-list is wrong (`line` 0: not from a file).
    #[error("allow-list line {line}: {why}")]
    AllowList {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}
