//! Bad input on a node's ZeroMQ port (design/reliability.md tests 20 and 23): a frame
//! that claims 1 GiB or 2^62 bytes, garbage, an HTTP request, a TLS ClientHello, a ZMTP
//! 2.0 greeting and a truncated greeting. Each connection is closed and counted, and the
//! node keeps serving a well-behaved peer.
//!
//! Note: libzmq still speaks the legacy ZMTP 1.0 framing to a peer whose first byte is
//! not 0xFF, so some garbage parses as short messages before the connection closes;
//! those reach the transport as frames that fail envelope validation (counted as
//! malformed by the wire session) or as messages with the wrong number of frames
//! (counted in `ZmqStats::malformed`). Nothing is delivered to a component.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tern_executor::{Runtime, time};
use tern_transport::{Incoming, Transport, ZmqConfig, ZmqTransport};

/// A ZMTP 3.0 greeting with the NULL mechanism, then a READY command for a DEALER.
fn zmtp3_handshake() -> Vec<u8> {
    let mut g = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0];
    let mut mechanism = b"NULL".to_vec();
    mechanism.resize(20, 0);
    g.extend_from_slice(&mechanism);
    g.push(0); // as-server
    g.extend_from_slice(&[0; 31]);
    let mut ready = vec![5];
    ready.extend_from_slice(b"READY");
    ready.push(11);
    ready.extend_from_slice(b"Socket-Type");
    ready.extend_from_slice(&6u32.to_be_bytes());
    ready.extend_from_slice(b"DEALER");
    g.push(0x04); // a short command frame
    g.push(u8::try_from(ready.len()).expect("short"));
    g.extend_from_slice(&ready);
    g
}

/// A long message frame header claiming `len` bytes, and a little of the body.
fn huge_frame(len: u64) -> Vec<u8> {
    let mut f = vec![0x02];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[0xAB; 512]);
    f
}

/// Writes `bytes` and reports whether the node closed the connection within 3 s.
fn closed_after(port: u16, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(250)))
        .expect("timeout");
    // The node may close while we still write: that counts as closed too.
    if s.write_all(bytes).is_err() {
        return true;
    }
    let mut buf = [0u8; 4096];
    for _ in 0..12 {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // The node's own greeting, or nothing yet: keep listening.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bad_input_closes_its_connection_and_the_node_keeps_serving() {
    let rt = Runtime::new().expect("runtime");
    let (srv, good) = rt.block_on(async {
        let mut config = ZmqConfig::new("srv")
            .plaintext()
            .listen("tcp://127.0.0.1:0");
        // A short handshake deadline, so a silent or truncated greeting is closed soon.
        config.handshake_ivl = Duration::from_secs(1);
        // Heartbeats far away, so only the frame limit can close a connection that
        // completed its handshake.
        config.heartbeat_ivl = Duration::from_secs(20);
        config.heartbeat_timeout = Duration::from_secs(60);
        let srv = ZmqTransport::bind(config).expect("srv");
        let endpoint = srv.endpoints()[0].clone();
        let good = ZmqTransport::bind(ZmqConfig::new("good").plaintext().peer("srv", endpoint))
            .expect("good");
        // The server echoes every frame to its sender.
        let echo = srv.clone();
        tern_executor::spawn(async move {
            loop {
                if let Incoming::Frame {
                    from,
                    envelope,
                    payload,
                } = echo.recv().await
                {
                    let _ = echo.send(&from, envelope, payload);
                }
            }
        })
        .detach();
        (srv, good)
    });
    let port: u16 = srv.endpoints()[0]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a tcp port");
    let round_trip = |rt: &Runtime, tag: &[u8]| {
        let (good, tag) = (good.clone(), tag.to_vec());
        rt.block_on(async move {
            for _ in 0..200 {
                if good.send("srv", tag.clone(), Vec::new()).is_ok() {
                    break;
                }
                time::sleep(Duration::from_millis(10)).await;
            }
            // Connection events (PeerUp when the connection is established) are
            // skipped.
            loop {
                match time::timeout(Duration::from_secs(5), good.recv()).await {
                    Ok(Incoming::Frame { envelope, .. }) => break envelope == tag,
                    Ok(Incoming::PeerUp(_) | Incoming::PeerLost(_)) => {}
                    Err(_) => break false,
                }
            }
        })
    };
    assert!(
        round_trip(&rt, b"before"),
        "the node serves before the attacks"
    );
    let rss_before = vm_rss_kib();

    let with_handshake = |claim: u64| {
        let mut bytes = zmtp3_handshake();
        bytes.extend(huge_frame(claim));
        bytes
    };
    let tls_client_hello = [
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x5a, 0x5b, 0x5c,
    ];
    let zmtp2_greeting = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 5];
    let mut garbage = vec![0u8; 4096];
    let mut x: u32 = 0x9E37_79B9;
    for b in &mut garbage {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x.to_le_bytes()[0];
    }
    let attacks: Vec<(&str, Vec<u8>)> = vec![
        ("a frame claiming 1 GiB", with_handshake(1 << 30)),
        ("a frame claiming 2^62 bytes", with_handshake(1 << 62)),
        ("random bytes", garbage),
        (
            "an HTTP GET",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        ("a TLS ClientHello", tls_client_hello.to_vec()),
        ("a ZMTP 2.0 greeting", zmtp2_greeting.to_vec()),
        ("a truncated greeting", vec![0xFF, 0, 0]),
    ];
    let mut not_closed = Vec::new();
    for (what, bytes) in &attacks {
        if !closed_after(port, bytes) {
            not_closed.push(*what);
        }
        assert!(
            round_trip(&rt, what.as_bytes()),
            "the node stopped serving after {what}"
        );
    }
    assert!(
        not_closed.is_empty(),
        "connections left open after: {not_closed:?}"
    );
    let grew = vm_rss_kib().saturating_sub(rss_before);
    assert!(grew < 16 * 1024, "resident memory grew by {grew} KiB");
    let stats = srv.stats();
    assert!(stats.accepted >= attacks.len() as u64, "{stats:?}");
    assert!(stats.handshake_failures >= 3, "{stats:?}");
    assert!(stats.inbound_closed >= 2, "{stats:?}");
}
