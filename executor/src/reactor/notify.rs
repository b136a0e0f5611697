//! The notify descriptor: how another thread interrupts the reactor's poll.

use std::io::{self, Read, Write};
#[cfg(feature = "zmq")]
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
#[cfg(not(feature = "zmq"))]
use std::time::Duration;

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
    #[cfg(feature = "zmq")]
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Blocks until a signal arrives or `timeout` passes (`None`: no limit); used by the
    /// reactor without the `zmq` feature. Reading the signal is as good as draining it:
    /// the park state, not the descriptor, records that a wake happened.
    #[cfg(not(feature = "zmq"))]
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) {
        if timeout == Some(Duration::ZERO) {
            return;
        }
        let mut byte = [0u8; 1];
        // Blocking with a timeout (zero is refused by `set_read_timeout`, hence the
        // check above), then back to non-blocking for `drain`. Errors (the writer gone,
        // a timeout) end the wait.
        if self.rx.set_nonblocking(false).is_ok() && self.rx.set_read_timeout(timeout).is_ok() {
            let _ = self.rx.read(&mut byte);
        }
        let _ = self.rx.set_nonblocking(true);
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
