//! The node's part of streamed replies: streams it asked for (fed from session
//! events to their [`CallStream`]s) and streams it produces (a task per stream moves
//! items from the component to the session, within the caller's credit).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::time;
use tern_proto::session::{Event, Failure, Nanos, Outgoing, Reply, Request};

use super::{Node, now, transport_error};
use crate::remote::error::CallError;
use crate::remote::stream::{CallStream, Source};

/// The node's open streams.
#[derive(Default)]
pub(super) struct Tables {
    /// Streams this node asked for, by session id.
    calls: BTreeMap<u64, Rc<CallStream>>,
    /// Streams this node produces, by (caller node, request id).
    producing: BTreeMap<(String, u64), Rc<dyn Source>>,
}

impl Node {
    /// Opens a stream to the node hosting `component` (on `pin`, if given) now;
    /// `Ok(None)` if it must wait for a host (the caller retries).
    pub(crate) fn open_stream(
        &self,
        component: &str,
        pin: Option<&str>,
        out: Outgoing,
        window: u32,
        timeout: Option<Duration>,
    ) -> Result<Option<(u64, Rc<CallStream>)>, CallError> {
        let now = now();
        let mut st = self.shared.state.borrow_mut();
        // No host yet (unknown name, or its connection not up): the caller retries
        // until the name's wait runs out.
        let Some(host) = self.target(&mut st, component, pin, now)? else {
            return Ok(None);
        };
        let timeout = timeout.map(super::nanos);
        let id = st.session.ask_stream(now, &host, out, timeout, window);
        let call = Rc::new(CallStream::new(&host, component));
        st.streams.calls.insert(id, call.clone());
        st.stats.asks_sent += 1;
        let transmits = st.take_transmits();
        drop(st);
        if let Err(e) = self.send_all(transmits) {
            self.cancel_stream(id);
            return Err(transport_error(e));
        }
        Ok(Some((id, call)))
    }

    /// Grants the producer of stream `id` `n` more items.
    pub(crate) fn grant_stream(&self, id: u64, n: u32) {
        let Ok(mut st) = self.shared.state.try_borrow_mut() else {
            return;
        };
        st.session.grant(id, n);
        let transmits = st.take_transmits();
        drop(st);
        // A lost grant stalls the stream until its idle timeout; the failure is
        // counted and logged by `send_all`.
        let _ = self.send_all(transmits);
    }

    /// Cancels stream `id` (its caller dropped it or gave up).
    pub(crate) fn cancel_stream(&self, id: u64) {
        let Ok(mut st) = self.shared.state.try_borrow_mut() else {
            return;
        };
        st.streams.calls.remove(&id);
        st.session.cancel_stream(id);
        let transmits = st.take_transmits();
        drop(st);
        let _ = self.send_all(transmits);
    }

    pub(super) fn on_stream_event(&self, event: Event) {
        match event {
            Event::StreamItem { id, item } => {
                let call = self.shared.state.borrow().streams.calls.get(&id).cloned();
                if let Some(call) = call {
                    call.push(item);
                }
            }
            Event::StreamEnd { id, result } => {
                let call = self.shared.state.borrow_mut().streams.calls.remove(&id);
                if let Some(call) = call {
                    call.finish(result.map_err(|f| match f {
                        Failure::Remote { code, detail } => {
                            CallError::from_wire(code, detail, &call.component)
                        }
                        Failure::Timeout => CallError::Timeout,
                        Failure::PeerLost => CallError::PeerLost(call.peer.clone()),
                    }));
                }
            }
            Event::Credit { peer, id, credit } => {
                let source = self
                    .shared
                    .state
                    .borrow()
                    .streams
                    .producing
                    .get(&(peer, id))
                    .cloned();
                if let Some(source) = source {
                    source.grant(u64::from(credit));
                }
            }
            Event::Cancelled { peer, id } => {
                let source = self
                    .shared
                    .state
                    .borrow_mut()
                    .streams
                    .producing
                    .remove(&(peer.clone(), id));
                if let Some(source) = source {
                    tracing::debug!(node = %self.name(), %peer, id, "stream cancelled by its caller");
                    source.cancel();
                }
            }
            Event::Request(_) | Event::Reply { .. } => {}
        }
    }

