//! Generation fencing: a request is handled only by the incarnation of a node it was
//! addressed to.
//!
//! Requests carry, in their destination [`ComponentRef`](crate::v1::ComponentRef), the
//! generation the sender believes the receiver runs (0 = any). A node that restarted
//! runs a higher generation, so requests meant for its previous incarnation (queued
//! before the restart, or sent before the sender learnt of it) are refused instead of
//! being applied by the new one.

use super::{PROTOCOL_VERSION, Session};
use crate::v1::{Envelope, ErrorCode, ErrorInfo, Kind};

impl Session {
    /// Sets this node's generation (its incarnation; default 0). Requests whose
    /// destination names another nonzero generation are refused: an ask is answered
    /// with `ErrorCode::Stopped`, a tell dropped; both counted in
    /// [`SessionStats::fenced`](super::SessionStats::fenced). So a request meant for an earlier incarnation of this
    /// node is never handled by this one.
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    /// Sets the generation `peer` is believed to run: requests to it carry it as their
    /// destination generation, so another incarnation refuses them. 0 (the default)
    /// addresses any generation.
    pub fn set_peer_generation(&mut self, peer: &str, generation: u64) {
        if generation == 0 {
            self.peer_generations.remove(peer);
        } else {
            self.peer_generations.insert(peer.to_owned(), generation);
        }
    }

    /// The generation `peer` is believed to run (0: not known, any generation).
    #[must_use]
    pub fn peer_generation(&self, peer: &str) -> u64 {
        self.peer_generations.get(peer).copied().unwrap_or(0)
    }

    /// Refuses a request addressed to generation `addressed`, not this one.
    pub(super) fn fence(&mut self, peer: &str, kind: Kind, message_id: u64, addressed: u64) {
        self.stats.fenced += 1;
        if kind != Kind::Ask || message_id == 0 {
            return;
        }
        let id = self.take_id();
        let answer = Envelope {
            version: PROTOCOL_VERSION,
            message_id: id,
            correlation_id: message_id,
            kind: Kind::Error.into(),
            error: Some(ErrorInfo {
                code: ErrorCode::Stopped.into(),
                detail: format!(
                    "addressed to generation {addressed} of {}, which is now generation {}",
                    self.node, self.generation
                ),
            }),
            ..Envelope::default()
        };
        self.push(peer, &answer, Vec::new());
    }
}
