//! Container processes: an application binary with a command line, a configuration,
//! and a clean shutdown.
//!
//! An application lists its components once; the same binary then runs them all in
//! one process (`run`), or only some of them as one container of a cluster
//! (`node --config FILE`), with no change to the components:
//!
//! ```text
//! app run                          every component in this process
//! app node --config w1.toml        one container: its listen address, peers, components
//! app check-config --config FILE   validate, exit 0 or 2 with the first error
//! app print-config --config FILE   the merged values and where each came from
//! app members --config FILE        the membership table of the running cluster
//! app status --config FILE         this node: components, mailboxes, rates, errors, peers
//! app set-capacity --config FILE mailbox.kv=64   limits changed at run time
//! ```
//!
//! With an `[admin]` section (`bind = "127.0.0.1:9100"`) a node serves `/metrics`
//! (OpenMetrics, see [`crate::metrics`]) and `/status` (JSON, what `status` prints)
//! from its own poll loop; off by default. `[log]` sets the log format (`text` or
//! `json`) and filter (see [`crate::log`]).
//!
//! With a `[gossip]` section (`bind`, `seeds`, `keys`, ...) a node finds its peers
//! through membership gossip from the seed list alone, publishes its components as
//! facts, and leaves gracefully on SIGTERM; without one it uses the static `[peers]`.
//!
//! The same application, with the same configurations, runs as N containers on the
//! deterministic simulator with [`SimCluster`], so a test exercises exactly the wiring
//! that is deployed.
//!
//! Configuration is TOML plus `TERN_SECTION__KEY` environment overrides; unknown keys
//! are refused, and every error names the key, its source and what was expected (see
//! [`config::schema`]). A node stops cleanly on SIGINT or SIGTERM: it withdraws its
//! components from the cluster (peers stop routing to it; callers in the container
//! still reach them), lets work in flight finish for the grace period, closes its
//! connections and exits 0.
//!
//! # Examples
//!
//! ```no_run
//! use tern::app::App;
//! use tern::remote::Node;
//!
//! struct Worker;
//! impl tern::Actor for Worker {}
//!
//! fn main() -> std::process::ExitCode {
//!     App::new("demo")
//!         .about("What `demo --help` says under its name.")
//!         .component("worker", |node: &Node| {
//!             node.export("worker", &tern::spawn(Worker))?;
//!             Ok(())
//!         })
//!         .main()
//! }
//! ```

mod admin;
mod admin_actions;
mod capacity;
mod cli;
mod cli_ops;
pub mod config;
mod debug_flow;
mod gossip;
mod reload;
mod signals;
mod sim;
mod status_page;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::discovery::{Datagrams, Discovery, UdpSocket};
use crate::remote::{Node, NodeConfig, NodeError};
use crate::transport::{Transport, ZmqSetupError, ZmqTransport};
use config::{ConfigError, Layered, NodeSettings};
pub use sim::SimCluster;

pub use admin::AdminListener;
pub use capacity::{LIMITS_FACT, MAX_LIMITS_FACT, MAX_LIMITS_VERSION};
pub use debug_flow::{DEBUG_FACT, MAX_DEBUG_FOR};
pub use reload::{Hangup, ReloadError, apply_limits_file, limits_from_text};

/// Starts one component on a node: spawn it, export it, wire it up.
pub type Starter = Box<dyn Fn(&Node) -> Result<(), NodeError>>;

