//! The simulated network: latency in virtual time, loss, duplication, stream order,
//! partitions, and replay.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::{
    Delivery, LinkConfig, NetConfig, NodeId, SendOutcome, SocketEvent, TraceKind, World,
};
use tern_executor::{Instant, time};

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
    // A partition that starts while stream frames are in flight resets the connection,
    // and the frames are lost with it.
    assert_eq!(sa.send(b, Delivery::Stream, vec![3]), SendOutcome::InFlight);
    world.partition(a, b);
    world.run_until_idle();
    world.heal_all();
    let _ = sa.send(b, Delivery::Stream, vec![4]);
    world.run_until_idle();
    let data: Vec<u8> = got.borrow().iter().map(|g| g.1[0]).collect();
    assert_eq!(data, [4]);
    assert_eq!(world.net_stats().partitioned, 1);
    assert_eq!(world.net_stats().reset_lost, 2);
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
    assert!(
        v.message
            .starts_with("invariant violated: count reached 5\nnodes:"),
        "{}",
        v.message
    );
    assert!(v.message.contains("repro: SIM_SEED="), "{}", v.message);
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
    assert!(w2.run_until_with(|w| w.now() >= Instant::ZERO + Duration::from_secs(9)));
}

type Latencies = Rc<RefCell<Vec<u64>>>;

/// Spawns on `node` a receiver that records each datagram's latency in nanoseconds
/// (the send time travels in the first 8 bytes).
fn record_latencies(world: &World, node: NodeId) -> Latencies {
    let got: Latencies = Rc::default();
    let g = got.clone();
    let sock = world.socket(node);
    world
        .spawn_on(node, async move {
            loop {
                let p = sock.recv().await;
                let sent = u64::from_le_bytes(p.data[..8].try_into().expect("a stamp"));
                g.borrow_mut().push(time::now().as_nanos() - sent);
            }
        })
        .detach();
    got
}

/// Spawns on `from` a task sending `n` stamped datagrams to `to`, 1,000 every
/// millisecond.
fn send_stamped(world: &World, from: NodeId, to: NodeId, n: usize) {
    let sock = world.socket(from);
    world
        .spawn_on(from, async move {
            for batch in 0..n.div_ceil(1_000) {
                for _ in 0..(n - batch * 1_000).min(1_000) {
                    let stamp = time::now().as_nanos().to_le_bytes().to_vec();
                    assert_eq!(
                        sock.send(to, Delivery::Datagram, stamp),
                        SendOutcome::InFlight
                    );
                }
                time::sleep(Duration::from_millis(1)).await;
            }
        })
        .detach();
}

/// Checks the p50, p90 and p99 of `samples` against `min + mean·ln(1/(1−q))`, within 5 %.
fn assert_quantiles(samples: &[u64], min: Duration, mean: Duration, what: &str) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    for q in [0.5f64, 0.9, 0.99] {
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let observed = sorted[(q * sorted.len() as f64) as usize] as f64;
        let expected = min.as_nanos() as f64 + mean.as_nanos() as f64 * (1.0 / (1.0 - q)).ln();
        assert!(
            (observed - expected).abs() <= 0.05 * expected,
            "{what}: p{} is {observed} ns, expected {expected} ns",
            q * 100.0
        );
    }
}

/// docs/design/simulation.md N1: one link's latency follows its own distribution (10⁵
/// deliveries), the reverse link keeps the global one, and clearing the link restores it.
#[test]
fn a_link_latency_follows_its_distribution_and_other_links_keep_the_global_one() {
    let mut world = World::new(21).expect("world");
    world.set_poll_cost(Duration::ZERO, Duration::ZERO); // receipt time = delivery time
    let global = NetConfig::default();
    world.set_net(global);
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let link = LinkConfig {
        min_latency: Duration::from_millis(1),
        tail_mean: Duration::from_millis(2),
        max_latency: Some(Duration::from_millis(12)),
    };
    world.set_link(a, b, link);
    let at_b = record_latencies(&world, b);
    let at_a = record_latencies(&world, a);
    send_stamped(&world, a, b, 100_000);
    send_stamped(&world, b, a, 20_000);
    world.run_until_idle();

    let ab = at_b.borrow().clone();
    assert_eq!(ab.len(), 100_000);
    assert_quantiles(&ab, link.min_latency, link.tail_mean, "a → b");
    let cap = 12_000_000;
    assert!(ab.iter().all(|&l| (1_000_000..=cap).contains(&l)));
    // P(1 ms + Exp(2 ms) > 12 ms) = e^-5.5 ≈ 0.4 %: about 400 capped.
    let capped = ab.iter().filter(|&&l| l == cap).count();
    assert!((200..700).contains(&capped), "{capped} capped");

    let ba = at_a.borrow().clone();
    assert_eq!(ba.len(), 20_000);
    assert_quantiles(&ba, global.min_latency, global.tail_mean, "b → a");

    world.clear_link(a, b);
    at_b.borrow_mut().clear();
    send_stamped(&world, a, b, 20_000);
    world.run_until_idle();
    assert_quantiles(
        &at_b.borrow(),
        global.min_latency,
        global.tail_mean,
        "a → b cleared",
    );
}

