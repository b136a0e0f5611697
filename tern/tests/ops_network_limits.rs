//! Network-wide limits spread by gossip, on the simulator over a few seeds: a limit
//! set for a network on one container is adopted by every container of that network
//! and by no other; where a container's own limit is narrower it stays in force; an
//! older, malformed or oversized `limits` fact never overrides a newer one; two sets
//! made at once end the same everywhere (the higher origin wins).

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern::app::config::NodeSettings;
use tern::app::{App, LIMITS_FACT, Running, SimCluster};
use tern::ops::LimitChange;
use tern::remote::Node;
use tern::sim::World;
use tern::{Actor, Instant};

mod sim_node;

struct Idle;
impl Actor for Idle {}

fn app() -> App {
    App::new("net-limits").component("echo", |node: &Node| {
        drop(node.export("echo", &tern::spawn(Idle))?);
        Ok(())
    })
}

fn settings(name: &str, port: u16, network: &str) -> NodeSettings {
    let extra = format!("network = \"{network}\"");
    sim_node::settings(name, port, 1, "net-limits", "\"echo\"", &extra)
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

const NODES: [(&str, &str); 4] = [
    ("a1", "east"),
    ("a2", "east"),
    ("a3", "east"),
    ("b1", "west"),
];

fn changes(text: &[&str]) -> Vec<LimitChange> {
    text.iter()
        .map(|t| LimitChange::parse(t).unwrap())
        .collect()
}

/// Runs `f` on the container `name` (at the world's next turn).
fn on(world: &World, cluster: &SimCluster, name: &str, f: impl FnOnce(&Running) + 'static) {
    world
        .spawn_on(cluster.node(name).unwrap(), async move {
            f(&Running::current().unwrap());
        })
        .detach();
}

/// What each container has: (mailbox of echo, in_flight of echo, network version
/// and origin).
type Seen = Vec<(Option<usize>, Option<usize>, Option<(u64, String)>)>;

/// Runs the world `ms` on, then reads what each container has.
fn seen(world: &mut World, cluster: &SimCluster, ms: u64) -> Seen {
    let then = world.now() + Duration::from_millis(ms);
    world.run_until(then);
    let out: Rc<RefCell<Vec<(usize, Seen)>>> = Rc::default();
    for (i, (name, _)) in NODES.into_iter().enumerate() {
        let out = out.clone();
        on(world, cluster, name, move |r| {
            let l = r.node().limits().component("echo");
            let net = r.network_limits().map(|(v, o, _)| (v, o));
            out.borrow_mut()
                .push((i, vec![(l.mailbox, l.in_flight, net)]));
        });
    }
    let then = world.now() + Duration::from_millis(10);
    world.run_until(then);
    let mut out = out.take();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().flat_map(|(_, s)| s).collect()
}

fn run(seed: u64) {
    let mut world = World::new(seed).unwrap();
    let names: Vec<&str> = NODES.iter().map(|(n, _)| *n).collect();
    let cluster = SimCluster::new(&mut world, app(), &names).unwrap();
    for (i, (name, net)) in NODES.into_iter().enumerate() {
        let port = 7001 + u16::try_from(i).unwrap();
        cluster.start(&world, &settings(name, port, net)).unwrap();
    }
    world.run_until(at(3_000));

    // a2's own mailbox limit is narrower than the network's about to come.
    on(&world, &cluster, "a2", |r| {
        assert_eq!(r.set_capacity(&changes(&["mailbox.echo=3"])), Ok(1));
    });
    on(&world, &cluster, "a1", |r| {
        let v = r
            .set_network_capacity(&changes(&["mailbox.echo=10", "in_flight.echo=7"]))
            .unwrap();
        assert_eq!(v, 1);
    });
    world.run_until(at(3_100));
    let v1 = Some((1, "a1".to_owned()));
    let s = seen(&mut world, &cluster, 6_000);
    assert_eq!(
        s,
        [
            (Some(10), Some(7), v1.clone()),
            (Some(3), Some(7), v1.clone()),
            (Some(10), Some(7), v1.clone()),
            (None, None, None),
        ],
        "seed {seed}: east adopts, a2's narrower mailbox stays, west does not"
    );

    // Stale, malformed and oversized facts published by a1 are refused everywhere.
    on(&world, &cluster, "a1", |r| {
        let d = r.discovery().unwrap();
        d.set_fact(LIMITS_FACT, b"0 zzz\nmailbox.echo=1").unwrap();
    });
    let s = seen(&mut world, &cluster, 4_000);
    assert!(
        s[..3].iter().all(|x| x.2 == v1 && x.1 == Some(7)),
        "seed {seed}: an older version never wins: {s:?}"
    );
    for bad in [
        "9 zzz\nmailbox.echo=0".to_owned(),
        "nine zzz".to_owned(),
        format!("9 zzz\n{}", "in_flight.echo=1\n".repeat(40)),
    ] {
        on(&world, &cluster, "a1", move |r| {
            r.discovery()
                .unwrap()
                .set_fact(LIMITS_FACT, bad.as_bytes())
                .unwrap();
        });
        let s = seen(&mut world, &cluster, 4_000);
        assert!(
            s[1..3].iter().all(|x| x.2 == v1 && x.1 == Some(7)),
            "seed {seed}: a bad fact is refused whole: {s:?}"
        );
    }

    // Two sets at once from a1 and a3 (both version 2): a3, the higher origin, wins
    // everywhere; the west's own set stays in the west.
    on(&world, &cluster, "a1", |r| {
        assert_eq!(
            r.set_network_capacity(&changes(&["mailbox.echo=20"])).ok(),
            Some(2)
        );
    });
    on(&world, &cluster, "a3", |r| {
        assert_eq!(
            r.set_network_capacity(&changes(&["mailbox.echo=30", "in_flight.echo=none"]))
                .ok(),
            Some(2)
        );
    });
    on(&world, &cluster, "b1", |r| {
        assert_eq!(
            r.set_network_capacity(&changes(&["mailbox.echo=2"])).ok(),
            Some(1)
        );
    });
    let s = seen(&mut world, &cluster, 6_000);
    let v2 = Some((2, "a3".to_owned()));
    assert_eq!(
        s,
        [
            (Some(30), None, v2.clone()),
            (Some(3), None, v2.clone()),
            (Some(30), None, v2),
            (Some(2), None, Some((1, "b1".to_owned()))),
        ],
        "seed {seed}"
    );
}

#[test]
fn network_limits_spread_to_their_network_only_and_never_go_back() {
    for seed in [1, 7, 42] {
        run(seed);
    }
}
