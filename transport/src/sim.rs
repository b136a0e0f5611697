//! The transport on the simulated network.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use tern_executor::sim::{Delivery, NodeId, SendOutcome, SimSocket, SocketEvent};

use crate::{Incoming, NodeName, Transport, TransportError};

/// Largest frame pair a [`SimTransport`] accepts by default (1 MiB).
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// Frames queued to one peer before a [`SimTransport`] refuses more (ZeroMQ's default
/// high-water mark, 1,000, times ten, as `ZmqConfig` sets).
pub const DEFAULT_HWM: usize = 10_000;

/// A [`Transport`] over a simulated node's socket, as ordered streams, behaving as
/// the ZeroMQ transport does.
///
/// The simulated network resets a connection when one end crashes or a partition cuts
/// the pair: frames in flight are lost and each live end receives
/// [`Incoming::PeerLost`], as a ZeroMQ peer sees a disconnection. Until the peer can be
/// reached again (it restarted, or the partition healed) sends to it fail with
/// [`TransportError::Unreachable`]; then [`Incoming::PeerUp`] comes out of
/// [`Transport::recv`] and sends go through again, to the peer's new incarnation if it
/// restarted. A peer that was never reached and is down is refused the same way. The
/// transport's view of a connection changes when the network's notice arrives, whether
/// or not `recv` has taken it yet, as a ZeroMQ monitor updates it. (A simulated
/// connection opens with its first frame, so there is no `PeerUp` for a first
/// connection, only for one that comes back.)
///
/// [`SimTransport::queue_while_disconnected`] models ZeroMQ without `ZMQ_IMMEDIATE`
/// instead (how tern's transport behaved before): frames to a peer with no connection
/// wait in a queue and go to whatever process answers at the address next, and
/// [`Transport::forget_peer`] discards that queue. Tests use it to reproduce those
/// faults by seed.
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
    /// Queue frames for a peer with no connection instead of refusing them.
    queue_while_disconnected: bool,
    /// What this node knows of its connection to each peer, and counters.
    links: Rc<RefCell<Links>>,
}

/// This node's view of its connections.
#[derive(Debug, Default)]
struct Links {
    /// Peers sent to or watched: absent means never tried.
    peers: BTreeMap<NodeId, Link>,
    /// Frames dropped because their sender has no name or their framing is broken.
    dropped: u64,
    /// Frames discarded from a disconnected peer's queue by `forget_peer`.
    discarded: u64,
}

