//! The sim_cluster timeline as Chrome trace event JSON (`--trace-out`): it parses, has
//! one process per node, links every send to its delivery or marks it lost, shows the
//! crash as an instant event, says when the cap cut it short, and is the same bytes for
//! the same seed, without changing the trace hash.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tern_examples::cluster::{Scenario, run, run_with_timeline};

const CAP: usize = 1_000_000;

fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("the trace is valid JSON")
}

fn events(v: &Value) -> &Vec<Value> {
    v["traceEvents"]
        .as_array()
        .expect("traceEvents is an array")
}

/// The node names by process id, from the `process_name` metadata.
fn processes(v: &Value) -> BTreeMap<u64, String> {
    events(v)
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .map(|e| {
            (
                e["pid"].as_u64().expect("pid"),
                e["args"]["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

/// Checks that every flow start has its finish and the other way round, and that every
/// send without a flow is marked lost. Returns (flows, lost sends).
fn check_flows(v: &Value) -> (usize, usize) {
    let ids = |ph: &str| -> BTreeSet<u64> {
        events(v)
            .iter()
            .filter(|e| e["ph"] == ph)
            .map(|e| e["id"].as_u64().expect("flow id"))
            .collect()
    };
    let (starts, finishes) = (ids("s"), ids("f"));
    assert_eq!(starts, finishes, "every flow start has its finish");
    let mut lost = 0;
    for e in events(v).iter().filter(|e| e["name"] == "send") {
        let seq = e["args"]["seq"].as_u64().expect("seq");
        if e["args"]["lost"] == true {
            assert!(!starts.contains(&seq), "a lost send has no flow: {e}");
            lost += 1;
        } else {
            assert!(
                starts.contains(&seq),
                "send {seq} is neither linked nor lost"
            );
        }
    }
    (starts.len(), lost)
}

#[test]
fn the_timeline_parses_with_a_process_per_node_and_linked_messages() {
    for seed in 0..3u64 {
        let s = Scenario::short(seed);
        let (report, json) = run_with_timeline(&s, CAP);
        let v = parse(&json.expect("a timeline was kept"));
        let names: Vec<String> = processes(&v).into_values().collect();
        assert_eq!(names, ["front", "w1", "w2", "w3", "w4"], "seed {seed}");
        let (flows, _lost) = check_flows(&v);
        assert!(flows > 500, "seed {seed}: only {flows} messages linked");
        assert_eq!(v["otherData"]["truncated"], false);
        let kept = v["otherData"]["events"].as_u64().expect("events");
        assert!(kept > 0 && kept < CAP as u64);
        // Keeping the timeline changes nothing the run does.
        assert_eq!(report.trace_hash, run(&s).trace_hash, "seed {seed}");
        assert!(report.passed(), "{report}");
    }
}

#[test]
fn the_same_seed_writes_the_same_bytes() {
    let s = Scenario::short(4);
    let (_, a) = run_with_timeline(&s, CAP);
    let (_, b) = run_with_timeline(&s, CAP);
    let (a, b) = (a.expect("a timeline"), b.expect("a timeline"));
    assert_eq!(a.len(), b.len());
    assert!(a == b, "two runs of seed 4 wrote different timelines");
    let (_, other) = run_with_timeline(&Scenario::short(5), CAP);
    assert_ne!(Some(a), other, "another seed, another timeline");
}

#[test]
fn the_crash_and_the_partition_are_instant_events_on_their_nodes() {
    let (_, json) = run_with_timeline(&Scenario::short(2), CAP);
    let v = parse(&json.expect("a timeline"));
    let pid_of = |name: &str| {
        processes(&v)
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(pid, _)| pid)
            .expect("a process for the node")
    };
    let instants = |name: &str| -> Vec<&Value> {
        events(&v)
            .iter()
            .filter(|e| e["ph"] == "i" && e["name"] == name)
            .collect()
    };
    let crashes = instants("crash");
    assert_eq!(crashes.len(), 1, "one crash in the script");
    assert_eq!(crashes[0]["pid"].as_u64(), Some(pid_of("w3")));
    assert!(crashes[0]["ts"].as_f64().expect("ts") > 0.0);
    let restarts = instants("restart");
    assert_eq!(restarts.len(), 1);
    assert!(restarts[0]["ts"].as_f64() > crashes[0]["ts"].as_f64());
    let partitions = instants("partition");
    let on: BTreeSet<u64> = partitions
        .iter()
        .map(|e| e["pid"].as_u64().expect("pid"))
        .collect();
    assert_eq!(on, BTreeSet::from([pid_of("front"), pid_of("w2")]));
    for e in &partitions {
        let other = if e["pid"].as_u64() == Some(pid_of("front")) {
            "w2"
        } else {
            "front"
        };
        assert_eq!(e["args"]["peer"], other, "{e}");
    }
}

#[test]
fn a_capped_timeline_says_it_was_truncated_and_still_parses() {
    let (_, json) = run_with_timeline(&Scenario::short(3), 300);
    let v = parse(&json.expect("a timeline"));
    assert_eq!(v["otherData"]["truncated"], true);
    assert_eq!(v["otherData"]["events"], 300);
    assert!(v["otherData"]["events_left_out"].as_u64() > Some(0));
    check_flows(&v);
    let (_, none) = run_with_timeline(&Scenario::short(3), 0);
    assert!(none.is_none(), "cap 0 keeps no timeline");
}
