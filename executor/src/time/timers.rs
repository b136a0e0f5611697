//! The timer queue: deadlines ordered by (deadline, insertion sequence).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;

use slab::Slab;

use super::Instant;

/// Names one registered timer; stale keys (cancelled or fired) are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: usize,
    seq: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    waker: Waker,
}

/// A min-heap of `(deadline, seq, slot)` plus a slab of live entries.
///
/// Equal deadlines fire in insertion order because `seq` breaks ties, so firing order
/// never depends on anything but the order timers were created in. Cancelling only frees
/// the slab slot; the heap entry becomes stale and is skipped when it reaches the top,
/// which keeps both insert and cancel cheap.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    live: Slab<Entry>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = self.live.insert(Entry { seq, waker });
        self.heap.push(Reverse((deadline, seq, slot)));
        TimerKey { slot, seq }
    }

    /// Replaces the waker of a live timer. Returns `false` if the key is stale.
    pub(crate) fn update(&mut self, key: TimerKey, waker: &Waker) -> bool {
        match self.live.get_mut(key.slot) {
            Some(e) if e.seq == key.seq => {
                if !e.waker.will_wake(waker) {
                    e.waker.clone_from(waker);
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if self.live.get(key.slot).is_some_and(|e| e.seq == key.seq) {
            self.live.remove(key.slot);
        }
        if self.live.is_empty() {
            self.heap.clear();
        }
    }

    fn is_live(&self, seq: u64, slot: usize) -> bool {
        self.live.get(slot).is_some_and(|e| e.seq == seq)
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            if self.is_live(seq, slot) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Moves the wakers of every timer due at `now` into `out`, in firing order.
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while let Some(&Reverse((deadline, seq, slot))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if self.is_live(seq, slot) {
                out.push(self.live.remove(slot).waker);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        self.heap.clear();
        self.live.drain().map(|e| e.waker).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::task::Wake;

    struct Tag(u32, Arc<Mutex<Vec<u32>>>);
    impl Wake for Tag {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order_and_cancel_skips() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let w = |n| Waker::from(Arc::new(Tag(n, log.clone())));
        let mut t = Timers::default();
        let at = Instant::from_nanos(10);
        t.insert(at, w(1));
        let k2 = t.insert(at, w(2));
        t.insert(Instant::from_nanos(5), w(0));
        t.insert(at, w(3));
        t.insert(Instant::from_nanos(20), w(4));
        t.cancel(k2);
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(5)));
        let mut out = Vec::new();
        t.take_due(at, &mut out);
        out.into_iter().for_each(Waker::wake);
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 3]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(20)));
        assert!(!t.update(k2, &w(9)));
    }
}
