//! Checkers for tern's delivery promises, fed by the application under test.
//!
//! [`History`] records what callers sent and what components handled, and checks each
//! record against the framework's promises as it arrives
//! (docs/design/simulation.md C4):
//!
//! - **per-pair FIFO**: a component handles the messages of one sender in the order
//!   they were sent (gaps are allowed: delivery is at most once);
//! - **no duplicates**: no message is handled twice;
//! - **no invention**: nothing is handled that was not sent;
//! - **no delivery after stop**: a component stopped for good handles nothing more;
//! - **request/response correlation**: every answer belongs to the ask it answers, and
//!   an ask is answered at most once.
//!
//! [`Accounting`] checks the books: `sent = delivered + refused(reason) +
//! dropped(reason) + in flight`, every message accounted for by a named reason.
//!
//! In the simulator every node runs on one thread, so one `History` (in an `Rc`) sees
//! the whole cluster. Register it as a world invariant to stop the run at the first
//! violation:
//!
//! ```
//! use std::rc::Rc;
//! use tern::check::History;
//! use tern::sim::World;
//!
//! let history = Rc::new(History::new());
//! let mut world = World::new(1).unwrap();
//! let h = history.clone();
//! world.add_invariant(move |_| h.verdict());
//!
//! history.sent("front", "w1", 1);
//! history.sent("front", "w1", 2);
//! history.handled("front", "w1", 2);
//! history.handled("front", "w1", 1); // overtaken!
//! assert!(history.verdict().unwrap_err().contains("order"));
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod accounting;

pub use accounting::{Accounting, Ledger, reason};

/// What a [`History`] saw, once it passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistorySummary {
    /// Messages recorded as sent.
    pub sent: u64,
    /// Messages recorded as handled.
    pub handled: u64,
    /// Asks recorded as answered.
    pub answered: u64,
}

/// The first broken promise a [`History`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderViolation {
    /// Which promise, and the witness.
    pub message: String,
    /// Position of the record that broke it (0 = the first record).
    pub record: u64,
}

impl fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (record {})", self.message, self.record)
    }
}

type Pair = (String, String);

#[derive(Debug, Default)]
struct Inner {
    sent: BTreeSet<(Pair, u64)>,
    last_handled: BTreeMap<Pair, u64>,
    handled: BTreeSet<(Pair, u64)>,
    answered: BTreeSet<(Pair, u64)>,
    stopped: BTreeSet<String>,
    summary: HistorySummary,
    violation: Option<OrderViolation>,
}

/// Records sends, handlings, stops and answers, and checks every record at once; see
/// the [module docs](self). Sequence numbers are per (sender, receiver) pair and must
/// increase with every send.
#[derive(Debug, Default)]
pub struct History {
    inner: RefCell<Inner>,
}

fn pair(from: &str, to: &str) -> Pair {
    (from.to_owned(), to.to_owned())
}

