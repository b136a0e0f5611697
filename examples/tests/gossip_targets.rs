//! The membership targets of `docs/design/gossip.md` §2b at a small size under `cargo test`
//! (the N=100 and N=1,000 sweeps are `examples/gossip_sim.rs`). Each test runs one
//! target over a few seeds and asserts every run's bounds and invariants, and the
//! target's aggregate checks (`tern_examples::gossip::judge`), scaled to the size.

use tern_examples::gossip::{self, Outcome};

/// Cluster size of these tests.
const N: usize = 20;

fn runs(target: &str, seeds: std::ops::Range<u64>) -> Vec<Outcome> {
    let runs: Vec<Outcome> = seeds.map(|s| gossip::run(target, s, N)).collect();
    for o in &runs {
        assert!(o.passed(), "{}\nrepro: {}", o.line(), o.repro());
    }
    runs
}

fn judged(target: &str, seeds: std::ops::Range<u64>, skip: &[&str]) -> Vec<Outcome> {
    let r = runs(target, seeds);
    for (what, v, ok) in gossip::judge(target, &r) {
        if skip.iter().any(|s| what.contains(s)) {
            continue;
        }
        assert!(ok, "{target}: {what}: {v}");
    }
    r
}

#[test]
fn t1_broadcast_reaches_everyone() {
    judged("T1", 0..3, &[]);
}

#[test]
fn t1b_broadcast_at_10_percent_loss() {
    judged("T1b", 0..3, &[]);
}

#[test]
fn t2_crash_is_detected_everywhere() {
    // The mean of the first suspicion is a sweep-level target (see BENCHMARKS.md).
    let r = judged("T2", 0..3, &["first suspicion mean"]);
    for o in &r {
        assert!(o.get("first_suspect_s").unwrap() <= 5.0, "{}", o.line());
    }
}

#[test]
fn t3a_no_false_dead_under_loss() {
    judged("T3a", 0..2, &[]);
}

#[test]
fn t3b_stalls_with_and_without_lifeguard() {
    let r = runs("T3b", 0..2);
    for o in &r {
        assert_eq!(o.get("dead_lifeguard"), Some(0.0), "{}", o.line());
        assert!(o.get("detect_lifeguard_s").unwrap().is_finite());
    }
}

#[test]
fn t3c_semi_detached_node() {
    judged("T3c", 0..3, &[]);
}

#[test]
fn t4_cold_start_with_dead_seeds_forms_one_cluster() {
    judged("T4", 0..3, &[]);
}

#[test]
fn t4b_join_through_one_seed() {
    judged("T4b", 0..3, &[]);
}

#[test]
fn t5_restart_with_a_new_generation() {
    judged("T5", 0..3, &[]);
}

#[test]
fn t6_leave_is_recorded_as_left() {
    // Every run: all record left within 12 rounds, none failed.
    judged("T6", 0..3, &[]);
}

#[test]
fn t7_partition_heals() {
    judged("T7", 0..2, &[]);
}

#[test]
fn t8_steady_state_bandwidth_and_mtu() {
    judged("T8", 0..2, &[]);
}

#[test]
fn t9_facts_storm() {
    judged("T9", 0..2, &[]);
}

#[test]
fn t10_poll_loop_stall() {
    judged("T10", 0..3, &[]);
}

/// The checks can fail: a run whose bound is broken is reported as failed, with a
/// repro line, and the aggregate judge fails a target whose numbers miss it.
#[test]
fn a_missed_target_fails() {
    let mut o = gossip::run("T6", 0, N);
    assert!(o.passed());
    o.metrics.retain(|(k, _)| k != "left_rounds");
    o.metrics.push(("left_rounds".into(), 40.0));
    let verdicts = gossip::judge("T6", &[o.clone()]);
    assert!(verdicts.iter().any(|(_, _, ok)| !ok));
    let (_, ok) = gossip::summary("T6", &[o.clone()]);
    assert!(!ok);
    let line = o.line();
    let back = Outcome::parse(&line).unwrap();
    assert_eq!(back.get("left_rounds"), Some(40.0));
    assert!(o.repro().contains("--target T6 --n 20 --seed 0"));
}

#[test]
fn a_seed_replays_exactly() {
    // The membership core reads no clock and draws only from its seed, and the
    // simulator is deterministic: the same seed gives the same run, to the nanosecond.
    for target in ["T2", "T6"] {
        let a = gossip::run(target, 11, N);
        let b = gossip::run(target, 11, N);
        assert_eq!(a.line(), b.line(), "{target}: seed 11 replays");
    }
    let first = |seed| gossip::run("T2", seed, N).get("first_suspect_s");
    assert_ne!(first(11), first(12), "another seed, another run");
}
