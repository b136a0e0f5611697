//! Traces across containers: W3C trace context on every remote call, and the
//! container's bounded in-memory span store.
//!
//! Propagation lives in [`tern_actors::trace`] (re-exported here): with tracing on,
//! every ask and tell a `Ref` sends to another node carries W3C trace context, and the
//! handler on the other node runs in a span that is a child of the caller's. The
//! spans a container finishes go to the [`Recorder`] installed on its thread, by
//! default a [`SpanRing`] (a container run by [`crate::app::App`] keeps its last
//! [`DEFAULT_SPANS`]; the admin listener shows them at `/spans`). To send them
//! elsewhere, implement [`SpanExporter`] and run [`export_every`].
//!
//! With the `otlp` feature, `tern::trace::otlp::OtlpExporter` sends them to an
//! OpenTelemetry collector (OTLP/HTTP JSON, `POST /v1/traces`) from the container's
//! own poll loop, bounded in queued batches, time per batch and answer size; an
//! [`App`](crate::app::App) container does so when its configuration names a
//! collector (`[trace] otlp_endpoint = "http://127.0.0.1:4318"`, see
//! [`OtlpEndpoint`]), and its admin listener's `/metrics` counts what was exported,
//! failed and dropped ([`ExportCounts`]). The endpoint is plain HTTP: run the
//! collector next to the container and let it forward over TLS.
//!
//! Debug tracing switched on at run time is in [`debug`].

mod collector;
mod export;
#[cfg(feature = "otlp")]
pub mod otlp;
mod ring;

pub use collector::{BadEndpoint, OtlpEndpoint, OtlpSettings, TRACES_PATH};
pub use export::{ExportCounts, ExportError, ExportStats, SpanExporter, export_every};
pub use ring::{DEFAULT_SPANS, SpanRing};
pub use tern_actors::trace::debug;
pub use tern_actors::trace::{
    Recorder, SpanContext, SpanKind, SpanRecord, current, enable, install, is_enabled, uninstall,
};
