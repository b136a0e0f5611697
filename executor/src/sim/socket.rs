//! A node's handle on the simulated network (documented on [`SimSocket`]).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use super::net::{Delivery, Net, Packet, SendOutcome, SocketEvent};
use super::world::NodeId;

/// A node's handle on the simulated network; give it to the node's tasks.
#[derive(Debug, Clone)]
pub struct SimSocket {
    pub(crate) node: NodeId,
    pub(crate) net: Rc<RefCell<Net>>,
    pub(crate) clock: crate::time::Clock,
}

impl SimSocket {
    /// This socket's node.
    #[must_use]
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Sends `data` to `to`. The outcome is known at once to the simulator (and
    /// recorded), but a real network would not tell the sender: protocols must not
    /// rely on it.
    pub fn send(&self, to: NodeId, delivery: Delivery, data: Vec<u8>) -> SendOutcome {
        let now = self.clock.now();
        self.net.borrow_mut().send(
            now,
            Packet {
                from: self.node,
                to,
                delivery,
                data,
            },
        )
    }

    /// Waits for the next message to this node. Reset and reconnection notices met on the way are
    /// discarded: a task that cares about them uses [`SimSocket::recv_event`] instead.
    pub async fn recv(&self) -> Packet {
        poll_fn(|cx| {
            let mut net = self.net.borrow_mut();
            loop {
                let inbox = net.inboxes.entry(self.node).or_default();
                match inbox.pop() {
                    Some(SocketEvent::Packet(p)) => {
                        net.taken(&p);
                        return Poll::Ready(p);
                    }
                    Some(SocketEvent::Reset(_) | SocketEvent::Up(_)) => {}
                    None => {
                        inbox.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }

    /// Stream frames this node sent to `to` that `to` has not taken yet (in flight,
    /// held, or waiting in its inbox): the connection's queue, which a transport
    /// compares with its high-water mark. A reset empties it.
    #[must_use]
    pub fn backlog(&self, to: NodeId) -> usize {
        self.net
            .borrow()
            .backlog
            .get(&(self.node, to))
            .copied()
            .unwrap_or(0)
    }

    /// Asks for a [`SocketEvent::Up`] once `to` can be reached (it is up and the pair
    /// is not cut), after [`NetConfig::reconnect_ivl`](super::NetConfig::reconnect_ivl): what a ZeroMQ `DEALER`
    /// connecting in the background reports when its handshake completes.
    pub fn watch(&self, to: NodeId) {
        let now = self.clock.now();
        self.net.borrow_mut().watch(now, self.node, to);
    }

    /// The last connection notice this node got about `to`, the moment it arrived (read
    /// or not): `Some(false)` after a [`SocketEvent::Reset`], `Some(true)` after a
    /// [`SocketEvent::Up`], `None` before any (or after [`SimSocket::clear_view`]). A
    /// transport uses it as its connection state, as a ZeroMQ transport's monitor keeps
    /// it apart from what its reader takes.
    #[must_use]
    pub fn view(&self, to: NodeId) -> Option<bool> {
        self.net.borrow().views.get(&(self.node, to)).copied()
    }

    /// Forgets the connection notices this node got about `to` (a transport that
    /// forgets the peer).
    pub fn clear_view(&self, to: NodeId) {
        self.net.borrow_mut().views.remove(&(self.node, to));
    }

    /// Whether a connection to `to` could be established now (`to` is up and the pair
    /// is not cut). A transport that has no connection to `to` yet asks this before
    /// sending, as a real one would know its connection never completed.
    #[must_use]
    pub fn reachable(&self, to: NodeId) -> bool {
        self.net.borrow().reachable(self.node, to)
    }

    /// Waits for the next datagram to this node. From the first call on, datagrams
    /// queue apart from stream frames (which [`SimSocket::recv`] and
    /// [`SimSocket::recv_event`] then no longer see), as a UDP socket would beside a
    /// node's connections; the inbox capacity applies to each queue.
    pub async fn recv_datagram(&self) -> Packet {
        poll_fn(|cx| match self.try_recv_datagram() {
            Some(p) => Poll::Ready(p),
            None => {
                let mut net = self.net.borrow_mut();
                let inbox = net.inboxes.entry(self.node).or_default();
                inbox.datagram_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// The next datagram to this node if one is waiting (see
    /// [`SimSocket::recv_datagram`]).
    pub fn try_recv_datagram(&self) -> Option<Packet> {
        let mut net = self.net.borrow_mut();
        let inbox = net.inboxes.entry(self.node).or_default();
        if !inbox.split {
            inbox.split = true;
            // Datagrams that arrived before move over, in order.
            let mut kept = VecDeque::with_capacity(inbox.queue.len());
            for e in inbox.queue.drain(..) {
                match e {
                    SocketEvent::Packet(p) if p.delivery == Delivery::Datagram => {
                        inbox.packets -= 1;
                        inbox.datagrams.push_back(p);
                    }
                    other => kept.push_back(other),
                }
            }
            inbox.queue = kept;
        }
        inbox.datagrams.pop_front()
    }

    /// Waits for the next message or stream reset notice to this node, in arrival
    /// order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use tern_executor::sim::{Delivery, SocketEvent, World};
    ///
    /// let mut world = World::new(3).unwrap();
    /// let (a, b) = (world.add_node("a").unwrap(), world.add_node("b").unwrap());
    /// let (sa, sb) = (world.socket(a), world.socket(b));
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let s = seen.clone();
    /// world.spawn_on(b, async move {
    ///     loop {
    ///         let event = sb.recv_event().await;
    ///         s.borrow_mut().push(event);
    ///     }
    /// }).detach();
    /// sa.send(b, Delivery::Stream, vec![1]);
    /// world.run_until_idle();
    /// world.crash(a); // b's connection with a resets
    /// world.run_until_idle();
    /// assert!(matches!(seen.borrow()[0], SocketEvent::Packet(_)));
    /// assert_eq!(seen.borrow()[1], SocketEvent::Reset(a));
    /// ```
    pub async fn recv_event(&self) -> SocketEvent {
        poll_fn(|cx| {
            let mut net = self.net.borrow_mut();
            let inbox = net.inboxes.entry(self.node).or_default();
            match inbox.pop() {
                Some(e) => {
                    if let SocketEvent::Packet(p) = &e {
                        net.taken(p);
                    }
                    Poll::Ready(e)
                }
                None => {
                    inbox.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}