/// One peer's connection as this node sees it.
#[derive(Debug)]
enum Link {
    /// Connected (as far as this node knows: a reset is noticed after a delay).
    Up,
    /// No connection; with `queue_while_disconnected`, the frames waiting for one.
    Down(VecDeque<Vec<u8>>),
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
            queue_while_disconnected: false,
            links: Rc::default(),
        }
    }

    /// Models ZeroMQ without `ZMQ_IMMEDIATE`: a frame for a peer with no connection is
    /// accepted into a queue (up to the high-water mark) and sent when a connection
    /// opens, to whichever incarnation of the peer is there then; `forget_peer`
    /// discards the queue ([`SimTransport::discarded`]). For reproducing the faults
    /// that behaviour causes; tern's transports refuse such frames.
    #[must_use]
    pub fn queue_while_disconnected(mut self) -> Self {
        self.queue_while_disconnected = true;
        self
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
        self.links.borrow().dropped
    }

    /// Frames accepted into a disconnected peer's queue and discarded by
    /// [`Transport::forget_peer`] (only with
    /// [`SimTransport::queue_while_disconnected`]).
    #[must_use]
    pub fn discarded(&self) -> u64 {
        self.links.borrow().discarded
    }

    fn drop_frame(&self, why: &str) {
        self.links.borrow_mut().dropped += 1;
        tracing::warn!(node = %self.name, why, "simulated frame dropped");
    }

    /// Hands a framed pair to the network.
    fn transmit(&self, to: &str, id: NodeId, data: Vec<u8>) -> Result<(), TransportError> {
        let len = data.len();
        match self.socket.send(id, Delivery::Stream, data) {
            SendOutcome::InFlight => {
                self.links.borrow_mut().peers.insert(id, Link::Up);
                Ok(())
            }
            // A real stream transport would not know at once; the simulator does, and
            // reporting it keeps the sender's view honest (the frame is not queued).
            SendOutcome::TooLarge => Err(TransportError::TooLarge {
                len,
                max: self.max_frame,
            }),
            _ => Err(TransportError::Unreachable(to.to_owned())),
        }
    }

    /// Whether a frame for `id` goes on a connection now (with `ZMQ_IMMEDIATE`): as the
    /// last connection notice about it says, read or not, as a ZeroMQ monitor keeps it;
    /// before any, if it was reached already or can be. A peer that cannot be reached
    /// is watched, so [`Incoming::PeerUp`] comes when it can.
    fn is_connected(&self, id: NodeId) -> bool {
        if let Some(up) = self.socket.view(id) {
            return up;
        }
        let mut links = self.links.borrow_mut();
        match links.peers.get(&id) {
            Some(Link::Up) => true,
            Some(Link::Down(_)) => false,
            None if self.socket.reachable(id) => true,
            None => {
                self.socket.watch(id);
                links.peers.insert(id, Link::Down(VecDeque::new()));
                false
            }
        }
    }

    /// The connection to `peer` is back: sends queued for it go now, in order.
    fn reconnected(&self, peer: NodeId, name: &str) {
        let old = self.links.borrow_mut().peers.insert(peer, Link::Up);
        if let Some(Link::Down(queue)) = old {
            for data in queue {
                if self.transmit(name, peer, data).is_err() {
                    self.drop_frame("queued frame refused on reconnection");
                }
            }
        }
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
        let frame = |data: &mut Vec<u8>| {
            data.extend_from_slice(&(envelope.len() as u64).to_le_bytes());
            data.extend_from_slice(&envelope);
            data.extend_from_slice(&payload);
        };
        let mut data = Vec::with_capacity(len);
        if !self.queue_while_disconnected {
            if !self.is_connected(id) {
                return Err(TransportError::Unreachable(to.to_owned()));
            }
            if self.socket.backlog(id) >= self.hwm {
                return Err(TransportError::Backpressure(to.to_owned()));
            }
            frame(&mut data);
            return self.transmit(to, id, data);
        }
        // Without `ZMQ_IMMEDIATE`: a frame for a peer with no connection waits in
        // the queue, until the connection (to whichever process) is back.
        let mut links = self.links.borrow_mut();
        if !links.peers.contains_key(&id) && !self.socket.reachable(id) {
            self.socket.watch(id);
            links.peers.insert(id, Link::Down(VecDeque::new()));
        }
        if let Some(Link::Down(queue)) = links.peers.get_mut(&id) {
            if queue.len() >= self.hwm {
                return Err(TransportError::Backpressure(to.to_owned()));
            }
            frame(&mut data);
            queue.push_back(data);
            return Ok(());
        }
        drop(links);
        if self.socket.backlog(id) >= self.hwm {
            return Err(TransportError::Backpressure(to.to_owned()));
        }
        frame(&mut data);
        self.transmit(to, id, data)
    }

    fn connected(&self, name: &str) -> bool {
        self.directory
            .get(name)
            .is_some_and(|&id| self.is_connected(id))
    }

    fn forget_peer(&self, name: &str) {
        let Some(&id) = self.directory.get(name) else {
            return;
        };
        self.socket.clear_view(id);
        let mut links = self.links.borrow_mut();
        if let Some(Link::Down(queue)) = links.peers.remove(&id)
            && !queue.is_empty()
        {
            links.discarded += queue.len() as u64;
            tracing::warn!(node = %self.name, peer = name, frames = queue.len(),
                "queued frames discarded with a forgotten peer");
        }
    }

    async fn recv(&self) -> Incoming {
        loop {
            let packet = match self.socket.recv_event().await {
                SocketEvent::Packet(p) => p,
                SocketEvent::Reset(peer) => {
                    let mut links = self.links.borrow_mut();
                    // A queue (without `ZMQ_IMMEDIATE`) outlives the connection.
                    if !matches!(links.peers.get(&peer), Some(Link::Down(_))) {
                        links.peers.insert(peer, Link::Down(VecDeque::new()));
                    }
                    drop(links);
                    match self.name_of(peer) {
                        Some(name) => return Incoming::PeerLost(name),
                        None => continue,
                    }
                }
                SocketEvent::Up(peer) => {
                    let Some(name) = self.name_of(peer) else {
                        continue;
                    };
                    // Only a peer this node still waits for: a forgotten one stays
                    // forgotten.
                    if !matches!(self.links.borrow().peers.get(&peer), Some(Link::Down(_))) {
                        continue;
                    }
                    self.reconnected(peer, &name);
                    return Incoming::PeerUp(name);
                }
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
