//! A real container process with `[admin]` on: `/metrics` and `/status` agree with an
//! end-to-end count of what a client sent, what the component handled, what the node
//! refused (a message type the component does not accept) and what was lost (asks
//! that expired in the mailbox behind a slow one), per-peer traffic and the busy
//! fraction are there, `app status` answers, and the listener's bounds hold (request
//! size, connections, time).

use std::io::Read;
use std::net::TcpStream;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tern::app::App;

mod echo;
use echo::admin_http::{exchange, get, sample};
use echo::{AdminContainer, Echo, Nap, Ping, client_node};
use serde::{Deserialize, Serialize};
use tern::remote::{CallError, Json, RemoteMessage};
use tern::{Actor, Context, Handler};

fn app() -> App {
    echo::app("admin-test")
}

/// What the client believes "echo" is: a component that also takes [`Unknown`],
/// which the real one does not accept, so the node refuses it.
struct Impostor;
impl Actor for Impostor {}
#[derive(Debug, Serialize, Deserialize)]
struct Unknown;
impl RemoteMessage for Unknown {
    const NAME: &'static str = "test.v1.Unknown";
    type Codec = Json;
}
impl Handler<Unknown> for Impostor {
    type Reply = ();
    async fn handle(&mut self, _: Unknown, _: &mut Context<Self>) {}
}

const REFUSED: u32 = 7;
const NAPS: u32 = 5;

const TELLS: u32 = 300;
const ASKERS: u32 = 8;
const ASKS_EACH: u32 = 50;

