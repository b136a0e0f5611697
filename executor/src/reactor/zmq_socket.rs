//! An async ZeroMQ socket on the runtime's reactor.

use std::future::poll_fn;

use super::sources::{Direction, Registration, SourceKind};
use crate::error::Error;

/// A ZeroMQ socket whose sends and receives wait in the runtime's reactor instead of
/// blocking the thread.
///
/// Operations try the socket without blocking first and wait for readiness only on
/// `EAGAIN`; readiness is re-read from `ZMQ_EVENTS` after every operation, because
/// libzmq may change it without signalling its descriptor.
///
/// # Examples
///
/// ```
/// use tern_executor::{Runtime, ZmqSocket};
///
/// let ctx = zmq::Context::new();
/// let rt = Runtime::new().unwrap();
/// rt.block_on(async {
///     let pull = ZmqSocket::new(ctx.socket(zmq::PULL).unwrap());
///     pull.get_ref().bind("inproc://doc").unwrap();
///     let push = ZmqSocket::new(ctx.socket(zmq::PUSH).unwrap());
///     push.get_ref().connect("inproc://doc").unwrap();
///     push.send(b"hi", 0).await.unwrap();
///     assert_eq!(pull.recv_bytes().await.unwrap(), b"hi");
/// });
/// ```
#[derive(Debug)]
pub struct ZmqSocket {
    reg: Registration,
}

impl ZmqSocket {
    /// Registers `socket` with the current runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[must_use]
    pub fn new(socket: zmq::Socket) -> Self {
        Self {
            reg: Registration::new(SourceKind::Zmq(socket)),
        }
    }

    /// The underlying socket, for options, `bind` and `connect`.
    #[must_use]
    pub fn get_ref(&self) -> &zmq::Socket {
        match &self.reg.source.kind {
            SourceKind::Zmq(s) => s,
            SourceKind::Fd(_) => unreachable!("a ZmqSocket always registers a zmq source"),
        }
    }

    fn events(&self) -> zmq::PollEvents {
        self.get_ref()
            .get_events()
            .unwrap_or(zmq::POLLIN | zmq::POLLOUT)
    }

    /// Waits until the socket reports it can receive.
    pub async fn readable(&self) {
        poll_fn(|cx| {
            self.reg
                .poll_ready(Direction::Read, cx, || self.events().contains(zmq::POLLIN))
        })
        .await;
    }

    /// Waits until the socket reports it can send.
    pub async fn writable(&self) {
        poll_fn(|cx| {
            self.reg.poll_ready(Direction::Write, cx, || {
                self.events().contains(zmq::POLLOUT)
            })
        })
        .await;
    }

    /// Runs a non-blocking operation, waiting in the reactor while it returns `EAGAIN`.
    pub async fn with<T>(
        &self,
        dir: Interest,
        mut op: impl FnMut(&zmq::Socket) -> zmq::Result<T>,
    ) -> Result<T, Error> {
        loop {
            match op(self.get_ref()) {
                Err(zmq::Error::EAGAIN) => match dir {
                    Interest::Read => self.readable().await,
                    Interest::Write => self.writable().await,
                },
                other => return other.map_err(Error::from),
            }
        }
    }

    /// Sends one frame; `flags` may include `zmq::SNDMORE`.
    ///
    /// # Errors
    ///
    /// Any ZeroMQ error other than `EAGAIN` (for example `EHOSTUNREACH` from a ROUTER
    /// with `ROUTER_MANDATORY`).
    pub async fn send(&self, data: &[u8], flags: i32) -> Result<(), Error> {
        self.with(Interest::Write, |s| s.send(data, flags | zmq::DONTWAIT))
            .await
    }

    /// Sends a multipart message atomically.
    ///
    /// # Errors
    ///
    /// As [`ZmqSocket::send`].
    pub async fn send_multipart<I, T>(&self, parts: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let parts: Vec<T> = parts.into_iter().collect();
        let last = parts.len().saturating_sub(1);
        for (i, p) in parts.iter().enumerate() {
            let more = if i < last { zmq::SNDMORE } else { 0 };
            self.send(p.as_ref(), more).await?;
        }
        Ok(())
    }

    /// Receives one frame.
    ///
    /// # Errors
    ///
    /// Any ZeroMQ error other than `EAGAIN`.
    pub async fn recv_bytes(&self) -> Result<Vec<u8>, Error> {
        self.with(Interest::Read, |s| s.recv_bytes(zmq::DONTWAIT))
            .await
    }

    /// Receives every frame of one message.
    ///
    /// # Errors
    ///
    /// Any ZeroMQ error other than `EAGAIN`.
    pub async fn recv_multipart(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.with(Interest::Read, |s| s.recv_multipart(zmq::DONTWAIT))
            .await
    }
}

/// Which readiness [`ZmqSocket::with`] waits for on `EAGAIN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Wait until the socket can receive.
    Read,
    /// Wait until the socket can send.
    Write,
}
