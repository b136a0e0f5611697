//! What the process tests share: the component they run in their containers (`Echo`
//! answers a `Ping` with its number), a free loopback port, and a guard that kills a
//! child process the test did not stop. One place for `admin_metrics`, `app_node` and
//! `gossip_processes`.

pub(crate) mod admin_http;

use serde::{Deserialize, Serialize};
use tern::app::App;
use tern::remote::{Json, Node, RemoteMessage};
use tern::{Actor, Context, Handler};

/// Answers every [`Ping`] with its number.
pub(crate) struct Echo;
impl Actor for Echo {}

/// A request carrying a number.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ping(pub(crate) u32);
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

/// Sleeps this many milliseconds, then answers with it: asks that wait behind it
/// past their deadline expire in the mailbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Nap(pub(crate) u64);
impl RemoteMessage for Nap {
    const NAME: &'static str = "test.v1.Nap";
    type Codec = Json;
}
impl Handler<Nap> for Echo {
    type Reply = u64;
    async fn handle(&mut self, n: Nap, _: &mut Context<Self>) -> u64 {
        tern::time::sleep(std::time::Duration::from_millis(n.0)).await;
        n.0
    }
}

/// An application named `name` with one component, `echo`, exported as "echo"
/// (accepting [`Ping`] and [`Nap`]).
pub(crate) fn app(name: &'static str) -> App {
    App::new(name).component("echo", |node: &Node| {
        node.export("echo", &tern::spawn(Echo))?
            .accept::<Ping>()
            .accept::<Nap>();
        Ok(())
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn free_port() -> u16 {
    tern::transport::loopback_port().expect("a free loopback port")
}

/// Kills the child (also a stopped one: SIGKILL ends it) if the test fails before it
/// stopped it, so no process is left behind.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) struct Reaper(pub(crate) Option<std::process::Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A container `n1` hosting `echo` with its admin listener on, which a test runs as a
/// child process (the test binary again, running only that test with `env` set to the
/// configuration's path): its ports and configuration file.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) struct AdminContainer {
    /// The container's ZeroMQ port.
    pub(crate) node_port: u16,
    /// The port of the test's own client node (the container's one peer).
    pub(crate) client_port: u16,
    /// The admin listener's address.
    pub(crate) admin: std::net::SocketAddr,
    /// The configuration file.
    pub(crate) config: std::path::PathBuf,
}

#[allow(dead_code)] // not every test binary that includes this module uses it
impl AdminContainer {
    /// Picks the ports and writes the configuration, named after `tag`; `admin_extra`
    /// holds more `[admin]` keys, one per line.
    pub(crate) fn write(tag: &str, admin_extra: &str) -> Self {
        let (node_port, client_port) = (free_port(), free_port());
        let admin = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = std::env::temp_dir().join(format!("{tag}-{}.toml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "[security]\nmode = \"plaintext\"\n[node]\nname = \"n1\"\nlisten = [\"tcp://127.0.0.1:{node_port}\"]\n\
                 [peers]\nclient = \"tcp://127.0.0.1:{client_port}\"\n\
                 [components]\nhost = [\"echo\"]\n[timeouts]\nshutdown_grace_ms = 100\n\
                 [admin]\nbind = \"{admin}\"\n{admin_extra}"
            ),
        )
        .expect("write config");
        Self {
            node_port,
            client_port,
            admin,
            config,
        }
    }

    /// Starts the container: this test binary running only `test`, with `env` set to
    /// the configuration's path; its standard error goes to `stderr`.
    pub(crate) fn spawn(&self, test: &str, env: &str, stderr: std::process::Stdio) -> Reaper {
        Reaper(Some(
            std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([test, "--exact", "--nocapture"])
                .env(env, &self.config)
                .stderr(stderr)
                .spawn()
                .expect("start the node"),
        ))
    }
}

/// The test's own node, `client`, in plaintext on `client_port`, with the container
/// `n1` at `node_port` as its one peer. Call it inside a runtime.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub(crate) fn client_node(client_port: u16, node_port: u16) -> Node {
    let t = tern::transport::ZmqTransport::bind(
        tern::transport::ZmqConfig::new("client")
            .plaintext()
            .listen(format!("tcp://127.0.0.1:{client_port}"))
            .peer("n1", format!("tcp://127.0.0.1:{node_port}")),
    )
    .expect("client transport");
    Node::start(tern::remote::NodeConfig::new("client").peers(["n1"]), t).expect("client node")
}
