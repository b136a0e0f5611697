//! Streamed replies on the wire session: items, end, credit and cancel.
//!
//! A caller opens a stream with [`Session::ask_stream`]: an ask whose `credit` field
//! is the initial window, the number of items the producer may send before it is
//! granted more. The producer answers with `KIND_STREAM_ITEM` frames, never more than
//! the credit granted so far, then one `KIND_STREAM_END` (or a `KIND_ERROR`). The
//! caller grants more with `KIND_CREDIT` ([`Session::grant`]) as it consumes, and may
//! stop the stream at any time with `KIND_CANCEL` ([`Session::cancel_stream`]).
//!
//! The session enforces the window on both sides: [`Session::stream_item`] refuses
//! an item without credit, and a caller ends a stream whose producer overruns its
//! credit ([`SessionStats::credit_overruns`]). So a stream never buffers more than its
//! window anywhere. Items carry increasing message ids; one that repeats or goes back
//! is dropped and counted, as is any stream frame that matches no open stream.

use std::collections::BTreeMap;

use super::{
    Event, Failure, Nanos, Outgoing, PROTOCOL_VERSION, PeerId, Reply, Session, millis_left,
};
use crate::v1::{ComponentRef, Envelope, ErrorCode, ErrorInfo, Kind};

/// A stream this session asked for.
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) peer: PeerId,
    deadline: Option<Nanos>,
    /// Items the producer may still send (granted minus received).
    credit: u64,
    /// The sequence number of the next item to deliver.
    next: u64,
    /// Items that arrived ahead of `next` (bounded by the credit).
    ahead: BTreeMap<u64, Reply>,
    /// An end that arrived ahead of items still missing: (items sent, result).
    end: Option<(u64, Result<(), Failure>)>,
}

/// A stream this session produces.
#[derive(Debug)]
pub(super) struct Inbound {
    /// Items this session may still send.
    credit: u64,
    /// Items sent so far (the last item's sequence number).
    sent: u64,
    /// The component that produces it, named as the source of its frames.
    component: String,
}

#[derive(Debug, Default)]
pub(super) struct Streams {
    pub(super) outbound: BTreeMap<u64, Outbound>,
    /// Keyed by (caller node, request message id).
    pub(super) inbound: BTreeMap<(PeerId, u64), Inbound>,
}

/// Why [`Session::stream_item`] did not send an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamSendError {
    /// The caller has not granted credit for another item: wait for
    /// [`Event::Credit`].
    #[error("no credit: the caller has not asked for another item")]
    NoCredit,
    /// No such open stream: it ended, was cancelled, or its caller was lost.
    #[error("the stream is not open")]
    Closed,
}

impl Session {
    /// Queues a request to `peer` whose answer is a stream of items, and grants the
    /// producer `window` items of credit at once (at least 1). Items arrive as
    /// [`Event::StreamItem`] and the stream ends with one [`Event::StreamEnd`]: when the
    /// producer ends it, fails, the deadline `now + timeout` passes (the whole stream's
    /// deadline; the session then sends a cancel), or the peer is lost. Grant more
    /// items with [`Session::grant`] as they are consumed.
    pub fn ask_stream(
        &mut self,
        now: Nanos,
        peer: &str,
        mut out: Outgoing,
        timeout: Option<Nanos>,
        window: u32,
    ) -> u64 {
        let window = window.max(1);
        let id = self.take_id();
        let deadline = timeout.map(|t| now.saturating_add(t));
        let mut env = self.envelope(id, Kind::Ask, &mut out, peer);
        env.timeout_ms = millis_left(deadline, now);
        env.credit = window;
        self.push(peer, &env, out.payload);
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        self.streams.outbound.insert(
            id,
            Outbound {
                peer: peer.to_owned(),
                deadline,
                credit: u64::from(window),
                next: 1,
                ahead: BTreeMap::new(),
                end: None,
            },
        );
        id
    }

    /// Grants the producer of stream `id` `credit` more items. Returns whether the
    /// stream is open (a grant of 0 sends nothing).
    pub fn grant(&mut self, id: u64, credit: u32) -> bool {
        let Some(o) = self.streams.outbound.get_mut(&id) else {
            return false;
        };
        if credit == 0 {
            return true;
        }
        o.credit = o.credit.saturating_add(u64::from(credit));
        let peer = o.peer.clone();
        let env = self.control(Kind::Credit, id, &peer, credit);
        self.push(&peer, &env, Vec::new());
        true
    }

    /// Stops stream `id`: tells the producer to stop and forgets the stream, without an
    /// event; frames that still arrive for it are dropped and counted. Returns whether
    /// it was open.
    pub fn cancel_stream(&mut self, id: u64) -> bool {
        let Some(o) = self.streams.outbound.remove(&id) else {
            return false;
        };
        if let Some(d) = o.deadline {
            self.deadlines.remove(&(d, id));
        }
        let env = self.control(Kind::Cancel, id, &o.peer, 0);
        self.push(&o.peer, &env, Vec::new());
        true
    }

