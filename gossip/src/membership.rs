//! The sans-IO membership core: state, the public API, and the merge of what it hears.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::rng::Rng;
use tern_proto::v1::gossip::{Fact, MemberState, Update};

use crate::broadcast::Queue;
use crate::config::{GossipConfig, fact_room};
use crate::error::{ConfigError, FactError};
use crate::member::{Member, MemberEvent, MemberInfo, State};
use crate::replay::Window;
use crate::seal::{Keyring, Sealer};

/// Nanoseconds on the runtime's clock (virtual under the simulator).
pub type Nanos = u64;

pub(crate) fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Who this node is: a name, a boot generation (a newer one replaces an older one at
/// once), and the address other members reach its gossip socket at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The node name, unique in the cluster.
    pub name: String,
    /// The boot generation: must grow at every restart (boot time in nanoseconds is
    /// the usual choice).
    pub generation: u64,
    /// The advertised gossip address.
    pub addr: SocketAddr,
}

/// Mixed into the seed for the probe sequence stream.
const SEQ_STREAM: u64 = 0x5e90_5e90_5e90_5e90;

/// Counters of one node's membership protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GossipStats {
    /// Datagrams sent.
    pub sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// The largest datagram sent.
    pub largest_sent: usize,
    /// Datagrams refused before parsing: not a tern gossip datagram, too short, or an
    /// unsupported version.
    pub bad_header: u64,
    /// Datagrams from another cluster.
    pub other_cluster: u64,
    /// Datagrams sealed with a key this node does not hold.
    pub unknown_key: u64,
    /// Datagrams that failed authentication.
    pub forged: u64,
    /// Authentic datagrams whose contents were invalid, or whose sender or generation
    /// differ from the ones in their nonce.
    pub malformed: u64,
    /// Datagrams over [`GossipConfig::mtu`], refused before decryption.
    pub oversize: u64,
    /// Authentic datagrams whose nonce counter was already accepted (a replay).
    pub replayed: u64,
    /// Authentic datagrams whose nonce counter is older than the replay window.
    pub too_old: u64,
    /// Authentic datagrams from an older generation than the newest one known for
    /// their sender.
    pub old_generation: u64,
    /// Authentic datagrams from a new sender refused because the replay-window table
    /// was full (more senders than [`GossipConfig::max_members`] since the last
    /// collection).
    pub replay_table_full: u64,
    /// Probes sent (direct).
    pub probes: u64,
    /// Probes that got no ack, directly or indirectly.
    pub probe_failures: u64,
    /// Indirect probe requests sent.
    pub indirect: u64,
    /// Nacks received.
    pub nacks: u64,
    /// Acks and nacks that matched no probe or relay on (sequence number, target,
    /// sender): late, replayed or forged.
    pub stray_acks: u64,
    /// Suspicions this node started.
    pub suspicions: u64,
    /// Times this node refuted a suspicion of itself.
    pub refutations: u64,
    /// Members this node declared dead.
    pub declared_dead: u64,
    /// Updates dropped because a gossip queue was full.
    pub queue_drops: u64,
    /// Facts from other members refused (over the size limit).
    pub facts_refused: u64,
    /// `members` queries not answered: too small a request for one part of the answer
    /// (see [`QUERY_AMPLIFICATION`](crate::QUERY_AMPLIFICATION)), or a part past the end.
    pub queries_refused: u64,
    /// Anti-entropy exchanges started.
    pub syncs: u64,
    /// Timer wake-ups that came later than the lag threshold (a stalled loop).
    pub late_timers: u64,
}

#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) target: String,
    pub(crate) seq: u64,
    pub(crate) direct_deadline: Nanos,
    pub(crate) indirect_sent: bool,
    pub(crate) nacks_expected: u32,
    pub(crate) nacks: u32,
    pub(crate) acked: bool,
    /// The members asked to probe indirectly: their acks and nacks count, no one
    /// else's.
    pub(crate) helpers: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) requester: SocketAddr,
    /// The member probed for the requester: only its own ack is forwarded.
    pub(crate) target: String,
    pub(crate) seq: u64,
    pub(crate) deadline: Nanos,
}

