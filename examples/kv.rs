//! A key-value store, the application of `docs/getting-started.md`: one component, run
//! in one process, on the simulator with a partition, and as three processes.
//!
//! ```text
//! cargo run --example kv -- local                  # in one process
//! cargo run --example kv -- sim --seed 7           # two simulated nodes and a partition
//! cargo run --example kv -- node --config examples/kv/store.toml    # the store's container
//! cargo run --example kv -- put --config examples/kv/client.toml greeting hello
//! cargo run --example kv -- get --config examples/kv/client.toml greeting
//! ```

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tern::remote::prelude::*;

use protocol::{Get, Kv, Put};

// ANCHOR: protocol
/// What the store's clients and the store share: the message types and the protocol.
/// In a real project this module is a small crate that both binaries depend on (its
/// items `pub`); a client needs nothing else, not the store's type.
pub(crate) mod protocol {
    use serde::{Deserialize, Serialize};
    use tern::remote::prelude::*;

    /// Sets `key` to `value`; the reply is the value it had.
    #[derive(Debug, Serialize, Deserialize, RemoteMessage)]
    #[tern(name = "kv.v1.Put")]
    pub(crate) struct Put {
        pub(crate) key: String,
        pub(crate) value: String,
    }

    /// Reads `key`.
    #[derive(Debug, Serialize, Deserialize, RemoteMessage)]
    #[tern(name = "kv.v1.Get")]
    pub(crate) struct Get {
        pub(crate) key: String,
    }

    protocol! {
        /// The key-value store as its clients see it: each message and its reply.
        pub(crate) Kv {
            Put => Option<String>,
            Get => Option<String>,
        }
    }
}
// ANCHOR_END: protocol

// ANCHOR: component
/// The store: a map from keys to values, owned by one component.
#[derive(Debug, Default)]
struct Store {
    map: BTreeMap<String, String>,
}
impl Actor for Store {}

impl Handler<Put> for Store {
    type Reply = Option<String>;
    async fn handle(&mut self, m: Put, _: &mut Context<Self>) -> Option<String> {
        self.map.insert(m.key, m.value)
    }
}

impl Handler<Get> for Store {
    type Reply = Option<String>;
    async fn handle(&mut self, m: Get, _: &mut Context<Self>) -> Option<String> {
        self.map.get(&m.key).cloned()
    }
}
// ANCHOR_END: component

// ANCHOR: local
/// Step 1: the store in this process. `ask` gives the typed reply, or a typed error.
pub(crate) fn local() -> anyhow::Result<Option<String>> {
    Runtime::new()?.block_on(async {
        let store = spawn(Store::default());
        store
            .ask(Put {
                key: "greeting".into(),
                value: "hello".into(),
            })
            .await?;
        // The same component as a `Ref`, the type the remote steps use, with no node
        // and no transport: calls go straight to its mailbox.
        let kv: Ref<Kv> = Ref::local_as(&store);
        let value = kv
            .ask(Get {
                key: "greeting".into(),
            })
            .await?;
        println!("local: greeting = {value:?}");
        Ok(value)
    })
}
// ANCHOR_END: local

