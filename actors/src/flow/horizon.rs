//! Message horizons: how far a message may travel, `process < node < network <
//! global`, resolved as the narrowest of every level that sets one.
//!
//! The levels are the app default ([`Horizon::Network`] unless set), the component
//! called (how far its callers may be), the named flow, the sending network's egress
//! cap (for all flows, or one flow) and a per-call override. None of them can widen
//! what another narrowed: the result is their minimum, always.

use std::collections::BTreeMap;
use std::fmt;

/// How far a message may travel, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Horizon {
    /// The sending container only: never leaves the process.
    Process,
    /// Containers on the same host.
    Node,
    /// Containers in the same network (data centre, region).
    Network,
    /// Anywhere.
    Global,
}

impl Horizon {
    /// Every horizon, narrowest first.
    pub const ALL: [Self; 4] = [Self::Process, Self::Node, Self::Network, Self::Global];

    /// The envelope's `horizon` field for it (1 to 4).
    #[must_use]
    pub fn to_wire(self) -> u32 {
        match self {
            Self::Process => 1,
            Self::Node => 2,
            Self::Network => 3,
            Self::Global => 4,
        }
    }

    /// The horizon an envelope's `horizon` field carries: `None` for 0 (the sender set
    /// none) or a value this build does not know (treated as none: the receiver's own
    /// horizons still apply).
    #[must_use]
    pub fn from_wire(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Process),
            2 => Some(Self::Node),
            3 => Some(Self::Network),
            4 => Some(Self::Global),
            _ => None,
        }
    }

    /// The narrowest horizon a message from `from` to `to` needs (`to` in another
    /// container: at least [`Horizon::Node`]).
    #[must_use]
    pub fn needed(from: &Place, to: &Place) -> Self {
        if from.network != to.network {
            Self::Global
        } else if from.host != to.host {
            Self::Network
        } else {
            Self::Node
        }
    }

    /// Whether a message with this horizon may go from `from` to another container at
    /// `to`.
    #[must_use]
    pub fn allows(self, from: &Place, to: &Place) -> bool {
        Self::needed(from, to) <= self
    }

    /// The horizon a configuration string names (`process`, `node`, `network`,
    /// `global`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }

    /// Its configuration name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Node => "node",
            Self::Network => "network",
            Self::Global => "global",
        }
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a container runs: its network and its host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Place {
    /// The network (the `net` gossip fact).
    pub network: String,
    /// The host.
    pub host: String,
}

impl Place {
    /// A container on `host` in `network`.
    #[must_use]
    pub fn new(network: impl Into<String>, host: impl Into<String>) -> Self {
        Self {
            network: network.into(),
            host: host.into(),
        }
    }
}

/// Where horizons are set; [`Horizons::resolve`] gives the effective one.
///
/// ```
/// use tern_actors::flow::{Horizon, Horizons};
///
/// let mut h = Horizons::default(); // app default: network
/// h.flow("metrics", Horizon::Global).component("billing", Horizon::Node);
/// assert_eq!(h.resolve("search", "metrics", "eu", None), Horizon::Network); // never widened
/// assert_eq!(h.resolve("billing", "", "eu", None), Horizon::Node);
/// h.app(Horizon::Global);
/// assert_eq!(h.resolve("search", "metrics", "eu", None), Horizon::Global);
/// assert_eq!(h.resolve("search", "metrics", "eu", Some(Horizon::Node)), Horizon::Node);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Horizons {
    app: Horizon,
    components: BTreeMap<String, Horizon>,
    flows: BTreeMap<String, Horizon>,
    /// Egress cap per network, for every flow.
    networks: BTreeMap<String, Horizon>,
    /// Egress cap per (network, flow).
    network_flows: BTreeMap<(String, String), Horizon>,
}

impl Default for Horizons {
    fn default() -> Self {
        Self {
            app: Horizon::Network,
            components: BTreeMap::new(),
            flows: BTreeMap::new(),
            networks: BTreeMap::new(),
            network_flows: BTreeMap::new(),
        }
    }
}

impl Horizons {
    /// Sets the app default.
    pub fn app(&mut self, h: Horizon) -> &mut Self {
        self.app = h;
        self
    }

