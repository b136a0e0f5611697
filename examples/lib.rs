//! Shared set-up for tern's examples, and the scenarios they run.

pub mod cluster;
pub mod gossip;

/// Sends tern's `tracing` events at `warn` and above to stderr, or at the level in
/// `RUST_LOG` (for example `RUST_LOG=info`); see [`tern::log::init`].
pub fn init_logging() {
    init_logging_at(tracing_subscriber::filter::LevelFilter::WARN);
}

/// Like [`init_logging`], with another default level.
pub fn init_logging_at(default: tracing_subscriber::filter::LevelFilter) {
    tern::log::init(default);
}
