//! Replays the committed gossip fuzz corpus (`fuzz/corpus/gossip_datagram/`,
//! `fuzz/corpus/gossip_packet/`) through the functions the cargo-fuzz targets call, on
//! stable, in every `cargo test`. A missing or empty corpus fails.
//!
//! `write_seed_corpus` (ignored) writes the seeds:
//! `cargo test -p tern-gossip --test fuzz_corpus -- --ignored`.

use std::fs;
use std::path::PathBuf;

use tern_gossip::fuzzing;

fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8])) {
    let mut files: Vec<PathBuf> = fs::read_dir(dir(target))
        .unwrap_or_else(|e| panic!("corpus {target} is missing: {e}"))
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {target} is empty");
    for path in files {
        f(&fs::read(&path).expect("readable corpus file"));
    }
}

#[test]
fn gossip_datagram_corpus() {
    replay("gossip_datagram", fuzzing::datagram);
}

#[test]
fn gossip_packet_corpus() {
    replay("gossip_packet", fuzzing::packet);
}

#[test]
fn hostile_plaintexts_are_handled() {
    // Truncations and bit flips of every sample: decode errors or odd values, never a
    // panic or an oversized reply.
    for p in fuzzing::sample_packets() {
        for cut in (0..p.len()).step_by(3) {
            fuzzing::packet(&p[..cut]);
        }
        for i in (0..p.len()).step_by(2) {
            let mut q = p.clone();
            q[i] ^= 0x5a;
            fuzzing::packet(&q);
        }
    }
}

#[test]
#[ignore = "writes the seed corpus; run on purpose"]
fn write_seed_corpus() {
    for (target, samples) in [
        ("gossip_datagram", fuzzing::sample_datagrams()),
        ("gossip_packet", fuzzing::sample_packets()),
    ] {
        fs::create_dir_all(dir(target)).unwrap();
        for (i, s) in samples.iter().enumerate() {
            fs::write(dir(target).join(format!("seed-{i}")), s).unwrap();
        }
    }
}
