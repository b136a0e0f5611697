//! Tuning of the membership protocol.

use std::time::Duration;

use crate::error::ConfigError;
use crate::seal::OVERHEAD;

/// Timings, limits and switches of one node's membership protocol.
///
/// The defaults are the LAN values of `design/gossip.md` section 2b: probe every
/// second with a 500 ms timeout and 3 indirect probes, gossip every 200 ms to 3
/// members, anti-entropy every 5 s, datagrams of at most 1,400 bytes.
///
/// ```
/// use std::time::Duration;
/// use tern_gossip::GossipConfig;
///
/// let mut config = GossipConfig::new("prod");
/// config.probe_interval = Duration::from_secs(2);
/// config.validate().unwrap();
/// config.mtu = 100;
/// assert_eq!(config.validate().unwrap_err().field, "mtu");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GossipConfig {
    /// The cluster id: checked on every datagram (a tag in the clear, and the
    /// authenticated data of the seal), so separate clusters never merge.
    pub cluster: String,
    /// SWIM's protocol period T: one probe per period (scaled by local health).
    pub probe_interval: Duration,
    /// How long a direct probe waits for its ack before indirect probes go out
    /// (scaled by local health).
    pub probe_timeout: Duration,
    /// How many members are asked to probe indirectly (k).
    pub indirect_probes: usize,
    /// How often piggy-backed updates are also pushed on their own.
    pub gossip_interval: Duration,
    /// How many members each gossip tick sends to.
    pub gossip_fanout: usize,
    /// Each update is sent `retransmit_mult · ⌈log10(N+1)⌉` times.
    pub retransmit_mult: u32,
    /// Suspicion lasts at least `suspicion_mult · max(1, log10 N) · probe_interval`.
    pub suspicion_mult: u32,
    /// ... and at most `suspicion_max_mult` times that, shortened by independent
    /// confirmations (Lifeguard).
    pub suspicion_max_mult: u32,
    /// Independent confirmations that bring a suspicion down to its minimum.
    pub confirmations: u32,
    /// The local health multiplier's ceiling (Lifeguard's LHM).
    pub max_health: u32,
    /// Lifeguard on (local health, nacks, confirmations shorten suspicion, buddy
    /// system). Off gives plain SWIM with a fixed suspicion timeout: kept for
    /// comparisons.
    pub lifeguard: bool,
    /// Timer lag above which the poll loop counts as stalled (raises local health).
    pub lag_threshold: Duration,
    /// How often a digest is exchanged with one random member (anti-entropy).
    pub anti_entropy_interval: Duration,
    /// How often a random seed gets a digest once joined, so islands merge.
    pub seed_interval: Duration,
    /// How often a random dead member is contacted, so it can refute after a partition.
    pub reconnect_interval: Duration,
    /// How long dead members still get gossip, so they can refute.
    pub gossip_to_dead: Duration,
    /// The first and the largest delay between join attempts (doubling, with jitter).
    pub join_backoff: (Duration, Duration),
    /// How long a leaving node keeps answering after it announced its leave.
    pub leave_propagate: Duration,
    /// How long dead and left members are remembered.
    pub tombstone_ttl: Duration,
    /// Most dead and left members remembered; the oldest go first.
    pub max_tombstones: usize,
    /// Largest datagram, sealed, in bytes. Never relies on IP fragmentation.
    pub mtu: usize,
    /// Per-node budget of facts (keys and values), refused at the API beyond it (at
    /// most 4,096; one fact must also fit one datagram: `mtu - 560` bytes).
    pub max_facts_bytes: usize,
    /// The share of a datagram's piggy-back room reserved for membership updates (the
    /// rest is for facts; either may use what the other leaves).
    pub membership_share_percent: u8,
    /// Most updates waiting to be gossiped, per queue; the most-sent go first.
    pub max_queue: usize,
    /// Most datagrams read per wake-up, so gossip and ZeroMQ cannot starve each other.
    pub read_batch: usize,
    /// Most datagrams one anti-entropy answer sends.
    pub max_sync_datagrams: usize,
    /// Most members known (alive and tombstones).
    pub max_members: usize,
}

/// Room in a datagram for one fact's key and value: what is left of the MTU after the
/// seal, the packet's own fields and a node name of the longest kind.
pub(crate) const fn fact_room(mtu: usize) -> usize {
    mtu.saturating_sub(OVERHEAD + 512)
}

impl GossipConfig {
    /// The defaults, for cluster `cluster`.
    #[must_use]
    pub fn new(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_owned(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_probes: 3,
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            retransmit_mult: 4,
            suspicion_mult: 4,
            suspicion_max_mult: 6,
            confirmations: 2,
            max_health: 8,
            lifeguard: true,
            lag_threshold: Duration::from_millis(200),
            anti_entropy_interval: Duration::from_secs(5),
            seed_interval: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(30),
            gossip_to_dead: Duration::from_secs(30),
            join_backoff: (Duration::from_secs(1), Duration::from_secs(30)),
            leave_propagate: Duration::from_secs(1),
            tombstone_ttl: Duration::from_secs(3600),
            max_tombstones: 10_000,
            mtu: 1400,
            max_facts_bytes: 1024,
            membership_share_percent: 60,
            max_queue: 4096,
            read_batch: 64,
            max_sync_datagrams: 32,
            max_members: 100_000,
        }
    }

    /// Checks every value; the error names the first bad one.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.cluster.is_empty() || self.cluster.len() > 64 {
            return bad("cluster", "must be 1 to 64 bytes");
        }
        let positive = [
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("gossip_interval", self.gossip_interval),
            ("anti_entropy_interval", self.anti_entropy_interval),
            ("seed_interval", self.seed_interval),
            ("reconnect_interval", self.reconnect_interval),
            ("join_backoff", self.join_backoff.0),
            ("tombstone_ttl", self.tombstone_ttl),
        ];
        for (field, d) in positive {
            if d.is_zero() {
                return bad(field, "must be more than zero");
            }
        }
        if self.probe_timeout >= self.probe_interval {
            return bad("probe_timeout", "must be shorter than probe_interval");
        }
        if self.join_backoff.1 < self.join_backoff.0 {
            return bad("join_backoff", "the largest delay is below the first");
        }
        if self.gossip_fanout == 0 {
            return bad("gossip_fanout", "must be at least 1");
        }
        if self.retransmit_mult == 0 || self.suspicion_mult == 0 {
            return bad("retransmit_mult", "multipliers must be at least 1");
        }
        if self.suspicion_max_mult == 0 {
            return bad("suspicion_max_mult", "must be at least 1");
        }
        if !(576..=65_000).contains(&self.mtu) {
            return bad("mtu", "must be 576 to 65000 bytes");
        }
        if self.max_facts_bytes == 0 || self.max_facts_bytes > 4096 {
            return bad("max_facts_bytes", "must be 1 to 4096");
        }
        if self.membership_share_percent == 0 || self.membership_share_percent >= 100 {
            return bad("membership_share_percent", "must be 1 to 99");
        }
        if self.max_queue == 0 || self.read_batch == 0 || self.max_sync_datagrams == 0 {
            return bad(
                "max_queue",
                "queue, batch and sync limits must be at least 1",
            );
        }
        if self.max_members < 2 {
            return bad("max_members", "must be at least 2");
        }
        Ok(())
    }
}