/// The membership protocol of one node, as a state machine: SWIM failure detection
/// with Lifeguard, piggy-backed and periodic gossip, anti-entropy, join, leave and
/// per-member facts.
///
/// It does no I/O and reads no clock: feed it datagrams ([`Membership::handle_datagram`])
/// and timer expiries ([`Membership::handle_timer`]) with the current time, send what
/// [`Membership::poll_transmit`] returns, and wake it at [`Membership::next_deadline`].
/// Randomness comes from the seed given at construction, so a run replays exactly.
///
/// ```
/// use std::net::SocketAddr;
/// use tern_gossip::{GossipConfig, Identity, Key, Keyring, Membership, State};
///
/// let ring = Keyring::new(1, Key::from_bytes([9; 32]));
/// let id = |name: &str, port| Identity {
///     name: name.into(), generation: 1, addr: SocketAddr::from(([127, 0, 0, 1], port)),
/// };
/// let mut a = Membership::new(GossipConfig::new("demo"), ring.clone(), id("a", 7001), 1).unwrap();
/// let mut b = Membership::new(GossipConfig::new("demo"), ring, id("b", 7002), 2).unwrap();
/// b.join(&[a.addr()], 0);
/// // Deliver everything instantly until both are quiet.
/// let mut now = 0;
/// for _ in 0..20 {
///     now += 100_000_000;
///     a.handle_timer(now);
///     b.handle_timer(now);
///     while let Some((to, bytes)) = b.poll_transmit() { a.handle_datagram(now, b.addr(), &bytes); }
///     while let Some((to, bytes)) = a.poll_transmit() { b.handle_datagram(now, a.addr(), &bytes); }
/// }
/// assert_eq!(a.member("b").unwrap().state, State::Alive);
/// assert_eq!(b.member("a").unwrap().state, State::Alive);
/// ```
#[derive(Debug)]
pub struct Membership {
    pub(crate) cfg: GossipConfig,
    pub(crate) name: String,
    pub(crate) generation: u64,
    pub(crate) addr: SocketAddr,
    pub(crate) incarnation: u64,
    /// When a leave completes.
    pub(crate) leaving: Option<Nanos>,
    pub(crate) left: bool,
    pub(crate) members: BTreeMap<String, Member>,
    /// Members not down, this node included.
    pub(crate) live: usize,
    pub(crate) facts: BTreeMap<String, (Vec<u8>, u64)>,
    pub(crate) facts_version: u64,
    pub(crate) probe_list: Vec<String>,
    pub(crate) probe_next: usize,
    pub(crate) probe: Option<Probe>,
    pub(crate) relays: BTreeMap<u64, Relay>,
    pub(crate) suspects: BTreeSet<(Nanos, String)>,
    pub(crate) recent_dead: VecDeque<(Nanos, String)>,
    pub(crate) health: u32,
    pub(crate) member_queue: Queue<Update>,
    pub(crate) fact_queue: Queue<Fact>,
    pub(crate) seeds: Vec<SocketAddr>,
    pub(crate) joined: bool,
    pub(crate) join_at: Nanos,
    pub(crate) join_delay: Nanos,
    pub(crate) next_probe: Nanos,
    pub(crate) next_gossip: Nanos,
    pub(crate) next_sync: Nanos,
    pub(crate) next_seed: Nanos,
    pub(crate) next_reconnect: Nanos,
    pub(crate) next_gc: Nanos,
    pub(crate) planned: Option<Nanos>,
    pub(crate) out: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(crate) events: VecDeque<MemberEvent>,
    pub(crate) rng: Rng,
    /// Draws probe sequence numbers: its own stream, so they cannot be guessed from
    /// outside and the other random choices stay as they were for a seed.
    pub(crate) seq_rng: Rng,
    pub(crate) stats: GossipStats,
    pub(crate) sealer: Sealer,
    /// Replay windows by sender hash (see [`crate::replay`]); kept for known members
    /// and tombstones.
    pub(crate) windows: BTreeMap<u64, Window>,
    /// Replay windows of `members` queries, by the asker's generation.
    pub(crate) query_windows: BTreeMap<u64, Window>,
}

