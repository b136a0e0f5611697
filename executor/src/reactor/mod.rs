//! The reactor: readiness for ZeroMQ sockets and raw file descriptors through one
//! `zmq::poll`.
//!
//! Each turn the reactor builds the poll set from the sources some task is waiting on,
//! plus the notify descriptor, and calls `zmq::poll` with a timeout of zero (work is
//! waiting), the time to the next timer (idle), or forever (idle, no timers). Readiness
//! is a hint: the I/O wrappers retry their operation until it would block, and check
//! `ZMQ_EVENTS` again after every send or receive, as libzmq requires.
//!
//! Without the `zmq` feature (on by default) there are no I/O sources: the reactor only
//! waits for the notify descriptor or the next timer (`wait.rs`). That build runs
//! tasks, timers and cross-thread wakes without linking libzmq, which is what the loom
//! models and the fuzz targets need.

#[cfg(feature = "zmq")]
mod fd;
mod notify;
#[cfg(feature = "zmq")]
mod sources;
#[cfg(not(feature = "zmq"))]
mod wait;
#[cfg(feature = "zmq")]
mod zmq_socket;

#[cfg(feature = "zmq")]
pub use fd::Async;
pub(crate) use notify::{Notifier, NotifyReader};
#[cfg(feature = "zmq")]
use sources::Source;
#[cfg(feature = "zmq")]
pub use zmq_socket::{Interest, ZmqSocket};

#[cfg(feature = "zmq")]
use std::rc::Rc;

#[cfg(feature = "zmq")]
use slab::Slab;

/// The reactor's state, owned by the runtime.
#[derive(Debug, Default)]
pub(crate) struct Reactor {
    notify: Option<NotifyReader>,
    #[cfg(feature = "zmq")]
    pub(crate) sources: Slab<Rc<Source>>,
}

impl Reactor {
    pub(crate) fn new() -> Self {
        Self {
            notify: None,
            #[cfg(feature = "zmq")]
            sources: Slab::new(),
        }
    }

    /// Whether any I/O source is registered (never, without the `zmq` feature).
    pub(crate) fn has_sources(&self) -> bool {
        #[cfg(feature = "zmq")]
        return !self.sources.is_empty();
        #[cfg(not(feature = "zmq"))]
        false
    }

    pub(crate) fn has_notify(&self) -> bool {
        self.notify.is_some()
    }

    pub(crate) fn set_notify(&mut self, reader: NotifyReader) {
        self.notify = Some(reader);
    }

    pub(crate) fn drain_notify(&mut self) {
        if let Some(n) = &mut self.notify {
            n.drain();
        }
    }
}
