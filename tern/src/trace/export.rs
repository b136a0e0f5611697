//! Sending spans out of the container: the exporter interface, its counters, and the
//! task that hands an exporter the ring's new spans in batches.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use tern_actors::trace::SpanRecord;
use tern_executor::{JoinHandle, time};

use super::SpanRing;

/// Why a batch was not exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span export failed: {0}")]
pub struct ExportError(pub String);

/// What an exporter did, counted since it started (`/metrics` shows them as
/// `tern_spans_exported_total` and `tern_span_batches_total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportCounts {
    /// Spans the collector took (in batches answered with a 2xx status).
    pub spans_exported: u64,
    /// Batches the collector took.
    pub batches_exported: u64,
    /// Batches that failed: refused connection, error status, timeout, I/O error.
    pub batches_failed: u64,
    /// Batches dropped unsent because the queue was full (the oldest go first).
    pub batches_dropped: u64,
    /// Spans in failed or dropped batches, or pushed out of the ring before they
    /// were read.
    pub spans_lost: u64,
}

/// An exporter's counters, shared with the admin listener (single-threaded).
#[derive(Debug, Default)]
pub struct ExportStats(Cell<ExportCounts>);

impl ExportStats {
    /// The counts now.
    #[must_use]
    pub fn get(&self) -> ExportCounts {
        self.0.get()
    }

    /// Changes the counts with `f`.
    pub fn update(&self, f: impl FnOnce(&mut ExportCounts)) {
        let mut c = self.0.get();
        f(&mut c);
        self.0.set(c);
    }
}

/// Where batches of finished spans go: an OpenTelemetry collector (with the `otlp`
/// feature, `tern::trace::otlp::OtlpExporter`), a file, a test. Called on the container's
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
pub(crate) fn unix_offset() -> u64 {
    let wall = time::wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    wall.saturating_sub(time::now().as_nanos())
}

/// Every `every`, gives `exporter` the spans `ring` recorded since last time (they
/// stay in the ring, for `/spans`); a failed batch is dropped and logged
/// (`tern.trace.export_failed`), and so are spans the ring pushed out before they
/// were read (`tern.trace.export_missed`). Runs until the handle is dropped.
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
        let mut seen = ring.recorded();
        loop {
            time::sleep(every).await;
            let (batch, now_seen, missed) = ring.since(seen);
            seen = now_seen;
            if missed > 0 {
                tracing::warn!(name: "tern.trace.export_missed", spans = missed,
                    "spans pushed out of the ring before they were exported");
            }
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