#[test]
fn datagrams_above_the_mtu_are_dropped_and_counted() {
    let (mut world, _, b, sa, got) = collecting_pair(4);
    assert_eq!(
        sa.send(b, Delivery::Datagram, vec![0; 65_508]),
        SendOutcome::TooLarge,
        "the default MTU is UDP's largest payload"
    );
    world.set_net(NetConfig {
        mtu: 1_000,
        ..NetConfig::default()
    });
    assert_eq!(
        sa.send(b, Delivery::Datagram, vec![1; 1_000]),
        SendOutcome::InFlight
    );
    assert_eq!(
        sa.send(b, Delivery::Datagram, vec![2; 1_001]),
        SendOutcome::TooLarge
    );
    // Streams are not datagrams: no MTU.
    assert_eq!(
        sa.send(b, Delivery::Stream, vec![3; 5_000]),
        SendOutcome::InFlight
    );
    world.run_until_idle();
    let mut seen: Vec<(u8, usize)> = got.borrow().iter().map(|g| (g.1[0], g.1.len())).collect();
    seen.sort_unstable();
    assert_eq!(seen, [(1, 1_000), (3, 5_000)]);
    let s = world.net_stats();
    assert_eq!((s.sent, s.too_large, s.delivered), (4, 2, 2));
}

#[test]
fn datagrams_overflow_a_full_inbox_but_stream_frames_never_do() {
    let (mut world, _, b, sa, got) = collecting_pair(6);
    world.set_net(NetConfig {
        inbox_capacity: 8,
        ..NetConfig::default()
    });
    world.pause(b);
    for i in 0..20u8 {
        let _ = sa.send(b, Delivery::Datagram, vec![i]);
    }
    world.run_until_idle();
    assert_eq!(world.net_stats().overflow, 12);
    for i in 100..105u8 {
        let _ = sa.send(b, Delivery::Stream, vec![i]);
    }
    world.run_until_idle();
    assert_eq!(
        world.net_stats().overflow,
        12,
        "stream frames are never dropped"
    );
    let _ = sa.send(b, Delivery::Datagram, vec![200]);
    world.run_until_idle();
    assert_eq!(world.net_stats().overflow, 13);
    assert!(got.borrow().is_empty());
    world.resume(b);
    world.run_until_idle();
    let data: Vec<u8> = got.borrow().iter().map(|g| g.1[0]).collect();
    assert_eq!(data.len(), 13);
    assert_eq!(data[8..], [100, 101, 102, 103, 104]);
    assert!(data[..8].iter().all(|&d| d < 20));
    assert_eq!(world.net_stats().delivered, 13);
}

