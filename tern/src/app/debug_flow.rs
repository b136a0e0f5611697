//! Debug tracing switched on at run time (`app trace-flow NAME --for 60s`) and spread
//! to every container by gossip.
//!
//! The container that is asked turns the switch on for itself and publishes it in its
//! `debug` gossip fact: one line per switch it started, `TARGET UNTIL_MS BUDGET`, the
//! end in milliseconds of wall-clock time since the Unix epoch (containers share no
//! monotonic clock). Every container reads its members' `debug` facts each second and
//! turns on, for the time left, each switch it has not applied yet. A switch ends by
//! itself everywhere when its time is up (or its budget is spent), and the fact
//! line is dropped when it ends.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use tern_actors::trace::debug::{self, Target};
use tern_discovery::Discovery;
use tern_executor::{JoinHandle, time};

use super::{AppError, Running};

/// The gossip fact that carries a container's debug switches.
pub const DEBUG_FACT: &str = "debug";

/// How often switches are swept and members' facts read.
const EVERY: Duration = Duration::from_secs(1);

/// Switches one container may publish at once (a fact is small).
const MAX_PUBLISHED: usize = 8;

/// The longest a switch may stay on.
pub const MAX_DEBUG_FOR: Duration = Duration::from_secs(3600);

/// One switch as gossip carries it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Published {
    target: Target,
    until_ms: u64,
    budget: u32,
}

fn wall_ms() -> u64 {
    time::wall_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn encode(list: &[Published]) -> String {
    list.iter()
        .map(|p| format!("{} {} {}", p.target, p.until_ms, p.budget))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The switches of a `debug` fact; lines that do not parse are skipped (counted in
/// the log at debug level: a fact from a newer version may say more).
fn decode(fact: &str) -> Vec<Published> {
    fact.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (Some(t), Some(u), Some(b), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                tracing::debug!(line, "debug fact line skipped");
                return None;
            };
            Some(Published {
                target: t.parse().ok()?,
                until_ms: u.parse().ok()?,
                budget: b.parse().ok()?,
            })
        })
        .collect()
}

/// Publishes `list` as this container's `debug` fact.
fn publish(discovery: &Discovery, list: &[Published]) {
    if let Err(e) = discovery.set_fact(DEBUG_FACT, encode(list).as_bytes()) {
        tracing::warn!(name: "tern.debug.not_spread", error = %e,
            "debug switch not published to the cluster");
    }
}

impl Running {
    /// Turns on debug tracing of `target` (a component name, a message type, a named
    /// flow or a trace id) in this container for `duration` (at most [`MAX_DEBUG_FOR`]) and at
    /// most `budget` messages per container, and, with gossip, in every container of
    /// the cluster. It ends by itself; see [`tern_actors::trace::debug`].
    ///
    /// # Errors
    ///
    /// [`AppError::Debug`] for a duration of zero or over [`MAX_DEBUG_FOR`], a budget
    /// of zero, or more than 8 switches on at once from this container.
    pub fn trace_flow(
        &self,
        target: Target,
        duration: Duration,
        budget: u32,
    ) -> Result<(), AppError> {
        if duration.is_zero() || duration > MAX_DEBUG_FOR || budget == 0 {
            return Err(AppError::Debug(format!(
                "a debug switch needs a duration of 1 ms to {MAX_DEBUG_FOR:?} and a budget over 0 (got {duration:?}, {budget})"
            )));
        }
        let now_ms = wall_ms();
        let mut list = self.flows.borrow_mut();
        list.retain(|p| p.until_ms > now_ms && p.target != target);
        if list.len() >= MAX_PUBLISHED {
            return Err(AppError::Debug(format!(
                "{MAX_PUBLISHED} debug switches are on from this container already"
            )));
        }
        let until_ms =
            now_ms.saturating_add(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
        debug::switch_on(self.node.name(), target.clone(), duration, budget);
        list.push(Published {
            target,
            until_ms,
            budget,
        });
        if let Some(d) = &self.discovery {
            publish(d, &list);
        }
        Ok(())
    }
}

/// The container's debug task: every second, ends the switches whose time is up,
/// turns on the ones other containers published, and drops ended ones from this
/// container's fact.
pub(super) fn start(
    node: String,
    discovery: Option<Discovery>,
    flows: Rc<RefCell<Vec<Published>>>,
) -> JoinHandle<()> {
    tern_executor::spawn(async move {
        let mut applied: BTreeSet<(String, Published)> = BTreeSet::new();
        loop {
            time::sleep(EVERY).await;
            debug::sweep();
            let now_ms = wall_ms();
            applied.retain(|(_, p)| p.until_ms > now_ms);
            let Some(d) = &discovery else {
                continue;
            };
            {
                let mut own = flows.borrow_mut();
                let before = own.len();
                own.retain(|p| p.until_ms > now_ms);
                if own.len() != before {
                    publish(d, &own);
                }
            }
            for m in d.members() {
                if m.name == node {
                    continue;
                }
                let Some(fact) = m.fact(DEBUG_FACT) else {
                    continue;
                };
                for p in decode(fact) {
                    if p.until_ms <= now_ms || applied.contains(&(m.name.clone(), p.clone())) {
                        continue;
                    }
                    let left = Duration::from_millis(p.until_ms - now_ms).min(MAX_DEBUG_FOR);
                    tracing::info!(name: "tern.debug.spread", node = %node, from = %m.name,
                        target = %p.target, "debug switch from another container");
                    debug::switch_on(&node, p.target.clone(), left, p.budget);
                    applied.insert((m.name.clone(), p));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_and_bad_lines_are_skipped() {
        let list = vec![
            Published {
                target: Target::Component("store".into()),
                until_ms: 5,
                budget: 7,
            },
            Published {
                target: Target::MessageType("kv.v1.Get".into()),
                until_ms: 9,
                budget: 1,
            },
            Published {
                target: Target::Flow("orders".into()),
                until_ms: 11,
                budget: 3,
            },
        ];
        assert!(
            encode(&list).contains("\nflow:orders 11 3"),
            "{}",
            encode(&list)
        );
        assert_eq!(decode(&encode(&list)), list);
        let mixed = format!("{}\nnot a switch\nstore x 1\nstore 1 2 3\n", encode(&list));
        assert_eq!(decode(&mixed), list);
    }
}
