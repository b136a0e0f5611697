//! Limits changed at run time for one container (`app set-capacity KEY=VALUE ...`)
//! or for its whole network (`app set-capacity --network ...`), in two layers.
//!
//! * The **local** layer: what was set for this container (the command, or
//!   [`Running::set_capacity`]).
//! * The **network** layer: what was set for the network, spread by gossip as the
//!   `limits` fact: `VERSION ORIGIN` on its first line, then one `KEY=VALUE` per line
//!   (keys as in [`LimitChange::parse`]), at most [`MAX_LIMITS_FACT`] bytes. Each
//!   container reads its members' `limits` facts every second and adopts the one of
//!   its own network (`net` fact) with the highest `(VERSION, ORIGIN)`, compared as
//!   a number then as text, if it is higher than the one it has: never an older one,
//!   and two sets made at once end the same everywhere. It publishes what it adopted
//!   as its own `limits` fact, so the set outlives the container it came from. A fact
//!   that does not parse, is too large or names another network is refused whole and
//!   logged (`tern.limits.fact_refused`).
//!
//! Where both layers set a key, the narrower (smaller) value applies; a key set in
//! one layer only applies as set. The container's [`LimitSet`](crate::ops::LimitSet)
//! holds the result, applied with [`Node::set_limits`] (no restart, nothing accepted
//! evicted, no burst granted).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use tern_discovery::Discovery;
use tern_executor::{JoinHandle, time};

use super::admin::{Response, Sources};
use super::{AppError, Running};
use crate::ops::{LimitChange, LimitKey, OpsError};
use crate::remote::Node;

/// The gossip fact that carries a network's limits.
pub const LIMITS_FACT: &str = "limits";

/// The largest `limits` fact accepted or published, in bytes (facts share a small
/// per-node budget).
pub const MAX_LIMITS_FACT: usize = 512;

/// The highest version a `limits` fact may carry: 2^53, so a version is exact as a
/// JSON number (`GET /limits`), and one more set can always be numbered (a set
/// takes the version it saw plus one; a fact at this version is refused, never
/// overflowed).
pub const MAX_LIMITS_VERSION: u64 = 1 << 53;

/// How often members' `limits` facts are read.
const EVERY: Duration = Duration::from_secs(1);

/// Refused facts remembered (so each is logged once); forgotten past this.
const MAX_REFUSED: usize = 256;

/// A network's limits as gossip carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NetLimits {
    version: u64,
    origin: String,
    limits: BTreeMap<LimitKey, u64>,
}

impl NetLimits {
    fn rank(&self) -> (u64, &str) {
        (self.version, &self.origin)
    }

    fn encode(&self) -> String {
        let mut out = format!("{} {}", self.version, self.origin);
        for (k, v) in &self.limits {
            out.push('\n');
            out.push_str(&LimitChange::new(k.clone(), Some(*v)).to_string());
        }
        out
    }

    /// The limits of a `limits` fact, all or nothing.
    fn decode(fact: &str) -> Result<Self, String> {
        if fact.len() > MAX_LIMITS_FACT {
            return Err(format!("{} bytes, over {MAX_LIMITS_FACT}", fact.len()));
        }
        let mut lines = fact.lines();
        let head = lines.next().unwrap_or_default();
        let (version, origin) = head
            .split_once(' ')
            .ok_or_else(|| "the first line is not `VERSION ORIGIN`".to_owned())?;
        let version: u64 = version
            .parse()
            .map_err(|_| format!("version {version:?} is not a number"))?;
        if version >= MAX_LIMITS_VERSION {
            return Err(format!("version {version} is over {MAX_LIMITS_VERSION}"));
        }
        if origin.is_empty() || origin.contains(' ') {
            return Err("the origin is not one name".to_owned());
        }
        let mut limits = BTreeMap::new();
        for line in lines {
            let change = LimitChange::parse(line).map_err(|e| e.to_string())?;
            let Some(v) = change.value else {
                return Err(format!("{line:?}: a network limit has a value"));
            };
            limits.insert(change.key, v);
        }
        Ok(Self {
            version,
            origin: origin.to_owned(),
            limits,
        })
    }
}

/// The two layers of one container's limits.
#[derive(Debug, Clone, Default)]
pub(super) struct Layers {
    local: BTreeMap<LimitKey, u64>,
    network: Option<NetLimits>,
    /// The container's network (`gossip.network`), with gossip.
    net: Option<String>,
}

