//! The directory from membership: gossip discovery feeds a [`Node`] which peers are up,
//! where their transport listens and which components they host.
//!
//! `tern-actors` takes membership only as input ([`Node::peer_up`],
//! [`Node::peer_down`], [`Node::watch_exports`]); this module is the wiring between
//! it and [`tern_discovery`]. Each node publishes its exported names as the
//! [`COMPONENTS_FACT`] fact and its transport endpoint as [`ENDPOINT_FACT`]; every
//! member's facts become its directory entry.

use tern_actors::flow::Place;
use tern_actors::remote::{COMPONENTS_FACT, ENDPOINT_FACT, Node};
use tern_discovery::{Discovery, MemberEvent, MemberInfo};

/// Takes `node`'s directory from `discovery`: its exports are published as the
/// [`COMPONENTS_FACT`] fact (and `endpoint`, if given, as [`ENDPOINT_FACT`]), and
/// every member's facts say which components it hosts and where its transport
/// listens. Nothing else is configured: no static peers are needed.
///
/// - A member that becomes alive, or publishes a new component, is routed to at once;
///   calls that were waiting for the name go out.
/// - A member declared dead or that left is forgotten: its outstanding asks fail with
///   [`CallError::PeerLost`](tern_actors::remote::CallError::PeerLost) at once, calls
///   pinned to it fail the same way, and its transport connection closes. A new
///   generation of it is a new member.
///
/// The subscription holds the node weakly: a node that is dropped stops being fed.
pub fn use_discovery(node: &Node, discovery: &Discovery, endpoint: Option<&str>) {
    if let Some(e) = endpoint
        && let Err(err) = discovery.set_fact(ENDPOINT_FACT, e.as_bytes())
    {
        tracing::error!(node = %node.name(), error = %err, "cannot publish the endpoint fact");
    }
    let (d, me) = (discovery.clone(), node.name().to_owned());
    node.watch_exports(move |names| {
        if let Err(e) = d.set_fact(COMPONENTS_FACT, names.join("\n").as_bytes()) {
            tracing::error!(node = %me, error = %e,
                "the exported names do not fit this node's facts; peers will not see the change");
        }
    });
    for m in discovery.members() {
        if !m.state.is_down() {
            feed(node, &m);
        }
    }
    let weak = node.downgrade();
    let d = discovery.clone();
    discovery.subscribe(move |event| {
        let Some(node) = weak.upgrade() else {
            return;
        };
        match event {
            MemberEvent::Up { name, .. } | MemberEvent::Fact { name, .. } => {
                if let Some(m) = d.member(name)
                    && !m.state.is_down()
                {
                    feed(&node, &m);
                }
            }
            MemberEvent::Down { name, left, .. } => node.peer_down(name, *left),
            _ => {}
        }
    });
}

/// One member's facts, as the node's membership input.
fn feed(node: &Node, m: &MemberInfo) {
    if m.name == node.name() {
        return;
    }
    let components: Vec<&str> = m
        .fact(COMPONENTS_FACT)
        .unwrap_or("")
        .split('\n')
        .filter(|c| !c.is_empty())
        .collect();
    // Where it runs, for horizons and link rate limits: its `net` fact and the host
    // of its gossip address.
    let network = m.fact("net").unwrap_or(tern_actors::flow::DEFAULT_NETWORK);
    node.set_peer_place(&m.name, Place::new(network, m.addr.ip().to_string()));
    node.peer_up(&m.name, m.generation, m.fact(ENDPOINT_FACT), &components);
}
