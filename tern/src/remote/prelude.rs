//! One import for code that talks to other nodes or runs on the simulator:
//! `use tern::remote::prelude::*;`.
//!
//! Everything in [`tern::prelude`](crate::prelude), plus the node and its references
//! ([`Node`], [`NodeConfig`], [`Ref`], [`CallError`]), message types that cross nodes
//! ([`RemoteMessage`] and the codecs), protocols ([`protocol!`], [`Accepts`],
//! [`AcceptsStream`], [`ServedBy`]), the transports ([`ZmqTransport`] with its
//! [`ZmqConfig`] and CURVE security ([`CurveSecurity`], [`KeyPair`], [`AllowList`]),
//! [`SimTransport`]), the simulator ([`World`], [`NodeId`], [`sim_nodes`], its network
//! [`NetConfig`], seeded randomness [`SeedTree`] and [`SimRng`], [`TraceHash`]) and
//! container processes
//! ([`App`], [`SimCluster`], their settings [`NodeSettings`] read from [`Layered`]
//! configuration).
//!
//! A user's `Cargo.toml` needs, besides `tern`, `serde` with its `derive` feature for
//! the message types (`serde = { version = "1", features = ["derive"] }`); tern brings
//! everything else, [`StreamExt`] included.
//!
//! ```
//! use tern::remote::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! struct Store(u64);
//! impl Actor for Store {}
//!
//! #[derive(Debug, Serialize, Deserialize)]
//! struct Add(u64);
//! impl RemoteMessage for Add {
//!     const NAME: &'static str = "doc.v1.Add";
//!     type Codec = Postcard;
//! }
//! impl Handler<Add> for Store {
//!     type Reply = u64;
//!     async fn handle(&mut self, m: Add, _: &mut Context<Self>) -> u64 {
//!         self.0 += m.0;
//!         self.0
//!     }
//! }
//!
//! let mut world = World::new(1).unwrap();
//! let [(store, ts), (client, tc)] = sim_nodes(&mut world, ["store", "client"]).unwrap();
//! world
//!     .spawn_on(store, async move {
//!         let node = Node::start(NodeConfig::new("store").peers(["client"]), ts).unwrap();
//!         node.export("store", &spawn(Store(0))).unwrap().accept::<Add>();
//!     })
//!     .detach();
//! let answer = world.spawn_on(client, async move {
//!     let node = Node::start(NodeConfig::new("client").peers(["store"]), tc).unwrap();
//!     node.lookup::<Store>("store").ask(Add(2)).await
//! });
//! world.run_until(Instant::from_nanos(1_000_000_000));
//! let answer = world.runtime(client).unwrap().block_on(answer).unwrap();
//! assert_eq!(answer, Ok(2));
//! ```

pub use crate::app::config::{Layered, NodeSettings};
pub use crate::app::{App, SimCluster};
pub use crate::prelude::*;
pub use tern_actors::protocol;
pub use tern_actors::remote::{
    Accepts, AcceptsStream, CallError, Codec, ExportBuilder, Json, Node, NodeConfig, NodeError,
    NodeStats, Postcard, Prost, Raw, RawBytes, Ref, RefStream, RemoteMessage, ServedBy,
    Undelivered,
};
pub use tern_executor::sim::{NetConfig, NodeId, SeedTree, SimRng, TraceHash, World};
pub use tern_macros::RemoteMessage;
pub use tern_transport::{
    AllowList, CurveSecurity, KeyPair, SimTransport, ZmqConfig, ZmqTransport,
};

pub use super::sim_nodes;