impl Membership {
    /// A node that knows only itself. Call [`Membership::join`] to reach the others.
    /// `seed` drives every random choice (probe order, gossip targets, jitter).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a bad configuration value or identity.
    pub fn new(
        cfg: GossipConfig,
        keyring: Keyring,
        me: Identity,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        if me.name.is_empty() || me.name.len() > 255 {
            return Err(ConfigError {
                field: "name",
                reason: "must be 1 to 255 bytes".into(),
            });
        }
        let sealer = Sealer::new(&cfg.cluster, keyring, &me.name, me.generation);
        Ok(Self {
            member_queue: Queue::new(cfg.max_queue),
            fact_queue: Queue::new(cfg.max_queue),
            cfg,
            name: me.name,
            generation: me.generation,
            addr: me.addr,
            incarnation: 0,
            leaving: None,
            left: false,
            members: BTreeMap::new(),
            live: 1,
            facts: BTreeMap::new(),
            facts_version: 0,
            probe_list: Vec::new(),
            probe_next: 0,
            probe: None,
            relays: BTreeMap::new(),
            suspects: BTreeSet::new(),
            recent_dead: VecDeque::new(),
            health: 0,
            seeds: Vec::new(),
            joined: true,
            join_at: 0,
            join_delay: 0,
            next_probe: 0,
            next_gossip: 0,
            next_sync: 0,
            next_seed: 0,
            next_reconnect: 0,
            next_gc: 0,
            planned: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            rng: Rng::new(seed),
            seq_rng: Rng::new(seed ^ SEQ_STREAM),
            stats: GossipStats::default(),
            sealer,
            windows: BTreeMap::new(),
            query_windows: BTreeMap::new(),
        })
    }

    /// Starts joining through `seeds` (its own address is skipped): a join request
    /// goes to every seed at once, again with exponential backoff and jitter until one
    /// answers, and, once joined, a random seed still gets a digest every
    /// [`GossipConfig::seed_interval`] so separate islands merge. With no seed the node
    /// is a cluster of one that others join.
    pub fn join(&mut self, seeds: &[SocketAddr], now: Nanos) {
        self.seeds = seeds.iter().copied().filter(|s| *s != self.addr).collect();
        self.seeds.dedup();
        self.joined = self.seeds.is_empty();
        self.join_at = now;
        self.join_delay = nanos(self.cfg.join_backoff.0);
        let t = |d: Duration| now.saturating_add(nanos(d));
        self.next_probe = t(self.cfg.probe_interval);
        self.next_gossip = t(self.cfg.gossip_interval);
        self.next_sync = t(self.cfg.anti_entropy_interval);
        self.next_seed = t(self.cfg.seed_interval);
        self.next_reconnect = t(self.cfg.reconnect_interval);
        self.next_gc = t(Duration::from_secs(1));
    }

    /// Announces a graceful leave: every member records this node as *left* (never as
    /// failed). The node keeps answering for [`GossipConfig::leave_propagate`]; then
    /// [`Membership::has_left`] is `true` and the driver may stop.
    pub fn leave(&mut self, now: Nanos) {
        if self.leaving.is_some() {
            return;
        }
        self.incarnation += 1;
        self.leaving = Some(now.saturating_add(nanos(self.cfg.leave_propagate)));
        self.probe = None;
        let me = self.self_update();
        self.member_queue.push(self.name.clone(), me.clone());
        let targets = self.random_live(self.cfg.gossip_fanout.max(3), &[]);
        for (_, addr) in targets {
            self.send(addr, None, vec![me.clone()]);
        }
        tracing::info!(node = %self.name, "leaving the cluster");
    }

    /// Whether a leave has completed.
    #[must_use]
    pub const fn has_left(&self) -> bool {
        self.left
    }

    /// This node's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configuration this node runs with (a driver reads
    /// [`GossipConfig::read_batch`] from it).
    #[must_use]
    pub const fn config(&self) -> &GossipConfig {
        &self.cfg
    }

