//! The cluster's components as this container's membership sees them: which member
//! hosts each name and how loaded it is, from the `components`, `load` and `spare`
//! gossip facts (for `app components` and the status page).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};
use tern_actors::remote::COMPONENTS_FACT;
use tern_discovery::MemberInfo;

/// `[{"name", "hosts": [{"node", "state", "load", "spare"}]}]`, by component name
/// (`load` and `spare` are `null` until the member published them), for the
/// members in `members` (from [`tern_discovery::Discovery::members`]).
#[must_use]
pub fn components(members: &[MemberInfo]) -> Value {
    let mut by_name: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for m in members {
        let load = m.fact("load").and_then(|l| l.parse::<u64>().ok());
        let spare = m.fact("spare").and_then(|l| l.parse::<f64>().ok());
        for name in m
            .fact(COMPONENTS_FACT)
            .unwrap_or_default()
            .lines()
            .filter(|n| !n.is_empty())
        {
            by_name.entry(name).or_default().push(json!({
                "node": m.name,
                "state": m.state.as_str(),
                "load": load,
                "spare": spare,
            }));
        }
    }
    Value::Array(
        by_name
            .into_iter()
            .map(|(name, hosts)| json!({"name": name, "hosts": hosts}))
            .collect(),
    )
}

/// The `/components` document as the table `app components` prints.
#[must_use]
pub fn components_table(doc: &Value) -> String {
    let mut out = format!(
        "{:<24} {:>5}  HOSTS (node state load)\n",
        "COMPONENT", "LIVE"
    );
    for c in doc.as_array().into_iter().flatten() {
        let hosts: Vec<&Value> = c
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let live = hosts.iter().filter(|h| h["state"] == "alive").count();
        let list: Vec<String> = hosts
            .iter()
            .map(|h| {
                let load = h["load"]
                    .as_u64()
                    .map_or_else(|| "-".into(), |l| l.to_string());
                format!(
                    "{} {} {load}",
                    h["node"].as_str().unwrap_or("?"),
                    h["state"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<24} {:>5}  {}",
            c["name"].as_str().unwrap_or("?"),
            live,
            list.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_counts_live_hosts_and_shows_load() {
        let doc = json!([
            {"name": "echo", "hosts": [
                {"node": "w1", "state": "alive", "load": 3},
                {"node": "w2", "state": "dead", "load": null},
            ]},
        ]);
        let t = components_table(&doc);
        assert!(
            t.lines()
                .any(|l| l.starts_with("echo") && l.contains("    1  w1 alive 3, w2 dead -")),
            "{t}"
        );
        assert_eq!(components_table(&json!(null)).lines().count(), 1);
    }
}
