//! Attacks on a CURVE cluster over loopback, at the level of nodes and components: a
//! call from a client with no key or an unlisted one, and a directory from a listed
//! client that is not a peer, trying to draw calls to itself. Each fails, is counted,
//! and legitimate calls keep flowing. (Key, handshake and routing-id attacks on the
//! transport itself: transport/tests/zmq_curve.rs.)

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::proto::control::{DIRECTORY_COMPONENT, DIRECTORY_MESSAGE_TYPE, encode_directory};
use tern::proto::v1::{ComponentRef, Directory, Envelope, Kind};
use tern::proto::{PROTOCOL_VERSION, encode_envelope};
use tern::remote::prelude::*;
use tern::transport::{AllowList, CurveSecurity, KeyPair};
use tern_executor::ZmqSocket;

struct Adder {
    handled: Rc<Cell<u32>>,
}
impl Actor for Adder {}

#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "interop.v1.Add", codec = Json)]
struct Add {
    a: i64,
    b: i64,
}
impl Handler<Add> for Adder {
    type Reply = i64;
    async fn handle(&mut self, m: Add, _: &mut Context<Self>) -> i64 {
        self.handled.set(self.handled.get() + 1);
        m.a.saturating_add(m.b)
    }
}

struct Keys {
    calc: KeyPair,
    front: KeyPair,
    mallory: KeyPair,
    allow: AllowList,
}

fn keys() -> Keys {
    let k = || KeyPair::generate().expect("CURVE");
    let (calc, front, mallory) = (k(), k(), k());
    let mut allow = AllowList::new();
    for (name, key) in [("calc", &calc), ("front", &front), ("mallory", &mallory)] {
        allow.insert(name, *key.public()).expect("distinct");
    }
    Keys {
        calc,
        front,
        mallory,
        allow,
    }
}

/// `calc` exporting `adder`, and `front` with `calc` as its only peer.
fn cluster(k: &Keys, handled: &Rc<Cell<u32>>) -> (Node, Node, String, String) {
    let curve = |me: &KeyPair| CurveSecurity::new(me.clone(), k.allow.clone());
    let tc = ZmqTransport::bind(
        ZmqConfig::new("calc")
            .listen("tcp://127.0.0.1:0")
            .curve(curve(&k.calc)),
    )
    .expect("calc");
    let calc_endpoint = tc.endpoints()[0].clone();
    let tf = ZmqTransport::bind(
        ZmqConfig::new("front")
            .listen("tcp://127.0.0.1:0")
            .peer("calc", &calc_endpoint)
            .curve(curve(&k.front)),
    )
    .expect("front");
    let front_endpoint = tf.endpoints()[0].clone();
    tc.connect("front", &front_endpoint).expect("calc -> front");
    let calc = Node::start(NodeConfig::new("calc").peers(["front"]), tc).expect("calc node");
    calc.export(
        "adder",
        &spawn(Adder {
            handled: handled.clone(),
        }),
    )
    .expect("export")
    .accept::<Add>();
    let front = Node::start(NodeConfig::new("front").peers(["calc"]), tf).expect("front node");
    (calc, front, calc_endpoint, front_endpoint)
}

async fn legit_calls(front: &Node, n: i64) {
    let adder = front.lookup::<Adder>("adder");
    for i in 0..n {
        let r = adder
            .ask(Add { a: i, b: 1 })
            .timeout(Duration::from_secs(5))
            .await;
        assert_eq!(r, Ok(i + 1));
    }
}

fn dealer(ctx: &zmq::Context, endpoint: &str, set: impl FnOnce(&zmq::Socket)) -> ZmqSocket {
    let s = ctx.socket(zmq::DEALER).expect("socket");
    s.set_linger(0).expect("linger");
    set(&s);
    s.connect(endpoint).expect("connect");
    ZmqSocket::new(s)
}

fn curve_client(s: &zmq::Socket, me: &KeyPair, server: &KeyPair) {
    s.set_curve_serverkey(server.public()).expect("serverkey");
    s.set_curve_publickey(me.public()).expect("pk");
    let text = me.to_file_text();
    let secret = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret-key = "))
        .expect("secret line")
        .trim_matches('"');
    s.set_curve_secretkey(&zmq::z85_decode(secret).expect("z85"))
        .expect("sk");
}

fn envelope(
    id: u64,
    kind: Kind,
    from: &str,
    to: (&str, &str),
    message_type: &str,
    content: &str,
) -> Vec<u8> {
    encode_envelope(&Envelope {
        version: PROTOCOL_VERSION,
        message_id: id,
        kind: kind.into(),
        source: Some(ComponentRef {
            node: from.into(),
            name: String::new(),
            generation: 0,
        }),
        destination: Some(ComponentRef {
            node: to.0.into(),
            name: to.1.into(),
            generation: 0,
        }),
        message_type: message_type.into(),
        content_type: content.into(),
        timeout_ms: 5000,
        ..Envelope::default()
    })
}

/// Whatever `s` receives within `wait`.
async fn received(s: &ZmqSocket, wait: Duration) -> Vec<Vec<Vec<u8>>> {
    let mut got = Vec::new();
    while let Ok(Ok(m)) = time::timeout(wait, s.recv_multipart()).await {
        got.push(m);
    }
    got
}

