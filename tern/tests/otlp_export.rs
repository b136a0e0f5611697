//! Spans sent to an OpenTelemetry collector by real container processes
//! (`[trace] otlp_endpoint`, the `otlp` feature): three containers, each with its own
//! fake collector on loopback. The first collector answers 200: its POSTs are
//! `/v1/traces` OTLP/HTTP JSON, and hold the server spans of the asks a client made,
//! with the trace ids and parent span ids of the client's own spans and the same
//! trace ids as the container's ring (`/spans`). The second answers 500 and the third
//! never answers: their batches are counted as failed in `/metrics`, and the
//! containers keep serving. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tern::remote::{Node, NodeConfig};
use tern::trace::{SpanKind, SpanRing};
use tern::transport::{ZmqConfig, ZmqTransport};

mod echo;
use echo::admin_http::{get, sample};
use echo::{Echo, Ping, Reaper, free_port};

const CHILD: &str = "TERN_TEST_OTLP_NODE_CONFIG";
const APP: &str = "otlp-test";
const ASKS: u32 = 5;

/// How a fake collector answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Error500,
    Never,
}

/// A request a fake collector received: its head and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A fake collector on a thread of the test: accepts until `stop`, reads each
/// request (head, then `Content-Length` bytes of body) and answers as `answer` says.
fn collector(answer: Answer, stop: Arc<AtomicBool>) -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a collector");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    let received: Received = Arc::default();
    let seen = received.clone();
    // A collector is another process's server: a thread of the test, not part of
    // any container, timed by the wall clock.
    #[allow(clippy::disallowed_methods)]
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < end {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            if answer == Answer::Never {
                held.push(s); // read nothing, answer nothing, keep it open
                continue;
            }
            let Some(request) = read_request(&mut s) else {
                continue;
            };
            seen.lock().expect("lock").push(request);
            let reply: &[u8] = match answer {
                Answer::Ok => b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                _ => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            };
            let _ = s.write_all(reply);
        }
    });
    (addr, received)
}

fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("a Content-Length header");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// Waits (at most 20 s) until `ok` holds, polling, while the client's runtime runs.
async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let end = tern::time::now() + Duration::from_secs(20);
    while !ok() {
        assert!(tern::time::now() < end, "timed out waiting for {what}");
        tern::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One container's ports and the collector it exports to.
struct Container {
    name: String,
    port: u16,
    admin: SocketAddr,
    collector: SocketAddr,
}

fn start(c: &Container, client_port: u16) -> Reaper {
    let config =
        std::env::temp_dir().join(format!("tern-otlp-{}-{}.toml", std::process::id(), c.name));
    std::fs::write(
        &config,
        format!(
            "[security]\nmode = \"plaintext\"\n[node]\nname = \"{}\"\nlisten = [\"tcp://127.0.0.1:{}\"]\n\
             [peers]\nclient = \"tcp://127.0.0.1:{client_port}\"\n\
             [components]\nhost = [\"echo\"]\n[timeouts]\nshutdown_grace_ms = 100\n\
             [admin]\nbind = \"{}\"\n\
             [trace]\notlp_endpoint = \"http://{}\"\notlp_every_ms = 200\notlp_timeout_ms = 500\n",
            c.name, c.port, c.admin, c.collector
        ),
    )
    .expect("write config");
    Reaper(Some(
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "spans_reach_a_collector_and_failed_exports_are_counted",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, &config)
            .spawn()
            .expect("start the node"),
    ))
}

