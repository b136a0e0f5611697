//! Components on other nodes: names, codecs, and the node that carries calls.
//!
//! A container runs one [`Node`]. It exports local components under names
//! ([`Node::export`]), tells its peers which names it hosts, and gives out typed
//! references by name ([`Node::lookup`]) whose `tell` and `ask` look the same whether
//! the component is on this node or another. A reference is typed by the component's
//! actor type, or by a protocol ([`protocol!`](crate::protocol)) when the caller has
//! only the message types: the messages it may tell or ask and their replies
//! ([`Accepts`]), and the requests it may ask with a streamed reply and their items
//! ([`AcceptsStream`]), all checked at compile time. [`Ref::local`] and
//! [`Ref::local_as`] reach a component in this process with no node at all.
//!
//! Message types that cross nodes implement [`RemoteMessage`]: a stable wire name and
//! a [`Codec`] ([`Postcard`] or [`Json`] for serde types, [`Prost`] for protobuf
//! messages, [`Raw`] for bytes the application encodes itself). Replies use the
//! message's codec. A call to a component on the same node never encodes.
//!
//! # Guarantees
//!
//! - **Order**: messages from one caller to one component are handled in the order
//!   sent, on this node and across the network, including messages that waited for the
//!   component's name.
//! - **Delivery**: at most once. Every ask ends with the reply or a [`CallError`] by its
//!   deadline; a tell that cannot be queued comes back in [`Undelivered`]; an inbound
//!   message that cannot be delivered is answered with an error (asks) or counted in
//!   [`NodeStats::dropped`] and logged (tells).
//! - **Startup order does not matter**: a call to a name no node has announced waits,
//!   bounded in number and time, and goes out when a peer announces the name.
//! - **Failure**: a peer that restarts (a higher generation) or whose connection is lost
//!   fails the asks it had with [`CallError::PeerLost`] at once, not at their deadlines;
//!   new calls to a peer whose connection is lost fail with [`CallError::Unreachable`]
//!   at once until it is back, and new calls to a name whose every host died or left
//!   with [`CallError::NotHosted`]. A call that waited for a host in vain fails with
//!   [`CallError::NotHosted`] if the name was ever hosted, [`CallError::UnknownName`]
//!   if no node ever announced it. A request is never handled by a later generation
//!   of a node than the one it was addressed to.
//! - **Isolation**: a component with a full mailbox holds only its own inbound
//!   requests (bounded in bytes); the rest of the node is not held up.
//! - **Streams**: [`Ref::ask_stream`] gets a streamed reply ([`RefStream`]) from a
//!   component exported with [`ExportBuilder::accept_stream`] (or
//!   [`ExportBuilder::serve`] for a protocol that lists the stream), through a
//!   reference typed by the actor or by the protocol. Items arrive in the order
//!   produced, each once (they carry sequence numbers; repeats are dropped, early ones
//!   held within the credit window); the producer computes an item only when the
//!   caller has granted credit for it, so a slow or stalled caller never makes anything
//!   buffer more than the window, on either node. Dropping the stream sends a cancel
//!   that stops the producer. A producer that fails, a node that shuts down, a lost
//!   connection or a missed deadline ends the stream with a typed [`CallError`]
//!   ([`CallError::StreamFailed`], [`CallError::Stopped`], [`CallError::PeerLost`],
//!   [`CallError::Timeout`], [`CallError::IdleTimeout`]), never a hang. A stream
//!   request that finds the mailbox full is refused at once rather than held.
//!
//! # Non-goals
//!
//! - No retries and no exactly-once: an ask that timed out may still have run.
//! - No membership protocol here: peers are configured, or a membership layer feeds
//!   them in through [`Node::peer_up`] and [`Node::peer_down`] (the `tern` facade does
//!   it from gossip discovery).

mod codec;
mod config;
mod error;
mod export;
pub mod fuzzing;
mod latency;
mod membership;
mod node;
mod reference;
mod router;
mod service;
mod slot;
mod stream;
mod traffic;

pub use codec::{Codec, CodecError, Json, Postcard, Prost, Raw, RawBytes, RemoteMessage};
pub use config::{NodeConfig, NodeError};
pub use error::CallError;
pub use export::ExportBuilder;
pub use latency::{ASK_LATENCY_BOUNDS, AskLatency};
pub use membership::{COMPONENTS_FACT, ENDPOINT_FACT, WeakNode};
pub use node::{InboundRefusals, Node, NodeStats, TellRefusals};
pub use reference::{Ref, RefAsk, RefTell, Undelivered};
pub use service::{Accepts, AcceptsStream, ServedBy};
#[doc(hidden)]
pub use service::{Direct, Found};
#[doc(hidden)]
pub use stream::Opened;
pub use stream::RefStream;
pub use traffic::{MAX_COUNTED_PEERS, OTHER_PEERS, PeerTraffic};
