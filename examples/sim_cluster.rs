//! Five containers of one `App` on the deterministic simulator (`tern::app::SimCluster`,
//! each started from its configuration file, gossip included): a front fans work out
//! to four workers by name, while the network partitions, a worker crashes and
//! restarts, and another worker stops for good. Every delivery promise is checked as
//! the run goes.
//!
//! ```text
//! cargo run --release --example sim_cluster -- --seed 7          # one run; last line: trace-hash
//! cargo run --release --example sim_cluster -- --seed 7 --check  # the same seed twice, in one process
//! cargo run --release --example sim_cluster -- --seeds 0..200 --jobs 2   # a sweep in child processes
//! cargo run --release --example sim_cluster -- --seed 7 --trace-out trace.json  # a timeline
//! ```
//!
//! The same seed prints the same `trace-hash` every time, in one process or in two;
//! a failing run prints a one-line repro and writes its scenario to
//! `target/sim-failures/`. `SIM_SEEDS=a..b` and `SIM_JOBS=n` work like `--seeds` and
//! `--jobs`; `SIM_CHECK_DETERMINISM=1` like `--check`. `--plant-resend R` plants a bug
//! (at round R the front resends the previous message to w1) to show the checkers
//! catching it and the repro line replaying it.
//!
//! `--trace-out FILE` writes the run's timeline as Chrome trace event JSON: one process
//! per node, sends linked to their deliveries by flow arrows, faults as instant events,
//! at virtual time. Open it in <https://ui.perfetto.dev> or `chrome://tracing`; both
//! read the file locally, nothing is uploaded. At most `--trace-cap N` events are kept
//! (default 200000); past that the file says `"truncated":true` in `otherData`. The
//! same seed writes the same bytes, and keeping the timeline leaves the trace hash as
//! it is.

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use tern_examples::cluster::{self, Report, Scenario};

struct Args {
    seed: u64,
    seeds: Option<(u64, u64)>,
    jobs: usize,
    short: bool,
    check: bool,
    line: bool,
    plant_resend: Option<u64>,
    trace_out: Option<std::path::PathBuf>,
    trace_cap: usize,
}

/// The most timeline events `--trace-out` keeps by default (about 25 MB of JSON).
const TRACE_CAP: usize = 200_000;

fn parse_range(s: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = s
        .split_once("..")
        .with_context(|| format!("seed range {s:?}: expected a..b"))?;
    let (a, b) = (a.parse()?, b.parse()?);
    if a >= b {
        bail!("seed range {s:?} is empty");
    }
    Ok((a, b))
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        seed: 1,
        seeds: std::env::var("SIM_SEEDS")
            .ok()
            .map(|s| parse_range(&s))
            .transpose()?,
        jobs: std::env::var("SIM_JOBS")
            .ok()
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(2),
        short: false,
        check: std::env::var("SIM_CHECK_DETERMINISM").is_ok_and(|v| v == "1"),
        line: false,
        plant_resend: None,
        trace_out: None,
        trace_cap: TRACE_CAP,
    };
    if let Ok(seed) = std::env::var("SIM_SEED") {
        args.seed = seed.parse().context("SIM_SEED")?;
    }
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => args.seed = it.next().context("--seed needs a number")?.parse()?,
            "--seeds" => args.seeds = Some(parse_range(&it.next().context("--seeds needs a..b")?)?),
            "--jobs" => args.jobs = it.next().context("--jobs needs a number")?.parse()?,
            "--short" => args.short = true,
            "--check" => args.check = true,
            "--line" => args.line = true,
            "--plant-resend" => {
                args.plant_resend =
                    Some(it.next().context("--plant-resend needs a round")?.parse()?);
            }
            "--trace-out" => {
                args.trace_out = Some(it.next().context("--trace-out needs a file")?.into());
            }
            "--trace-cap" => {
                args.trace_cap = it.next().context("--trace-cap needs a number")?.parse()?;
            }
            other => bail!("unknown argument {other:?} (see the example's docs)"),
        }
    }
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    if args.trace_out.is_some() && args.seeds.is_some() {
        bail!("--trace-out writes one run's timeline: use it with --seed, not --seeds");
    }
    if args.trace_cap == 0 {
        bail!("--trace-cap must be at least 1");
    }
    Ok(args)
}

fn scenario(args: &Args, seed: u64) -> Scenario {
    let base = if args.short {
        Scenario::short(seed)
    } else {
        Scenario::new(seed)
    };
    Scenario {
        plant_resend_at: args.plant_resend,
        ..base
    }
}

