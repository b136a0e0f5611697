//! Traces across containers: W3C trace context on every remote call, and the
//! container's bounded in-memory span store.
//!
//! Propagation lives in [`tern_actors::trace`] (re-exported here): with tracing on,
//! every ask and tell a `Ref` sends to another node carries W3C trace context, and the
//! handler on the other node runs in a span that is a child of the caller's. The
//! spans a container finishes go to the [`Recorder`] installed on its thread, by
//! default a [`SpanRing`] (a container run by [`crate::app::App`] keeps its last
//! [`DEFAULT_SPANS`]; the admin listener shows them at `/spans`). To send them
//! elsewhere, implement [`SpanExporter`] and run [`export_every`]; with the `otlp`
//! feature, `tern::trace::otlp::otlp_json` writes a batch as the OTLP/HTTP JSON body
//! an OpenTelemetry collector takes.
//!
//! Debug tracing switched on at run time is in [`debug`].

mod export;
#[cfg(feature = "otlp")]
pub mod otlp;
mod ring;

pub use export::{ExportError, SpanExporter, export_every};
pub use ring::{DEFAULT_SPANS, SpanRing};
pub use tern_actors::trace::debug;
pub use tern_actors::trace::{
    Recorder, SpanContext, SpanKind, SpanRecord, current, enable, install, is_enabled, uninstall,
};