/// docs/design/simulation.md N3: 10⁵ frames of one connection, under a latency tail far longer
/// than their spacing, arrive in order, each once.
#[test]
fn a_hundred_thousand_stream_frames_arrive_in_fifo_order_without_duplicates() {
    let mut world = World::new(12).expect("world");
    world.set_net(NetConfig {
        min_latency: Duration::from_micros(100),
        tail_mean: Duration::from_millis(5),
        ..NetConfig::default()
    });
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let (sa, sb) = (world.socket(a), world.socket(b));
    const N: u32 = 100_000;
    world
        .spawn_on(a, async move {
            for batch in 0..N / 100 {
                for i in batch * 100..(batch + 1) * 100 {
                    let _ = sa.send(b, Delivery::Stream, i.to_le_bytes().to_vec());
                }
                time::sleep(Duration::from_micros(50)).await;
            }
        })
        .detach();
    let out_of_order = Rc::new(RefCell::new((0u32, 0u32))); // (next expected, faults)
    let o = out_of_order.clone();
    world
        .spawn_on(b, async move {
            loop {
                let p = sb.recv().await;
                let i = u32::from_le_bytes(p.data[..4].try_into().expect("4 bytes"));
                let mut o = o.borrow_mut();
                if i != o.0 {
                    o.1 += 1;
                }
                o.0 = i + 1;
            }
        })
        .detach();
    world.run_until_idle();
    assert_eq!(*out_of_order.borrow(), (N, 0));
    let s = world.net_stats();
    assert_eq!((s.sent, s.delivered), (u64::from(N), u64::from(N)));
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Frame(u32),
    Reset(NodeId, u64),
    Up(NodeId, u64),
}

type Events = Rc<RefCell<Vec<Seen>>>;

/// Spawns on `node` a task that logs every socket event (frames by their 4-byte id,
/// resets with their time in µs).
fn log_events(world: &World, node: NodeId) -> Events {
    let log: Events = Rc::default();
    let l = log.clone();
    let sock = world.socket(node);
    world
        .spawn_on(node, async move {
            loop {
                let seen = match sock.recv_event().await {
                    SocketEvent::Packet(p) => {
                        Seen::Frame(u32::from_le_bytes(p.data[..4].try_into().expect("4 bytes")))
                    }
                    SocketEvent::Reset(peer) => Seen::Reset(peer, time::now().as_nanos() / 1_000),
                    SocketEvent::Up(peer) => Seen::Up(peer, time::now().as_nanos() / 1_000),
                };
                l.borrow_mut().push(seen);
            }
        })
        .detach();
    log
}

/// docs/design/simulation.md N3: a partition at T resets the connection. Exactly the frames
/// in flight at T (sent before T, not delivered by T) are lost; every frame sent after
/// the heal arrives; both ends see the reset after `reset_detect`.
#[test]
fn a_reset_loses_exactly_the_frames_in_flight_and_both_ends_see_it() {
    let mut world = World::new(31).expect("world");
    world.keep_trace(true);
    world.set_net(NetConfig {
        min_latency: Duration::from_micros(100),
        tail_mean: Duration::from_micros(200),
        max_latency: Some(Duration::from_millis(1)),
        ..NetConfig::default()
    });
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let sa = world.socket(a);
    let sent: Rc<RefCell<Vec<(u64, SendOutcome)>>> = Rc::default();
    let s = sent.clone();
    world
        .spawn_on(a, async move {
            for i in 0..3_000u32 {
                let outcome = sa.send(b, Delivery::Stream, i.to_le_bytes().to_vec());
                s.borrow_mut().push((time::now().as_nanos(), outcome));
                time::sleep(Duration::from_micros(10)).await;
            }
        })
        .detach();
    let at_a = log_events(&world, a);
    let at_b = log_events(&world, b);
    let t = Instant::ZERO + Duration::from_nanos(10_003_000);
    let heal = t + Duration::from_millis(2);
    world.run_until(t);
    world.partition(a, b);
    world.run_until(heal);
    world.heal(a, b);
    world.run_until_idle();

    let sent = sent.borrow().clone();
    assert_eq!(sent.len(), 3_000);
    let before: Vec<u32> = (0..3_000u32)
        .filter(|&i| sent[i as usize].0 <= t.as_nanos())
        .collect();
    let after: Vec<u32> = (0..3_000u32)
        .filter(|&i| sent[i as usize].0 >= heal.as_nanos())
        .collect();
    let cut = 3_000 - before.len() - after.len();
    assert!(
        sent.iter()
            .filter(|(at, _)| *at > t.as_nanos() && *at < heal.as_nanos())
            .all(|(_, o)| *o == SendOutcome::Partitioned)
    );
    // Frames delivered by T, from the trace: those reached b's inbox before the reset.
    let delivered_by_t = world
        .trace_events()
        .iter()
        .filter(|e| e.kind == TraceKind::Deliver && e.node == b && e.at <= t)
        .count();
    let k = u32::try_from(delivered_by_t).expect("small");
    let in_flight = before.len() - delivered_by_t;
    // Frames sent more than the 1 ms cap before T had arrived; frames sent less than
    // the 100 µs minimum before T could not have.
    let sent_before = |d: u64| {
        sent.iter()
            .filter(|(at, _)| *at + d <= t.as_nanos())
            .count()
    };
    assert!(delivered_by_t >= sent_before(1_000_000));
    assert!(delivered_by_t <= sent_before(100_000));
    assert!(in_flight >= 10, "only {in_flight} frames in flight at T");

    let mut expected: Vec<Seen> = (0..k).map(Seen::Frame).collect();
    let detected = (t.as_nanos() + 1_000_000) / 1_000;
    expected.push(Seen::Reset(a, detected));
    expected.extend(after.iter().map(|&i| Seen::Frame(i)));
    // The heal lets the connection up again: both ends hear of it a reconnection
    // period later (the frames after the heal open it at once, before that notice).
    let up = (heal.as_nanos() + 100_000_000) / 1_000;
    let pos = expected
        .iter()
        .position(|s| matches!(s, Seen::Frame(i) if sent[*i as usize].0 > up * 1_000))
        .unwrap_or(expected.len());
    expected.insert(pos, Seen::Up(a, up));
    assert_eq!(*at_b.borrow(), expected);
    assert_eq!(*at_a.borrow(), [Seen::Reset(b, detected), Seen::Up(b, up)]);

    let s = world.net_stats();
    assert_eq!(s.reset_lost, in_flight as u64);
    assert_eq!(s.partitioned, cut as u64);
    assert_eq!(s.delivered, u64::from(k) + after.len() as u64);
    let resets: Vec<(NodeId, u64)> = world
        .trace_events()
        .iter()
        .filter(|e| e.kind == TraceKind::Reset)
        .map(|e| (e.node, e.detail))
        .collect();
    assert_eq!(resets.len(), 2);
    assert!(resets.contains(&(a, 1)) && resets.contains(&(b, 0)));
}

