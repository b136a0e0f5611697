//! Judging a sweep: each target's bounds over the runs of all seeds.

use super::*;

/// Bounds tern misses today, each explained in BENCHMARKS.md ("Membership (gossip) in
/// the simulator"): they are printed as `MISS` and do not fail a sweep. Every other
/// bound does. Remove an entry once the bound holds.
const KNOWN_MISSES: &[(&str, &str)] = &[
    // Round-robin probing suspects at the end of the probe period: ~2 T on average.
    ("T2", "first suspicion mean <= 1.6 T"),
    ("T2", "first suspicion p99 <= 5 T"),
    // The simulator's pause freezes a node instead of slowing it, so stalls cause
    // almost no false positives with or without Lifeguard and the ratio cannot show.
    ("T3b", "false positives SWIM / Lifeguard >= 50 (totals)"),
];

/// Percentile `p` (0–1) of `v` (nearest rank).
#[must_use]
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

fn values(runs: &[Outcome], name: &str) -> Vec<f64> {
    runs.iter().filter_map(|o| o.get(name)).collect()
}

/// The aggregate checks of one target over its runs: (what, measured, pass).
#[must_use]
pub fn judge(target: &str, runs: &[Outcome]) -> Vec<(String, String, bool)> {
    let n = runs.first().map_or(0, |o| o.n);
    #[allow(clippy::cast_precision_loss)]
    let scale = (n as f64).log10().max(1.0);
    let smin = 4.0 * scale;
    let smax = 6.0 * smin;
    let mut out = Vec::new();
    let mut check = |what: &str, v: f64, ok: bool| {
        out.push((what.to_owned(), format!("{v:.2}"), ok));
    };
    let p = |name: &str, q: f64| pct(&values(runs, name), q);
    let mean = |name: &str| {
        let v = values(runs, name);
        #[allow(clippy::cast_precision_loss)]
        let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
        m
    };
    let sum = |name: &str| values(runs, name).iter().sum::<f64>();
    match target {
        "T1" => {
            check(
                "99.9 % reached in <= 9 rounds (p99)",
                p("rounds_999", 0.99),
                p("rounds_999", 0.99) <= 9.0,
            );
            check(
                "100 % reached in <= 12 rounds (p99)",
                p("rounds_100", 0.99),
                p("rounds_100", 0.99) <= 12.0,
            );
        }
        "T1b" => {
            check(
                "10 % loss: 100 % in <= 13 rounds (p99)",
                p("rounds_100", 0.99),
                p("rounds_100", 0.99) <= 13.0,
            );
        }
        "T2" => {
            check(
                "first suspicion mean <= 1.6 T",
                mean("first_suspect_s"),
                mean("first_suspect_s") <= 1.6,
            );
            check(
                "first suspicion p99 <= 5 T",
                p("first_suspect_s", 0.99),
                p("first_suspect_s", 0.99) <= 5.0,
            );
            check(
                &format!(
                    "all dead median <= suspicion_min + 4 s ({:.0} s)",
                    smin + 4.0
                ),
                p("all_dead_s", 0.5),
                p("all_dead_s", 0.5) <= smin + 4.0,
            );
            check(
                "all dead p99 <= 25 s",
                p("all_dead_s", 0.99),
                p("all_dead_s", 0.99) <= 25.0,
            );
            check(
                &format!(
                    "all dead max <= suspicion_max + 10 s ({:.0} s)",
                    smax + 10.0
                ),
                p("all_dead_s", 1.0),
                p("all_dead_s", 1.0) <= smax + 10.0,
            );
        }
        "T3a" => {
            check(
                "false dead at 1 % loss (total) = 0",
                sum("false_dead"),
                sum("false_dead") == 0.0,
            );
            check(
                "suspicions per hour (mean) <= 10",
                mean("suspicions_per_hour"),
                mean("suspicions_per_hour") <= 10.0,
            );
            check(
                "false dead at 5 % loss (total) = 0",
                sum("false_dead_5pct"),
                sum("false_dead_5pct") == 0.0,
            );
        }
        "T3b" => {
            let (on, off) = (sum("fp_lifeguard"), sum("fp_swim"));
            let ratio = if on == 0.0 { f64::INFINITY } else { off / on };
            check(
                "false positives SWIM / Lifeguard >= 50 (totals)",
                ratio,
                ratio >= 50.0 || (on == 0.0 && off == 0.0),
            );
            let (lg, sw) = (p("detect_lifeguard_s", 0.5), p("detect_swim_s", 0.5));
            check(
                "median detection, Lifeguard / SWIM <= 1.2",
                lg / sw,
                lg <= 1.2 * sw,
            );
        }
        "T3c" => {
            check(
                "healthy declared dead (total) = 0",
                sum("healthy_dead"),
                sum("healthy_dead") == 0.0,
            );
            check(
                &format!("detached dead everywhere max <= suspicion_max ({smax:.0} s)"),
                p("detached_dead_s", 1.0),
                p("detached_dead_s", 1.0) <= smax,
            );
        }
        "T4" => {
            check(
                "all see all alive max <= 30 s",
                p("all_alive_s", 1.0),
                p("all_alive_s", 1.0) <= 30.0,
            );
            check(
                "clusters max = 1",
                p("clusters", 1.0),
                p("clusters", 1.0) == 1.0,
            );
        }
        "T4b" => {
            check(
                "joiner sees 99 % p99 <= 3 s",
                p("joiner_sees_99_s", 0.99),
                p("joiner_sees_99_s", 0.99) <= 3.0,
            );
            check(
                "all see joiner p99 <= 12 rounds",
                p("all_see_joiner_rounds", 0.99),
                p("all_see_joiner_rounds", 0.99) <= 12.0,
            );
        }
        "T5" => {
            check(
                "new generation everywhere p99 <= 12 rounds",
                p("all_new_generation_rounds", 0.99),
                p("all_new_generation_rounds", 0.99) <= 12.0,
            );
        }
        "T6" => {
            check(
                "recorded left everywhere p99 <= 12 rounds",
                p("left_rounds", 0.99),
                p("left_rounds", 0.99) <= 12.0,
            );
            check(
                "recorded failed (total) = 0",
                sum("recorded_failed"),
                sum("recorded_failed") == 0.0,
            );
        }
        "T7" => {
            check(
                "re-convergence max <= 60 s",
                p("reconverge_s", 1.0),
                p("reconverge_s", 1.0) <= 60.0,
            );
        }
        "T8" => {
            check(
                "bytes/s per node in+out (max over runs) <= 2048",
                p("bytes_per_s_in_out", 1.0),
                p("bytes_per_s_in_out", 1.0) <= 2048.0,
            );
            check(
                "max out per node <= 21 KB/s",
                p("max_out_bytes_per_s", 1.0),
                p("max_out_bytes_per_s", 1.0) <= 21.0 * 1024.0,
            );
            check(
                "largest datagram <= 1400",
                p("largest_datagram", 1.0),
                p("largest_datagram", 1.0) <= 1400.0,
            );
        }
        "T9" => {
            check(
                "leave during storm everywhere max <= 15 rounds",
                p("leave_rounds", 1.0),
                p("leave_rounds", 1.0) <= 15.0,
            );
            check(
                "fact staleness max <= 10 s",
                p("fact_stale_max_s", 1.0),
                p("fact_stale_max_s", 1.0) <= 10.0,
            );
        }
        "T10" => {
            check(
                "healthy declared dead (total) = 0",
                sum("healthy_dead"),
                sum("healthy_dead") == 0.0,
            );
            check(
                "health rose (min over runs) > 0",
                p("health_max", 0.0),
                p("health_max", 0.0) > 0.0,
            );
        }
        _ => {}
    }
    out
}