    /// Sets component `name`'s horizon: how far its callers may be.
    pub fn component(&mut self, name: impl Into<String>, h: Horizon) -> &mut Self {
        self.components.insert(name.into(), h);
        self
    }

    /// Sets flow `name`'s horizon.
    pub fn flow(&mut self, name: impl Into<String>, h: Horizon) -> &mut Self {
        self.flows.insert(name.into(), h);
        self
    }

    /// Caps what leaves network `name` (every flow).
    pub fn network(&mut self, name: impl Into<String>, h: Horizon) -> &mut Self {
        self.networks.insert(name.into(), h);
        self
    }

    /// Caps what of flow `flow` leaves network `network`.
    pub fn network_flow(
        &mut self,
        network: impl Into<String>,
        flow: impl Into<String>,
        h: Horizon,
    ) -> &mut Self {
        self.network_flows.insert((network.into(), flow.into()), h);
        self
    }

    /// The effective horizon of a message of `flow` ("" for none) to `component`, sent
    /// from `network`, with the sender's `requested` horizon if any: the narrowest of
    /// every level. An unknown flow or component gets the app default.
    #[must_use]
    pub fn resolve(
        &self,
        component: &str,
        flow: &str,
        network: &str,
        requested: Option<Horizon>,
    ) -> Horizon {
        let mut h = self.app;
        let mut narrow = |x: Option<&Horizon>| {
            if let Some(x) = x {
                h = h.min(*x);
            }
        };
        narrow(self.components.get(component));
        if !flow.is_empty() {
            narrow(self.flows.get(flow));
        }
        narrow(self.networks.get(network));
        if !self.network_flows.is_empty() {
            narrow(
                self.network_flows
                    .get(&(network.to_owned(), flow.to_owned())),
            );
        }
        narrow(requested.as_ref());
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip_and_unknown_ones_are_none() {
        for h in Horizon::ALL {
            assert_eq!(Horizon::from_wire(h.to_wire()), Some(h));
            assert_eq!(Horizon::parse(h.as_str()), Some(h));
        }
        assert_eq!(Horizon::from_wire(0), None);
        assert_eq!(Horizon::from_wire(5), None);
    }

    #[test]
    fn the_needed_horizon_is_the_smallest_scope_holding_both_ends() {
        let a = Place::new("eu", "h1");
        assert_eq!(Horizon::needed(&a, &Place::new("eu", "h1")), Horizon::Node);
        assert_eq!(
            Horizon::needed(&a, &Place::new("eu", "h2")),
            Horizon::Network
        );
        assert_eq!(
            Horizon::needed(&a, &Place::new("us", "h1")),
            Horizon::Global
        );
        assert!(!Horizon::Process.allows(&a, &a));
        assert!(Horizon::Node.allows(&a, &a));
        assert!(!Horizon::Network.allows(&a, &Place::new("us", "h1")));
    }

    /// Every combination of the five levels (each unset or one of four scopes): the
    /// result is always the narrowest set, so no level ever widens another.
    #[test]
    fn resolution_is_the_narrowest_of_every_level() {
        let choices: Vec<Option<Horizon>> = std::iter::once(None)
            .chain(Horizon::ALL.map(Some))
            .collect();
        let mut checked = 0;
        for app in Horizon::ALL {
            for component in &choices {
                for flow in &choices {
                    for network in &choices {
                        for network_flow in &choices {
                            for requested in &choices {
                                let mut h = Horizons::default();
                                h.app(app);
                                if let Some(x) = component {
                                    h.component("c", *x);
                                }
                                if let Some(x) = flow {
                                    h.flow("f", *x);
                                }
                                if let Some(x) = network {
                                    h.network("n", *x);
                                }
                                if let Some(x) = network_flow {
                                    h.network_flow("n", "f", *x);
                                }
                                let expected =
                                    [*component, *flow, *network, *network_flow, *requested]
                                        .into_iter()
                                        .flatten()
                                        .fold(app, Horizon::min);
                                assert_eq!(h.resolve("c", "f", "n", *requested), expected);
                                // Other names get none of the component's, flow's or
                                // network's settings.
                                let others = requested.map_or(app, |r| app.min(r));
                                assert_eq!(h.resolve("x", "g", "m", *requested), others);
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 5 * 5 * 5 * 5 * 5);
    }
}
