//! A three-node simulated cluster for the flow tests: `a1` and `a2` in network `a`,
//! `b1` in network `b`; a `sink` component on the nodes a test chooses records what
//! it handles in an [`Accounting`]; a load generator on `a1` sends to it and records
//! every outcome.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::check::Accounting;
use tern::flow::{FlowPolicy, Place};
use tern::remote::prelude::*;

/// The nodes, their networks.
pub(crate) const NODES: [(&str, &str); 3] = [("a1", "a"), ("a2", "a"), ("b1", "b")];

/// A message with a unique id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Msg {
    pub(crate) id: u64,
}
impl RemoteMessage for Msg {
    const NAME: &'static str = "flowtest.v1.Msg";
    type Codec = Postcard;
}

/// Records every message it handles: in the books, and (node, id) in order.
pub(crate) struct Sink {
    node: &'static str,
    books: Rc<Accounting>,
    seen: Rc<RefCell<Vec<(&'static str, u64)>>>,
}
impl Actor for Sink {}
impl Handler<Msg> for Sink {
    type Reply = u64;
    async fn handle(&mut self, m: Msg, _: &mut Context<Self>) -> u64 {
        self.books.delivered(m.id);
        self.seen.borrow_mut().push((self.node, m.id));
        m.id
    }
}

/// What a caller saw of one message.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) id: u64,
    pub(crate) ask: bool,
    pub(crate) sent: Instant,
    pub(crate) done: Instant,
    pub(crate) result: Result<(), CallError>,
    /// For a tell that came back: the message it got back.
    pub(crate) returned: Option<Msg>,
}

