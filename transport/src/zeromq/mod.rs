//! The transport on ZeroMQ (documented on [`ZmqTransport`]).

mod allow_list;
mod config;
mod inbound;
mod keys;
mod monitor;
mod rotation;
mod security;
mod sources;
mod stats;
mod zap;

pub use allow_list::AllowList;
pub use config::ZmqConfig;
pub use keys::KeyPair;
pub use security::{CurveSecurity, SecurityError, ZmqSecurity};
pub use stats::{ZmqSetupError, ZmqStats};

use stats::zmq_err;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use tern_executor::time::Instant;
use tern_executor::{JoinHandle, ZmqSocket};

use crate::{Incoming, NodeName, Transport, TransportError};
use config::ms;
use monitor::Link;

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Incoming>,
    /// Bytes of the frames in `queue` (bounded by `ZmqConfig::inbox_bytes`).
    bytes: usize,
    reader: Option<Waker>,
    /// Socket readers waiting for room.
    blocked: Vec<Waker>,
}

/// A connection to a peer: its `DEALER`, its state, and the task reading it. The task
/// reading its monitor outlives it (see the `monitor` module).
struct Peer {
    dealer: Rc<ZmqSocket>,
    endpoint: String,
    link: Rc<Link>,
    reader: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // The monitor's events no longer concern the peer; the watcher drains them
        // until the socket is destroyed (after at most `linger`).
        self.link.retired.set(true);
        self.reader.abort();
    }
}

struct Inner {
    config: ZmqConfig,
    ctx: zmq::Context,
    router: Rc<ZmqSocket>,
    endpoints: Vec<String>,
    dealers: RefCell<BTreeMap<NodeName, Peer>>,
    inbox: RefCell<Inbox>,
    stats: Cell<ZmqStats>,
    tasks: RefCell<Vec<JoinHandle<()>>>,
    last_warning: Cell<Option<Instant>>,
    /// Refusals logged per remote address (flood control).
    flood: RefCell<inbound::Flood>,
    /// Inbound connections open now per remote address (`sources.rs`).
    sources: RefCell<sources::Sources>,
    /// CURVE: who may connect, by key (empty in plaintext).
    allow: RefCell<AllowList>,
    /// CURVE: the routing id each authenticated name last sent from on the `ROUTER`
    /// (where a reply goes when there is no `DEALER` to that name).
    routes: RefCell<BTreeMap<NodeName, Vec<u8>>>,
}

