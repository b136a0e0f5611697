//! Inbound connections per source address, capped.
//!
//! libzmq accepts connections on its own I/O thread and never says where one comes
//! from, except in the `ROUTER` monitor's events: `ACCEPTED` carries the accepted
//! socket's file descriptor, as does the `DISCONNECTED` that ends it (whatever ended
//! it: the peer, a failed or timed-out handshake, a heartbeat timeout). The monitor's
//! reader asks the kernel for the remote address of each accepted descriptor
//! (`getpeername`) and counts the connections open per address; one past
//! [`ZmqConfig::max_connections_per_address`](super::ZmqConfig::max_connections_per_address)
//! is shut down at once (`shutdown(2)`: libzmq sees the connection end and cleans it
//! up as any other), counted in
//! [`ZmqStats::connections_refused`](super::ZmqStats::connections_refused) and logged
//! with the address. Its `DISCONNECTED` gives its place back.
//!
//! This happens before any handshake, so it bounds what the ZAP handler never sees:
//! connections that send nothing, or start a greeting and stall, each of which holds a
//! descriptor and libzmq's buffers until `handshake_ivl` closes it.
//!
//! The events are read a little after libzmq emits them. A connection that ends in
//! between can have its descriptor number reused by the next accepted one before its
//! `ACCEPTED` is read; the address read is then the newer connection's. The counts
//! stay balanced (each descriptor's `DISCONNECTED` undoes its own `ACCEPTED`), a
//! shutdown at that moment can only hit a connection from an address that is itself
//! over its cap, and one shutdown may close two refused connections while counting
//! one (under a flood of 4,000, `security_floods` saw about 5 % fewer counted than
//! closed). Connections over `ipc://` have no address and are not counted.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// The connections open now, by descriptor and by remote address.
#[derive(Debug, Default)]
pub(super) struct Sources {
    by_fd: BTreeMap<i32, IpAddr>,
    by_addr: BTreeMap<IpAddr, usize>,
}

impl Sources {
    /// A connection from `addr` was accepted on descriptor `fd`: counted. Returns
    /// whether `addr` is within `cap` with it (if not, it is to be shut down; it stays
    /// counted until its `DISCONNECTED`).
    pub(super) fn accepted(&mut self, fd: i32, addr: IpAddr, cap: usize) -> bool {
        // A descriptor seen open again without its close: that close was missed.
        self.closed(fd);
        self.by_fd.insert(fd, addr);
        let n = self.by_addr.entry(addr).or_insert(0);
        *n += 1;
        *n <= cap
    }

    /// The connection on descriptor `fd` ended.
    pub(super) fn closed(&mut self, fd: i32) {
        let Some(addr) = self.by_fd.remove(&fd) else {
            return;
        };
        if let Some(n) = self.by_addr.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.by_addr.remove(&addr);
            }
        }
    }

    /// Connections open now from `addr`.
    #[cfg(test)]
    pub(super) fn open_from(&self, addr: IpAddr) -> usize {
        self.by_addr.get(&addr).copied().unwrap_or(0)
    }
}

/// The remote IP address of the connected socket `fd`, if it is one.
pub(super) fn peer_address(fd: i32) -> Option<IpAddr> {
    use nix::sys::socket::{SockaddrStorage, getpeername};
    let addr: SockaddrStorage = getpeername(fd).ok()?;
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Ends the connection on `fd` (both directions); libzmq sees it closed.
pub(super) fn shut(fd: i32) {
    use nix::sys::socket::{Shutdown, shutdown};
    if let Err(e) = shutdown(fd, Shutdown::Both) {
        tracing::debug!(fd, error = %e, "shutdown of a refused connection failed (already closed)");
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn connections_are_counted_per_address_and_given_back_on_close() {
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        );
        let mut s = Sources::default();
        assert!(s.accepted(10, a, 2));
        assert!(s.accepted(11, a, 2));
        assert!(!s.accepted(12, a, 2), "the third from one address");
        assert!(s.accepted(13, b, 2), "another address has its own cap");
        assert_eq!((s.open_from(a), s.open_from(b)), (3, 1));
        s.closed(12);
        s.closed(10);
        assert_eq!(s.open_from(a), 1);
        assert!(s.accepted(14, a, 2));
        // A descriptor reused without its close seen: the old one is given back.
        assert!(s.accepted(11, b, 2));
        assert_eq!((s.open_from(a), s.open_from(b)), (1, 2));
        s.closed(99);
        for fd in [11, 13, 14] {
            s.closed(fd);
        }
        assert_eq!((s.open_from(a), s.open_from(b)), (0, 0));
        assert!(s.by_fd.is_empty() && s.by_addr.is_empty());
    }

    #[test]
    fn the_remote_address_of_a_loopback_connection_is_read() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, from) = listener.accept().expect("accept");
        assert_eq!(peer_address(server.as_raw_fd()), Some(from.ip()));
        shut(server.as_raw_fd());
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &client, &mut buf).ok(), Some(0));
        assert_eq!(peer_address(listener.as_raw_fd()), None);
    }
}
