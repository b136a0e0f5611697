//! The versioned [`LimitSet`]: every capacity limit of a container in one place,
//! changed at run time as a whole.
//!
//! Keys (`KEY=VALUE`, a value of `none` lifts the limit):
//!
//! | key | what it bounds |
//! |---|---|
//! | `mailbox.<component>` | the mailbox capacity of an exported component (queued messages) |
//! | `in_flight.<component>` | this container's asks on the wire to a component |
//! | `container.in_flight` | this container's asks on the wire, all components |
//! | `ingress.max` | the most the adaptive ingress limit may grow to |
//!
//! Application rules: a change set is checked whole and applied whole (between two
//! scheduler turns, as the container has one thread), and bumps the version. Lowering
//! a limit below what is in use evicts nothing: queued messages and asks on the wire
//! stay, and new admissions are refused until use is below the limit. Raising one
//! takes effect at the next admission decision and grants no burst: nothing is
//! pre-admitted, the next call just finds room.

use std::collections::BTreeMap;
use std::fmt;

use super::OpsError;

/// The limits of one component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentLimits {
    /// Mailbox capacity (queued messages), if set.
    pub mailbox: Option<usize>,
    /// This container's asks on the wire to it, if bounded.
    pub in_flight: Option<usize>,
}

/// One limit's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitKey {
    /// `mailbox.<component>`.
    Mailbox(String),
    /// `in_flight.<component>`.
    InFlight(String),
    /// `container.in_flight`.
    ContainerInFlight,
    /// `ingress.max`.
    IngressMax,
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mailbox(c) => write!(f, "mailbox.{c}"),
            Self::InFlight(c) => write!(f, "in_flight.{c}"),
            Self::ContainerInFlight => f.write_str("container.in_flight"),
            Self::IngressMax => f.write_str("ingress.max"),
        }
    }
}

/// One change: a key and its new value (`None` lifts the limit).
///
/// # Examples
///
/// ```
/// use tern_actors::ops::{LimitChange, LimitKey};
///
/// let c = LimitChange::parse("mailbox.kv=64").unwrap();
/// assert_eq!(c.key, LimitKey::Mailbox("kv".into()));
/// assert_eq!(c.value, Some(64));
/// assert!(LimitChange::parse("mailbox.kv=0").is_err());
/// assert_eq!(c.to_string(), "mailbox.kv=64");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitChange {
    /// The limit.
    pub key: LimitKey,
    /// Its new value, `None` for no limit.
    pub value: Option<u64>,
}

impl fmt::Display for LimitChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Some(v) => write!(f, "{}={v}", self.key),
            None => write!(f, "{}=none", self.key),
        }
    }
}

impl LimitChange {
    /// A change of `key` to `value`.
    #[must_use]
    pub const fn new(key: LimitKey, value: Option<u64>) -> Self {
        Self { key, value }
    }

    /// Parses `KEY=VALUE` (see [`LimitSet`] for the keys).
    ///
    /// # Errors
    ///
    /// [`OpsError::BadLimit`] naming what is wrong: an unknown key, an empty
    /// component name, a value that is not a positive integer or `none`.
    pub fn parse(text: &str) -> Result<Self, OpsError> {
        let bad = |why: &str| OpsError::BadLimit {
            text: text.chars().take(200).collect(),
            why: why.to_owned(),
        };
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE"))?;
        let (key, value) = (key.trim(), value.trim());
        let component = |name: &str| {
            if name.is_empty() || name.len() > 256 {
                Err(bad("the component name must be 1 to 256 bytes"))
            } else {
                Ok(name.to_owned())
            }
        };
        let key = match key {
            "container.in_flight" => LimitKey::ContainerInFlight,
            "ingress.max" => LimitKey::IngressMax,
            k => {
                if let Some(c) = k.strip_prefix("mailbox.") {
                    LimitKey::Mailbox(component(c)?)
                } else if let Some(c) = k.strip_prefix("in_flight.") {
                    LimitKey::InFlight(component(c)?)
                } else {
                    return Err(bad(
                        "unknown key; expected mailbox.<component>, in_flight.<component>, container.in_flight or ingress.max",
                    ));
                }
            }
        };
        let value = match value {
            "none" => None,
            v => match v.parse::<u64>() {
                Ok(0) | Err(_) => {
                    return Err(bad("the value must be a positive integer or `none`"));
                }
                Ok(n) => Some(n),
            },
        };
        Ok(Self { key, value })
    }
}

/// Every limit of a container, versioned.
///
/// Keys (`KEY=VALUE`, a value of `none` lifts the limit):
///
/// | key | what it bounds |
/// |---|---|
/// | `mailbox.<component>` | the mailbox capacity of an exported component (queued messages) |
/// | `in_flight.<component>` | this container's asks on the wire to a component |
/// | `container.in_flight` | this container's asks on the wire, all components |
/// | `ingress.max` | the most the adaptive ingress limit may grow to |
///
/// Application rules: a change set is checked whole and applied whole (between two
/// scheduler turns, as the container has one thread), and bumps the version. Lowering
/// a limit below what is in use evicts nothing: queued messages and asks on the wire
/// stay, and new admissions are refused until use is below the limit. Raising one
/// takes effect at the next admission decision and grants no burst: nothing is
/// pre-admitted, the next call just finds room.
///
/// # Examples
///
/// ```
/// use tern_actors::ops::{LimitChange, LimitSet};
///
/// let mut limits = LimitSet::default();
/// let v = limits
///     .apply(&[LimitChange::parse("mailbox.kv=8").unwrap()], None)
///     .unwrap();
/// assert_eq!(v, 1);
/// assert_eq!(limits.component("kv").mailbox, Some(8));
/// // A change made against an old version is refused whole.
/// assert!(limits.apply(&[LimitChange::parse("ingress.max=4").unwrap()], Some(0)).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitSet {
    version: u64,
    components: BTreeMap<String, ComponentLimits>,
    container_in_flight: Option<usize>,
    ingress_max: Option<u32>,
}