#[test]
fn a_one_way_partition_resets_the_connection_too() {
    let mut world = World::new(2).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let (sa, sb) = (world.socket(a), world.socket(b));
    let at_a = log_events(&world, a);
    let at_b = log_events(&world, b);
    let _ = sb.send(a, Delivery::Stream, 1u32.to_le_bytes().to_vec()); // in flight b → a
    world.partition_oneway(a, b);
    // b → a is not cut: a new connection opens.
    let _ = sb.send(a, Delivery::Stream, 2u32.to_le_bytes().to_vec());
    assert_eq!(
        sa.send(b, Delivery::Stream, vec![0; 4]),
        SendOutcome::Partitioned
    );
    world.run_until_idle();
    assert_eq!(world.net_stats().reset_lost, 1);
    assert_eq!(*at_a.borrow(), [Seen::Frame(2), Seen::Reset(b, 1_000)]);
    assert_eq!(*at_b.borrow(), [Seen::Reset(a, 1_000)]);
}

/// A crash resets the connections of the peers that talked to the crashed node, and
/// no others; after a restart, the node's connections are new.
#[test]
fn a_crash_resets_only_the_connections_of_the_crashed_node() {
    let mut world = World::new(17).expect("world");
    world.keep_trace(true);
    let ids: Vec<NodeId> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| world.add_node(n).expect("node"))
        .collect();
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    let logs: Vec<Events> = ids.iter().map(|&n| log_events(&world, n)).collect();
    let frame = |n: u32| n.to_le_bytes().to_vec();
    let socks: Vec<_> = ids.iter().map(|&n| world.socket(n)).collect();
    let sock = |n: NodeId| socks[n.0].clone();
    let _ = sock(a).send(b, Delivery::Stream, frame(1)); // a ↔ b
    let _ = sock(c).send(a, Delivery::Stream, frame(2)); // c ↔ a
    let _ = sock(b).send(d, Delivery::Stream, frame(3)); // b ↔ d: not a's
    let _ = sock(d).send(c, Delivery::Datagram, frame(4)); // datagrams open nothing
    world.run_until_idle();
    let crash_at = world.now();
    let _ = sock(a).send(b, Delivery::Stream, frame(5)); // in flight when a crashes
    let _ = sock(d).send(b, Delivery::Stream, frame(6)); // on b ↔ d: unaffected
    world.crash(a);
    world.run_until_idle();
    let detected = (crash_at.as_nanos() + 1_000_000) / 1_000;
    assert_eq!(
        *logs[1].borrow(),
        [Seen::Frame(1), Seen::Frame(6), Seen::Reset(a, detected)]
    );
    assert_eq!(
        *logs[2].borrow(),
        [Seen::Frame(4), Seen::Reset(a, detected)]
    );
    assert_eq!(*logs[3].borrow(), [Seen::Frame(3)]);
    assert_eq!(world.net_stats().reset_lost, 1);

    world.restart(a).expect("restart");
    let up = (world.now().as_nanos() + 100_000_000) / 1_000;
    let fresh = log_events(&world, a);
    let _ = sock(a).send(b, Delivery::Stream, frame(7));
    let _ = sock(b).send(a, Delivery::Stream, frame(8));
    world.run_until_idle();
    assert_eq!(*fresh.borrow(), [Seen::Frame(8)]);
    // b and c lost their connections with a: both hear it is back, after the
    // reconnection period (b's new frame went through before that).
    assert_eq!(logs[1].borrow()[3..], [Seen::Frame(7), Seen::Up(a, up)]);
    assert_eq!(logs[2].borrow().last(), Some(&Seen::Up(a, up)));
    let resets = world
        .trace_events()
        .iter()
        .filter(|e| e.kind == TraceKind::Reset)
        .count();
    assert_eq!(resets, 2, "b and c, once each");

    // Restarting a running node kills its process too: its peers' connections reset.
    let restart_at = world.now();
    world.restart(b).expect("restart");
    world.run_until_idle();
    let detected = (restart_at.as_nanos() + 1_000_000) / 1_000;
    let up = (restart_at.as_nanos() + 100_000_000) / 1_000;
    assert_eq!(
        fresh.borrow()[1..],
        [Seen::Reset(b, detected), Seen::Up(b, up)]
    );
    assert_eq!(
        *logs[3].borrow(),
        [Seen::Frame(3), Seen::Reset(b, detected), Seen::Up(b, up)]
    );
    assert_eq!(logs[2].borrow().len(), 3, "c never talked to b");
}

