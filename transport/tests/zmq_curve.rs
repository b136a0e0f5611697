//! CURVE on real sockets over loopback: who gets in, who does not, and key rotation
//! without a restart. Each attack is refused and counted while a legitimate peer's
//! frames keep flowing.

use std::path::PathBuf;
use std::time::Duration;

use tern_executor::{Runtime, ZmqSocket, time};
use tern_transport::{
    AllowList, CurveSecurity, Incoming, KeyPair, Transport, ZmqConfig, ZmqStats, ZmqTransport,
};

fn keys() -> KeyPair {
    KeyPair::generate().expect("CURVE is compiled in")
}

fn allow(entries: &[(&str, &KeyPair)]) -> AllowList {
    let mut list = AllowList::new();
    for (name, k) in entries {
        list.insert(name, *k.public()).expect("distinct");
    }
    list
}

/// A CURVE server `b` on an ephemeral loopback port.
fn server(b: &KeyPair, list: AllowList) -> ZmqTransport {
    let config = ZmqConfig::new("b")
        .listen("tcp://127.0.0.1:0")
        .curve(CurveSecurity::new(b.clone(), list));
    ZmqTransport::bind(config).expect("server")
}

/// A CURVE client `name` of `b` at `endpoint`.
fn client(name: &str, me: &KeyPair, list: AllowList, endpoint: &str) -> ZmqTransport {
    let config = ZmqConfig::new(name)
        .peer("b", endpoint)
        .curve(CurveSecurity::new(me.clone(), list));
    ZmqTransport::bind(config).expect("client")
}

