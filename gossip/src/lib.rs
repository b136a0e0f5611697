//! Tern's membership: who is in the cluster, who is alive, and what each node says
//! about itself, spread by gossip over UDP from a seed list.
//!
//! An operator gives each node a seed list and nothing else. Any one live seed is
//! enough to join; seeds are not special. [`Membership`] is the protocol as a pure
//! state machine (SWIM failure detection with Lifeguard, piggy-backed and periodic
//! gossip, anti-entropy in MTU-sized pieces, graceful leave, per-member facts): it
//! reads no clock, opens no socket and draws its randomness from the seed it is given.
//! Drivers (the `tern-discovery` crate) feed it datagrams and timer wake-ups.
//!
//! # Guarantees
//!
//! - **Checked before parsed.** Every datagram carries the cluster tag and is sealed
//!   with XChaCha20-Poly1305 under a key of the [`Keyring`], the cluster id being
//!   authenticated data; nothing of a datagram is parsed before it passes. Refusals
//!   are counted in [`GossipStats`].
//! - **Never over the MTU**: every datagram is built to fit
//!   [`GossipConfig::mtu`] (1,400 bytes by default); IP fragmentation is never needed.
//! - **Identity is name + generation.** A newer generation replaces the old one at
//!   once, everywhere it is heard; an older one is ignored.
//! - **Failure detection**: a member that stops answering is suspected after one
//!   protocol period and declared dead after the suspicion timeout, unless it refutes.
//!   Suspicion shortens with independent confirmations, and a node whose own loop is
//!   slow (missed nacks, late timers, refutations) probes more patiently (Lifeguard).
//! - **Leave is not failure**: a node that leaves is recorded as *left* everywhere,
//!   never as dead.
//! - **Convergence**: after the last fault, every live node's view converges
//!   (anti-entropy repairs what gossip misses; seeds and dead members are contacted
//!   periodically so partitions and islands merge).
//! - **Bounded**: gossip queues, tombstones (with a time to live), the member table
//!   and each node's facts all have limits in [`GossipConfig`].
//! - **Deterministic**: no clock reads and no randomness but the seed given to
//!   [`Membership::new`] (through [`Rng`]); under the simulator a run replays exactly.
//!
//! # Non-goals
//!
//! - No agreement: membership is eventually consistent (AP). Anything needing a
//!   single owner must decide above it (quorum, lease), never by auto-downing here.
//! - No TCP: joining and anti-entropy use UDP only.
//! - No WAN pools or gateways yet.
//!
//! The datagram format is in `docs/wire-protocol.md` ("Gossip datagrams").

mod broadcast;
mod config;
mod error;
pub mod fuzzing;
mod member;
mod membership;
mod packet;
mod probe;
pub mod replay;
mod rng;
mod seal;
mod sync;
mod update;

pub use config::GossipConfig;
pub use error::{ConfigError, FactError, KeyError, KeyringError, OpenError};
pub use member::{MemberEvent, MemberInfo, State};
pub use membership::{GossipStats, Identity, Membership, Nanos};
pub use rng::Rng;
pub use seal::{
    FORMAT_VERSION, HEADER_LEN, Key, Keyring, MAGIC, NONCE_LEN, Nonce, OVERHEAD, Sealer, TAG_LEN,
    sender_hash,
};
pub use sync::{BUCKETS, MembersQuery, QUERY_AMPLIFICATION};
