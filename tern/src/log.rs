//! Logging: structured `tracing` events with stable names, written as text for a
//! terminal or JSON lines for machines, filtered like `RUST_LOG`, stamped with virtual
//! time and the node under the simulator, and flood-controlled.
//!
//! Tern logs through `tracing`, with structured fields (`node`, `component`,
//! `message_id`, `peer`, ...). [`init_with`] installs tern's subscriber:
//!
//! - **Format**: [`LogFormat::Text`] (`t=1.500000000s  WARN node=w1 tern.app.stopping:
//!   stopping signal=15`) or [`LogFormat::Json`], one object per line with the keys
//!   `t`, `level`, `name` (when the event has a stable name), `target`, `node`,
//!   `message`, then the event's own fields (a field named like one of those keys is
//!   written as `field.<name>`). In a container: `[log] format = "json"` or
//!   `TERN_LOG__FORMAT=json`.
//! - **Filter**: `RUST_LOG` syntax (`info`, `warn,tern_actors=debug`,
//!   `tern_discovery[probe]=trace`). In a container the filter is `RUST_LOG` when set,
//!   else `[log] filter`, else `--log-level`.
//! - **Time and node**: under the simulator (a virtual clock) each line carries the
//!   virtual time of the node that logged it (`t=12.000000250s`) and that node's name,
//!   so a log lines up with the trace and with a replay; in a real process the system
//!   time and the container's name ([`set_process_node`], set by [`crate::app::App`]).
//! - **Flood control**: at most `flood_burst` lines per event and per remote address
//!   (the first of the fields `peer`, `addr`, `from`, `to`, `remote`) in each
//!   `flood_window`, counted by the runtime clock; the rest are dropped and counted,
//!   and one `tern.log.suppressed` line (`event`, `remote`, `suppressed`) reports them
//!   once the window has ended. Outside a runtime there is no clock and no flood
//!   control.
//!
//! # Event names
//!
//! Events an operator or a machine may match on carry a stable name (`tracing`'s
//! `name:`), shown instead of the module path in text and as `name` in JSON. Their
//! fields are stable too. Names and fields change only with a note in the changelog.
//!
//! | name | level | fields | when |
//! |------|-------|--------|------|
//! | `tern.app.node_ready` | info | `node`, `generation`, `endpoints`, `components` | a container has started its components |
//! | `tern.app.config_warning` | warn | `node`, `warning` | a value works but is probably not what was meant |
//! | `tern.app.stopping` | info | `node`, `signal` | SIGINT or SIGTERM: components are withdrawn |
//! | `tern.app.stopped` | info | `node` | connections closed, the process exits |
//! | `tern.app.gossip_started` | info | `node`, `bind`, `advertise`, `seeds`, `cluster`, `endpoint` | membership gossip runs |
//! | `tern.admin.listening` | info | `node`, `addr` | the admin listener is bound |
//! | `tern.admin.refused` | warn | `node`, `remote`, `reason` | an admin connection was closed unanswered (too many, too large, too slow) |
//! | `tern.log.suppressed` | warn | `event`, `remote`, `suppressed` | flood control dropped lines |
//!
//! Reserved for the remote layer, which is being rebuilt (its events still carry
//! module-path targets): `tern.remote.peer_lost`, `tern.remote.peer_up`,
//! `tern.remote.send_failed`, `tern.remote.tell_dropped`, `tern.remote.ask_refused`,
//! `tern.remote.pending_expired`, `tern.remote.bad_control`.
//!
//! # Examples
//!
//! ```
//! use tern::log::{LogFormat, LogSettings};
//!
//! let out = tern::log::Capture::default();
//! let settings = LogSettings { format: LogFormat::Json, filter: "info".into(), ..LogSettings::default() };
//! let subscriber = tern::log::subscriber(&settings, out.clone()).unwrap();
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(name: "tern.app.stopped", node = "w1", "stopped");
//!     tracing::debug!("filtered out");
//! });
//! let line: serde_json::Value = serde_json::from_str(out.text().trim()).unwrap();
//! assert_eq!(line["name"], "tern.app.stopped");
//! assert_eq!(line["node"], "w1");
//! ```

mod capture;
mod fields;
mod flood;
mod layer;
mod live;

use std::fmt;
use std::time::Duration;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::layer::SubscriberExt;

pub use capture::Capture;
pub use live::set_filter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, LogError> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(LogError::Format(other.to_owned())),
        }
    }
}

/// Logging settings; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// A `RUST_LOG`-style filter.
    pub filter: String,
    /// Lines let through per event and remote address in each window; 0: no flood
    /// control.
    pub flood_burst: u32,
    /// The flood control window.
    pub flood_window: Duration,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
            flood_burst: 20,
            flood_window: Duration::from_secs(10),
        }
    }
}

/// Invalid logging settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The filter does not parse.
    #[error("log filter {filter:?}: {why}")]
    Filter {
        /// The filter.
        filter: String,
        /// Why it does not parse.
        why: String,
    },
    /// A format other than `text` or `json`.
    #[error("log format {0:?}: expected \"text\" or \"json\"")]
    Format(String),
}

