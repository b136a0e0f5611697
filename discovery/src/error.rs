//! The drivers' errors (the core's are in `tern_gossip`).

use thiserror::Error;

/// A driver that cannot start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The socket could not be created or bound.
    #[error("gossip socket {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
