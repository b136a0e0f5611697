//! A frame ZeroMQ refuses because its connection is gone is `Unreachable`, not
//! `Backpressure`, even before the socket monitor has reported the loss: a caller must
//! not wait for room on a link that is not there.

use std::time::Duration;

use tern_executor::{Runtime, time};
use tern_transport::{Incoming, Transport, TransportError, ZmqConfig, ZmqTransport};

#[test]
fn a_send_on_a_connection_just_lost_is_unreachable_not_backpressure() {
    let ctx = zmq::Context::new();
    Runtime::new().expect("runtime").block_on(async {
        // The peer: a bare ROUTER this test closes when it wants.
        let b = ctx.socket(zmq::ROUTER).expect("router");
        b.set_linger(0).expect("linger");
        b.bind("tcp://127.0.0.1:0").expect("bind");
        let endpoint = b.get_last_endpoint().expect("endpoint").expect("utf-8");
        let a = ZmqTransport::bind_in(&ctx, ZmqConfig::new("a").plaintext().peer("b", endpoint))
            .expect("a");
        let up = time::timeout(Duration::from_secs(5), a.recv()).await;
        assert_eq!(up, Ok(Incoming::PeerUp("b".into())));
        // b goes away. This task does not yield from here on, so a's monitor cannot
        // report the loss: only libzmq knows, and it refuses frames once the
        // connection's pipe is gone (`ZMQ_IMMEDIATE`).
        drop(b);
        let mut refused = None;
        for _ in 0..500 {
            match a.send("b", b"env".to_vec(), Vec::new()) {
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(refused, Some(TransportError::Unreachable("b".into())));
        assert_eq!(a.stats().backpressure, 0);
    });
}
