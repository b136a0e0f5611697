//! What a [`Session`](super::Session) takes from its driver and gives back: frames to
//! send, outgoing messages, requests and replies, events and counters.

#[cfg(doc)]
use super::Session;
use super::{Nanos, PeerId};
#[cfg(doc)]
use crate::v1::Envelope;
use crate::v1::{ComponentRef, ErrorCode, TraceContext};

/// A frame for the driver to send: the encoded envelope, then the payload as its own
/// frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a transmit is a frame the driver must send"]
pub struct Transmit {
    /// The node to send to.
    pub peer: PeerId,
    /// The encoded [`Envelope`].
    pub envelope: Vec<u8>,
    /// The opaque payload.
    pub payload: Vec<u8>,
}

/// A message to send: destination component, type and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Registered name of the destination component on the peer.
    pub component: String,
    /// Stable name of the message type.
    pub message_type: String,
    /// The payload's encoding.
    pub content_type: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// The destination generation to stamp on the request, fixed when the caller made
    /// the call; `None` stamps the generation the peer is believed to run when the
    /// request is sent (see [`Session::set_peer_generation`]). A call that waited
    /// before going out keeps the generation its caller addressed, so it is refused
    /// by a later incarnation instead of being handled there.
    pub generation: Option<u64>,
    /// The flow name written in the envelope (empty: none).
    pub flow: String,
    /// The envelope's `horizon` field (0: not set).
    pub horizon: u32,
    /// W3C trace context to carry in the envelope's `trace` field (ids of 16 and 8
    /// bytes; see [`TraceContext`]), `None` for an untraced message.
    pub trace: Option<TraceContext>,
}

impl Outgoing {
    /// A message for `component`.
    pub fn new(
        component: impl Into<String>,
        message_type: impl Into<String>,
        content_type: impl Into<String>,
        payload: Vec<u8>,
    ) -> Self {
        Self {
            component: component.into(),
            message_type: message_type.into(),
            content_type: content_type.into(),
            payload,
            generation: None,
            flow: String::new(),
            horizon: 0,
            trace: None,
        }
    }
}

/// A request that arrived from a peer, for the application to handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The sending node.
    pub peer: PeerId,
    /// The envelope's message id (the correlation id of the answer).
    pub message_id: u64,
    /// Whether the sender waits for a reply (an ask) or not (a tell).
    pub expects_reply: bool,
    /// The sending component, if named.
    pub source: Option<ComponentRef>,
    /// The destination component's name.
    pub component: String,
    /// The message type's stable name.
    pub message_type: String,
    /// The payload's encoding.
    pub content_type: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// When the sender gives up, on this session's clock (from the envelope's remaining
    /// time), if it set a deadline.
    pub deadline: Option<Nanos>,
    /// For an ask that wants a streamed reply: the initial credit (how many items the
    /// caller accepts before it grants more); 0 for a plain ask or a tell. Answer it
    /// with [`Session::stream_item`] and [`Session::stream_end`].
    pub credit: u32,
    /// The envelope's flow name (empty: none).
    pub flow: String,
    /// The envelope's `horizon` field (0: not set).
    pub horizon: u32,
    /// The caller's W3C trace context, if the request carried one (its ids were
    /// checked by the decoder: 16 and 8 bytes); boxed, as most requests carry none.
    pub trace: Option<Box<TraceContext>>,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The payload's encoding.
    pub content_type: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Why an ask produced no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The peer answered with an error, or with an answer this session could not
    /// decode (then `code` is `DecodeFailed`, `TooLarge` or `UnsupportedVersion` and
    /// `detail` the decode error).
    Remote {
        /// The error code (unknown codes arrive as `Unspecified`).
        code: ErrorCode,
        /// The peer's explanation.
        detail: String,
    },
    /// The deadline passed first.
    Timeout,
    /// The driver reported the peer gone.
    PeerLost,
}

/// What the application must see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A tell or an ask from a peer.
    Request(Request),
    /// The outcome of one of this session's asks.
    Reply {
        /// The id [`Session::ask`] returned.
        id: u64,
        /// The reply or why there is none.
        result: Result<Reply, Failure>,
    },
    /// One item of a stream this session asked for with [`Session::ask_stream`]; items
    /// arrive in the order produced, without duplicates.
    StreamItem {
        /// The id [`Session::ask_stream`] returned.
        id: u64,
        /// The item.
        item: Reply,
    },
    /// The end of a stream this session asked for: `Ok` when the producer finished,
    /// otherwise why it ended early. Exactly one per stream, after its last item,
    /// unless the stream was cancelled here ([`Session::cancel_stream`]).
    StreamEnd {
        /// The id [`Session::ask_stream`] returned.
        id: u64,
        /// How it ended.
        result: Result<(), Failure>,
    },
    /// The caller of a stream this session produces granted more credit.
    Credit {
        /// The caller's node.
        peer: PeerId,
        /// The stream request's [`Request::message_id`].
        id: u64,
        /// Items added to the credit.
        credit: u32,
    },
    /// The caller of a stream this session produces no longer wants it (it cancelled,
    /// or its node was lost): stop producing and free what the stream holds.
    Cancelled {
        /// The caller's node.
        peer: PeerId,
        /// The stream request's [`Request::message_id`].
        id: u64,
    },
}

/// Counters for what the session dropped or refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames that failed to decode or validate.
    pub malformed: u64,
    /// Replies matching no outstanding ask (late, duplicate or forged).
    pub unmatched_replies: u64,
    /// Asks that timed out.
    pub timeouts: u64,
    /// Stream frames (item, end, credit, cancel) that matched no open stream (late
    /// after a cancel, duplicated, or forged), or stream items that repeated or went
    /// back in order; each is dropped.
    pub unmatched_stream_frames: u64,
    /// Streams ended because the producer sent more items than granted.
    pub credit_overruns: u64,
    /// Requests refused because they were addressed to another generation of this
    /// node (asks answered with `ErrorCode::Stopped`, tells dropped); see
    /// [`Session::set_generation`].
    pub fenced: u64,
}
