//! Socket monitors: the connection events of each `DEALER` and of the `ROUTER`, turned
//! into [`Incoming::PeerLost`] / [`Incoming::PeerUp`] and counters.
//!
//! A monitor must be read until its socket is gone. libzmq writes each event into the
//! monitor's `PAIR` socket with a *blocking* send from the I/O thread; if nobody reads
//! it (its reader was dropped with the socket still alive, lingering), that I/O thread
//! blocks for good and every socket of the context stops moving. So a watcher outlives
//! its socket: it reads until libzmq's `MONITOR_STOPPED`, sent when the socket is
//! destroyed, and only then closes the `PAIR`. Watchers hold only a weak reference to
//! the transport, so they never keep it alive.

use std::cell::Cell;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

use tern_executor::ZmqSocket;

use super::stats::zmq_err;
use super::{Inner, ZmqSetupError, ZmqTransport, sources};
use crate::{Incoming, NodeName};

static MONITORS: AtomicU64 = AtomicU64::new(0);

/// What the transport knows of its connection to one peer, shared by the peer's
/// `DEALER` handle and its watcher.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// A connection is established (handshake done, no disconnection since): with
    /// `ZMQ_IMMEDIATE`, the only time a send can be queued.
    pub(super) connected: Cell<bool>,
    /// The `DEALER` was closed (the peer forgotten or moved): its events no longer
    /// concern the peer.
    pub(super) retired: Cell<bool>,
    /// Frame pairs accepted on the current connection.
    pub(super) sent: Cell<u64>,
}

/// A `PAIR` socket receiving `socket`'s monitor events, `MONITOR_STOPPED` included.
pub(super) fn monitor(
    ctx: &zmq::Context,
    socket: &zmq::Socket,
    events: u16,
) -> Result<ZmqSocket, ZmqSetupError> {
    let at = format!(
        "inproc://tern-monitor-{}",
        MONITORS.fetch_add(1, Ordering::Relaxed)
    );
    let events = events | zmq::SocketEvent::MONITOR_STOPPED.to_raw();
    socket
        .monitor(&at, i32::from(events))
        .map_err(zmq_err("monitor"))?;
    let pair = ctx.socket(zmq::PAIR).map_err(zmq_err("monitor socket"))?;
    pair.connect(&at).map_err(zmq_err("monitor connect"))?;
    Ok(ZmqSocket::new(pair))
}

/// One monitor event.
struct Event {
    /// Its number (`zmq::SocketEvent`).
    event: u16,
    /// Its value: the connection's file descriptor for `ACCEPTED` and `DISCONNECTED`,
    /// an error number for handshake failures.
    value: u32,
    /// The endpoint it concerns (for a `ROUTER`, the bound one).
    endpoint: String,
}

/// The next monitor event; `None` once the monitored socket is destroyed
/// (`MONITOR_STOPPED`) or the monitor fails. Malformed events (never produced by
/// libzmq) are skipped.
async fn next_event(monitor: &ZmqSocket) -> Option<Event> {
    loop {
        let frames = monitor.recv_multipart().await.ok()?;
        let head = frames.first().and_then(|f| f.get(..6)).map(|b| {
            (
                u16::from_le_bytes([b[0], b[1]]),
                u32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            )
        });
        if let Some((event, value)) = head {
            if event == zmq::SocketEvent::MONITOR_STOPPED.to_raw() {
                return None;
            }
            let endpoint = frames
                .get(1)
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .unwrap_or_default();
            return Some(Event {
                event,
                value,
                endpoint,
            });
        }
    }
}

impl ZmqTransport {
    /// Counts a connection accepted on `fd` against its remote address, and shuts it
    /// down if that address is over its cap.
    fn count_source(&self, fd: i32) {
        let Some(addr) = sources::peer_address(fd) else {
            return;
        };
        let cap = self.inner.config.max_connections_per_address;
        if self.inner.sources.borrow_mut().accepted(fd, addr, cap) {
            return;
        }
        sources::shut(fd);
        self.bump(|s| s.connections_refused += 1);
        self.refused("over the connections per address cap", &addr.to_string());
    }
}

fn upgrade(inner: &Weak<Inner>) -> Option<ZmqTransport> {
    inner.upgrade().map(|inner| ZmqTransport { inner })
}

