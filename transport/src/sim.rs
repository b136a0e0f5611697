//! The transport on the simulated network.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use tern_executor::sim::{Delivery, NodeId, SendOutcome, SimSocket, SocketEvent};

use crate::{Incoming, NodeName, Transport, TransportError};

/// Largest frame pair a [`SimTransport`] accepts by default (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Frames queued to one peer before a [`SimTransport`] refuses more (ZeroMQ's default
/// high-water mark, 1,000, times ten, as `ZmqConfig` sets).
pub const DEFAULT_HWM: usize = 10_000;

/// A [`Transport`] over a simulated node's socket, as ordered streams.
///
/// The simulated network resets a connection when one end crashes or a partition cuts
/// the pair: frames in flight are lost and each live end receives
/// [`Incoming::PeerLost`], as a ZeroMQ peer sees a disconnection.
///
/// A frame pair travels as one simulated stream message: an 8-byte little-endian
/// envelope length, the envelope, then the payload. Node names map to simulated node
/// ids through a directory shared by all nodes of a world.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use std::rc::Rc;
/// use tern_executor::sim::World;
/// use tern_transport::{Incoming, SimTransport, Transport};
///
/// let mut world = World::new(1).unwrap();
/// let a = world.add_node("a").unwrap();
/// let b = world.add_node("b").unwrap();
/// let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
/// let ta = SimTransport::new("a", world.socket(a), names.clone());
/// let tb = SimTransport::new("b", world.socket(b), names);
/// ta.send("b", b"env".to_vec(), b"pay".to_vec()).unwrap();
/// let got = world.spawn_on(b, async move { tb.recv().await });
/// world.run_until_idle();
/// let got = world.runtime(a).unwrap().block_on(got).unwrap();
/// assert_eq!(got, Incoming::Frame { from: "a".into(), envelope: b"env".to_vec(), payload: b"pay".to_vec() });
/// ```
#[derive(Debug, Clone)]
pub struct SimTransport {
    name: NodeName,
    socket: SimSocket,
    directory: Rc<BTreeMap<NodeName, NodeId>>,
    max_frame: usize,
    hwm: usize,
    /// Frames dropped because their sender has no name or their framing is broken.
    dropped: Rc<RefCell<u64>>,
}

impl SimTransport {
    /// The transport of node `name`, on its simulated socket.
    pub fn new(
        name: impl Into<NodeName>,
        socket: SimSocket,
        directory: Rc<BTreeMap<NodeName, NodeId>>,
    ) -> Self {
        Self {
            name: name.into(),
            socket,
            directory,
            max_frame: DEFAULT_MAX_FRAME,
            hwm: DEFAULT_HWM,
            dropped: Rc::default(),
        }
    }

    /// Sets the high-water mark: frames to one peer that it has not taken yet (in
    /// flight or in its inbox) before sends fail with
    /// [`TransportError::Backpressure`] (default [`DEFAULT_HWM`], as ZeroMQ's).
    #[must_use]
    pub fn with_hwm(mut self, hwm: usize) -> Self {
        self.hwm = hwm.max(1);
        self
    }

    /// Sets the largest frame pair accepted (default [`DEFAULT_MAX_FRAME`]).
    #[must_use]
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Frames dropped (and logged) because their sender has no name in the directory
    /// or their framing is broken.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        *self.dropped.borrow()
    }

    fn drop_frame(&self, why: &str) {
        *self.dropped.borrow_mut() += 1;
        tracing::warn!(node = %self.name, why, "simulated frame dropped");
    }

    fn name_of(&self, id: NodeId) -> Option<NodeName> {
        self.directory
            .iter()
            .find(|(_, n)| **n == id)
            .map(|(name, _)| name.clone())
    }
}

impl Transport for SimTransport {
    fn local(&self) -> &str {
        &self.name
    }

    fn send(&self, to: &str, envelope: Vec<u8>, payload: Vec<u8>) -> Result<(), TransportError> {
        let Some(&id) = self.directory.get(to) else {
            return Err(TransportError::UnknownNode(to.to_owned()));
        };
        let len = 8 + envelope.len() + payload.len();
        if len > self.max_frame {
            return Err(TransportError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if self.socket.backlog(id) >= self.hwm {
            return Err(TransportError::Backpressure(to.to_owned()));
        }
        let mut data = Vec::with_capacity(len);
        data.extend_from_slice(&(envelope.len() as u64).to_le_bytes());
        data.extend_from_slice(&envelope);
        data.extend_from_slice(&payload);
        match self.socket.send(id, Delivery::Stream, data) {
            SendOutcome::InFlight => Ok(()),
            // A real stream transport would not know at once; the simulator does, and
            // reporting it keeps the sender's view honest (the frame is not queued).
            SendOutcome::TooLarge => Err(TransportError::TooLarge {
                len,
                max: self.max_frame,
            }),
            _ => Err(TransportError::Unreachable(to.to_owned())),
        }
    }

    async fn recv(&self) -> Incoming {
        loop {
            let packet = match self.socket.recv_event().await {
                SocketEvent::Packet(p) => p,
                SocketEvent::Reset(peer) => match self.name_of(peer) {
                    Some(name) => return Incoming::PeerLost(name),
                    None => continue,
                },
            };
            let Some(from) = self.name_of(packet.from) else {
                self.drop_frame("unknown sender");
                continue;
            };
            let data = packet.data;
            let Some((head, rest)) = data.split_first_chunk::<8>() else {
                self.drop_frame("frame shorter than its length prefix");
                continue;
            };
            let env_len = usize::try_from(u64::from_le_bytes(*head)).unwrap_or(usize::MAX);
            if env_len > rest.len() {
                self.drop_frame("envelope length past the end of the frame");
                continue;
            }
            let (envelope, payload) = rest.split_at(env_len);
            return Incoming::Frame {
                from,
                envelope: envelope.to_vec(),
                payload: payload.to_vec(),
            };
        }
    }
}
