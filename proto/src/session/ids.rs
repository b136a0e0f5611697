//! Message ids: a keyed permutation of a counter.
//!
//! A session numbers what it sends with a counter, and puts on the wire the counter
//! enciphered with Speck64/128 (Beaulieu et al., 2013: a 64-bit block, a 128-bit key,
//! 27 add-rotate-xor rounds) under the session's id key. Enciphering is a permutation
//! of the 64-bit values, so ids are unique for 2^64 messages whatever the key, and
//! without the key the next id cannot be told from the ones seen: a peer that sees
//! the ids of the asks sent to it learns nothing of the ids outstanding to another
//! peer. The one counter value whose id is 0 (the wire's "no id") is skipped.
//!
//! The key comes from the node: its seeded generator under the simulator (so a run
//! replays from its seed), the operating system's random source in a real container.

/// Rounds of Speck64/128.
const ROUNDS: usize = 27;

/// The id generator: a counter and the round keys of its permutation.
#[derive(Debug, Clone)]
pub(super) struct Ids {
    counter: u64,
    round_keys: [u32; ROUNDS],
}

impl Ids {
    /// A generator under `key` (16 bytes, little-endian words `k0, l0, l1, l2`),
    /// starting at counter 0.
    pub(super) fn new(key: [u8; 16]) -> Self {
        let word = |i: usize| u32::from_le_bytes([key[i], key[i + 1], key[i + 2], key[i + 3]]);
        Self {
            counter: 0,
            round_keys: schedule([word(0), word(4), word(8), word(12)]),
        }
    }

    /// The next id: never 0, never one this generator gave before.
    pub(super) fn next(&mut self) -> u64 {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let id = self.permute(self.counter);
            if id != 0 {
                return id;
            }
        }
    }

    fn permute(&self, block: u64) -> u64 {
        // Truncation intended: the two 32-bit words of the block.
        #[allow(clippy::cast_possible_truncation)]
        let (x, y) = encrypt(&self.round_keys, (block >> 32) as u32, block as u32);
        (u64::from(x) << 32) | u64::from(y)
    }
}

/// Speck64/128's key schedule: `key` is `[k0, l0, l1, l2]`.
fn schedule(key: [u32; 4]) -> [u32; ROUNDS] {
    let mut k = [0u32; ROUNDS];
    let mut l = [0u32; ROUNDS + 2];
    k[0] = key[0];
    l[..3].copy_from_slice(&key[1..]);
    for i in 0..ROUNDS - 1 {
        // `i` < 27: the round number as Speck's schedule mixes it in.
        #[allow(clippy::cast_possible_truncation)]
        let round = i as u32;
        l[i + 3] = k[i].wrapping_add(l[i].rotate_right(8)) ^ round;
        k[i + 1] = k[i].rotate_left(3) ^ l[i + 3];
    }
    k
}

/// Speck64's rounds on the block `(x, y)`.
fn encrypt(round_keys: &[u32; ROUNDS], mut x: u32, mut y: u32) -> (u32, u32) {
    for k in round_keys {
        x = x.rotate_right(8).wrapping_add(y) ^ k;
        y = y.rotate_left(3) ^ x;
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn speck64_128_matches_the_published_test_vector() {
        // The Simon and Speck paper, appendix C: key 1b1a1918 13121110 0b0a0908
        // 03020100, plaintext 3b726574 7475432d, ciphertext 8c6fa548 454e028b.
        let keys = schedule([0x0302_0100, 0x0b0a_0908, 0x1312_1110, 0x1b1a_1918]);
        assert_eq!(
            encrypt(&keys, 0x3b72_6574, 0x7475_432d),
            (0x8c6f_a548, 0x454e_028b)
        );
    }

    #[test]
    fn ids_are_unique_nonzero_and_not_a_counter() {
        let mut ids = Ids::new([7; 16]);
        let drawn: Vec<u64> = (0..10_000).map(|_| ids.next()).collect();
        let distinct: BTreeSet<u64> = drawn.iter().copied().collect();
        assert_eq!(distinct.len(), drawn.len());
        assert!(!distinct.contains(&0));
        // Neither small nor consecutive: about half the bits differ between neighbours.
        let close = drawn
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) < 1 << 32)
            .count();
        assert!(close < 10, "{close} neighbouring ids within 2^32");
        assert!(drawn.iter().filter(|&&id| id < 1 << 40).count() < 10);
    }

    #[test]
    fn the_key_decides_the_sequence() {
        let seq = |key: [u8; 16]| {
            let mut ids = Ids::new(key);
            (0..4).map(|_| ids.next()).collect::<Vec<_>>()
        };
        assert_eq!(seq([1; 16]), seq([1; 16]));
        let mut other = [1; 16];
        other[15] = 2;
        let (a, b) = (seq([1; 16]), seq(other));
        assert!(a.iter().zip(&b).all(|(x, y)| x != y), "{a:x?} {b:x?}");
    }
}
