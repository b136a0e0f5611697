//! Async readiness for any file descriptor (UDP sockets, pipes, listeners).

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;

use super::sources::{Direction, Registration, SourceKind};

/// An I/O object registered with the runtime's reactor through its raw descriptor
/// (`zmq::PollItem::from_fd`).
///
/// The object must be in non-blocking mode (for a `std::net::UdpSocket`, call
/// `set_nonblocking(true)`); operations run through [`Async::read_with`] and
/// [`Async::write_with`] retry until they stop returning `WouldBlock`.
///
/// # Examples
///
/// ```
/// use std::net::UdpSocket;
/// use tern_executor::{Async, Runtime};
///
/// let rt = Runtime::new().unwrap();
/// rt.block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     a.set_nonblocking(true).unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     b.set_nonblocking(true).unwrap();
///     let (a, b) = (Async::new(a), Async::new(b));
///     let to = b.get_ref().local_addr().unwrap();
///     a.write_with(|s| s.send_to(b"ping", to)).await.unwrap();
///     let mut buf = [0u8; 16];
///     let (n, _) = b.read_with(|s| s.recv_from(&mut buf)).await.unwrap();
///     assert_eq!(&buf[..n], b"ping");
/// });
/// ```
#[derive(Debug)]
pub struct Async<T: AsRawFd> {
    reg: Registration,
    io: T,
}

impl<T: AsRawFd> Async<T> {
    /// Registers `io` (already non-blocking) with the current runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn new(io: T) -> Self {
        Self {
            reg: Registration::new(SourceKind::Fd(io.as_raw_fd())),
            io,
        }
    }

    /// The I/O object.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Waits for a readiness report for reading (possibly spurious).
    pub async fn readable(&self) {
        let mut first = true;
        poll_fn(|cx| {
            self.reg.poll_ready(Direction::Read, cx, || {
                !std::mem::replace(&mut first, false)
            })
        })
        .await;
    }

    /// Waits for a readiness report for writing (possibly spurious).
    pub async fn writable(&self) {
        let mut first = true;
        poll_fn(|cx| {
            self.reg.poll_ready(Direction::Write, cx, || {
                !std::mem::replace(&mut first, false)
            })
        })
        .await;
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting for readability between
    /// tries.
    ///
    /// # Errors
    ///
    /// Whatever `op` returns other than `WouldBlock`.
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable().await,
                other => return other,
            }
        }
    }

    /// Runs `op` until it does not return `WouldBlock`, waiting for writability between
    /// tries.
    ///
    /// # Errors
    ///
    /// Whatever `op` returns other than `WouldBlock`.
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await,
                other => return other,
            }
        }
    }
}
