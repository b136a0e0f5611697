//! The router's part of streamed replies: the streams this node asked for (session
//! events become [`Event::StreamItem`] and [`Event::StreamEnd`] for their buffer) and
//! the streams it produces (credit and cancels go to their producer; its items come
//! in through [`Router::stream_item`] and [`Router::stream_end`]).

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::ops::admission::Pass;
use tern_proto::session::{Event as WireEvent, Failure, Nanos, Outgoing, Reply};

use super::calls::Call;
use super::{Event, Reach, Router, Slots, StreamSlot};
use crate::remote::error::CallError;

/// One stream this node asked for.
pub(super) struct Open<S> {
    stream: S,
    component: Rc<str>,
    peer: Rc<str>,
}

/// The node's open streams.
pub(super) struct Tables<K: Slots> {
    /// Streams this node asked for, by session id.
    calls: BTreeMap<u64, Open<K::Stream>>,
    /// Streams this node produces, by (caller node, request id).
    producing: BTreeMap<(String, u64), K::Source>,
}

impl<K: Slots> Default for Tables<K> {
    fn default() -> Self {
        Self {
            calls: BTreeMap::new(),
            producing: BTreeMap::new(),
        }
    }
}

impl<K: Slots> Router<K> {
    /// Opens a stream to the node hosting `component` (on `pin`, if given): now
    /// (`Ok(Some(id))`), or once a node announces the name and its connection is up
    /// (`Ok(None)`; waiting like a tell or an ask, until `wait_until`, then the stream
    /// ends with [`CallError::NotHosted`] or [`CallError::UnknownName`]). `stream` learns its id when the
    /// request leaves; its items and end come back as events.
    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(crate) fn open_stream<R: Reach + ?Sized>(
        &mut self,
        now: Nanos,
        reach: &R,
        component: &Rc<str>,
        pin: Option<&Rc<str>>,
        mut out: Outgoing,
        window: u32,
        timeout: Option<Nanos>,
        wait_until: Nanos,
        stream: K::Stream,
    ) -> Result<Option<u64>, CallError> {
        let Some(host) = self.target(now, reach, component, pin.map(|p| &**p))? else {
            let deadline = timeout.map(|t| now.saturating_add(t));
            let call = Call::Stream {
                stream,
                window,
                deadline,
            };
            self.park(now, component, pin, out, call, wait_until, Pass::default())?;
            return Ok(None);
        };
        // FLOW HOOK 1a: the horizon.
        let host = self.admit_horizon(reach, component, pin.is_some(), host, &mut out)?;
        let id = self.start_stream(now, host, component.clone(), out, window, timeout, stream);
        Ok(Some(id))
    }

    #[allow(clippy::too_many_arguments)] // the inputs of one call, each needed once
    pub(super) fn start_stream(
        &mut self,
        now: Nanos,
        host: Rc<str>,
        component: Rc<str>,
        out: Outgoing,
        window: u32,
        timeout: Option<Nanos>,
        stream: K::Stream,
    ) -> u64 {
        let id = self.session.ask_stream(now, &host, out, timeout, window);
        stream.opened(id);
        self.streams.calls.insert(
            id,
            Open {
                stream,
                component,
                peer: host,
            },
        );
        self.stats.asks_sent += 1;
        id
    }

    /// Grants the producer of stream `id` `n` more items.
    pub(crate) fn grant_stream(&mut self, id: u64, n: u32) {
        self.session.grant(id, n);
    }

    /// Cancels stream `id` (its caller dropped it or gave up).
    pub(crate) fn cancel_stream(&mut self, id: u64) {
        self.streams.calls.remove(&id);
        self.session.cancel_stream(id);
    }

    /// Starts producing stream `(peer, id)` with `source`.
    pub(crate) fn start_producing(&mut self, peer: &str, id: u64, source: K::Source) {
        self.stats.requests_delivered += 1;
        self.streams.producing.insert((peer.to_owned(), id), source);
    }

