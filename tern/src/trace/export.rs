//! Sending spans out of the container: the exporter interface, and the task that
//! hands an exporter the ring's spans in batches.

use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use tern_actors::trace::SpanRecord;
use tern_executor::{JoinHandle, time};

use super::SpanRing;

/// Why a batch was not exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span export failed: {0}")]
pub struct ExportError(pub String);

/// Where batches of finished spans go: an OpenTelemetry collector (see the `otlp`
/// feature's `tern::trace::otlp` encoder), a file, a test. Called on the container's
/// thread from [`export_every`]; an exporter that does I/O should hand the batch to
/// its own socket without blocking (the admin listener and gossip show how a socket
/// joins the poll loop).
pub trait SpanExporter {
    /// Sends `batch`. `unix_offset_nanos` turns a span's runtime-clock instant into
    /// Unix time: `unix_nanos = instant.as_nanos() + unix_offset_nanos`.
    ///
    /// # Errors
    ///
    /// An [`ExportError`]: the batch is dropped, counted and logged, never retried
    /// (the ring is bounded; tracing must not hold the container back).
    fn export(&mut self, batch: &[SpanRecord], unix_offset_nanos: u64) -> Result<(), ExportError>;
}

/// Unix time minus the runtime clock, in nanoseconds, now.
fn unix_offset() -> u64 {
    let wall = time::wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    wall.saturating_sub(time::now().as_nanos())
}

/// Every `every`, takes the spans out of `ring` and gives them to `exporter`; a
/// failed batch is dropped and logged (`tern.trace.export_failed`). Runs until the
/// handle is dropped.
///
/// # Panics
///
/// Outside a runtime.
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use tern::trace::{ExportError, SpanExporter, SpanRecord, SpanRing, export_every};
///
/// struct Count(Rc<std::cell::Cell<usize>>);
/// impl SpanExporter for Count {
///     fn export(&mut self, batch: &[SpanRecord], _: u64) -> Result<(), ExportError> {
///         self.0.set(self.0.get() + batch.len());
///         Ok(())
///     }
/// }
/// let rt = tern::Runtime::builder().virtual_time().build().unwrap();
/// let seen = Rc::new(std::cell::Cell::new(0));
/// rt.block_on(async {
///     let ring = Rc::new(SpanRing::new(16));
///     let _task = export_every(ring.clone(), Count(seen.clone()), Duration::from_secs(1));
///     tern::time::sleep(Duration::from_millis(1500)).await;
/// });
/// assert_eq!(seen.get(), 0); // nothing was traced
/// ```
pub fn export_every(
    ring: Rc<SpanRing>,
    mut exporter: impl SpanExporter + 'static,
    every: Duration,
) -> JoinHandle<()> {
    tern_executor::spawn(async move {
        loop {
            time::sleep(every).await;
            let batch = ring.drain();
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = exporter.export(&batch, unix_offset()) {
                tracing::warn!(name: "tern.trace.export_failed", spans = batch.len(), error = %e,
                    "span batch dropped");
            }
        }
    })
}
