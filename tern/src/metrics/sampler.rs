//! What a snapshot of counters cannot say by itself: how late the poll loop runs
//! (measured by a task that asks to wake at a known time) and recent rates (from
//! counters sampled once a second).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use tern_executor::{Instant, time};

use crate::remote::Node;

/// How often the lag probe wakes.
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How often counters are sampled for rates.
const RATE_EVERY: Duration = Duration::from_secs(1);
/// Samples kept: rates are over the last ten seconds.
const RATE_SAMPLES: usize = 11;

/// One sample of a component's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    name: String,
    handled: u64,
    failures: u64,
}

/// Per-second rates of one component over the last seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// The component.
    pub name: String,
    /// Messages handled per second.
    pub handled: f64,
    /// Failures per second.
    pub failures: f64,
}

#[derive(Debug)]
struct State {
    samples: VecDeque<(Instant, Vec<Counts>)>,
    /// The runtime's parked time at each sample, for the busy fraction.
    parked: VecDeque<(Instant, u64)>,
    last_lag: Duration,
    max_lag: Duration,
}

/// The poll-loop lag probe and the rate sampler of one container.
#[derive(Debug, Clone)]
pub struct Sampler {
    state: Rc<RefCell<State>>,
    lag: Histogram,
    started: Instant,
}

impl Sampler {
    /// Starts the probe and the sampler (of `node`'s components, if any) on the
    /// current runtime; they stop when the returned tasks' handles are dropped.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[must_use]
    pub fn start(node: Option<&Node>) -> (Self, Vec<tern_executor::JoinHandle<()>>) {
        let me = Self {
            state: Rc::new(RefCell::new(State {
                samples: VecDeque::new(),
                parked: VecDeque::new(),
                last_lag: Duration::ZERO,
                max_lag: Duration::ZERO,
            })),
            // 100 µs to about 3 s.
            lag: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            started: time::now(),
        };
        let probe = {
            let me = me.clone();
            tern_executor::spawn(async move {
                loop {
                    let due = time::now().saturating_add(PROBE_EVERY);
                    time::sleep(PROBE_EVERY).await;
                    me.record_lag(time::now().saturating_duration_since(due));
                }
            })
        };
        let rates = {
            let (me, node) = (me.clone(), node.cloned());
            tern_executor::spawn(async move {
                loop {
                    me.record_counts(time::now(), node.as_ref());
                    time::sleep(RATE_EVERY).await;
                }
            })
        };
        (me, vec![probe, rates])
    }

    fn record_lag(&self, lag: Duration) {
        self.lag.observe(lag.as_secs_f64());
        let mut st = self.state.borrow_mut();
        st.last_lag = lag;
        st.max_lag = st.max_lag.max(lag);
    }

    fn record_counts(&self, now: Instant, node: Option<&Node>) {
        let counts = node
            .map(Node::exports)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, s)| Counts {
                name,
                handled: s.handled,
                failures: s.failures,
            })
            .collect();
        let mut st = self.state.borrow_mut();
        st.samples.push_back((now, counts));
        while st.samples.len() > RATE_SAMPLES {
            st.samples.pop_front();
        }
        st.parked
            .push_back((now, tern_executor::stats().parked_nanos));
        while st.parked.len() > RATE_SAMPLES {
            st.parked.pop_front();
        }
    }

    /// The lag histogram (seconds a wake-up came later than asked).
    #[must_use]
    pub fn lag_histogram(&self) -> Histogram {
        self.lag.clone()
    }

    /// The last lag measured and the largest since start.
    #[must_use]
    pub fn lag(&self) -> (Duration, Duration) {
        let st = self.state.borrow();
        (st.last_lag, st.max_lag)
    }

    /// How long the sampler has run.
    #[must_use]
    pub fn uptime(&self) -> Duration {
        time::now().saturating_duration_since(self.started)
    }

    /// The fraction of the time between the oldest and the newest sample (the last
    /// ten seconds) the container thread was not parked; `None` until two samples
    /// exist.
    #[must_use]
    pub fn busy(&self) -> Option<f64> {
        let st = self.state.borrow();
        let (Some((t0, p0)), Some((t1, p1))) = (st.parked.front(), st.parked.back()) else {
            return None;
        };
        busy(t1.saturating_duration_since(*t0), p1.saturating_sub(*p0))
    }

    /// Per-component rates between the oldest and the newest sample; empty until two
    /// samples exist.
    #[must_use]
    pub fn rates(&self) -> Vec<Rate> {
        let st = self.state.borrow();
        let (Some((t0, first)), Some((t1, last))) = (st.samples.front(), st.samples.back()) else {
            return Vec::new();
        };
        rates(first, last, t1.saturating_duration_since(*t0))
    }
}

