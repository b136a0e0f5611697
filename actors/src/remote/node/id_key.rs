//! The key of a node's message ids (see `tern_proto::session::Session::set_id_key`):
//! without it, ids cannot be predicted from the ones a peer has seen.

use std::io::Read;

use crate::remote::config::{NodeConfig, NodeError};

/// SplitMix64's increment and output function: expands a seed into key words.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key a seed gives: the same seed, the same ids (the simulator replays by seed).
pub(super) fn from_seed(seed: u64) -> [u8; 16] {
    let mut state = seed;
    let mut key = [0; 16];
    key[..8].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    key[8..].copy_from_slice(&splitmix(&mut state).to_le_bytes());
    key
}

/// The key of the node `config` describes: from [`NodeConfig::seed`] if set; else,
/// under virtual time (the simulator), from the node's name and generation, so runs
/// replay; else 16 bytes of the operating system's random source.
pub(super) fn for_node(config: &NodeConfig) -> Result<[u8; 16], NodeError> {
    if let Some(seed) = config.seed {
        return Ok(from_seed(seed));
    }
    if tern_executor::time::is_virtual() == Some(true) {
        let seed = config
            .name
            .bytes()
            .fold(config.generation ^ 0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        return Ok(from_seed(seed));
    }
    let mut key = [0; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| NodeError::Entropy(e.to_string()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_give_distinct_repeatable_keys() {
        assert_eq!(from_seed(7), from_seed(7));
        assert_ne!(from_seed(7), from_seed(8));
        let real = NodeConfig::new("a");
        // Outside a runtime the clock is not virtual: the random source is read.
        let (k1, k2) = (for_node(&real), for_node(&real));
        assert!(
            matches!((&k1, &k2), (Ok(a), Ok(b)) if a != b),
            "{k1:?} {k2:?}"
        );
        assert_eq!(for_node(&real.seed(3)).ok(), Some(from_seed(3)));
    }
}
