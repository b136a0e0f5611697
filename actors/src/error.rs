//! Every way a message can fail to reach a component or come back, as types.

use std::fmt;

/// Why a message was not queued; the message comes back so nothing is lost silently.
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The mailbox holds its capacity already. Returned by
    /// [`Addr::try_tell`](crate::Addr::try_tell); [`Addr::tell`](crate::Addr::tell)
    /// waits for room instead.
    #[error("mailbox full")]
    Full(M),
    /// The component has stopped for good (stopped on request, or failed and was not
    /// restarted). No later message will be handled.
    #[error("component stopped")]
    Stopped(M),
    /// [`Addr::tell`](crate::Addr::tell) waited for room past its deadline.
    #[error("timed out waiting for mailbox room")]
    Timeout(M),
}

impl<M> SendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            Self::Full(m) | Self::Stopped(m) | Self::Timeout(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Stopped(_) => f.write_str("Stopped(..)"),
            Self::Timeout(_) => f.write_str("Timeout(..)"),
        }
    }
}

/// Why an [`ask`](crate::Addr::ask) produced no reply. Every ask ends with a reply or one
/// of these by its deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// The component had stopped for good before the request was queued, or stopped
    /// with the request still queued or in progress.
    #[error("component stopped")]
    Stopped,
    /// No reply by the deadline (the default from the component's spawn options, or
    /// [`AskRequest::timeout`](crate::AskRequest::timeout)). The request may still be
    /// handled later; its reply is then discarded.
    #[error("ask timed out")]
    Timeout,
    /// The handler panicked while handling this request; the panic message is kept.
    /// The component was restarted or stopped according to its supervision policy.
    #[error("handler panicked: {0}")]
    HandlerPanicked(String),
}

/// Why a component's incarnation failed: returned by
/// [`Actor::started`](crate::Actor::started) or given to
/// [`Context::fail`](crate::Context::fail). Supervision decides what happens next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActorError(pub String);

impl ActorError {
    /// An error with this reason.
    pub fn new(reason: impl fmt::Display) -> Self {
        Self(reason.to_string())
    }
}

/// Errors of the local name registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Another live component holds this name.
    #[error("name {0:?} is taken")]
    NameTaken(String),
    /// No live component has this name.
    #[error("no component named {0:?}")]
    NotFound(String),
    /// A component has this name, but it is not of the requested type.
    #[error("component {name:?} is a {actual}, not a {expected}")]
    WrongType {
        /// The name looked up.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The type registered.
        actual: &'static str,
    },
}