/// The next frame's sender and payload, skipping connection events, or `None` after
/// `wait`.
async fn next_frame(t: &ZmqTransport, wait: Duration) -> Option<(String, Vec<u8>)> {
    let deadline = time::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(time::now());
        match time::timeout(left, t.recv()).await {
            Ok(Incoming::Frame { from, payload, .. }) => return Some((from, payload)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

async fn peer_up(t: &ZmqTransport, wait: Duration) -> bool {
    time::timeout(wait, async {
        loop {
            if let Incoming::PeerUp(_) = t.recv().await {
                return;
            }
        }
    })
    .await
    .is_ok()
}

/// Legitimate traffic: `a` reaches `b`, and `b` sees it as `a`.
async fn legit_flows(a: &ZmqTransport, b: &ZmqTransport, tag: &[u8]) {
    a.send("b", b"env".to_vec(), tag.to_vec()).expect("a sends");
    let got = next_frame(b, Duration::from_secs(5)).await;
    assert_eq!(got, Some(("a".to_owned(), tag.to_vec())));
}

/// A raw DEALER in its own context, as an attacker would write it.
fn raw_dealer(ctx: &zmq::Context, endpoint: &str, set: impl FnOnce(&zmq::Socket)) -> ZmqSocket {
    let s = ctx.socket(zmq::DEALER).expect("socket");
    s.set_linger(0).expect("linger");
    set(&s);
    s.connect(endpoint).expect("connect");
    ZmqSocket::new(s)
}

fn wait_for(b: &ZmqTransport, what: impl Fn(&ZmqStats) -> bool) -> bool {
    (0..100).any(|_| {
        if what(&b.stats()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(0));
        false
    })
}

#[test]
fn curve_is_compiled_in() {
    assert_eq!(zmq::has("curve"), Some(true));
}

#[test]
fn strangers_plaintext_clients_and_wrong_server_keys_are_refused() {
    Runtime::new().expect("runtime").block_on(async {
        let (ka, kb, stranger) = (keys(), keys(), keys());
        let list = allow(&[("a", &ka), ("b", &kb)]);
        let b = server(&kb, list.clone());
        let endpoint = b.endpoints()[0].clone();
        let a = client("a", &ka, list.clone(), &endpoint);
        assert!(peer_up(&a, Duration::from_secs(5)).await, "a connects");
        legit_flows(&a, &b, b"before").await;

        let ctx = zmq::Context::new();
        // 1. A key that is not on the allow-list: the ZAP handler refuses it.
        let s1 = raw_dealer(&ctx, &endpoint, |s| {
            s.set_curve_serverkey(kb.public()).expect("serverkey");
            s.set_curve_publickey(stranger.public()).expect("pk");
            let pair = zmq::CurveKeyPair::new().expect("pair");
            s.set_curve_secretkey(&pair.secret_key).expect("sk");
            s.set_curve_publickey(&pair.public_key).expect("pk");
        });
        // 2. No CURVE at all.
        let s2 = raw_dealer(&ctx, &endpoint, |_| {});
        // 3. A listed client that expects the wrong server key (a man in the middle
        //    would present one): the client's handshake fails, nothing is sent.
        let s3 = raw_dealer(&ctx, &endpoint, |s| {
            s.set_curve_serverkey(stranger.public()).expect("serverkey");
            s.set_curve_publickey(ka.public()).expect("pk");
            let secret = zmq::z85_decode(&secret_of(&ka)).expect("z85");
            s.set_curve_secretkey(&secret).expect("sk");
        });
        for s in [&s1, &s2, &s3] {
            // DONTWAIT: with no completed handshake there is no pipe to queue on.
            let _ = s
                .get_ref()
                .send_multipart([b"env".as_slice(), b"attack"], zmq::DONTWAIT);
        }
        // Nothing from them arrives; a's frames do.
        time::sleep(Duration::from_millis(1500)).await;
        legit_flows(&a, &b, b"during").await;
        assert_eq!(next_frame(&b, Duration::from_millis(300)).await, None);
        let stats = b.stats();
        assert!(stats.auth_refused >= 1, "{stats:?}");
        assert!(stats.handshake_failures >= 2, "{stats:?}");
        assert_eq!(stats.received, 2, "{stats:?}");

        // 4. The transport itself, given the wrong server key for b, never connects.
        let wrong = allow(&[("a", &ka), ("b", &stranger)]);
        let fooled = client("a", &ka, wrong, &endpoint);
        assert!(!peer_up(&fooled, Duration::from_secs(2)).await);
        assert!(fooled.send("b", b"e".to_vec(), b"p".to_vec()).is_err());
        legit_flows(&a, &b, b"after").await;
        drop((s1, s2, s3));
    });
}

/// The secret key of a pair, through its certificate text.
fn secret_of(k: &KeyPair) -> String {
    let text = k.to_file_text();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("secret-key"))
        .expect("secret line");
    line.split('"').nth(1).expect("quoted").to_owned()
}

#[test]
fn a_member_claiming_another_routing_id_is_refused() {
    Runtime::new().expect("runtime").block_on(async {
        let (ka, kb, km) = (keys(), keys(), keys());
        let list = allow(&[("a", &ka), ("b", &kb), ("m", &km)]);
        let b = server(&kb, list.clone());
        let endpoint = b.endpoints()[0].clone();
        let a = client("a", &ka, list.clone(), &endpoint);
        assert!(peer_up(&a, Duration::from_secs(5)).await);
        legit_flows(&a, &b, b"before").await;

        let ctx = zmq::Context::new();
        let curve_m = |s: &zmq::Socket| {
            s.set_curve_serverkey(kb.public()).expect("serverkey");
            s.set_curve_publickey(km.public()).expect("pk");
            let secret = zmq::z85_decode(&secret_of(&km)).expect("z85");
            s.set_curve_secretkey(&secret).expect("sk");
        };
        // m claims a's name as its routing id (while a is connected), then w9's.
        let as_a = raw_dealer(&ctx, &endpoint, |s| {
            curve_m(s);
            s.set_identity(b"a").expect("id");
        });
        let as_w9 = raw_dealer(&ctx, &endpoint, |s| {
            curve_m(s);
            s.set_identity(b"w9").expect("id");
        });
        // m under its own key and a generated id: admitted, and named m.
        let honest = raw_dealer(&ctx, &endpoint, curve_m);
        for s in [&as_a, &as_w9] {
            s.send_multipart([b"env".as_slice(), b"forged"])
                .await
                .expect("send");
        }
        honest
            .send_multipart([b"env".as_slice(), b"honest"])
            .await
            .expect("send");
        let mut seen = Vec::new();
        while let Some(f) = next_frame(&b, Duration::from_millis(1500)).await {
            seen.push(f);
        }
        assert_eq!(seen, vec![("m".to_owned(), b"honest".to_vec())]);
        assert!(b.stats().impersonations >= 1, "{:?}", b.stats());
        // a's connection was not taken over: its frames still arrive as a, and b's
        // replies through the ROUTER to m go to m's own connection.
        legit_flows(&a, &b, b"after").await;
        b.send("m", b"env".to_vec(), b"reply".to_vec())
            .expect("reply to m");
        let reply = time::timeout(Duration::from_secs(5), honest.recv_multipart())
            .await
            .expect("m gets its reply")
            .expect("recv");
        assert_eq!(reply, vec![b"env".to_vec(), b"reply".to_vec()]);
        assert!(wait_for(&b, |s| s.unauthenticated == 0));
    });
}

#[test]
fn allow_list_rotation_takes_effect_without_a_restart() {
    Runtime::new().expect("runtime").block_on(async {
        let (ka, kb, kc) = (keys(), keys(), keys());
        let dir = std::env::temp_dir().join(format!("tern-curve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file: PathBuf = dir.join("allow.toml");
        std::fs::write(&file, allow(&[("a", &ka), ("b", &kb)]).to_file_text()).expect("write");
        let mut security =
            CurveSecurity::with_allow_list_file(kb.clone(), file.clone()).expect("load");
        security.reload_ivl = Duration::from_millis(100);
        let b = ZmqTransport::bind(
            ZmqConfig::new("b")
                .listen("tcp://127.0.0.1:0")
                .curve(security),
        )
        .expect("b");
        let endpoint = b.endpoints()[0].clone();
        let a = client("a", &ka, allow(&[("a", &ka), ("b", &kb)]), &endpoint);
        let c = client("c", &kc, allow(&[("c", &kc), ("b", &kb)]), &endpoint);
        assert!(peer_up(&a, Duration::from_secs(5)).await);
        assert!(
            !peer_up(&c, Duration::from_secs(1)).await,
            "c is not listed yet"
        );
        legit_flows(&a, &b, b"1").await;

        // Add c and revoke a, in the file: b applies it within a reload interval.
        std::fs::write(&file, allow(&[("c", &kc), ("b", &kb)]).to_file_text()).expect("write");
        assert!(
            peer_up(&c, Duration::from_secs(10)).await,
            "c is admitted once listed"
        );
        c.send("b", b"env".to_vec(), b"from c".to_vec())
            .expect("c sends");
        assert_eq!(
            next_frame(&b, Duration::from_secs(5)).await,
            Some(("c".to_owned(), b"from c".to_vec()))
        );
        // a's connection was admitted before: its frames are refused now all the same.
        let _ = a.send("b", b"env".to_vec(), b"revoked".to_vec());
        assert_eq!(next_frame(&b, Duration::from_millis(800)).await, None);
        assert!(b.stats().unauthenticated >= 1, "{:?}", b.stats());
        assert!(b.stats().allow_list_reloads >= 1);

        // A broken file is refused and counted; the list in force stays.
        std::fs::write(&file, "c = \"not a key\"\n").expect("write");
        time::sleep(Duration::from_millis(500)).await;
        assert!(b.stats().allow_list_errors >= 1);
        c.send("b", b"env".to_vec(), b"still".to_vec())
            .expect("c sends");
        assert_eq!(
            next_frame(&b, Duration::from_secs(5)).await,
            Some(("c".to_owned(), b"still".to_vec()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn security_must_be_chosen_and_curve_needs_an_allow_list() {
    Runtime::new().expect("runtime").block_on(async {
        let e = ZmqTransport::bind(ZmqConfig::new("a").listen("tcp://127.0.0.1:0")).unwrap_err();
        assert!(e.to_string().contains("security"), "{e}");
        let k = keys();
        let none = CurveSecurity::new(k.clone(), AllowList::new());
        let e = ZmqTransport::bind(ZmqConfig::new("a").listen("tcp://127.0.0.1:0").curve(none))
            .unwrap_err();
        assert!(e.to_string().contains("allow-list"), "{e}");
        let list = allow(&[("a", &k)]);
        let inproc = ZmqConfig::new("a")
            .listen("inproc://x")
            .curve(CurveSecurity::new(k.clone(), list.clone()));
        assert!(ZmqTransport::bind(inproc).is_err());
        // A peer with no key on the list cannot be connected to.
        let t = ZmqTransport::bind(
            ZmqConfig::new("a")
                .listen("tcp://127.0.0.1:0")
                .curve(CurveSecurity::new(k, list)),
        )
        .expect("a");
        assert!(t.connect("z", "tcp://127.0.0.1:1").is_err());
    });
}