#[test]
fn metrics_from_a_loaded_container_agree_with_what_was_sent_and_handled() {
    const CHILD: &str = "TERN_TEST_ADMIN_NODE_CONFIG";
    if let Ok(config) = std::env::var(CHILD) {
        let code = app().main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let container = AdminContainer::write(
        "tern-admin",
        "max_connections = 2\nmax_request_bytes = 1024\nrequest_timeout_ms = 1000\n",
    );
    let (node_port, client_port, admin) =
        (container.node_port, container.client_port, container.admin);
    let config = container.config.clone();
    let mut child = container.spawn(
        "metrics_from_a_loaded_container_agree_with_what_was_sent_and_handled",
        CHILD,
        Stdio::inherit(),
    );

    // Load: tells, then asks from concurrent tasks; count what went through.
    let (tells_ok, asks_ok, client_stats) =
        tern::Runtime::new().expect("runtime").block_on(async {
            let node = client_node(client_port, node_port);
            let echo = node.lookup::<Echo>("echo");
            // The node may still be starting: the first ask waits for the name.
            let warm = echo.ask(Ping(0)).timeout(Duration::from_secs(20)).await;
            assert_eq!(warm, Ok(0));
            let tells_ok = (0..TELLS)
                .filter(|i| echo.try_tell(Ping(*i)).is_ok())
                .count();
            let tasks: Vec<_> = (0..ASKERS)
                .map(|k| {
                    let echo = echo.clone();
                    tern::spawn_task(async move {
                        let mut ok = 0u32;
                        for i in 0..ASKS_EACH {
                            let n = k * ASKS_EACH + i;
                            if echo.ask(Ping(n)).timeout(Duration::from_secs(10)).await == Ok(n) {
                                ok += 1;
                            }
                        }
                        ok
                    })
                })
                .collect();
            let mut asks_ok = 1; // the warm-up
            for t in tasks {
                asks_ok += t.await.expect("asker");
            }
            // Refused by the node: a message type "echo" does not accept.
            let impostor = node.lookup::<Impostor>("echo");
            for _ in 0..REFUSED {
                let r = impostor.ask(Unknown).timeout(Duration::from_secs(10)).await;
                assert!(matches!(r, Err(CallError::Remote { .. })), "{r:?}");
            }
            // Lost: naps of 400 ms asked at once with a 100 ms deadline; the first
            // runs, the others expire in the mailbox behind it. All time out here.
            let naps: Vec<_> = (0..NAPS)
                .map(|_| {
                    let echo = echo.clone();
                    tern::spawn_task(async move {
                        echo.ask(Nap(400)).timeout(Duration::from_millis(100)).await
                    })
                })
                .collect();
            for n in naps {
                assert_eq!(n.await.expect("napper"), Err(CallError::Timeout));
            }
            // The naps that ran finish before the node is read.
            tern::time::sleep(Duration::from_millis(1500)).await;
            let stats = node.stats();
            node.shutdown();
            (tells_ok, asks_ok, stats)
        });
    let sent = u64::try_from(tells_ok).expect("count") + u64::from(asks_ok);
    assert_eq!(asks_ok, 1 + ASKERS * ASKS_EACH, "every ask answered");
    assert_eq!(
        client_stats.tells_sent,
        u64::try_from(tells_ok).expect("count")
    );
    assert_eq!(client_stats.asks_sent, u64::from(asks_ok + REFUSED + NAPS));
    assert_eq!(client_stats.asks_timed_out, u64::from(NAPS));

    // Every tell was queued before the asks (one sender, per-sender order), so once
    // the last ask is answered every message has been handled.
    let text = get(admin, "/metrics");
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    let node_label = "node=\"n1\"";
    let echo = "component=\"echo\"";
    let reason = |r: &str| {
        let label = format!("reason=\"{r}\"");
        sample(&text, "tern_remote_requests_failed_total", &[&label])
    };
    // Every nap was delivered; each either ran or expired in the mailbox.
    let expired = reason("expired_in_mailbox").expect("expired_in_mailbox");
    assert!((1..u64::from(NAPS)).contains(&expired), "{text}");
    let naps_run = u64::from(NAPS) - expired;
    assert_eq!(
        sample(&text, "tern_component_handled_total", &[echo, node_label]),
        Some(sent + naps_run),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "tern_remote_messages_total",
            &["kind=\"requests_delivered\""]
        ),
        Some(sent + u64::from(NAPS)),
        "{text}"
    );
    assert_eq!(
        reason("refused_inbound"),
        Some(u64::from(REFUSED)),
        "{text}"
    );
    // Per-peer traffic: at least one frame in per request, one out per answer.
    let peer = |metric: &str, dir: &str| {
        let d = format!("direction=\"{dir}\"");
        sample(&text, metric, &["peer=\"client\"", &d]).unwrap_or(0)
    };
    let requests = sent + u64::from(REFUSED + NAPS);
    assert!(peer("tern_peer_frames_total", "in") >= requests, "{text}");
    assert!(
        peer("tern_peer_frames_total", "out") >= u64::from(asks_ok + REFUSED),
        "{text}"
    );
    assert!(
        peer("tern_peer_bytes_total", "in") > peer("tern_peer_frames_total", "in"),
        "{text}"
    );
    let busy = text
        .lines()
        .find(|l| l.starts_with("tern_runtime_busy_ratio{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(busy.is_some_and(|b| (0.0..=1.0).contains(&b)), "{text}");
    for reason in [
        "dropped_inbound",
        "pending_expired",
        "send_failed",
        "fenced_generation",
        "ask_lost_with_connection",
    ] {
        let label = format!("reason=\"{reason}\"");
        assert_eq!(
            sample(&text, "tern_remote_requests_failed_total", &[&label]),
            Some(0),
            "{reason}: {text}"
        );
    }
    assert_eq!(
        sample(&text, "tern_component_failures_total", &[echo]),
        Some(0)
    );
    assert_eq!(sample(&text, "tern_mailbox_depth", &[echo]), Some(0));
    assert!(sample(&text, "tern_mailbox_capacity", &[echo]).is_some_and(|c| c > 0));
    assert!(text.contains("tern_poll_lag_seconds_count"), "{text}");

    let status: serde_json::Value =
        serde_json::from_str(&get(admin, "/status")).expect("JSON status");
    assert_eq!(status["node"], "n1");
    assert_eq!(status["components"][0]["name"], "echo");
    assert_eq!(status["components"][0]["handled"], sent + naps_run);
    assert_eq!(
        status["remote"]["requests_delivered"],
        sent + u64::from(NAPS)
    );
    assert_eq!(status["peers"][0]["name"], "client");

    let code = app().main_from([
        "app",
        "status",
        "--config",
        config.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "app status answers");

    // Bounds. A request head larger than max_request_bytes: 431.
    let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "x".repeat(4096));
    let answer = exchange(admin, big.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Not GET: 405; not HTTP: 400; unknown path: 404.
    assert!(exchange(admin, b"POST /status HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    assert!(exchange(admin, b"hello\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(exchange(admin, b"GET /x HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    // Two silent connections fill max_connections: a third is closed unanswered.
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(admin).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(exchange(admin, b"GET /status HTTP/1.1\r\n\r\n"), "");
    // The silent ones are closed by request_timeout (1 s); then requests are served.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        assert!(buf.is_empty(), "a silent connection gets no answer");
    }
    assert!(get(admin, "/metrics").ends_with("# EOF\n"));

    let c = child.0.as_mut().expect("child");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = c.wait().expect("wait");
    child.0 = None;
    assert!(status.success(), "the node exited with {status}");
    let _ = std::fs::remove_file(config);
}
