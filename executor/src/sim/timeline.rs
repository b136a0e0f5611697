//! The timeline: what a simulation did, node by node, kept for a person to look at.
//!
//! The canonical trace ([`super::TraceHash`]) folds every step into a hash and keeps
//! only what decides determinism. The timeline is richer and apart from it: sends with
//! their receiver and size, deliveries with their sender, drops with their reason,
//! crashes, restarts, pauses, partitions, heals, and the resets and reconnections nodes
//! learn of. Recording it never changes the trace hash. It is off by default and
//! bounded when on ([`super::World::keep_timeline`]): past its cap, events are counted,
//! not kept. [`Timeline::to_chrome_json`] writes it in the Chrome trace event format.

use crate::time::Instant;

use super::NodeId;

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The pair is partitioned.
    Partitioned,
    /// The receiver is crashed.
    Crashed,
    /// Lost by the loss model (datagrams).
    Lost,
    /// A datagram larger than the MTU.
    TooLarge,
    /// A datagram arrived at a full inbox.
    Overflow,
}

impl DropReason {
    /// A short lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Partitioned => "partitioned",
            Self::Crashed => "crashed",
            Self::Lost => "lost",
            Self::TooLarge => "too_large",
            Self::Overflow => "overflow",
        }
    }
}

/// What a timeline event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimelineKind {
    /// The node sent a message that went on its way as network message `seq`.
    Send {
        /// The receiver.
        to: NodeId,
        /// The network sequence number, which its [`TimelineKind::Deliver`] repeats.
        seq: u64,
        /// A stream frame (`true`) or a datagram.
        stream: bool,
        /// Payload size in bytes.
        bytes: usize,
    },
    /// Network message `seq` from `from` reached the node.
    Deliver {
        /// The sender.
        from: NodeId,
        /// The network sequence number of its [`TimelineKind::Send`].
        seq: u64,
    },
    /// A message between the node and `peer` was dropped: at send (`seq` = 0, the node
    /// is the sender) or on arrival (`seq` is its number, the node is the receiver).
    Drop {
        /// The other end.
        peer: NodeId,
        /// The network sequence number, 0 if it never got one.
        seq: u64,
        /// Why.
        reason: DropReason,
    },
    /// The node crashed.
    Crash,
    /// The node restarted.
    Restart,
    /// The node was paused.
    Pause,
    /// The node was resumed.
    Resume,
    /// The link from the node to `peer` was cut (`both`: and back).
    Partition {
        /// The other end.
        peer: NodeId,
        /// Both directions.
        both: bool,
    },
    /// The link from the node to `peer` was restored.
    Heal {
        /// The other end.
        peer: NodeId,
    },
    /// Every partition was removed (recorded on node 0).
    HealAll,
    /// The node learned that its connection with `peer` was reset.
    Reset {
        /// The other end.
        peer: NodeId,
    },
    /// The node learned that it can connect to `peer` again.
    Up {
        /// The other end.
        peer: NodeId,
    },
}

/// One timeline event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineEvent {
    /// Virtual time.
    pub at: Instant,
    /// The node it happened on.
    pub node: NodeId,
    /// What happened.
    pub kind: TimelineKind,
}

/// A bounded, ordered record of [`TimelineEvent`]s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::{TimelineKind, World};
///
/// let mut world = World::new(7).unwrap();
/// let a = world.add_node("a").unwrap();
/// let b = world.add_node("b").unwrap();
/// world.keep_timeline(1_000);
/// world.partition(a, b);
/// world.crash(b);
/// let kinds: Vec<_> = world.timeline().unwrap().events().iter().map(|e| e.kind).collect();
/// assert!(kinds.contains(&TimelineKind::Crash));
/// let json = world.chrome_trace().unwrap();
/// assert!(json.starts_with("{\"traceEvents\":["));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    events: Vec<TimelineEvent>,
    cap: usize,
    dropped: u64,
}

impl Timeline {
    /// An empty timeline keeping at most `cap` events.
    #[must_use]
    pub const fn new(cap: usize) -> Self {
        Self {
            events: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    /// Appends an event, or counts it if the timeline is full.
    pub fn push(&mut self, at: Instant, node: NodeId, kind: TimelineKind) {
        if self.events.len() < self.cap {
            self.events.push(TimelineEvent { at, node, kind });
        } else {
            self.dropped += 1;
        }
    }

    /// The kept events, in the order they happened.
    #[must_use]
    pub fn events(&self) -> &[TimelineEvent] {
        &self.events
    }

    /// The most events kept.
    #[must_use]
    pub const fn cap(&self) -> usize {
        self.cap
    }

    /// Events past the cap, counted and not kept.
    #[must_use]
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether events were left out because the cap was reached.
    #[must_use]
    pub const fn truncated(&self) -> bool {
        self.dropped > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let mut t = Timeline::new(2);
        for i in 0..5 {
            t.push(Instant::ZERO, NodeId(i), TimelineKind::Crash);
        }
        assert_eq!(t.events().len(), 2);
        assert_eq!(t.events()[1].node, NodeId(1));
        assert_eq!(t.dropped(), 3);
        assert!(t.truncated());
        assert!(!Timeline::new(2).truncated());
    }
}
