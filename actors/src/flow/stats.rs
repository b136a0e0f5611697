//! What flow control counted: [`FlowStats`].

/// Counters of flow rate limits and horizons, by reason; part of
/// [`NodeStats`](crate::remote::NodeStats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowStats {
    /// Tells over a rate limit discarded under the `drop` policy: the caller saw `Ok`,
    /// so this counter is the only record of them.
    pub rate_dropped: u64,
    /// Asks over a rate limit refused under the `drop` policy: each failed at once
    /// with [`CallError::Dropped`](crate::remote::CallError::Dropped).
    pub rate_dropped_asks: u64,
    /// Messages over a rate limit given back under the `bounce` policy
    /// ([`CallError::Bounced`](crate::remote::CallError::Bounced)).
    pub rate_bounced: u64,
    /// Messages over the limit to their first host sent instead to a host in this
    /// node's network (`local` policy).
    pub spilled_local: u64,
    /// Messages put in a shaping queue (`local` policy).
    pub shaped: u64,
    /// Messages in shaping queues now (a gauge: in flight, not yet sent).
    pub shaping: usize,
    /// Messages a shaping queue gave up on (their caller abandoned them, or the node
    /// stopped).
    pub shaping_abandoned: u64,
    /// Calls refused by this node as sender: they would cross their horizon
    /// ([`CallError::OutsideHorizon`](crate::remote::CallError::OutsideHorizon)).
    pub horizon_refused: u64,
    /// Requests from other nodes refused on arrival: their origin is beyond their
    /// horizon (asks answered with the error, tells dropped).
    pub horizon_refused_inbound: u64,
    /// Throttle state changes (flowing to throttled and back).
    pub throttle_transitions: u64,
}