// ANCHOR: sim
/// Step 2: a store node and a client node on the simulator, one seed, virtual time.
/// The client writes, the network between the two is cut for two seconds, and heals.
/// What the client saw, one line per ask.
pub(crate) fn simulate(seed: u64) -> anyhow::Result<Vec<String>> {
    let mut world = World::new(seed)?;
    let [(store, ts), (client, tc)] = sim_nodes(&mut world, ["store", "client"])?;
    world
        .spawn_on(store, async move {
            let node = Node::start(NodeConfig::new("store").peers(["client"]), ts)?;
            // `serve` accepts every message of the protocol; the compiler checks that
            // the store handles each with the reply the protocol names.
            node.export("kv", &spawn(Store::default()))?.serve::<Kv>();
            anyhow::Ok(())
        })
        .detach();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    world
        .spawn_on(client, async move {
            let node = Node::start(NodeConfig::new("client").peers(["store"]), tc)?;
            // Typed by the protocol: the client needs the message types only.
            let kv = node.lookup::<Kv>("kv");
            let put = Put {
                key: "greeting".into(),
                value: "hello".into(),
            };
            let reply = kv.ask(put).await;
            log.borrow_mut().push(format!("t=0 s  put: {reply:?}"));
            // Ask once a second; the partition is from 2 s to 4 s.
            for t in 1..=6 {
                time::sleep_until(Instant::from_nanos(t * 1_000_000_000)).await;
                let get = Get {
                    key: "greeting".into(),
                };
                let reply = kv.ask(get).timeout(Duration::from_millis(500)).await;
                // Down, cut off or slow: the same question whatever the variant.
                let note = match &reply {
                    Err(e) if e.is_unavailable() => " (unavailable: retry later)",
                    _ => "",
                };
                log.borrow_mut()
                    .push(format!("t={t} s  get: {reply:?}{note}"));
            }
            anyhow::Ok(())
        })
        .detach();
    world.run_until(Instant::from_nanos(1_900_000_000));
    world.partition(store, client);
    world.run_until(Instant::from_nanos(3_900_000_000));
    world.heal(store, client);
    world.run_until(Instant::from_nanos(10_000_000_000));
    let seen = seen.borrow().clone();
    for line in &seen {
        println!("sim: {line}");
    }
    Ok(seen)
}
// ANCHOR_END: sim

// ANCHOR: app
/// Step 3: the application, for container processes: `kv node --config FILE` runs the
/// components its file names (`[components] host = ["kv"]`).
pub(crate) fn app() -> App {
    App::new("kv")
        .about("A key-value store: the tern getting-started application.")
        .component("kv", |node: &Node| {
            node.export("kv", &spawn(Store::default()))?.serve::<Kv>();
            Ok(())
        })
}

/// A one-shot client: a node of its own, configured by `config` (its name, listen
/// address and the store as a peer), that asks once and returns the reply.
pub(crate) fn client(
    config: &Path,
    key: &str,
    value: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let layered = Layered::load(Some(config), std::env::vars())?;
    Runtime::new()?.block_on(async {
        // Each run is a new incarnation of the client node: a newer generation.
        let now = time::wall_now().duration_since(std::time::UNIX_EPOCH)?;
        let settings = layered.node(u64::try_from(now.as_millis())?)?;
        // Endpoints, peers, limits and `[security]` as the file says.
        let transport = ZmqTransport::bind(settings.zmq()?)?;
        let config = NodeConfig::new(settings.name.clone()).peers(settings.peers.keys().cloned());
        let node = Node::start(config, transport.clone())?;
        let kv = node.lookup::<Kv>("kv");
        let key = key.to_owned();
        let reply = match value {
            Some(value) => {
                let value = value.to_owned();
                kv.ask(Put { key, value })
                    .timeout(Duration::from_secs(5))
                    .await
            }
            None => kv.ask(Get { key }).timeout(Duration::from_secs(5)).await,
        };
        node.shutdown();
        transport.close();
        Ok(reply?)
    })
}
// ANCHOR_END: app

/// The command line: `local`, `sim [--seed N]`, `put|get --config FILE KEY [VALUE]`,
/// and the application's own commands (`node`, `check-config`, ...).
pub(crate) fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(1) {
        Some("local") => {
            local()?;
        }
        Some("sim") => {
            let seed = match (arg(2), arg(3)) {
                (Some("--seed"), Some(s)) => s.parse().context("--seed takes a number")?,
                _ => 7,
            };
            simulate(seed)?;
        }
        Some(cmd @ ("put" | "get")) => {
            let (Some("--config"), Some(config), Some(key)) = (arg(2), arg(3), arg(4)) else {
                bail!(
                    "usage: kv {cmd} --config FILE KEY{}",
                    if cmd == "put" { " VALUE" } else { "" }
                );
            };
            let value = if cmd == "put" {
                Some(arg(5).context("put needs a value")?)
            } else {
                None
            };
            let reply = client(Path::new(config), key, value)?;
            println!("{key} = {reply:?}");
        }
        _ => return Ok(app().main_from(args)),
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    run(&args).unwrap_or_else(|e| {
        println!("kv: {e:#}");
        ExitCode::FAILURE
    })
}
