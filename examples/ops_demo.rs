//! A circuit breaker and a live capacity change, on real processes.
//!
//! ```text
//! cargo run --release --example ops_demo
//! ```
//!
//! The demo starts a worker container as a separate process on 127.0.0.1 (ZeroMQ, no
//! keys: plaintext on loopback) and drives it from a front in its own process:
//!
//! 1. **healthy**: the front asks the worker's `dep` component; every ask is answered.
//! 2. **dependency fails**: `dep` starts hanging; after 5 timed-out asks the front's
//!    breaker opens, and calls fail at once with `CircuitOpen { retry_after }` instead
//!    of waiting for their deadline. Each probe (one call per open period, with its
//!    own deadline) fails and the breaker opens again, for longer.
//! 3. **heals**: `dep` answers again; the next probe succeeds and the breaker closes.
//! 4. **live capacity change**: 32 callers load the worker. The demo rewrites the
//!    worker's limits file with `ingress.max=4` and sends it SIGHUP: the worker
//!    applies it without a restart, and the excess is refused at once with a typed
//!    error (a full mailbox, which is not a breaker failure) while nothing admitted is
//!    lost; then `ingress.max` is lifted again and the refusals stop as the adaptive
//!    limit grows back, one step per window (no burst).
//!
//! It prints what it saw in each phase, checks it, stops the worker with SIGTERM
//! (exit 0), and leaves no process behind.

#![allow(clippy::print_stdout)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tern::app::Hangup;
use tern::executor::time;
use tern::ops::{BreakerConfig, BreakerState, IngressConfig};
use tern::remote::prelude::*;

/// Work for `dep`: answered with the same number.
#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "demo.v1.Work", codec = Json)]
struct Work(u64);

/// Tells `control` to break `dep` (it hangs) or heal it.
#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "demo.v1.SetBroken", codec = Json)]
struct SetBroken(bool);

/// Tells `control` to stop the worker process (exit 0).
#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "demo.v1.Quit", codec = Json)]
struct Quit;

/// The dependency: hangs while broken, else takes 2 ms per call.
struct Dep {
    broken: Rc<std::cell::Cell<bool>>,
}
impl Actor for Dep {}
impl Handler<Work> for Dep {
    type Reply = u64;
    async fn handle(&mut self, w: Work, _: &mut Context<Self>) -> u64 {
        // Broken: hangs until healed.
        while self.broken.get() {
            time::sleep(Duration::from_millis(10)).await;
        }
        time::sleep(Duration::from_millis(2)).await;
        w.0
    }
}

/// Breaks and heals `dep` (a separate component, so its tells never meet dep's
/// breaker).
struct Control {
    broken: Rc<std::cell::Cell<bool>>,
    quit: Rc<std::cell::Cell<bool>>,
}
impl Actor for Control {}
impl Handler<Quit> for Control {
    type Reply = ();
    async fn handle(&mut self, _: Quit, _: &mut Context<Self>) {
        self.quit.set(true);
    }
}
impl Handler<SetBroken> for Control {
    type Reply = ();
    async fn handle(&mut self, m: SetBroken, _: &mut Context<Self>) {
        self.broken.set(m.0);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(tern::transport::loopback_port()?)
}

/// The worker process (`ops_demo worker LISTEN FRONT LIMITS`).
fn worker(listen: &str, front: &str, limits: &Path) -> anyhow::Result<()> {
    let rt = Runtime::new()?;
    rt.block_on(async {
        let transport = ZmqTransport::bind(
            ZmqConfig::new("worker")
                .plaintext()
                .listen(listen)
                .peer("front", front),
        )?;
        let config = NodeConfig::new("worker").peers(["front"]).ingress(
            IngressConfig::enabled(64)
                .bounds(1, 256)
                .window(Duration::from_millis(100))
                .target_delay(Duration::from_millis(500)),
        );
        let node = Node::start(config, transport.clone())?;
        let broken = Rc::new(std::cell::Cell::new(false));
        let dep = spawn(Dep {
            broken: broken.clone(),
        });
        node.export("dep", &dep)?.accept::<Work>();
        let quit = Rc::new(std::cell::Cell::new(false));
        let control = spawn(Control {
            broken,
            quit: quit.clone(),
        });
        node.export("control", &control)?
            .accept::<SetBroken>()
            .accept::<Quit>();
        let hangup = Hangup::install()?;
        let _reload = tern::executor::spawn({
            let node = node.clone();
            let limits = limits.to_owned();
            async move { hangup.reload_limits(&node, &limits).await }
        });
        let mut ticks = 0u32;
        while !quit.get() {
            time::sleep(Duration::from_millis(20)).await;
            ticks += 1;
            if ticks.is_multiple_of(25) {
                // Twice a second, into the worker's log.
                eprintln!(
                    "worker ingress limit {:?}, shed {}",
                    node.ingress_limit(),
                    node.stats().admission.ingress_shed
                );
            }
        }
        node.shutdown();
        transport.close();
        anyhow::Ok(())
    })
}

struct Child1 {
    child: Option<Child>,
}

impl Drop for Child1 {
    fn drop(&mut self) {
        // Never leave a process behind, whatever happened.
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    nix::sys::signal::kill(pid, sig)?;
    Ok(())
}

/// What one phase saw.
#[derive(Debug, Default)]
struct Seen {
    by: BTreeMap<String, u64>,
    /// Latency of refusals by an open breaker, microseconds (the largest).
    fast_fail_us: u64,
}

impl Seen {
    fn count(&mut self, r: &Result<u64, CallError>) {
        let k = match r {
            Ok(_) => "answered".to_owned(),
            Err(CallError::CircuitOpen { .. }) => "CircuitOpen".to_owned(),
            Err(e) => format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("?")
                .to_owned(),
        };
        *self.by.entry(k).or_default() += 1;
    }

