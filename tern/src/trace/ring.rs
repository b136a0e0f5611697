//! The built-in span store: the last spans of this container, bounded.

use std::cell::RefCell;
use std::collections::VecDeque;

use tern_actors::trace::{Recorder, SpanRecord};

/// Spans kept by default: about 300 bytes each, so well under a megabyte.
pub const DEFAULT_SPANS: usize = 2048;

/// A bounded ring of finished spans: when full, the oldest span makes room for the
/// newest and is counted in [`SpanRing::overwritten`]. Install it on the container's
/// thread with [`tern_actors::trace::install`]; the status page and tests read it.
///
/// ```
/// use std::rc::Rc;
/// use tern::trace::SpanRing;
///
/// let ring = Rc::new(SpanRing::new(4));
/// tern::actors::trace::install(ring.clone(), 1);
/// assert!(ring.spans().is_empty());
/// # tern::actors::trace::uninstall();
/// # tern::actors::trace::enable(false);
/// ```
#[derive(Debug)]
pub struct SpanRing {
    capacity: usize,
    inner: RefCell<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    spans: VecDeque<SpanRecord>,
    overwritten: u64,
    recorded: u64,
}

impl SpanRing {
    /// A ring of at most `capacity` spans (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: RefCell::new(Inner::default()),
        }
    }

    /// The spans held, oldest first.
    #[must_use]
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.inner.borrow().spans.iter().cloned().collect()
    }

    /// The spans of one trace (by its 16-byte id), oldest first.
    #[must_use]
    pub fn trace(&self, trace_id: &[u8; 16]) -> Vec<SpanRecord> {
        self.inner
            .borrow()
            .spans
            .iter()
            .filter(|s| &s.context.trace_id == trace_id)
            .cloned()
            .collect()
    }

    /// Spans recorded since the ring was made.
    #[must_use]
    pub fn recorded(&self) -> u64 {
        self.inner.borrow().recorded
    }

    /// Spans pushed out by newer ones.
    #[must_use]
    pub fn overwritten(&self) -> u64 {
        self.inner.borrow().overwritten
    }

    /// The spans recorded after the first `seen` (a count from [`SpanRing::recorded`]),
    /// oldest first, with the count to pass next time and how many of them were
    /// pushed out before they could be read. The spans stay in the ring (for
    /// `/spans`); an exporter reads each once this way.
    #[must_use]
    pub fn since(&self, seen: u64) -> (Vec<SpanRecord>, u64, u64) {
        let inner = self.inner.borrow();
        let new = inner.recorded.saturating_sub(seen);
        let held = u64::try_from(inner.spans.len()).unwrap_or(u64::MAX);
        let take = new.min(held);
        let skip = inner.spans.len() - usize::try_from(take).unwrap_or(inner.spans.len());
        (
            inner.spans.iter().skip(skip).cloned().collect(),
            inner.recorded,
            new - take,
        )
    }

    /// Takes every span out.
    pub fn drain(&self) -> Vec<SpanRecord> {
        self.inner.borrow_mut().spans.drain(..).collect()
    }
}

impl Recorder for SpanRing {
    fn record(&self, span: SpanRecord) {
        let mut inner = self.inner.borrow_mut();
        if inner.spans.len() == self.capacity {
            inner.spans.pop_front();
            inner.overwritten += 1;
        }
        inner.spans.push_back(span);
        inner.recorded += 1;
    }
}

/// A span for unit tests: ids filled with `n`, ending at `n` ns.
#[cfg(test)]
pub(crate) fn test_span(n: u8) -> SpanRecord {
    use tern_actors::trace::{SpanContext, SpanKind};
    SpanRecord {
        context: SpanContext::new([n; 16], [n; 8], true),
        parent: None,
        kind: SpanKind::Server,
        node: "a".into(),
        component: "c".into(),
        message_type: "t".into(),
        start: tern_executor::Instant::from_nanos(0),
        end: tern_executor::Instant::from_nanos(u64::from(n)),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_span as span;

    #[test]
    fn full_ring_drops_the_oldest_and_counts_it() {
        let ring = SpanRing::new(2);
        for n in 1..=3 {
            ring.record(span(n));
        }
        let kept: Vec<u8> = ring.spans().iter().map(|s| s.context.span_id[0]).collect();
        assert_eq!(kept, [2, 3]);
        assert_eq!((ring.recorded(), ring.overwritten()), (3, 1));
        assert_eq!(ring.trace(&[3; 16]).len(), 1);
        let (spans, seen, missed) = ring.since(0);
        assert_eq!((spans.len(), seen, missed), (2, 3, 1));
        ring.record(span(4));
        let (spans, seen, missed) = ring.since(seen);
        assert_eq!((spans[0].context.span_id[0], seen, missed), (4, 4, 0));
        assert!(ring.since(seen).0.is_empty());
        assert_eq!(ring.drain().len(), 2);
        assert!(ring.spans().is_empty());
    }
}
