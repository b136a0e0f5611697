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
pub mod config;
mod gossip;
mod signals;
mod sim;

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
    /// The admin listener could not bind.
    #[error("admin listener on {addr}: {source}")]
    Admin {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
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
}

#[derive(Debug, Parser)]
#[command(disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level (error, warn, info, debug, trace); `RUST_LOG` also works.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every component in this process.
    Run {
        /// Optional configuration (only `timeouts` and `transport` apply).
        #[arg(long, env = "TERN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Runs one container: its listen address, its peers, the components it hosts.
    Node {
        /// The configuration file.
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
    },
    /// Validates a configuration: exit 0, or 2 with the first error. Every key, its
    /// type, default and environment override: docs/configuration.md in tern.
    CheckConfig {
        /// The configuration file.
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
    },
    /// Prints the merged configuration and where each value came from.
    PrintConfig {
        /// The configuration file.
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
    },
    /// Prints the membership table of the running cluster (name, address, state,
    /// generation, incarnation, health, facts), asked of the node's own gossip address
    /// and its seeds with the `[gossip]` section of the configuration.
    Members {
        /// A configuration with a `[gossip]` section (a node's file will do).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
        /// How long to wait for an answer, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Writes a new CURVE key pair to a file (never over an existing one) and prints
    /// the allow-list line that admits it: `NAME = "public key"`.
    Keygen {
        /// The node (or client) name the key is for.
        #[arg(long)]
        name: String,
        /// The key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints this node's components (mailboxes, rates, errors), remote counters and
    /// peers, asked of its admin listener (`[admin] bind` in the configuration).
    Status {
        /// The node's configuration (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
        /// How long to wait for an answer, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
        /// Prints the `/status` JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
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

    /// The command line's description: `--help` and the errors name the application
    /// and say what [`App::about`] says, never tern.
    fn command_line(&self) -> clap::Command {
        let mut command = <Cli as clap::CommandFactory>::command()
            .name(self.name.clone())
            .bin_name(self.name.clone());
        if let Some(about) = &self.about {
            command = command.about(about.clone());
        }
        command
    }

    /// What `--help` prints.
    ///
    /// ```
    /// let help = tern::app::App::new("kv").about("A key-value store.").help();
    /// assert!(help.starts_with("A key-value store."));
    /// assert!(help.contains("Usage: kv [OPTIONS] <COMMAND>"));
    /// ```
    #[must_use]
    pub fn help(&self) -> String {
        self.command_line().render_help().to_string()
    }

    /// Parses the command line and runs; returns the process exit code (0 on success
    /// and after a clean shutdown, 2 for a bad configuration, 1 otherwise).
    #[must_use]
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// Like [`App::main`], with the command line given (the first item is the program
    /// name), for tests and for binaries that route some arguments elsewhere.
    #[must_use]
    pub fn main_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let parsed = self
            .command_line()
            .try_get_matches_from(args)
            .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
        let cli = match parsed {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return if e.use_stderr() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
        };
        match self.execute(cli.command, &cli.log_level) {
            Ok(()) => ExitCode::SUCCESS,
            // Said once, on stderr, where an operator starting the process looks.
            Err(AppError::Config(e)) => {
                eprintln!(
                    "{}: error: configuration: {e}\n(every key, its type, default and \
                     environment override: docs/configuration.md in tern)",
                    self.name
                );
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("{}: error: {e}", self.name);
                ExitCode::FAILURE
            }
        }
    }

    /// Logging for a command: `[log]` of the configuration when there is one, the
    /// filter from `RUST_LOG`, `log.filter` or `--log-level`, in that order.
    fn init_log(layered: Option<&Layered>, level: &str) -> Result<(), AppError> {
        let rust_log = std::env::var("RUST_LOG").ok();
        let settings = match layered {
            Some(l) => l.log()?.settings(rust_log, level),
            None => crate::log::LogSettings {
                filter: rust_log
                    .filter(|f| !f.is_empty())
                    .unwrap_or_else(|| level.to_owned()),
                ..crate::log::LogSettings::default()
            },
        };
        crate::log::init_with(&settings)?;
        Ok(())
    }

    fn execute(&self, command: Command, level: &str) -> Result<(), AppError> {
        let env = std::env::vars();
        let layered = match &command {
            Command::Run { config } => Some(Layered::load(config.as_deref(), std::env::vars())?),
            Command::Node { config } | Command::Status { config, .. } => {
                Some(Layered::load(Some(config), std::env::vars())?)
            }
            _ => None,
        };
        Self::init_log(layered.as_ref(), level)?;
        match command {
            Command::CheckConfig { config } => {
                let settings = Layered::load(Some(&config), env)?.node(0)?;
                self.check_hosted(&settings)?;
                settings.security.load()?;
                for w in &settings.warnings {
                    eprintln!("{}: warning: {w}", config.display());
                }
                eprintln!(
                    "{}: configuration of node {:?} is valid",
                    config.display(),
                    settings.name
                );
                Ok(())
            }
            Command::Keygen { name, out } => {
                let line = config::keygen(&name, &out)
                    .map_err(|e| AppError::Transport(ZmqSetupError::Security(e)))?;
                // The command's output is the allow-list line itself.
                #[allow(clippy::print_stdout)]
                {
                    println!("{line}");
                }
                Ok(())
            }
            Command::PrintConfig { config } => {
                let layered = Layered::load(Some(&config), env)?;
                // The command's output is the configuration itself.
                #[allow(clippy::print_stdout)]
                {
                    print!("{}", layered.describe());
                }
                Ok(())
            }
            Command::Members { config, timeout_ms } => {
                let settings = Layered::load(Some(&config), env)?.node(0)?;
                let Some(g) = &settings.gossip else {
                    return Err(AppError::Gossip(format!(
                        "{}: no [gossip] section with `bind`: nothing to ask",
                        config.display()
                    )));
                };
                let rows = gossip::query(g, Duration::from_millis(timeout_ms), wall_ms())?;
                // The command's output is the table itself.
                #[allow(clippy::print_stdout)]
                {
                    print!("{}", gossip::table(&rows));
                }
                Ok(())
            }
            Command::Status {
                config,
                timeout_ms,
                json,
            } => {
                let settings = Layered::load(Some(&config), env)?.node(0)?;
                let Some(a) = &settings.admin else {
                    return Err(AppError::Gossip(format!(
                        "{}: no [admin] section with `bind`: nothing to ask",
                        config.display()
                    )));
                };
                let mut addr = a.bind;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                let body = admin::get(addr, "/status", Duration::from_millis(timeout_ms))?;
                let doc: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| AppError::AdminQuery {
                        addr,
                        why: format!("the answer is not JSON: {e}"),
                    })?;
                // The command's output is the status itself.
                #[allow(clippy::print_stdout)]
                if json {
                    println!("{doc:#}");
                } else {
                    print!("{}", crate::metrics::status_table(&doc));
                }
                Ok(())
            }
            Command::Node { config } => {
                let settings = Layered::load(Some(&config), env)?.node(wall_ms())?;
                self.check_hosted(&settings)?;
                self.serve(&settings)
            }
            Command::Run { config } => {
                let mut layered = Layered::load(config.as_deref(), env)?;
                let mut settings = match layered.node(wall_ms()) {
                    Ok(s) => s,
                    Err(ConfigError::Missing { .. }) => {
                        layered = Layered::load(
                            None,
                            [
                                ("TERN_NODE__NAME".to_owned(), format!("\"{}\"", self.name)),
                                (
                                    "TERN_NODE__LISTEN".to_owned(),
                                    format!("[\"inproc://{}\"]", self.name),
                                ),
                                ("TERN_SECURITY__MODE".to_owned(), "\"plaintext\"".to_owned()),
                            ],
                        )?;
                        layered.node(wall_ms())?
                    }
                    Err(e) => return Err(e.into()),
                };
                settings.peers.clear();
                settings.gossip = None;
                settings.host = self.components.keys().cloned().collect();
                if settings.listen.iter().all(|e| e.starts_with("inproc://")) {
                    // One process, no network: nothing for CURVE to protect.
                    settings.security = config::SecuritySettings::Plaintext;
                }
                self.serve(&settings)
            }
        }
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
        crate::log::set_process_node(&settings.name);
        let rt = tern_executor::Runtime::new()?;
        rt.block_on(async {
            let stop = signals::Stop::install()?;
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
            let running = self.start(settings, transport.clone(), &endpoints, gossip)?;
            let _admin = match &settings.admin {
                Some(a) => Some(admin::start(
                    a,
                    admin::Sources {
                        name: settings.name.clone(),
                        node: Some(running.node().clone()),
                        generation: settings.generation,
                        discovery: running.discovery().cloned(),
                        peers: settings.peers.keys().cloned().collect(),
                    },
                )?),
                None => None,
            };
            let signal = stop.wait().await;
            tracing::info!(name: "tern.app.stopping", node = %settings.name, signal,
                "stopping: withdrawing components");
            running.stop().await;
            transport.close();
            tracing::info!(name: "tern.app.stopped", node = %settings.name, "stopped");
            Ok(())
        })
    }

    /// Starts one container on the current runtime, on `transport` (bound to
    /// `endpoints`) and, with a `[gossip]` section, membership on the given datagram
    /// socket and seed: the node, the hosted components, then gossip. The same steps
    /// run in a process ([`App::serve`]) and on the simulator ([`SimCluster`]).
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
    ) -> Result<Running, AppError>
    where
        T: Transport + 'static,
        D: Datagrams + 'static,
    {
        crate::actors::Environment::current().insert(settings.clone());
        let config = NodeConfig::new(settings.name.clone())
            .peers(settings.peers.keys().cloned())
            .generation(settings.generation)
            .default_timeout(settings.ask_timeout)
            .pending_ttl(settings.pending_ttl);
        let node = Node::start(config, transport)?;
        for w in &settings.warnings {
            tracing::warn!(name: "tern.app.config_warning", node = %settings.name,
                warning = %w, "configuration warning");
        }
        for name in &settings.host {
            if let Some(start) = self.components.get(name) {
                start(&node)?;
            }
        }
        let discovery = match (&settings.gossip, gossip) {
            (Some(g), Some((socket, seed))) => {
                Some(gossip::start(settings, g, &node, endpoints, socket, seed)?)
            }
            _ => None,
        };
        tracing::info!(
            name: "tern.app.node_ready",
            node = %settings.name,
            generation = settings.generation,
            endpoints = ?endpoints,
            components = ?settings.host,
            "node ready"
        );
        let running = Running {
            node,
            discovery,
            grace: settings.shutdown_grace,
        };
        crate::actors::Environment::current().insert(running.clone());
        Ok(running)
    }
}

/// A running container: its node and, with a `[gossip]` section, its membership.
#[derive(Debug, Clone)]
pub struct Running {
    node: Node,
    discovery: Option<Discovery>,
    grace: Duration,
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
