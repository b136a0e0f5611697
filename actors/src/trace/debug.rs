//! Debug tracing switched on in production: per component, message type, named flow
//! or trace, for a bounded time and number of messages.
//!
//! A switch names what to watch ([`Target`]) on one node. While it is on, every
//! request of that flow the node handles, and every call its handlers make while
//! handling one, is logged at `info` as `tern.debug.message` (with the trace id) and
//! recorded as a span, and the handler's own `debug` and `trace` events pass the log
//! filter (see [`in_flow`]). A switch on a named flow ([`Target::Flow`]) is also
//! matched where the call is made: a remote call through a
//! [`Ref::with_flow`](crate::remote::Ref::with_flow) reference of that flow is logged
//! (`direction = "out"`) by the caller's node, and its request (`direction = "in"`)
//! by the node that handles it. A switch ends by itself when its time is up or its
//! message budget is spent. With no switch on anywhere in the process, the check on
//! the message path is the one atomic load of [`is_enabled`](super::is_enabled).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tern_executor::Instant;

use super::context::{SpanContext, hex};

/// Switches on in the process, over every thread: the debug bit of the tracing flag
/// is set while this is above zero.
static ON: AtomicUsize = AtomicUsize::new(0);

/// What a debug switch watches.
///
/// ```
/// use tern_actors::trace::debug::Target;
///
/// assert_eq!("store".parse(), Ok(Target::Component("store".into())));
/// assert_eq!("kv.v1.Get".parse(), Ok(Target::MessageType("kv.v1.Get".into())));
/// assert_eq!("flow:orders".parse(), Ok(Target::Flow("orders".into())));
/// assert_eq!(Target::Flow("orders".into()).to_string(), "flow:orders");
/// assert!("flow:".parse::<Target>().is_err());
/// let t: Target = "0af7651916cd43dd8448eb211c80319c".parse().unwrap();
/// assert!(matches!(t, Target::Trace(_)));
/// assert_eq!(t.to_string(), "0af7651916cd43dd8448eb211c80319c");
/// assert!("".parse::<Target>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Every request to a component of this name.
    Component(String),
    /// Every request of this message type (a name with a dot, such as `kv.v1.Get`).
    MessageType(String),
    /// Every request of one trace (its id as 32 lowercase hex digits).
    Trace([u8; 16]),
    /// Every remote call of a named flow (the envelope's `flow`, set by the caller
    /// with [`Ref::with_flow`](crate::remote::Ref::with_flow)), written `flow:NAME`:
    /// logged by the caller's node and by the node that handles it.
    Flow(String),
}

/// The prefix of a [`Target::Flow`] in its text form.
pub const FLOW_PREFIX: &str = "flow:";

/// Why a target does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a debug target is a component name, a message type (with a dot), `flow:NAME` or a 32-digit trace id, without spaces, not {0:?}"
)]
pub struct BadTarget(pub String);

impl FromStr for Target {
    type Err = BadTarget;

    fn from_str(s: &str) -> Result<Self, BadTarget> {
        let bad = || BadTarget(s.to_owned());
        if s.is_empty() || s.len() > 255 || s.chars().any(|c| c.is_whitespace() || c == ';') {
            return Err(bad());
        }
        if let Some(flow) = s.strip_prefix(FLOW_PREFIX) {
            return if flow.is_empty() {
                Err(bad())
            } else {
                Ok(Self::Flow(flow.to_owned()))
            };
        }
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let parent = format!("00-{s}-0000000000000001-01");
            return SpanContext::parse_traceparent(&parent)
                .map(|c| Self::Trace(c.trace_id))
                .ok_or_else(bad);
        }
        if s.contains('.') {
            Ok(Self::MessageType(s.to_owned()))
        } else {
            Ok(Self::Component(s.to_owned()))
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Component(c) | Self::MessageType(c) => f.write_str(c),
            Self::Trace(t) => f.write_str(&hex(t)),
            Self::Flow(name) => write!(f, "{FLOW_PREFIX}{name}"),
        }
    }
}

impl Target {
    fn matches(
        &self,
        component: &str,
        message_type: &str,
        flow: &str,
        trace: Option<SpanContext>,
    ) -> bool {
        match self {
            Self::Component(c) => c == component,
            Self::MessageType(m) => m == message_type,
            Self::Trace(t) => trace.is_some_and(|c| &c.trace_id == t),
            Self::Flow(f) => !flow.is_empty() && f == flow,
        }
    }
}