impl History {
    /// An empty history.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(inner: &mut Inner, message: String) {
        if inner.violation.is_none() {
            let record = inner.summary.sent + inner.summary.handled + inner.summary.answered - 1;
            tracing::error!(record, %message, "delivery promise broken");
            inner.violation = Some(OrderViolation { message, record });
        }
    }

    /// `from` sent message `seq` to `to`.
    pub fn sent(&self, from: &str, to: &str, seq: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.summary.sent += 1;
        if !inner.sent.insert((pair(from, to), seq)) {
            Self::fail(
                &mut inner,
                format!("sequence reused: {from} sent {seq} to {to} twice"),
            );
        }
    }

    /// `to` handled message `seq` from `from`.
    pub fn handled(&self, from: &str, to: &str, seq: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.summary.handled += 1;
        let key = pair(from, to);
        if inner.stopped.contains(to) {
            Self::fail(
                &mut inner,
                format!("delivery after stop: {to} handled {seq} from {from} after it stopped"),
            );
        }
        if !inner.sent.contains(&(key.clone(), seq)) {
            Self::fail(
                &mut inner,
                format!("invented: {to} handled {seq} from {from}, which was never sent"),
            );
        }
        if !inner.handled.insert((key.clone(), seq)) {
            Self::fail(
                &mut inner,
                format!("duplicate: {to} handled {seq} from {from} twice"),
            );
        }
        match inner.last_handled.get(&key) {
            Some(&last) if last >= seq => Self::fail(
                &mut inner,
                format!("order: {to} handled {seq} from {from} after {last}"),
            ),
            _ => {
                inner.last_handled.insert(key, seq);
            }
        }
    }

    /// Component `name` stopped for good: it must handle nothing more. (A restarted
    /// incarnation under a new name, or a new node generation, is another receiver.)
    pub fn stopped(&self, name: &str) {
        self.inner.borrow_mut().stopped.insert(name.to_owned());
    }

    /// `from` got the answer to its ask `seq` to `to`, and the answer says it is for
    /// `answer_to`.
    pub fn answered(&self, from: &str, to: &str, seq: u64, answer_to: u64) {
        let mut inner = self.inner.borrow_mut();
        inner.summary.answered += 1;
        let key = pair(from, to);
        if seq != answer_to {
            Self::fail(
                &mut inner,
                format!("correlation: {from}'s ask {seq} to {to} got the answer to {answer_to}"),
            );
        }
        if !inner.handled.contains(&(key.clone(), seq)) {
            Self::fail(
                &mut inner,
                format!("correlation: {from}'s ask {seq} to {to} was answered but never handled"),
            );
        }
        if !inner.answered.insert((key, seq)) {
            Self::fail(
                &mut inner,
                format!("correlation: {from}'s ask {seq} to {to} was answered twice"),
            );
        }
    }

    /// The first violation, if any.
    #[must_use]
    pub fn violation(&self) -> Option<OrderViolation> {
        self.inner.borrow().violation.clone()
    }

    /// `Ok(())` or the first violation as text: the shape of a world invariant.
    ///
    /// # Errors
    ///
    /// The first violation's description.
    pub fn verdict(&self) -> Result<(), String> {
        self.inner
            .borrow()
            .violation
            .as_ref()
            .map_or(Ok(()), |v| Err(v.to_string()))
    }

    /// The counts, if every promise held.
    ///
    /// # Errors
    ///
    /// The first [`OrderViolation`].
    pub fn check(&self) -> Result<HistorySummary, OrderViolation> {
        let inner = self.inner.borrow();
        inner.violation.clone().map_or(Ok(inner.summary), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_history_passes_with_gaps() {
        let h = History::new();
        for seq in 1..=5 {
            h.sent("a", "b", seq);
        }
        for seq in [1, 2, 4, 5] {
            h.handled("a", "b", seq);
        }
        h.answered("a", "b", 4, 4);
        assert_eq!(
            h.check(),
            Ok(HistorySummary {
                sent: 5,
                handled: 4,
                answered: 1
            })
        );
    }

    #[test]
    fn each_broken_promise_is_named() {
        type Script = fn(&History);
        let cases: [(&str, Script); 6] = [
            ("order", |h| {
                h.handled("a", "b", 2);
                h.handled("a", "b", 1);
            }),
            ("duplicate", |h| {
                h.handled("a", "b", 1);
                h.handled("a", "b", 1);
            }),
            ("invented", |h| h.handled("a", "b", 9)),
            ("after stop", |h| {
                h.stopped("b");
                h.handled("a", "b", 1);
            }),
            ("correlation", |h| {
                h.handled("a", "b", 1);
                h.answered("a", "b", 1, 2);
            }),
            ("answered twice", |h| {
                h.handled("a", "b", 1);
                h.answered("a", "b", 1, 1);
                h.answered("a", "b", 1, 1);
            }),
        ];
        for (what, script) in cases {
            let h = History::new();
            h.sent("a", "b", 1);
            h.sent("a", "b", 2);
            script(&h);
            let v = h.check().unwrap_err();
            assert!(v.message.contains(what), "{what}: {v}");
        }
    }
}
