//! The notify descriptor: how another thread interrupts `zmq::poll`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use crate::parker::Signal;

/// The writing end, shared with every thread that can wake the runtime.
#[derive(Debug)]
pub(crate) struct Notifier {
    tx: UnixStream,
}

/// The reading end, in the reactor's poll set.
#[derive(Debug)]
pub(crate) struct NotifyReader {
    rx: UnixStream,
}

impl Notifier {
    /// A connected, non-blocking pair.
    pub(crate) fn pair() -> io::Result<(Self, NotifyReader)> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok((Self { tx }, NotifyReader { rx }))
    }
}

impl Signal for Notifier {
    fn signal(&self) {
        // A full socket buffer already holds a pending wake-up, so WouldBlock is fine;
        // any other error means the reader is gone with its runtime.
        let _ = (&self.tx).write(&[1]);
    }
}

impl NotifyReader {
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Empties the descriptor so the next poll blocks again.
    pub(crate) fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.rx.read(&mut buf) {
            if n < buf.len() {
                break;
            }
        }
    }
}

/// The runtime's notifier, once it exists: before the runtime first blocks there is
/// nothing to interrupt, so a signal then does nothing.
impl Signal for std::sync::OnceLock<Notifier> {
    fn signal(&self) {
        if let Some(n) = self.get() {
            n.signal();
        }
    }
}
