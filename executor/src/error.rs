//! The executor's error type.

/// Errors from the executor and its I/O wrappers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error (creating the notify descriptor, a read or write).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A ZeroMQ error other than `EAGAIN`, which the wrappers absorb by waiting.
    #[cfg(feature = "zmq")]
    #[error("zeromq error: {0}")]
    Zmq(#[from] zmq::Error),
}