/// A switch that is on: what it watches, until when, how many messages are left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// What it watches.
    pub target: Target,
    /// When it ends, on the runtime clock.
    pub until: Instant,
    /// Messages it may still record.
    pub budget: u32,
}

thread_local! {
    /// The switches of each node on this thread, by node name (the simulator runs
    /// many nodes on one thread).
    static SWITCHES: RefCell<BTreeMap<String, Vec<Switch>>> = const { RefCell::new(BTreeMap::new()) };
    /// Whether the handler being polled is in a debug flow.
    static IN_FLOW: Cell<bool> = const { Cell::new(false) };
}

fn now() -> Instant {
    tern_executor::time::try_now().unwrap_or(Instant::from_nanos(0))
}

fn changed(before: usize, after: usize) {
    if before == after {
        return;
    }
    if after > before {
        if ON.fetch_add(after - before, Ordering::Relaxed) == 0 {
            super::scope::set_debug(true);
        }
    } else if ON.fetch_sub(before - after, Ordering::Relaxed) == before - after {
        super::scope::set_debug(false);
    }
    // Log callsites filtered out for good may pass now, or the reverse.
    tracing::callsite::rebuild_interest_cache();
}

fn count(map: &BTreeMap<String, Vec<Switch>>) -> usize {
    map.values().map(Vec::len).sum()
}

/// Turns on debug tracing of `target` on `node` for `duration` and at most `budget`
/// messages (replacing a switch of the same target). A switch whose end is already
/// known from elsewhere (gossip) uses [`switch_on_until`].
pub fn switch_on(node: &str, target: Target, duration: Duration, budget: u32) {
    switch_on_until(node, target, now().saturating_add(duration), budget);
}

/// As [`switch_on`], ending at `until` on the runtime clock.
pub fn switch_on_until(node: &str, target: Target, until: Instant, budget: u32) {
    tracing::info!(name: "tern.debug.switched_on", node, %target, budget,
        for_ms = until.saturating_duration_since(now()).as_millis(), "debug tracing on");
    SWITCHES.with(|s| {
        let mut map = s.borrow_mut();
        let before = count(&map);
        let list = map.entry(node.to_owned()).or_default();
        list.retain(|w| w.target != target);
        list.push(Switch {
            target,
            until,
            budget,
        });
        changed(before, count(&map));
    });
}

/// Turns off the switch of `target` on `node`, if there is one.
pub fn switch_off(node: &str, target: &Target) {
    SWITCHES.with(|s| {
        let mut map = s.borrow_mut();
        let before = count(&map);
        if let Some(list) = map.get_mut(node) {
            list.retain(|w| &w.target != target);
        }
        map.retain(|_, l| !l.is_empty());
        changed(before, count(&map));
    });
}

/// The switches on for `node` now (ending the ones whose time is up).
#[must_use]
pub fn switches(node: &str) -> Vec<Switch> {
    sweep();
    SWITCHES.with(|s| s.borrow().get(node).cloned().unwrap_or_default())
}

/// Ends the switches of this thread whose time is up (also done on every match, and
/// by the container's timer, so a switch ends even when no message comes).
pub fn sweep() {
    let now = now();
    SWITCHES.with(|s| {
        let mut map = s.borrow_mut();
        let before = count(&map);
        for (node, list) in map.iter_mut() {
            list.retain(|w| {
                let on = w.until > now && w.budget > 0;
                if !on {
                    tracing::info!(name: "tern.debug.switched_off", node = %node, target = %w.target,
                        reason = if w.budget == 0 { "budget spent" } else { "time up" }, "debug tracing off");
                }
                on
            });
        }
        map.retain(|_, l| !l.is_empty());
        changed(before, count(&map));
    });
}

/// Whether the handler being polled on this thread handles a message of a debug flow:
/// the log filter lets its `debug` and `trace` events through.
#[must_use]
pub fn in_flow() -> bool {
    IN_FLOW.with(Cell::get)
}

/// Whether any switch is on in the process.
#[must_use]
pub fn any_on() -> bool {
    ON.load(Ordering::Relaxed) > 0
}

/// Sets [`in_flow`], returning what it was.
pub(crate) fn set_in_flow(on: bool) -> bool {
    IN_FLOW.with(|f| f.replace(on))
}