    /// Whether stream `(peer, id)` is still produced (not cancelled, not lost).
    pub(crate) fn is_producing(&self, peer: &str, id: u64) -> bool {
        self.streams.producing.contains_key(&(peer.to_owned(), id))
    }

    /// The next item of a stream this node produces. `false` if the session refused
    /// it (no credit: the stream is ended with an error then).
    pub(crate) fn stream_item(&mut self, now: Nanos, peer: &str, id: u64, item: Reply) -> bool {
        match self.session.stream_item(now, peer, id, item) {
            Ok(()) => true,
            Err(e) => {
                // The source respects the same credit; this is a bug if it ever
                // happens, so end the stream rather than buffer.
                tracing::warn!(node = %self.name(), peer, id, error = %e, "stream item refused");
                let error = CallError::StreamFailed(e.to_string());
                self.stream_end(now, peer, id, Err(error));
                false
            }
        }
    }

    /// Ends a stream this node produces.
    pub(crate) fn stream_end(
        &mut self,
        now: Nanos,
        peer: &str,
        id: u64,
        result: Result<(), CallError>,
    ) {
        self.streams.producing.remove(&(peer.to_owned(), id));
        self.session
            .stream_end(now, peer, id, result.map_err(|e| e.to_wire()));
    }

    /// A stream this node produces reached its deadline: nothing more is sent for it
    /// (section 4.1 of the wire protocol: the caller ends it on its own clock).
    pub(crate) fn stream_deadline(&mut self, peer: &str, id: u64) {
        if self
            .streams
            .producing
            .remove(&(peer.to_owned(), id))
            .is_some()
        {
            self.session.stream_abandon(peer, id);
            self.stats.streams_expired += 1;
            tracing::debug!(node = %self.name(), peer, id, "stream reached its deadline; producer stopped");
        }
    }

    pub(super) fn on_stream_event(&mut self, event: WireEvent) {
        match event {
            WireEvent::StreamItem { id, item } => {
                if let Some(call) = self.streams.calls.get(&id) {
                    let stream = call.stream.clone();
                    self.events.push_back(Event::StreamItem { stream, item });
                }
            }
            WireEvent::StreamEnd { id, result } => {
                if let Some(call) = self.streams.calls.remove(&id) {
                    let result = result.map_err(|f| match f {
                        Failure::Remote { code, detail } => {
                            CallError::from_wire(code, detail, &call.component)
                        }
                        Failure::Timeout => CallError::Timeout,
                        Failure::PeerLost => CallError::PeerLost(call.peer.to_string()),
                    });
                    self.events.push_back(Event::StreamEnd {
                        stream: call.stream,
                        result,
                    });
                }
            }
            WireEvent::Credit { peer, id, credit } => {
                if let Some(source) = self.streams.producing.get(&(peer, id)) {
                    let source = source.clone();
                    self.events.push_back(Event::Credit { source, n: credit });
                }
            }
            WireEvent::Cancelled { peer, id } => {
                if let Some(source) = self.streams.producing.remove(&(peer.clone(), id)) {
                    tracing::debug!(node = %self.name(), %peer, id, "stream cancelled by its caller");
                    self.events.push_back(Event::Cancel { source });
                }
            }
            WireEvent::Request(_) | WireEvent::Reply { .. } => {}
        }
    }

    /// Ends every stream on shutdown: local callers get [`CallError::Stopped`],
    /// producers are cancelled and their remote callers told (stopped).
    pub(super) fn shutdown_streams(&mut self, now: Nanos) {
        let producing = std::mem::take(&mut self.streams.producing);
        for ((peer, id), source) in producing {
            self.session
                .stream_end(now, &peer, id, Err(CallError::Stopped.to_wire()));
            self.events.push_back(Event::Cancel { source });
        }
        for call in std::mem::take(&mut self.streams.calls).into_values() {
            self.events.push_back(Event::StreamEnd {
                stream: call.stream,
                result: Err(CallError::Stopped),
            });
        }
    }
}
