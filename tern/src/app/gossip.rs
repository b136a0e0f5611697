//! A container's membership: the `[gossip]` section brought to life, the facts it
//! publishes, and the operator's `members` command.

use std::net::SocketAddr;
use std::time::Duration;

use tern_discovery::{
    Datagrams, Discovery, GossipConfig, Identity, Keyring, MemberInfo, MembersQuery, Membership,
    UdpSocket,
};
use tern_executor::time;

use super::AppError;
use super::config::{GossipSettings, NodeSettings};
use crate::remote::Node;

/// How often `load`, `health` and `spare` facts are refreshed (only changes are
/// gossiped).
const FACTS_EVERY: Duration = Duration::from_secs(5);

fn keyring(g: &GossipSettings) -> Result<Keyring, AppError> {
    let Some((id, key)) = g.keys.first() else {
        return Err(AppError::Gossip("no gossip key".into()));
    };
    let mut ring = Keyring::new(*id, key.clone());
    for (id, key) in &g.keys[1..] {
        ring.install(*id, key.clone())
            .map_err(|e| AppError::Gossip(e.to_string()))?;
    }
    Ok(ring)
}

/// The seed of a real container's gossip randomness: its name and generation mixed
/// (the simulator gives each container a stream of the world's seed instead).
pub(super) fn seed_of(name: &str, generation: u64) -> u64 {
    name.bytes()
        .fold(generation ^ 0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Starts membership for `node` on `socket` (UDP, or the simulator's datagrams),
/// joins through the seeds, publishes `net`, `endpoint`, `components`, then `load`,
/// `health` and `spare` (see [`Spare`]) as they change. `seed` drives the protocol's random choices.
pub(super) fn start<D: Datagrams + 'static>(
    settings: &NodeSettings,
    g: &GossipSettings,
    node: &Node,
    bound: &[String],
    socket: D,
    seed: u64,
) -> Result<Discovery, AppError> {
    let me = Identity {
        name: settings.name.clone(),
        generation: settings.generation,
        addr: g.advertise,
    };
    let core = Membership::new(GossipConfig::new(&g.cluster), keyring(g)?, me, seed)
        .map_err(|e| AppError::Gossip(e.to_string()))?;
    let discovery = Discovery::start(core, socket, &g.seeds);
    node.set_place(tern_actors::flow::Place::new(
        &g.network,
        g.advertise.ip().to_string(),
    ));
    if let Err(e) = discovery.set_fact("net", g.network.as_bytes()) {
        tracing::warn!(node = %settings.name, error = %e, "cannot publish the `net` fact");
    }
    if g.capacity > 0
        && let Err(e) = discovery.set_fact("capacity", g.capacity.to_string().as_bytes())
    {
        tracing::warn!(node = %settings.name, error = %e, "cannot publish the `capacity` fact");
    }
    // A port chosen by the system is known only now.
    let endpoint = if g.endpoint.ends_with(":0") || g.endpoint.ends_with(":*") {
        bound.first().map_or_else(
            || g.endpoint.clone(),
            |b| b.replace("0.0.0.0", &g.advertise.ip().to_string()),
        )
    } else {
        g.endpoint.clone()
    };
    crate::membership::use_discovery(node, &discovery, Some(&endpoint));
    let (d, n) = (discovery.clone(), node.clone());
    let capacity = g.capacity;
    tern_executor::spawn(async move {
        let mut last = (usize::MAX, u32::MAX);
        let mut spare = Spare::new(capacity);
        loop {
            if let Some(text) = spare.sample(time::now(), tern_executor::stats().parked_nanos)
                && d.set_fact("spare", text.as_bytes()).is_err()
            {
                spare.forget();
            }
            let load: usize = n.exports().iter().map(|(_, s)| s.queued).sum();
            let health = d.health();
            // Gossip a load change only past 10 % (or to or from zero): facts are
            // rate-limited, not a metrics pipe.
            let moved = last.0 == usize::MAX
                || (load == 0) != (last.0 == 0)
                || load.abs_diff(last.0) * 10 > last.0;
            if moved && d.set_fact("load", load.to_string().as_bytes()).is_ok() {
                last.0 = load;
            }
            if health != last.1 && d.set_fact("health", health.to_string().as_bytes()).is_ok() {
                last.1 = health;
            }
            time::sleep(FACTS_EVERY).await;
        }
    })
    .detach();
    tracing::info!(name: "tern.app.gossip_started", node = %settings.name, bind = %g.bind, advertise = %g.advertise,
        seeds = ?g.seeds, cluster = %g.cluster, %endpoint, "gossip started");
    Ok(discovery)
}

/// The `spare` fact: the capacity units this container has left, `capacity × (1 −
/// busy)` with a configured `gossip.capacity`, else `1 − busy` (one unit: one
/// container thread fully busy), where busy is the fraction of the last interval the
/// thread was not parked. Published with two decimals, and only when it moved by a
/// tenth of a unit or more of the capacity (facts are rate-limited, not a metrics
/// pipe).
#[derive(Debug)]
pub(super) struct Spare {
    units: f64,
    last_sample: Option<(time::Instant, u64)>,
    published: Option<f64>,
}

impl Spare {
    pub(super) fn new(capacity: u64) -> Self {
        #[allow(clippy::cast_precision_loss)] // a capacity is a small count
        let units = capacity.max(1) as f64;
        Self {
            units,
            last_sample: None,
            published: None,
        }
    }

    /// Takes a sample (`now`, the runtime's parked nanoseconds); the fact's new text
    /// if it should be published.
    pub(super) fn sample(&mut self, now: time::Instant, parked_nanos: u64) -> Option<String> {
        let (t0, p0) = self.last_sample.replace((now, parked_nanos))?;
        let dt = now.saturating_duration_since(t0).as_nanos();
        if dt == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // a ratio
        let idle = (parked_nanos.saturating_sub(p0) as f64 / dt as f64).clamp(0.0, 1.0);
        let spare = self.units * idle;
        let moved = self
            .published
            .is_none_or(|p| (spare - p).abs() >= self.units / 10.0);
        if !moved {
            return None;
        }
        self.published = Some(spare);
        Some(format!("{spare:.2}"))
    }

    /// The last publication failed: publish again at the next sample.
    pub(super) fn forget(&mut self) {
        self.published = None;
    }
}

/// Asks the cluster for its membership table: the node's own advertised address and
/// every seed are asked at once; the first complete answer wins.
pub(super) fn query(
    g: &GossipSettings,
    timeout: Duration,
    nonce: u64,
) -> Result<Vec<MemberInfo>, AppError> {
    let rt = tern_executor::Runtime::new()?;
    rt.block_on(async {
        let any: SocketAddr = if g.advertise.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(any).map_err(|e| AppError::Gossip(e.to_string()))?;
        let mut q = MembersQuery::new(&g.cluster, keyring(g)?, nonce);
        let mut targets = vec![g.advertise];
        targets.extend(g.seeds.iter().copied().filter(|s| *s != g.advertise));
        let answer = time::timeout(timeout, async {
            let mut resend = time::interval(Duration::from_millis(500));
            loop {
                let tick = async {
                    resend.tick().await;
                    None
                };
                let got = async { Some(socket.recv_from().await) };
                match futures_lite::future::or(got, tick).await {
                    None => {
                        // A fresh datagram each time: members refuse a replayed one.
                        for t in &targets {
                            socket.send_to(*t, &q.request());
                        }
                    }
                    Some((_, data)) => {
                        if let Ok(Some((rows, _))) = q.take(&data) {
                            return rows;
                        }
                    }
                }
            }
        })
        .await;
        answer.map_err(|_| {
            AppError::Gossip(format!(
                "no member answered within {timeout:?} (asked {targets:?}; check the addresses, the cluster id and the keys)"
            ))
        })
    })
}

/// The membership table as text.
pub(super) fn table(rows: &[MemberInfo]) -> String {
    let mut out = format!(
        "{:<16} {:<22} {:<8} {:>20} {:>4} {:>6}  {}\n",
        "NAME", "ADDRESS", "STATE", "GENERATION", "INC", "HEALTH", "FACTS"
    );
    for m in rows {
        let facts: Vec<String> = m
            .facts
            .iter()
            .filter(|(k, _)| k.as_str() != "health")
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v).replace('\n', ",");
                format!("{k}={v}")
            })
            .collect();
        out.push_str(&format!(
            "{:<16} {:<22} {:<8} {:>20} {:>4} {:>6}  {}\n",
            m.name,
            m.addr.to_string(),
            m.state.as_str(),
            m.generation,
            m.incarnation,
            m.fact("health").unwrap_or("-"),
            facts.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_is_published_on_a_real_change_only() {
        let t = |s: u64| time::Instant::ZERO + Duration::from_secs(s);
        let mut spare = Spare::new(4);
        assert_eq!(spare.sample(t(0), 0), None, "one sample is no interval");
        // Idle the whole 5 s: all four units spare.
        assert_eq!(spare.sample(t(5), 5_000_000_000).as_deref(), Some("4.00"));
        // Idle 4.9 of 5 s: 3.92, within a tenth of the capacity: not republished.
        assert_eq!(spare.sample(t(10), 9_900_000_000), None);
        // Busy 75 %: one unit left.
        assert_eq!(spare.sample(t(15), 11_150_000_000).as_deref(), Some("1.00"));
        spare.forget();
        assert_eq!(spare.sample(t(20), 12_400_000_000).as_deref(), Some("1.00"));
        // Without a capacity: one unit.
        let mut one = Spare::new(0);
        one.sample(t(0), 0);
        assert_eq!(one.sample(t(5), 2_500_000_000).as_deref(), Some("0.50"));
    }
}
