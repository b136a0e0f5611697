//! The timer queue: deadlines ordered by (deadline, creation sequence), in an indexed
//! binary heap so that a cancelled timer leaves it at once.

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
    /// Where this timer sits in the heap.
    pos: usize,
    waker: Waker,
}

/// One heap position: the order key and the slab slot of its entry.
#[derive(Debug, Clone, Copy)]
struct Node {
    deadline: Instant,
    seq: u64,
    slot: usize,
}

impl Node {
    const fn key(&self) -> (Instant, u64) {
        (self.deadline, self.seq)
    }
}

/// A min-heap of `(deadline, seq)` whose entries know their own heap position.
///
/// Equal deadlines fire in creation order because `seq` (unique, increasing) breaks
/// ties, so firing order depends on nothing but the order timers were created in: the
/// order is a total one, and the same as a plain binary heap of `(deadline, seq)` gives.
///
/// Cancelling removes the timer from the heap at once (swap with the last node, then
/// sift), in O(log n). The earlier design left cancelled entries in the heap until
/// they reached the top, so under a steady rate of asks that finish before their
/// timeout the heap grew with rate x timeout while any longer timer lived. Lazy
/// deletion with periodic compaction would also bound it, but to twice the live
/// count and with an O(n) pause at each compaction; the indexed heap keeps the heap
/// exactly as long as the live timers, and a key's `seq` makes a stale key (fired or
/// cancelled, its slot reused) harmless.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: Vec<Node>,
    live: Slab<Entry>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pos = self.heap.len();
        let slot = self.live.insert(Entry { seq, pos, waker });
        self.heap.push(Node {
            deadline,
            seq,
            slot,
        });
        self.sift_up(pos);
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

    /// Removes a live timer from the heap and the table; a stale key does nothing.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        if let Some(e) = self.live.get(key.slot)
            && e.seq == key.seq
        {
            let pos = e.pos;
            drop(self.remove_at(pos));
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|n| n.deadline)
    }

    /// Moves the wakers of every timer due at `now` into `out`, in firing order.
    pub(crate) fn take_due(&mut self, now: Instant, out: &mut Vec<Waker>) {
        while self.heap.first().is_some_and(|n| n.deadline <= now) {
            out.extend(self.remove_at(0));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Nodes in the heap: always [`Timers::len`], which the tests check.
    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    pub(crate) fn clear(&mut self) -> Vec<Waker> {
        self.heap.clear();
        self.live.drain().map(|e| e.waker).collect()
    }

    /// Takes the node at `pos` out of the heap and its entry out of the table
    /// (`None` only if `pos` is past the end, which no caller passes).
    fn remove_at(&mut self, pos: usize) -> Option<Waker> {
        let last = self.heap.len().checked_sub(1)?;
        if pos > last {
            return None;
        }
        self.heap.swap(pos, last);
        let removed = self.heap.pop()?;
        if pos < self.heap.len() {
            self.place(pos);
            let pos = self.sift_up(pos);
            self.sift_down(pos);
        }
        self.live.try_remove(removed.slot).map(|e| e.waker)
    }

    /// Records in its entry where the node at `pos` now sits.
    fn place(&mut self, pos: usize) {
        let slot = self.heap[pos].slot;
        if let Some(e) = self.live.get_mut(slot) {
            e.pos = pos;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.place(a);
        self.place(b);
    }

    /// Moves the node at `pos` up to its place; returns where it ends.
    fn sift_up(&mut self, mut pos: usize) -> usize {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.heap[pos].key() >= self.heap[parent].key() {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
        pos
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                return;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.heap[right].key() < self.heap[left].key()
            {
                right
            } else {
                left
            };
            if self.heap[child].key() >= self.heap[pos].key() {
                return;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
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
        assert_eq!(t.heap_len(), 4);
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(5)));
        let mut out = Vec::new();
        t.take_due(at, &mut out);
        out.into_iter().for_each(Waker::wake);
        assert_eq!(*log.lock().unwrap(), vec![0, 1, 3]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(20)));
        assert!(!t.update(k2, &w(9)));
    }

    #[test]
    fn a_million_cancelled_timers_leave_the_heap_at_once() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let w = Waker::from(Arc::new(Tag(0, log)));
        let mut t = Timers::default();
        // A long-lived timer, as a connection's heartbeat would be.
        let long = t.insert(Instant::from_nanos(u64::MAX / 2), w.clone());
        let mut most = 0;
        for i in 0..1_000_000u64 {
            // A timeout armed per ask, cancelled when the reply comes first.
            let k = t.insert(Instant::from_nanos(1_000 + i), w.clone());
            most = most.max(t.heap_len());
            t.cancel(k);
            // A stale key (cancelled already) must not remove anything else.
            t.cancel(k);
        }
        assert_eq!(most, 2);
        assert_eq!(t.heap_len(), 1);
        assert_eq!(t.len(), 1);
        t.cancel(long);
        assert_eq!(t.heap_len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    /// A small deterministic generator for the model test.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 33
    }

    #[test]
    fn random_inserts_cancels_and_firings_match_a_sorted_model() {
        let log = Arc::new(Mutex::new(Vec::new()));
        for seed in 0..20u64 {
            let mut rng = seed;
            let mut t = Timers::default();
            // The model: (deadline, creation order) -> tag, the order timers must fire in.
            let mut model: BTreeMap<(u64, u32), TimerKey> = BTreeMap::new();
            let mut keys: Vec<((u64, u32), TimerKey)> = Vec::new();
            let mut now = 0u64;
            log.lock().unwrap().clear();
            let mut expected = Vec::new();
            for tag in 0..3_000u32 {
                match lcg(&mut rng) % 10 {
                    0..=5 => {
                        // Few distinct deadlines, so ties are common.
                        let at = now + lcg(&mut rng) % 8;
                        let waker = Waker::from(Arc::new(Tag(tag, log.clone())));
                        let k = t.insert(Instant::from_nanos(at), waker);
                        model.insert((at, tag), k);
                        keys.push(((at, tag), k));
                    }
                    6..=7 if !keys.is_empty() => {
                        let i = usize::try_from(lcg(&mut rng)).unwrap() % keys.len();
                        let (id, k) = keys.swap_remove(i);
                        t.cancel(k);
                        model.remove(&id);
                    }
                    _ => {
                        now += lcg(&mut rng) % 4;
                        let mut out = Vec::new();
                        t.take_due(Instant::from_nanos(now), &mut out);
                        out.into_iter().for_each(Waker::wake);
                        let due: Vec<(u64, u32)> =
                            model.range(..(now + 1, 0)).map(|(id, _)| *id).collect();
                        for id in due {
                            model.remove(&id);
                            expected.push(id.1);
                        }
                    }
                }
                assert_eq!(t.len(), model.len());
                assert_eq!(t.heap_len(), model.len());
                assert_eq!(
                    t.next_deadline(),
                    model.keys().next().map(|id| Instant::from_nanos(id.0))
                );
            }
            assert_eq!(*log.lock().unwrap(), expected, "seed {seed}");
        }
    }
}
