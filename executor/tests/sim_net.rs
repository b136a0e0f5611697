//! The simulated network: latency in virtual time, loss, duplication, stream order,
//! partitions, and replay.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::{Delivery, NetConfig, NodeId, SendOutcome, World};
use tern_executor::time;

type Got = Rc<RefCell<Vec<(u64, Vec<u8>)>>>;

/// Node 0 sends `n` messages to node 1, one per millisecond; node 1 records what
/// arrives and when (in microseconds).
fn run(seed: u64, config: NetConfig, delivery: Delivery, n: u8) -> (Vec<(u64, Vec<u8>)>, World) {
    let mut world = World::new(seed).expect("world");
    world.set_net(config);
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let got: Got = Rc::default();
    let (sa, sb) = (world.socket(a), world.socket(b));
    world
        .spawn_on(a, async move {
            for i in 0..n {
                let _ = sa.send(NodeId(1), delivery, vec![i]);
                time::sleep(Duration::from_millis(1)).await;
            }
        })
        .detach();
    let g = got.clone();
    world
        .spawn_on(b, async move {
            loop {
                let p = sb.recv().await;
                let us = time::now().as_nanos() / 1_000;
                g.borrow_mut().push((us, p.data));
            }
        })
        .detach();
    world.run_until_idle();
    let got = got.borrow().clone();
    (got, world)
}

#[test]
fn messages_arrive_after_at_least_the_minimum_latency() {
    let config = NetConfig {
        min_latency: Duration::from_millis(5),
        tail_mean: Duration::from_millis(1),
        ..NetConfig::default()
    };
    let (got, world) = run(1, config, Delivery::Stream, 20);
    assert_eq!(got.len(), 20);
    for (us, data) in &got {
        let sent_us = u64::from(data[0]) * 1_000;
        assert!(
            *us >= sent_us + 5_000,
            "message {} arrived at {us} µs",
            data[0]
        );
    }
    assert_eq!(world.net_stats().delivered, 20);
}

#[test]
fn streams_stay_in_order_while_datagrams_may_not() {
    // A long latency tail against 1 ms spacing makes reordering likely.
    let config = NetConfig {
        min_latency: Duration::from_micros(100),
        tail_mean: Duration::from_millis(5),
        ..NetConfig::default()
    };
    for seed in 0..10 {
        let (got, _) = run(seed, config, Delivery::Stream, 50);
        let order: Vec<u8> = got.iter().map(|g| g.1[0]).collect();
        assert_eq!(order, (0..50).collect::<Vec<_>>(), "seed {seed}");
    }
    let reordered = (0..10).any(|seed| {
        let (got, _) = run(seed, config, Delivery::Datagram, 50);
        got.windows(2).any(|w| w[0].1[0] > w[1].1[0])
    });
    assert!(
        reordered,
        "a 5 ms tail at 1 ms spacing never reordered datagrams"
    );
}

#[test]
fn loss_and_duplication_follow_their_rates() {
    let config = NetConfig {
        loss_ppm: 100_000,     // 10 %
        duplicate_ppm: 50_000, // 5 %
        ..NetConfig::default()
    };
    let (got, world) = run(3, config, Delivery::Datagram, 250);
    let s = world.net_stats();
    assert_eq!(s.sent, 250);
    assert!((10..45).contains(&s.lost), "lost {}", s.lost);
    assert!(
        (2..30).contains(&s.duplicated),
        "duplicated {}",
        s.duplicated
    );
    assert_eq!(got.len() as u64, s.delivered);
    assert_eq!(s.delivered, s.sent - s.lost + s.duplicated);
}

/// Two nodes, a and b; b collects every message's data. Returns a's socket.
fn collecting_pair(seed: u64) -> (World, NodeId, NodeId, tern_executor::sim::SimSocket, Got) {
    let mut world = World::new(seed).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let (sa, sb) = (world.socket(a), world.socket(b));
    let got: Got = Rc::default();
    let g = got.clone();
    world
        .spawn_on(b, async move {
            loop {
                let p = sb.recv().await;
                g.borrow_mut().push((0, p.data));
            }
        })
        .detach();
    (world, a, b, sa, got)
}

