//! The UDP driver: a non-blocking socket from socket2, registered in the executor's
//! reactor beside the ZeroMQ sockets.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tern_executor::Async;

use crate::driver::Datagrams;
use crate::error::DriverError;

/// A UDP socket in the current runtime's poll loop.
///
/// ```
/// use tern_discovery::{Datagrams, UdpSocket};
///
/// tern_executor::Runtime::new().unwrap().block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
///     a.send_to(b.local_addr(), b"hello");
///     let (from, data) = b.recv_from().await;
///     assert_eq!((from, data.as_slice()), (a.local_addr(), &b"hello"[..]));
/// });
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
    local: SocketAddr,
    buf: RefCell<Vec<u8>>,
    send_errors: std::cell::Cell<u64>,
}

impl UdpSocket {
    /// Binds `addr` (port 0 picks a free port), non-blocking, with a 1 MiB receive
    /// buffer where the OS allows it, and registers it with the current runtime.
    ///
    /// # Errors
    ///
    /// [`DriverError::Bind`].
    ///
    /// # Panics
    ///
    /// Outside a tern runtime.
    pub fn bind(addr: SocketAddr) -> Result<Self, DriverError> {
        let bind = |e| DriverError::Bind { addr, source: e };
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
            .map_err(bind)?;
        socket.set_nonblocking(true).map_err(bind)?;
        // Bursts (anti-entropy answers) must not overflow a small default buffer.
        let _ = socket.set_recv_buffer_size(1 << 20);
        socket.bind(&addr.into()).map_err(bind)?;
        let std: std::net::UdpSocket = socket.into();
        let local = std.local_addr().map_err(bind)?;
        Ok(Self {
            io: Async::new(std),
            local,
            buf: RefCell::new(vec![0; 65_536]),
            send_errors: std::cell::Cell::new(0),
        })
    }

    /// The bound address.
    #[must_use]
    pub const fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams the OS refused to send (a full buffer, an unreachable network).
    #[must_use]
    pub fn send_errors(&self) -> u64 {
        self.send_errors.get()
    }
}

impl Datagrams for UdpSocket {
    fn send_to(&self, to: SocketAddr, data: &[u8]) {
        if let Err(e) = self.io.get_ref().send_to(data, to) {
            self.send_errors.set(self.send_errors.get() + 1);
            tracing::debug!(%to, error = %e, "gossip datagram not sent");
        }
    }

    async fn recv_from(&self) -> (SocketAddr, Vec<u8>) {
        loop {
            if let Some(d) = self.try_recv_from() {
                return d;
            }
            self.io.readable().await;
        }
    }

    fn try_recv_from(&self) -> Option<(SocketAddr, Vec<u8>)> {
        let mut buf = self.buf.borrow_mut();
        loop {
            match self.io.get_ref().recv_from(&mut buf) {
                Ok((n, from)) => return Some((from, buf[..n].to_vec())),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                // ICMP errors of earlier sends (connection refused) and the like: skip.
                Err(e) => {
                    tracing::trace!(error = %e, "gossip socket error skipped");
                }
            }
        }
    }
}
