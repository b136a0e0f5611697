//! Shared set-up for tern's examples.

/// Sends tern's `tracing` events at `warn` and above to stderr, or at the level in
/// `RUST_LOG` (for example `RUST_LOG=info`).
pub fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}
