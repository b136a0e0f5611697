//! Why a call through a [`Ref`](super::Ref) failed.

use std::time::Duration;

use tern_proto::v1::ErrorCode;

use super::codec::CodecError;
use crate::error::AskError;
use crate::flow::Horizon;
use crate::stream::StreamError;

/// Why a [`Ref`](super::Ref) `tell` or `ask` failed. The same type covers a component
/// on this node and one on another node, so calling code does not change when a
/// component moves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No node has ever announced a component by this name, within the wait for
    /// unknown names ([`NodeConfig::pending_ttl`](super::NodeConfig::pending_ttl), or
    /// the ask's deadline): check the name, and that a node hosting it is up and
    /// connected. Compare [`NotHosted`](Self::NotHosted), for a name that was hosted.
    #[error(
        "no node has announced a component named {name:?}: check the name, and that a node hosting it is up"
    )]
    UnknownName {
        /// The component name called.
        name: String,
    },
    /// The name is known (a node announced it) but no node hosts it now, or none that
    /// can be reached: every host died, left, or lost its connection, or the node the
    /// call reached no longer hosts it. Nothing was handled. A host that comes back
    /// (or a new one) is found without a restart.
    #[error("no node reachable now hosts component {name:?} (it was hosted before)")]
    NotHosted {
        /// The component name called.
        name: String,
    },
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
    // ----- flow control (crate::flow): keep these last -----
    /// An ask over its flow or link rate limit, under the `drop` overflow policy (or
    /// `local` with `then = drop` and a full queue): not sent, counted in
    /// [`FlowStats::rate_dropped`](crate::flow::FlowStats::rate_dropped). (A tell
    /// dropped this way returns `Ok`.)
    #[error("dropped: over the flow rate limit")]
    Dropped,
    /// Over its flow or link rate limit under the `bounce` overflow policy: not sent;
    /// it would conform after `retry_after`. A tell's message comes back in
    /// [`Undelivered`](super::Undelivered).
    #[error("bounced: over the flow rate limit, retry after {retry_after:?}")]
    Bounced {
        /// When a message would conform, from now.
        retry_after: Duration,
    },
    /// The message would cross its horizon: `needed` is the scope from the caller to
    /// the component, wider than the effective `horizon`. Decided by the sender
    /// (nothing sent; a tell's message comes back in
    /// [`Undelivered`](super::Undelivered)) or, for a sender with other settings, by
    /// the receiver (not delivered).
    #[error("outside its horizon: {horizon} allowed, {needed} needed")]
    OutsideHorizon {
        /// The effective horizon of the message.
        horizon: Horizon,
        /// The scope between the caller and the component.
        needed: Horizon,
    },
    // ----- circuit breakers and capacity (crate::ops) -----
    /// This container's circuit breaker for the component is open (it failed
    /// repeatedly): the call failed at once, nothing was sent. Calls go through again
    /// (a probe first) after `retry_after`; a tell's message comes back in
    /// [`Undelivered`](super::Undelivered).
    #[error("circuit open: the component failed repeatedly; retry after {retry_after:?}")]
    CircuitOpen {
        /// How long until the breaker lets a probe through (zero while one is out).
        retry_after: Duration,
    },
    /// A capacity limit of this container refused the call (see
    /// [`LimitSet`](crate::ops::LimitSet)); nothing was sent.
    #[error("limit {limit} reached")]
    LimitReached {
        /// The limit's key, e.g. `in_flight.kv`.
        limit: String,
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
            // The caller routed the call there because that node announced the name:
            // it was hosted, and is not (there) now.
            ErrorCode::UnknownComponent => Self::NotHosted {
                name: component.to_owned(),
            },
            ErrorCode::MailboxFull => Self::MailboxFull,
            ErrorCode::Stopped => Self::Stopped,
            ErrorCode::Timeout => Self::Timeout,
            ErrorCode::HandlerPanicked => Self::HandlerPanicked(detail),
            ErrorCode::StreamFailed => Self::StreamFailed(detail),
            ErrorCode::OutsideHorizon => match parse_horizons(&detail) {
                Some((horizon, needed)) => Self::OutsideHorizon { horizon, needed },
                None => Self::Remote { code, detail },
            },
            _ => Self::Remote { code, detail },
        }
    }

    /// The wire code that carries this error back to a remote caller.
    pub(crate) fn to_wire(&self) -> (ErrorCode, String) {
        let code = match self {
            Self::UnknownName { .. } | Self::NotHosted { .. } => ErrorCode::UnknownComponent,
            Self::MailboxFull | Self::PendingFull => ErrorCode::MailboxFull,
            Self::Stopped => ErrorCode::Stopped,
            Self::Timeout | Self::IdleTimeout => ErrorCode::Timeout,
            Self::StreamFailed(_) => ErrorCode::StreamFailed,
            Self::HandlerPanicked(_) => ErrorCode::HandlerPanicked,
            Self::Codec(_) => ErrorCode::DecodeFailed,
            Self::Remote { code, .. } => *code,
            Self::Backpressure(_) | Self::LimitReached { .. } | Self::CircuitOpen { .. } => {
                ErrorCode::MailboxFull
            }
            Self::Unreachable(_) | Self::PeerLost(_) => ErrorCode::Unspecified,
            Self::Dropped | Self::Bounced { .. } => ErrorCode::Unspecified,
            Self::OutsideHorizon { .. } => ErrorCode::OutsideHorizon,
        };
        let detail = match self {
            Self::HandlerPanicked(m) | Self::StreamFailed(m) | Self::Remote { detail: m, .. } => {
                m.clone()
            }
            // Said by the receiver, of itself (docs/wire-protocol.md, section 8.1).
            Self::UnknownName { name } | Self::NotHosted { name } => {
                format!("no component named {name:?} is known")
            }
            Self::OutsideHorizon { horizon, needed } => {
                format!("horizon={horizon} needed={needed}")
            }
            other => other.to_string(),
        };
        (code, detail)
    }
}

