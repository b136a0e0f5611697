//! [`Accounting`]: every message sent is delivered, dropped or refused for a named
//! reason, or still in flight; nothing is lost silently.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use tern_actors::remote::CallError;

/// The reason name an error is counted under.
#[must_use]
pub fn reason(e: &CallError) -> &'static str {
    match e {
        CallError::UnknownName { .. } => "unknown_name",
        CallError::NotHosted { .. } => "not_hosted",
        CallError::PendingFull => "pending_full",
        CallError::MailboxFull => "mailbox_full",
        CallError::Stopped => "stopped",
        CallError::Timeout => "timeout",
        CallError::HandlerPanicked(_) => "handler_panicked",
        CallError::Unreachable(_) => "unreachable",
        CallError::Backpressure(_) => "backpressure",
        CallError::PeerLost(_) => "peer_lost",
        CallError::Codec(_) => "codec",
        CallError::StreamFailed(_) => "stream_failed",
        CallError::IdleTimeout => "idle_timeout",
        CallError::Dropped => "rate_limited_drop",
        CallError::Bounced { .. } => "rate_limited_bounce",
        CallError::OutsideHorizon { .. } => "outside_horizon",
        _ => "other",
    }
}

/// What an [`Accounting`] counted, once it balanced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered (handled by their component).
    pub delivered: u64,
    /// Messages whose caller got a typed error, by reason (not delivered).
    pub refused: BTreeMap<&'static str, u64>,
    /// Messages dropped without telling the caller, by reason, as the nodes counted
    /// them.
    pub dropped: BTreeMap<String, u64>,
    /// Messages still in flight, as the nodes report them.
    pub in_flight: u64,
}

#[derive(Debug, Default)]
struct Inner {
    sent: BTreeSet<u64>,
    delivered: BTreeSet<u64>,
    /// Id -> the error its caller got, and whether it may have been handled anyway.
    refused: BTreeMap<u64, (&'static str, bool)>,
    dropped: BTreeMap<String, u64>,
    violation: Option<String>,
}

/// Checks `sent = delivered + refused(reason) + dropped(reason) + in flight`.
///
/// The application under test records every message it sends and every one its
/// components handle, by a unique id, and every typed error its callers get; the
/// nodes' counters give what was dropped silently (a tell over a rate limit under
/// `drop`, a tell refused on arrival) and what is still in flight (shaping queues,
/// calls waiting for a name, asks outstanding). [`Accounting::check`] balances the
/// books; each record is also checked as it comes (an id sent twice, delivered twice,
/// delivered but never sent, or delivered although its caller was told it certainly
/// was not).
///
/// ```
/// use tern::check::Accounting;
/// use tern::remote::CallError;
///
/// let books = Accounting::new();
/// for id in 1..=4 {
///     books.sent(id);
/// }
/// books.delivered(1);
/// books.refused(2, &CallError::Dropped);
/// books.dropped("rate_limited", 1); // a tell: the node counted it
/// assert!(books.check(0).is_err()); // message 4 is missing
/// assert_eq!(books.check(1).unwrap().delivered, 1); // ... or in flight
/// ```
#[derive(Debug, Default)]
pub struct Accounting {
    inner: RefCell<Inner>,
}

impl Accounting {
    /// Empty books.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn fail(inner: &mut Inner, message: String) {
        if inner.violation.is_none() {
            tracing::error!(%message, "accounting broken");
            inner.violation = Some(message);
        }
    }

    /// Message `id` was sent.
    pub fn sent(&self, id: u64) {
        let mut inner = self.inner.borrow_mut();
        if !inner.sent.insert(id) {
            Self::fail(&mut inner, format!("id reused: {id} sent twice"));
        }
    }

    /// Message `id` was handled by its component.
    pub fn delivered(&self, id: u64) {
        let mut inner = self.inner.borrow_mut();
        if !inner.sent.contains(&id) {
            Self::fail(&mut inner, format!("invented: {id} delivered, never sent"));
        }
        if !inner.delivered.insert(id) {
            Self::fail(&mut inner, format!("duplicate: {id} delivered twice"));
        }
        if let Some((why, false)) = inner.refused.get(&id).copied() {
            Self::fail(
                &mut inner,
                format!("{id} delivered, but its caller was told it was not ({why})"),
            );
        }
    }

