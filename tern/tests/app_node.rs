//! Container processes: the command line, configuration errors, and a node that stops
//! cleanly on SIGTERM.

use std::process::{Command, ExitCode};
use std::time::Duration;

use tern::app::App;
use tern::remote::{Node, NodeConfig};
use tern::transport::{ZmqConfig, ZmqTransport};

mod echo;
use echo::{Echo, Ping, Reaper, client_node, free_port};

fn app() -> App {
    echo::app("test-app")
}

fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tern-app-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path
}

/// In the child process (the test binary re-run with `var` set): runs the node from
/// the config in `var` until SIGTERM and returns true. In the parent: false.
fn run_as_child_node(var: &str) -> bool {
    let Ok(config) = std::env::var(var) else {
        return false;
    };
    let code = app().main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
    assert_eq!(code, ExitCode::SUCCESS);
    true
}

/// Re-runs this test binary for test `test`, as a node with `config`.
fn spawn_child_node(test: &str, var: &str, config: &std::path::Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture"])
        .env(var, config)
        .spawn()
        .expect("start the node")
}

#[test]
fn check_config_accepts_a_good_file_and_refuses_a_bad_one_with_exit_code_2() {
    let good = config_file(
        "good",
        "[security]\nmode = \"plaintext\"\n[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\n[components]\nhost = [\"echo\"]\n",
    );
    let check = |path: &std::path::Path| {
        app().main_from([
            "app",
            "check-config",
            "--config",
            path.to_str().expect("utf-8 path"),
        ])
    };
    assert_eq!(check(&good), ExitCode::SUCCESS);
    let typo = config_file(
        "typo",
        "[security]\nmode = \"plaintext\"\n[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\nlisen = 3\n",
    );
    assert_eq!(check(&typo), ExitCode::from(2));
    let unknown = config_file(
        "unknown",
        "[security]\nmode = \"plaintext\"\n[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\n[components]\nhost = [\"nope\"]\n",
    );
    assert_eq!(check(&unknown), ExitCode::FAILURE);
    assert_eq!(
        app().main_from(["app", "no-such-command"]),
        ExitCode::from(2)
    );
    for p in [good, typo, unknown] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_node_serves_remote_asks_and_exits_0_on_sigterm() {
    const CHILD: &str = "TERN_TEST_NODE_CONFIG";
    if run_as_child_node(CHILD) {
        return;
    }
    let (node_port, client_port) = (free_port(), free_port());
    let config = config_file(
        "node",
        &format!(
            "[security]\nmode = \"plaintext\"\n[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:{node_port}\"]\n[peers]\nclient = \"tcp://127.0.0.1:{client_port}\"\n[components]\nhost = [\"echo\"]\n[timeouts]\nshutdown_grace_ms = 200\n"
        ),
    );
    let mut child = Reaper(Some(
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "a_node_serves_remote_asks_and_exits_0_on_sigterm",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD, &config)
            .spawn()
            .expect("start the node"),
    ));
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(child.0.as_ref().expect("child").id()).expect("pid"),
    );
    let answered = tern::Runtime::new().expect("runtime").block_on(async {
        let node = client_node(client_port, node_port);
        let echo = node.lookup::<Echo>("echo");
        // The node may still be starting: the ask waits for the name.
        let mut answered = Vec::new();
        for i in 0..20 {
            answered.push(echo.ask(Ping(i)).timeout(Duration::from_secs(10)).await);
        }
        node.shutdown();
        answered
    });
    assert_eq!(answered, (0..20).map(Ok).collect::<Vec<_>>());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = child.0.take().expect("child").wait().expect("wait");
    assert!(status.success(), "the node exited with {status}");
    let _ = std::fs::remove_file(config);
}

#[test]
fn asks_to_a_frozen_node_fail_typed_by_their_deadline_and_it_recovers_when_thawed() {
    const CHILD: &str = "TERN_TEST_FROZEN_NODE_CONFIG";
    if run_as_child_node(CHILD) {
        return;
    }
    let (node_port, client_port) = (free_port(), free_port());
    let config = config_file(
        "frozen",
        &format!(
            "[security]\nmode = \"plaintext\"\n[node]\nname = \"n2\"\nlisten = [\"tcp://127.0.0.1:{node_port}\"]\n[peers]\nclient = \"tcp://127.0.0.1:{client_port}\"\n[components]\nhost = [\"echo\"]\n[timeouts]\nshutdown_grace_ms = 100\n"
        ),
    );
    // If an assertion fails while the child is stopped, the guard still kills it.
    let mut child = Reaper(Some(spawn_child_node(
        "asks_to_a_frozen_node_fail_typed_by_their_deadline_and_it_recovers_when_thawed",
        CHILD,
        &config,
    )));
    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(child.0.as_ref().expect("child").id()).expect("pid"),
    );
    let (warm, frozen, thawed) = tern::Runtime::new().expect("runtime").block_on(async {
        let mut z = ZmqConfig::new("client")
            .plaintext()
            .listen(format!("tcp://127.0.0.1:{client_port}"))
            .peer("n2", format!("tcp://127.0.0.1:{node_port}"));
        z.heartbeat_ivl = Duration::from_millis(100);
        z.heartbeat_timeout = Duration::from_millis(400);
        let t = ZmqTransport::bind(z).expect("client transport");
        let node = Node::start(NodeConfig::new("client").peers(["n2"]), t).expect("client node");
        let echo = node.lookup::<Echo>("echo");
        let warm = echo.ask(Ping(1)).timeout(Duration::from_secs(10)).await;
        // SIGSTOP: the process is frozen, its sockets stay open and silent.
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
        // kill() returns before the process has stopped: wait until it has, so no
        // ask below is answered by it (bounded: 2 s).
        for _ in 0..200 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('T'))
            {
                break;
            }
            tern::time::sleep(Duration::from_millis(10)).await;
        }
        let mut frozen = Vec::new();
        for i in 0..3 {
            let start = tern::time::now();
            let r = echo.ask(Ping(i)).timeout(Duration::from_millis(800)).await;
            frozen.push((r, tern::time::now().saturating_duration_since(start)));
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
        let mut thawed = echo.ask(Ping(7)).timeout(Duration::from_secs(10)).await;
        for _ in 0..50 {
            if thawed.is_ok() {
                break;
            }
            tern::time::sleep(Duration::from_millis(100)).await;
            thawed = echo.ask(Ping(7)).timeout(Duration::from_secs(2)).await;
        }
        node.shutdown();
        (warm, frozen, thawed)
    });
    assert_eq!(warm, Ok(1));
    for (r, took) in &frozen {
        assert!(r.is_err(), "a frozen node answered: {r:?}");
        // Every ask ends by its deadline (plus scheduling slack), never later.
        assert!(*took < Duration::from_millis(1_500), "{r:?} took {took:?}");
    }
    assert_eq!(thawed, Ok(7), "the node serves again once thawed");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = child.0.take().expect("child").wait().expect("wait");
    assert!(status.success(), "the node exited with {status}");
    let _ = std::fs::remove_file(config);
}
