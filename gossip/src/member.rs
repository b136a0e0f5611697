//! What a node knows about each member, and the rules that merge what it hears.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tern_proto::v1::gossip::{MemberState, Update};

/// The state of a member in this node's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Answering probes (as far as this node knows).
    Alive,
    /// A probe failed; dead unless it refutes before its suspicion times out.
    Suspect,
    /// Declared failed.
    Dead,
    /// Left gracefully.
    Left,
}

impl State {
    pub(crate) const fn wire(self) -> MemberState {
        match self {
            Self::Alive => MemberState::Alive,
            Self::Suspect => MemberState::Suspect,
            Self::Dead => MemberState::Dead,
            Self::Left => MemberState::Left,
        }
    }

    pub(crate) const fn from_wire(s: MemberState) -> Option<Self> {
        match s {
            MemberState::Alive => Some(Self::Alive),
            MemberState::Suspect => Some(Self::Suspect),
            MemberState::Dead => Some(Self::Dead),
            MemberState::Left => Some(Self::Left),
            MemberState::Unspecified => None,
        }
    }

    /// Dead or left: a tombstone.
    #[must_use]
    pub const fn is_down(self) -> bool {
        matches!(self, Self::Dead | Self::Left)
    }

    /// As the `members` table prints it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Suspect => "suspect",
            Self::Dead => "dead",
            Self::Left => "left",
        }
    }
}

/// A running suspicion (Lifeguard: it shortens with independent confirmations).
#[derive(Debug, Clone)]
pub(crate) struct Suspicion {
    pub(crate) started: u64,
    pub(crate) confirmations: Vec<String>,
    pub(crate) deadline: u64,
}

/// One member in this node's table.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) incarnation: u64,
    pub(crate) state: State,
    pub(crate) addr: SocketAddr,
    /// Key -> (value, version).
    pub(crate) facts: BTreeMap<String, (Vec<u8>, u64)>,
    pub(crate) facts_version: u64,
    pub(crate) since: u64,
    pub(crate) suspicion: Option<Suspicion>,
}

impl Member {
    pub(crate) fn update(&self, from: &str) -> Update {
        Update {
            name: self.name.clone(),
            generation: self.generation,
            incarnation: self.incarnation,
            state: self.state.wire().into(),
            addr: self.addr.to_string(),
            facts_version: self.facts_version,
            from: from.to_owned(),
        }
    }

    pub(crate) fn info(&self) -> MemberInfo {
        MemberInfo {
            name: self.name.clone(),
            generation: self.generation,
            incarnation: self.incarnation,
            state: self.state,
            addr: self.addr,
            facts: self
                .facts
                .iter()
                .filter(|(_, (v, _))| !v.is_empty())
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect(),
            since_nanos: self.since,
            confirmations: self.suspicion.as_ref().map_or(0, |s| s.confirmations.len()),
        }
    }
}

/// A member as this node sees it: a row of the `members` table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberInfo {
    /// The node name.
    pub name: String,
    /// Its boot generation.
    pub generation: u64,
    /// Its incarnation within the generation.
    pub incarnation: u64,
    /// Alive, suspect, dead or left.
    pub state: State,
    /// Its gossip address.
    pub addr: SocketAddr,
    /// Its facts (network, components, capacity, load, ...), as written by it.
    pub facts: BTreeMap<String, Vec<u8>>,
    /// When it entered this state, in the runtime clock's nanoseconds.
    pub since_nanos: u64,
    /// For a suspect: how many members independently suspect it.
    pub confirmations: usize,
}

impl MemberInfo {
    /// A fact as UTF-8 text, if present and valid.
    #[must_use]
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.facts
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// A change in this node's view, for the layers above (routing, elasticity).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberEvent {
    /// A member is alive: newly known, a new generation, or back after being dead.
    Up {
        /// The node name.
        name: String,
        /// Its generation.
        generation: u64,
        /// Its gossip address.
        addr: SocketAddr,
    },
    /// A member is suspected.
    Suspect {
        /// The node name.
        name: String,
    },
    /// A suspected member refuted.
    Refuted {
        /// The node name.
        name: String,
    },
    /// A member was declared dead, or left. Its generation will not come back.
    Down {
        /// The node name.
        name: String,
        /// The generation that ended.
        generation: u64,
        /// `true` for a graceful leave, `false` for a failure.
        left: bool,
    },
    /// One of a member's facts changed.
    Fact {
        /// The node name.
        name: String,
        /// The key.
        key: String,
    },
}

/// How an update compares with what is known about the same generation: does it win?
/// Records are totally ordered by `(incarnation, state)` with alive < suspect < dead
/// < left. So alive(i) beats anything of a lower incarnation (a refutation),
/// suspect(i) beats alive(i), dead(i) beats both, and left(i) beats all of them. A
/// member's own leave is its last word, one incarnation above anything it said before,
/// so nothing later outranks it; a left(i) it did not send is refuted like a
/// dead(i), by alive(i + 1). A total order makes merging commutative, idempotent and
/// monotonic: every node that hears the same updates, in any order, ends the same.
pub(crate) fn wins(new: State, new_inc: u64, cur: State, cur_inc: u64) -> bool {
    (new_inc, new as u8) > (cur_inc, cur as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn precedence() {
        assert!(wins(Alive, 2, Suspect, 1));
        assert!(!wins(Alive, 1, Suspect, 1));
        assert!(wins(Suspect, 1, Alive, 1));
        assert!(!wins(Suspect, 1, Suspect, 1));
        assert!(wins(Dead, 1, Suspect, 1));
        assert!(wins(Alive, 2, Dead, 1));
        assert!(!wins(Alive, 1, Left, 1));
        assert!(wins(Left, 1, Dead, 1));
        // A left the member did not send is refuted by a higher incarnation.
        assert!(wins(Alive, 2, Left, 1));
        assert!(!wins(Left, 0, Dead, 5));
        assert!(wins(Suspect, 5, Dead, 1));
        assert!(!wins(Suspect, 1, Dead, 1));
    }

    #[test]
    fn merge_is_idempotent_and_order_free() {
        // Applying every permutation of a set of updates ends in the same state.
        let ups = [
            (Alive, 1),
            (Suspect, 1),
            (Alive, 2),
            (Dead, 2),
            (Alive, 3),
            (Suspect, 3),
        ];
        let apply = |order: &[usize]| {
            let mut cur = (Alive, 0);
            for &i in order {
                let (s, n) = ups[i];
                if wins(s, n, cur.0, cur.1) {
                    cur = (s, n);
                }
            }
            cur
        };
        let reference = apply(&[0, 1, 2, 3, 4, 5]);
        let mut idx = [0, 1, 2, 3, 4, 5];
        // Heap's algorithm over all 720 orders.
        fn permute(k: usize, a: &mut [usize; 6], f: &mut dyn FnMut(&[usize])) {
            if k == 1 {
                f(a);
                return;
            }
            for i in 0..k {
                permute(k - 1, a, f);
                if k.is_multiple_of(2) {
                    a.swap(i, k - 1)
                } else {
                    a.swap(0, k - 1)
                }
            }
        }
        permute(6, &mut idx, &mut |o| {
            assert_eq!(apply(o), reference, "order {o:?}");
            let twice: Vec<usize> = o.iter().chain(o.iter()).copied().collect();
            assert_eq!(apply(&twice), reference);
        });
    }
}