/// A reset notice still on its way to a node that crashes and restarts is not delivered
/// to the new process, which never had that connection.
#[test]
fn a_pending_reset_notice_does_not_reach_the_next_incarnation() {
    let mut world = World::new(8).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let at_a = log_events(&world, a);
    let _ = world.socket(a).send(b, Delivery::Stream, vec![0; 4]);
    world.run_until_idle();
    world.partition(a, b); // notices due at +1 ms
    world.run_until(world.now() + Duration::from_micros(500));
    world.crash(b);
    world.restart(b).expect("restart");
    let at_b = log_events(&world, b);
    world.run_until_idle();
    assert!(at_b.borrow().is_empty(), "{:?}", at_b.borrow());
    assert_eq!(at_a.borrow().len(), 1, "a's notice still arrives");
    assert!(matches!(at_a.borrow()[0], Seen::Reset(peer, _) if peer == b));
}

/// Two nodes send each other a datagram every 100 ms for 90 s; a partition (one-way or
/// not) starts at exactly 30 s and heals at exactly 60 s. Returns the arrival times, in
/// ms, at b (from a) and at a (from b).
fn cut_between_30_and_60(oneway: bool) -> (Vec<u64>, Vec<u64>) {
    let mut world = World::new(21).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let arrivals: [Rc<RefCell<Vec<u64>>>; 2] = Default::default();
    for (me, peer, log) in [(a, b, arrivals[0].clone()), (b, a, arrivals[1].clone())] {
        let sock = world.socket(me);
        let rx = sock.clone();
        world
            .spawn_on(me, async move {
                loop {
                    let _ = rx.recv().await;
                    log.borrow_mut().push(time::now().as_nanos() / 1_000_000);
                }
            })
            .detach();
        world
            .spawn_on(me, async move {
                for _ in 0..900 {
                    let _ = sock.send(peer, Delivery::Datagram, vec![0]);
                    time::sleep(Duration::from_millis(100)).await;
                }
            })
            .detach();
    }
    world.run_until(Instant::from_nanos(30_000_000_000));
    if oneway {
        world.partition_oneway(a, b);
    } else {
        world.partition(a, b);
    }
    world.run_until(Instant::from_nanos(60_000_000_000));
    world.heal(a, b);
    world.run_until_idle();
    let [at_a, at_b] = arrivals;
    let (at_a, at_b) = (at_a.borrow().clone(), at_b.borrow().clone());
    (at_a, at_b)
}