/// Takes one message from the budget of the first switch of `node` that `matches`,
/// if there is one on.
fn spend(node: &str, matches: impl Fn(&Target) -> bool) -> bool {
    let now = now();
    SWITCHES.with(|s| {
        let mut map = s.borrow_mut();
        let Some(list) = map.get_mut(node) else {
            return false;
        };
        let Some(w) = list
            .iter_mut()
            .find(|w| w.until > now && w.budget > 0 && matches(&w.target))
        else {
            return false;
        };
        w.budget -= 1;
        true
    })
}

/// Whether a request for `component` of `message_type` in flow `flow` (empty: none)
/// and `trace` arriving at `node` is in a debug flow; if so it is logged and counted
/// against the switch's budget.
pub(crate) fn take(
    node: &str,
    component: &str,
    message_type: &str,
    flow: &str,
    trace: Option<SpanContext>,
) -> bool {
    let hit = spend(node, |t| t.matches(component, message_type, flow, trace));
    if hit {
        let trace_id = trace.map(|t| t.trace_hex()).unwrap_or_default();
        tracing::info!(name: "tern.debug.message", node, component, message_type, flow,
            trace_id, direction = "in", "debug flow: message handled");
    }
    sweep();
    hit
}

/// Whether a call from `node` in flow `flow` (empty: none) is watched by a switch on
/// that flow there ([`Target::Flow`]); if so it is counted against the switch's
/// budget (the caller logs it with [`log_call`]).
pub(crate) fn take_call(node: &str, flow: &str) -> bool {
    if flow.is_empty() {
        return false;
    }
    let hit = spend(node, |t| matches!(t, Target::Flow(f) if f == flow));
    sweep();
    hit
}

/// Logs a call made in a debug flow (by a handler in one, or through a reference of
/// a watched named flow).
pub(crate) fn log_call(
    node: &str,
    component: &str,
    message_type: &str,
    flow: &str,
    ctx: SpanContext,
) {
    tracing::info!(name: "tern.debug.message", node, component, message_type, flow,
        trace_id = %ctx.trace_hex(), direction = "out", "debug flow: call sent");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_ends_when_its_budget_is_spent_or_its_time_is_up() {
        let rt = tern_executor::Runtime::builder()
            .virtual_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let c = Target::Component("c".into());
            switch_on("n", c.clone(), Duration::from_secs(1), 2);
            assert!(any_on());
            assert!(!take("other", "c", "t", "", None), "another node's switch");
            assert!(!take("n", "d", "t", "", None), "another component");
            assert!(take("n", "c", "t", "", None));
            assert!(take("n", "c", "t", "", None));
            assert!(!take("n", "c", "t", "", None), "budget spent");
            assert!(switches("n").is_empty());

            let trace = SpanContext::new([5; 16], [1; 8], true);
            let t = Target::Trace(trace.trace_id);
            switch_on("n", t, Duration::from_secs(1), 100);
            assert!(!take("n", "c", "t", "", None), "no trace context");
            assert!(take("n", "c", "t", "", Some(trace)));
            tern_executor::time::sleep(Duration::from_millis(1500)).await;
            assert!(!take("n", "c", "t", "", Some(trace)), "time is up");
            assert!(switches("n").is_empty());
        });
    }

    #[test]
    fn a_flow_switch_matches_its_flow_at_both_ends_and_nothing_else() {
        let rt = tern_executor::Runtime::builder()
            .virtual_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let orders: Target = "flow:orders".parse().expect("a flow target");
            assert_eq!(orders, Target::Flow("orders".into()));
            switch_on("n", orders, Duration::from_secs(1), 3);
            assert!(
                !take("n", "orders", "t", "", None),
                "a component named like it"
            );
            assert!(!take("n", "c", "t", "reports", None), "another flow");
            assert!(!take_call("n", ""), "no flow");
            assert!(!take_call("n", "reports"), "another flow");
            assert!(!take_call("m", "orders"), "another node");
            assert!(take_call("n", "orders"));
            assert!(take("n", "c", "t", "orders", None));
            assert!(take("n", "d", "u", "orders", None));
            assert!(!take_call("n", "orders"), "budget spent");
            assert!(switches("n").is_empty());
        });
    }

    #[test]
    fn targets_round_trip_through_their_text() {
        for text in [
            "store",
            "kv.v1.Get",
            "flow:orders",
            "flow:a.b",
            "0af7651916cd43dd8448eb211c80319c",
        ] {
            let t: Target = text.parse().expect(text);
            assert_eq!(t.to_string(), text);
        }
        for bad in ["", "flow:", "a b", "x;y"] {
            let e = bad.parse::<Target>().expect_err(bad);
            assert!(e.to_string().contains("flow:NAME"), "{e}");
        }
    }
}