    /// Streams this session asked for that have not ended.
    #[must_use]
    pub fn streams_outstanding(&self) -> usize {
        self.streams.outbound.len()
    }

    /// Streams this session produces that are open (not ended, cancelled or lost).
    #[must_use]
    pub fn streams_producing(&self) -> usize {
        self.streams.inbound.len()
    }

    /// The credit left to the stream this session produces for request `id` from
    /// `peer`, if that stream is open.
    #[must_use]
    pub fn stream_credit(&self, peer: &str, id: u64) -> Option<u64> {
        self.streams
            .inbound
            .get(&(peer.to_owned(), id))
            .map(|s| s.credit)
    }

    /// Sends one item of the stream answering request `id` from `peer`, using one unit
    /// of credit.
    ///
    /// # Errors
    ///
    /// [`StreamSendError::NoCredit`] when the caller has granted no more items (wait for
    /// [`Event::Credit`]), [`StreamSendError::Closed`] when the stream is not open.
    pub fn stream_item(
        &mut self,
        now: Nanos,
        peer: &str,
        id: u64,
        item: Reply,
    ) -> Result<(), StreamSendError> {
        let _ = now;
        let key = (peer.to_owned(), id);
        let (component, sequence) = match self.streams.inbound.get_mut(&key) {
            None => return Err(StreamSendError::Closed),
            Some(s) if s.credit == 0 => return Err(StreamSendError::NoCredit),
            Some(s) => {
                s.credit -= 1;
                s.sent += 1;
                (s.component.clone(), s.sent)
            }
        };
        let mut env = self.answer_envelope(Kind::StreamItem, id, peer, &component);
        env.content_type = item.content_type;
        env.sequence = sequence;
        self.push(peer, &env, item.payload);
        Ok(())
    }

    /// Ends the stream answering request `id` from `peer`: `Ok` after its last item, or
    /// an error. Returns whether the stream was open (nothing is sent otherwise).
    pub fn stream_end(
        &mut self,
        now: Nanos,
        peer: &str,
        id: u64,
        result: Result<(), (ErrorCode, String)>,
    ) -> bool {
        let _ = now;
        let Some(s) = self.streams.inbound.remove(&(peer.to_owned(), id)) else {
            return false;
        };
        let env = match result {
            Ok(()) => self.answer_envelope(Kind::StreamEnd, id, peer, &s.component),
            Err((code, detail)) => {
                let mut env = self.answer_envelope(Kind::Error, id, peer, &s.component);
                env.error = Some(ErrorInfo {
                    code: code.into(),
                    detail,
                });
                env
            }
        };
        let mut env = env;
        env.sequence = s.sent;
        self.push(peer, &env, Vec::new());
        true
    }

    /// Drops the stream answering request `id` from `peer` without sending anything:
    /// the producer's side at the stream's deadline (the caller has ended it by then;
    /// v1 never sends `ERROR_CODE_TIMEOUT` for a stream). Returns whether it was open.
    pub fn stream_abandon(&mut self, peer: &str, id: u64) -> bool {
        self.streams
            .inbound
            .remove(&(peer.to_owned(), id))
            .is_some()
    }

    fn control(&mut self, kind: Kind, id: u64, peer: &str, credit: u32) -> Envelope {
        let message_id = self.take_id();
        Envelope {
            version: PROTOCOL_VERSION,
            message_id,
            correlation_id: id,
            kind: kind.into(),
            source: Some(ComponentRef {
                node: self.node.clone(),
                name: String::new(),
                generation: 0,
            }),
            destination: Some(ComponentRef {
                node: peer.to_owned(),
                name: String::new(),
                generation: 0,
            }),
            credit,
            ..Envelope::default()
        }
    }

    fn answer_envelope(&mut self, kind: Kind, id: u64, peer: &str, component: &str) -> Envelope {
        let message_id = self.take_id();
        Envelope {
            version: PROTOCOL_VERSION,
            message_id,
            correlation_id: id,
            kind: kind.into(),
            source: Some(ComponentRef {
                node: self.node.clone(),
                name: component.to_owned(),
                generation: 0,
            }),
            destination: Some(ComponentRef {
                node: peer.to_owned(),
                name: String::new(),
                generation: 0,
            }),
            ..Envelope::default()
        }
    }

    pub(super) fn is_producing(&self, peer: &str, id: u64) -> bool {
        self.streams.inbound.contains_key(&(peer.to_owned(), id))
    }

    /// A stream request arrived: open its producer side.
    pub(super) fn open_inbound(&mut self, peer: &str, id: u64, credit: u32, component: &str) {
        self.streams.inbound.insert(
            (peer.to_owned(), id),
            Inbound {
                credit: u64::from(credit),
                sent: 0,
                component: component.to_owned(),
            },
        );
    }

