//! Membership across real processes: five containers on 127.0.0.1 to 127.0.0.5, each
//! given the same seed list of three addresses of which two never answer, started in
//! a mixed order (the live seed among the last). One is killed with SIGKILL and
//! declared dead, restarted with a new generation and accepted; one leaves on SIGTERM
//! and is recorded as left, not failed. The `members` command shows the table.

// Helpers of this test: a setup step that fails should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tern::app::App;
use tern::discovery::{Datagrams, Key, Keyring, MemberInfo, MembersQuery, State, UdpSocket};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

mod echo;

fn app() -> App {
    echo::app("gossip-test")
}

struct Nodes {
    dir: std::path::PathBuf,
    port: u16,
    children: Vec<(usize, Child)>,
}

impl Nodes {
    fn config(&self, i: usize) -> std::path::PathBuf {
        let path = self.dir.join(format!("n{i}.toml"));
        // Seeds: n1, and two addresses where nothing ever runs.
        let p = self.port;
        let text = format!(
            "[security]\nmode = \"plaintext\"\n[node]\nname = \"n{i}\"\nlisten = [\"tcp://127.0.0.{i}:0\"]\n\n[components]\nhost = [\"echo\"]\n\n\
             [timeouts]\nshutdown_grace_ms = 200\n\n[gossip]\nbind = \"127.0.0.{i}:{p}\"\n\
             seeds = [\"127.0.0.201:{p}\", \"127.0.0.1:{p}\", \"127.0.0.202:{p}\"]\n\
             cluster = \"proc-test\"\nkeys = [\"3:{KEY}\"]\n"
        );
        std::fs::write(&path, text).expect("write config");
        path
    }

    fn start(&mut self, i: usize) {
        let config = self.config(i);
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "five_processes_find_each_other_through_seeds",
                "--exact",
                "--nocapture",
            ])
            .env("TERN_TEST_GOSSIP_NODE", config)
            .stdout(Stdio::null())
            .spawn()
            .expect("start a node");
        self.children.push((i, child));
    }

    fn signal(&mut self, i: usize, signal: nix::sys::signal::Signal) -> Child {
        let at = self
            .children
            .iter()
            .position(|(n, _)| *n == i)
            .expect("running");
        let (_, child) = self.children.remove(at);
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, signal).expect("signal");
        child
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Node `i`'s view of the membership, asked over UDP like the `members` command does.
fn view(port: u16, i: usize) -> Option<Vec<MemberInfo>> {
    let rt = tern::Runtime::new().unwrap();
    rt.block_on(async move {
        let socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let key: Key = KEY.parse().unwrap();
        let nonce = tern::time::now().as_nanos() ^ u64::from(std::process::id()) << 32;
        let mut q = MembersQuery::new("proc-test", Keyring::new(3, key), nonce);
        let to: SocketAddr = format!("127.0.0.{i}:{port}").parse().unwrap();
        socket.send_to(to, &q.request());
        tern::time::timeout(Duration::from_millis(500), async {
            loop {
                let (_, data) = socket.recv_from().await;
                if let Ok(Some((rows, _))) = q.take(&data) {
                    return rows;
                }
            }
        })
        .await
        .ok()
    })
}

/// Waits up to `limit` until node `i`'s view satisfies `ok`; returns the last view.
fn wait_for(
    port: u16,
    i: usize,
    limit: Duration,
    what: &str,
    ok: impl Fn(&[MemberInfo]) -> bool,
) -> Vec<MemberInfo> {
    // A real-process test waits in wall-clock time.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut last = Vec::new();
    while start.elapsed() < limit {
        if let Some(v) = view(port, i) {
            if ok(&v) {
                eprintln!("n{i}: {what} after {:.1} s", start.elapsed().as_secs_f64());
                return v;
            }
            last = v;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("n{i}: not {what} within {limit:?}; last view: {last:#?}");
}

fn state_of(v: &[MemberInfo], name: &str) -> Option<(State, u64)> {
    v.iter()
        .find(|m| m.name == name)
        .map(|m| (m.state, m.generation))
}

#[test]
fn five_processes_find_each_other_through_seeds() {
    if let Ok(config) = std::env::var("TERN_TEST_GOSSIP_NODE") {
        let code = app().main_from(["app", "node", "--config", &config, "--log-level", "warn"]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    if let Ok(config) = std::env::var("TERN_TEST_GOSSIP_MEMBERS") {
        let code = app().main_from(["app", "members", "--config", &config]);
        assert_eq!(code, ExitCode::SUCCESS);
        return;
    }
    let port = tern::transport::loopback_port().unwrap();
    let dir = std::env::temp_dir().join(format!("tern-gossip-procs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut nodes = Nodes {
        dir,
        port,
        children: Vec::new(),
    };
    // Mixed order; the one live seed (n1) starts fourth, so the first three retry.
    for i in [3, 5, 2] {
        nodes.start(i);
    }
    std::thread::sleep(Duration::from_millis(1500));
    nodes.start(1);
    nodes.start(4);
    let all_alive = |v: &[MemberInfo]| v.len() == 5 && v.iter().all(|m| m.state == State::Alive);
    for i in [1, 3, 5] {
        wait_for(port, i, Duration::from_secs(30), "5 alive", all_alive);
    }

    // SIGKILL n5: declared dead by the others.
    let gen5 = state_of(&view(port, 1).unwrap(), "n5").unwrap().1;
    let mut killed = nodes.signal(5, nix::sys::signal::Signal::SIGKILL);
    let _ = killed.wait();
    for i in [1, 2] {
        wait_for(port, i, Duration::from_secs(45), "n5 dead", |v| {
            state_of(v, "n5") == Some((State::Dead, gen5))
        });
    }

    // Restarted: a new generation, accepted at once.
    std::thread::sleep(Duration::from_millis(5));
    nodes.start(5);
    for i in [1, 4] {
        wait_for(
            port,
            i,
            Duration::from_secs(20),
            "n5 back with a new generation",
            |v| matches!(state_of(v, "n5"), Some((State::Alive, g)) if g > gen5),
        );
    }

    // SIGTERM n4: a graceful leave, recorded as left everywhere, never as failed.
    let mut leaving = nodes.signal(4, nix::sys::signal::Signal::SIGTERM);
    assert!(
        leaving.wait().unwrap().success(),
        "n4 exits 0 after leaving"
    );
    for i in [1, 2, 3, 5] {
        wait_for(port, i, Duration::from_secs(15), "n4 left", |v| {
            matches!(state_of(v, "n4"), Some((State::Left, _)))
        });
    }

    // The operator's command prints the same table.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "five_processes_find_each_other_through_seeds",
            "--exact",
            "--nocapture",
        ])
        .env("TERN_TEST_GOSSIP_MEMBERS", nodes.config(2))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "members failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("n4 ").contains("left"), "{text}");
    assert!(
        row("n1 ").contains("alive") && row("n1 ").contains("components=echo"),
        "{text}"
    );

    for i in [1, 2, 3, 5] {
        let mut c = nodes.signal(i, nix::sys::signal::Signal::SIGTERM);
        assert!(c.wait().unwrap().success(), "n{i} exits 0");
    }
}