    /// This node's advertised address.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// This node's generation.
    #[must_use]
    pub const fn generation(&self) -> u64 {
        self.generation
    }

    /// This node's incarnation (raised at each refutation).
    #[must_use]
    pub const fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether a seed (or any member) has answered yet.
    #[must_use]
    pub const fn is_joined(&self) -> bool {
        self.joined
    }

    /// Lifeguard's local health score: 0 is healthy, up to
    /// [`GossipConfig::max_health`]. Probe intervals and timeouts scale by `1 + score`.
    #[must_use]
    pub const fn health(&self) -> u32 {
        self.health
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> GossipStats {
        GossipStats {
            queue_drops: self.member_queue.dropped + self.fact_queue.dropped,
            ..self.stats
        }
    }

    /// Updates waiting to be gossiped: (membership, facts).
    #[must_use]
    pub fn queue_depths(&self) -> (usize, usize) {
        (self.member_queue.len(), self.fact_queue.len())
    }

    /// The members known, this node included, by name: alive, suspect, and
    /// tombstones of dead and left ones.
    #[must_use]
    pub fn members(&self) -> Vec<MemberInfo> {
        let mut out: Vec<MemberInfo> = self.members.values().map(Member::info).collect();
        let me = self.self_info();
        let at = out.partition_point(|m| m.name < me.name);
        out.insert(at, me);
        out
    }

    /// One member (or this node) by name.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<MemberInfo> {
        if name == self.name {
            return Some(self.self_info());
        }
        self.members.get(name).map(Member::info)
    }

    /// How many members are alive or suspect, this node included.
    #[must_use]
    pub const fn live_members(&self) -> usize {
        self.live
    }

    fn self_info(&self) -> MemberInfo {
        self.self_member().info()
    }

    pub(crate) fn self_member(&self) -> Member {
        Member {
            name: self.name.clone(),
            generation: self.generation,
            incarnation: self.incarnation,
            state: if self.leaving.is_some() {
                State::Left
            } else {
                State::Alive
            },
            addr: self.addr,
            facts: self.facts.clone(),
            facts_version: self.facts_version,
            since: 0,
            suspicion: None,
        }
    }

    pub(crate) fn self_update(&self) -> Update {
        Update {
            name: self.name.clone(),
            generation: self.generation,
            incarnation: self.incarnation,
            state: if self.leaving.is_some() {
                MemberState::Left
            } else {
                MemberState::Alive
            }
            .into(),
            addr: self.addr.to_string(),
            facts_version: self.facts_version,
            from: String::new(),
        }
    }

