//! `app set-capacity` against a real container process: a mailbox capacity lowered
//! at run time shows in `/status`, `/metrics` and `/limits` and bounds the mailbox
//! while every accepted ask is answered, and a bad key or value is refused (HTTP 400
//! with the reason; the command exits non-zero). (Local senders refused typed with
//! `MailboxFull` under a lowered capacity: `ops_capacity.rs`, on the simulator.)
//! Then SIGHUP: the configuration file's `[horizons]` are read again and applied, and
//! a file that does not load changes nothing.

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tern::remote::CallError;

mod echo;
use echo::{AdminContainer, Echo, Nap, Ping, admin_http, client_node};

fn json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = admin_http::request(addr, "GET", path);
    assert!(status.contains(" 200 "), "{path}: {status} {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn echo_capacity(status: &serde_json::Value) -> u64 {
    status["components"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "echo"))
        .and_then(|c| c["capacity"].as_u64())
        .expect("echo in /status")
}

#[test]
fn set_capacity_changes_a_running_container_and_refuses_bad_changes() {
    const CHILD: &str = "TERN_TEST_SET_CAPACITY_CONFIG";
    if let Ok(config) = std::env::var(CHILD) {
        let code = echo::app("cap-test").main_from([
            "app",
            "node",
            "--config",
            &config,
            "--log-level",
            "warn",
        ]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let container = AdminContainer::write("tern-cap", "");
    let (node_port, client_port, admin) =
        (container.node_port, container.client_port, container.admin);
    let config = container.config.clone();
    let cfg = config.to_str().expect("utf-8 path").to_owned();
    let mut child = container.spawn(
        "set_capacity_changes_a_running_container_and_refuses_bad_changes",
        CHILD,
        Stdio::null(),
    );

    // `naps` asks of 1 s each sent at once, after one ping that waits for the node to
    // be up: how many were answered, refused as `MailboxFull`, failed otherwise.
    let burst = move |naps: u64| {
        tern::Runtime::new().expect("runtime").block_on(async move {
            let node = client_node(client_port, node_port);
            let echo = node.lookup::<Echo>("echo");
            let up = echo.ask(Ping(7)).timeout(Duration::from_secs(20)).await;
            assert_eq!(up, Ok(7), "the container answers");
            let tasks: Vec<_> = (0..naps)
                .map(|_| {
                    let echo = echo.clone();
                    tern::executor::spawn(async move {
                        echo.ask(Nap(1000)).timeout(Duration::from_secs(20)).await
                    })
                })
                .collect();
            let (mut ok, mut full, mut other) = (0, 0, Vec::new());
            for t in tasks {
                match t.await {
                    Ok(Ok(1000)) => ok += 1,
                    Ok(Err(CallError::MailboxFull)) => full += 1,
                    r => other.push(format!("{r:?}")),
                }
            }
            node.shutdown();
            (ok, full, other)
        })
    };
    // Up, and unlimited: every nap is answered.
    let (ok, full, other) = burst(4);
    assert_eq!((ok, full, other.len()), (4, 0, 0), "{other:?}");
    let before = echo_capacity(&json(admin, "/status"));
    assert!(before > 4, "the default capacity: {before}");

    let run = |args: &[&str]| echo::app("cap-test").main_from(["app"].iter().chain(args).copied());
    assert_eq!(
        run(&[
            "set-capacity",
            "--config",
            &cfg,
            "mailbox.echo=1",
            "in_flight.echo=100"
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(echo_capacity(&json(admin, "/status")), 1);
    let limits = json(admin, "/limits");
    assert_eq!(
        limits["limits"],
        serde_json::json!(["mailbox.echo=1", "in_flight.echo=100"]),
        "{limits}"
    );
    assert_eq!(limits["version"], 1, "{limits}");
    assert!(limits["network"].is_null(), "{limits}");
    let (_, metrics) = admin_http::request(admin, "GET", "/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tern_mailbox_capacity{")
                && l.contains("echo")
                && l.ends_with(" 1")),
        "{metrics}"
    );

    // Six naps at once on a mailbox of one: the mailbox never holds more than one
    // (the rest wait at the container's ingress, a remote sender's backpressure), and
    // every nap is answered: nothing accepted is lost.
    // The test process is the client, outside any container: a plain thread for it
    // while this one watches the status.
    #[allow(clippy::disallowed_methods)]
    let naps = std::thread::spawn(move || burst(6));
    let mut most_queued = 0;
    while !naps.is_finished() {
        let status = json(admin, "/status");
        let echo = status["components"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "echo").cloned())
            .expect("echo in /status");
        most_queued = most_queued.max(echo["queued"].as_u64().expect("queued"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, full, other) = naps.join().expect("the burst");
    assert_eq!((ok, full, other.len()), (6, 0, 0), "{other:?}");
    assert!(most_queued <= 1, "the mailbox held {most_queued}");

    // Bad changes: refused by the command and by the listener (400 with the reason),
    // and nothing changed.
    for bad in [
        "speed.echo=3",
        "mailbox.echo=0",
        "mailbox.echo=-1",
        "mailbox.echo",
    ] {
        assert_ne!(
            run(&["set-capacity", "--admin", &admin.to_string(), bad]),
            ExitCode::SUCCESS,
            "{bad}"
        );
    }
    let (status, body) = admin_http::request(admin, "POST", "/limits?set=speed.echo%3D3");
    assert!(status.contains(" 400 "), "{status}");
    assert!(body.contains("unknown key"), "{body}");
    let (status, body) = admin_http::request(
        admin,
        "POST",
        "/limits?set=mailbox.echo%3D2%0Amailbox.echo%3D0",
    );
    assert!(status.contains(" 400 "), "{status}");
    assert!(body.contains("positive integer"), "{body}");
    // Network limits need gossip, which this container has not.
    let (status, _) = admin_http::request(admin, "POST", "/limits?set=mailbox.echo%3D2&network=1");
    assert!(status.contains(" 503 "), "{status}");
    assert_ne!(
        run(&[
            "set-capacity",
            "--network",
            "--config",
            &cfg,
            "mailbox.echo=2"
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(json(admin, "/limits")["version"], 1, "nothing changed");
    assert_eq!(echo_capacity(&json(admin, "/status")), 1);

    // Raised again, lifted: the capacity from before comes back.
    assert_eq!(
        run(&[
            "set-capacity",
            "--admin",
            &admin.to_string(),
            "mailbox.echo=none"
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(echo_capacity(&json(admin, "/status")), before);
    let (ok, full, other) = burst(4);
    assert_eq!((ok, full, other.len()), (4, 0, 0), "{other:?}");

    // SIGHUP: the file's horizons are read again. `echo` limited to its own process
    // refuses this test's asks (the receiver checks); lifted again, they pass.
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(child.0.as_ref().expect("child").id()).expect("pid"),
    );
    let ping = move || {
        tern::Runtime::new().expect("runtime").block_on(async move {
            let node = client_node(client_port, node_port);
            let r = node
                .lookup::<Echo>("echo")
                .ask(Ping(9))
                .timeout(Duration::from_secs(5))
                .await;
            node.shutdown();
            r
        })
    };
    let original = std::fs::read_to_string(&config).expect("the config");
    let until = |want: &dyn Fn(&Result<u32, CallError>) -> bool| {
        for _ in 0..40 {
            let r = ping();
            if want(&r) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        ping()
    };
    std::fs::write(
        &config,
        format!("{original}[horizons]\necho = \"process\"\n"),
    )
    .expect("write config");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    let r = until(&|r| matches!(r, Err(CallError::OutsideHorizon { .. })));
    assert!(
        matches!(r, Err(CallError::OutsideHorizon { .. })),
        "after SIGHUP: {r:?}"
    );
    std::fs::write(
        &config,
        format!("{original}[horizons]\necho = \"planet\"\n"),
    )
    .expect("write config");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    std::thread::sleep(Duration::from_millis(500));
    let r = ping();
    assert!(
        matches!(r, Err(CallError::OutsideHorizon { .. })),
        "a bad file changes nothing: {r:?}"
    );
    std::fs::write(&config, &original).expect("write config");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP");
    assert_eq!(until(&|r| r.is_ok()), Ok(9), "lifted by the next SIGHUP");

    let c = child.0.as_mut().expect("child");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = c.wait().expect("wait");
    child.0 = None;
    assert!(status.success(), "the node exited with {status}");
    let _ = std::fs::remove_file(config);
}
