//! The UDP driver on real loopback sockets, in one runtime's poll loop.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tern_discovery::{
    Datagrams, Discovery, GossipConfig, Identity, Key, Keyring, Membership, State, UdpSocket,
};
use tern_executor::{Runtime, time};

fn node(name: &str, seeds: &[std::net::SocketAddr]) -> Discovery {
    let socket = UdpSocket::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let me = Identity {
        name: name.into(),
        generation: 1,
        addr: socket.local_addr(),
    };
    let ring = Keyring::new(1, Key::from_bytes([3; 32]));
    let core = Membership::new(GossipConfig::new("udp-test"), ring, me, 1).expect("config");
    Discovery::start(core, socket, seeds)
}

async fn until(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    time::timeout(limit, async {
        while !ok() {
            time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

fn alive(d: &Discovery, name: &str) -> bool {
    d.member(name).is_some_and(|m| m.state == State::Alive)
}

#[test]
fn two_nodes_join_over_udp_and_a_flood_of_junk_is_counted_without_starving_the_loop() {
    Runtime::new().expect("runtime").block_on(async {
        let a = node("a", &[]);
        let a_addr = a.member("a").expect("self").addr;
        let b = node("b", &[a_addr]);
        assert!(
            until(Duration::from_secs(10), || alive(&a, "b") && alive(&b, "a")).await,
            "a and b see each other"
        );

        // Another task on the same loop ticks while junk floods a's socket.
        let ticks = Rc::new(Cell::new(0u64));
        let t = ticks.clone();
        let ticker = tern_executor::spawn(async move {
            loop {
                time::sleep(Duration::from_millis(1)).await;
                t.set(t.get() + 1);
            }
        });
        let junk = UdpSocket::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        for round in 0..50u32 {
            for i in 0..100u32 {
                junk.send_to(a_addr, &[(round ^ i) as u8; 64]);
            }
            tern_executor::yield_now().await;
        }
        assert!(
            until(Duration::from_secs(5), || a.stats().bad_header > 0).await,
            "junk is counted"
        );
        let during = ticks.get();
        drop(ticker);
        assert!(during > 0, "the loop kept running other tasks");
        // And membership is unharmed.
        time::sleep(Duration::from_secs(2)).await;
        assert!(alive(&a, "b") && alive(&b, "a"));
        assert_eq!(a.stats().forged + a.stats().malformed, 0);
    });
}