    /// Sets one of this node's facts (`components`, `capacity`, `load`, `net`, ...);
    /// it spreads with its own gossip budget and through anti-entropy. An empty value
    /// deletes the key.
    ///
    /// # Errors
    ///
    /// [`FactError::BadKey`], [`FactError::TooLarge`] when the facts would exceed
    /// [`GossipConfig::max_facts_bytes`] or one fact would not fit a datagram, and
    /// [`FactError::Left`].
    pub fn set_fact(&mut self, key: &str, value: &[u8]) -> Result<(), FactError> {
        if self.leaving.is_some() {
            return Err(FactError::Left);
        }
        if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FactError::BadKey(key.to_owned()));
        }
        if self.facts.get(key).is_some_and(|(v, _)| v == value) {
            return Ok(());
        }
        let room = fact_room(self.cfg.mtu);
        if key.len() + value.len() > room {
            return Err(FactError::TooLarge {
                size: key.len() + value.len(),
                max: room,
            });
        }
        let size: usize = self
            .facts
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, (v, _))| k.len() + v.len())
            .sum::<usize>()
            + key.len()
            + value.len();
        if size > self.cfg.max_facts_bytes {
            return Err(FactError::TooLarge {
                size,
                max: self.cfg.max_facts_bytes,
            });
        }
        let since = self.facts_version;
        self.facts_version += 1;
        self.facts
            .insert(key.to_owned(), (value.to_vec(), self.facts_version));
        let fact = Fact {
            node: self.name.clone(),
            generation: self.generation,
            key: key.to_owned(),
            value: value.to_vec(),
            version: self.facts_version,
            since,
        };
        self.fact_queue.push(format!("{}/{key}", self.name), fact);
        Ok(())
    }

    /// This node's own facts.
    #[must_use]
    pub fn facts(&self) -> BTreeMap<String, Vec<u8>> {
        self.facts
            .iter()
            .filter(|(_, (v, _))| !v.is_empty())
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// The keyring, to rotate keys at run time (install, set primary, remove).
    pub fn keyring_mut(&mut self) -> &mut Keyring {
        self.sealer.keyring_mut()
    }

    /// Reports how late the poll loop ran a timer (or handled I/O). A lag above
    /// [`GossipConfig::lag_threshold`] raises the local health score, so this node
    /// probes more patiently instead of suspecting healthy members (Lifeguard).
    pub fn note_lag(&mut self, lag: Duration) {
        if lag > self.cfg.lag_threshold {
            self.stats.late_timers += 1;
            if self.cfg.lifeguard {
                self.raise_health(1);
            }
        }
    }

    /// The next datagram to send, sealed and at most [`GossipConfig::mtu`] bytes.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    /// The next change in this node's view.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    pub(crate) fn raise_health(&mut self, by: u32) {
        self.health = (self.health + by).min(self.cfg.max_health);
    }

    pub(crate) fn lower_health(&mut self) {
        self.health = self.health.saturating_sub(1);
    }

    /// A probe sequence number: random (never 0), so a datagram naming one cannot be
    /// made up without having seen the probe.
    pub(crate) fn next_seq(&mut self) -> u64 {
        loop {
            let seq = self.seq_rng.next_u64();
            if seq != 0 {
                return seq;
            }
        }
    }

    /// `4 · ⌈log10(N+1)⌉` sends per update.
    pub(crate) fn retransmit_limit(&self) -> u32 {
        // ⌈log10(N+1)⌉: the powers of ten below N+1.
        let n = self.live + 1;
        let mut digits: u32 = 0;
        let mut p = 1usize;
        while p < n {
            p = p.saturating_mul(10);
            digits += 1;
        }
        self.cfg.retransmit_mult * digits.max(1)
    }

    /// Lifeguard's suspicion timeout with `confirmations` independent suspecters.
    pub(crate) fn suspicion_timeout(&self, confirmations: usize) -> Nanos {
        #[allow(clippy::cast_precision_loss)]
        let n = self.live.max(1) as f64;
        let t = self.cfg.probe_interval.as_secs_f64();
        let min = f64::from(self.cfg.suspicion_mult) * n.log10().max(1.0) * t;
        if !self.cfg.lifeguard {
            return nanos(Duration::from_secs_f64(min));
        }
        let max = f64::from(self.cfg.suspicion_max_mult) * min;
        let k = f64::from(self.cfg.confirmations.max(1));
        #[allow(clippy::cast_precision_loss)]
        let c = confirmations.saturating_sub(1) as f64;
        let timeout = (max - (max - min) * (c + 1.0).ln() / (k + 1.0).ln()).max(min);
        nanos(Duration::from_secs_f64(timeout))
    }

    /// Live members other than this node and `except`, up to `k`, at random.
    pub(crate) fn random_live(&mut self, k: usize, except: &[&str]) -> Vec<(String, SocketAddr)> {
        let mut out: Vec<(String, SocketAddr)> = Vec::new();
        let len = self.probe_list.len();
        if len == 0 || k == 0 {
            return out;
        }
        for _ in 0..k * 4 {
            if out.len() >= k {
                break;
            }
            let i = usize::try_from(self.rng.below(len as u64)).unwrap_or(0);
            let name = &self.probe_list[i];
            if except.contains(&name.as_str()) || out.iter().any(|(n, _)| n == name) {
                continue;
            }
            if let Some(m) = self.members.get(name)
                && !m.state.is_down()
            {
                out.push((name.clone(), m.addr));
            }
        }
        out
    }
}