/// Reads a peer's `DEALER` monitor until the socket is destroyed: a completed
/// handshake is [`Incoming::PeerUp`], the loss of an established connection is
/// [`Incoming::PeerLost`] (libzmq discards what was queued on it, `ZMQ_IMMEDIATE`).
pub(super) async fn watch_peer(
    inner: Weak<Inner>,
    peer: NodeName,
    link: Rc<Link>,
    monitor: ZmqSocket,
) {
    while let Some(Event { event, .. }) = next_event(&monitor).await {
        if link.retired.get() {
            continue;
        }
        let Some(t) = upgrade(&inner) else { continue };
        let name = &t.inner.config.name;
        if event == zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw() {
            link.connected.set(true);
            link.sent.set(0);
            t.bump(|s| s.peer_up += 1);
            tracing::debug!(node = %name, %peer, "connected");
            t.push(Incoming::PeerUp(peer.clone()));
        } else if is_handshake_failure(event) {
            // libzmq does not retry a connection whose handshake was refused (a key
            // not, or not yet, on the peer's allow-list; a server key that does not
            // match): retry it here, after the longest reconnect delay, so a key added
            // to the peer's list later is admitted without a restart.
            t.bump(|s| s.peer_handshake_failures += 1);
            tracing::warn!(node = %name, %peer, "handshake refused by the peer or failed; retrying");
            let delay = t.inner.config.reconnect_ivl_max;
            let (weak, link, peer) = (inner.clone(), link.clone(), peer.clone());
            tern_executor::spawn(async move {
                tern_executor::time::sleep(delay).await;
                let Some(t) = upgrade(&weak) else { return };
                let endpoint = t.inner.dealers.borrow().get(&peer).and_then(|p| {
                    (Rc::ptr_eq(&p.link, &link) && !link.connected.get())
                        .then(|| p.endpoint.clone())
                });
                if let Some(endpoint) = endpoint
                    && let Err(e) = t.connect(&peer, &endpoint)
                {
                    tracing::warn!(node = %t.inner.config.name, %peer, error = %e, "reconnect failed");
                }
            })
            .detach();
        } else if event == zmq::SocketEvent::DISCONNECTED.to_raw() && link.connected.get() {
            link.connected.set(false);
            let sent = link.sent.replace(0);
            t.bump(|s| {
                s.disconnects += 1;
                s.sent_on_lost_connections += sent;
            });
            tracing::warn!(node = %name, %peer, sent_on_connection = sent,
                "connection lost: frames it had not delivered are lost with it");
            t.push(Incoming::PeerLost(peer.clone()));
        }
    }
    tracing::trace!(%peer, "DEALER monitor stopped");
}

/// The handshake failure events, which end a connection for good in libzmq.
pub(super) fn handshake_failures() -> u16 {
    [
        zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
        zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
        zmq::SocketEvent::HANDSHAKE_FAILED_AUTH,
    ]
    .iter()
    .fold(0, |acc, e| acc | e.to_raw())
}

fn is_handshake_failure(event: u16) -> bool {
    event & handshake_failures() != 0 && event.count_ones() == 1
}

/// Reads the `ROUTER`'s monitor until the socket is destroyed: inbound connections
/// accepted (counted per remote address, and shut down past the cap: `sources.rs`),
/// closed, or refused at the handshake.
pub(super) async fn watch_inbound(inner: Weak<Inner>, monitor: ZmqSocket) {
    while let Some(Event {
        event,
        value,
        endpoint: from,
    }) = next_event(&monitor).await
    {
        let Some(t) = upgrade(&inner) else { continue };
        let fd = i32::try_from(value).unwrap_or(-1);
        if event == zmq::SocketEvent::ACCEPTED.to_raw() {
            t.bump(|s| s.accepted += 1);
            t.count_source(fd);
        } else if event == zmq::SocketEvent::DISCONNECTED.to_raw() {
            t.bump(|s| s.inbound_closed += 1);
            t.inner.sources.borrow_mut().closed(fd);
        } else {
            t.bump(|s| s.handshake_failures += 1);
            t.warn(
                "a connection whose handshake failed (not a ZMTP 3 peer)",
                &from,
            );
        }
    }
}
