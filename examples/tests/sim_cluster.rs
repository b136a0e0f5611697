//! The sim_cluster scenario over a sweep of seeds: every delivery promise is checked in
//! every run (docs/design/simulation.md C4), and a seed replays exactly, in this process and
//! in another one (D1, D2).

use std::collections::BTreeSet;

use tern_examples::cluster::{Scenario, run};

#[test]
fn every_seed_of_a_sweep_keeps_every_delivery_promise() {
    let seeds = std::env::var("SIM_SWEEP_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200u64);
    let mut hashes = BTreeSet::new();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        let report = run(&Scenario::short(seed));
        if !report.passed() {
            failures.push(format!("{report}repro: {}", report.repro()));
        }
        // The checks ran on real traffic, not on an idle cluster.
        let h = report.history.as_ref().map(|h| h.handled).unwrap_or(0);
        assert!(h > 500, "seed {seed} handled only {h} messages");
        hashes.insert(report.trace_hash);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        hashes.len() as u64,
        seeds,
        "every seed explores its own run"
    );
}

#[test]
fn a_seed_replays_in_the_same_process_after_other_seeds() {
    let first = run(&Scenario::short(5)).trace_hash;
    let _other = run(&Scenario::short(6));
    let again = run(&Scenario::short(5));
    assert_eq!(first, again.trace_hash);
    assert!(again.passed(), "{again}");
}

#[test]
fn a_seed_gives_the_same_hash_in_another_process() {
    const CHILD: &str = "TERN_CLUSTER_CHILD_SEED";
    if let Ok(seed) = std::env::var(CHILD) {
        let seed: u64 = seed.parse().expect("a seed");
        // The child reports through stdout, which the parent reads.
        #[allow(clippy::print_stdout)]
        {
            println!("HASH {}", run(&Scenario::short(seed)).trace_hash);
        }
        return;
    }
    for seed in [11u64, 12] {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "a_seed_gives_the_same_hash_in_another_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, seed.to_string())
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let child = stdout
            .lines()
            .find_map(|l| l.split("HASH ").nth(1))
            .unwrap_or_else(|| panic!("child printed no hash: {stdout}"));
        assert_eq!(child, run(&Scenario::short(seed)).trace_hash, "seed {seed}");
    }
}

#[test]
fn a_planted_bug_is_caught_and_its_repro_replays_the_same_failure() {
    let planted = Scenario {
        plant_resend_at: Some(40),
        ..Scenario::short(9)
    };
    let first = run(&planted);
    assert!(!first.passed());
    let violation = first
        .history
        .clone()
        .expect_err("the resend is a duplicate");
    assert!(violation.message.contains("w1"), "{violation}");
    let world = first
        .violation
        .clone()
        .expect("the invariant stopped the world");
    assert!(world.contains("repro: SIM_SEED=9"), "{world}");
    assert!(
        first.repro().starts_with("SIM_SEED=9 SIM_SCENARIO_HASH=")
            && first
                .repro()
                .ends_with("--seed 9 --short --plant-resend 40"),
        "{}",
        first.repro()
    );
    let again = run(&planted);
    assert_eq!(
        again.history, first.history,
        "same violation, same record index"
    );
    assert_eq!(again.trace_hash, first.trace_hash);
}
