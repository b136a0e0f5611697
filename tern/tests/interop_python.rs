//! Interop: a program in another language, with only a ZeroMQ library and protobuf,
//! calls a tern component by following `docs/wire-protocol.md`.
//!
//! The node `calc` binds a `ROUTER` on tcp loopback and exports `adder`, which accepts
//! `interop.v1.Add` as JSON. `tests/interop/call.py` (pyzmq and the protobuf runtime;
//! no protoc, no generated code) connects a `DEALER`, asks, reads the reply, and checks
//! the refusals the document promises. The worked example's bytes in the document are
//! checked here against the real encoder and against what crossed the wire.
//!
//! Needs only `python3` (with its `venv` module): the first run creates a virtual
//! environment under `target/tmp` and installs the pinned `pyzmq` and `protobuf` from
//! PyPI into it (`interop/python_env.rs`); later runs reuse it. `TERN_PYTHON` names an
//! interpreter that already has them, and `TERN_SKIP_INTEROP=1` skips the Python part
//! on a machine that cannot reach PyPI.

#[path = "interop/python_env.rs"]
mod python_env;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::proto::session::{Event, Outgoing, Session};
use tern::proto::v1::{ComponentRef, Envelope, Kind};
use tern::proto::{Limits, PROTOCOL_VERSION, decode_envelope, encode_envelope};
use tern::remote::prelude::*;
use tern::transport::{AllowList, CurveSecurity, KeyPair};

/// The specification; its worked example and its copies of the `.proto` files are
/// checked below.
const DOC: &str = include_str!("../../docs/wire-protocol.md");
const ENVELOPE_PROTO: &str = include_str!("../../proto/protos/tern/v1/envelope.proto");
const CONTROL_PROTO: &str = include_str!("../../proto/protos/tern/v1/control.proto");

/// The worked example: the ASK envelope `py-client` sends first, and the REPLY
/// envelope `calc` answers with.
const ASK_HEX: &str = "0801100120022a0b0a0970792d636c69656e74320d0a0463616c63120561646465723a0e696e7465726f702e76312e41646442106170706c69636174696f6e2f6a736f6e488827";
const REPLY_HEX: &str = "080110dbf291bebfbbd8ed21180120032a0d0a0463616c6312056164646572320b0a0970792d636c69656e7442106170706c69636174696f6e2f6a736f6e";

const NODE: &str = "calc";
const COMPONENT: &str = "adder";

struct Adder;
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
        m.a.saturating_add(m.b)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The example ASK, as the document shows it.
fn example_ask() -> Envelope {
    Envelope {
        version: PROTOCOL_VERSION,
        message_id: 1,
        kind: Kind::Ask.into(),
        source: Some(ComponentRef {
            node: "py-client".into(),
            name: String::new(),
            generation: 0,
        }),
        destination: Some(ComponentRef {
            node: NODE.into(),
            name: COMPONENT.into(),
            generation: 0,
        }),
        message_type: Add::NAME.into(),
        content_type: "application/json".into(),
        timeout_ms: 5000,
        ..Envelope::default()
    }
}

fn read_all(pipe: Option<impl Read>) -> String {
    let mut out = String::new();
    if let Some(mut p) = pipe {
        p.read_to_string(&mut out)
            .expect("read the client's output");
    }
    out
}

