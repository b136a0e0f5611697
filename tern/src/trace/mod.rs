//! Traces across containers: W3C trace context on every remote call, and the
//! container's bounded in-memory span store.
//!
//! Propagation lives in [`tern_actors::trace`] (re-exported here): with tracing on,
//! every ask and tell a `Ref` sends to another node carries W3C trace context, and the
//! handler on the other node runs in a span that is a child of the caller's. The
//! spans a container finishes go to the [`Recorder`] installed on its thread, by
//! default a [`SpanRing`].

mod ring;

pub use ring::{DEFAULT_SPANS, SpanRing};
pub use tern_actors::trace::debug;
pub use tern_actors::trace::{
    Recorder, SpanContext, SpanKind, SpanRecord, current, enable, install, is_enabled, uninstall,
};
