//! The membership targets T1–T10 of `docs/design/gossip.md` §2b on the deterministic
//! simulator (the scenarios are in `examples/gossip.rs`).
//!
//! ```text
//! cargo run --release --example gossip_sim -- --target T2 --n 100 --seed 7
//! cargo run --release --example gossip_sim -- --target all --n 100 --seeds 0..100 --jobs 2
//! ```
//!
//! A sweep runs each seed in a child process (all the targets of `--target` for that
//! seed), prints one line per run, writes them to `target/gossip-sweep.tsv`, then a
//! summary per target: every metric's p50/p99/max over the seeds and pass/fail against
//! §2b. A failing run prints a one-line repro. The exit status is 1 if any target
//! fails. `SIM_SEED=s` works like `--seed s`; `--summarize FILE` prints the summary of
//! result lines saved from earlier runs.

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use tern_examples::gossip::{self, Outcome, TARGETS};

struct Args {
    targets: Vec<String>,
    n: usize,
    seed: u64,
    seeds: Option<(u64, u64)>,
    jobs: usize,
    line: bool,
    summarize: Option<String>,
}

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
        targets: TARGETS.iter().map(|t| (*t).to_owned()).collect(),
        n: 100,
        seed: 1,
        seeds: None,
        jobs: 2,
        line: false,
        summarize: None,
    };
    if let Ok(seed) = std::env::var("SIM_SEED") {
        args.seed = seed.parse().context("SIM_SEED")?;
    }
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => {
                let t = it.next().context("--target needs T1..T10 or all")?;
                args.targets = if t == "all" {
                    TARGETS.iter().map(|t| (*t).to_owned()).collect()
                } else {
                    let list: Vec<String> = t.split(',').map(str::to_owned).collect();
                    for t in &list {
                        if !TARGETS.contains(&t.as_str()) {
                            bail!("unknown target {t:?}; one of {TARGETS:?} or all");
                        }
                    }
                    list
                };
            }
            "--n" => args.n = it.next().context("--n needs a number")?.parse()?,
            "--seed" => args.seed = it.next().context("--seed needs a number")?.parse()?,
            "--seeds" => args.seeds = Some(parse_range(&it.next().context("--seeds needs a..b")?)?),
            "--jobs" => args.jobs = it.next().context("--jobs needs a number")?.parse()?,
            "--line" => args.line = true,
            "--summarize" => args.summarize = Some(it.next().context("--summarize needs a file")?),
            other => bail!("unknown argument {other:?} (see the example's docs)"),
        }
    }
    if args.jobs == 0 || args.n < 8 {
        bail!("--jobs must be at least 1 and --n at least 8");
    }
    Ok(args)
}

fn one(args: &Args) -> bool {
    let mut ok = true;
    for t in &args.targets {
        let o = gossip::run(t, args.seed, args.n);
        if args.line {
            println!("{}", o.line());
        } else {
            println!("{}", o.line());
            if !o.passed() {
                println!("FAILED. repro: {}", o.repro());
            }
        }
        ok &= o.passed();
    }
    ok
}

fn sweep(args: &Args, (from, to): (u64, u64)) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    let targets = args.targets.join(",");
    let start_child = |seed: u64| -> anyhow::Result<(u64, Child)> {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--seed",
            &seed.to_string(),
            "--n",
            &args.n.to_string(),
            "--target",
            &targets,
            "--line",
        ])
        .stdout(Stdio::piped())
        .env_remove("SIM_SEED");
        Ok((seed, cmd.spawn()?))
    };
    // Wall time of the sweep, for its cost line.
    let clock = tern::executor::Clock::real();
    let started = clock.now();
    let mut runs: Vec<Outcome> = Vec::new();
    let mut running: Vec<(u64, Child)> = Vec::new();
    let mut next = from;
    while next < to || !running.is_empty() {
        while next < to && running.len() < args.jobs {
            running.push(start_child(next)?);
            next += 1;
        }
        let (seed, child) = running.remove(0);
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut got: Vec<String> = Vec::new();
        for l in text.lines() {
            if let Some(o) = Outcome::parse(l) {
                println!("{l}");
                got.push(o.target.clone());
                runs.push(o);
            }
        }
        // A child that died (a panic) fails the targets it did not report.
        for t in &args.targets {
            if !got.contains(t) {
                let o = Outcome {
                    target: t.clone(),
                    seed,
                    n: args.n,
                    metrics: Vec::new(),
                    fails: vec![format!("no result (child exit {})", out.status)],
                };
                println!("{}", o.line());
                runs.push(o);
            }
        }
    }
    std::fs::create_dir_all("target")?;
    let mut f = std::fs::File::create("target/gossip-sweep.tsv")?;
    writeln!(f, "target\tseed\tn\tverdict\tmetrics\tfailures")?;
    for o in &runs {
        writeln!(f, "{}", o.line())?;
    }
    println!();
    let mut all_ok = true;
    for t in &args.targets {
        let mine: Vec<Outcome> = runs.iter().filter(|o| &o.target == t).cloned().collect();
        let (text, ok) = gossip::summary(t, &mine);
        print!("{text}");
        for o in mine.iter().filter(|o| !o.passed()) {
            println!(
                "  FAILED seed {}: {}. repro: {}",
                o.seed,
                o.fails.join("; "),
                o.repro()
            );
        }
        all_ok &= ok;
    }
    println!(
        "sweep of seeds {from}..{to} at N={} ({} jobs) in {:.0} s: {}; table in target/gossip-sweep.tsv",
        args.n,
        args.jobs,
        (clock.now() - started).as_secs_f64(),
        if all_ok {
            "every target passed"
        } else {
            "SOME TARGETS FAILED"
        }
    );
    Ok(all_ok)
}

/// The summary of result lines saved earlier (a sweep's output or its TSV).
fn summarize(args: &Args, file: &str) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let runs: Vec<Outcome> = text.lines().filter_map(Outcome::parse).collect();
    let mut all_ok = true;
    for t in &args.targets {
        let mine: Vec<Outcome> = runs.iter().filter(|o| &o.target == t).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        let (text, ok) = gossip::summary(t, &mine);
        print!("{text}");
        for o in mine.iter().filter(|o| !o.passed()) {
            println!(
                "  FAILED seed {}: {}. repro: {}",
                o.seed,
                o.fails.join("; "),
                o.repro()
            );
        }
        all_ok &= ok;
    }
    Ok(all_ok)
}

fn main() -> anyhow::Result<()> {
    tern_examples::init_logging_at(tracing_subscriber::filter::LevelFilter::ERROR);
    let args = args()?;
    let ok = if let Some(file) = &args.summarize {
        summarize(&args, file)?
    } else {
        match args.seeds {
            Some(range) => sweep(&args, range)?,
            None => one(&args),
        }
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}
