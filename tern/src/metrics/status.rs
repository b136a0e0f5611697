//! The `/status` document and its table for `app status`.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{Snapshot, catalogue};

pub(super) fn status(snap: &Snapshot) -> Value {
    let rates = snap.sampler.rates();
    let components: Vec<Value> = snap
        .components
        .iter()
        .map(|(name, s)| {
            let rate = rates.iter().find(|r| &r.name == name);
            json!({
                "name": name,
                "queued": s.queued,
                "capacity": s.capacity,
                "handled": s.handled,
                "failures": s.failures,
                "restarts": s.restarts,
                "dropped": s.dropped,
                "handled_per_s": rate.map_or(0.0, |r| r.handled),
                "failures_per_s": rate.map_or(0.0, |r| r.failures),
            })
        })
        .collect();
    let mut remote = Map::new();
    for (k, v) in catalogue::traffic(&snap.remote) {
        remote.insert(k.into(), v.into());
    }
    let mut failed = Map::new();
    for (k, v) in catalogue::failed_requests(&snap.remote) {
        failed.insert(k.into(), v.into());
    }
    remote.insert("failed".into(), Value::Object(failed));
    let peers: Vec<Value> = match &snap.gossip {
        Some(g) => g
            .members
            .iter()
            .filter(|(name, ..)| *name != snap.node)
            .map(|(name, state, health)| json!({"name": name, "state": state, "health": health}))
            .collect(),
        None => snap
            .peers
            .iter()
            .map(|p| json!({"name": p, "state": "configured", "health": null}))
            .collect(),
    };
    let (last, max) = snap.sampler.lag();
    let quantile = |q| snap.ask_latency.quantile(q).map(|d| d.as_secs_f64() * 1e3);
    json!({
        "node": snap.node,
        "generation": snap.generation,
        "uptime_s": snap.sampler.uptime().as_secs_f64(),
        "components": components,
        "remote": remote,
        "peers": peers,
        "gossip_health": snap.gossip.as_ref().map(|g| g.health),
        "runtime": {
            "tasks": snap.runtime.tasks_alive,
            "tasks_panicked": snap.runtime.tasks_panicked,
            "polls": snap.runtime.polls,
        },
        "poll_lag_ms": {
            "last": last.as_secs_f64() * 1e3,
            "max": max.as_secs_f64() * 1e3,
        },
        "busy": snap.sampler.busy(),
        "traffic": snap.traffic.iter().map(|(peer, t)| json!({
            "peer": peer,
            "frames_in": t.frames_in, "bytes_in": t.bytes_in,
            "frames_out": t.frames_out, "bytes_out": t.bytes_out,
        })).collect::<Vec<_>>(),
        "ask_latency_ms": {
            "count": snap.ask_latency.count(),
            "p50": quantile(0.5),
            "p90": quantile(0.9),
            "p99": quantile(0.99),
        },
    })
}

fn num(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_u64().map_or_else(
            || format!("{:.1}", n.as_f64().unwrap_or(0.0)),
            |u| u.to_string(),
        ),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// The `/status` document as the text `app status` prints; fields it does not know are
/// left out, missing ones shown as `-`.
#[must_use]
pub fn status_table(status: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {}  generation {}  up {}s  poll lag {} ms (max {} ms)",
        num(status, "node"),
        num(status, "generation"),
        num(status, "uptime_s"),
        status
            .get("poll_lag_ms")
            .map_or_else(|| "-".into(), |l| num(l, "last")),
        status
            .get("poll_lag_ms")
            .map_or_else(|| "-".into(), |l| num(l, "max")),
    );
    let _ = writeln!(
        out,
        "\n{:<20} {:>7} {:>8} {:>10} {:>9} {:>8} {:>8} {:>8}",
        "COMPONENT",
        "QUEUED",
        "CAPACITY",
        "HANDLED",
        "HANDLED/S",
        "FAILURES",
        "RESTARTS",
        "DROPPED"
    );
    for c in status
        .get("components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "{:<20} {:>7} {:>8} {:>10} {:>9} {:>8} {:>8} {:>8}",
            num(c, "name"),
            num(c, "queued"),
            num(c, "capacity"),
            num(c, "handled"),
            num(c, "handled_per_s"),
            num(c, "failures"),
            num(c, "restarts"),
            num(c, "dropped"),
        );
    }
    if let Some(r) = status.get("remote").and_then(Value::as_object) {
        let _ = write!(out, "\nremote:");
        for (k, v) in r {
            if let Some(o) = v.as_object() {
                for (k2, v2) in o {
                    let _ = write!(out, " {k}.{k2}={v2}");
                }
            } else {
                let _ = write!(out, " {k}={v}");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\n{:<20} {:<12} {:>6}", "PEER", "STATE", "HEALTH");
    for p in status
        .get("peers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "{:<20} {:<12} {:>6}",
            num(p, "name"),
            num(p, "state"),
            num(p, "health")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_components_remote_counters_and_peers_and_tolerates_gaps() {
        let doc = json!({
            "node": "w1", "generation": 7, "uptime_s": 12.5,
            "components": [{"name": "echo", "queued": 2, "capacity": 64, "handled": 100,
                            "handled_per_s": 10.0, "failures": 1, "restarts": 0, "dropped": 0}],
            "remote": {"asks_sent": 3, "failed": {"ask_timeout": 1}},
            "peers": [{"name": "w2", "state": "alive", "health": "0"}],
            "poll_lag_ms": {"last": 0.5, "max": 1.5},
        });
        let t = status_table(&doc);
        assert!(
            t.contains("node w1  generation 7  up 12.5s  poll lag 0.5 ms (max 1.5 ms)"),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("echo") && l.contains("100") && l.contains("64")),
            "{t}"
        );
        assert!(
            t.contains("remote: asks_sent=3 failed.ask_timeout=1"),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("w2") && l.contains("alive")),
            "{t}"
        );
        let empty = status_table(&json!({}));
        assert!(empty.starts_with("node -  generation -"), "{empty}");
    }
}