    /// A request for a streamed reply: queue it with the component and start moving
    /// its items, or refuse it.
    pub(super) fn on_stream_request(&self, req: Request) {
        let export = self
            .shared
            .state
            .borrow()
            .exports
            .get(&req.component)
            .cloned();
        let source = match export {
            None => Err(CallError::NotHosted {
                name: req.component.clone(),
            }),
            Some(e) if e.is_stopped() => Err(CallError::Stopped),
            Some(e) => e.deliver_stream(
                &req.message_type,
                &req.content_type,
                &req.payload,
                req.credit,
            ),
        };
        let source = match source {
            Ok(s) => s,
            Err(error) => return self.refuse(&req, None, &error),
        };
        let key = (req.peer.clone(), req.message_id);
        {
            let mut st = self.shared.state.borrow_mut();
            st.stats.requests_delivered += 1;
            st.streams.producing.insert(key.clone(), source.clone());
        }
        let node = self.clone();
        let deadline = req.deadline;
        tern_executor::spawn(async move { node.produce(key, deadline, source).await }).detach();
    }

    /// Moves the items of one stream this node produces to the session, until it
    /// ends, its caller cancels or is lost, or its deadline passes.
    async fn produce(&self, key: (String, u64), deadline: Option<Nanos>, source: Rc<dyn Source>) {
        let (peer, id) = (&key.0, key.1);
        loop {
            let next = poll_fn(|cx| source.poll_item(cx));
            let next = match deadline {
                Some(d) => {
                    let left = Duration::from_nanos(d.saturating_sub(now()));
                    match time::timeout(left, next).await {
                        Ok(next) => next,
                        Err(_) => return self.stream_deadline(&key, &*source),
                    }
                }
                None => next.await,
            };
            let now = now();
            let mut st = self.shared.state.borrow_mut();
            if !st.streams.producing.contains_key(&key) {
                // Cancelled or lost meanwhile: the source was told already.
                return;
            }
            let done = match next {
                Some(Ok((payload, content_type))) => {
                    let item = Reply {
                        content_type: content_type.to_owned(),
                        payload,
                    };
                    match st.session.stream_item(now, peer, id, item) {
                        Ok(()) => false,
                        Err(e) => {
                            // The source respects the same credit; this is a bug if
                            // it ever happens, so end the stream rather than buffer.
                            tracing::warn!(node = %self.name(), %peer, id, error = %e, "stream item refused");
                            let error = CallError::StreamFailed(e.to_string());
                            st.session.stream_end(now, peer, id, Err(error.to_wire()));
                            true
                        }
                    }
                }
                Some(Err(error)) => {
                    st.session.stream_end(now, peer, id, Err(error.to_wire()));
                    true
                }
                None => {
                    st.session.stream_end(now, peer, id, Ok(()));
                    true
                }
            };
            if done {
                st.streams.producing.remove(&key);
            }
            let transmits = st.take_transmits();
            drop(st);
            if let Err(error) = self.send_all(transmits) {
                // An item that cannot be sent cannot be skipped: end the stream. The
                // caller sees the error end if it gets through, else its connection
                // loss or idle timeout.
                tracing::warn!(node = %self.name(), %peer, id, %error, "stream frame not sent; ending the stream");
                source.cancel();
                let mut st = self.shared.state.borrow_mut();
                st.streams.producing.remove(&key);
                let failed = CallError::StreamFailed(format!("a frame could not be sent: {error}"));
                st.session.stream_end(now, peer, id, Err(failed.to_wire()));
                let transmits = st.take_transmits();
                drop(st);
                let _ = self.send_all(transmits);
                return;
            }
            if done {
                // Frees the producer if it is still running (a deadline ended it).
                source.cancel();
                return;
            }
        }
    }

    /// A stream this node produces reached its deadline: the producer stops and
    /// nothing more is sent for it (section 4.1 of the wire protocol: the caller ends
    /// it with a timeout on its own clock and cancels).
    fn stream_deadline(&self, key: &(String, u64), source: &dyn Source) {
        source.cancel();
        let mut st = self.shared.state.borrow_mut();
        if st.streams.producing.remove(key).is_some() {
            st.session.stream_abandon(&key.0, key.1);
            st.stats.streams_expired += 1;
            tracing::debug!(node = %self.name(), peer = %key.0, id = key.1,
                "stream reached its deadline; producer stopped");
        }
    }

    /// Ends every stream on shutdown: local callers get [`CallError::Stopped`],
    /// producers are cancelled and their remote callers told (stopped).
    pub(super) fn shutdown_streams(&self) {
        let now = now();
        let (calls, producing) = {
            let mut st = self.shared.state.borrow_mut();
            let producing = std::mem::take(&mut st.streams.producing);
            for (peer, id) in producing.keys() {
                st.session
                    .stream_end(now, peer, *id, Err(CallError::Stopped.to_wire()));
            }
            (std::mem::take(&mut st.streams.calls), producing)
        };
        self.flush();
        for call in calls.into_values() {
            call.finish(Err(CallError::Stopped));
        }
        for source in producing.into_values() {
            source.cancel();
        }
    }
}
