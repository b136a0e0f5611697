//! The ZeroMQ transport's connection events and what it counts about them: `PeerUp` on
//! each completed handshake, `PeerLost` when an established connection breaks, sends
//! refused while there is none, frames sent on a lost connection counted, a forgotten
//! peer's connection closed and counted, and a forgotten peer reached again once it is
//! learned anew.

use std::time::Duration;

use tern_executor::{Runtime, time};
use tern_transport::{Incoming, Transport, TransportError, ZmqConfig, ZmqTransport};

fn free_port() -> u16 {
    tern_transport::loopback_port().expect("a free loopback port")
}

/// The next connection event, skipping frames; `None` after `wait`.
async fn next_event(t: &ZmqTransport, wait: Duration) -> Option<Incoming> {
    loop {
        match time::timeout(wait, t.recv()).await {
            Ok(Incoming::Frame { .. }) => {}
            Ok(event) => return Some(event),
            Err(_) => return None,
        }
    }
}

fn b_config(port: u16) -> ZmqConfig {
    ZmqConfig::new("b")
        .plaintext()
        .listen(format!("tcp://127.0.0.1:{port}"))
}

#[test]
fn connection_events_and_their_counters() {
    Runtime::new().expect("runtime").block_on(async {
        let port = free_port();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let mut config = ZmqConfig::new("a").plaintext().peer("b", &endpoint);
        config.reconnect_ivl_max = Duration::from_millis(200);
        let a = ZmqTransport::bind(config).expect("a");
        // Nothing listens yet: refused, not queued.
        assert_eq!(
            a.send("b", b"early".to_vec(), Vec::new()),
            Err(TransportError::Unreachable("b".into()))
        );
        assert!(!a.connected("b"));
        let b = ZmqTransport::bind(b_config(port)).expect("b");
        assert_eq!(
            next_event(&a, Duration::from_secs(5)).await,
            Some(Incoming::PeerUp("b".into()))
        );
        assert!(a.connected("b"));
        for i in 0..100u32 {
            a.send("b", i.to_le_bytes().to_vec(), Vec::new())
                .expect("connected");
        }
        let mut got = 0;
        while got < 100 {
            match time::timeout(Duration::from_secs(5), b.recv()).await {
                Ok(Incoming::Frame { envelope, .. }) => {
                    assert_eq!(envelope, (got as u32).to_le_bytes());
                    got += 1;
                }
                Ok(_) => {}
                Err(_) => panic!("only {got} of 100 frames arrived"),
            }
        }
        // b goes away: a hears of it at once, and refuses sends.
        b.close();
        drop(b);
        assert_eq!(
            next_event(&a, Duration::from_secs(5)).await,
            Some(Incoming::PeerLost("b".into()))
        );
        assert_eq!(
            a.send("b", b"down".to_vec(), Vec::new()),
            Err(TransportError::Unreachable("b".into()))
        );
        let s = a.stats();
        assert_eq!((s.peer_up, s.disconnects), (1, 1), "{s:?}");
        assert_eq!(s.sent_on_lost_connections, 100, "{s:?}");
        assert_eq!(s.unreachable, 2, "{s:?}");
        // Forgotten: its connection closes (counted); a send has no route.
        a.forget_peer("b");
        assert_eq!(a.stats().closed, 1);
        assert!(a.send("b", b"forgotten".to_vec(), Vec::new()).is_err());
        // Learned again and back: PeerUp, and frames flow to the new process.
        time::sleep(Duration::from_millis(100)).await;
        let b = ZmqTransport::bind(b_config(port)).expect("b again");
        a.learn_peer("b", &endpoint).expect("learn");
        assert_eq!(
            next_event(&a, Duration::from_secs(5)).await,
            Some(Incoming::PeerUp("b".into()))
        );
        a.send("b", b"again".to_vec(), Vec::new())
            .expect("connected");
        let got = loop {
            match time::timeout(Duration::from_secs(5), b.recv()).await {
                Ok(Incoming::Frame { envelope, .. }) => break envelope,
                Ok(_) => {}
                Err(_) => panic!("nothing arrived at the new b"),
            }
        };
        assert_eq!(got, b"again");
        assert_eq!(a.stats().peer_up, 2);
        a.close();
        b.close();
    });
}