#[test]
fn partitions_drop_traffic_until_healed() {
    let (mut world, a, b, sa, got) = collecting_pair(5);
    world.partition_oneway(a, b);
    assert_eq!(
        sa.send(b, Delivery::Stream, vec![1]),
        SendOutcome::Partitioned
    );
    world.run_until_idle();
    world.heal(a, b);
    assert_eq!(sa.send(b, Delivery::Stream, vec![2]), SendOutcome::InFlight);
    // A partition that starts while messages are in flight drops them on arrival.
    assert_eq!(sa.send(b, Delivery::Stream, vec![3]), SendOutcome::InFlight);
    world.partition(a, b);
    world.run_until_idle();
    world.heal_all();
    let _ = sa.send(b, Delivery::Stream, vec![4]);
    world.run_until_idle();
    let data: Vec<u8> = got.borrow().iter().map(|g| g.1[0]).collect();
    assert_eq!(data, [4]);
    assert_eq!(world.net_stats().partitioned, 3);
}

#[test]
fn the_same_seed_gives_the_same_trace_with_a_lossy_network() {
    let config = NetConfig {
        loss_ppm: 200_000,
        duplicate_ppm: 100_000,
        tail_mean: Duration::from_millis(3),
        ..NetConfig::default()
    };
    for seed in 0..10 {
        let (g1, w1) = run(seed, config, Delivery::Datagram, 40);
        let (g2, w2) = run(seed, config, Delivery::Datagram, 40);
        assert_eq!(g1, g2);
        assert_eq!(w1.trace_hash(), w2.trace_hash());
        assert_eq!(w1.net_stats(), w2.net_stats());
    }
    let (_, w1) = run(1, config, Delivery::Datagram, 40);
    let (_, w2) = run(2, config, Delivery::Datagram, 40);
    assert_ne!(w1.trace_hash(), w2.trace_hash());
}

/// Node a sends three stream messages to b while the link is held; the test reorders
/// by hand: drops #2, duplicates #3, delivers #3, then releases the rest.
#[test]
fn a_held_link_lets_a_test_deliver_drop_and_duplicate_by_hand() {
    let (mut world, a, b, sa, got) = collecting_pair(9);
    world.hold(a, b);
    for i in 1..=3u8 {
        let _ = sa.send(b, Delivery::Stream, vec![i]);
    }
    world.run_until_idle();
    let held = world.held();
    assert_eq!(
        held.iter().map(|(_, p)| p.data[0]).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(got.borrow().is_empty());
    let seq = |n: u8| {
        held.iter()
            .find(|(_, p)| p.data[0] == n)
            .map(|(s, _)| *s)
            .expect("held")
    };
    assert!(world.drop_held(seq(2)));
    world.duplicate_held(seq(3));
    assert!(world.deliver_held(seq(3)));
    world.run_until_idle();
    world.release(a, b);
    world.run_until_idle();
    let data: Vec<u8> = got.borrow().iter().map(|g| g.1[0]).collect();
    assert_eq!(data, [3, 3, 1]);
    assert_eq!(world.net_stats().dropped_by_test, 1);
    assert!(world.held().is_empty());
}

#[test]
fn an_invariant_stops_the_world_at_the_first_violation() {
    let mut world = World::new(3).expect("world");
    let a = world.add_node("a").expect("node");
    let count = Rc::new(RefCell::new(0u32));
    let c = count.clone();
    world
        .spawn_on(a, async move {
            for _ in 0..10 {
                *c.borrow_mut() += 1;
                time::sleep(Duration::from_millis(1)).await;
            }
        })
        .detach();
    let watched = count.clone();
    world.add_invariant(move |_| {
        let n = *watched.borrow();
        if n > 4 {
            Err(format!("count reached {n}"))
        } else {
            Ok(())
        }
    });
    world.run_until_idle();
    let v = world.violation().expect("violated");
    assert_eq!(v.message, "count reached 5");
    assert_eq!(
        *count.borrow(),
        5,
        "the world stopped at the violating step"
    );
    assert!(!world.step());
    // run_until_with stops on a predicate.
    let mut w2 = World::new(3).expect("world");
    let n = w2.add_node("n").expect("node");
    w2.spawn_on(n, async { time::sleep(Duration::from_secs(9)).await })
        .detach();
    assert!(
        w2.run_until_with(|w| w.now() >= tern_executor::Instant::ZERO + Duration::from_secs(9))
    );
}
