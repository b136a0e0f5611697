//! The same [`App`] as N containers on the deterministic simulator: the components,
//! the configuration and the membership that are deployed, on one [`World`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;

use tern_executor::sim::{NodeId, World};

use super::config::NodeSettings;
use super::{App, AppError, Running};
use crate::discovery::{Datagrams, SimDatagrams, sim_addr, sim_node};
use crate::transport::SimTransport;

/// An [`App`] run as simulated containers, one per node of a [`World`].
///
/// Each container is started from a [`NodeSettings`] exactly as `app node --config
/// FILE` starts a process (write the settings as the deployed TOML with
/// [`Layered::from_toml`](super::config::Layered::from_toml)): the node with its
/// timeouts and frame limits, the components of `components.host`, and, with a
/// `[gossip]` section, membership from the seed list, publishing the same facts. Only
/// the I/O differs: the transport is the simulator's ([`SimTransport`], peers named
/// by node name) and gossip goes over the simulator's datagrams.
///
/// Gossip addresses stay as configured: a container is reached at its
/// `gossip.advertise` address, and a seed list naming other containers' advertised
/// addresses works unchanged (`gossip.bind` is not used). A datagram to an address no
/// container advertises is lost, as UDP to a host that is not there.
///
/// A container that cannot start (a component's starter fails, say) stops the world
/// with a violation naming it, at the step it happens.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// use tern::app::Running;
/// use tern::remote::prelude::*;
///
/// struct Worker;
/// impl Actor for Worker {}
///
/// let app = App::new("demo").component("worker", |node| {
///     node.export("worker", &spawn(Worker))?;
///     Ok(())
/// });
/// let config = |name: &str, port: u16, host: &str| {
///     let text = format!(
///         "[node]\nname = \"{name}\"\nlisten = [\"tcp://127.0.0.1:{port}\"]\n\
///          [components]\nhost = [{host}]\n\
///          [gossip]\nbind = \"127.0.0.1:{port}\"\nseeds = [\"127.0.0.1:7001\"]\n\
///          keys = [\"1:{}\"]\n",
///         "ab".repeat(32)
///     );
///     Layered::from_toml(&text, &format!("{name}.toml")).unwrap().node(1).unwrap()
/// };
///
/// let mut world = World::new(7).unwrap();
/// let cluster = SimCluster::new(&mut world, app, &["front", "w1"]).unwrap();
/// cluster.start(&world, &config("front", 7001, "")).unwrap();
/// cluster.start(&world, &config("w1", 7002, "\"worker\"")).unwrap();
/// world.run_until(Instant::ZERO + Duration::from_secs(5));
///
/// // The front's membership found w1 through the seed, over simulated UDP.
/// let seen = Rc::new(Cell::new(0));
/// let s = seen.clone();
/// let front = cluster.node("front").unwrap();
/// world
///     .spawn_on(front, async move {
///         let running = Running::current().unwrap();
///         s.set(running.discovery().unwrap().live_members());
///     })
///     .detach();
/// world.run_until(Instant::ZERO + Duration::from_secs(6));
/// assert_eq!(seen.get(), 2);
/// assert!(world.violation().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct SimCluster {
    app: Rc<App>,
    nodes: Rc<BTreeMap<String, NodeId>>,
    book: Rc<RefCell<AddressBook>>,
    failures: Rc<RefCell<Vec<String>>>,
}

impl SimCluster {
    /// Adds a node to `world` for each name (the containers' `node.name`s), and an
    /// invariant that stops the world when a container fails to start.
    ///
    /// # Errors
    ///
    /// [`AppError::Executor`] if the world refuses a node (a duplicate name).
    pub fn new(world: &mut World, app: App, names: &[&str]) -> Result<Self, AppError> {
        let mut nodes = BTreeMap::new();
        for name in names {
            nodes.insert((*name).to_owned(), world.add_node(name)?);
        }
        let failures: Rc<RefCell<Vec<String>>> = Rc::default();
        let f = failures.clone();
        world.add_invariant(move |_| match f.borrow().first() {
            Some(first) => Err(format!("a container failed to start: {first}")),
            None => Ok(()),
        });
        Ok(Self {
            app: Rc::new(app),
            nodes: Rc::new(nodes),
            book: Rc::default(),
            failures,
        })
    }

