//! The driver on the simulator's datagram network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tern_executor::sim::{Delivery, NodeId, SimSocket};

use crate::driver::Datagrams;

/// The gossip port of simulated nodes.
pub const SIM_PORT: u16 = 7946;

/// The address simulated node `node` gossips at: `10.x.y.z:7946`.
///
/// ```
/// use tern_discovery::{sim_addr, sim_node};
/// use tern_executor::sim::NodeId;
///
/// assert_eq!(sim_node(sim_addr(NodeId(300))), Some(NodeId(300)));
/// ```
#[must_use]
pub fn sim_addr(node: NodeId) -> SocketAddr {
    let i = node.0;
    let [_, b, c, d] = u32::try_from(i).unwrap_or(0).to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, b, c, d)), SIM_PORT)
}

/// The simulated node at `addr`, if it is one.
#[must_use]
pub fn sim_node(addr: SocketAddr) -> Option<NodeId> {
    match addr.ip() {
        IpAddr::V4(ip) if addr.port() == SIM_PORT && ip.octets()[0] == 10 => {
            let [_, b, c, d] = ip.octets();
            Some(NodeId(
                usize::try_from(u32::from_be_bytes([0, b, c, d])).ok()?,
            ))
        }
        _ => None,
    }
}

/// A simulated node's datagram socket.
#[derive(Debug, Clone)]
pub struct SimDatagrams {
    socket: SimSocket,
}

impl SimDatagrams {
    /// Datagrams of the node that owns `socket`.
    #[must_use]
    pub const fn new(socket: SimSocket) -> Self {
        Self { socket }
    }

    /// This node's address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        sim_addr(self.socket.node())
    }
}

impl Datagrams for SimDatagrams {
    fn send_to(&self, to: SocketAddr, data: &[u8]) {
        if let Some(node) = sim_node(to) {
            let _ = self.socket.send(node, Delivery::Datagram, data.to_vec());
        }
    }

    async fn recv_from(&self) -> (SocketAddr, Vec<u8>) {
        let p = self.socket.recv_datagram().await;
        (sim_addr(p.from), p.data)
    }

    fn try_recv_from(&self) -> Option<(SocketAddr, Vec<u8>)> {
        self.socket
            .try_recv_datagram()
            .map(|p| (sim_addr(p.from), p.data))
    }
}
