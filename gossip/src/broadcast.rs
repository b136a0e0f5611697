//! Updates waiting to be gossiped: fewest-sent first, each sent a bounded number of
//! times, a newer update about the same thing replacing the older one.

use std::collections::BTreeMap;

/// One queue (membership and facts have one each, with separate byte budgets).
#[derive(Debug)]
pub(crate) struct Queue<T> {
    /// (transmits, newest first) -> (key, item).
    order: BTreeMap<(u32, std::cmp::Reverse<u64>), (String, T)>,
    /// key -> its place in `order`.
    index: BTreeMap<String, (u32, std::cmp::Reverse<u64>)>,
    next: u64,
    cap: usize,
    pub(crate) dropped: u64,
}

impl<T: Clone> Queue<T> {
    pub(crate) const fn new(cap: usize) -> Self {
        Self {
            order: BTreeMap::new(),
            index: BTreeMap::new(),
            next: 0,
            cap,
            dropped: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Queues `item` under `key`, replacing any older item with the same key. When
    /// full, the most-sent item is dropped (and counted).
    pub(crate) fn push(&mut self, key: String, item: T) {
        if let Some(place) = self.index.remove(&key) {
            self.order.remove(&place);
        }
        if self.order.len() >= self.cap
            && let Some((_, (k, _))) = self.order.pop_last()
        {
            self.index.remove(&k);
            self.dropped += 1;
        }
        self.next += 1;
        let place = (0, std::cmp::Reverse(self.next));
        self.index.insert(key.clone(), place);
        self.order.insert(place, (key, item));
    }

    /// Takes items, fewest-sent first, while `fits(item)` accepts them (it returns the
    /// bytes the item uses, or `None` if it does not fit in what is left). Each taken
    /// item counts one transmit and leaves the queue after `limit` transmits.
    #[cfg(test)]
    pub(crate) fn take(&mut self, limit: u32, fits: impl FnMut(&T) -> Option<usize>) -> Vec<T> {
        self.take_except(limit, &[], fits)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Like `take`, skipping the items under the keys in `except` (those already in
    /// the datagram being filled), and returning each item with its key.
    pub(crate) fn take_except(
        &mut self,
        limit: u32,
        except: &[String],
        mut fits: impl FnMut(&T) -> Option<usize>,
    ) -> Vec<(String, T)> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        let mut misses = 0;
        for (place, (key, item)) in &self.order {
            if except.contains(key) {
                continue;
            }
            if fits(item).is_some() {
                out.push((key.clone(), item.clone()));
                sent.push((*place, key.clone()));
            } else {
                misses += 1;
                if misses > 8 {
                    break;
                }
            }
        }
        for (place, key) in sent {
            if let Some((k, item)) = self.order.remove(&place) {
                let n = place.0 + 1;
                if n >= limit {
                    self.index.remove(&k);
                } else {
                    let new_place = (n, place.1);
                    self.index.insert(key, new_place);
                    self.order.insert(new_place, (k, item));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewest_sent_first_and_bounded() {
        let mut q = Queue::new(3);
        q.push("a".into(), 1);
        q.push("b".into(), 2);
        assert_eq!(q.take(2, |_| Some(1)).len(), 2);
        q.push("c".into(), 3);
        let mut budget = 1;
        let first = q.take(2, |_| {
            (budget > 0).then(|| {
                budget -= 1;
                1
            })
        });
        assert_eq!(first, vec![3]);
        // Everything was sent once; this second send retires it all.
        let rest = q.take(2, |_| Some(1));
        assert_eq!(rest.len(), 3);
        assert_eq!(q.len(), 0);
        q.push("c".into(), 30); // replaces
        q.push("d".into(), 4);
        q.push("e".into(), 5);
        q.push("f".into(), 6); // full: the most-sent goes
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 1);
    }
}
