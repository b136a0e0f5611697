//! How the simulated network behaves: the global [`NetConfig`] and per-link
//! [`LinkConfig`] latency.

use std::time::Duration;

use super::super::SimRng;
#[cfg(doc)]
use super::{NetStats, SendOutcome, SocketEvent};

/// How the simulated network behaves. Probabilities are in parts per million.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::NetConfig;
///
/// let lossy = NetConfig { loss_ppm: 10_000, ..NetConfig::default() }; // 1 % loss
/// assert_eq!(lossy.min_latency, Duration::from_micros(100));
/// assert_eq!(lossy.mtu, 65_507);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    /// Every message takes at least this long (default 100 µs).
    pub min_latency: Duration,
    /// Mean of the exponential tail added to the minimum (default 200 µs).
    pub tail_mean: Duration,
    /// No message takes longer than this (default `None`: no cap). A stream frame may
    /// still wait longer behind an earlier frame of its connection.
    pub max_latency: Option<Duration>,
    /// Datagrams lost, per million (default 0).
    pub loss_ppm: u32,
    /// Datagrams delivered twice, per million (default 0).
    pub duplicate_ppm: u32,
    /// Datagrams with more bytes than this are dropped at send
    /// ([`SendOutcome::TooLarge`], [`NetStats::too_large`]). Default 65,507, UDP's
    /// largest payload.
    pub mtu: usize,
    /// A datagram arriving at a node whose inbox already holds this many packets is
    /// dropped ([`NetStats::overflow`]); stream frames are never dropped this way.
    /// Default 4,096.
    pub inbox_capacity: usize,
    /// How long after a connection reset each live end learns of it through a
    /// [`SocketEvent::Reset`] (heartbeat or RST detection; default 1 ms).
    pub reset_detect: Duration,
    /// How long after a peer can be reached again (restarted, or healed) each end that
    /// lost its connection with it gets a [`SocketEvent::Up`] (a reconnection
    /// attempt's period; default 100 ms, ZeroMQ's `RECONNECT_IVL`). Never earlier than
    /// `reset_detect`, so a reset is always reported before the reconnection.
    pub reconnect_ivl: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            min_latency: Duration::from_micros(100),
            tail_mean: Duration::from_micros(200),
            max_latency: None,
            loss_ppm: 0,
            duplicate_ppm: 0,
            mtu: 65_507,
            inbox_capacity: 4_096,
            reset_detect: Duration::from_millis(1),
            reconnect_ivl: Duration::from_millis(100),
        }
    }
}

/// The latency of one directed link, overriding the global [`NetConfig`] latency for
/// it; see [`World::set_link`](crate::sim::World::set_link). Latency is
/// `min_latency + Exp(tail_mean)`, capped at `max_latency`.
///
/// The `q` quantile of that distribution (below the cap) is
/// `min_latency + tail_mean · ln(1 / (1 − q))`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tern_executor::sim::{LinkConfig, World};
///
/// let mut world = World::new(1).unwrap();
/// let (a, b) = (world.add_node("a").unwrap(), world.add_node("b").unwrap());
/// // a → b crosses an ocean; b → a keeps the global latency.
/// world.set_link(a, b, LinkConfig {
///     min_latency: Duration::from_millis(40),
///     tail_mean: Duration::from_millis(5),
///     max_latency: Some(Duration::from_millis(200)),
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkConfig {
    /// Every message on the link takes at least this long.
    pub min_latency: Duration,
    /// Mean of the exponential tail added to the minimum.
    pub tail_mean: Duration,
    /// No message on the link takes longer than this (`None`: no cap).
    pub max_latency: Option<Duration>,
}

impl Default for LinkConfig {
    /// The latency of [`NetConfig::default`].
    fn default() -> Self {
        NetConfig::default().into()
    }
}

impl From<NetConfig> for LinkConfig {
    /// The latency part of a network configuration.
    fn from(c: NetConfig) -> Self {
        Self {
            min_latency: c.min_latency,
            tail_mean: c.tail_mean,
            max_latency: c.max_latency,
        }
    }
}

impl LinkConfig {
    pub(super) fn draw(&self, rng: &mut SimRng) -> Duration {
        let tail = u64::try_from(self.tail_mean.as_nanos()).unwrap_or(u64::MAX);
        let d = self.min_latency + Duration::from_nanos(rng.exp_nanos(tail));
        self.max_latency.map_or(d, |max| d.min(max))
    }
}