/// A [`Transport`] over ZeroMQ `ROUTER`/`DEALER` sockets on the executor's reactor.
///
/// # Sockets and frames
///
/// Every node binds one `ROUTER` socket on its listen endpoints and opens one `DEALER`
/// per known peer, connected to the peer's `ROUTER`, with the node's name as its
/// routing id. A frame pair travels as one ZeroMQ message:
///
/// - `DEALER` → `ROUTER`: `[envelope, payload]` (the `ROUTER` prepends the sender's
///   routing id, so the receiver sees `[sender name, envelope, payload]`);
/// - `ROUTER` → `DEALER`: `[routing id, envelope, payload]` on the sending side, and
///   the `DEALER` receives `[envelope, payload]`.
///
/// A node sends to a peer through its `DEALER` to that peer when it has one (so
/// everything from one node to another shares one ordered connection), and otherwise
/// back through its `ROUTER` to the routing id the peer connected with: that is how a
/// client that never listens (another language's `DEALER` socket, say) gets its replies.
/// `docs/wire-protocol.md` specifies this for implementers.
///
/// # Security
///
/// [`ZmqConfig::security`] must be chosen. With [`ZmqSecurity::Curve`] the `ROUTER` is a
/// CURVE server whose ZAP handler (in this transport's poll loop) admits only keys on
/// the [`AllowList`]; a frame is reported as coming from the name the list binds to the
/// key that authenticated its connection, and a routing id claiming another name is
/// refused ([`ZmqStats::impersonations`]); `DEALER`s accept only the server key the
/// list gives their peer and connect without a routing id. The list can be replaced
/// at run time ([`ZmqTransport::set_allow_list`], or by editing its file). With
/// [`ZmqSecurity::Plaintext`] nothing is authenticated or encrypted, and the routing
/// ids below are node names. `docs/security.md` has the threat model.
///
/// # Failure and limits
///
/// - `ZMQ_IMMEDIATE` on every `DEALER`: a frame is queued only on an established
///   connection. A send to a peer whose connection is not (or no longer) up fails at
///   once with [`TransportError::Unreachable`]; when a connection breaks, what was
///   queued on it is discarded with it, never carried over to the peer's next process.
/// - The `DEALER`'s monitor reports a lost connection as [`Incoming::PeerLost`] as soon
///   as libzmq sees it (at once for a killed process on the same host: the kernel
///   resets its connections; within `heartbeat_timeout` for a frozen or cut one) and a
///   re-established one as [`Incoming::PeerUp`]. Each loss is counted and logged
///   ([`ZmqStats::disconnects`], [`ZmqStats::sent_on_lost_connections`]).
/// - Monitors are read until their socket is destroyed, so libzmq's I/O thread never
///   blocks writing an event nobody reads; a closed socket lingers at most `linger`.
/// - `MAXMSGSIZE` is set on every socket: a peer that announces a larger frame has its
///   connection closed before anything is allocated.
/// - `ROUTER_MANDATORY`: a send to a routing id with no connection fails at once with
///   [`TransportError::Unreachable`]; a full queue (high-water mark) fails with
///   [`TransportError::Backpressure`]. Nothing is dropped silently.
/// - A message with the wrong number of frames is dropped and counted
///   ([`ZmqStats::malformed`]), with at most one log line per second.
///
/// # Examples
///
/// ```
/// use tern_executor::Runtime;
/// use tern_transport::{Incoming, Transport, ZmqConfig, ZmqTransport};
///
/// Runtime::new().unwrap().block_on(async {
///     let ctx = zmq::Context::new();
///     // In-process sockets have no handshake: plaintext (see `ZmqSecurity`).
///     let b = ZmqConfig::new("b").listen("inproc://doc-b").plaintext();
///     let b = ZmqTransport::bind_in(&ctx, b).unwrap();
///     let a = ZmqConfig::new("a").peer("b", "inproc://doc-b").plaintext();
///     let a = ZmqTransport::bind_in(&ctx, a).unwrap();
///     // Frames are queued only on an established connection: wait for it.
///     assert_eq!(a.recv().await, Incoming::PeerUp("b".into()));
///     a.send("b", b"env".to_vec(), b"pay".to_vec()).unwrap();
///     let got = b.recv().await;
///     assert_eq!(got, Incoming::Frame { from: "a".into(), envelope: b"env".to_vec(), payload: b"pay".to_vec() });
/// });
/// ```
#[derive(Clone)]
pub struct ZmqTransport {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for ZmqTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZmqTransport")
            .field("name", &self.inner.config.name)
            .field("endpoints", &self.inner.endpoints)
            .finish_non_exhaustive()
    }
}

/// Names the peer behind a `ROUTER` routing id: the id itself when it is a printable
/// name, otherwise `zmq:` and its hex (libzmq's generated ids start with a zero byte).
fn peer_name(id: &[u8]) -> NodeName {
    match std::str::from_utf8(id) {
        Ok(s) if !s.is_empty() && !s.starts_with("zmq:") && s.chars().all(|c| !c.is_control()) => {
            s.to_owned()
        }
        _ => {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            format!("zmq:{hex}")
        }
    }
}

/// The routing id behind a peer name (the inverse of [`peer_name`]).
fn routing_id(name: &str) -> Vec<u8> {
    if let Some(hex) = name.strip_prefix("zmq:")
        && hex.len() % 2 == 0
        && let Some(bytes) = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()
    {
        return bytes;
    }
    name.as_bytes().to_vec()
}

impl ZmqTransport {
    /// Binds and connects as `config` says, in a ZeroMQ context of its own.
    ///
    /// # Errors
    ///
    /// [`ZmqSetupError`] naming the bad value or the refused operation.
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn bind(config: ZmqConfig) -> Result<Self, ZmqSetupError> {
        Self::bind_in(&zmq::Context::new(), config)
    }

