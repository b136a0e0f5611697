//! Why a call through a [`Ref`](super::Ref) failed.

use tern_proto::v1::ErrorCode;

use super::codec::CodecError;
use crate::error::AskError;
use crate::stream::StreamError;

/// Why a [`Ref`](super::Ref) `tell` or `ask` failed. The same type covers a component
/// on this node and one on another node, so calling code does not change when a
/// component moves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No node hosting this component name became known within the wait for unknown
    /// names ([`NodeConfig::pending_ttl`](super::NodeConfig::pending_ttl), or the ask's
    /// deadline), or the node that was asked does not host it.
    #[error("no component named {0:?} is known")]
    UnknownComponent(String),
    /// Too many messages already wait for unknown component names
    /// ([`NodeConfig::pending_limit`](super::NodeConfig::pending_limit)).
    #[error("too many messages wait for unknown components")]
    PendingFull,
    /// The component's mailbox was full (on this node, or on the receiving node).
    #[error("mailbox full")]
    MailboxFull,
    /// The component has stopped for good.
    #[error("component stopped")]
    Stopped,
    /// No reply by the deadline. The request may still have been handled.
    #[error("timed out")]
    Timeout,
    /// The handler panicked while handling this request.
    #[error("handler panicked: {0}")]
    HandlerPanicked(String),
    /// The node hosting the component cannot be reached now (partitioned, down, not
    /// connected).
    #[error("node {0:?} is unreachable")]
    Unreachable(String),
    /// The queue to the hosting node is full (its high-water mark): the node is slow or
    /// frozen. Nothing was sent; retry later or shed load.
    #[error("backpressure: the queue to node {0:?} is full")]
    Backpressure(String),
    /// The connection to the hosting node was lost with the request in flight; it may
    /// or may not have been handled.
    #[error("lost the connection to node {0:?}")]
    PeerLost(String),
    /// The message or the reply could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The producer of a streamed reply failed mid-stream (or stopped without ending
    /// it); the items received are not the whole stream.
    #[error("the stream failed: {0}")]
    StreamFailed(String),
    /// A stream's next item did not come within its idle timeout
    /// ([`RefStream::idle_timeout`](super::RefStream::idle_timeout)).
    #[error("no stream item within the idle timeout")]
    IdleTimeout,
    /// The receiving node refused the request for another reason.
    #[error("remote error {code:?}: {detail}")]
    Remote {
        /// The wire error code.
        code: ErrorCode,
        /// The receiver's explanation.
        detail: String,
    },
}

impl From<AskError> for CallError {
    fn from(e: AskError) -> Self {
        match e {
            AskError::Stopped => Self::Stopped,
            AskError::Timeout => Self::Timeout,
            AskError::HandlerPanicked(m) => Self::HandlerPanicked(m),
        }
    }
}

impl From<StreamError> for CallError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Failed(d) => Self::StreamFailed(d),
            StreamError::Abandoned => Self::StreamFailed(StreamError::Abandoned.to_string()),
            StreamError::HandlerPanicked(m) => Self::HandlerPanicked(m),
            StreamError::Stopped => Self::Stopped,
            StreamError::MailboxFull => Self::MailboxFull,
            StreamError::Timeout => Self::Timeout,
            StreamError::Idle => Self::IdleTimeout,
        }
    }
}

impl CallError {
    /// The error a remote node's error code stands for.
    pub(crate) fn from_wire(code: ErrorCode, detail: String, component: &str) -> Self {
        match code {
            ErrorCode::UnknownComponent => Self::UnknownComponent(component.to_owned()),
            ErrorCode::MailboxFull => Self::MailboxFull,
            ErrorCode::Stopped => Self::Stopped,
            ErrorCode::Timeout => Self::Timeout,
            ErrorCode::HandlerPanicked => Self::HandlerPanicked(detail),
            ErrorCode::StreamFailed => Self::StreamFailed(detail),
            _ => Self::Remote { code, detail },
        }
    }

    /// The wire code that carries this error back to a remote caller.
    pub(crate) fn to_wire(&self) -> (ErrorCode, String) {
        let code = match self {
            Self::UnknownComponent(_) => ErrorCode::UnknownComponent,
            Self::MailboxFull | Self::PendingFull => ErrorCode::MailboxFull,
            Self::Stopped => ErrorCode::Stopped,
            Self::Timeout | Self::IdleTimeout => ErrorCode::Timeout,
            Self::StreamFailed(_) => ErrorCode::StreamFailed,
            Self::HandlerPanicked(_) => ErrorCode::HandlerPanicked,
            Self::Codec(_) => ErrorCode::DecodeFailed,
            Self::Remote { code, .. } => *code,
            Self::Backpressure(_) => ErrorCode::MailboxFull,
            Self::Unreachable(_) | Self::PeerLost(_) => ErrorCode::Unspecified,
        };
        let detail = match self {
            Self::HandlerPanicked(m) | Self::StreamFailed(m) | Self::Remote { detail: m, .. } => {
                m.clone()
            }
            other => other.to_string(),
        };
        (code, detail)
    }
}