    /// The simulated node named `name`, for faults (`world.crash(id)`,
    /// `world.partition(a, b)`) and for tasks of the test (`world.spawn_on(id, ..)`).
    #[must_use]
    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.nodes.get(name).copied()
    }

    /// Starts the container `settings.name` on its node: after a
    /// `world.restart(id)`, start it again with a higher `settings.generation`, as a
    /// restarted process would be. The container starts when the world next runs that
    /// node. Its real sockets outside the simulated network, the admin listener
    /// (`[admin]`) and span export to a collector (`[trace] otlp_endpoint`), are not
    /// started: they run in a process ([`App::serve`]); spans stay in the container's
    /// ring ([`Running::spans`]).
    ///
    /// # Errors
    ///
    /// [`AppError::Simulation`] if no node has that name, the node is crashed, or its
    /// gossip address is another container's; [`AppError::UnknownComponent`] if
    /// `components.host` names a component the application lacks.
    pub fn start(&self, world: &World, settings: &NodeSettings) -> Result<(), AppError> {
        let name = settings.name.clone();
        let id = self.node(&name).ok_or_else(|| {
            AppError::Simulation(format!(
                "no simulated node is named {name:?} (the cluster has: {})",
                self.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        if world.runtime(id).is_none() {
            return Err(AppError::Simulation(format!(
                "node {name:?} is crashed: restart it before starting its container"
            )));
        }
        self.app.check_hosted(settings)?;
        let gossip = match &settings.gossip {
            Some(g) => {
                self.book.borrow_mut().claim(g.advertise, id, &name)?;
                let socket = BookDatagrams {
                    inner: SimDatagrams::new(world.socket(id)),
                    book: self.book.clone(),
                };
                let seed = world
                    .seeds()
                    .stream(&format!("gossip/{name}/{}", settings.generation))
                    .next_u64();
                Some((socket, seed))
            }
            None => None,
        };
        let id_seed = world
            .seeds()
            .stream(&format!("ids/{name}/{}", settings.generation))
            .next_u64();
        let transport = SimTransport::new(name.clone(), world.socket(id), self.nodes.clone())
            .with_hwm(usize::try_from(settings.send_hwm).unwrap_or(0))
            .with_max_frame(settings.max_frame);
        let (app, settings, failures) = (self.app.clone(), settings.clone(), self.failures.clone());
        world
            .spawn_on(id, async move {
                let listen = settings.listen.clone();
                if let Err(e) = app.start(&settings, transport, &listen, gossip, Some(id_seed)) {
                    tracing::error!(node = %name, error = %e, "container failed to start");
                    failures.borrow_mut().push(format!("{name}: {e}"));
                }
            })
            .detach();
        Ok(())
    }

    /// Stops the container `name` as SIGTERM stops a process: its components are
    /// withdrawn, it leaves the cluster (recorded as *left*, not failed), and work in
    /// flight gets `timeouts.shutdown_grace_ms`. Runs when the world next runs that
    /// node; a node with no running container is left alone.
    ///
    /// # Errors
    ///
    /// [`AppError::Simulation`] if no node has that name.
    pub fn stop(&self, world: &World, name: &str) -> Result<(), AppError> {
        let id = self
            .node(name)
            .ok_or_else(|| AppError::Simulation(format!("no simulated node is named {name:?}")))?;
        world
            .spawn_on(id, async {
                if let Some(running) = Running::current() {
                    running.stop().await;
                }
            })
            .detach();
        Ok(())
    }

    /// Gossip datagrams sent to an address no container advertises (a seed that was
    /// never started, a typo in a seed list), lost as UDP to nowhere is.
    #[must_use]
    pub fn unaddressed_datagrams(&self) -> u64 {
        self.book.borrow().unaddressed
    }

    /// Containers that failed to start, with the reason (the world's invariant stops
    /// the run at the first one).
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        self.failures.borrow().clone()
    }
}

/// Which simulated node advertises which gossip address, both ways.
#[derive(Debug, Default)]
struct AddressBook {
    node_at: BTreeMap<SocketAddr, NodeId>,
    addr_of: BTreeMap<NodeId, SocketAddr>,
    /// Datagrams sent to an address no container advertises.
    unaddressed: u64,
}

impl AddressBook {
    /// Records that `node` advertises `addr` (again, after a restart).
    fn claim(&mut self, addr: SocketAddr, node: NodeId, name: &str) -> Result<(), AppError> {
        match self.node_at.get(&addr) {
            Some(other) if *other != node => Err(AppError::Simulation(format!(
                "container {name:?} advertises gossip address {addr}, which another container advertises already"
            ))),
            _ => {
                if let Some(old) = self.addr_of.insert(node, addr)
                    && old != addr
                {
                    self.node_at.remove(&old);
                }
                self.node_at.insert(addr, node);
                Ok(())
            }
        }
    }
}

/// The simulator's datagrams, addressed by the configured gossip addresses.
#[derive(Debug)]
struct BookDatagrams {
    inner: SimDatagrams,
    book: Rc<RefCell<AddressBook>>,
}

impl BookDatagrams {
    /// The configured address of the node behind simulated address `from`.
    fn configured(&self, from: SocketAddr) -> SocketAddr {
        sim_node(from)
            .and_then(|id| self.book.borrow().addr_of.get(&id).copied())
            .unwrap_or(from)
    }
}

impl Datagrams for BookDatagrams {
    fn send_to(&self, to: SocketAddr, data: &[u8]) {
        let node = self.book.borrow().node_at.get(&to).copied();
        if let Some(id) = node {
            self.inner.send_to(sim_addr(id), data);
        } else {
            self.book.borrow_mut().unaddressed += 1;
            tracing::debug!(%to, "no simulated container advertises this address; datagram lost");
        }
    }

    async fn recv_from(&self) -> (SocketAddr, Vec<u8>) {
        let (from, data) = self.inner.recv_from().await;
        (self.configured(from), data)
    }

    fn try_recv_from(&self) -> Option<(SocketAddr, Vec<u8>)> {
        let (from, data) = self.inner.try_recv_from()?;
        Some((self.configured(from), data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_belongs_to_one_container() {
        let mut book = AddressBook::default();
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        book.claim(a, NodeId(0), "n0").unwrap();
        // The same node again (a restart) is fine; another node is refused.
        book.claim(a, NodeId(0), "n0").unwrap();
        assert!(matches!(
            book.claim(a, NodeId(1), "n1"),
            Err(AppError::Simulation(_))
        ));
        // A restarted node advertising a new address gives up the old one.
        book.claim(b, NodeId(0), "n0").unwrap();
        assert_eq!(book.node_at.get(&a), None);
        assert_eq!(book.node_at.get(&b), Some(&NodeId(0)));
        book.claim(a, NodeId(1), "n1").unwrap();
        assert_eq!(book.addr_of.get(&NodeId(1)), Some(&a));
    }
}