    /// Like [`ZmqTransport::bind`], in a given context (`inproc://` endpoints only reach
    /// sockets of the same context).
    ///
    /// # Errors
    ///
    /// As [`ZmqTransport::bind`].
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn bind_in(ctx: &zmq::Context, config: ZmqConfig) -> Result<Self, ZmqSetupError> {
        config.validate().map_err(ZmqSetupError::Config)?;
        let router = ctx.socket(zmq::ROUTER).map_err(zmq_err("ROUTER socket"))?;
        apply_common(&router, &config)?;
        router
            .set_router_mandatory(true)
            .map_err(zmq_err("ROUTER_MANDATORY"))?;
        let (zap, allow) = match &config.security {
            ZmqSecurity::Curve(curve) => {
                // The handler is bound before the ROUTER: libzmq admits any key when a
                // context has no ZAP handler.
                let zap = zap::bind(ctx)?;
                rotation::curve_server(&router, curve)?;
                // No handover: a connection's routing id is generated, or its own
                // name; another connection never takes it over (security.md).
                (Some(zap), curve.allow_list.clone())
            }
            _ => {
                // A restarted peer with the same name takes its connection over at once.
                router
                    .set_router_handover(true)
                    .map_err(zmq_err("ROUTER_HANDOVER"))?;
                if !config.listen.iter().all(|e| e.starts_with("inproc://")) {
                    tracing::warn!(name: "tern.transport.plaintext", node = %config.name,
                        "plaintext ZeroMQ: connections are neither authenticated nor encrypted");
                }
                (None, AllowList::new())
            }
        };
        let mut endpoints = Vec::new();
        for e in &config.listen {
            router.bind(e).map_err(zmq_err(format!("bind {e}")))?;
            let last = router
                .get_last_endpoint()
                .map_err(zmq_err("last endpoint"))?;
            endpoints.push(last.unwrap_or_else(|_| e.clone()));
        }
        let peers: Vec<(String, String)> = config
            .peers
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        let inner = Rc::new(Inner {
            config,
            ctx: ctx.clone(),
            router: Rc::new(ZmqSocket::new(router)),
            endpoints,
            dealers: RefCell::new(BTreeMap::new()),
            inbox: RefCell::new(Inbox::default()),
            stats: Cell::new(ZmqStats::default()),
            tasks: RefCell::new(Vec::new()),
            last_warning: Cell::new(None),
            flood: RefCell::new(inbound::Flood::default()),
            sources: RefCell::new(sources::Sources::default()),
            allow: RefCell::new(allow),
            routes: RefCell::new(BTreeMap::new()),
        });
        let t = Self { inner };
        let reader = t.clone();
        let router = t.inner.router.clone();
        let events = [
            zmq::SocketEvent::ACCEPTED,
            zmq::SocketEvent::DISCONNECTED,
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
            zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
            zmq::SocketEvent::HANDSHAKE_FAILED_AUTH,
        ]
        .iter()
        .fold(0u16, |acc, e| acc | e.to_raw());
        let monitor = monitor::monitor(&t.inner.ctx, t.inner.router.get_ref(), events)?;
        let weak = Rc::downgrade(&t.inner);
        tern_executor::spawn(monitor::watch_inbound(weak, monitor)).detach();
        t.inner
            .tasks
            .borrow_mut()
            .push(tern_executor::spawn(async move {
                reader.read_router(router).await;
            }));
        if let Some(zap) = zap {
            let weak = Rc::downgrade(&t.inner);
            t.inner
                .tasks
                .borrow_mut()
                .push(tern_executor::spawn(zap::serve(weak, zap)));
            if let ZmqSecurity::Curve(curve) = &t.inner.config.security
                && let Some(file) = &curve.allow_list_file
            {
                let task =
                    rotation::watch_file(Rc::downgrade(&t.inner), file.clone(), curve.reload_ivl);
                t.inner.tasks.borrow_mut().push(tern_executor::spawn(task));
            }
        }
        for (name, endpoint) in peers {
            t.connect(&name, &endpoint)?;
        }
        Ok(t)
    }

    /// The endpoints bound, with ports chosen by the system filled in
    /// (`tcp://127.0.0.1:0` becomes the real port).
    #[must_use]
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// Counters of what this transport did.
    #[must_use]
    pub fn stats(&self) -> ZmqStats {
        self.inner.stats.get()
    }

