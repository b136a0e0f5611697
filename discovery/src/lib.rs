//! Tern's membership drivers: [`Discovery`] runs the pure gossip core
//! ([`Membership`], from the `tern-gossip` crate) on a [`UdpSocket`] in the runtime's
//! poll loop, or on the simulator's datagram network ([`SimDatagrams`]), and tells
//! subscribers what changed.
//!
//! The protocol, its guarantees and its non-goals are documented in `tern-gossip`;
//! everything a user of membership needs from it is re-exported here, so
//! `tern::discovery::{GossipConfig, Keyring, Membership, ...}` is one import.
//!
//! # Guarantees of the drivers
//!
//! - **Time and randomness stay outside the core**: the driver reads the runtime's
//!   clock (virtual under the simulator) and passes it in; the core's randomness is
//!   the seed given to [`Membership::new`].
//! - **No starvation**: a driver reads at most [`GossipConfig::read_batch`] datagrams
//!   per wake-up, then yields to the other tasks of the poll loop.
//! - **One timer**: the driver sleeps until the core's next deadline, a datagram, or a
//!   local change ([`Discovery::set_fact`], [`Discovery::leave`]).

mod driver;
mod error;
mod sim;
mod udp;

pub use driver::{Datagrams, Discovery};
pub use error::DriverError;
pub use sim::{SIM_PORT, SimDatagrams, sim_addr, sim_node};
pub use tern_gossip::{
    BUCKETS, ConfigError, FORMAT_VERSION, FactError, GossipConfig, GossipStats, HEADER_LEN,
    Identity, Key, KeyError, Keyring, KeyringError, MAGIC, MemberEvent, MemberInfo, MembersQuery,
    Membership, NONCE_LEN, Nanos, OVERHEAD, OpenError, Rng, Sealer, State, TAG_LEN,
};
pub use udp::UdpSocket;
