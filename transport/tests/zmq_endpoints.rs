//! The ZeroMQ transport over each kind of endpoint: tcp, ipc and inproc.

use std::time::Duration;

use tern_executor::{Runtime, time};
use tern_transport::{Incoming, Transport, ZmqConfig, ZmqTransport};

fn round_trip(ctx: &zmq::Context, b_endpoint: &str) -> Incoming {
    Runtime::new().expect("runtime").block_on(async {
        let b = ZmqTransport::bind_in(ctx, ZmqConfig::new("b").plaintext().listen(b_endpoint))
            .expect("b");
        let bound = b.endpoints()[0].clone();
        let a = ZmqTransport::bind_in(ctx, ZmqConfig::new("a").plaintext().peer("b", bound))
            .expect("a");
        // Nothing is queued before the connection is up (ZMQ_IMMEDIATE): wait for it.
        let up = time::timeout(Duration::from_secs(5), a.recv())
            .await
            .expect("PeerUp");
        assert_eq!(up, Incoming::PeerUp("b".into()));
        a.send("b", b"env".to_vec(), b"payload".to_vec())
            .expect("send");
        let got = time::timeout(Duration::from_secs(5), b.recv())
            .await
            .expect("a frame");
        // And back, through b's ROUTER to a's routing id (a does not listen).
        b.send("a", b"back".to_vec(), Vec::new()).expect("reply");
        let back = time::timeout(Duration::from_secs(5), a.recv())
            .await
            .expect("a reply");
        assert_eq!(
            back,
            Incoming::Frame {
                from: "b".into(),
                envelope: b"back".to_vec(),
                payload: Vec::new()
            }
        );
        got
    })
}

#[test]
fn tcp_ipc_and_inproc_endpoints_carry_frames_both_ways() {
    let ctx = zmq::Context::new();
    let ipc = std::env::temp_dir().join(format!("tern-ipc-{}.sock", std::process::id()));
    let endpoints = [
        "tcp://127.0.0.1:0".to_owned(),
        format!("ipc://{}", ipc.display()),
        "inproc://tern-endpoint-test".to_owned(),
    ];
    for e in &endpoints {
        let got = round_trip(&ctx, e);
        assert_eq!(
            got,
            Incoming::Frame {
                from: "a".into(),
                envelope: b"env".to_vec(),
                payload: b"payload".to_vec()
            },
            "{e}"
        );
    }
    let _ = std::fs::remove_file(ipc);
}

#[test]
fn bad_endpoints_and_settings_are_refused_with_the_reason() {
    Runtime::new().expect("runtime").block_on(async {
        let e = ZmqTransport::bind(ZmqConfig::new("a").plaintext().listen("udp://127.0.0.1:1"))
            .unwrap_err();
        assert!(e.to_string().contains("udp://127.0.0.1:1"), "{e}");
        let mut c = ZmqConfig::new("a").plaintext();
        c.heartbeat_timeout = Duration::from_millis(1);
        let e = ZmqTransport::bind(c).unwrap_err();
        assert!(e.to_string().contains("heartbeat_timeout"), "{e}");
        let e = ZmqTransport::bind(ZmqConfig::new("a").plaintext().listen("tcp://256.1.1.1:1"))
            .unwrap_err();
        assert!(e.to_string().contains("bind tcp://256.1.1.1:1"), "{e}");
    });
}
