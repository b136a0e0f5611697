//! Replays the committed router fuzz corpus (`fuzz/corpus/router/`) through
//! `tern_actors::remote::fuzzing::router_ops`, the function the `router` cargo-fuzz
//! target calls, on stable, in every `cargo test`. A missing or empty corpus fails.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use tern_actors::remote::fuzzing::router_ops;

#[test]
fn router_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/router");
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    let mut failed = Vec::new();
    for path in &files {
        let data = fs::read(path).expect("readable corpus file");
        if catch_unwind(AssertUnwindSafe(|| router_ops(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} router inputs failed: {failed:#?}",
        failed.len(),
        files.len()
    );
}
