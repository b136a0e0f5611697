//! Flood control: at most `burst` lines per event and per remote address in each
//! window, the rest counted and reported as one `tern.log.suppressed` line when the
//! window ends.
//!
//! Pure: fed the event's identity and the runtime clock's `now`, it answers whether
//! the line goes out and which suppression reports are due.

use std::collections::BTreeMap;
use std::time::Duration;

use tern_executor::Instant;

/// Flood control settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FloodConfig {
    /// Lines let through per key and window; 0 turns flood control off.
    pub(super) burst: u32,
    /// The window.
    pub(super) window: Duration,
    /// Keys tracked at once; past this, new remote addresses share one key per event.
    pub(super) max_keys: usize,
}

/// Lines of one event (and remote address) dropped in a window that has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Suppressed {
    /// The event's name.
    pub(super) event: &'static str,
    /// The remote address or peer, if the event names one.
    pub(super) remote: Option<String>,
    /// Lines dropped.
    pub(super) count: u64,
}

/// The remote key shared by addresses that arrive once `max_keys` are tracked.
const OVERFLOW: &str = "*";

type Key = (&'static str, &'static str, Option<String>);

#[derive(Debug)]
struct Entry {
    start: Instant,
    passed: u32,
    suppressed: u64,
}

/// The flood control state; see the [module docs](self).
#[derive(Debug)]
pub(super) struct Flood {
    config: FloodConfig,
    keys: BTreeMap<Key, Entry>,
    next_sweep: Option<Instant>,
}

impl Flood {
    pub(super) const fn new(config: FloodConfig) -> Self {
        Self {
            config,
            keys: BTreeMap::new(),
            next_sweep: None,
        }
    }

    /// Whether a line of event `name` (from `target`, about `remote`) goes out at
    /// `now`; reports of windows that have ended are pushed to `due` first.
    pub(super) fn admit(
        &mut self,
        name: &'static str,
        target: &'static str,
        remote: Option<String>,
        now: Instant,
        due: &mut Vec<Suppressed>,
    ) -> bool {
        if self.config.burst == 0 {
            return true;
        }
        let window = self.config.window;
        if self.next_sweep.is_none_or(|t| now >= t) {
            self.keys.retain(|(event, _, remote), e| {
                if now.saturating_duration_since(e.start) < window {
                    return true;
                }
                if e.suppressed > 0 {
                    due.push(Suppressed {
                        event,
                        remote: remote.clone(),
                        count: e.suppressed,
                    });
                }
                false
            });
            self.next_sweep = Some(now.saturating_add(window));
        }
        let mut key = (name, target, remote);
        if !self.keys.contains_key(&key) && self.keys.len() >= self.config.max_keys {
            key.2 = key.2.map(|_| OVERFLOW.to_owned());
        }
        let entry = self.keys.entry(key.clone()).or_insert(Entry {
            start: now,
            passed: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(entry.start) >= window {
            if entry.suppressed > 0 {
                due.push(Suppressed {
                    event: name,
                    remote: key.2,
                    count: entry.suppressed,
                });
            }
            *entry = Entry {
                start: now,
                passed: 0,
                suppressed: 0,
            };
        }
        if entry.passed < self.config.burst {
            entry.passed += 1;
            true
        } else {
            entry.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn flood(max_keys: usize) -> Flood {
        Flood::new(FloodConfig {
            burst: 3,
            window: Duration::from_secs(1),
            max_keys,
        })
    }

    #[test]
    fn a_burst_passes_the_rest_is_counted_and_reported_when_the_window_ends() {
        let mut f = flood(16);
        let mut due = Vec::new();
        let passed = (0..10)
            .filter(|i| f.admit("e", "t", Some("p".into()), at(*i), &mut due))
            .count();
        assert_eq!(passed, 3);
        assert!(due.is_empty());
        assert!(f.admit("e", "t", Some("p".into()), at(1000), &mut due));
        assert_eq!(
            due,
            vec![Suppressed {
                event: "e",
                remote: Some("p".into()),
                count: 7
            }]
        );
    }

    #[test]
    fn keys_are_per_event_and_per_remote_and_quiet_keys_are_reported_by_any_later_line() {
        let mut f = flood(16);
        let mut due = Vec::new();
        for i in 0..5 {
            f.admit("e", "t", Some("a".into()), at(i), &mut due);
            assert!(f.admit("e", "t", Some(format!("b{i}")), at(i), &mut due));
            f.admit("other", "t", None, at(i), &mut due);
        }
        assert!(due.is_empty());
        // A different event after the window reports both flooded keys.
        assert!(f.admit("late", "t", None, at(1500), &mut due));
        due.sort_by_key(|s| s.event);
        assert_eq!(due.len(), 2, "{due:?}");
        assert_eq!((due[0].event, due[0].count), ("e", 2));
        assert_eq!((due[1].event, due[1].count), ("other", 2));
    }

    #[test]
    fn past_max_keys_new_addresses_share_one_key_so_memory_stays_bounded() {
        let mut f = flood(2);
        let mut due = Vec::new();
        let passed = (0..100)
            .filter(|i| f.admit("e", "t", Some(format!("10.0.0.{i}")), at(0), &mut due))
            .count();
        // Two tracked addresses, then three lines for all the others together.
        assert_eq!(passed, 2 + 3);
        assert!(f.admit("e", "t", None, at(2000), &mut due));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].remote.as_deref(), Some(OVERFLOW));
        assert_eq!(due[0].count, 95);
    }

    #[test]
    fn burst_zero_turns_it_off() {
        let mut f = Flood::new(FloodConfig {
            burst: 0,
            window: Duration::from_secs(1),
            max_keys: 1,
        });
        let mut due = Vec::new();
        assert!((0..100).all(|i| f.admit("e", "t", None, at(i), &mut due)));
    }
}
