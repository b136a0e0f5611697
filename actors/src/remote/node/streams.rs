//! The driver's part of streamed replies: opening, granting and cancelling the
//! streams this node asks for, and a task per stream it produces that moves items
//! from the component to the router within the caller's credit.

use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::time;
use tern_proto::session::{Nanos, Outgoing, Reply, Request};

use super::{Node, now, transport_error};
use crate::remote::error::CallError;
use crate::remote::router::nanos;
use crate::remote::stream::{CallStream, Source};

impl Node {
    /// Opens a stream to the node hosting `component` (on `pin`, if given), now or
    /// as soon as a node announces the name (waiting at most `wait`; the stream then
    /// ends with [`CallError::NotHosted`], or [`CallError::UnknownName`] for a name
    /// never heard of).
    pub(crate) fn open_stream(
        &self,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        out: Outgoing,
        window: u32,
        timeout: Option<Duration>,
        wait: Duration,
    ) -> Result<Rc<CallStream>, CallError> {
        let now = now();
        let call = Rc::new(CallStream::new());
        let id = self.shared.router.borrow_mut().open_stream(
            now,
            &*self.shared.link,
            component,
            pin,
            out,
            window,
            timeout.map(nanos),
            now.saturating_add(nanos(wait)),
            call.clone(),
        )?;
        if let Err(e) = self.flush()
            && let Some(id) = id
        {
            self.cancel_stream(id);
            return Err(transport_error(e));
        }
        self.rearm();
        Ok(call)
    }

    /// Grants the producer of stream `id` `n` more items.
    pub(crate) fn grant_stream(&self, id: u64, n: u32) {
        let Ok(mut router) = self.shared.router.try_borrow_mut() else {
            return;
        };
        router.grant_stream(id, n);
        drop(router);
        // A lost grant stalls the stream until its idle timeout; the failure is
        // counted and logged by `flush`.
        let _ = self.flush();
    }

    /// Cancels stream `id` (its caller dropped it or gave up).
    pub(crate) fn cancel_stream(&self, id: u64) {
        let Ok(mut router) = self.shared.router.try_borrow_mut() else {
            return;
        };
        router.cancel_stream(id);
        drop(router);
        let _ = self.flush();
    }

    /// A request for a streamed reply: queue it with the component and start moving
    /// its items, or refuse it.
    pub(super) fn on_stream_request(&self, now: Nanos, req: Request) {
        let export = self.shared.router.borrow().export(&req.component).cloned();
        let source = match export {
            None => Err(CallError::NotHosted {
                name: req.component.clone(),
            }),
            Some(e) => e.deliver_stream(
                &req.message_type,
                &req.content_type,
                &req.payload,
                req.credit,
            ),
        };
        let source = match source {
            Ok(s) => s,
            Err(error) => return self.shared.router.borrow_mut().refuse(now, &req, &error),
        };
        self.shared
            .router
            .borrow_mut()
            .start_producing(&req.peer, req.message_id, source.clone());
        let node = self.clone();
        let (peer, id, deadline) = (req.peer, req.message_id, req.deadline);
        tern_executor::spawn(async move { node.produce(&peer, id, deadline, source).await })
            .detach();
    }

    /// Moves the items of one stream this node produces to the router, until it
    /// ends, its caller cancels or is lost, or its deadline passes.
    async fn produce(&self, peer: &str, id: u64, deadline: Option<Nanos>, source: Rc<dyn Source>) {
        loop {
            let next = poll_fn(|cx| source.poll_item(cx));
            let next = match deadline {
                Some(d) => {
                    let left = Duration::from_nanos(d.saturating_sub(now()));
                    match time::timeout(left, next).await {
                        Ok(next) => next,
                        Err(_) => {
                            source.cancel();
                            self.shared.router.borrow_mut().stream_deadline(peer, id);
                            return;
                        }
                    }
                }
                None => next.await,
            };
            let now = now();
            let done = {
                let mut router = self.shared.router.borrow_mut();
                if !router.is_producing(peer, id) {
                    // Cancelled or lost meanwhile: the source was told already.
                    return;
                }
                match next {
                    Some(Ok((payload, content_type))) => {
                        let item = Reply {
                            content_type: content_type.to_owned(),
                            payload,
                        };
                        !router.stream_item(now, peer, id, item)
                    }
                    Some(Err(error)) => {
                        router.stream_end(now, peer, id, Err(error));
                        true
                    }
                    None => {
                        router.stream_end(now, peer, id, Ok(()));
                        true
                    }
                }
            };
            if let Err(error) = self.flush() {
                // An item that cannot be sent cannot be skipped: end the stream. The
                // caller sees the error end if it gets through, else its connection
                // loss or idle timeout.
                tracing::warn!(node = %self.name(), peer, id, %error, "stream frame not sent; ending the stream");
                source.cancel();
                let failed = CallError::StreamFailed(format!("a frame could not be sent: {error}"));
                self.shared
                    .router
                    .borrow_mut()
                    .stream_end(now, peer, id, Err(failed));
                let _ = self.flush();
                return;
            }
            if done {
                // Frees the producer if it is still running (a deadline ended it).
                source.cancel();
                return;
            }
        }
    }
}
