//! Frames and bytes exchanged with each peer, counted by the node's driver.

use std::collections::BTreeMap;

/// Peers counted one by one; frames of any further peer are added to
/// [`OTHER_PEERS`], so a flood of routing ids cannot grow the table.
pub const MAX_COUNTED_PEERS: usize = 1024;

/// The row that counts the peers past [`MAX_COUNTED_PEERS`].
pub const OTHER_PEERS: &str = "(other)";

/// Frames and bytes (envelope and payload) to and from one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTraffic {
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames handed to the transport (the ones it refused are also counted in
    /// [`NodeStats::send_failures`](super::NodeStats::send_failures)).
    pub frames_out: u64,
    /// Bytes handed to the transport.
    pub bytes_out: u64,
}

/// The table, by peer name.
#[derive(Debug, Default)]
pub(crate) struct Traffic(BTreeMap<String, PeerTraffic>);

impl Traffic {
    /// The row of `peer`, made on its first frame (no allocation after that).
    fn row(&mut self, peer: &str) -> Option<&mut PeerTraffic> {
        let key = if self.0.contains_key(peer) || self.0.len() < MAX_COUNTED_PEERS {
            peer
        } else {
            OTHER_PEERS
        };
        if !self.0.contains_key(key) {
            self.0.insert(key.to_owned(), PeerTraffic::default());
        }
        self.0.get_mut(key)
    }

    pub(crate) fn received(&mut self, peer: &str, bytes: usize) {
        if let Some(r) = self.row(peer) {
            r.frames_in += 1;
            r.bytes_in += u64::try_from(bytes).unwrap_or(u64::MAX);
        }
    }

    pub(crate) fn sent(&mut self, peer: &str, bytes: usize) {
        if let Some(r) = self.row(peer) {
            r.frames_out += 1;
            r.bytes_out += u64::try_from(bytes).unwrap_or(u64::MAX);
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, PeerTraffic)> {
        self.0.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_peer_and_folds_peers_past_the_cap() {
        let mut t = Traffic::default();
        t.received("a", 10);
        t.sent("a", 5);
        t.sent("a", 7);
        for i in 0..MAX_COUNTED_PEERS + 3 {
            t.received(&format!("p{i}"), 1);
        }
        let rows = t.snapshot();
        assert_eq!(rows.len(), MAX_COUNTED_PEERS + 1);
        let a = rows.iter().find(|(p, _)| p == "a").map(|(_, r)| *r);
        assert_eq!(
            a,
            Some(PeerTraffic {
                frames_in: 1,
                bytes_in: 10,
                frames_out: 2,
                bytes_out: 12
            })
        );
        let other = rows
            .iter()
            .find(|(p, _)| p == OTHER_PEERS)
            .map(|(_, r)| r.frames_in);
        assert_eq!(
            other,
            Some(4),
            "a is counted, so 1024 - 1 p-peers fit, 4 do not"
        );
    }
}
