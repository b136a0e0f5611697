//! The switch, the current span of the running handler, span ids, and timing a span.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context as TaskContext, Poll};

use tern_executor::Instant;

use super::context::SpanContext;
use super::debug;
use super::span::{Recorder, SpanKind, SpanRecord};

/// Remote calls carry trace context and spans are timed.
const TRACING: u8 = 1;
/// A debug switch is on somewhere in the process (see [`debug`]).
const DEBUG: u8 = 2;

/// [`TRACING`] and [`DEBUG`], process-wide: zero is "off", one load to check.
static FLAGS: AtomicU8 = AtomicU8::new(0);

struct State {
    /// The span of the handler being polled on this thread.
    current: Cell<Option<SpanContext>>,
    /// SplitMix64 state for span and trace ids.
    ids: Cell<u64>,
    recorder: RefCell<Option<Rc<dyn Recorder>>>,
}

thread_local! {
    static STATE: State = const {
        State {
            current: Cell::new(None),
            ids: Cell::new(0),
            recorder: RefCell::new(None),
        }
    };
}

/// Whether tracing or a debug switch is on: one relaxed atomic load, the whole cost
/// of tracing on the message path when both are off.
#[inline]
#[must_use]
pub fn is_enabled() -> bool {
    FLAGS.load(Ordering::Relaxed) != 0
}

/// Turns trace propagation on or off for the whole process. [`install`] turns it on.
pub fn enable(on: bool) {
    set(TRACING, on);
}

/// Sets the debug bit (while a switch is on).
pub(super) fn set_debug(on: bool) {
    set(DEBUG, on);
}

