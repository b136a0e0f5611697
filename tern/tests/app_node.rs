//! Container processes: the command line, configuration errors, and a node that stops
//! cleanly on SIGTERM.

use std::process::{Command, ExitCode};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tern::app::App;
use tern::remote::{Json, Node, NodeConfig, RemoteMessage};
use tern::transport::{ZmqConfig, ZmqTransport};
use tern::{Actor, Context, Handler};

struct Echo;
impl Actor for Echo {}

#[derive(Debug, Serialize, Deserialize)]
struct Ping(u32);
impl RemoteMessage for Ping {
    const NAME: &'static str = "test.v1.Ping";
    type Codec = Json;
}
impl Handler<Ping> for Echo {
    type Reply = u32;
    async fn handle(&mut self, p: Ping, _: &mut Context<Self>) -> u32 {
        p.0
    }
}

fn app() -> App {
    App::new("test-app").component("echo", |node: &Node| {
        node.export("echo", &tern::spawn(Echo))?.accept::<Ping>();
        Ok(())
    })
}

fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("tern-app-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[test]
fn check_config_accepts_a_good_file_and_refuses_a_bad_one_with_exit_code_2() {
    let good = config_file(
        "good",
        "[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\n[components]\nhost = [\"echo\"]\n",
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
        "[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\nlisen = 3\n",
    );
    assert_eq!(check(&typo), ExitCode::from(2));
    let unknown = config_file(
        "unknown",
        "[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:7999\"]\n[components]\nhost = [\"nope\"]\n",
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
    if let Ok(config) = std::env::var(CHILD) {
        // The child: one container, until SIGTERM.
        let code = app().main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let (node_port, client_port) = (free_port(), free_port());
    let config = config_file(
        "node",
        &format!(
            "[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:{node_port}\"]\n[peers]\nclient = \"tcp://127.0.0.1:{client_port}\"\n[components]\nhost = [\"echo\"]\n[timeouts]\nshutdown_grace_ms = 200\n"
        ),
    );
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "a_node_serves_remote_asks_and_exits_0_on_sigterm",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, &config)
        .spawn()
        .expect("start the node");
    let answered = tern::Runtime::new().expect("runtime").block_on(async {
        let t = ZmqTransport::bind(
            ZmqConfig::new("client")
                .listen(format!("tcp://127.0.0.1:{client_port}"))
                .peer("n1", format!("tcp://127.0.0.1:{node_port}")),
        )
        .expect("client transport");
        let node = Node::start(NodeConfig::new("client").peers(["n1"]), t).expect("client node");
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
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "the node exited with {status}");
    let _ = std::fs::remove_file(config);
}
