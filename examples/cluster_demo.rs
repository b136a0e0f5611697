//! The same kind of application as `sim_cluster`, for real: three worker containers as
//! separate processes on loopback, talking ZeroMQ, and a front in this process that
//! asks them for work by name.
//!
//! ```text
//! cargo run --release --example cluster_demo            # the whole demo
//! cargo run --release --example cluster_demo -- node --config examples/cluster_demo/w1.toml
//! cargo run --release --example cluster_demo -- print-config --config examples/cluster_demo/w1.toml
//! cargo run --release --example cluster_demo -- members --config examples/cluster_demo/w1.toml
//! ```
//!
//! `examples/cluster_demo/w{1,2,3}.toml` are three containers on fixed loopback ports
//! for starting a cluster by hand (the README shows how); the demo itself writes its
//! own files, on free ports, to a temporary directory.
//!
//! The containers find each other through membership gossip from a seed list alone (no
//! peer is configured anywhere). The demo starts three `node` processes, sends asks to `worker-1..3` for a few
//! seconds, kills worker 2's process with SIGKILL, keeps going through the outage,
//! restarts it (a new generation), keeps going, then stops every process with SIGTERM,
//! checks each exited 0, and prints what happened: messages, latencies, and the typed
//! errors seen in each phase. It exits 0 only if all of that held, and leaves no
//! process behind.
//!
//! Every ZeroMQ connection is authenticated and encrypted (CURVE): the demo makes a key
//! pair per container and an allow-list of their public keys (`keygen` makes one by
//! hand; docs/security.md).

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tern::discovery::{
    Discovery, GossipConfig, Identity, Keyring, Membership, State as MemberState, UdpSocket,
};
use tern::remote::prelude::*;

