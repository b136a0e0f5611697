//! SIGINT and SIGTERM as an awaitable event on the container's thread.
//!
//! The handlers only write a byte to a pipe (async-signal-safe, through `signal-hook`);
//! the read end sits in the executor's reactor like any socket, so no thread is spawned
//! and the stop is handled between messages, never inside a handler.

use std::io::Read;
use std::os::unix::net::UnixStream;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::pipe;
use tern_executor::Async;

/// The read end of the signal pipe.
pub(crate) struct Stop {
    read: Async<UnixStream>,
    ids: Vec<signal_hook::SigId>,
}

impl Stop {
    /// Installs the handlers.
    pub(crate) fn install() -> std::io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let ids = vec![
            pipe::register(SIGINT, write.try_clone()?)?,
            pipe::register(SIGTERM, write)?,
        ];
        Ok(Self {
            read: Async::new(read),
            ids,
        })
    }

    /// Waits for SIGINT or SIGTERM; returns which, as text.
    pub(crate) async fn wait(&self) -> &'static str {
        let mut byte = [0u8; 1];
        match self.read.read_with(|mut s| s.read(&mut byte)).await {
            Ok(1) => "SIGINT or SIGTERM",
            // A closed or failing pipe cannot deliver signals any more: treat it as a
            // stop rather than spin.
            Ok(_) | Err(_) => "signal pipe closed",
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