/// The cluster.
pub(crate) struct Cluster {
    pub(crate) world: World,
    pub(crate) ids: BTreeMap<&'static str, NodeId>,
    pub(crate) nodes: Rc<RefCell<BTreeMap<&'static str, Node>>>,
    pub(crate) books: Rc<Accounting>,
    pub(crate) seen: Rc<RefCell<Vec<(&'static str, u64)>>>,
    pub(crate) outcomes: Rc<RefCell<Vec<Outcome>>>,
    next_id: Rc<RefCell<u64>>,
}

/// Virtual time `ms` milliseconds in.
pub(crate) fn at_ms(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

/// How a load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tell,
    Ask,
}

impl Cluster {
    /// The cluster with `sink` on the nodes `hosts` names, `policy` on every node
    /// (`receivers` overrides it on the nodes it names), after the directories are
    /// exchanged.
    pub(crate) fn new(
        seed: u64,
        hosts: &[&'static str],
        policy: &FlowPolicy,
        receivers: &[(&'static str, FlowPolicy)],
    ) -> Self {
        let mut world = World::new(seed).unwrap();
        let books = Rc::new(Accounting::new());
        let b = books.clone();
        world.add_invariant(move |_| b.verdict());
        let made = sim_nodes(&mut world, NODES.map(|(n, _)| n)).unwrap();
        let nodes = Rc::new(RefCell::new(BTreeMap::new()));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut ids = BTreeMap::new();
        for ((id, transport), (name, net)) in made.into_iter().zip(NODES) {
            ids.insert(name, id);
            let peers: Vec<&str> = NODES
                .iter()
                .map(|(n, _)| *n)
                .filter(|n| *n != name)
                .collect();
            let policy = receivers
                .iter()
                .find(|(n, _)| *n == name)
                .map_or_else(|| policy.clone(), |(_, p)| p.clone());
            let host = hosts.contains(&name);
            let (nodes, books, seen) = (nodes.clone(), books.clone(), seen.clone());
            world
                .spawn_on(id, async move {
                    let node = Node::start(NodeConfig::new(name).peers(peers), transport).unwrap();
                    node.set_place(Place::new(net, name));
                    for (peer, peer_net) in NODES {
                        node.set_peer_place(peer, Place::new(peer_net, peer));
                    }
                    node.set_flow_policy(policy);
                    if host {
                        let sink = spawn(Sink {
                            node: name,
                            books,
                            seen,
                        });
                        drop(node.export("sink", &sink).unwrap().accept::<Msg>());
                    }
                    nodes.borrow_mut().insert(name, node);
                })
                .detach();
        }
        world.run_until(at_ms(300));
        Self {
            world,
            ids,
            nodes,
            books,
            seen,
            outcomes: Rc::new(RefCell::new(Vec::new())),
            next_id: Rc::new(RefCell::new(0)),
        }
    }

    /// The stats of node `name`.
    pub(crate) fn stats(&self, name: &str) -> NodeStats {
        self.nodes.borrow()[name].stats()
    }

    /// Node `name`.
    pub(crate) fn node(&self, name: &str) -> Node {
        self.nodes.borrow()[name].clone()
    }

    /// From `a1`, `per_s` messages a second for `secs` seconds from `start`, to the
    /// `sink` through `r` (made from a1's node), each recorded in the books and in
    /// `outcomes`. Asks run concurrently, with a deadline of `deadline`.
    pub(crate) fn load(
        &self,
        start: Instant,
        per_s: u64,
        count: u64,
        kind: Kind,
        deadline: Duration,
        r: impl Fn(&Node) -> Ref<Sink> + 'static,
    ) {
        let (nodes, books, outcomes, next) = (
            self.nodes.clone(),
            self.books.clone(),
            self.outcomes.clone(),
            self.next_id.clone(),
        );
        self.world
            .spawn_on(self.ids["a1"], async move {
                let sink = r(&nodes.borrow()["a1"]);
                let every = 1_000_000_000 / per_s;
                for i in 0..count {
                    time::sleep_until(Instant::from_nanos(start.as_nanos() + i * every)).await;
                    let id = {
                        let mut n = next.borrow_mut();
                        *n += 1;
                        *n
                    };
                    books.sent(id);
                    let sent = time::now();
                    match kind {
                        Kind::Tell => {
                            let (result, returned) = match sink.try_tell(Msg { id }) {
                                Ok(()) => (Ok(()), None),
                                Err(u) => (Err(u.reason), Some(u.message)),
                            };
                            if let Err(e) = &result {
                                books.refused(id, e);
                            }
                            outcomes.borrow_mut().push(Outcome {
                                id,
                                ask: false,
                                sent,
                                done: sent,
                                result,
                                returned,
                            });
                        }
                        Kind::Ask => {
                            let (sink, books, outcomes) =
                                (sink.clone(), books.clone(), outcomes.clone());
                            spawn_task(async move {
                                let reply = sink.ask(Msg { id }).timeout(deadline).await;
                                let result = match reply {
                                    Ok(got) => {
                                        assert_eq!(got, id);
                                        Ok(())
                                    }
                                    Err(e) => {
                                        books.refused(id, &e);
                                        Err(e)
                                    }
                                };
                                outcomes.borrow_mut().push(Outcome {
                                    id,
                                    ask: true,
                                    sent,
                                    done: time::now(),
                                    result,
                                    returned: None,
                                });
                            })
                            .detach();
                        }
                    }
                }
            })
            .detach();
    }

    /// Messages the sink handled on `node`.
    pub(crate) fn handled_on(&self, node: &str) -> u64 {
        self.seen
            .borrow()
            .iter()
            .filter(|(n, _)| *n == node)
            .count() as u64
    }

    /// Balances the books with every node's counters: silent drops (rate-limited
    /// tells, inbound tells refused, waiting tells expired) and what is in flight
    /// (shaping queues, waiting calls).
    pub(crate) fn balance(&self) -> Result<tern::check::Ledger, String> {
        let mut rate = 0;
        let mut inbound = 0;
        let mut expired = 0;
        let mut in_flight = 0;
        for (name, _) in NODES {
            let s = self.stats(name);
            rate += s.flow.rate_dropped;
            inbound += s.dropped;
            expired += s.pending_expired;
            in_flight += (s.flow.shaping + s.pending) as u64;
        }
        self.books.dropped("rate_limited", rate);
        self.books.dropped("inbound_refused", inbound);
        self.books.dropped("pending_expired", expired);
        self.books.check(in_flight)
    }
}