    /// Opens (or replaces) the connection to peer `name` at `endpoint`.
    ///
    /// # Errors
    ///
    /// [`ZmqSetupError`] if ZeroMQ refuses the socket or the endpoint.
    pub fn connect(&self, name: &str, endpoint: &str) -> Result<(), ZmqSetupError> {
        let config = &self.inner.config;
        let dealer = self
            .inner
            .ctx
            .socket(zmq::DEALER)
            .map_err(zmq_err("DEALER socket"))?;
        apply_common(&dealer, config)?;
        if let ZmqSecurity::Curve(curve) = &config.security {
            // The server must prove it holds the key the allow-list gives `name`; the
            // routing id is left to libzmq: the peer knows this node by its key.
            let server = self
                .inner
                .allow
                .borrow()
                .key_of(name)
                .copied()
                .ok_or_else(|| {
                    ZmqSetupError::Config(format!(
                        "peer {name:?} is not on the allow-list: its server key is unknown"
                    ))
                })?;
            rotation::curve_client(&dealer, curve, &server)?;
        } else {
            dealer
                .set_identity(config.name.as_bytes())
                .map_err(zmq_err("routing id"))?;
        }
        dealer
            .set_reconnect_ivl(ms(config.reconnect_ivl))
            .map_err(zmq_err("RECONNECT_IVL"))?;
        dealer
            .set_reconnect_ivl_max(ms(config.reconnect_ivl_max))
            .map_err(zmq_err("RECONNECT_IVL_MAX"))?;
        // Queue only on an established connection: no frame waits for a connection
        // that may come back to another process.
        dealer.set_immediate(true).map_err(zmq_err("IMMEDIATE"))?;
        let events = zmq::SocketEvent::DISCONNECTED.to_raw()
            | zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
            | monitor::handshake_failures();
        let monitor = monitor::monitor(&self.inner.ctx, &dealer, events)?;
        // The watcher starts before the connection, so it misses no event; if the
        // connect fails, dropping the socket stops it.
        let link = Rc::new(Link::default());
        let weak = Rc::downgrade(&self.inner);
        tern_executor::spawn(monitor::watch_peer(
            weak,
            name.to_owned(),
            link.clone(),
            monitor,
        ))
        .detach();
        if let Err(e) = dealer.connect(endpoint) {
            link.retired.set(true);
            return Err(zmq_err(format!("connect {endpoint}"))(e));
        }
        if endpoint.starts_with("inproc://") {
            // In-process pipes have no handshake and report no connection events:
            // the connection is up from the start (a send before the peer binds
            // fails with backpressure).
            link.connected.set(true);
            self.bump(|s| s.peer_up += 1);
            self.push(Incoming::PeerUp(name.to_owned()));
        }
        let dealer = Rc::new(ZmqSocket::new(dealer));
        let reader = self.clone();
        let (peer, socket) = (name.to_owned(), dealer.clone());
        let reader = tern_executor::spawn(async move { reader.read_dealer(peer, socket).await });
        let old = self.inner.dealers.borrow_mut().insert(
            name.to_owned(),
            Peer {
                dealer,
                endpoint: endpoint.to_owned(),
                link,
                reader,
            },
        );
        if let Some(old) = old {
            self.retire(name, old);
        }
        Ok(())
    }

    /// Closes a peer's connection: counted and logged.
    fn retire(&self, name: &str, old: Peer) {
        self.bump(|s| s.closed += 1);
        tracing::info!(node = %self.inner.config.name, peer = name, endpoint = %old.endpoint,
            connected = old.link.connected.get(), "connection closed");
        drop(old);
    }

    /// Stops reading and closes every socket (after `linger`).
    pub fn close(&self) {
        for mut t in self.inner.tasks.borrow_mut().drain(..) {
            t.abort();
        }
        let dealers = std::mem::take(&mut *self.inner.dealers.borrow_mut());
        for (name, peer) in dealers {
            self.retire(&name, peer);
        }
    }

    fn bump(&self, f: impl FnOnce(&mut ZmqStats)) {
        let mut s = self.inner.stats.get();
        f(&mut s);
        self.inner.stats.set(s);
    }
}

/// What a queued frame counts against the inbox's byte bound.
fn frame_bytes(incoming: &Incoming) -> usize {
    match incoming {
        Incoming::Frame {
            envelope, payload, ..
        } => envelope.len() + payload.len(),
        _ => 0,
    }
}

fn apply_common(s: &zmq::Socket, c: &ZmqConfig) -> Result<(), ZmqSetupError> {
    let max = i64::try_from(c.max_frame).unwrap_or(i64::MAX);
    s.set_maxmsgsize(max).map_err(zmq_err("MAXMSGSIZE"))?;
    s.set_sndhwm(c.send_hwm).map_err(zmq_err("SNDHWM"))?;
    s.set_rcvhwm(c.recv_hwm).map_err(zmq_err("RCVHWM"))?;
    s.set_linger(ms(c.linger)).map_err(zmq_err("LINGER"))?;
    s.set_handshake_ivl(ms(c.handshake_ivl))
        .map_err(zmq_err("HANDSHAKE_IVL"))?;
    s.set_heartbeat_ivl(ms(c.heartbeat_ivl))
        .map_err(zmq_err("HEARTBEAT_IVL"))?;
    s.set_heartbeat_timeout(ms(c.heartbeat_timeout))
        .map_err(zmq_err("HEARTBEAT_TIMEOUT"))?;
    s.set_heartbeat_ttl(ms(c.heartbeat_timeout))
        .map_err(zmq_err("HEARTBEAT_TTL"))?;
    Ok(())
}

