//! Flow rate limits as configured: per named flow and per (network, network) link,
//! each with its overflow policy.

use std::collections::BTreeMap;

use super::throttle::ThrottleConfig;

/// What happens to a message over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Spill it to an instance of the component in the sender's own network that is
    /// under its limits; if there is none, queue it (FIFO, at most `max_queue`
    /// messages, never past the message's deadline) until the limit lets it go; if the
    /// queue is full or the wait would pass the deadline, apply `then`.
    Local {
        /// The shaping queue's bound.
        max_queue: usize,
        /// What to do when the queue cannot take it.
        then: Secondary,
    },
    /// Discard it, counted: a tell sees `Ok`, an ask fails at once with
    /// [`CallError::Dropped`](crate::remote::CallError::Dropped).
    Drop,
    /// Give it back to the sender with the time after which it would conform
    /// ([`CallError::Bounced`](crate::remote::CallError::Bounced)).
    Bounce,
}

impl Overflow {
    /// `local` with a queue of 1000 and `bounce` after it.
    pub const LOCAL: Self = Self::Local {
        max_queue: 1000,
        then: Secondary::Bounce,
    };
}

/// What `local` overflow does when its queue cannot take a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secondary {
    /// As [`Overflow::Drop`].
    Drop,
    /// As [`Overflow::Bounce`].
    Bounce,
}

/// One limit: a throttle and what happens to its excess.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// The rate, its burst, and the throttle's hysteresis and hold.
    pub throttle: ThrottleConfig,
    /// The overflow policy.
    pub overflow: Overflow,
}

impl Limit {
    /// A limit with the throttle's defaults.
    #[must_use]
    pub fn new(rate: super::Rate, overflow: Overflow) -> Self {
        Self {
            throttle: ThrottleConfig::new(rate),
            overflow,
        }
    }
}

/// Every flow rate limit of a container, by flow name and by link.
///
/// A named flow's limit counts every message of that flow this container sends to
/// another container; a link's limit counts every message from the sender's network to
/// another network. A message must fit both; when the flow's limit refuses it, the
/// flow's overflow policy applies, otherwise the link's.
///
/// ```
/// use tern_actors::flow::{FlowLimits, Limit, Overflow, Rate};
///
/// let mut limits = FlowLimits::default();
/// limits
///     .flow("thumbnails", Limit::new(Rate::new(200, 20), Overflow::Bounce))
///     .link("eu", "us", Limit::new(Rate::new(1000, 100), Overflow::LOCAL));
/// assert!(!limits.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowLimits {
    pub(super) flows: BTreeMap<String, Limit>,
    /// Source network -> destination network -> limit.
    pub(super) links: BTreeMap<String, BTreeMap<String, Limit>>,
}

impl FlowLimits {
    /// Limits flow `name`.
    pub fn flow(&mut self, name: impl Into<String>, limit: Limit) -> &mut Self {
        self.flows.insert(name.into(), limit);
        self
    }

    /// Limits the link from network `from` to network `to`.
    pub fn link(
        &mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        limit: Limit,
    ) -> &mut Self {
        self.links
            .entry(from.into())
            .or_default()
            .insert(to.into(), limit);
        self
    }

    /// Whether no limit is set (then nothing is checked).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.links.is_empty()
    }
}