/// Writes a failing run's scenario where the repro line says.
fn dump(report: &Report) -> anyhow::Result<String> {
    let dir = std::path::Path::new("target/sim-failures");
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("seed-{}.txt", report.scenario.seed));
    std::fs::write(
        &path,
        format!(
            "{:#?}\n\n{report}\nrepro: {}\n",
            report.scenario,
            report.repro()
        ),
    )?;
    Ok(path.display().to_string())
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        )
}

fn one(args: &Args) -> anyhow::Result<bool> {
    let s = scenario(args, args.seed);
    let cap = if args.trace_out.is_some() {
        args.trace_cap
    } else {
        0
    };
    let (report, chrome) = cluster::run_with_timeline(&s, cap);
    if let (Some(path), Some(json)) = (&args.trace_out, chrome) {
        std::fs::write(path, json).with_context(|| format!("--trace-out {}", path.display()))?;
        eprintln!("timeline written to {}", path.display());
    }
    if args.line {
        // One line for the sweep runner: seed, verdict, hash, virtual end, events.
        println!(
            "{}\t{}\t{}\t{:.3}\t{}",
            s.seed,
            if report.passed() { "pass" } else { "FAIL" },
            report.trace_hash,
            report.virtual_end.as_nanos() as f64 / 1e9,
            report.events
        );
        return Ok(report.passed());
    }
    print!("{report}");
    let mut ok = report.passed();
    if args.check {
        let again = cluster::run(&s);
        if again.trace_hash == report.trace_hash {
            println!("determinism: a second run in this process gave the same trace hash");
        } else {
            println!(
                "determinism: FAILED: a second run gave {}",
                again.trace_hash
            );
            ok = false;
        }
    }
    if !ok {
        let path = dump(&report)?;
        println!(
            "FAILED. repro: {} (commit {}); scenario in {path}",
            report.repro(),
            commit()
        );
    }
    println!("trace-hash: {}", report.trace_hash);
    Ok(ok)
}

fn sweep(args: &Args, (from, to): (u64, u64)) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    let start_child = |seed: u64| -> anyhow::Result<(u64, Child)> {
        let mut cmd = Command::new(&exe);
        cmd.args(["--seed", &seed.to_string(), "--line"])
            .stdout(Stdio::piped());
        if args.short {
            cmd.arg("--short");
        }
        if let Some(r) = args.plant_resend {
            cmd.args(["--plant-resend", &r.to_string()]);
        }
        // The children must not sweep again.
        cmd.env_remove("SIM_SEEDS").env_remove("SIM_SEED");
        Ok((seed, cmd.spawn()?))
    };
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    let mut running: Vec<(u64, Child)> = Vec::new();
    let mut next = from;
    while next < to || !running.is_empty() {
        while next < to && running.len() < args.jobs {
            running.push(start_child(next)?);
            next += 1;
        }
        let (seed, child) = running.remove(0);
        let out = child.wait_with_output()?;
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || !line.contains("\tpass\t") {
            failed.push(seed);
        }
        lines.push(if line.is_empty() {
            format!("{seed}\tFAIL\t-\t-\t-")
        } else {
            line
        });
    }
    let hashes: BTreeSet<&str> = lines.iter().filter_map(|l| l.split('\t').nth(2)).collect();
    std::fs::create_dir_all("target")?;
    let mut out = std::fs::File::create("target/sim-sweep.tsv")?;
    writeln!(out, "seed\tverdict\ttrace_hash\tvirtual_s\tevents")?;
    for l in &lines {
        writeln!(out, "{l}")?;
    }
    println!(
        "sweep of seeds {from}..{to} ({} jobs): {} passed, {} failed, {} distinct trace hashes; table in target/sim-sweep.tsv",
        args.jobs,
        lines.len() - failed.len(),
        failed.len(),
        hashes.len()
    );
    for seed in &failed {
        let s = scenario(args, *seed);
        let r = cluster::run(&s);
        let path = dump(&r)?;
        println!(
            "FAILED seed {seed}. repro: {} (commit {}); scenario in {path}",
            r.repro(),
            commit()
        );
    }
    Ok(failed.is_empty())
}

fn main() -> anyhow::Result<()> {
    tern_examples::init_logging_at(tracing_subscriber::filter::LevelFilter::ERROR);
    let args = args()?;
    let ok = match args.seeds {
        Some(range) => sweep(&args, range)?,
        None => one(&args)?,
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
