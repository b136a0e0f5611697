//! Reading the `ROUTER` and the `DEALER`s: frames into the inbox, and what a CURVE
//! transport refuses (frames whose key is not, or no longer, on the allow-list, and
//! frames whose routing id claims another node's name).

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use tern_executor::time::{self, Duration, Instant};
use tern_executor::{Interest, ZmqSocket};

use super::keys::decode_key;
use super::{ZmqTransport, peer_name};
use crate::{Incoming, NodeName};

/// Remote addresses whose refusals are remembered for flood control; past this the
/// memory is cleared (a flood from many addresses still logs at most this many lines a
/// second).
const FLOOD_ADDRESSES: usize = 1024;

/// At most one refusal line a second per remote address; the lines skipped are
/// counted in the next one.
#[derive(Debug, Default)]
pub(super) struct Flood {
    last: BTreeMap<String, (Instant, u64)>,
}

impl Flood {
    /// Whether to log now for `address`, and how many lines were skipped before.
    fn admit(&mut self, address: &str, now: Instant) -> Option<u64> {
        if let Some((at, skipped)) = self.last.get_mut(address) {
            if now.saturating_duration_since(*at) < Duration::from_secs(1) {
                *skipped += 1;
                return None;
            }
            let n = *skipped;
            *at = now;
            *skipped = 0;
            return Some(n);
        }
        if self.last.len() >= FLOOD_ADDRESSES {
            self.last.clear();
        }
        self.last.insert(address.to_owned(), (now, 0));
        Some(0)
    }
}

impl ZmqTransport {
    /// Logs a refused connection or frame, at most once a second per address.
    pub(super) fn refused(&self, why: &str, address: &str) {
        let now = time::now();
        if let Some(skipped) = self.inner.flood.borrow_mut().admit(address, now) {
            tracing::warn!(name: "tern.transport.refused", node = %self.inner.config.name,
                remote = address, why, skipped, "zmq input refused");
        }
    }

    /// Logs dropped input at most once a second.
    pub(super) fn warn(&self, what: &str, peer: &str) {
        let now = time::now();
        let quiet = self
            .inner
            .last_warning
            .get()
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
        if !quiet {
            self.inner.last_warning.set(Some(now));
            tracing::warn!(node = %self.inner.config.name, peer, what, "zmq input dropped");
        }
    }

    pub(super) async fn room(&self) {
        poll_fn(|cx| {
            let mut inbox = self.inner.inbox.borrow_mut();
            let config = &self.inner.config;
            if inbox.queue.len() < config.inbox_capacity && inbox.bytes < config.inbox_bytes {
                Poll::Ready(())
            } else {
                inbox.blocked.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }

    pub(super) fn push(&self, incoming: Incoming) {
        let mut inbox = self.inner.inbox.borrow_mut();
        inbox.bytes += super::frame_bytes(&incoming);
        inbox.queue.push_back(incoming);
        if let Some(w) = inbox.reader.take() {
            w.wake();
        }
    }

    /// The name a CURVE frame comes from: the allow-list's name for the key it was
    /// authenticated with (its User-Id), provided its routing id is generated (a zero
    /// first byte) or that same name. Anything else is refused, counted and logged.
    fn authenticate(&self, id: &[u8], envelope: &mut zmq::Message) -> Option<NodeName> {
        let key = envelope
            .gets("User-Id")
            .and_then(|u| decode_key(u, "User-Id").ok());
        let name = key.and_then(|k| self.name_of_key(&k));
        let address =
            |e: &mut zmq::Message| e.gets("Peer-Address").unwrap_or("(unknown)").to_owned();
        let Some(name) = name else {
            self.bump(|s| s.unauthenticated += 1);
            let why = if key.is_some() {
                "a frame under a key no longer on the allow-list"
            } else {
                "a frame without CURVE authentication"
            };
            self.refused(why, &address(envelope));
            return None;
        };
        if !id.is_empty() && id[0] != 0 && id != name.as_bytes() {
            self.bump(|s| s.impersonations += 1);
            let why = format!(
                "{name:?} claimed the routing id {:?}",
                peer_name(id).chars().take(64).collect::<String>()
            );
            self.refused(&why, &address(envelope));
            return None;
        }
        let mut routes = self.inner.routes.borrow_mut();
        if routes.get(&name).is_none_or(|r| r != id) {
            routes.insert(name.clone(), id.to_vec());
        }
        Some(name)
    }

    pub(super) async fn read_router(&self, router: Rc<ZmqSocket>) {
        let curve = self.is_curve();
        loop {
            self.room().await;
            let frames = match router.with(Interest::Read, recv_messages).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(node = %self.inner.config.name, error = %e, "ROUTER receive failed");
                    time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut it = frames.into_iter();
            match (it.next(), it.next(), it.next(), it.next()) {
                (Some(id), Some(mut envelope), Some(payload), None) => {
                    let from = if curve {
                        match self.authenticate(&id, &mut envelope) {
                            Some(name) => name,
                            None => continue,
                        }
                    } else {
                        peer_name(&id)
                    };
                    self.bump(|s| s.received += 1);
                    self.push(Incoming::Frame {
                        from,
                        envelope: envelope.to_vec(),
                        payload: payload.to_vec(),
                    });
                }
                (id, ..) => {
                    self.bump(|s| s.malformed += 1);
                    self.warn(
                        "a message without exactly an envelope and a payload frame",
                        &peer_name(id.as_deref().unwrap_or_default()),
                    );
                }
            }
        }
    }

    pub(super) async fn read_dealer(&self, peer: NodeName, dealer: Rc<ZmqSocket>) {
        loop {
            self.room().await;
            let frames = match dealer.recv_multipart().await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(node = %self.inner.config.name, %peer, error = %e, "DEALER receive failed");
                    time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut it = frames.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(envelope), Some(payload), None) => {
                    self.bump(|s| s.received += 1);
                    self.push(Incoming::Frame {
                        from: peer.clone(),
                        envelope,
                        payload,
                    });
                }
                _ => {
                    self.bump(|s| s.malformed += 1);
                    self.warn(
                        "a message without exactly an envelope and a payload frame",
                        &peer,
                    );
                }
            }
        }
    }
}

/// Every frame of one message, kept as messages (their metadata: User-Id,
/// Peer-Address). Once the first frame is there, the others are (messages are atomic).
fn recv_messages(s: &zmq::Socket) -> zmq::Result<Vec<zmq::Message>> {
    let mut frames = vec![s.recv_msg(zmq::DONTWAIT)?];
    while s.get_rcvmore()? {
        frames.push(s.recv_msg(0)?);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_control_is_per_address_and_counts_what_it_skipped() {
        let mut f = Flood::default();
        let t0 = Instant::from_nanos(0);
        assert_eq!(f.admit("a", t0), Some(0));
        assert_eq!(f.admit("a", t0), None);
        assert_eq!(f.admit("a", t0), None);
        assert_eq!(f.admit("b", t0), Some(0));
        assert_eq!(f.admit("a", t0 + Duration::from_secs(1)), Some(2));
        for i in 0..FLOOD_ADDRESSES * 2 {
            f.admit(&i.to_string(), t0);
        }
        assert!(f.last.len() <= FLOOD_ADDRESSES);
    }
}