impl Layers {
    /// The layers of a container whose limits are `node`'s now (all local).
    pub(super) fn of(node: &Node, net: Option<String>) -> Self {
        let local = node
            .limits()
            .entries()
            .into_iter()
            .filter_map(|c| Some((c.key, c.value?)))
            .collect();
        Self {
            local,
            network: None,
            net,
        }
    }

    fn effective(&self, key: &LimitKey) -> Option<u64> {
        let net = self.network.as_ref().and_then(|n| n.limits.get(key));
        match (self.local.get(key), net) {
            (Some(a), Some(b)) => Some(*a.min(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    fn changes_for<'a>(&self, keys: impl IntoIterator<Item = &'a LimitKey>) -> Vec<LimitChange> {
        let keys: BTreeSet<&LimitKey> = keys.into_iter().collect();
        keys.into_iter()
            .map(|k| LimitChange::new(k.clone(), self.effective(k)))
            .collect()
    }
}

/// Parses `KEY=VALUE` changes (one per item), all or none.
///
/// # Errors
///
/// The first one that does not parse ([`OpsError::BadLimit`]).
pub(super) fn parse_all<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<LimitChange>, OpsError> {
    let changes = items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(LimitChange::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if changes.is_empty() {
        return Err(OpsError::BadLimit {
            text: String::new(),
            why: "no change given; expected KEY=VALUE ...".to_owned(),
        });
    }
    Ok(changes)
}

impl Running {
    /// Changes this container's own limits at run time (the local layer; see the
    /// keys on [`LimitSet`](crate::ops::LimitSet)), all or none; returns the
    /// container's new limits version. Where the network's limits set the same key
    /// lower, the network's value stays in force.
    ///
    /// # Errors
    ///
    /// [`OpsError::BadLimit`] for a value out of range; nothing changes then.
    pub fn set_capacity(&self, changes: &[LimitChange]) -> Result<u64, OpsError> {
        let mut layers = self.limits.borrow_mut();
        let mut next = layers.local.clone();
        for c in changes {
            match c.value {
                Some(v) => next.insert(c.key.clone(), v),
                None => next.remove(&c.key),
            };
        }
        let old = std::mem::replace(&mut layers.local, next);
        let effective = layers.changes_for(changes.iter().map(|c| &c.key));
        match self.node.set_limits(&effective, None) {
            Ok(v) => {
                tracing::info!(name: "tern.limits.set", node = %self.node.name(), version = v,
                    changes = %join(changes), "container limits set");
                Ok(v)
            }
            Err(e) => {
                layers.local = old;
                Err(e)
            }
        }
    }

    /// Changes the limits of this container's whole network (the network layer):
    /// applies them here and publishes them as the `limits` gossip fact, one version
    /// above the one this container has, for every container of the network to adopt.
    /// `KEY=none` lifts a key from the network's limits. Returns the network limits'
    /// new version.
    ///
    /// # Errors
    ///
    /// [`AppError::Gossip`] without gossip (or if the fact is refused);
    /// [`AppError::Limits`] for a value out of range or a set over
    /// [`MAX_LIMITS_FACT`] bytes. Nothing changes then.
    pub fn set_network_capacity(&self, changes: &[LimitChange]) -> Result<u64, AppError> {
        let Some(d) = &self.discovery else {
            return Err(AppError::Gossip(
                "network limits need gossip (a [gossip] section)".to_owned(),
            ));
        };
        let next = {
            let layers = self.limits.borrow();
            let mut limits = layers
                .network
                .as_ref()
                .map(|n| n.limits.clone())
                .unwrap_or_default();
            for c in changes {
                match c.value {
                    Some(v) => limits.insert(c.key.clone(), v),
                    None => limits.remove(&c.key),
                };
            }
            NetLimits {
                // Below MAX_LIMITS_VERSION (only such facts are adopted), so no overflow.
                version: layers
                    .network
                    .as_ref()
                    .map_or(0, |n| n.version)
                    .saturating_add(1),
                origin: self.node.name().to_owned(),
                limits,
            }
        };
        let fact = next.encode();
        if fact.len() > MAX_LIMITS_FACT {
            return Err(AppError::Limits(OpsError::BadLimit {
                text: join(changes),
                why: format!(
                    "the network's limits would take {} bytes, over {MAX_LIMITS_FACT}",
                    fact.len()
                ),
            }));
        }
        let version = next.version;
        // Checked on copies first, published, then applied: all or nothing.
        let mut probe = self.limits.borrow().clone();
        let keys = network_keys(probe.network.as_ref(), &next);
        probe.network = Some(next.clone());
        self.node.limits().apply(&probe.changes_for(&keys), None)?;
        d.set_fact(LIMITS_FACT, fact.as_bytes())
            .map_err(|e| AppError::Gossip(e.to_string()))?;
        adopt(&self.node, &self.limits, next)?;
        Ok(version)
    }

    /// This container's network limits now: their version and origin, and the
    /// limits as `KEY=VALUE` (none before any was set or adopted).
    #[must_use]
    pub fn network_limits(&self) -> Option<(u64, String, Vec<String>)> {
        let layers = self.limits.borrow();
        let n = layers.network.as_ref()?;
        Some((
            n.version,
            n.origin.clone(),
            n.limits
                .iter()
                .map(|(k, v)| LimitChange::new(k.clone(), Some(*v)).to_string())
                .collect(),
        ))
    }
}

fn join(changes: &[LimitChange]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys a change of the network layer from `old` to `next` touches.
fn network_keys(old: Option<&NetLimits>, next: &NetLimits) -> BTreeSet<LimitKey> {
    let mut keys: BTreeSet<LimitKey> = next.limits.keys().cloned().collect();
    if let Some(old) = old {
        keys.extend(old.limits.keys().cloned());
    }
    keys
}

/// Makes `next` the network layer and applies the result to `node`.
fn adopt(node: &Node, layers: &RefCell<Layers>, next: NetLimits) -> Result<(), OpsError> {
    let mut layers = layers.borrow_mut();
    let keys = network_keys(layers.network.as_ref(), &next);
    let old = layers.network.replace(next);
    let changes = layers.changes_for(&keys);
    if let Err(e) = node.set_limits(&changes, None) {
        layers.network = old;
        return Err(e);
    }
    if let Some(n) = &layers.network {
        tracing::info!(name: "tern.limits.network_adopted", node = %node.name(),
            version = n.version, origin = %n.origin, limits = n.limits.len(),
            "network limits adopted");
    }
    Ok(())
}

/// The container's network-limits task: every second, adopts the highest `limits`
/// fact of its network's members that is higher than its own, and republishes it.
pub(super) fn start(
    node: Node,
    discovery: Discovery,
    layers: Rc<RefCell<Layers>>,
) -> JoinHandle<()> {
    tern_executor::spawn(async move {
        let mut refused: BTreeSet<(String, String)> = BTreeSet::new();
        loop {
            time::sleep(EVERY).await;
            let Some(net) = layers.borrow().net.clone() else {
                return;
            };
            let mut best: Option<NetLimits> = None;
            for m in discovery.members() {
                if m.name == node.name() || m.fact("net") != Some(net.as_str()) {
                    continue;
                }
                let Some(fact) = m.fact(LIMITS_FACT) else {
                    continue;
                };
                let candidate = match NetLimits::decode(fact) {
                    Ok(c) => c,
                    Err(why) => {
                        if refused.len() >= MAX_REFUSED {
                            refused.clear();
                        }
                        let digest: String = fact.chars().take(64).collect();
                        if refused.insert((m.name.clone(), digest)) {
                            tracing::warn!(name: "tern.limits.fact_refused", node = %node.name(),
                                from = %m.name, why = %why, "a network limits fact refused");
                        }
                        continue;
                    }
                };
                if best.as_ref().is_none_or(|b| candidate.rank() > b.rank()) {
                    best = Some(candidate);
                }
            }
            let Some(best) = best else { continue };
            let newer = layers
                .borrow()
                .network
                .as_ref()
                .is_none_or(|n| best.rank() > n.rank());
            if !newer {
                continue;
            }
            let fact = best.encode();
            match adopt(&node, &layers, best) {
                Ok(()) => {
                    if let Err(e) = discovery.set_fact(LIMITS_FACT, fact.as_bytes()) {
                        tracing::warn!(name: "tern.limits.not_spread", node = %node.name(),
                            error = %e, "network limits not republished");
                    }
                }
                Err(e) => tracing::warn!(name: "tern.limits.fact_refused", node = %node.name(),
                    error = %e, "network limits could not be applied"),
            }
        }
    })
}

/// `POST /limits?set=CHANGES[&network=1]`: `CHANGES` is `KEY=VALUE` lines (keys
/// as in [`LimitChange::parse`]), applied to this container, or to its network with
/// `network=1`. `400` with the reason for a change that is refused.
pub(super) fn post(args: &BTreeMap<String, String>, sources: &Sources) -> Response {
    let Some(set) = args.get("set") else {
        return Response::text(
            400,
            "Bad Request",
            "POST /limits?set=KEY=VALUE%0A...[&network=1]",
        );
    };
    let changes = match parse_all(set.lines()) {
        Ok(c) => c,
        Err(e) => return Response::text(400, "Bad Request", &e.to_string()),
    };
    let network = args.get("network").is_some_and(|v| v == "1" || v == "true");
    let done = match (&sources.running, &sources.node, network) {
        (Some(r), _, true) => r
            .set_network_capacity(&changes)
            .map(|v| format!("network limits version {v}")),
        (None, _, true) => {
            return Response::text(
                503,
                "Service Unavailable",
                "network limits need a running container with gossip",
            );
        }
        (Some(r), _, false) => r
            .set_capacity(&changes)
            .map(|v| format!("limits version {v}"))
            .map_err(AppError::from),
        (None, Some(n), false) => n
            .set_limits(&changes, None)
            .map(|v| format!("limits version {v}"))
            .map_err(AppError::from),
        (None, None, false) => {
            return Response::text(503, "Service Unavailable", "no container to change");
        }
    };
    match done {
        Ok(what) => Response::text(200, "OK", &format!("{what}: {}", join(&changes))),
        Err(AppError::Gossip(why)) => Response::text(503, "Service Unavailable", &why),
        Err(e) => Response::text(400, "Bad Request", &e.to_string()),
    }
}

/// `GET /limits`: the container's limits in force (`version`, `limits`) and the
/// network's (`network`: `version`, `origin`, `limits`; `null` if none).
pub(super) fn get(sources: &Sources) -> Response {
    let (version, limits) = sources.node.as_ref().map_or((0, Vec::new()), |n| {
        let l = n.limits();
        (
            l.version(),
            l.entries().iter().map(ToString::to_string).collect(),
        )
    });
    let network = sources
        .running
        .as_ref()
        .and_then(Running::network_limits)
        .map_or(serde_json::Value::Null, |(version, origin, limits)| {
            serde_json::json!({"version": version, "origin": origin, "limits": limits})
        });
    Response {
        code: 200,
        reason: "OK",
        content_type: "application/json",
        body: serde_json::json!({"version": version, "limits": limits, "network": network})
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(version: u64, origin: &str, text: &[&str]) -> NetLimits {
        NetLimits {
            version,
            origin: origin.to_owned(),
            limits: text
                .iter()
                .map(|t| LimitChange::parse(t).expect("valid"))
                .map(|c| (c.key, c.value.expect("a value")))
                .collect(),
        }
    }

    #[test]
    fn facts_round_trip_and_bad_ones_are_refused_whole() {
        let n = net(3, "a", &["mailbox.kv=9", "ingress.max=4"]);
        assert_eq!(NetLimits::decode(&n.encode()), Ok(n));
        for bad in [
            "",
            "x a",
            "3",
            "3 a b",
            "3 a\nmailbox.kv=0",
            "3 a\nmailbox.kv=none",
            "3 a\nspeed=1",
        ] {
            assert!(NetLimits::decode(bad).is_err(), "{bad:?}");
        }
        let huge = format!("1 a\n{}", "mailbox.kv=1\n".repeat(100));
        assert!(NetLimits::decode(&huge).is_err());
        // A version that the next set could not number (or JSON not hold exactly).
        let top = MAX_LIMITS_VERSION - 1;
        assert!(NetLimits::decode(&format!("{top} a\nmailbox.kv=1")).is_ok());
        for v in [MAX_LIMITS_VERSION, u64::MAX] {
            let e = NetLimits::decode(&format!("{v} a\nmailbox.kv=1")).unwrap_err();
            assert!(e.contains("is over"), "{e}");
        }
    }

    #[test]
    fn the_narrower_layer_wins_and_ranks_order_by_version_then_origin() {
        let mut l = Layers::default();
        l.local.insert(LimitKey::Mailbox("kv".into()), 5);
        l.local.insert(LimitKey::IngressMax, 50);
        l.network = Some(net(
            1,
            "b",
            &["mailbox.kv=8", "ingress.max=10", "in_flight.kv=3"],
        ));
        assert_eq!(l.effective(&LimitKey::Mailbox("kv".into())), Some(5));
        assert_eq!(l.effective(&LimitKey::IngressMax), Some(10));
        assert_eq!(l.effective(&LimitKey::InFlight("kv".into())), Some(3));
        assert_eq!(l.effective(&LimitKey::ContainerInFlight), None);
        assert!(net(2, "a", &[]).rank() > net(1, "z", &[]).rank());
        assert!(net(2, "b", &[]).rank() > net(2, "a", &[]).rank());
        assert!(parse_all(["", " "]).is_err());
        assert!(parse_all(["mailbox.kv=1", "bad"]).is_err());
    }
}