/// The summary of one target: every metric's p50/p99/max, and the aggregate checks.
/// Returns the text and whether the target passed (every run and every check).
#[must_use]
pub fn summary(target: &str, runs: &[Outcome]) -> (String, bool) {
    let mut s = String::new();
    let failed = runs.iter().filter(|o| !o.passed()).count();
    let n = runs.first().map_or(0, |o| o.n);
    let _ = writeln!(
        s,
        "{target} (N={n}, {} seeds): {} runs passed, {failed} failed",
        runs.len(),
        runs.len() - failed
    );
    let mut names: Vec<&str> = Vec::new();
    for o in runs {
        for (k, _) in &o.metrics {
            if !names.contains(&k.as_str()) {
                names.push(k);
            }
        }
    }
    for k in names {
        let v = values(runs, k);
        let _ = writeln!(
            s,
            "  {k:<28} p50 {:>10.3}  p99 {:>10.3}  max {:>10.3}",
            pct(&v, 0.5),
            pct(&v, 0.99),
            pct(&v, 1.0)
        );
    }
    let mut ok = failed == 0 && !runs.is_empty();
    for (what, v, pass) in judge(target, runs) {
        let known = KNOWN_MISSES.contains(&(target, what.as_str()));
        let verdict = match (pass, known) {
            (true, _) => "pass",
            (false, true) => "MISS (known, not gated: see BENCHMARKS.md)",
            (false, false) => "FAIL",
        };
        let _ = writeln!(s, "  [{verdict}] {what}: {v}");
        ok &= pass || known;
    }
    (s, ok)
}
