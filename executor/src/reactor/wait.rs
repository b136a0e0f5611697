//! The reactor without the `zmq` feature: no I/O sources, so a poll only waits for
//! the notify descriptor (a cross-thread wake) or the timeout (the next timer).

use std::task::Waker;
use std::time::Duration;

use super::Reactor;

impl Reactor {
    /// Waits until another thread signals the notify descriptor or `timeout` passes
    /// (`None`: until signalled). There are no sources to report, so the list of
    /// wakers is always empty; the caller drains the descriptor when it was signalled.
    pub(crate) fn poll(&mut self, timeout: Option<Duration>) -> Vec<Waker> {
        if let Some(n) = &mut self.notify {
            n.wait(timeout);
        }
        Vec::new()
    }
}