/// `1 - parked / dt`, within 0 and 1; `None` for an empty interval.
fn busy(dt: Duration, parked_nanos: u64) -> Option<f64> {
    let total = dt.as_nanos();
    if total == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let parked = parked_nanos as f64 / total as f64;
    Some((1.0 - parked).clamp(0.0, 1.0))
}

fn rates(first: &[Counts], last: &[Counts], dt: Duration) -> Vec<Rate> {
    let secs = dt.as_secs_f64();
    if secs <= 0.0 {
        return Vec::new();
    }
    last.iter()
        .map(|c| {
            let before = first.iter().find(|f| f.name == c.name);
            let d = |now: u64, then: Option<u64>| {
                // A component started between the samples counts from zero.
                #[allow(clippy::cast_precision_loss)]
                let n = now.saturating_sub(then.unwrap_or(0)) as f64;
                n / secs
            };
            Rate {
                name: c.name.clone(),
                handled: d(c.handled, before.map(|b| b.handled)),
                failures: d(c.failures, before.map(|b| b.failures)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(name: &str, handled: u64, failures: u64) -> Counts {
        Counts {
            name: name.into(),
            handled,
            failures,
        }
    }

    #[test]
    fn rates_are_differences_over_the_interval_new_components_from_zero() {
        let first = [counts("a", 100, 1)];
        let last = [counts("a", 300, 5), counts("b", 40, 0)];
        let r = rates(&first, &last, Duration::from_secs(2));
        assert_eq!(r.len(), 2);
        assert!((r[0].handled - 100.0).abs() < 1e-9 && (r[0].failures - 2.0).abs() < 1e-9);
        assert!((r[1].handled - 20.0).abs() < 1e-9);
        assert!(rates(&first, &last, Duration::ZERO).is_empty());
    }

    #[test]
    fn busy_is_the_time_not_parked() {
        let b = busy(Duration::from_secs(10), 7_500_000_000);
        assert!(b.is_some_and(|b| (b - 0.25).abs() < 1e-9), "{b:?}");
        assert_eq!(busy(Duration::from_secs(1), 2_000_000_000), Some(0.0));
        assert_eq!(busy(Duration::ZERO, 0), None);
    }

    #[test]
    fn the_probe_measures_how_late_the_loop_wakes_it() {
        use std::collections::BTreeMap;

        let mut world = tern_executor::sim::World::new(1).unwrap();
        let id = world.add_node("n").unwrap();
        let names = Rc::new(BTreeMap::from([("n".into(), id)]));
        let t = crate::transport::SimTransport::new("n", world.socket(id), names);
        let out = world.spawn_on(id, async move {
            let node = Node::start(crate::remote::NodeConfig::new("n"), t).unwrap();
            let (s, _tasks) = Sampler::start(Some(&node));
            time::sleep(Duration::from_millis(2050)).await;
            (s.lag(), s.lag_histogram(), s.uptime())
        });
        world.run_until(Instant::from_nanos(3_000_000_000));
        let ((last, max), hist, uptime) = world.runtime(id).unwrap().block_on(out).unwrap();
        // Virtual time with no poll cost: every wake-up is on time.
        assert_eq!((last, max), (Duration::ZERO, Duration::ZERO));
        assert_eq!(uptime, Duration::from_millis(2050));
        let mut text = String::new();
        let mut reg = prometheus_client::registry::Registry::default();
        reg.register("lag", "lag", hist);
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        // Twenty probes in 2.05 s.
        assert!(text.contains("lag_count 20"), "{text}");
    }
}
