//! The application's command line: its subcommands, parsing, and what each one runs.

use super::cli_ops as ops;
use super::*;

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
    /// Prints where each component of the cluster is hosted and how loaded each host
    /// is, as this node's membership sees it (asked of its admin listener).
    Components {
        /// The node's configuration (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
        /// How long to wait for an answer, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// `status`, refreshed: clears the terminal and prints it again every `--every`.
    Top {
        /// The node's configuration (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
        /// Time between refreshes, such as `2s` or `500ms`.
        #[arg(long, default_value = "2s", value_parser = ops::duration)]
        every: Duration,
        /// Stops after this many refreshes (default: until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Turns on debug tracing of a component, a message type, a named flow or a trace
    /// id in every container of the cluster, for a while: each message of that flow
    /// is logged (`tern.debug.message`) and its handlers' debug events pass the log
    /// filter.
    TraceFlow {
        /// A component name, a message type (`kv.v1.Get`), a named flow (`flow:orders`,
        /// the name callers give `Ref::with_flow`) or a 32-digit trace id.
        name: String,
        /// How long, such as `60s`, `500ms` or `5m` (at most 1 h).
        #[arg(long = "for", default_value = "60s", value_parser = ops::duration)]
        duration: Duration,
        /// Messages recorded per container, at most.
        #[arg(long, default_value_t = 1000)]
        budget: u32,
        /// The configuration of the node to ask (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
    },
    /// Changes limits of a running container at once (no restart), or of every
    /// container of its network with `--network` (spread by gossip).
    SetCapacity {
        /// `KEY=VALUE` changes, as in the limits file: `mailbox.<component>`,
        /// `in_flight.<component>`, `container.in_flight`, `ingress.max`; `none` lifts
        /// a limit.
        #[arg(required = true)]
        changes: Vec<String>,
        /// Sets the limits of the container's whole network instead of its own.
        #[arg(long)]
        network: bool,
        /// The admin listener to ask (instead of reading it from `--config`).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// The node's configuration (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG", required_unless_present = "admin")]
        config: Option<PathBuf>,
    },
    /// Changes the log filter of a running node at once.
    Logs {
        /// The new filter, `RUST_LOG`-style: `debug`, `info,tern::remote=debug`.
        #[arg(long)]
        level: String,
        /// The node's configuration (its `[admin]` section is used).
        #[arg(long, env = "TERN_CONFIG")]
        config: PathBuf,
    },
}

impl App {
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
            Command::Node { config }
            | Command::Status { config, .. }
            | Command::Components { config, .. }
            | Command::Top { config, .. }
            | Command::TraceFlow { config, .. }
            | Command::Logs { config, .. }
            | Command::SetCapacity {
                config: Some(config),
                ..
            } => Some(Layered::load(Some(config), std::env::vars())?),
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
                let addr = ops::admin_addr(&config, env)?;
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
            Command::Components { config, timeout_ms } => {
                ops::components(&config, env, Duration::from_millis(timeout_ms))
            }
            Command::Top {
                config,
                every,
                count,
            } => ops::top(&config, env, every, count),
            Command::TraceFlow {
                name,
                duration,
                budget,
                config,
            } => ops::trace_flow(&config, env, &name, duration, budget),
            Command::Logs { level, config } => ops::logs(&config, env, &level),
            Command::SetCapacity {
                changes,
                network,
                admin,
                config,
            } => {
                let addr = match (admin, config) {
                    (Some(a), _) => a,
                    (None, Some(c)) => ops::admin_addr(&c, env)?,
                    (None, None) => {
                        return Err(AppError::Limits(crate::ops::OpsError::Invalid {
                            key: "--config",
                            why: "give --config or --admin".to_owned(),
                        }));
                    }
                };
                ops::set_capacity(addr, &changes, network)
            }
            Command::Node { config } => {
                let settings = Layered::load(Some(&config), env)?.node(wall_ms())?;
                self.check_hosted(&settings)?;
                self.serve_from(&settings, Some(&config))
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
}