/// The good collector holds the server spans of n1's asks, children of the client's
/// spans, with the same traces as n1's ring; n1's `/metrics` counts them.
async fn check_exported(
    client_spans: &[tern::trace::SpanRecord],
    n1: &Container,
    ok_addr: SocketAddr,
    received: &Received,
) {
    let n1_client: Vec<_> = client_spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client && s.component == "echo")
        .take(usize::try_from(ASKS).expect("count"))
        .collect();
    assert_eq!(n1_client.len(), 5, "{client_spans:#?}");
    let spans_at_collector = || -> Vec<serde_json::Value> {
        received
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(head, body)| {
                assert!(head.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{head}");
                let lower = head.to_ascii_lowercase();
                assert!(lower.contains("content-type: application/json"), "{head}");
                assert!(lower.contains(&format!("host: {ok_addr}")), "{head}");
                let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
                let rs = &v["resourceSpans"][0];
                assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
                assert_eq!(rs["resource"]["attributes"][0]["value"]["stringValue"], APP);
                rs["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    eventually("n1's spans at the collector", || {
        spans_at_collector().len() >= n1_client.len()
    })
    .await;
    let exported = spans_at_collector();
    for client in &n1_client {
        let server = exported
            .iter()
            .find(|s| s["traceId"] == client.context.trace_hex())
            .unwrap_or_else(|| panic!("no exported span of trace {}", client.context.trace_hex()));
        assert_eq!(server["parentSpanId"], client.context.span_hex());
        assert_eq!(server["kind"], 2, "a server span");
        assert_eq!(server["name"], "handle echo test.v1.Ping");
        let attr = |k: &str| {
            server["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["key"] == k))
                .map(|x| x["value"]["stringValue"].clone())
        };
        assert_eq!(attr("tern.node"), Some("n1".into()));
        let start: u128 = server["startTimeUnixNano"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("a start time");
        let now = tern::time::wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        assert!(
            start <= now && now - start < 600_000_000_000,
            "{start} vs {now}"
        );
    }
    // The container's ring holds the same traces.
    let ring_spans: serde_json::Value =
        serde_json::from_str(&get(n1.admin, "/spans")).expect("/spans JSON");
    let mut in_ring: Vec<String> = ring_spans
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["trace_id"].as_str().expect("trace id").to_owned())
        .collect();
    let mut at_collector: Vec<String> = exported
        .iter()
        .map(|s| s["traceId"].as_str().expect("traceId").to_owned())
        .collect();
    in_ring.sort();
    at_collector.sort();
    assert_eq!(
        in_ring, at_collector,
        "the ring's traces are the exported ones"
    );
    // The collector keeps a batch before it answers: the container counts it once
    // it has read the answer.
    let want = u64::try_from(exported.len()).expect("count");
    eventually("n1's exported spans counted", || {
        sample(&get(n1.admin, "/metrics"), "tern_spans_exported_total", &[]) == Some(want)
    })
    .await;
    let metrics = get(n1.admin, "/metrics");
    assert_eq!(
        sample(&metrics, "tern_span_batches_total", &["outcome=\"failed\""]),
        Some(0)
    );
}

/// The failing collectors: batches counted as failed, nothing exported, and the
/// containers still serve `/status`.
async fn check_failed(failing: &[Container], err_received: &Received) {
    for c in failing {
        eventually(&format!("a failed batch at {}", c.name), || {
            let m = get(c.admin, "/metrics");
            sample(&m, "tern_span_batches_total", &["outcome=\"failed\""]).unwrap_or(0) >= 1
        })
        .await;
        let m = get(c.admin, "/metrics");
        assert_eq!(sample(&m, "tern_spans_exported_total", &[]), Some(0), "{m}");
        assert!(
            sample(&m, "tern_spans_export_lost_total", &[]).unwrap_or(0) >= 1,
            "{m}"
        );
        assert!(get(c.admin, "/status").contains(&c.name));
    }
    assert!(
        !err_received.lock().expect("lock").is_empty(),
        "the 500 collector was asked"
    );
}

#[test]
fn spans_reach_a_collector_and_failed_exports_are_counted() {
    if let Ok(config) = std::env::var(CHILD) {
        let code =
            echo::app(APP).main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ok_addr, received) = collector(Answer::Ok, stop.clone());
    let (err_addr, err_received) = collector(Answer::Error500, stop.clone());
    let (never_addr, _) = collector(Answer::Never, stop.clone());
    let client_port = free_port();
    let containers: Vec<Container> = [("n1", ok_addr), ("n2", err_addr), ("n3", never_addr)]
        .into_iter()
        .map(|(name, collector)| Container {
            name: name.to_owned(),
            port: free_port(),
            admin: ([127, 0, 0, 1], free_port()).into(),
            collector,
        })
        .collect();
    let _children: Vec<Reaper> = containers.iter().map(|c| start(c, client_port)).collect();

    // The client traces its asks: its client spans are the parents of the
    // containers' server spans.
    let ring = Rc::new(SpanRing::new(1024));
    let rt = tern::Runtime::new().expect("runtime");
    rt.block_on(async {
        tern::trace::install(ring.clone(), 42);
        let mut z = ZmqConfig::new("client")
            .plaintext()
            .listen(format!("tcp://127.0.0.1:{client_port}"));
        for c in &containers {
            z = z.peer(c.name.clone(), format!("tcp://127.0.0.1:{}", c.port));
        }
        let t = ZmqTransport::bind(z).expect("client transport");
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let node = Node::start(NodeConfig::new("client").peers(names), t).expect("client node");
        for c in &containers {
            let echo = node.lookup_on::<Echo>(&c.name, "echo");
            // The container may still be starting: the first ask waits for the name.
            for i in 0..ASKS {
                let wait = if i == 0 { 30 } else { 5 };
                let r = echo.ask(Ping(i)).timeout(Duration::from_secs(wait)).await;
                assert_eq!(r, Ok(i), "ask {i} of {}", c.name);
            }
        }
        let client_spans = ring.spans();
        check_exported(&client_spans, &containers[0], ok_addr, &received).await;
        check_failed(&containers[1..], &err_received).await;
        // Still serving after the failed exports.
        for c in &containers[1..] {
            let r = node
                .lookup_on::<Echo>(&c.name, "echo")
                .ask(Ping(99))
                .timeout(Duration::from_secs(10))
                .await;
            assert_eq!(r, Ok(99), "{} keeps serving", c.name);
        }
        node.shutdown();
    });
    stop.store(true, Ordering::Relaxed);
}