/// Work for a worker: hash `rounds` times, answer with the digest and who did it.
#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "demo.v1.Task", codec = Json)]
struct Task {
    seq: u64,
    rounds: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Done {
    seq: u64,
    digest: u64,
    by: String,
}

struct Worker {
    name: String,
}
impl Actor for Worker {}
impl Handler<Task> for Worker {
    type Reply = Done;
    async fn handle(&mut self, t: Task, _: &mut Context<Self>) -> Done {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ t.seq;
        for i in 0..t.rounds {
            h = (h ^ u64::from(i)).wrapping_mul(0x0100_0000_01b3);
        }
        Done {
            seq: t.seq,
            digest: h,
            by: self.name.clone(),
        }
    }
}

const WORKERS: [&str; 3] = ["worker-1", "worker-2", "worker-3"];

fn app() -> App {
    let mut app = App::new("cluster-demo").about(
        "Three worker containers and a front; without a command, runs the whole demo \
         (demo), else one of the commands below.",
    );
    for name in WORKERS {
        app = app.component(name, move |node: &Node| {
            let worker = spawn(Worker {
                name: name.to_owned(),
            });
            node.export(name, &worker)?.accept::<Task>();
            Ok(())
        });
    }
    app
}

fn free_port() -> anyhow::Result<u16> {
    Ok(tern::transport::loopback_port()?)
}

struct Cluster {
    dir: PathBuf,
    children: BTreeMap<String, Child>,
}

impl Cluster {
    fn spawn(&mut self, node: &str) -> anyhow::Result<()> {
        let exe = std::env::current_exe()?;
        let log = std::fs::File::create(self.dir.join(format!("{node}.log")))?;
        let child = Command::new(exe)
            .args(["node", "--config"])
            .arg(self.dir.join(format!("{node}.toml")))
            .args(["--log-level", "info"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {node}"))?;
        self.children.insert(node.to_owned(), child);
        Ok(())
    }

    fn signal(&self, node: &str, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let child = self.children.get(node).context("no such child")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Never leave a process behind, whatever happened.
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug, Default)]
struct Phase {
    asks: u64,
    answered: u64,
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    by: BTreeMap<String, u64>,
}

impl Phase {
    fn line(&mut self, name: &str) -> String {
        self.latencies_us.sort_unstable();
        let q = |p: usize| {
            self.latencies_us
                .get(self.latencies_us.len().saturating_sub(1) * p / 100)
                .copied()
                .unwrap_or(0)
        };
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let by: Vec<String> = self.by.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "{name:<28} {} asks, {} answered ({}), p50 {} µs, p99 {} µs; typed errors: {}",
            self.asks,
            self.answered,
            by.join(", "),
            q(50),
            q(99),
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        )
    }
}

fn kind(e: &CallError) -> String {
    match e {
        CallError::UnknownName { name } => format!("unknown-name({name})"),
        CallError::NotHosted { name } => format!("not-hosted({name})"),
        CallError::Timeout => "timeout".into(),
        CallError::PeerLost(n) => format!("peer-lost({n})"),
        CallError::Unreachable(n) => format!("unreachable({n})"),
        CallError::Stopped => "stopped".into(),
        other => other.to_string(),
    }
}

/// Asks the workers round robin for `length`, one ask in flight per worker.
async fn drive(node: &Node, length: Duration, seq: &mut u64) -> Phase {
    let refs: Vec<_> = WORKERS.iter().map(|w| node.lookup::<Worker>(w)).collect();
    let end = time::now() + length;
    let phase = std::rc::Rc::new(std::cell::RefCell::new(Phase::default()));
    let mut handles = Vec::new();
    for r in refs {
        let phase = phase.clone();
        let mut seq = *seq;
        handles.push(spawn_task(async move {
            while time::now() < end {
                seq += 1;
                let start = time::now();
                let outcome = r
                    .ask(Task { seq, rounds: 1000 })
                    .timeout(Duration::from_millis(500))
                    .await;
                let failed = {
                    let mut p = phase.borrow_mut();
                    p.asks += 1;
                    match outcome {
                        Ok(done) if done.seq == seq => {
                            p.answered += 1;
                            *p.by.entry(done.by).or_default() += 1;
                            let us = time::now().saturating_duration_since(start).as_micros();
                            p.latencies_us.push(u64::try_from(us).unwrap_or(u64::MAX));
                            false
                        }
                        Ok(done) => {
                            *p.errors
                                .entry(format!("mismatched answer {}", done.seq))
                                .or_default() += 1;
                            true
                        }
                        Err(e) => {
                            *p.errors.entry(kind(&e)).or_default() += 1;
                            true
                        }
                    }
                };
                if failed {
                    // Back off a little instead of spinning on a dead peer.
                    time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    *seq += 1_000_000;
    std::rc::Rc::try_unwrap(phase).map_or_else(|_| Phase::default(), std::cell::RefCell::into_inner)
}

/// The demo cluster's gossip key (make your own with `openssl rand -hex 32`).
const KEY: &str = "7e3a1c9b5d2f4e6a8c0b1d3f5a7c9e1b2d4f6a8c0e2b4d6f8a1c3e5b7d9f0a2c";

/// Each worker knows only the seed list (the front and w1) and its own addresses: no
/// peers are configured anywhere; they find each other through membership gossip.
/// Each has a key pair of its own and the allow-list of the four public keys.
fn write_configs(
    dir: &Path,
    ports: &BTreeMap<&str, u16>,
    gossip: &BTreeMap<&str, u16>,
) -> anyhow::Result<()> {
    for (i, name) in ["w1", "w2", "w3"].iter().enumerate() {
        let (key, allow) = (dir.join(format!("{name}.key")), dir.join("allow.toml"));
        let text = format!(
            "[node]\nname = \"{name}\"\nlisten = [\"tcp://127.0.0.1:{}\"]\n\n[components]\nhost = [\"{}\"]\n\n[timeouts]\nshutdown_grace_ms = 300\n\n[gossip]\nbind = \"127.0.0.1:{}\"\nseeds = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\ncluster = \"cluster-demo\"\nkeys = [\"1:{KEY}\"]\n\n[security]\nkey_file = {:?}\nallow_list = {:?}\n",
            ports[name],
            WORKERS[i],
            gossip[name],
            gossip["front"],
            gossip["w1"],
            key.display().to_string(),
            allow.display().to_string()
        );
        std::fs::write(dir.join(format!("{name}.toml")), text)?;
    }
    Ok(())
}

/// A key pair for each container, in `dir/NAME.key`, and the allow-list of their
/// public keys, `dir/allow.toml`; the front's pair is returned.
fn write_keys(dir: &Path) -> anyhow::Result<KeyPair> {
    let mut allow = AllowList::new();
    let mut front = None;
    for name in ["front", "w1", "w2", "w3"] {
        let keys = KeyPair::generate()?;
        allow.insert(name, *keys.public())?;
        if name == "front" {
            front = Some(keys);
        } else {
            keys.save(&dir.join(format!("{name}.key")))?;
        }
    }
    std::fs::write(dir.join("allow.toml"), allow.to_file_text())?;
    front.context("the front's key pair")
}

/// The front's view of the membership, one line per member.
fn members(d: &Discovery) -> String {
    d.members()
        .iter()
        .map(|m| {
            format!(
                "   {:<6} {:<8} gen {:<14} {}",
                m.name,
                m.state.as_str(),
                m.generation,
                m.fact(tern::remote::COMPONENTS_FACT)
                    .unwrap_or("")
                    .replace('\n', ",")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs this binary's `members --config FILE` (the command the README shows) as a child
/// process, without blocking this container's poll loop; its output, or why it failed.
async fn members_command(config: &Path) -> anyhow::Result<String> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["members", "--config"])
        .arg(config)
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `cluster_demo members`")?;
    let t0 = time::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if time::now().saturating_duration_since(t0) > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`cluster_demo members` ran past 10 s");
        }
        time::sleep(Duration::from_millis(20)).await;
    };
    let out = child.wait_with_output()?;
    if !status.success() {
        bail!(
            "`cluster_demo members` exited with {status}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn demo() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("tern-cluster-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut ports = BTreeMap::new();
    let mut gossip = BTreeMap::new();
    for name in ["front", "w1", "w2", "w3"] {
        ports.insert(name, free_port()?);
        gossip.insert(name, free_port()?);
    }
    let front_keys = write_keys(&dir)?;
    write_configs(&dir, &ports, &gossip)?;
    let mut cluster = Cluster {
        dir: dir.clone(),
        children: BTreeMap::new(),
    };
    for w in ["w1", "w2", "w3"] {
        cluster.spawn(w)?;
    }
    println!(
        "started 3 container processes (w1, w2, w3) on 127.0.0.1, every connection CURVE-encrypted; configs, keys and logs in {}",
        dir.display()
    );

    let rt = Runtime::new()?;
    let result: anyhow::Result<Vec<String>> = rt.block_on(async {
        // The front is a seed itself; it has no peers configured either.
        let endpoint = format!("tcp://127.0.0.1:{}", ports["front"]);
        let curve = CurveSecurity::with_allow_list_file(front_keys, dir.join("allow.toml"))?;
        let transport = ZmqTransport::bind(
            ZmqConfig::new("front")
                .listen(endpoint.clone())
                .curve(curve),
        )?;
        let generation = time::wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(1));
        // Discovery is on: components are learnt from membership, not from
        // directories on the data plane.
        let node = Node::start(
            NodeConfig::new("front")
                .generation(generation)
                .static_directories(false),
            transport.clone(),
        )?;
        let gossip_addr: std::net::SocketAddr = format!("127.0.0.1:{}", gossip["front"]).parse()?;
        let me = Identity {
            name: "front".into(),
            generation,
            addr: gossip_addr,
        };
        let ring = Keyring::new(1, KEY.parse()?);
        let core = Membership::new(GossipConfig::new("cluster-demo"), ring, me, generation)?;
        let discovery = Discovery::start(core, UdpSocket::bind(gossip_addr)?, &[]);
        tern::membership::use_discovery(&node, &discovery, Some(&endpoint));
        let t0 = time::now();
        while discovery
            .members()
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .count()
            < 4
        {
            if time::now().saturating_duration_since(t0) > Duration::from_secs(15) {
                bail!(
                    "the workers did not join within 15 s:\n{}",
                    members(&discovery)
                );
            }
            time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "membership after {:.1} s (found from the seed list alone):\n{}",
            time::now().saturating_duration_since(t0).as_secs_f64(),
            members(&discovery)
        );
        let table = members_command(&dir.join("w1.toml")).await?;
        println!("`cluster_demo members --config w1.toml`, from another process:\n{table}");
        for name in ["front", "w1", "w2", "w3"] {
            if !table
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name))
            {
                bail!("the members command does not list {name}");
            }
        }
        let mut seq = 0;
        let mut lines = Vec::new();
        let mut p = drive(&node, Duration::from_secs(3), &mut seq).await;
        lines.push(p.line("1. all up (3 s)"));
        let healthy = p.answered;
        cluster.signal("w2", nix::sys::signal::Signal::SIGKILL)?;
        println!("SIGKILL w2 (worker-2)");
        let mut p = drive(&node, Duration::from_secs(3), &mut seq).await;
        lines.push(p.line("2. w2 killed (3 s)"));
        let outage_errors: u64 = p.errors.values().sum();
        if let Some(mut c) = cluster.children.remove("w2") {
            let _ = c.wait();
        }
        cluster.spawn("w2")?;
        println!("restarted w2 (a new generation)");
        let mut p = drive(&node, Duration::from_secs(4), &mut seq).await;
        lines.push(p.line("3. w2 restarted (4 s)"));
        let recovered = p.by.get("worker-2").copied().unwrap_or(0);
        println!("membership after the restart:\n{}", members(&discovery));
        for w in ["w1", "w2", "w3"] {
            cluster.signal(w, nix::sys::signal::Signal::SIGTERM)?;
        }
        println!("SIGTERM w1, w2, w3: they leave the cluster gracefully");
        let t0 = time::now();
        let gone = |d: &Discovery| {
            d.members()
                .iter()
                .filter(|m| m.state == MemberState::Left)
                .count()
        };
        while gone(&discovery) < 3
            && time::now().saturating_duration_since(t0) < Duration::from_secs(10)
        {
            time::sleep(Duration::from_millis(50)).await;
        }
        println!("membership after the leave:\n{}", members(&discovery));
        let left = gone(&discovery);
        let failed = discovery
            .members()
            .iter()
            .filter(|m| m.state == MemberState::Dead && m.name != "w2")
            .count();
        discovery.stop();
        node.shutdown();
        transport.close();
        if left != 3 || failed != 0 {
            bail!("{left} of 3 workers recorded as left, {failed} as failed");
        }
        if healthy == 0 {
            bail!("no ask was answered while every node was up");
        }
        if outage_errors == 0 {
            bail!("killing w2 produced no typed error");
        }
        if recovered == 0 {
            bail!("the restarted worker-2 answered nothing");
        }
        Ok(lines)
    });
    let lines = result?;
    for l in &lines {
        println!("{l}");
    }
    let mut clean = true;
    for (w, child) in &mut cluster.children {
        let status = child.wait()?;
        println!("SIGTERM {w}: exited with {status}");
        clean &= status.success();
    }
    cluster.children.clear();
    if !clean {
        bail!(
            "a container did not exit cleanly; see the logs in {}",
            dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("every container stopped cleanly; no process left behind");
    Ok(())
}

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    match first.as_deref() {
        None | Some("demo") => {
            tern_examples::init_logging();
            match demo() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    println!("demo failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        // Every other command is the application's own (`run`, `node`, `check-config`,
        // `print-config`, `members`, `--help`); it answers an unknown one itself.
        Some(_) => app().main(),
    }
}