#[test]
fn the_documented_example_bytes_come_from_the_real_encoder() {
    let ask = example_ask();
    let ask_bytes = encode_envelope(&ask);
    assert_eq!(hex(&ask_bytes), ASK_HEX);
    assert_eq!(decode_envelope(&ask_bytes, &Limits::default()), Ok(ask));

    // The node's wire session answers it as a node does: its first message id (under
    // the all-zero id key of a bare session; a node's key is secret), the ask's id as
    // correlation, its own name and the component as source, the ask's
    // source as destination, the codec's content type.
    let mut calc = Session::new(NODE);
    calc.handle_frame(0, "py-client", &ask_bytes, br#"{"a":2,"b":3}"#.to_vec());
    let Some(Event::Request(req)) = calc.poll_event() else {
        panic!("the example ask is not a request");
    };
    calc.reply(1, &req, Ok((b"5".to_vec(), "application/json".into())));
    let reply = calc.poll_transmit().unwrap();
    assert_eq!(reply.peer, "py-client");
    assert_eq!(reply.payload, b"5");
    assert_eq!(hex(&reply.envelope), REPLY_HEX);

    for (what, text) in [
        ("the ASK hex", ASK_HEX),
        ("the REPLY hex", REPLY_HEX),
        ("envelope.proto", ENVELOPE_PROTO),
        ("control.proto", CONTROL_PROTO),
    ] {
        assert!(
            DOC.contains(text),
            "docs/wire-protocol.md must contain {what} verbatim"
        );
    }
}

#[test]
fn a_python_client_calls_a_component_over_zeromq() {
    if std::env::var("TERN_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("interop_python: the Python client is skipped (TERN_SKIP_INTEROP=1)");
        return;
    }
    let python = python_env::interop_python().unwrap_or_else(|e| panic!("{e}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/call.py");

    let rt = Runtime::new().unwrap();
    let (status, out, err, node_stats, zmq_stats, took) = rt.block_on(async {
        // CURVE, as a deployment runs: the node's key pair, the client's (written to a
        // certificate file the script loads with zmq.auth), and an allow-list of both.
        let (node_keys, client_keys) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        let mut allow = AllowList::new();
        allow.insert(NODE, *node_keys.public()).unwrap();
        allow.insert("py-client", *client_keys.public()).unwrap();
        let cert = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("interop-py-client-{}.key", std::process::id()));
        let _ = std::fs::remove_file(&cert);
        client_keys.save(&cert).unwrap();
        let server_key = node_keys.public_z85();
        let transport = ZmqTransport::bind(
            ZmqConfig::new(NODE)
                .listen("tcp://127.0.0.1:0")
                .curve(CurveSecurity::new(node_keys, allow)),
        )
        .unwrap();
        let endpoint = transport.endpoints()[0].clone();
        let zmq = transport.clone();
        let node = Node::start(NodeConfig::new(NODE), transport).unwrap();
        node.export(COMPONENT, &spawn(Adder))
            .unwrap()
            .accept::<Add>();

        let started = time::now();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(&endpoint)
            .arg("--key-file")
            .arg(&cert)
            .arg("--server-key")
            .arg(&server_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if time::now() - started > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            time::sleep(Duration::from_millis(10)).await;
        };
        let took = time::now() - started;
        let out = read_all(child.stdout.take());
        let err = read_all(child.stderr.take());
        (status, out, err, node.stats(), zmq.stats(), took)
    });

    let context = format!(
        "{} {script:?}, {took:?}\n--- stdout\n{out}--- stderr\n{err}",
        python.display()
    );
    let status = status.unwrap_or_else(|| panic!("the client ran past 30 s: {context}"));
    assert!(status.success(), "the client failed ({status}): {context}");
    // The node's reply is the documented one but for its message id, which is the
    // node's own and unguessable (its id key is random): compare with the id set to
    // the example's.
    let reply_hex = out
        .lines()
        .find_map(|l| l.strip_prefix("reply-envelope-hex: "))
        .unwrap_or_else(|| panic!("no reply envelope: {context}"));
    let reply_bytes: Vec<u8> = (0..reply_hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&reply_hex[i..i + 2], 16).unwrap())
        .collect();
    let mut reply = decode_envelope(&reply_bytes, &Limits::default()).unwrap();
    let mut example = Session::new(NODE);
    let example_id = example.tell(0, "x", Outgoing::new("c", "t", "j", Vec::new()));
    assert_ne!(
        reply.message_id, example_id,
        "the node's id key is not random"
    );
    reply.message_id = example_id;
    assert_eq!(hex(&encode_envelope(&reply)), REPLY_HEX, "{context}");
    for line in [
        format!("ask-envelope-hex: {ASK_HEX}"),
        "reply-payload: 5".to_owned(),
        "got KIND_REPLY from calc/adder for #1".to_owned(),
        "unknown component: ERROR ERROR_CODE_UNKNOWN_COMPONENT".to_owned(),
        "unknown message type: ERROR ERROR_CODE_UNKNOWN_MESSAGE_TYPE".to_owned(),
        "payload in another content type: ERROR ERROR_CODE_DECODE_FAILED".to_owned(),
        "payload that is not JSON: ERROR ERROR_CODE_DECODE_FAILED".to_owned(),
        "ASK without message_type: ERROR ERROR_CODE_DECODE_FAILED".to_owned(),
        "protocol version 2: ERROR ERROR_CODE_UNSUPPORTED_VERSION".to_owned(),
        "ASK with an envelope over 8 KiB: ERROR ERROR_CODE_TOO_LARGE".to_owned(),
        "streamed ASK to a plain type: ERROR ERROR_CODE_UNKNOWN_MESSAGE_TYPE".to_owned(),
        "final ask after the bad input: REPLY application/json 42".to_owned(),
        "interop checks: 13 ok, 0 failing".to_owned(),
        ", CURVE)".to_owned(),
    ] {
        assert!(out.contains(&line), "missing {line:?}: {context}");
    }
    // What the node counted: five asks refused after dispatch (the fifth a streamed
    // ask to a plain type), four envelopes that failed to decode (no message_type,
    // version 2, over 8 KiB, garbage), one message with a single frame dropped by the
    // transport, and the three requests delivered (the first ask, the tell, the final
    // ask).
    assert_eq!(node_stats.refused, 5, "{node_stats:?}");
    assert_eq!(node_stats.session.malformed, 4, "{node_stats:?}");
    assert_eq!(node_stats.requests_delivered, 3, "{node_stats:?}");
    assert_eq!(node_stats.dropped, 0, "{node_stats:?}");
    assert_eq!(zmq_stats.malformed, 1, "{zmq_stats:?}");
    // Every frame came authenticated, under the client's own name.
    assert_eq!(zmq_stats.unauthenticated, 0, "{zmq_stats:?}");
    assert_eq!(zmq_stats.impersonations, 0, "{zmq_stats:?}");
}
