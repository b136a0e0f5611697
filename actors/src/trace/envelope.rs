//! A queued request from another node with its server span.

use std::any::Any;

use super::scope::{InSpan, Open};
use crate::actor::Actor;
use crate::context::Context;
use crate::mailbox::{Envelope, Handling};

/// An envelope whose handler runs inside a server span (see [`InSpan`]). Only
/// requests from other nodes are wrapped, and only while tracing is on.
pub(crate) struct Traced<E> {
    span: Option<Open>,
    inner: E,
}

impl<E> Traced<E> {
    pub(crate) fn new(span: Open, inner: E) -> Self {
        Self {
            span: Some(span),
            inner,
        }
    }
}

impl<A: Actor, E: Envelope<A> + 'static> Envelope<A> for Traced<E> {
    fn handle<'a>(&mut self, actor: &'a mut A, ctx: &'a mut Context<A>) -> Option<Handling<'a>> {
        let handling = self.inner.handle(actor, ctx);
        match (handling, self.span.take()) {
            (Some(h), Some(span)) => Some(Box::pin(InSpan::new(span, h))),
            (None, Some(span)) => {
                span.finish(Some("not handled: its deadline passed".to_owned()));
                None
            }
            (h, None) => h,
        }
    }

    fn reject(&mut self) {
        self.inner.reject();
        if let Some(span) = self.span.take() {
            span.finish(Some("rejected: the component stopped".to_owned()));
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        // Not kept for reuse: the next traced request comes with its own box, and a
        // pool full of them would only push the plain envelopes out. A box of `()`
        // allocates nothing.
        Box::new(())
    }
}
