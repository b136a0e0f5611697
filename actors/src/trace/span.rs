//! Finished spans and where they go.

use tern_executor::Instant;

use super::context::SpanContext;

/// Which side of a call a span records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    /// The caller's side of an ask to another node: from sending to the reply.
    Client,
    /// A tell sent to another node (it ends when it is queued for sending).
    Producer,
    /// A handler running for a request that came from another node.
    Server,
}

impl SpanKind {
    /// A lowercase name: `client`, `producer`, `server`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Server => "server",
        }
    }
}

/// One finished span: what ran where, when, under which parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanRecord {
    /// The trace id and this span's id.
    pub context: SpanContext,
    /// The parent span's id, `None` for the root of a trace.
    pub parent: Option<[u8; 8]>,
    /// Which side of a call this is.
    pub kind: SpanKind,
    /// The node the span ran on.
    pub node: String,
    /// The component called (a handler's own name for a server span).
    pub component: String,
    /// The message type's stable name.
    pub message_type: String,
    /// When it started, on the runtime clock.
    pub start: Instant,
    /// When it ended, on the runtime clock.
    pub end: Instant,
    /// Why it failed, `None` if it succeeded.
    pub error: Option<String>,
}

impl SpanRecord {
    /// A short display name: `ask store kv.Get` for a client span, `handle store
    /// kv.Get` for a server span, `tell ...` for a producer span.
    #[must_use]
    pub fn name(&self) -> String {
        let verb = match self.kind {
            SpanKind::Client => "ask",
            SpanKind::Producer => "tell",
            SpanKind::Server => "handle",
        };
        format!("{verb} {} {}", self.component, self.message_type)
    }
}

/// Where finished spans go: the container's in-memory ring, an exporter, a test's
/// collector. Installed per thread (a container is one thread) with
/// [`install`](super::install).
pub trait Recorder {
    /// A span ended. Called on the container's thread, inline: keep it cheap (copy
    /// the record into a bounded buffer; export from a timer, not from here).
    fn record(&self, span: SpanRecord);
}