impl Transport for ZmqTransport {
    fn local(&self) -> &str {
        &self.inner.config.name
    }

    fn learn_peer(&self, name: &str, address: &str) -> Result<(), TransportError> {
        let same = self
            .inner
            .dealers
            .borrow()
            .get(name)
            .is_some_and(|p| p.endpoint == address);
        if same || name == self.inner.config.name {
            return Ok(());
        }
        self.connect(name, address).map_err(|e| {
            tracing::warn!(node = %self.inner.config.name, peer = name, address, error = %e,
                "cannot connect to a discovered peer");
            TransportError::Unreachable(name.to_owned())
        })
    }

    fn connected(&self, name: &str) -> bool {
        self.inner
            .dealers
            .borrow()
            .get(name)
            .is_none_or(|p| p.link.connected.get())
    }

    fn forget_peer(&self, name: &str) {
        let old = self.inner.dealers.borrow_mut().remove(name);
        if let Some(old) = old {
            self.retire(name, old);
        }
    }

    fn send(&self, to: &str, envelope: Vec<u8>, payload: Vec<u8>) -> Result<(), TransportError> {
        let max = self.inner.config.max_frame;
        let len = envelope.len().max(payload.len());
        if len > max {
            self.bump(|s| s.too_large += 1);
            return Err(TransportError::TooLarge { len, max });
        }
        let peer = self
            .inner
            .dealers
            .borrow()
            .get(to)
            .map(|p| (p.dealer.clone(), p.link.clone()));
        if let Some((_, link)) = &peer
            && !link.connected.get()
        {
            self.bump(|s| s.unreachable += 1);
            return Err(TransportError::Unreachable(to.to_owned()));
        }
        let sent = match &peer {
            Some((d, _)) => d
                .get_ref()
                .send_multipart([envelope, payload], zmq::DONTWAIT),
            None => {
                let id = if self.is_curve() {
                    // Only to the connection the name last authenticated on.
                    let Some(id) = self.inner.routes.borrow().get(to).cloned() else {
                        self.bump(|s| s.unreachable += 1);
                        return Err(TransportError::Unreachable(to.to_owned()));
                    };
                    id
                } else {
                    routing_id(to)
                };
                self.inner
                    .router
                    .get_ref()
                    .send_multipart([id, envelope, payload], zmq::DONTWAIT)
            }
        };
        match sent {
            Ok(()) => {
                self.bump(|s| s.sent += 1);
                if let Some((_, link)) = &peer {
                    link.sent.set(link.sent.get() + 1);
                }
                Ok(())
            }
            // Fewer frames sent on this connection than the high-water mark: its
            // queue cannot be full, so the connection is gone and the monitor has
            // not said so yet (`ZMQ_IMMEDIATE` refuses frames with no connection).
            Err(zmq::Error::EAGAIN)
                if peer.as_ref().is_some_and(|(_, link)| {
                    link.sent.get() < u64::try_from(self.inner.config.send_hwm).unwrap_or(0)
                }) =>
            {
                self.bump(|s| s.unreachable += 1);
                Err(TransportError::Unreachable(to.to_owned()))
            }
            Err(zmq::Error::EAGAIN) => {
                self.bump(|s| s.backpressure += 1);
                Err(TransportError::Backpressure(to.to_owned()))
            }
            Err(e) => {
                self.bump(|s| s.unreachable += 1);
                if e != zmq::Error::EHOSTUNREACH {
                    tracing::warn!(node = %self.inner.config.name, peer = to, error = %e, "zmq send failed");
                }
                Err(TransportError::Unreachable(to.to_owned()))
            }
        }
    }

    async fn recv(&self) -> Incoming {
        poll_fn(|cx| {
            let mut inbox = self.inner.inbox.borrow_mut();
            match inbox.queue.pop_front() {
                Some(incoming) => {
                    inbox.bytes -= frame_bytes(&incoming);
                    for w in inbox.blocked.drain(..) {
                        w.wake();
                    }
                    Poll::Ready(incoming)
                }
                None => {
                    inbox.reader = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_round_trip_to_routing_ids() {
        assert_eq!(peer_name(b"node-a"), "node-a");
        assert_eq!(routing_id("node-a"), b"node-a");
        let generated = [0u8, 0x80, 0, 0x41, 0xa7];
        let name = peer_name(&generated);
        assert_eq!(name, "zmq:00800041a7");
        assert_eq!(routing_id(&name), generated);
        assert_eq!(peer_name(b"\x01\x02"), "zmq:0102");
        assert_eq!(peer_name(b""), "zmq:");
    }
}
