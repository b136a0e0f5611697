//! The sans-IO membership core: state, the public API, and the merge of what it hears.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::rng::Rng;
use tern_proto::v1::gossip::{Fact, MemberState, Update};

use crate::broadcast::Queue;
use crate::config::{GossipConfig, fact_room};
use crate::error::{ConfigError, FactError};
use crate::member::{Member, MemberEvent, MemberInfo, State, Suspicion, wins};
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
    /// Authentic datagrams whose contents were invalid.
    pub malformed: u64,
    /// Probes sent (direct).
    pub probes: u64,
    /// Probes that got no ack, directly or indirectly.
    pub probe_failures: u64,
    /// Indirect probe requests sent.
    pub indirect: u64,
    /// Nacks received.
    pub nacks: u64,
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
}

#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) requester: SocketAddr,
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
    pub(crate) seq: u64,
    pub(crate) stats: GossipStats,
    pub(crate) sealer: Sealer,
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
            seq: 0,
            stats: GossipStats::default(),
            sealer,
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

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
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

    fn add_to_probe_list(&mut self, name: &str) {
        let len = self.probe_list.len() as u64;
        let at = usize::try_from(self.rng.below(len + 1)).unwrap_or(0);
        self.probe_list.insert(at, name.to_owned());
        if at <= self.probe_next && self.probe_next < self.probe_list.len() {
            self.probe_next += 1;
        }
    }

    /// Moves member `name` to `state` (bookkeeping for counts, suspicion and events).
    fn transition(&mut self, now: Nanos, name: &str, state: State, incarnation: u64) {
        let Some(m) = self.members.get_mut(name) else {
            return;
        };
        let was = m.state;
        m.state = state;
        m.incarnation = incarnation;
        if was != state {
            m.since = now;
        }
        if let Some(s) = m.suspicion.take() {
            self.suspects.remove(&(s.deadline, name.to_owned()));
        }
        let generation = m.generation;
        let addr = m.addr;
        match (was.is_down(), state.is_down()) {
            (false, true) => self.live = self.live.saturating_sub(1),
            (true, false) => {
                self.live += 1;
                self.add_to_probe_list(name);
            }
            _ => {}
        }
        let event = match state {
            State::Alive if was == State::Suspect => Some(MemberEvent::Refuted {
                name: name.to_owned(),
            }),
            State::Alive if was.is_down() => Some(MemberEvent::Up {
                name: name.to_owned(),
                generation,
                addr,
            }),
            State::Suspect if was != State::Suspect => Some(MemberEvent::Suspect {
                name: name.to_owned(),
            }),
            State::Dead | State::Left if !was.is_down() => {
                if state == State::Dead {
                    self.recent_dead.push_back((now, name.to_owned()));
                }
                Some(MemberEvent::Down {
                    name: name.to_owned(),
                    generation,
                    left: state == State::Left,
                })
            }
            _ => None,
        };
        if let Some(e) = event {
            tracing::debug!(node = %self.name, member = %name, ?state, incarnation, "member state");
            self.events.push_back(e);
        }
    }

    /// Starts or confirms a suspicion of `name`.
    fn suspect(&mut self, now: Nanos, name: &str, incarnation: u64, from: &str) {
        let Some(m) = self.members.get(name) else {
            return;
        };
        let same = m.state == State::Suspect && m.incarnation == incarnation;
        if same {
            // A confirmation (Lifeguard): independent suspecters shorten the timeout.
            let (started, old_deadline, count, known) = {
                let s = m.suspicion.as_ref();
                (
                    s.map_or(now, |s| s.started),
                    s.map_or(0, |s| s.deadline),
                    s.map_or(0, |s| s.confirmations.len()),
                    s.is_some_and(|s| s.confirmations.iter().any(|c| c == from)),
                )
            };
            if known || from.is_empty() || count > self.cfg.confirmations as usize {
                return;
            }
            let deadline = started.saturating_add(self.suspicion_timeout(count + 1));
            if let Some(m) = self.members.get_mut(name)
                && let Some(s) = m.suspicion.as_mut()
            {
                s.confirmations.push(from.to_owned());
                s.deadline = deadline;
                self.suspects.remove(&(old_deadline, name.to_owned()));
                self.suspects.insert((deadline, name.to_owned()));
            }
            // Pass the confirmation on so others shorten theirs too.
            let mut up = self.members.get(name).map(|m| m.update(from));
            if let Some(u) = up.take() {
                self.member_queue.push(format!("{name}/{from}"), u);
            }
            return;
        }
        self.transition(now, name, State::Suspect, incarnation);
        let deadline = now.saturating_add(self.suspicion_timeout(1));
        if let Some(m) = self.members.get_mut(name) {
            m.suspicion = Some(Suspicion {
                started: now,
                confirmations: if from.is_empty() {
                    Vec::new()
                } else {
                    vec![from.to_owned()]
                },
                deadline,
            });
            let up = m.update(from);
            self.suspects.insert((deadline, name.to_owned()));
            self.member_queue.push(name.to_owned(), up);
        }
    }

    /// This node is suspected or declared dead: refute with a higher incarnation.
    fn refute(&mut self, incarnation: u64) {
        if self.leaving.is_some() {
            return;
        }
        self.incarnation = self.incarnation.max(incarnation) + 1;
        self.stats.refutations += 1;
        if self.cfg.lifeguard {
            self.raise_health(1);
        }
        let me = self.self_update();
        self.member_queue.push(self.name.clone(), me);
        tracing::debug!(node = %self.name, incarnation = self.incarnation, "refuting a suspicion of this node");
    }

    /// Applies one membership update. `sync` marks updates from anti-entropy, where a
    /// remote *dead* about a member this node thinks alive only starts a suspicion
    /// (after a partition heals, the other side's verdicts must be confirmed, not
    /// adopted). Returns whether anything changed.
    pub(crate) fn apply_update(&mut self, now: Nanos, u: &Update, sync: bool) -> bool {
        let Some(state) = MemberState::try_from(u.state)
            .ok()
            .and_then(State::from_wire)
        else {
            self.stats.malformed += 1;
            return false;
        };
        if u.name.is_empty() || u.name.len() > 255 {
            self.stats.malformed += 1;
            return false;
        }
        if u.name == self.name {
            if u.generation == self.generation
                && matches!(state, State::Suspect | State::Dead)
                && u.incarnation >= self.incarnation
            {
                self.refute(u.incarnation);
            } else if u.generation > self.generation {
                tracing::error!(node = %self.name, generation = u.generation,
                    "another node with this name and a newer generation exists");
            }
            return false;
        }
        let Ok(addr) = u.addr.parse::<SocketAddr>() else {
            self.stats.malformed += 1;
            return false;
        };
        let known = self
            .members
            .get(&u.name)
            .map(|m| (m.generation, m.incarnation, m.state));
        match known {
            None => {
                if self.members.len() >= self.cfg.max_members {
                    tracing::warn!(node = %self.name, member = %u.name, "member table full; update dropped");
                    return false;
                }
                self.members.insert(
                    u.name.clone(),
                    Member {
                        name: u.name.clone(),
                        generation: u.generation,
                        incarnation: u.incarnation,
                        state: if state.is_down() { state } else { State::Alive },
                        addr,
                        facts: BTreeMap::new(),
                        facts_version: 0,
                        since: now,
                        suspicion: None,
                    },
                );
                if !state.is_down() {
                    self.live += 1;
                    self.add_to_probe_list(&u.name);
                    self.events.push_back(MemberEvent::Up {
                        name: u.name.clone(),
                        generation: u.generation,
                        addr,
                    });
                    if state == State::Suspect {
                        self.suspect(now, &u.name, u.incarnation, &u.from);
                    }
                }
                self.regossip(u);
                true
            }
            Some((generation, _, _)) if u.generation < generation => false,
            Some((generation, _, cur_state)) if u.generation > generation => {
                // A new generation replaces the old one at once.
                if !cur_state.is_down() {
                    self.transition(now, &u.name, State::Dead, 0);
                }
                if let Some(m) = self.members.get_mut(&u.name) {
                    m.generation = u.generation;
                    m.incarnation = u.incarnation;
                    m.addr = addr;
                    m.facts.clear();
                    m.facts_version = 0;
                }
                if state.is_down() {
                    if let Some(m) = self.members.get_mut(&u.name) {
                        m.state = state;
                        m.since = now;
                    }
                } else {
                    self.transition(now, &u.name, State::Alive, u.incarnation);
                    if state == State::Suspect {
                        self.suspect(now, &u.name, u.incarnation, &u.from);
                    }
                }
                self.regossip(u);
                true
            }
            Some((_, inc, cur)) => {
                let effective = if sync && state == State::Dead && !cur.is_down() {
                    State::Suspect
                } else {
                    state
                };
                if effective == State::Suspect && cur == State::Suspect && u.incarnation == inc {
                    self.suspect(now, &u.name, u.incarnation, &u.from);
                    return false;
                }
                if !wins(effective, u.incarnation, cur, inc) {
                    return false;
                }
                if let Some(m) = self.members.get_mut(&u.name) {
                    m.addr = addr;
                }
                match effective {
                    State::Suspect => self.suspect(now, &u.name, u.incarnation, &u.from),
                    s => {
                        if s == State::Dead {
                            tracing::info!(node = %self.name, member = %u.name, "member dead (heard)");
                        }
                        self.transition(now, &u.name, s, u.incarnation);
                        self.regossip(u);
                    }
                }
                true
            }
        }
    }

    /// Passes an accepted update on (without its suspecter, which only a suspicion
    /// needs).
    fn regossip(&mut self, u: &Update) {
        let mut u = u.clone();
        u.from.clear();
        self.member_queue.push(u.name.clone(), u);
    }

    /// Applies one fact of another member. Returns whether it was new.
    pub(crate) fn apply_fact(&mut self, f: &Fact) -> bool {
        if f.node == self.name {
            return false;
        }
        if f.key.is_empty() || f.key.len() > 64 {
            self.stats.malformed += 1;
            return false;
        }
        let max = self.cfg.max_facts_bytes;
        let Some(m) = self.members.get_mut(&f.node) else {
            return false;
        };
        if m.generation != f.generation {
            return false;
        }
        let mut new = false;
        if m.facts.get(&f.key).is_none_or(|(_, v)| f.version > *v) {
            let size: usize = m
                .facts
                .iter()
                .filter(|(k, _)| **k != f.key)
                .map(|(k, (v, _))| k.len() + v.len())
                .sum::<usize>()
                + f.key.len()
                + f.value.len();
            if size > max {
                self.stats.facts_refused += 1;
                tracing::warn!(node = %self.name, member = %f.node, key = %f.key, size, max,
                    "fact over the size limit refused");
                return false;
            }
            m.facts.insert(f.key.clone(), (f.value.clone(), f.version));
            new = true;
        }
        if f.since <= m.facts_version && f.version > m.facts_version {
            m.facts_version = f.version;
        }
        if new {
            self.events.push_back(MemberEvent::Fact {
                name: f.node.clone(),
                key: f.key.clone(),
            });
            let key = format!("{}/{}", f.node, f.key);
            // `since` states a fact about the owner's facts (no live fact between), which
            // stays true as they change, so the fact is passed on as it came.
            self.fact_queue.push(key, f.clone());
        }
        new
    }

    /// Facts of member `m` (or this node) newer than `watermark`, in version order, each
    /// carrying `since` = the previous one's version so the receiver can raise its
    /// watermark as far as it got.
    pub(crate) fn facts_after(&self, name: &str, watermark: u64) -> Vec<Fact> {
        let (facts, generation) = if name == self.name {
            (&self.facts, self.generation)
        } else {
            match self.members.get(name) {
                Some(m) => (&m.facts, m.generation),
                None => return Vec::new(),
            }
        };
        let mut v: Vec<(&String, &(Vec<u8>, u64))> = facts
            .iter()
            .filter(|(_, (_, ver))| *ver > watermark)
            .collect();
        v.sort_by_key(|(_, (_, ver))| *ver);
        let mut since = watermark;
        v.into_iter()
            .map(|(k, (val, ver))| {
                let f = Fact {
                    node: name.to_owned(),
                    generation,
                    key: k.clone(),
                    value: val.clone(),
                    version: *ver,
                    since,
                };
                since = *ver;
                f
            })
            .collect()
    }

    /// Declares suspects whose time ran out dead.
    pub(crate) fn expire_suspicions(&mut self, now: Nanos) {
        while let Some((deadline, name)) = self.suspects.first().cloned() {
            if deadline > now {
                break;
            }
            self.suspects.pop_first();
            let Some(m) = self.members.get(&name) else {
                continue;
            };
            if m.state != State::Suspect {
                continue;
            }
            let inc = m.incarnation;
            self.stats.declared_dead += 1;
            tracing::info!(node = %self.name, member = %name, incarnation = inc, "member declared dead");
            self.transition(now, &name, State::Dead, inc);
            if let Some(m) = self.members.get(&name) {
                let up = m.update(&self.name);
                self.member_queue.push(name.clone(), up);
            }
        }
    }

    /// Forgets tombstones past their time, and the oldest beyond the cap.
    pub(crate) fn collect_tombstones(&mut self, now: Nanos) {
        let ttl = nanos(self.cfg.tombstone_ttl);
        let mut down: Vec<(Nanos, String)> = self
            .members
            .values()
            .filter(|m| m.state.is_down())
            .map(|m| (m.since, m.name.clone()))
            .collect();
        down.sort();
        let excess = down.len().saturating_sub(self.cfg.max_tombstones);
        for (i, (since, name)) in down.into_iter().enumerate() {
            if i < excess || since.saturating_add(ttl) <= now {
                self.members.remove(&name);
            } else {
                break;
            }
        }
        let keep = nanos(self.cfg.gossip_to_dead);
        while self
            .recent_dead
            .front()
            .is_some_and(|(t, _)| t.saturating_add(keep) <= now)
        {
            self.recent_dead.pop_front();
        }
        // Drop names of removed or down members from the probe list.
        let members = &self.members;
        let before = self.probe_list.len();
        self.probe_list
            .retain(|n| members.get(n).is_some_and(|m| !m.state.is_down()));
        if self.probe_list.len() != before {
            self.probe_next = self.probe_next.min(self.probe_list.len());
        }
    }
}
