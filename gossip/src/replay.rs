//! The replay window: which nonce counters of one sender's generation were already
//! accepted.
//!
//! Every sealed datagram carries its sender's counter in the nonce (see
//! [`Sealer`](crate::Sealer)); it grows by one per datagram the sender seals, whatever its
//! destination. A receiver keeps, per sender name, the newest generation it accepted and
//! a sliding bitmap of the last [`WINDOW`] counters below the highest one seen: a counter
//! already set, or older than the window, is a replay (or a datagram delayed so long it
//! is worthless to a failure detector).

/// Counters remembered below the highest one seen.
///
/// 1,024 as in IPsec's extended window and WireGuard: a sender seals one counter per
/// datagram to any member, so a receiver sees a sparse subsequence; a window of 1,024
/// of the sender's datagrams is several seconds of a busy node's traffic (gossip, probes,
/// acks, syncs), far longer than any reordering on a network, while the state stays
/// 136 bytes per member.
pub const WINDOW: u64 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// Why a datagram was refused by the replay window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The counter was already accepted.
    Duplicate,
    /// The counter is older than the window.
    TooOld,
    /// The sender's generation is older than the newest one accepted for its name.
    OldGeneration,
    /// A new sender while the window table is full (it holds one window per member).
    TableFull,
}

/// The window of one sender name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    generation: u64,
    highest: u64,
    /// Bit `i` of the bitmap is counter `highest - i`.
    bits: [u64; WORDS],
}

impl Window {
    /// A window that has accepted `counter` of `generation` and nothing else.
    #[must_use]
    pub fn new(generation: u64, counter: u64) -> Self {
        let mut bits = [0; WORDS];
        bits[0] = 1;
        Self {
            generation,
            highest: counter,
            bits,
        }
    }

    /// The generation this window is for.
    #[must_use]
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// Accepts `(generation, counter)` and records it, or says why not. A newer
    /// generation starts a fresh window.
    ///
    /// # Errors
    ///
    /// The [`Replay`] reason.
    ///
    /// ```
    /// use tern_gossip::replay::{Replay, Window, WINDOW};
    ///
    /// let mut w = Window::new(1, 5);
    /// assert_eq!(w.accept(1, 5), Err(Replay::Duplicate));
    /// assert_eq!(w.accept(1, 3), Ok(()));
    /// assert_eq!(w.accept(1, 5 + WINDOW), Ok(()));
    /// assert_eq!(w.accept(1, 5), Err(Replay::TooOld));
    /// assert_eq!(w.accept(1, 6), Ok(()));
    /// assert_eq!(w.accept(0, 100_000), Err(Replay::OldGeneration));
    /// assert_eq!(w.accept(2, 1), Ok(()));
    /// ```
    pub fn accept(&mut self, generation: u64, counter: u64) -> Result<(), Replay> {
        if generation < self.generation {
            return Err(Replay::OldGeneration);
        }
        if generation > self.generation {
            *self = Self::new(generation, counter);
            return Ok(());
        }
        if counter > self.highest {
            self.shift(counter - self.highest);
            self.highest = counter;
            self.bits[0] |= 1;
            return Ok(());
        }
        let age = self.highest - counter;
        if age >= WINDOW {
            return Err(Replay::TooOld);
        }
        let (word, bit) = (usize::try_from(age / 64).unwrap_or(WORDS), age % 64);
        let Some(w) = self.bits.get_mut(word) else {
            return Err(Replay::TooOld);
        };
        if *w & (1 << bit) != 0 {
            return Err(Replay::Duplicate);
        }
        *w |= 1 << bit;
        Ok(())
    }

    /// Moves every bit `by` places toward the old end, dropping those past the window.
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let words = usize::try_from(by / 64).unwrap_or(WORDS);
        let bits = by % 64;
        for i in (0..WORDS).rev() {
            let hi = i.checked_sub(words).map_or(0, |j| self.bits[j]);
            let lo = i.checked_sub(words + 1).map_or(0, |j| self.bits[j]);
            self.bits[i] = if bits == 0 {
                hi
            } else {
                (hi << bits) | (lo >> (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_once_in_any_order_within_the_window() {
        let mut w = Window::new(7, 0);
        // Interleave a forward run with late arrivals inside the window.
        let mut order: Vec<u64> = (1..3000).collect();
        for chunk in order.chunks_mut(97) {
            chunk.reverse();
        }
        for &c in &order {
            assert_eq!(w.accept(7, c), Ok(()), "counter {c}");
        }
        for &c in &order[order.len() - 500..] {
            assert_eq!(w.accept(7, c), Err(Replay::Duplicate), "counter {c}");
        }
        assert_eq!(w.accept(7, 1), Err(Replay::TooOld));
    }

    #[test]
    fn shifts_across_word_boundaries_keep_the_right_bits() {
        for step in [1, 63, 64, 65, 127, 128, 500, 1023, 1024, 5000] {
            let mut w = Window::new(1, 1000);
            assert_eq!(w.accept(1, 999), Ok(()));
            assert_eq!(w.accept(1, 1000 + step), Ok(()));
            let seen_old = |c: u64| 1000 + step - c < WINDOW;
            for c in [999, 1000] {
                let want = if seen_old(c) {
                    Err(Replay::Duplicate)
                } else {
                    Err(Replay::TooOld)
                };
                assert_eq!(w.accept(1, c), want, "step {step} counter {c}");
            }
            if seen_old(998) {
                assert_eq!(w.accept(1, 998), Ok(()), "step {step}");
            }
        }
    }

    #[test]
    fn a_newer_generation_resets_and_an_older_is_refused() {
        let mut w = Window::new(1, 10);
        assert_eq!(w.accept(2, 1), Ok(()));
        assert_eq!(w.generation(), 2);
        assert_eq!(w.accept(2, 1), Err(Replay::Duplicate));
        assert_eq!(w.accept(1, 11), Err(Replay::OldGeneration));
    }
}