#[test]
fn calls_without_a_listed_key_never_reach_a_component() {
    Runtime::new().expect("runtime").block_on(async {
        let k = keys();
        let handled = Rc::new(Cell::new(0));
        let (calc, front, calc_endpoint, _) = cluster(&k, &handled);
        legit_calls(&front, 5).await;
        let ctx = zmq::Context::new();
        let stranger = KeyPair::generate().expect("key");
        let plain = dealer(&ctx, &calc_endpoint, |_| {});
        let unlisted = dealer(&ctx, &calc_endpoint, |s| {
            curve_client(s, &stranger, &k.calc)
        });
        let ask = envelope(
            1,
            Kind::Ask,
            "x",
            ("calc", "adder"),
            "interop.v1.Add",
            "application/json",
        );
        for s in [&plain, &unlisted] {
            let _ = s
                .get_ref()
                .send_multipart([ask.as_slice(), br#"{"a":2,"b":3}"#], zmq::DONTWAIT);
        }
        assert!(
            received(&plain, Duration::from_millis(700))
                .await
                .is_empty()
        );
        assert!(
            received(&unlisted, Duration::from_millis(300))
                .await
                .is_empty()
        );
        legit_calls(&front, 5).await;
        assert_eq!(handled.get(), 10, "only front's asks were handled");
        assert_eq!(calc.stats().requests_delivered, 10);
        calc.shutdown();
        front.shutdown();
    });
}

#[test]
fn a_directory_from_a_listed_client_that_is_not_a_peer_is_refused() {
    Runtime::new().expect("runtime").block_on(async {
        let k = keys();
        let handled = Rc::new(Cell::new(0));
        let (calc, front, _, front_endpoint) = cluster(&k, &handled);
        legit_calls(&front, 5).await;
        // mallory, a listed client, announces that it hosts `adder`, with a huge
        // generation, as the issue's attacker did.
        let ctx = zmq::Context::new();
        let mallory = dealer(&ctx, &front_endpoint, |s| {
            curve_client(s, &k.mallory, &k.front)
        });
        let dir = encode_directory(&Directory {
            node: "mallory".into(),
            generation: u64::MAX / 2,
            version: 1,
            components: vec!["adder".into()],
            reply_wanted: false,
        });
        let tell = envelope(
            1,
            Kind::Tell,
            "mallory",
            ("front", DIRECTORY_COMPONENT),
            DIRECTORY_MESSAGE_TYPE,
            "application/x-protobuf",
        );
        mallory
            .send_multipart([tell.as_slice(), dir.as_slice()])
            .await
            .expect("send");
        time::sleep(Duration::from_millis(300)).await;
        // Every ask still goes to calc; mallory sees none of them.
        legit_calls(&front, 40).await;
        assert_eq!(handled.get(), 45);
        assert!(
            received(&mallory, Duration::from_millis(300))
                .await
                .is_empty()
        );
        assert_eq!(front.stats().directories_refused, 1, "{:?}", front.stats());
        calc.shutdown();
        front.shutdown();
    });
}

#[test]
fn forged_replies_from_another_member_are_not_taken_as_answers() {
    Runtime::new().expect("runtime").block_on(async {
        let k = keys();
        let handled = Rc::new(Cell::new(0));
        let (calc, front, _, front_endpoint) = cluster(&k, &handled);
        legit_calls(&front, 5).await;
        // mallory answers every ask id front would use next if ids were a counter
        // (they are a keyed permutation of one, docs/wire-protocol.md section 5),
        // claiming a result of 666, with calc named as the source: the session takes
        // answers only from the peer the ask went to, and the transport names mallory
        // by its key. (router/tests.rs replays a real outstanding id from another peer.)
        let ctx = zmq::Context::new();
        let mallory = dealer(&ctx, &front_endpoint, |s| {
            curve_client(s, &k.mallory, &k.front)
        });
        let adder = front.lookup::<Adder>("adder");
        let forge = async |from_id: u64| {
            for id in from_id..from_id + 50 {
                let mut env = Envelope {
                    version: PROTOCOL_VERSION,
                    message_id: 1,
                    correlation_id: id,
                    kind: Kind::Reply.into(),
                    source: Some(ComponentRef {
                        node: "calc".into(),
                        name: "adder".into(),
                        generation: 0,
                    }),
                    content_type: "application/json".into(),
                    ..Envelope::default()
                };
                env.destination = Some(ComponentRef::default());
                mallory
                    .send_multipart([encode_envelope(&env).as_slice(), b"666"])
                    .await
                    .expect("send");
            }
        };
        for round in 0..4 {
            forge(round * 50).await;
            for i in 0..10 {
                let r = adder
                    .ask(Add { a: i, b: 100 })
                    .timeout(Duration::from_secs(5))
                    .await;
                assert_eq!(r, Ok(i + 100), "a forged reply was taken");
            }
        }
        assert_eq!(handled.get(), 45);
        assert!(
            front.stats().session.unmatched_replies >= 100,
            "{:?}",
            front.stats()
        );
        calc.shutdown();
        front.shutdown();
    });
}