#[test]
fn a_partition_at_an_exact_time_blocks_until_the_heal_and_a_one_way_cut_blocks_one_direction() {
    let in_cut = |times: &[u64]| {
        times
            .iter()
            .filter(|&&t| (30_000..60_000).contains(&t))
            .count()
    };
    let after = |times: &[u64]| times.iter().filter(|&&t| t >= 60_000).count();
    let before = |times: &[u64]| times.iter().filter(|&&t| t < 30_000).count();
    // `arrivals[0]` is what a received (from b), `arrivals[1]` what b received (from a).
    let (at_a, at_b) = cut_between_30_and_60(true);
    assert!(before(&at_b) >= 299 && before(&at_a) >= 299);
    assert_eq!(in_cut(&at_b), 0, "a -> b is cut during [30 s, 60 s)");
    assert!(after(&at_b) >= 299, "a -> b resumes at 60 s");
    assert!(in_cut(&at_a) >= 299, "b -> a is not cut");
    let (at_a, at_b) = cut_between_30_and_60(false);
    assert_eq!(
        (in_cut(&at_a), in_cut(&at_b)),
        (0, 0),
        "both directions are cut"
    );
    assert!(after(&at_a) >= 299 && after(&at_b) >= 299);
}

#[test]
fn a_lost_connection_comes_back_up_after_a_restart_or_a_heal() {
    let mut world = World::new(4).expect("world");
    world.keep_trace(true);
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let c = world.add_node("c").expect("node");
    let at_a = log_events(&world, a);
    let sa = world.socket(a);
    assert!(sa.reachable(b));
    assert_eq!(
        sa.send(b, Delivery::Stream, 0u32.to_le_bytes().to_vec()),
        SendOutcome::InFlight
    );
    assert_eq!(
        sa.send(c, Delivery::Stream, 1u32.to_le_bytes().to_vec()),
        SendOutcome::InFlight
    );
    world.run_until(Instant::from_nanos(10_000_000));
    // b crashes at 10 ms and restarts at 50 ms: a learns of the reset after 1 ms and
    // of the reconnection 100 ms after the restart.
    world.crash(b);
    assert!(!sa.reachable(b));
    world.run_until(Instant::from_nanos(50_000_000));
    world.restart(b).expect("restart");
    assert!(sa.reachable(b));
    // a and c are cut at 200 ms and healed at 300 ms.
    world.run_until(Instant::from_nanos(200_000_000));
    world.partition(a, c);
    world.run_until(Instant::from_nanos(300_000_000));
    world.heal(a, c);
    // A node that never connected can watch: d is down until 600 ms.
    let d = world.add_node("d").expect("node");
    world.crash(d);
    sa.watch(d);
    world.run_until(Instant::from_nanos(600_000_000));
    world.restart(d).expect("restart");
    world.run_until(Instant::from_nanos(1_000_000_000));
    assert_eq!(
        *at_a.borrow(),
        [
            Seen::Reset(b, 11_000),
            Seen::Up(b, 150_000),
            Seen::Reset(c, 201_000),
            Seen::Up(c, 400_000),
            Seen::Up(d, 700_000),
        ]
    );
    let ups = world
        .trace_events()
        .iter()
        .filter(|e| e.kind == TraceKind::Up)
        .count();
    assert_eq!(ups, 4, "a hears of b, c and d; c hears of a");
}

#[test]
fn a_crashed_node_forgets_what_it_waited_for() {
    let mut world = World::new(5).expect("world");
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let sa = world.socket(a);
    sa.send(b, Delivery::Stream, 0u32.to_le_bytes().to_vec());
    world.run_until(Instant::from_nanos(10_000_000));
    world.crash(b);
    world.run_until(Instant::from_nanos(20_000_000));
    // a's next incarnation never had a connection with b: it hears nothing of b's
    // return.
    world.crash(a);
    world.restart(a).expect("restart");
    let at_a = log_events(&world, a);
    world.restart(b).expect("restart");
    world.run_until(Instant::from_nanos(500_000_000));
    assert!(at_a.borrow().is_empty(), "{:?}", at_a.borrow());
}