/// The name [`set_node`] gave the current runtime.
#[derive(Debug, Default)]
struct NodeName(std::cell::RefCell<Option<String>>);

/// Names the node whose lines come from the current runtime (a container, or one
/// node of the simulator), for runtimes without a [`crate::remote::Node`], whose name
/// is used otherwise.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// let out = tern::log::Capture::default();
/// let subscriber = tern::log::subscriber(&Default::default(), out.clone()).unwrap();
/// tracing::subscriber::with_default(subscriber, || {
///     tern::Runtime::builder().virtual_time().build().unwrap().block_on(async {
///         tern::log::set_node("gossip-3");
///         tracing::info!("joined");
///     });
/// });
/// assert!(out.text().starts_with("t=0.000000000s  INFO node=gossip-3 "), "{}", out.text());
/// ```
pub fn set_node(name: &str) {
    let slot = tern_executor::extension(NodeName::default);
    *slot.0.borrow_mut() = Some(name.to_owned());
}

/// The container this process runs, for [`set_process_node`].
static PROCESS_NODE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Names the node of every line logged from a real-time runtime of this process (one
/// process is one container); [`crate::app::App`] sets it when a node starts.
pub fn set_process_node(name: &str) {
    *PROCESS_NODE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(name.to_owned());
}

fn process_node() -> Option<String> {
    PROCESS_NODE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// How many flood-control keys are tracked at once.
const FLOOD_KEYS: usize = 1024;

/// Tern's subscriber for `settings`, writing lines to `writer`; install it with
/// [`tracing::subscriber::set_global_default`] or use it in a scope with
/// [`tracing::subscriber::with_default`].
///
/// # Errors
///
/// [`LogError::Filter`] if the filter does not parse.
pub fn subscriber<W>(
    settings: &LogSettings,
    writer: W,
) -> Result<impl Subscriber + Send + Sync + 'static, LogError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Ok(live_subscriber(settings, writer)?.0)
}

/// [`subscriber`] and the handle that changes its filter.
fn live_subscriber<W>(
    settings: &LogSettings,
    writer: W,
) -> Result<
    (
        impl Subscriber + Send + Sync + 'static,
        tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    ),
    LogError,
>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::builder()
        .parse(&settings.filter)
        .map_err(|e| LogError::Filter {
            filter: settings.filter.clone(),
            why: e.to_string(),
        })?;
    let flood = flood::FloodConfig {
        burst: settings.flood_burst,
        window: settings.flood_window,
        max_keys: FLOOD_KEYS,
    };
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    // What the filter lets through, and every event of a handler in a debug flow.
    let filter = filter.or(live::FlowFilter);
    let lines = layer::LineLayer::new(settings.format, flood, writer).with_filter(filter);
    Ok((tracing_subscriber::registry().with(lines), handle))
}

/// Installs tern's subscriber for `settings`, writing to stderr. Does nothing if a
/// subscriber is installed already.
///
/// # Errors
///
/// [`LogError::Filter`] if the filter does not parse.
pub fn init_with(settings: &LogSettings) -> Result<(), LogError> {
    let (s, handle) = live_subscriber(settings, std::io::stderr)?;
    if tracing::subscriber::set_global_default(s).is_ok() {
        live::keep(handle);
    }
    Ok(())
}

/// Sends `tracing` events at `default` level and above to stderr: text, or JSON lines
/// when `TERN_LOG__FORMAT=json`; `RUST_LOG` (for example `RUST_LOG=debug`), when set,
/// is the filter instead. Does nothing if a subscriber is installed already.
pub fn init(default: tracing_subscriber::filter::LevelFilter) {
    let format = std::env::var("TERN_LOG__FORMAT")
        .ok()
        .and_then(|f| f.trim_matches('"').parse().ok())
        .unwrap_or_default();
    let from_env = std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty());
    let mut settings = LogSettings {
        format,
        filter: from_env.unwrap_or_else(|| default.to_string()),
        ..LogSettings::default()
    };
    if init_with(&settings).is_err() {
        // A bad RUST_LOG falls back to the default level rather than to no logs.
        settings.filter = default.to_string();
        let _ = init_with(&settings);
    }
}

/// A `tracing_subscriber` timer: `t=<seconds>.<nanoseconds>s` of virtual time when the
/// line comes from a task on a simulated node, the system time otherwise.
///
/// # Examples
///
/// ```
/// use tracing_subscriber::fmt::time::FormatTime;
///
/// let mut line = String::new();
/// let rt = tern::Runtime::builder().virtual_time().build().unwrap();
/// rt.block_on(async {
///     tern::time::sleep(std::time::Duration::from_millis(1500)).await;
///     let mut w = tracing_subscriber::fmt::format::Writer::new(&mut line);
///     tern::log::VirtualTime.format_time(&mut w).unwrap();
/// });
/// assert_eq!(line, "t=1.500000000s");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtualTime;

impl FormatTime for VirtualTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        match (crate::time::is_virtual(), crate::time::try_now()) {
            (Some(true), Some(now)) => {
                let n = now.as_nanos();
                write!(w, "t={}.{:09}s", n / 1_000_000_000, n % 1_000_000_000)
            }
            _ => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}
