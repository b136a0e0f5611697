//! The `[flows.NAME]` and `[horizons]` sections: named flows' rate limits and
//! horizons, the application's horizon and per-component horizons, checked here and
//! turned into the node's [`FlowPolicy`] at start.
//!
//! ```toml
//! [flows.thumbnails]
//! rate = 200          # messages a second (omit for no rate limit)
//! burst = 20          # default: one second's worth
//! overflow = "bounce" # "drop" (default), "bounce" or "local"
//! horizon = "network" # process, node, network, global
//!
//! [horizons]
//! app = "network"     # the application's horizon
//! kv = "node"         # any other key: a component's horizon
//! ```

use std::collections::BTreeMap;

use toml::Value;

use crate::flow::{FlowPolicy, Horizon, Limit, Overflow, Rate};

/// One named flow's settings (`[flows.NAME]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowSetting {
    /// Messages a second and burst, if the flow is rate limited.
    pub rate: Option<(u32, u32)>,
    /// What happens to its excess.
    pub overflow: Overflow,
    /// Its horizon, if set.
    pub horizon: Option<Horizon>,
}

/// The flow settings of a node: `[flows.NAME]` and `[horizons]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlowSettings {
    /// Named flows.
    pub flows: BTreeMap<String, FlowSetting>,
    /// The application's horizon (`horizons.app`), if set.
    pub app_horizon: Option<Horizon>,
    /// Components' horizons (`horizons.<component>`).
    pub component_horizons: BTreeMap<String, Horizon>,
}

impl FlowSettings {
    /// Whether nothing is configured (then the node's policy is left alone).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.app_horizon.is_none() && self.component_horizons.is_empty()
    }

    /// The node's flow policy these settings make.
    #[must_use]
    pub fn policy(&self) -> FlowPolicy {
        let mut policy = FlowPolicy::default();
        if let Some(h) = self.app_horizon {
            policy.horizons.app(h);
        }
        for (name, h) in &self.component_horizons {
            policy.horizons.component(name.clone(), *h);
        }
        for (name, f) in &self.flows {
            if let Some(h) = f.horizon {
                policy.horizons.flow(name.clone(), h);
            }
            if let Some((per_second, burst)) = f.rate {
                policy.limits.flow(
                    name.clone(),
                    Limit::new(Rate::new(per_second, burst), f.overflow),
                );
            }
        }
        policy
    }
}

const HORIZONS: &str = "one of \"process\", \"node\", \"network\", \"global\"";

/// A horizon's name checked.
pub(super) fn horizon(value: &Value) -> Result<Horizon, String> {
    value
        .as_str()
        .and_then(Horizon::parse)
        .ok_or_else(|| HORIZONS.to_owned())
}

/// A `[flows.NAME]` table checked: what was expected if it is not valid.
pub(super) fn flow(value: &Value) -> Result<FlowSetting, String> {
    const EXPECTED: &str = "a table with `rate` (messages a second, 1 or more), `burst` (1 or more), `overflow` (\"drop\", \"bounce\" or \"local\") and `horizon`; `rate` or `horizon` at least";
    let Value::Table(t) = value else {
        return Err(EXPECTED.to_owned());
    };
    let count = |key: &str| -> Result<Option<u32>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 1 => u32::try_from(*n)
                .map(Some)
                .map_err(|_| format!("`{key}`: at most {}", u32::MAX)),
            Some(_) => Err(format!("`{key}`: an integer of 1 or more")),
        }
    };
    if let Some(k) = t
        .keys()
        .find(|k| !["rate", "burst", "overflow", "horizon"].contains(&k.as_str()))
    {
        return Err(format!("unknown key `{k}`; {EXPECTED}"));
    }
    let rate = count("rate")?;
    let burst = count("burst")?;
    if rate.is_none() && burst.is_some() {
        return Err("`burst` without `rate`".to_owned());
    }
    let overflow = match t.get("overflow").map(Value::as_str) {
        None | Some(Some("drop")) => Overflow::Drop,
        Some(Some("bounce")) => Overflow::Bounce,
        Some(Some("local")) => Overflow::LOCAL,
        Some(_) => return Err("`overflow`: \"drop\", \"bounce\" or \"local\"".to_owned()),
    };
    let horizon = t
        .get("horizon")
        .map(horizon)
        .transpose()
        .map_err(|e| format!("`horizon`: {e}"))?;
    if rate.is_none() && horizon.is_none() {
        return Err(EXPECTED.to_owned());
    }
    Ok(FlowSetting {
        rate: rate.map(|r| (r, burst.unwrap_or(r))),
        overflow,
        horizon,
    })
}
