//! Log lines as an operator and a machine read them: JSON with stable names and
//! fields, virtual time and node under the simulator, filters, flood control.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tern::log::{Capture, LogFormat, LogSettings};
use tern::remote::{Node, NodeConfig};
use tern::sim::World;
use tern::transport::SimTransport;

fn json_lines(out: &Capture) -> Vec<serde_json::Value> {
    out.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn settings(format: LogFormat, filter: &str) -> LogSettings {
    LogSettings {
        format,
        filter: filter.into(),
        flood_burst: 5,
        flood_window: Duration::from_secs(1),
    }
}

#[test]
fn under_the_simulator_every_line_carries_virtual_time_and_its_node() {
    let out = Capture::default();
    let subscriber =
        tern::log::subscriber(&settings(LogFormat::Json, "info"), out.clone()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        let mut world = World::new(7).expect("world");
        let ids: Vec<_> = ["a", "b"]
            .iter()
            .map(|n| world.add_node(n).expect("node"))
            .collect();
        let names = Rc::new(BTreeMap::from([
            ("a".to_owned(), ids[0]),
            ("b".to_owned(), ids[1]),
        ]));
        for (k, (name, id)) in ["a", "b"].iter().zip(&ids).enumerate() {
            let t = SimTransport::new(*name, world.socket(*id), names.clone());
            let wait = Duration::from_millis(250 * (k as u64 + 1));
            world
                .spawn_on(*id, async move {
                    let node = Node::start(NodeConfig::new(*name), t).expect("node");
                    tern::time::sleep(wait).await;
                    tracing::info!(name: "test.tick", n = 1u64, "tick");
                    drop(node);
                })
                .detach();
        }
        world.run_until(tern::Instant::from_nanos(1_000_000_000));
    });
    let ticks: Vec<_> = json_lines(&out)
        .into_iter()
        .filter(|l| l["name"] == "test.tick")
        .collect();
    assert_eq!(ticks.len(), 2, "{}", out.text());
    assert_eq!(ticks[0]["node"], "a");
    assert_eq!(ticks[0]["t"], "t=0.250000000s");
    assert_eq!(ticks[1]["node"], "b");
    assert_eq!(ticks[1]["t"], "t=0.500000000s");
    assert_eq!(ticks[0]["level"], "INFO");
    assert_eq!(ticks[0]["message"], "tick");
    assert_eq!(ticks[0]["n"], 1);
}

#[test]
fn filters_take_rust_log_syntax_and_text_lines_show_the_stable_name() {
    let out = Capture::default();
    let s = settings(LogFormat::Text, "warn,log_lines=debug");
    let subscriber = tern::log::subscriber(&s, out.clone()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(name: "test.kept", peer = "w2", "debug from this crate");
        tracing::trace!("trace from this crate: filtered");
        tracing::info!(target: "elsewhere", "info elsewhere: filtered");
        tracing::warn!(target: "elsewhere", "warn elsewhere");
    });
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("DEBUG test.kept: debug from this crate peer=w2"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("WARN elsewhere: warn elsewhere"),
        "{}",
        lines[1]
    );
    let bad = tern::log::subscriber(&settings(LogFormat::Text, "x=loud"), Capture::default());
    assert!(bad.is_err());
}

#[test]
fn a_flood_from_one_peer_is_cut_to_a_burst_and_reported_as_suppressed_n() {
    let out = Capture::default();
    let subscriber =
        tern::log::subscriber(&settings(LogFormat::Json, "info"), out.clone()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        let rt = tern::Runtime::builder()
            .virtual_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for _ in 0..100 {
                tracing::warn!(name: "test.bad_frame", peer = "noisy", "bad frame");
            }
            for _ in 0..3 {
                tracing::warn!(name: "test.bad_frame", peer = "quiet", "bad frame");
            }
            tern::time::sleep(Duration::from_millis(1500)).await;
            tracing::info!(name: "test.later", "later");
        });
    });
    let lines = json_lines(&out);
    let count = |peer: &str| {
        lines
            .iter()
            .filter(|l| l["name"] == "test.bad_frame" && l["peer"] == peer)
            .count()
    };
    assert_eq!(count("noisy"), 5, "the burst");
    assert_eq!(count("quiet"), 3, "another peer has its own budget");
    let suppressed: Vec<_> = lines
        .iter()
        .filter(|l| l["name"] == "tern.log.suppressed")
        .collect();
    assert_eq!(suppressed.len(), 1, "{}", out.text());
    assert_eq!(suppressed[0]["event"], "test.bad_frame");
    assert_eq!(suppressed[0]["remote"], "noisy");
    assert_eq!(suppressed[0]["suppressed"], 95);
    assert_eq!(suppressed[0]["t"], "t=1.500000000s");
    assert_eq!(
        lines.last().map(|l| l["name"].clone()),
        Some("test.later".into())
    );
}

#[test]
fn in_a_real_process_lines_carry_the_containers_name() {
    let out = Capture::default();
    let subscriber =
        tern::log::subscriber(&settings(LogFormat::Json, "info"), out.clone()).expect("subscriber");
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(name: "test.before", "outside any runtime: no node");
        tern::log::set_process_node("proc-1");
        tern::Runtime::new().expect("runtime").block_on(async {
            tracing::info!(name: "test.inside", "in the container's runtime");
        });
    });
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "{}", out.text());
    assert!(lines[0].get("node").is_none(), "{}", lines[0]);
    assert_eq!(lines[1]["node"], "proc-1");
    assert!(
        lines[1]["t"].as_str().is_some_and(|t| t.starts_with("20")),
        "system time: {}",
        lines[1]
    );
}