    /// The caller of message `id` got `error`.
    pub fn refused(&self, id: u64, error: &CallError) {
        let mut inner = self.inner.borrow_mut();
        let maybe = error.may_have_been_handled();
        let why = reason(error);
        if !inner.sent.contains(&id) {
            Self::fail(&mut inner, format!("{id} refused ({why}), never sent"));
        }
        if !maybe && inner.delivered.contains(&id) {
            Self::fail(
                &mut inner,
                format!("{id} delivered, but its caller was told it was not ({why})"),
            );
        }
        if inner.refused.insert(id, (why, maybe)).is_some() {
            Self::fail(&mut inner, format!("{id} refused twice"));
        }
    }

    /// The nodes counted `n` messages dropped silently for `reason` (in total so far:
    /// a later call replaces the count).
    pub fn dropped(&self, reason: &str, n: u64) {
        self.inner.borrow_mut().dropped.insert(reason.to_owned(), n);
    }

    /// The first broken record, if any.
    ///
    /// # Errors
    ///
    /// What broke.
    pub fn verdict(&self) -> Result<(), String> {
        match &self.inner.borrow().violation {
            Some(v) => Err(v.clone()),
            None => Ok(()),
        }
    }

    /// Balances the books with `in_flight` messages still on their way: the ledger,
    /// or what does not add up.
    ///
    /// # Errors
    ///
    /// The first broken record, or the unbalanced sum.
    pub fn check(&self, in_flight: u64) -> Result<Ledger, String> {
        self.verdict()?;
        let inner = self.inner.borrow();
        let mut ledger = Ledger {
            sent: inner.sent.len() as u64,
            delivered: inner.delivered.len() as u64,
            dropped: inner.dropped.clone(),
            in_flight,
            ..Ledger::default()
        };
        for (id, (why, _)) in &inner.refused {
            // Refused but handled anyway (a timeout after delivery) counts once, as
            // delivered.
            if !inner.delivered.contains(id) {
                *ledger.refused.entry(why).or_default() += 1;
            }
        }
        let refused: u64 = ledger.refused.values().sum();
        let dropped: u64 = ledger.dropped.values().sum();
        let accounted = ledger.delivered + refused + dropped + in_flight;
        if accounted == ledger.sent {
            Ok(ledger)
        } else {
            Err(format!(
                "sent {} != delivered {} + refused {:?} + dropped {:?} + in flight {in_flight}",
                ledger.sent, ledger.delivered, ledger.refused, ledger.dropped
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_books_pass_and_give_the_ledger() {
        let books = Accounting::new();
        for id in 0..10 {
            books.sent(id);
        }
        for id in 0..6 {
            books.delivered(id);
        }
        books.refused(6, &CallError::Dropped);
        books.refused(
            7,
            &CallError::OutsideHorizon {
                horizon: tern_actors::flow::Horizon::Network,
                needed: tern_actors::flow::Horizon::Global,
            },
        );
        // A timeout after delivery: counted as delivered.
        books.refused(5, &CallError::Timeout);
        books.dropped("rate_limited", 1);
        let ledger = books.check(1).unwrap();
        assert_eq!(ledger.delivered, 6);
        assert_eq!(ledger.refused.values().sum::<u64>(), 2);
        assert!(books.check(0).unwrap_err().contains("sent 10"));
        assert!(books.check(2).is_err());
    }

    /// What the violation says, and the records that cause it.
    type Case = (&'static str, fn(&Accounting));

    #[test]
    fn every_broken_record_is_caught() {
        let cases: [Case; 5] = [
            ("id reused", |b| {
                b.sent(1);
                b.sent(1);
            }),
            ("invented", |b| b.delivered(9)),
            ("duplicate", |b| {
                b.sent(1);
                b.delivered(1);
                b.delivered(1);
            }),
            ("told it was not", |b| {
                b.sent(1);
                b.refused(1, &CallError::Dropped);
                b.delivered(1);
            }),
            ("refused twice", |b| {
                b.sent(1);
                b.refused(1, &CallError::Timeout);
                b.refused(1, &CallError::Timeout);
            }),
        ];
        for (what, case) in cases {
            let books = Accounting::new();
            case(&books);
            let err = books.verdict().unwrap_err();
            assert!(err.contains(what), "{what}: {err}");
        }
    }
}
