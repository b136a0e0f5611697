//! I/O sources (ZeroMQ sockets and raw descriptors), their registrations, and the
//! reactor's `zmq::poll` over them.

use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::Reactor;
use crate::runtime::Core;

/// What a registered source is.
pub(crate) enum SourceKind {
    Zmq(zmq::Socket),
    Fd(RawFd),
}

impl std::fmt::Debug for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zmq(_) => f.write_str("Zmq"),
            Self::Fd(fd) => write!(f, "Fd({fd})"),
        }
    }
}

/// A registered I/O source and the tasks waiting on it.
pub(crate) struct Source {
    pub(crate) kind: SourceKind,
    reader: Cell<Option<Waker>>,
    writer: Cell<Option<Waker>>,
}

/// Which direction a task waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Source {
    fn slot(&self, dir: Direction) -> &Cell<Option<Waker>> {
        match dir {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }

    fn interest(&self) -> zmq::PollEvents {
        let mut ev = zmq::PollEvents::empty();
        let r = self.reader.take();
        if r.is_some() {
            ev |= zmq::POLLIN;
        }
        self.reader.set(r);
        let w = self.writer.take();
        if w.is_some() {
            ev |= zmq::POLLOUT;
        }
        self.writer.set(w);
        ev
    }
}

/// The registration of a source in the current runtime's reactor; deregisters on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    core: Rc<Core>,
    key: usize,
    pub(crate) source: Rc<Source>,
}

impl Registration {
    pub(crate) fn new(kind: SourceKind) -> Self {
        let core = Core::current();
        let source = Rc::new(Source {
            kind,
            reader: Cell::new(None),
            writer: Cell::new(None),
        });
        let key = core.reactor.borrow_mut().sources.insert(source.clone());
        Self { core, key, source }
    }

    /// Records the task's interest in `dir`; the reactor wakes it on readiness.
    pub(crate) fn register(&self, dir: Direction, cx: &mut Context<'_>) {
        let slot = self.source.slot(dir);
        let old = slot.take();
        match old {
            Some(w) if w.will_wake(cx.waker()) => slot.set(Some(w)),
            _ => slot.set(Some(cx.waker().clone())),
        }
    }

    /// Waits for the source to report readiness in `dir` once (a hint, not a promise).
    pub(crate) fn poll_ready(
        &self,
        dir: Direction,
        cx: &mut Context<'_>,
        ready_now: impl FnOnce() -> bool,
    ) -> Poll<()> {
        if ready_now() {
            return Poll::Ready(());
        }
        self.register(dir, cx);
        Poll::Pending
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut r) = self.core.reactor.try_borrow_mut()
            && r.sources.contains(self.key)
        {
            r.sources.remove(self.key);
        }
    }
}

impl Reactor {
    /// Polls the notify descriptor and every source a task waits on; returns the wakers
    /// of the ready ones. `None` blocks until something happens.
    pub(crate) fn poll(&mut self, timeout: Option<Duration>) -> Vec<Waker> {
        let active: Vec<(Rc<Source>, zmq::PollEvents)> = self
            .sources
            .iter()
            .filter_map(|(_, s)| {
                let ev = s.interest();
                (!ev.is_empty()).then(|| (s.clone(), ev))
            })
            .collect();
        let mut items = Vec::with_capacity(active.len() + 1);
        let first = usize::from(self.notify.is_some());
        if let Some(n) = &self.notify {
            items.push(zmq::PollItem::from_fd(n.fd(), zmq::POLLIN));
        }
        for (s, ev) in &active {
            items.push(match &s.kind {
                SourceKind::Zmq(sock) => sock.as_poll_item(*ev),
                SourceKind::Fd(fd) => zmq::PollItem::from_fd(*fd, *ev),
            });
        }
        let timeout_ms = match timeout {
            None => -1,
            // Round up so a timer is never reported early.
            Some(d) => i64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(i64::MAX),
        };
        let mut woken = Vec::new();
        match zmq::poll(&mut items, timeout_ms) {
            Ok(0) => return woken,
            Ok(_) => {}
            Err(zmq::Error::EINTR) => return woken,
            Err(e) => {
                tracing::error!(error = %e, "zmq::poll failed");
                return woken;
            }
        }
        if first == 1 && items[0].is_readable() {
            self.drain_notify();
        }
        for (item, (s, _)) in items[first..].iter().zip(&active) {
            let err = item.is_error();
            if item.is_readable() || err {
                woken.extend(s.reader.take());
            }
            if item.is_writable() || err {
                woken.extend(s.writer.take());
            }
        }
        woken
    }
}
