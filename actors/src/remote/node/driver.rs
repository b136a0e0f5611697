//! The driver: one task per node that feeds the router what the transport receives
//! and wakes it with a single timer at [`Router::poll_timeout`], and the sending half
//! every caller uses to hand the router's frames to the transport at once.
//!
//! [`Router::poll_timeout`]: super::Router::poll_timeout

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Context, Poll};

use tern_executor::Instant;
use tern_executor::time::{self, Sleep};
use tern_proto::session::Transmit;
use tern_transport::{Incoming, Transport, TransportError};

use super::{Node, now};
use crate::remote::router::Reach;

/// The sending half of a transport, as the node's callers use it (the driver task
/// owns the receiving half, monomorphized over the transport's type).
pub(in crate::remote) trait Link {
    /// Queues a frame pair.
    fn send(&self, t: Transmit) -> Result<(), TransportError>;
    /// Whether a frame for `peer` can be queued now.
    fn connected(&self, peer: &str) -> bool;
    /// Learns where `peer` is reached.
    fn learn(&self, peer: &str, address: &str) -> Result<(), TransportError>;
    /// Forgets `peer` (it died or left).
    fn forget(&self, peer: &str);
}

impl<T: Transport> Link for T {
    fn send(&self, t: Transmit) -> Result<(), TransportError> {
        Transport::send(self, &t.peer, t.envelope, t.payload)
    }

    fn connected(&self, peer: &str) -> bool {
        Transport::connected(self, peer)
    }

    fn learn(&self, peer: &str, address: &str) -> Result<(), TransportError> {
        self.learn_peer(peer, address)
    }

    fn forget(&self, peer: &str) {
        self.forget_peer(peer);
    }
}

impl Reach for dyn Link {
    fn connected(&self, peer: &str) -> bool {
        Link::connected(self, peer)
    }
}

impl Node {
    /// The node's one task: receives from `transport`, fires the router's timer, and
    /// hands over answers completed while the router was busy. Never waits for a
    /// mailbox.
    pub(super) async fn drive<T: Transport>(&self, transport: &T) {
        let mut timer: Option<Sleep> = None;
        loop {
            let incoming = {
                let mut recv = pin!(transport.recv());
                poll_fn(|cx| {
                    if let Poll::Ready(incoming) = recv.as_mut().poll(cx) {
                        return Poll::Ready(incoming);
                    }
                    self.service(cx, &mut timer);
                    Poll::Pending
                })
                .await
            };
            self.on_incoming(incoming);
        }
    }

    /// Everything the driver does besides receiving: answers, then the timer (fired as
    /// often as it is due, then armed at the router's next timeout).
    fn service(&self, cx: &mut Context<'_>, timer: &mut Option<Sleep>) {
        let waker = self.shared.driver.take();
        match waker {
            Some(w) if w.will_wake(cx.waker()) => self.shared.driver.set(Some(w)),
            _ => self.shared.driver.set(Some(cx.waker().clone())),
        }
        if !self.shared.answers.borrow().is_empty() {
            self.flush_answers();
        }
        loop {
            let want = self.shared.router.borrow().poll_timeout();
            self.shared.armed.set(want);
            let Some(at) = want else {
                *timer = None;
                return;
            };
            let at = Instant::from_nanos(at);
            let sleep = match timer {
                Some(s) => {
                    if s.deadline() != at {
                        s.reset(at);
                    }
                    s
                }
                None => timer.insert(time::sleep_until(at)),
            };
            if std::pin::Pin::new(sleep).poll(cx).is_pending() {
                return;
            }
            let now = now();
            self.shared
                .router
                .borrow_mut()
                .handle_timeout(now, &*self.shared.link);
            self.pump(now);
        }
    }

    /// Wakes the driver if the router's next timeout is earlier than its timer.
    pub(super) fn rearm(&self) {
        let Ok(router) = self.shared.router.try_borrow() else {
            return;
        };
        let want = router.poll_timeout();
        drop(router);
        let armed = self.shared.armed.get();
        let earlier = match (want, armed) {
            (Some(w), Some(a)) => w < a,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if earlier {
            self.wake_driver();
        }
    }

    pub(super) fn wake_driver(&self) {
        if let Some(w) = self.shared.driver.take() {
            w.wake_by_ref();
            self.shared.driver.set(Some(w));
        }
    }

    fn on_incoming(&self, incoming: Incoming) {
        let now = now();
        {
            let link = &*self.shared.link;
            let mut router = self.shared.router.borrow_mut();
            match incoming {
                Incoming::Frame {
                    from,
                    envelope,
                    payload,
                } => {
                    let bytes = envelope.len() + payload.len();
                    self.shared.traffic.borrow_mut().received(&from, bytes);
                    router.handle_frame(now, link, &from, &envelope, payload);
                }
                Incoming::PeerLost(peer) => router.handle_peer_lost(now, link, &peer),
                Incoming::PeerUp(peer) => router.handle_peer_up(now, link, &peer),
            }
        }
        self.pump(now);
    }

    /// Hands the router's frames to the transport; counts and logs refusals and
    /// returns the first.
    pub(super) fn flush(&self) -> Result<(), TransportError> {
        let mut first = Ok(());
        loop {
            let Ok(mut router) = self.shared.router.try_borrow_mut() else {
                // Inside one of the router's own calls: the caller flushes after it.
                return first;
            };
            let Some(t) = router.poll_transmit() else {
                return first;
            };
            drop(router);
            // Counted as handed over; a refusal is counted in `send_failures` too.
            let bytes = t.envelope.len() + t.payload.len();
            self.shared.traffic.borrow_mut().sent(&t.peer, bytes);
            if let Err(e) = self.shared.link.send(t) {
                self.shared.router.borrow_mut().stats_mut().send_failures += 1;
                tracing::debug!(node = %self.name(), error = %e, "frame not sent");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
    }
}
