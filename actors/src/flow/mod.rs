//! Flow control: message horizons and flow rate limits, as pure state machines fed
//! `now`.
//!
//! - [`Horizon`]: how far a message may travel (`process < node < network < global`),
//!   set per app, component, named flow and network ([`Horizons`]); the narrowest
//!   wins and nothing widens it. The default is [`Horizon::Network`].
//! - [`Gcra`] and [`Throttle`]: a GCRA limiter, and the throttle that trips on the
//!   first message over it and lets go after a calm hold (hysteresis).
//! - [`FlowLimits`]: limits per named flow and per (network, network) link, each with
//!   an [`Overflow`] policy: `local` (spill to a host in the sender's network, then a
//!   bounded shaping queue), `drop` or `bounce`.
//! - [`FlowControl`]: one container's state of all of these, which the node's router
//!   asks before a call leaves (`Node::set_flow_policy`, `Node::set_peer_place`) and
//!   when a request arrives; what it refuses is counted in [`FlowStats`].
//!
//! Nothing here reads a clock or does I/O: the simulator drives it exactly.

mod control;
mod gcra;
mod horizon;
mod limits;
mod stats;
mod throttle;

pub use control::{DEFAULT_NETWORK, FlowControl, FlowPolicy, Verdict};
pub use gcra::{Gcra, Rate};
pub use horizon::{Horizon, Horizons, Place};
pub use limits::{FlowLimits, Limit, Overflow, Secondary};
pub use stats::FlowStats;
pub use throttle::{Offer, Throttle, ThrottleConfig, ThrottleState};