    fn get(&self, k: &str) -> u64 {
        self.by.get(k).copied().unwrap_or(0)
    }
}

/// Asks `dep` one at a time for `span`, printing breaker transitions.
async fn sequential(node: &Node, dep: &Ref<Dep>, span: Duration, seq: &mut u64) -> Seen {
    let mut seen = Seen::default();
    let start = time::now();
    let mut last = node.breaker_state("dep");
    while time::now().saturating_duration_since(start) < span {
        *seq += 1;
        let t0 = time::now();
        let r = dep
            .ask(Work(*seq))
            .timeout(Duration::from_millis(300))
            .await;
        let took = time::now().saturating_duration_since(t0);
        if let Err(CallError::CircuitOpen { .. }) = r {
            let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            seen.fast_fail_us = seen.fast_fail_us.max(us);
        }
        seen.count(&r);
        let state = node.breaker_state("dep");
        if state != last {
            let at = time::now().saturating_duration_since(start).as_secs_f64();
            println!(
                "  +{at:5.2} s  breaker {last:?} -> {state:?} (after {:?})",
                r.map(|_| ())
            );
            last = state;
        }
        time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// 32 callers asking at once for `span`.
async fn loaded(dep: &Ref<Dep>, span: Duration, seq: &mut u64) -> Seen {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let base = *seq;
    let tasks: Vec<_> = (0..32u64)
        .map(|c| {
            let (dep, seen) = (dep.clone(), seen.clone());
            tern::executor::spawn(async move {
                let start = time::now();
                let mut i = 0;
                while time::now().saturating_duration_since(start) < span {
                    i += 1;
                    let ask = dep
                        .ask(Work(base + c * 100_000 + i))
                        .timeout(Duration::from_secs(2));
                    let r = ask.into_future().await;
                    let refused = r.is_err();
                    seen.borrow_mut().count(&r);
                    if refused {
                        time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    *seq += 32 * 100_000;
    Rc::try_unwrap(seen)
        .map(RefCell::into_inner)
        .unwrap_or_default()
}

fn write_limits(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn front() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::temp_dir().join(format!("tern-ops-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let limits = dir.join("worker-limits.txt");
    write_limits(&limits, "# the worker's limits, applied on SIGHUP\n")?;
    let (fp, wp) = (free_port()?, free_port()?);
    let (front_ep, worker_ep) = (
        format!("tcp://127.0.0.1:{fp}"),
        format!("tcp://127.0.0.1:{wp}"),
    );
    let log = std::fs::File::create(dir.join("worker.log"))?;
    let mut worker = Child1 {
        child: Some(
            Command::new(std::env::current_exe()?)
                .args(["worker", &worker_ep, &front_ep])
                .arg(&limits)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting the worker")?,
        ),
    };
    println!(
        "started the worker process on {worker_ep}; its log: {}",
        dir.join("worker.log").display()
    );
    let rt = Runtime::new()?;
    let result = rt.block_on(async {
        let transport = ZmqTransport::bind(
            ZmqConfig::new("front")
                .plaintext()
                .listen(&front_ep)
                .peer("worker", &worker_ep),
        )?;
        let breaker = BreakerConfig::default()
            .open_for(Duration::from_millis(500))
            .max_open_for(Duration::from_secs(2))
            .probe_deadline(Duration::from_millis(400));
        let node = Node::start(
            NodeConfig::new("front").peers(["worker"]).breaker(breaker),
            transport.clone(),
        )?;
        let dep = node.lookup::<Dep>("dep");
        let control = node.lookup::<Control>("control");
        let mut seq = 0;
        // Wait for the worker to be up (its first answer).
        let t0 = time::now();
        while dep
            .ask(Work(0))
            .timeout(Duration::from_millis(500))
            .await
            .is_err()
        {
            if time::now().saturating_duration_since(t0) > Duration::from_secs(15) {
                bail!("the worker did not answer within 15 s");
            }
        }
        println!("1. healthy (1 s)");
        let healthy = sequential(&node, &dep, Duration::from_secs(1), &mut seq).await;
        println!("   {:?}", healthy.by);
        println!("2. dep hangs (4 s): asks time out after 300 ms, then the breaker opens");
        control
            .tell(SetBroken(true))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let broken = sequential(&node, &dep, Duration::from_secs(4), &mut seq).await;
        println!(
            "   {:?}; an open breaker refused in at most {} µs",
            broken.by, broken.fast_fail_us
        );
        println!("3. dep heals (4 s): the next probe succeeds and the breaker closes");
        control
            .tell(SetBroken(false))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let healed = sequential(&node, &dep, Duration::from_secs(4), &mut seq).await;
        println!("   {:?}", healed.by);
        let closed_at_end = node.breaker_state("dep") == BreakerState::Closed;
        println!("4. live capacity change on the worker process, 32 callers");
        let before = loaded(&dep, Duration::from_secs(1), &mut seq).await;
        println!("   ingress unlimited (1 s): {:?}", before.by);
        write_limits(&limits, "ingress.max=4\n")?;
        signal(
            worker.child.as_ref().context("worker")?,
            nix::sys::signal::Signal::SIGHUP,
        )?;
        time::sleep(Duration::from_millis(200)).await;
        let lowered = loaded(&dep, Duration::from_secs(1), &mut seq).await;
        println!("   `ingress.max=4` + SIGHUP (1 s): {:?}", lowered.by);
        write_limits(&limits, "# lifted again\n")?;
        signal(
            worker.child.as_ref().context("worker")?,
            nix::sys::signal::Signal::SIGHUP,
        )?;
        // No burst: the adaptive limit grows back by one per 100 ms window.
        let mut lifted = Seen::default();
        for second in 1..=4 {
            lifted = loaded(&dep, Duration::from_secs(1), &mut seq).await;
            println!("   lifted + SIGHUP, second {second}: {:?}", lifted.by);
        }
        println!("front's breaker counters: {:?}", node.stats().admission);
        control
            .tell(Quit)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        time::sleep(Duration::from_millis(100)).await;
        node.shutdown();
        transport.close();
        if healthy.get("answered") == 0 || healthy.by.len() != 1 {
            bail!("the healthy phase was not all answered: {:?}", healthy.by);
        }
        if broken.get("CircuitOpen") == 0 || broken.get("Timeout") > 12 {
            bail!(
                "the breaker did not open on the failing dependency: {:?}",
                broken.by
            );
        }
        if healed.get("answered") == 0 || !closed_at_end {
            bail!(
                "the breaker did not close after the dependency healed: {:?}",
                healed.by
            );
        }
        let full = |s: &Seen| s.get("MailboxFull");
        // By the fourth second after the lift, the limit has grown back (nearly) past
        // the 32 callers.
        if full(&before) != 0 || full(&lowered) == 0 || full(&lifted) * 10 > full(&lowered) {
            bail!(
                "the capacity change did not show: {:?} / {:?} / {:?}",
                before.by,
                lowered.by,
                lifted.by
            );
        }
        for s in [&before, &lowered, &lifted] {
            let other =
                s.by.iter()
                    .filter(|(k, _)| *k != "answered" && *k != "MailboxFull");
            if let Some((k, n)) = other.into_iter().next() {
                bail!("an admitted ask failed under load: {n} × {k}");
            }
        }
        Ok(())
    });
    let child = worker.child.as_mut().context("worker")?;
    // Told to quit; killed (and reported) if it has not exited within 5 s.
    let mut status = None;
    for _ in 0..100 {
        status = child.try_wait()?;
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if result.is_ok() && std::env::var_os("OPS_DEMO_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result?;
    let Some(status) = status else {
        bail!("the worker did not exit within 5 s of being told to quit");
    };
    worker.child = None;
    println!("worker exited: {status}");
    if !status.success() {
        bail!("the worker failed: {status}");
    }
    println!("ops_demo: ok");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let run = match args.get(1).map(String::as_str) {
        Some("worker") if args.len() == 5 => {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .try_init();
            worker(&args[2], &args[3], Path::new(&args[4]))
        }
        None => front(),
        Some(_) => {
            eprintln!(
                "usage: ops_demo            (runs the demo)\n       ops_demo worker LISTEN FRONT LIMITS_FILE"
            );
            return ExitCode::from(2);
        }
    };
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ops_demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}