    pub(super) fn on_item(&mut self, peer: &str, env: &Envelope, payload: Vec<u8>) {
        let id = env.correlation_id;
        let seq = env.sequence;
        let Some(o) = self
            .streams
            .outbound
            .get_mut(&id)
            .filter(|o| o.peer == peer)
        else {
            self.stats.unmatched_stream_frames += 1;
            return;
        };
        if seq < o.next || o.ahead.contains_key(&seq) || o.end.as_ref().is_some_and(|e| seq > e.0) {
            // A repeat (or no sequence number, or past the end): never deliver twice.
            self.stats.unmatched_stream_frames += 1;
            return;
        }
        if o.credit == 0 {
            self.stats.credit_overruns += 1;
            let failure = Failure::Remote {
                code: ErrorCode::Unspecified,
                detail: "the producer sent more items than granted".to_owned(),
            };
            self.events.push_back(Event::StreamEnd {
                id,
                result: Err(failure),
            });
            self.cancel_stream(id);
            return;
        }
        o.credit -= 1;
        o.ahead.insert(
            seq,
            Reply {
                content_type: env.content_type.clone(),
                payload,
            },
        );
        self.release(id);
    }

    /// Delivers the items of stream `id` that are next in order, then its end if
    /// every item before it has been delivered.
    fn release(&mut self, id: u64) {
        let Some(o) = self.streams.outbound.get_mut(&id) else {
            return;
        };
        while let Some(item) = o.ahead.remove(&o.next) {
            o.next += 1;
            self.events.push_back(Event::StreamItem { id, item });
        }
        if o.end.as_ref().is_some_and(|(sent, _)| o.next > *sent) {
            let result = o.end.take().map_or(Ok(()), |(_, r)| r);
            if let Some(o) = self.streams.outbound.remove(&id)
                && let Some(d) = o.deadline
            {
                self.deadlines.remove(&(d, id));
            }
            self.events.push_back(Event::StreamEnd { id, result });
        }
    }

    /// Ends outbound stream `id` if `peer` produces it, once the `sent` items before
    /// the end have been delivered; counts the frame otherwise.
    pub(super) fn end_outbound(
        &mut self,
        peer: &str,
        id: u64,
        sent: u64,
        result: Result<(), Failure>,
    ) {
        match self.streams.outbound.get_mut(&id) {
            Some(o) if o.peer == peer && o.end.is_none() => {
                o.end = Some((sent, result));
                self.release(id);
            }
            _ => self.stats.unmatched_stream_frames += 1,
        }
    }

    /// Ends outbound stream `id` at once (its answer could not be decoded).
    pub(super) fn end_stream_now(&mut self, id: u64, result: Result<(), Failure>) {
        if let Some(o) = self.streams.outbound.remove(&id) {
            if let Some(d) = o.deadline {
                self.deadlines.remove(&(d, id));
            }
            self.events.push_back(Event::StreamEnd { id, result });
        }
    }

    pub(super) fn on_credit(&mut self, peer: &str, id: u64, credit: u32) {
        match self.streams.inbound.get_mut(&(peer.to_owned(), id)) {
            Some(s) => {
                s.credit = s.credit.saturating_add(u64::from(credit));
                self.events.push_back(Event::Credit {
                    peer: peer.to_owned(),
                    id,
                    credit,
                });
            }
            None => self.stats.unmatched_stream_frames += 1,
        }
    }

    pub(super) fn on_cancel(&mut self, peer: &str, id: u64) {
        if self
            .streams
            .inbound
            .remove(&(peer.to_owned(), id))
            .is_some()
        {
            self.events.push_back(Event::Cancelled {
                peer: peer.to_owned(),
                id,
            });
        } else {
            self.stats.unmatched_stream_frames += 1;
        }
    }

    /// Outbound stream `id` reached its deadline: it ends with [`Failure::Timeout`] and
    /// the producer is told to stop.
    pub(super) fn expire_stream(&mut self, id: u64) {
        if let Some(o) = self.streams.outbound.remove(&id) {
            let env = self.control(Kind::Cancel, id, &o.peer, 0);
            self.push(&o.peer, &env, Vec::new());
            self.events.push_back(Event::StreamEnd {
                id,
                result: Err(Failure::Timeout),
            });
        }
    }

    pub(super) fn streams_lost(&mut self, peer: &str) {
        let lost: Vec<u64> = self
            .streams
            .outbound
            .iter()
            .filter(|(_, o)| o.peer == peer)
            .map(|(&id, _)| id)
            .collect();
        for id in lost {
            if let Some(o) = self.streams.outbound.remove(&id)
                && let Some(d) = o.deadline
            {
                self.deadlines.remove(&(d, id));
            }
            self.events.push_back(Event::StreamEnd {
                id,
                result: Err(Failure::PeerLost),
            });
        }
        let producing: Vec<(PeerId, u64)> = self
            .streams
            .inbound
            .range((peer.to_owned(), 0)..=(peer.to_owned(), u64::MAX))
            .map(|(k, _)| k.clone())
            .collect();
        for key in producing {
            self.streams.inbound.remove(&key);
            self.events.push_back(Event::Cancelled {
                peer: key.0,
                id: key.1,
            });
        }
    }
}

#[cfg(test)]
mod tests;
