//! Components on other nodes: names, codecs, and the node that carries calls (the
//! items of [`tern_actors::remote`], documented here), [`prelude`], one import for
//! remote and simulator code, and [`sim_nodes`], simulated nodes in one call.
//!
//! A container runs one [`Node`]. It exports local components under names
//! ([`Node::export`]), tells its peers which names it hosts, and gives out typed
//! references by name ([`Node::lookup`]) whose `tell`, `ask` and `ask_stream` look the
//! same whether the component is on this node or another. The delivery guarantees are stated in
//! [`tern_actors::remote`].
//!
//! # Message types
//!
//! A message type that crosses nodes implements [`RemoteMessage`](trait@RemoteMessage):
//! a stable wire name and a [`Codec`]. `#[derive(RemoteMessage)]` writes the impl from a
//! `#[tern(...)]` attribute: `name = "..."` (required), `codec = ...` (`Postcard`, the
//! default, `Json`, `Prost`, `Raw`, or the path of any [`Codec`]), `item = Type` to make
//! it a [`StreamMessage`](crate::actors::StreamMessage) too, and `crate = path` where
//! `tern` is renamed. The type needs serde's derives for the serde codecs: a user's
//! `Cargo.toml` lists `serde = { version = "1", features = ["derive"] }`.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tern::remote::{Json, Postcard, RemoteMessage};
//!
//! #[derive(Debug, Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Put", codec = Json)]
//! struct Put { key: String, value: String }
//!
//! #[derive(Debug, Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Get")] // Postcard
//! struct Get { key: String }
//!
//! #[derive(Debug, Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Scan", item = (String, String))]
//! struct Scan { prefix: String }
//!
//! fn codec_of<M: RemoteMessage>() -> &'static str { std::any::type_name::<M::Codec>() }
//! assert_eq!(<Put as RemoteMessage>::NAME, "kv.v1.Put");
//! assert_eq!(codec_of::<Put>(), std::any::type_name::<Json>());
//! assert_eq!(codec_of::<Get>(), std::any::type_name::<Postcard>());
//! let _: fn() -> Option<<Scan as tern::actors::StreamMessage>::Item> = || None;
//! ```
//!
//! The wire name is required:
//!
//! ```compile_fail
//! #[derive(serde::Serialize, serde::Deserialize, tern::remote::RemoteMessage)]
//! struct NoName;
//! ```
//!
//! Unknown keys are refused:
//!
//! ```compile_fail
//! #[derive(serde::Serialize, serde::Deserialize, tern::remote::RemoteMessage)]
//! #[tern(name = "a.B", codek = Json)]
//! struct Typo;
//! ```
//!
//! And the codec must be able to encode the type (here: no serde derives):
//!
//! ```compile_fail
//! #[derive(tern::remote::RemoteMessage)]
//! #[tern(name = "a.B", codec = Json)]
//! struct NotSerde;
//! ```

//! # Protocols
//!
//! A client that has only the message types (not the server's actor type) names what
//! it calls with a protocol, declared once in the crate both share: each message with
//! its reply (`Get => Option<String>`), or with the items of its streamed reply
//! (`Keys => stream String`). `Ref<Kv>` then has the same `tell`, `ask` and
//! `ask_stream` as `Ref<Store>`, checked at compile time, and the server checks with
//! [`ExportBuilder::serve`] that it handles all of it:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tern::remote::prelude::*;
//!
//! // The shared crate: messages and the protocol.
//! #[derive(Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Get")]
//! pub struct Get { pub key: String }
//! /// Every key, in order, as a stream.
//! #[derive(Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Keys", item = String)]
//! pub struct Keys;
//! protocol! {
//!     /// The store, as clients see it.
//!     pub Kv { Get => Option<String>, Keys => stream String }
//! }
//!
//! // The server's binary.
//! struct Store;
//! impl Actor for Store {}
//! impl Handler<Get> for Store {
//!     type Reply = Option<String>;
//!     async fn handle(&mut self, m: Get, _: &mut Context<Self>) -> Option<String> {
//!         (m.key == "greeting").then(|| "hello".to_owned())
//!     }
//! }
//! impl Handler<Streaming<Keys>> for Store {
//!     type Reply = ();
//!     async fn handle(&mut self, req: Streaming<Keys>, _: &mut Context<Self>) {
//!         let (_, mut out) = req.into_parts();
//!         for key in ["farewell", "greeting"] {
//!             if out.send(key.to_owned()).await.is_err() {
//!                 return; // the caller dropped the stream
//!             }
//!         }
//!         out.end();
//!     }
//! }
//!
//! let mut world = World::new(3).unwrap();
//! let [(store, ts), (client, tc)] = sim_nodes(&mut world, ["store", "client"]).unwrap();
//! world.spawn_on(store, async move {
//!     let node = Node::start(NodeConfig::new("store").peers(["client"]), ts).unwrap();
//!     node.export("kv", &spawn(Store)).unwrap().serve::<Kv>();
//! }).detach();
//! // The client's binary: only `Get`, `Keys` and `Kv`.
//! let answer = world.spawn_on(client, async move {
//!     let node = Node::start(NodeConfig::new("client").peers(["store"]), tc).unwrap();
//!     let kv: Ref<Kv> = node.lookup("kv");
//!     let value = kv.ask(Get { key: "greeting".into() }).await;
//!     let keys: Vec<_> = kv.ask_stream(Keys).credit(8).collect().await;
//!     (value, keys)
//! });
//! world.run_until(Instant::from_nanos(1_000_000_000));
//! let (value, keys) = world.runtime(client).unwrap().block_on(answer).unwrap();
//! assert_eq!(value, Ok(Some("hello".to_owned())));
//! assert_eq!(keys, vec![Ok("farewell".to_owned()), Ok("greeting".to_owned())]);
//! ```
//!
//! A message the protocol does not list does not compile:
//!
//! ```compile_fail
//! use serde::{Deserialize, Serialize};
//! use tern::remote::prelude::*;
//!
//! #[derive(Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Get")]
//! pub struct Get { pub key: String }
//! #[derive(Serialize, Deserialize, RemoteMessage)]
//! #[tern(name = "kv.v1.Delete")]
//! pub struct Delete { pub key: String }
//! protocol! {
//!     /// Reads only.
//!     pub ReadOnly { Get => Option<String> }
//! }
//!
//! async fn delete(kv: Ref<ReadOnly>) {
//!     let _ = kv.ask(Delete { key: "k".into() }).await;
//! }
//! ```

pub mod prelude;
mod sim_nodes;

pub use sim_nodes::sim_nodes;
/// Declares a protocol: the messages a component accepts with their replies, and the
/// streams it answers with their items, so a client needs only the message types; see
/// [Protocols](self#protocols).
pub use tern_actors::protocol;
#[doc(inline)]
pub use tern_actors::remote::*;
/// Derives [`RemoteMessage`](trait@RemoteMessage); see [Message types](self#message-types).
pub use tern_macros::RemoteMessage;
