//! Logging set-up that knows about virtual time.
//!
//! Tern logs through `tracing`, with structured fields (`node`, `component`,
//! `message_id`, `peer`, ...). Under the simulator, wall-clock timestamps would say
//! nothing about the run; [`VirtualTime`] stamps each line with the virtual time of
//! the node that logged it, so a log lines up with the trace and with a replay.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

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

/// Sends `tracing` events at `default` level and above (or at the level in
/// `RUST_LOG`, for example `RUST_LOG=debug`) to stderr, stamped with [`VirtualTime`].
/// Does nothing if a subscriber is installed already.
pub fn init(default: tracing_subscriber::filter::LevelFilter) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_timer(VirtualTime)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
