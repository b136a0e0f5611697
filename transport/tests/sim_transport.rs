//! The simulated transport keeps the SPI's promises.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use tern_executor::sim::{Delivery, NetConfig, World};
use tern_transport::{Incoming, SimTransport, Transport, TransportError};

fn pair(seed: u64) -> (World, SimTransport, SimTransport) {
    let mut world = World::new(seed).expect("world");
    world.set_net(NetConfig {
        tail_mean: Duration::from_millis(4), // plenty of chances to reorder
        ..NetConfig::default()
    });
    let a = world.add_node("a").expect("node");
    let b = world.add_node("b").expect("node");
    let names = Rc::new(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b)]));
    let ta = SimTransport::new("a", world.socket(a), names.clone());
    let tb = SimTransport::new("b", world.socket(b), names);
    (world, ta, tb)
}

#[test]
fn frame_pairs_arrive_whole_and_in_order_for_every_seed() {
    for seed in 0..20 {
        let (mut world, ta, tb) = pair(seed);
        let got: Rc<RefCell<Vec<Incoming>>> = Rc::default();
        let g = got.clone();
        let rb = world.runtime(tern_executor::sim::NodeId(1)).expect("up");
        rb.spawn(async move {
            loop {
                let i = tb.recv().await;
                g.borrow_mut().push(i);
            }
        })
        .detach();
        let ra = world.runtime(tern_executor::sim::NodeId(0)).expect("up");
        ra.spawn(async move {
            for i in 0..30u8 {
                ta.send("b", vec![i; usize::from(i % 4)], vec![i; 3])
                    .expect("queued");
                tern_executor::time::sleep(Duration::from_micros(300)).await;
            }
        })
        .detach();
        world.run_until_idle();
        let got = got.borrow();
        assert_eq!(got.len(), 30, "seed {seed}");
        for (i, inc) in got.iter().enumerate() {
            let i = u8::try_from(i).expect("small");
            assert_eq!(
                *inc,
                Incoming::Frame {
                    from: "a".into(),
                    envelope: vec![i; usize::from(i % 4)],
                    payload: vec![i; 3],
                },
                "seed {seed}"
            );
        }
    }
}

#[test]
fn refusals_are_typed() {
    let (mut world, ta, _tb) = pair(1);
    assert_eq!(
        ta.send("nobody", vec![], vec![]),
        Err(TransportError::UnknownNode("nobody".into()))
    );
    assert!(matches!(
        ta.send("b", vec![0; 1 << 20], vec![]),
        Err(TransportError::TooLarge { .. })
    ));
    world.partition(tern_executor::sim::NodeId(0), tern_executor::sim::NodeId(1));
    assert_eq!(
        ta.send("b", vec![1], vec![]),
        Err(TransportError::Unreachable("b".into()))
    );
    assert_eq!(ta.local(), "a");
}

#[test]
fn broken_frames_and_strangers_are_dropped_and_counted() {
    let (mut world, _ta, tb) = pair(2);
    let stranger = world.add_node("stranger").expect("node");
    let raw = world.socket(stranger);
    let a_raw = world.socket(tern_executor::sim::NodeId(0));
    let b = tern_executor::sim::NodeId(1);
    let _ = raw.send(b, Delivery::Stream, vec![0; 12]); // not in the directory
    let _ = a_raw.send(b, Delivery::Stream, vec![1, 2, 3]); // shorter than the prefix
    let _ = a_raw.send(
        b,
        Delivery::Stream,
        [200u64.to_le_bytes().as_slice(), b"x"].concat(),
    );
    let _ = a_raw.send(
        b,
        Delivery::Stream,
        [1u64.to_le_bytes().as_slice(), b"ep"].concat(),
    );
    let got: Rc<RefCell<Vec<Incoming>>> = Rc::default();
    let g = got.clone();
    let t = tb.clone();
    world
        .spawn_on(b, async move {
            let i = t.recv().await;
            g.borrow_mut().push(i);
        })
        .detach();
    world.run_until_idle();
    assert_eq!(
        *got.borrow(),
        [Incoming::Frame {
            from: "a".into(),
            envelope: b"e".to_vec(),
            payload: b"p".to_vec()
        }]
    );
    assert_eq!(tb.dropped(), 3);
}

#[test]
fn a_partition_or_a_crash_is_reported_as_a_lost_peer_to_the_live_end() {
    let (mut world, ta, tb) = pair(3);
    let (a, b) = (tern_executor::sim::NodeId(0), tern_executor::sim::NodeId(1));
    let got: Rc<RefCell<Vec<Incoming>>> = Rc::default();
    let g = got.clone();
    let reader = tb.clone();
    world
        .spawn_on(b, async move {
            loop {
                let incoming = reader.recv().await;
                g.borrow_mut().push(incoming);
            }
        })
        .detach();
    ta.send("b", b"1".to_vec(), Vec::new()).expect("send");
    world.run_until(tern_executor::Instant::from_nanos(100_000_000));
    world.partition(a, b);
    world.run_until(tern_executor::Instant::from_nanos(200_000_000));
    assert_eq!(
        ta.send("b", b"2".to_vec(), Vec::new()),
        Err(TransportError::Unreachable("b".into()))
    );
    world.heal(a, b);
    ta.send("b", b"3".to_vec(), Vec::new()).expect("send");
    world.run_until(tern_executor::Instant::from_nanos(300_000_000));
    world.crash(a);
    world.run_until(tern_executor::Instant::from_nanos(400_000_000));
    let frames: Vec<String> = got
        .borrow()
        .iter()
        .map(|i| match i {
            Incoming::Frame { envelope, .. } => String::from_utf8_lossy(envelope).into_owned(),
            Incoming::PeerLost(p) => format!("lost {p}"),
            Incoming::PeerUp(p) => format!("up {p}"),
        })
        .collect();
    assert_eq!(frames, ["1", "lost a", "3", "lost a"]);
}