fn set(bit: u8, on: bool) {
    if on {
        FLAGS.fetch_or(bit, Ordering::Relaxed);
    } else {
        FLAGS.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Sends this thread's finished spans to `recorder`, makes span ids from `seed`
/// (give each container its own: two containers with one seed make the same ids), and
/// turns tracing on.
pub fn install(recorder: Rc<dyn Recorder>, seed: u64) {
    STATE.with(|s| {
        *s.recorder.borrow_mut() = Some(recorder);
        s.ids.set(seed);
    });
    enable(true);
}

/// Removes this thread's recorder (spans are still propagated while tracing is on).
pub fn uninstall() {
    STATE.with(|s| s.recorder.borrow_mut().take());
}

/// The span of the handler running now on this thread, if it was traced.
#[must_use]
pub fn current() -> Option<SpanContext> {
    STATE.with(|s| s.current.get())
}

/// The next id from this thread's generator (SplitMix64: a counter through a mixer,
/// so ids are spread and reproducible from the seed).
fn next_u64() -> u64 {
    STATE.with(|s| {
        let z = s.ids.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.ids.set(z);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn span_id() -> [u8; 8] {
    loop {
        let id = next_u64();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn trace_id() -> [u8; 16] {
    let mut id = [0; 16];
    id[..8].copy_from_slice(&span_id());
    id[8..].copy_from_slice(&next_u64().to_be_bytes());
    id
}

fn now() -> Instant {
    tern_executor::time::try_now().unwrap_or(Instant::from_nanos(0))
}

/// A span being timed; recorded when it ends if its trace is sampled and this thread
/// has a recorder.
#[derive(Debug)]
pub(crate) struct Open {
    ctx: SpanContext,
    parent: Option<[u8; 8]>,
    kind: SpanKind,
    node: String,
    component: String,
    message_type: String,
    start: Instant,
    /// In a debug flow: recorded even when not sampled, and the handler's debug
    /// events pass the log filter.
    debug: bool,
}

impl Open {
    /// A call from this thread to `component` on another node in flow `flow` (empty:
    /// none), a child of the running handler's span (or the root of a new trace):
    /// `None` when tracing is off.
    pub(crate) fn call(
        kind: SpanKind,
        node: &str,
        component: &str,
        message_type: &str,
        flow: &str,
    ) -> Option<Self> {
        let flags = FLAGS.load(Ordering::Relaxed);
        if flags == 0 {
            return None;
        }
        let debug_flow = flags & DEBUG != 0 && (debug::in_flow() || debug::take_call(node, flow));
        if flags & TRACING == 0 && !debug_flow {
            return None;
        }
        let mut open = Self::child_of(current(), kind, node, component, message_type);
        if debug_flow {
            open.debug = true;
            debug::log_call(node, component, message_type, flow, open.ctx);
        }
        Some(open)
    }

    /// A handler for a request in flow `flow` (empty: none) that carried `parent` (or
    /// none: a new trace): `None` when tracing is off and no debug switch takes the
    /// request.
    pub(crate) fn serve(
        parent: Option<SpanContext>,
        node: &str,
        component: &str,
        message_type: &str,
        flow: &str,
    ) -> Option<Self> {
        let flags = FLAGS.load(Ordering::Relaxed);
        if flags == 0 {
            return None;
        }
        let flow = flags & DEBUG != 0 && debug::take(node, component, message_type, flow, parent);
        if flags & TRACING == 0 && !flow {
            return None;
        }
        let mut open = Self::child_of(parent, SpanKind::Server, node, component, message_type);
        open.debug = flow;
        Some(open)
    }

    fn child_of(
        parent: Option<SpanContext>,
        kind: SpanKind,
        node: &str,
        component: &str,
        message_type: &str,
    ) -> Self {
        let ctx = match parent {
            Some(p) => SpanContext::new(p.trace_id, span_id(), p.sampled),
            None => SpanContext::new(trace_id(), span_id(), true),
        };
        Self {
            ctx,
            parent: parent.map(|p| p.span_id),
            kind,
            node: node.to_owned(),
            component: component.to_owned(),
            message_type: message_type.to_owned(),
            start: now(),
            debug: false,
        }
    }

    /// This span's context, to carry on the wire or to make current.
    pub(crate) fn context(&self) -> SpanContext {
        self.ctx
    }

    /// Ends the span, failed with `error` or not.
    pub(crate) fn finish(self, error: Option<String>) {
        if !self.ctx.sampled && !self.debug {
            return;
        }
        let recorder = STATE.with(|s| s.recorder.borrow().clone());
        if let Some(recorder) = recorder {
            recorder.record(SpanRecord {
                context: self.ctx,
                parent: self.parent,
                kind: self.kind,
                node: self.node,
                component: self.component,
                message_type: self.message_type,
                start: self.start,
                end: now(),
                error,
            });
        }
    }
}

/// Makes a span current (and its debug flow, if any) until dropped, then puts back
/// what was current before (also when the polled future panics).
struct Entered(Option<SpanContext>, bool);

impl Entered {
    fn enter(span: &Open) -> Self {
        let previous = STATE.with(|s| s.current.replace(Some(span.ctx)));
        Self(previous, debug::set_in_flow(span.debug))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0;
        STATE.with(|s| s.current.set(previous));
        debug::set_in_flow(self.1);
    }
}

/// A handler's future run inside its server span: the span is current while the
/// future is polled (so the calls it makes are its children) and ends when the
/// future does; one dropped before the end (its component stopped) ends as
/// `cancelled`.
pub(crate) struct InSpan<F> {
    span: Option<Open>,
    inner: F,
}

impl<F> InSpan<F> {
    pub(crate) fn new(span: Open, inner: F) -> Self {
        Self {
            span: Some(span),
            inner,
        }
    }
}

impl<F: Future + Unpin> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _entered = this.span.as_ref().map(Entered::enter);
        let out = Pin::new(&mut this.inner).poll(cx);
        if out.is_ready()
            && let Some(span) = this.span.take()
        {
            span.finish(None);
        }
        out
    }
}

impl<F> Drop for InSpan<F> {
    fn drop(&mut self) {
        if let Some(span) = self.span.take() {
            span.finish(Some("cancelled".to_owned()));
        }
    }
}