/// Why a container could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The configuration is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// `components.host` names a component the application does not have.
    #[error(
        "`components.host` names {name:?}, which this application does not have (it has: {known})"
    )]
    UnknownComponent {
        /// The name.
        name: String,
        /// The application's components.
        known: String,
    },
    /// The transport could not bind or connect.
    #[error("transport: {0}")]
    Transport(#[from] ZmqSetupError),
    /// The node or a component could not start.
    #[error("node: {0}")]
    Node(#[from] NodeError),
    /// The runtime or the signal handlers could not be set up.
    #[error("runtime: {0}")]
    Io(#[from] std::io::Error),
    /// The executor failed.
    #[error("executor: {0}")]
    Executor(#[from] tern_executor::Error),
    /// Membership gossip could not start, or no member answered a query.
    #[error("gossip: {0}")]
    Gossip(String),
    /// A simulated container cannot be started as asked (see [`SimCluster`]).
    #[error("simulation: {0}")]
    Simulation(String),
    /// The span exporter could not start (its collector's host has no address).
    #[error("span export: {0}")]
    Trace(String),
    /// The admin listener could not bind.
    #[error("admin listener on {addr}: {source}")]
    Admin {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// An operator command needs the container's admin listener, and its
    /// configuration file has none.
    #[error("{}: no [admin] section with `bind`: nothing to ask", .0.display())]
    NoAdmin(PathBuf),
    /// The admin listener did not answer a query.
    #[error("admin listener at {addr}: {why}")]
    AdminQuery {
        /// The address asked.
        addr: std::net::SocketAddr,
        /// What went wrong.
        why: String,
    },
    /// The logging settings are invalid.
    #[error("log: {0}")]
    Log(#[from] crate::log::LogError),
    /// A debug switch that cannot be turned on.
    #[error("debug tracing: {0}")]
    Debug(String),
    /// A limit change was refused (see [`crate::ops::LimitSet`]).
    #[error("limits: {0}")]
    Limits(#[from] crate::ops::OpsError),
}

/// An application: its name and its components; see the [module docs](self).
pub struct App {
    name: String,
    about: Option<String>,
    components: BTreeMap<String, Starter>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("name", &self.name)
            .field("components", &self.components.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Milliseconds since the Unix epoch: the default generation of a real process, so a
/// restarted container is always newer than the one it replaces. (Read before any
/// runtime exists, and never under the simulator, whose nodes get their generations
/// from the world.)
fn wall_ms() -> u64 {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl App {
    /// An application called `name`, with no components yet.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            about: None,
            components: BTreeMap::new(),
        }
    }

    /// The one-line description `--help` shows under the application's name.
    #[must_use]
    pub fn about(mut self, text: impl Into<String>) -> Self {
        self.about = Some(text.into());
        self
    }

    /// Adds a component: `start` spawns and exports it on the node that hosts it.
    #[must_use]
    pub fn component(
        mut self,
        name: impl Into<String>,
        start: impl Fn(&Node) -> Result<(), NodeError> + 'static,
    ) -> Self {
        self.components.insert(name.into(), Box::new(start));
        self
    }

    fn check_hosted(&self, settings: &NodeSettings) -> Result<(), AppError> {
        for name in &settings.host {
            if !self.components.contains_key(name) {
                return Err(AppError::UnknownComponent {
                    name: name.clone(),
                    known: self
                        .components
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// Runs one container until SIGINT or SIGTERM.
    ///
    /// # Errors
    ///
    /// [`AppError`] if the transport, the node or a component cannot start.
    pub fn serve(&self, settings: &NodeSettings) -> Result<(), AppError> {
        self.serve_from(settings, None)
    }

    /// [`App::serve`]; with the configuration file it came from, that file's flows
    /// and horizons (`[flows.NAME]`, `[horizons]`) are read again and applied on
    /// SIGHUP (`app node`).
    fn serve_from(
        &self,
        settings: &NodeSettings,
        file: Option<&std::path::Path>,
    ) -> Result<(), AppError> {
        crate::log::set_process_node(&settings.name);
        let rt = tern_executor::Runtime::new()?;
        rt.block_on(async {
            let stop = signals::Stop::install()?;
            // Installed first: a SIGHUP while starting must not end the process.
            let hangup = file
                .map(|p| Hangup::install().map(|h| (h, p.to_owned())))
                .transpose()?;
            let z = settings.zmq()?;
            let transport = ZmqTransport::bind(z)?;
            let endpoints = transport.endpoints().to_vec();
            let gossip = match &settings.gossip {
                Some(g) => Some((
                    UdpSocket::bind(g.bind).map_err(|e| AppError::Gossip(e.to_string()))?,
                    gossip::seed_of(&settings.name, settings.generation),
                )),
                None => None,
            };
            let running = self.start(settings, transport.clone(), &endpoints, gossip, None)?;
            let (_export, export) = self.export_spans(settings, &running)?;
            let _admin = match &settings.admin {
                Some(a) => Some(admin::start(
                    a,
                    admin::Sources {
                        name: settings.name.clone(),
                        node: Some(running.node().clone()),
                        generation: settings.generation,
                        discovery: running.discovery().cloned(),
                        peers: settings.peers.keys().cloned().collect(),
                        running: Some(running.clone()),
                        export,
                    },
                )?),
                None => None,
            };
            let _reload = hangup.map(|(hangup, path)| {
                let node = running.node().clone();
                tern_executor::spawn(async move {
                    while hangup.wait().await {
                        reload::reload_flows(&node, &path);
                    }
                })
            });
            let signal = stop.wait().await;
            tracing::info!(name: "tern.app.stopping", node = %settings.name, signal,
                "stopping: withdrawing components");
            running.stop().await;
            transport.close();
            tracing::info!(name: "tern.app.stopped", node = %settings.name, "stopped");
            Ok(())
        })
    }

    /// Starts sending the container's spans to the collector `[trace]` names, if any
    /// (a build without the `otlp` feature refuses such a configuration when it is
    /// read): the task, and the counters for `/metrics`.
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)] // without the feature
    fn export_spans(
        &self,
        settings: &NodeSettings,
        running: &Running,
    ) -> Result<SpanExport, AppError> {
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &settings.otlp {
            let exporter = crate::trace::otlp::OtlpExporter::start(otlp, &self.name)
                .map_err(|e| AppError::Trace(e.to_string()))?;
            let stats = exporter.stats();
            return Ok((Some(exporter.follow(running.spans.clone())), Some(stats)));
        }
        #[cfg(not(feature = "otlp"))]
        let _ = (settings, running);
        Ok((None, None))
    }

    /// Starts one container on the current runtime, on `transport` (bound to
    /// `endpoints`) and, with a `[gossip]` section, membership on the given datagram
    /// socket and seed: the node, the hosted components, then gossip. The same steps
    /// run in a process ([`App::serve`]) and on the simulator ([`SimCluster`]).
    /// `id_seed` keys the node's message ids (the simulator's seed stream); `None`
    /// draws the key from the operating system.
    ///
    /// The settings are put in the container's
    /// [`Environment`](crate::actors::Environment) before any component starts, so a
    /// component can read them (`Environment::current().get::<NodeSettings>()`).
    fn start<T, D>(
        &self,
        settings: &NodeSettings,
        transport: T,
        endpoints: &[String],
        gossip: Option<(D, u64)>,
        id_seed: Option<u64>,
    ) -> Result<Running, AppError>
    where
        T: Transport + 'static,
        D: Datagrams + 'static,
    {
        crate::actors::Environment::current().insert(settings.clone());
        let mut config = NodeConfig::new(settings.name.clone())
            .peers(settings.peers.keys().cloned())
            .generation(settings.generation)
            .default_timeout(settings.ask_timeout)
            .pending_ttl(settings.pending_ttl)
            .inbound_bytes_limits(
                settings.inbound_bytes_limit,
                settings.peer_inbound_bytes_limit,
            )
            .max_peers(settings.max_peers);
        config.seed = id_seed;
        // With gossip, membership says who hosts what: no directories on the data plane.
        config.static_directories = settings.gossip.is_none();
        let node = Node::start(config, transport)?;
        if !settings.flows.is_empty() {
            node.set_flow_policy(settings.flows.policy());
        }
        for w in &settings.warnings {
            tracing::warn!(name: "tern.app.config_warning", node = %settings.name,
                warning = %w, "configuration warning");
        }
        for name in &settings.host {
            if let Some(start) = self.components.get(name) {
                start(&node)?;
            }
        }
        let mut trace_seed = gossip::seed_of(&settings.name, settings.generation);
        let discovery = match (&settings.gossip, gossip) {
            (Some(g), Some((socket, seed))) => {
                trace_seed ^= seed.rotate_left(17);
                Some(gossip::start(settings, g, &node, endpoints, socket, seed)?)
            }
            _ => None,
        };
        // Tracing is on in a container: remote calls carry W3C trace context, and the
        // container keeps its last spans (the simulator's containers share a thread,
        // so the last one started records them all).
        let spans = std::rc::Rc::new(crate::trace::SpanRing::new(crate::trace::DEFAULT_SPANS));
        crate::trace::install(spans.clone(), trace_seed);
        let flows = std::rc::Rc::default();
        debug_flow::start(
            settings.name.clone(),
            discovery.clone(),
            std::rc::Rc::clone(&flows),
        )
        .detach();
        tracing::info!(
            name: "tern.app.node_ready",
            node = %settings.name,
            generation = settings.generation,
            endpoints = ?endpoints,
            components = ?settings.host,
            "node ready"
        );
        let limits = std::rc::Rc::new(std::cell::RefCell::new(capacity::Layers::of(
            &node,
            settings.gossip.as_ref().map(|g| g.network.clone()),
        )));
        if let Some(d) = &discovery {
            capacity::start(node.clone(), d.clone(), std::rc::Rc::clone(&limits)).detach();
        }
        let running = Running {
            node,
            discovery,
            limits,
            grace: settings.shutdown_grace,
            spans,
            flows,
        };
        crate::actors::Environment::current().insert(running.clone());
        Ok(running)
    }
}

/// The span exporter's task and counters, when spans go to a collector.
type SpanExport = (
    Option<tern_executor::JoinHandle<()>>,
    Option<std::rc::Rc<crate::trace::ExportStats>>,
);

/// A running container: its node and, with a `[gossip]` section, its membership.
#[derive(Debug, Clone)]
pub struct Running {
    node: Node,
    discovery: Option<Discovery>,
    grace: Duration,
    spans: std::rc::Rc<crate::trace::SpanRing>,
    /// Debug switches this container started and publishes.
    flows: std::rc::Rc<std::cell::RefCell<Vec<debug_flow::Published>>>,
    /// The local and network layers of the container's limits.
    limits: std::rc::Rc<std::cell::RefCell<capacity::Layers>>,
}

impl Running {
    /// The container running on the current runtime ([`App::serve`] or
    /// [`SimCluster::start`] puts it in the container's
    /// [`Environment`](crate::actors::Environment) once it has started); `None` before.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[must_use]
    pub fn current() -> Option<std::rc::Rc<Self>> {
        crate::actors::Environment::current().get::<Self>()
    }

    /// The container's node: lookups, exports, counters.
    #[must_use]
    pub const fn node(&self) -> &Node {
        &self.node
    }

    /// The container's last spans (see [`crate::trace`]).
    #[must_use]
    pub fn spans(&self) -> &crate::trace::SpanRing {
        &self.spans
    }

    /// The container's membership, with a `[gossip]` section.
    #[must_use]
    pub const fn discovery(&self) -> Option<&Discovery> {
        self.discovery.as_ref()
    }

    /// Stops gracefully: withdraws the components (peers stop routing here), leaves
    /// the cluster (recorded as *left* everywhere, never as failed), then lets work in
    /// flight finish (or fail by its deadline) for the grace period, at most 30 s.
    /// Meanwhile the components keep running and callers in this container still
    /// reach them through their references (see [`Node::shutdown`]): only other nodes
    /// stop seeing them.
    async fn stop(&self) {
        self.node.shutdown();
        if let Some(d) = &self.discovery {
            d.leave().await;
        }
        tern_executor::time::sleep(self.grace.min(Duration::from_secs(30))).await;
    }
}
