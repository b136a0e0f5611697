//! Traces across containers: W3C trace context on every remote call, and spans.
//!
//! When tracing is on ([`install`] or [`enable`]), every ask and tell a [`Ref`]
//! sends to another node carries a [`SpanContext`] in the envelope's `trace` field:
//! a child of the span of the handler making the call, or the root of a new trace.
//! The receiving node runs the handler inside a server span that is a child of the
//! caller's span, and makes it current while the handler runs, so the calls the
//! handler makes are its children in turn: one trace follows a request from node to
//! node. Finished spans go to the thread's [`Recorder`] (tern's in-memory ring, an
//! exporter). When tracing is off, a call costs one relaxed atomic load.
//!
//! Context follows calls between nodes; a local ask or tell (`Addr`) does not carry
//! it, and neither do streams.
//!
//! [`Ref`]: crate::remote::Ref
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use tern_actors::trace::{self, Recorder, SpanRecord};
//!
//! #[derive(Default)]
//! struct Collect(RefCell<Vec<SpanRecord>>);
//! impl Recorder for Collect {
//!     fn record(&self, span: SpanRecord) {
//!         self.0.borrow_mut().push(span);
//!     }
//! }
//! trace::install(Rc::new(Collect::default()), 7);
//! assert!(trace::is_enabled());
//! assert_eq!(trace::current(), None); // no handler is running
//! # trace::uninstall();
//! # trace::enable(false);
//! ```

mod context;
pub mod debug;
mod envelope;
mod scope;
mod span;

pub use context::SpanContext;
pub(crate) use envelope::Traced;
pub(crate) use scope::Open;
pub use scope::{current, enable, install, is_enabled, uninstall};
pub use span::{Recorder, SpanKind, SpanRecord};
