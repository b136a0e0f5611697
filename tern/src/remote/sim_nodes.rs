//! Simulated nodes with their transports, in one call.

use std::collections::BTreeMap;
use std::rc::Rc;

use tern_executor::sim::{NodeId, World};
use tern_transport::SimTransport;

/// Adds one node per name to `world` and gives each a [`SimTransport`] that reaches
/// the others by name: what [`Node::start`](crate::remote::Node::start) needs, without
/// building the name directory by hand.
///
/// # Errors
///
/// The [`tern_executor::Error`] of [`World::add_node`].
///
/// # Examples
///
/// ```
/// use tern::remote::prelude::*;
///
/// let mut world = World::new(7).unwrap();
/// let [(a, ta), (b, _tb)] = sim_nodes(&mut world, ["a", "b"]).unwrap();
/// assert_ne!(a, b);
/// let started = world.spawn_on(a, async move {
///     let node = Node::start(NodeConfig::new("a").peers(["b"]), ta).unwrap();
///     node.name().to_owned()
/// });
/// // A running node has timers: run for a bounded span of virtual time, not until idle.
/// world.run_until(Instant::from_nanos(10_000_000));
/// let name = world.runtime(a).unwrap().block_on(started).unwrap();
/// assert_eq!(name, "a");
/// ```
pub fn sim_nodes<const N: usize>(
    world: &mut World,
    names: [&str; N],
) -> Result<[(NodeId, SimTransport); N], tern_executor::Error> {
    let mut ids = [NodeId(0); N];
    for (id, name) in ids.iter_mut().zip(names) {
        *id = world.add_node(name)?;
    }
    let directory = Rc::new(
        names
            .iter()
            .zip(ids)
            .map(|(name, id)| ((*name).to_owned(), id))
            .collect::<BTreeMap<_, _>>(),
    );
    Ok(std::array::from_fn(|i| {
        (
            ids[i],
            SimTransport::new(names[i], world.socket(ids[i]), directory.clone()),
        )
    }))
}