impl LimitSet {
    /// Its version: 0 before any change, one more after each.
    #[must_use]
    pub const fn version(&self) -> u64 {
        self.version
    }

    /// The limits of `component` (all unset if none was given).
    #[must_use]
    pub fn component(&self, component: &str) -> ComponentLimits {
        self.components.get(component).copied().unwrap_or_default()
    }

    /// The bound on this container's asks on the wire, if any.
    #[must_use]
    pub const fn container_in_flight(&self) -> Option<usize> {
        self.container_in_flight
    }

    /// The most the ingress limit may grow to, if bounded.
    #[must_use]
    pub const fn ingress_max(&self) -> Option<u32> {
        self.ingress_max
    }

    /// Every limit set, as changes that would rebuild it, in key order.
    #[must_use]
    pub fn entries(&self) -> Vec<LimitChange> {
        let mut out = Vec::new();
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        for (name, l) in &self.components {
            if let Some(m) = l.mailbox {
                out.push(LimitChange::new(
                    LimitKey::Mailbox(name.clone()),
                    Some(as_u64(m)),
                ));
            }
            if let Some(m) = l.in_flight {
                out.push(LimitChange::new(
                    LimitKey::InFlight(name.clone()),
                    Some(as_u64(m)),
                ));
            }
        }
        if let Some(m) = self.container_in_flight {
            out.push(LimitChange::new(
                LimitKey::ContainerInFlight,
                Some(as_u64(m)),
            ));
        }
        if let Some(m) = self.ingress_max {
            out.push(LimitChange::new(LimitKey::IngressMax, Some(u64::from(m))));
        }
        out
    }

    /// Applies `changes` whole, if the set is still at version `expected` (when
    /// given); returns the new version.
    ///
    /// # Errors
    ///
    /// [`OpsError::StaleVersion`] if the set moved on; [`OpsError::BadLimit`] for a
    /// value out of range. Nothing is applied then.
    pub fn apply(
        &mut self,
        changes: &[LimitChange],
        expected: Option<u64>,
    ) -> Result<u64, OpsError> {
        if let Some(expected) = expected
            && expected != self.version
        {
            return Err(OpsError::StaleVersion {
                expected,
                actual: self.version,
            });
        }
        let mut next = self.clone();
        for change in changes {
            let too_big = || OpsError::BadLimit {
                text: change.to_string(),
                why: "the value is too large".to_owned(),
            };
            let size = change
                .value
                .map(usize::try_from)
                .transpose()
                .map_err(|_| too_big())?;
            match &change.key {
                LimitKey::Mailbox(c) => {
                    next.components.entry(c.clone()).or_default().mailbox = size
                }
                LimitKey::InFlight(c) => {
                    next.components.entry(c.clone()).or_default().in_flight = size
                }
                LimitKey::ContainerInFlight => next.container_in_flight = size,
                LimitKey::IngressMax => {
                    next.ingress_max = change
                        .value
                        .map(u32::try_from)
                        .transpose()
                        .map_err(|_| too_big())?;
                }
            }
        }
        next.components
            .retain(|_, l| *l != ComponentLimits::default());
        next.version = self.version + 1;
        *self = next;
        tracing::info!(name: "tern.limits.changed", version = self.version,
            changes = changes.len(), "limits changed");
        Ok(self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(s: &str) -> LimitChange {
        LimitChange::parse(s).expect(s)
    }

    #[test]
    fn every_key_parses_and_prints_back() {
        for s in [
            "mailbox.kv=3",
            "in_flight.kv=none",
            "container.in_flight=100",
            "ingress.max=64",
        ] {
            assert_eq!(change(s).to_string(), s);
        }
    }

    #[test]
    fn bad_changes_say_why() {
        for (s, why) in [
            ("mailbox.kv", "KEY=VALUE"),
            ("mailbox.=3", "component name"),
            ("speed.kv=3", "unknown key"),
            ("mailbox.kv=-1", "positive integer"),
            ("mailbox.kv=0", "positive integer"),
        ] {
            let e = LimitChange::parse(s).expect_err(s).to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn a_change_set_is_applied_whole_or_not_at_all() {
        let mut l = LimitSet::default();
        l.apply(&[change("mailbox.a=5"), change("in_flight.a=2")], None)
            .expect("valid");
        let before = l.clone();
        let huge = LimitChange::new(LimitKey::IngressMax, Some(u64::MAX));
        assert!(l.apply(&[change("mailbox.a=9"), huge], None).is_err());
        assert_eq!(l, before);
        assert_eq!(l.version(), 1);
        assert!(matches!(
            l.apply(&[change("mailbox.a=9")], Some(0)),
            Err(OpsError::StaleVersion {
                expected: 0,
                actual: 1
            })
        ));
        assert_eq!(
            l.apply(
                &[change("mailbox.a=none"), change("in_flight.a=none")],
                Some(1)
            ),
            Ok(2)
        );
        assert!(l.entries().is_empty(), "{:?}", l.entries());
    }
}
