//! The operations layer: circuit breakers, outlier ejection, the versioned
//! [`LimitSet`] of run-time capacity limits, and the adaptive ingress limit. Every
//! part is a pure state machine fed `now` (and a seed where it draws jitter), so the
//! simulator drives it bit for bit; the node's router runs them on the call path (see
//! [`admission`]).
//!
//! What a caller sees: an open breaker fails a call at once with
//! [`CallError::CircuitOpen`](crate::remote::CallError::CircuitOpen) (a tell's message
//! comes back in [`Undelivered`](crate::remote::Undelivered)); an in-flight cap with
//! [`CallError::LimitReached`](crate::remote::CallError::LimitReached) naming the key;
//! a lowered mailbox capacity or the ingress limit with
//! [`CallError::MailboxFull`](crate::remote::CallError::MailboxFull). A full mailbox,
//! backpressure and these refusals are capacity signals, never breaker failures.

pub mod admission;
mod breaker;
mod ejection;
mod ingress;
mod limits;

pub use admission::{AdmissionCounts, classify};
pub use breaker::{Admit, Breaker, BreakerConfig, BreakerCounts, BreakerState, Outcome, Ticket};
pub use ejection::{Ejection, EjectionConfig};
pub use ingress::{IngressConfig, IngressCounts, IngressLimit};
pub use limits::{ComponentLimits, LimitChange, LimitKey, LimitSet};

/// Why an operations setting or a limit change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// A setting is out of range.
    #[error("{key}: {why}")]
    Invalid {
        /// The setting's key.
        key: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A limit change could not be read or applied.
    #[error("limit {text:?}: {why}")]
    BadLimit {
        /// The change as given.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// The limits changed since the version the change was made against.
    #[error("the limits are at version {actual}, the change was made against {expected}")]
    StaleVersion {
        /// The version the change expected.
        expected: u64,
        /// The version now.
        actual: u64,
    },
}