/// The horizons of an `OutsideHorizon` error's detail (`horizon=.. needed=..`).
fn parse_horizons(detail: &str) -> Option<(Horizon, Horizon)> {
    let (h, n) = detail.split_once(' ')?;
    let horizon = Horizon::parse(h.strip_prefix("horizon=")?)?;
    let needed = Horizon::parse(n.strip_prefix("needed=")?)?;
    Some((horizon, needed))
}

impl CallError {
    /// Whether the component could not be reached or did not answer *now*: no host
    /// known yet ([`UnknownName`](Self::UnknownName)) or now
    /// ([`NotHosted`](Self::NotHosted)), its node
    /// partitioned, down or restarted ([`Unreachable`](Self::Unreachable),
    /// [`PeerLost`](Self::PeerLost)), no answer in time ([`Timeout`](Self::Timeout),
    /// [`IdleTimeout`](Self::IdleTimeout)), stopped ([`Stopped`](Self::Stopped)), or
    /// overloaded ([`MailboxFull`](Self::MailboxFull), [`PendingFull`](Self::PendingFull),
    /// [`Backpressure`](Self::Backpressure), [`CircuitOpen`](Self::CircuitOpen),
    /// [`LimitReached`](Self::LimitReached)). A later call, or one to another
    /// component, may succeed; the same fault gives `true` whichever of these variants
    /// it shows up as (it differs with timing: in flight, after the connection is
    /// seen lost, after membership declares the node dead).
    ///
    /// `false` for errors a retry does not fix: a handler that panicked, a codec
    /// error, a failed stream producer, a refusal by the receiving node.
    ///
    /// ```
    /// use tern_actors::remote::CallError;
    ///
    /// for down in [CallError::Timeout, CallError::PeerLost("w2".into()),
    ///              CallError::Unreachable("w2".into()),
    ///              CallError::NotHosted { name: "kv".into() }] {
    ///     assert!(down.is_unavailable());
    /// }
    /// assert!(!CallError::HandlerPanicked("boom".into()).is_unavailable());
    /// ```
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::UnknownName { .. }
            | Self::NotHosted { .. }
            | Self::PendingFull
            | Self::MailboxFull
            | Self::Stopped
            | Self::Timeout
            | Self::Unreachable(_)
            | Self::Backpressure(_)
            | Self::PeerLost(_)
            | Self::IdleTimeout
            | Self::Dropped
            | Self::Bounced { .. }
            | Self::CircuitOpen { .. }
            | Self::LimitReached { .. } => true,
            Self::HandlerPanicked(_)
            | Self::Codec(_)
            | Self::StreamFailed(_)
            | Self::Remote { .. }
            | Self::OutsideHorizon { .. } => false,
        }
    }

    /// Whether the component may have handled the request (all or part of it) despite
    /// the error: the reply or the connection was lost after it was sent
    /// ([`Timeout`](Self::Timeout), [`PeerLost`](Self::PeerLost),
    /// [`IdleTimeout`](Self::IdleTimeout)), the handler ran and failed
    /// ([`HandlerPanicked`](Self::HandlerPanicked),
    /// [`StreamFailed`](Self::StreamFailed)), or a codec error that may have hit the
    /// reply ([`Codec`](Self::Codec)). Retrying such a request is safe only if it is
    /// idempotent.
    ///
    /// `false` means it certainly did not run: it was never delivered (no host known
    /// or none now, a full mailbox or queue, an unreachable node, a stopped component) or the
    /// receiving node refused it before dispatch.
    ///
    /// ```
    /// use tern_actors::remote::CallError;
    ///
    /// assert!(CallError::Timeout.may_have_been_handled());
    /// assert!(CallError::PeerLost("w2".into()).may_have_been_handled());
    /// assert!(!CallError::Unreachable("w2".into()).may_have_been_handled());
    /// assert!(!CallError::MailboxFull.may_have_been_handled());
    /// ```
    #[must_use]
    pub fn may_have_been_handled(&self) -> bool {
        match self {
            Self::Timeout
            | Self::PeerLost(_)
            | Self::IdleTimeout
            | Self::HandlerPanicked(_)
            | Self::StreamFailed(_)
            | Self::Codec(_) => true,
            Self::UnknownName { .. }
            | Self::NotHosted { .. }
            | Self::PendingFull
            | Self::MailboxFull
            | Self::Stopped
            | Self::Unreachable(_)
            | Self::Backpressure(_)
            | Self::Remote { .. }
            | Self::Dropped
            | Self::Bounced { .. }
            | Self::OutsideHorizon { .. }
            | Self::CircuitOpen { .. }
            | Self::LimitReached { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every variant.
    fn every() -> Vec<CallError> {
        vec![
            CallError::UnknownName { name: "kv".into() },
            CallError::NotHosted { name: "kv".into() },
            CallError::PendingFull,
            CallError::MailboxFull,
            CallError::Stopped,
            CallError::Timeout,
            CallError::HandlerPanicked("boom".into()),
            CallError::Unreachable("w2".into()),
            CallError::Backpressure("w2".into()),
            CallError::PeerLost("w2".into()),
            CallError::Codec(CodecError {
                codec: "application/json",
                detail: "bad".into(),
            }),
            CallError::StreamFailed("producer failed".into()),
            CallError::IdleTimeout,
            CallError::Remote {
                code: ErrorCode::UnknownMessageType,
                detail: "no such type".into(),
            },
            CallError::Dropped,
            CallError::Bounced {
                retry_after: Duration::from_millis(10),
            },
            CallError::OutsideHorizon {
                horizon: Horizon::Network,
                needed: Horizon::Global,
            },
            CallError::CircuitOpen {
                retry_after: Duration::from_secs(1),
            },
            CallError::LimitReached {
                limit: "in_flight.kv".into(),
            },
        ]
    }

    #[test]
    fn the_faults_of_an_outage_are_all_unavailable() {
        // What one outage shows up as, with timing: in flight (PeerLost, or Timeout
        // before the loss is seen), new calls (Unreachable, then NotHosted once no
        // host is left), and a stopped or overloaded component.
        let outage = [
            CallError::Unreachable("w2".into()),
            CallError::NotHosted { name: "kv".into() },
            CallError::Timeout,
            CallError::PeerLost("w2".into()),
            CallError::Stopped,
            CallError::MailboxFull,
            CallError::Backpressure("w2".into()),
        ];
        for e in &outage {
            assert!(e.is_unavailable(), "{e:?}");
        }
        let unavailable: Vec<_> = every()
            .into_iter()
            .filter(CallError::is_unavailable)
            .collect();
        assert_eq!(unavailable.len(), 14, "{unavailable:?}");
    }

    #[test]
    fn errors_a_retry_does_not_fix_are_not_unavailable() {
        for e in [
            CallError::HandlerPanicked("boom".into()),
            CallError::Codec(CodecError {
                codec: "application/json",
                detail: "bad".into(),
            }),
            CallError::StreamFailed("x".into()),
            CallError::Remote {
                code: ErrorCode::DecodeFailed,
                detail: String::new(),
            },
        ] {
            assert!(!e.is_unavailable(), "{e:?}");
        }
    }

    #[test]
    fn only_errors_after_delivery_may_have_been_handled() {
        let maybe: Vec<String> = every()
            .iter()
            .filter(|e| e.may_have_been_handled())
            .map(|e| format!("{e:?}"))
            .collect();
        assert_eq!(
            maybe,
            [
                "Timeout",
                "HandlerPanicked(\"boom\")",
                "PeerLost(\"w2\")",
                "Codec(CodecError { codec: \"application/json\", detail: \"bad\" })",
                "StreamFailed(\"producer failed\")",
                "IdleTimeout",
            ]
        );
        // Never sent: certainly not handled.
        for e in [
            CallError::Unreachable("w2".into()),
            CallError::Backpressure("w2".into()),
            CallError::UnknownName { name: "kv".into() },
            CallError::NotHosted { name: "kv".into() },
            CallError::PendingFull,
        ] {
            assert!(!e.may_have_been_handled(), "{e:?}");
        }
    }

    #[test]
    fn both_name_errors_travel_as_unknown_component_and_come_back_not_hosted() {
        for e in [
            CallError::UnknownName { name: "kv".into() },
            CallError::NotHosted { name: "kv".into() },
        ] {
            let (code, detail) = e.to_wire();
            assert_eq!(code, ErrorCode::UnknownComponent);
            // The receiver hosted the name once (the caller routed there for it).
            assert_eq!(
                CallError::from_wire(code, detail, "kv"),
                CallError::NotHosted { name: "kv".into() }
            );
        }
    }

    #[test]
    fn a_receivers_horizon_refusal_comes_back_typed() {
        let e = CallError::OutsideHorizon {
            horizon: Horizon::Node,
            needed: Horizon::Global,
        };
        let (code, detail) = e.to_wire();
        assert_eq!(code, ErrorCode::OutsideHorizon);
        assert_eq!(CallError::from_wire(code, detail, "kv"), e);
        // A detail this build cannot read stays a remote error, not a panic.
        assert!(matches!(
            CallError::from_wire(code, "garbage".into(), "kv"),
            CallError::Remote { .. }
        ));
    }

    #[test]
    fn name_errors_say_which_case_it_is() {
        let unknown = CallError::UnknownName { name: "kv".into() }.to_string();
        assert!(unknown.contains("no node has announced"), "{unknown}");
        let gone = CallError::NotHosted { name: "kv".into() }.to_string();
        assert!(gone.contains("hosted before"), "{gone}");
    }
}
