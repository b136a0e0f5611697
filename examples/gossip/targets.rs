//! The targets T1 to T10 of docs/design/gossip.md section 2b, one function each.

use super::*;

/// Time until `frac` of the observers had it (None when they never did).
fn reach(times: &[Option<u64>], frac: f64) -> Option<u64> {
    let mut got: Vec<u64> = times.iter().flatten().copied().collect();
    got.sort_unstable();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let need = ((times.len() as f64) * frac).ceil() as usize;
    if need == 0 {
        return Some(0);
    }
    got.get(need - 1).copied()
}

/// Dead events about members that were running when they were recorded as dead
/// (`healthy(subj)`), after `t0`.
fn false_dead(c: &Cluster, t0: u64, healthy: impl Fn(usize) -> bool) -> usize {
    c.events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && healthy(e.subj as usize))
        .count()
}

pub(super) fn t1(seed: u64, n: usize, loss: u32, name: &str) -> Outcome {
    let mut o = Outcome::new(name, seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.world.set_net(baseline_net(loss));
    let k = c.pick(0);
    let t0 = c.now();
    c.set_fact(k, "t1", b"broadcast".to_vec());
    let ae = 5 * SEC;
    c.run_for(ae + SEC);
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != k).collect();
    let seen = c.first_seen(t0, k, Kind::Fact, None, &obs);
    let r999 = reach(&seen, 0.999).map_or(f64::INFINITY, rounds);
    let r100 = reach(&seen, 1.0).map_or(f64::INFINITY, rounds);
    o.metric("rounds_999", r999);
    o.metric("rounds_100", r100);
    o.require(r100 <= rounds(ae), || {
        format!("broadcast incomplete after one anti-entropy interval: {r100} rounds")
    });
    c.world.set_net(baseline_net(10_000));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

pub(super) fn t2(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T2", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let k = c.pick(3);
    c.crash(k);
    let t0 = c.now();
    let obs = c.live();
    let done = c.run_until(smax + 20 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let first = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.subj as usize == k && e.kind == Kind::Suspect)
        .map(|e| e.t - t0)
        .min();
    let all_dead = reach(&c.first_seen(t0, k, Kind::Dead, None, &obs), 1.0);
    o.metric("first_suspect_s", first.map_or(f64::INFINITY, secs));
    o.metric("all_dead_s", all_dead.map_or(f64::INFINITY, secs));
    o.require(
        done.is_some() && all_dead.is_some_and(|t| t <= smax + 10 * SEC),
        || {
            format!(
                "not dead everywhere within suspicion_max + 10 s ({:.0} s)",
                secs(smax + 10 * SEC)
            )
        },
    );
    let fd = false_dead(&c, t0, |s| s != k);
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} healthy members declared dead"));
    c.settle(smax + 30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T3a's no-fault run.
const T3A_SECS: u64 = 30;

pub(super) fn t3a(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3a", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let t0 = c.now();
    let before: u64 = c
        .live()
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().suspicions)
        .sum();
    c.run_for(T3A_SECS * SEC);
    let after: u64 = c
        .live()
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().suspicions)
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let per_hour = (after - before) as f64 * 3600.0 / T3A_SECS as f64;
    let fd = false_dead(&c, t0, |_| true);
    o.metric("suspicions_per_hour", per_hour);
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} false dead at 1 % loss"));
    // The same at 5 % loss, for half as long.
    c.world.set_net(baseline_net(50_000));
    let t1 = c.now();
    c.run_for(T3A_SECS / 2 * SEC);
    let fd5 = false_dead(&c, t1, |_| true);
    o.metric("false_dead_5pct", fd5 as f64);
    o.require(fd5 == 0, || format!("{fd5} false dead at 5 % loss"));
    c.world.set_net(baseline_net(10_000));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T3b's stall phase.
const T3B_SECS: u64 = 20;

/// One T3b run: false suspicions and dead of healthy members, and the time until a
/// crashed healthy member is dead everywhere.
pub(super) fn t3b_one(
    seed: u64,
    n: usize,
    lifeguard: bool,
) -> (usize, usize, Option<u64>, Vec<String>) {
    let mut c = Cluster::new(seed, n, 10_000, lifeguard);
    c.warm();
    // 1–16 % of the nodes (at least one) stall; never the seeds.
    let mut plan = c.world.seeds().stream("t3b-plan");
    let pct = 1 + plan.below(16) as usize;
    let count = (n * pct / 100).max(1);
    let mut stalled = vec![false; n];
    let mut idx: Vec<usize> = (3..n).collect();
    plan.shuffle(&mut idx);
    for &i in idx.iter().take(count) {
        stalled[i] = true;
    }
    // The stall schedule: per stalled node, gaps of 0.5–5 s and stalls of 0.1–2 s.
    let t0 = c.now();
    let refuted_before: u64 = (0..n)
        .filter(|&i| !stalled[i])
        .filter_map(|i| c.disc(i))
        .map(|d| d.stats().refutations)
        .sum();
    let end = t0 + T3B_SECS * SEC;
    let mut sched: Vec<(u64, usize, bool)> = Vec::new();
    for (i, _) in stalled.iter().enumerate().filter(|(_, s)| **s) {
        let mut t = t0 + plan.below(5 * SEC);
        while t < end {
            let len = 100 * MS + plan.below(1900 * MS);
            sched.push((t, i, true));
            sched.push((t + len, i, false));
            t += len + 500 * MS + plan.below(4500 * MS);
        }
    }
    sched.sort_unstable();
    for (t, i, pause) in sched {
        c.run_to(t);
        if pause {
            c.pause(i);
        } else {
            c.resume(i);
        }
    }
    c.run_to(end + 3 * SEC);
    let healthy = |s: usize| s < n && !stalled[s];
    // A false positive at a healthy member: it had to refute a suspicion of itself.
    let refuted = |c: &Cluster| -> u64 {
        (0..n)
            .filter(|&i| healthy(i))
            .filter_map(|i| c.disc(i))
            .map(|d| d.stats().refutations)
            .sum()
    };
    let susp = usize::try_from(refuted(&c) - refuted_before).unwrap_or(usize::MAX);
    let dead = false_dead(&c, t0, healthy);
    // True failure: crash a healthy non-seed member.
    let k = idx[count..].first().copied().unwrap_or(3);
    c.crash(k);
    let t1 = c.now();
    let obs = c.live();
    let (_, smax) = c.suspicion();
    c.run_until(smax + 20 * SEC, 100 * MS, |c| {
        c.first_seen(t1, k, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let all_dead = reach(&c.first_seen(t1, k, Kind::Dead, None, &obs), 1.0);
    c.settle(smax + 30 * SEC);
    c.check();
    (susp, dead, all_dead, c.violations.clone())
}

pub(super) fn t3b(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3b", seed, n);
    let (on_s, on_d, on_t, on_v) = t3b_one(seed, n, true);
    let (off_s, off_d, off_t, _) = t3b_one(seed, n, false);
    o.metric("fp_lifeguard", (on_s + on_d) as f64);
    o.metric("fp_swim", (off_s + off_d) as f64);
    o.metric("dead_lifeguard", on_d as f64);
    o.metric("dead_swim", off_d as f64);
    o.metric("detect_lifeguard_s", on_t.map_or(f64::INFINITY, secs));
    o.metric("detect_swim_s", off_t.map_or(f64::INFINITY, secs));
    o.require(on_t.is_some(), || {
        "the crashed member was not found dead (Lifeguard)".into()
    });
    // Only the Lifeguard run's invariants count: plain SWIM is the comparison.
    o.fails.extend(on_v);
    o
}

pub(super) fn t3c(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T3c", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let d = c.pick(3);
    let (a, b) = loop {
        let (a, b) = (c.pick(0), c.pick(0));
        if a != b && a != d && b != d {
            break (a, b);
        }
    };
    let dn = c.id(d);
    for i in 0..n {
        if i != d {
            let x = c.id(i);
            c.world.partition_oneway(x, dn);
        }
    }
    let (an, bn) = (c.id(a), c.id(b));
    c.world.partition_oneway(an, bn);
    let t0 = c.now();
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != d).collect();
    c.run_until(smax + 10 * SEC, 200 * MS, |c| {
        c.first_seen(t0, d, Kind::Dead, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    let all = reach(&c.first_seen(t0, d, Kind::Dead, None, &obs), 1.0);
    c.run_for(5 * SEC);
    // Healthy: neither the detached node, nor as seen by it.
    let healthy_dead = c
        .events()
        .iter()
        .filter(|e| {
            e.t >= t0 && e.kind == Kind::Dead && e.subj as usize != d && e.obs as usize != d
        })
        .count();
    o.metric("healthy_dead", healthy_dead as f64);
    o.metric("detached_dead_s", all.map_or(f64::INFINITY, secs));
    o.require(healthy_dead == 0, || {
        format!("{healthy_dead} healthy members declared dead")
    });
    o.require(all.is_some_and(|t| t <= smax), || {
        format!(
            "the detached node was not dead everywhere within suspicion_max ({:.0} s)",
            secs(smax)
        )
    });
    c.world.heal_all();
    c.settle(smax + 60 * SEC);
    o.finish(&mut c)
}

pub(super) fn t4(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T4", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    let seeds = c.seeds();
    // n1 and n2 are dead seeds: never started. The others start over the first
    // second, n0 last at 2 s.
    let mut starts: Vec<(u64, usize)> = (3..n).map(|i| (c.rng().below(SEC), i)).collect();
    starts.sort_unstable();
    for (t, i) in starts {
        c.run_to(t);
        c.start(i, seeds.clone());
    }
    c.run_to(2 * SEC);
    c.start(0, seeds);
    let took = c.run_until(120 * SEC, 100 * MS, Cluster::converged);
    let t = took.map(|d| d + 2 * SEC);
    // Disjoint clusters: distinct views of who is alive.
    let mut views: Vec<Vec<String>> = Vec::new();
    for i in c.live() {
        if let Some(d) = c.disc(i) {
            let v: Vec<String> = d
                .members()
                .into_iter()
                .filter(|m| !m.state.is_down())
                .map(|m| m.name)
                .collect();
            if !views.contains(&v) {
                views.push(v);
            }
        }
    }
    o.metric("all_alive_s", t.map_or(f64::INFINITY, secs));
    o.metric("clusters", views.len() as f64);
    o.require(t.is_some_and(|t| t <= 30 * SEC), || {
        "not every node saw every live node within 30 s".into()
    });
    o.require(views.len() == 1, || {
        format!("{} disjoint views", views.len())
    });
    o.finish(&mut c)
}

pub(super) fn t4b(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T4b", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let j = c.add();
    let t0 = c.now();
    let seed0 = vec![sim_addr(c.id(0))];
    c.start(j, seed0);
    let want = (c.live().len() * 99).div_ceil(100);
    let sees = c.run_until(10 * SEC, 20 * MS, |c| {
        c.disc(j).is_some_and(|d| d.live_members() >= want)
    });
    c.run_to(t0 + 6 * SEC);
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != j).collect();
    let seen = reach(&c.first_seen(t0, j, Kind::Up, None, &obs), 1.0);
    o.metric("joiner_sees_99_s", sees.map_or(f64::INFINITY, secs));
    o.metric("all_see_joiner_rounds", seen.map_or(f64::INFINITY, rounds));
    o.require(sees.is_some(), || {
        "the joiner never saw 99 % of members".into()
    });
    o.require(seen.is_some(), || {
        "not every member saw the joiner in 6 s".into()
    });
    c.settle(30 * SEC);
    o.finish(&mut c)
}

pub(super) fn t5(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T5", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let k = c.pick(3);
    c.crash(k);
    c.run_for(500 * MS);
    c.restart(k);
    let t0 = c.now();
    let generation = c.gens[k];
    let obs: Vec<usize> = c.live().into_iter().filter(|&i| i != k).collect();
    c.run_until(30 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Up, Some(generation), &obs)
            .iter()
            .all(Option::is_some)
    });
    let all = reach(&c.first_seen(t0, k, Kind::Up, Some(generation), &obs), 1.0);
    o.metric(
        "all_new_generation_rounds",
        all.map_or(f64::INFINITY, rounds),
    );
    o.require(all.is_some(), || {
        "the new generation was not accepted everywhere in 30 s (a conflict stall)".into()
    });
    // The old generation ends (Down about it is expected); the new one must not.
    let fd = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.generation >= generation)
        .count();
    o.metric("false_dead", fd as f64);
    o.require(fd == 0, || format!("{fd} dead after the restart"));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

pub(super) fn t6(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T6", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let k = c.pick(3);
    let t0 = c.now();
    c.leave(k);
    let obs = c.live();
    c.run_until(20 * SEC, 100 * MS, |c| {
        c.first_seen(t0, k, Kind::Left, None, &obs)
            .iter()
            .all(Option::is_some)
    });
    c.run_for(10 * SEC);
    let left = c.first_seen(t0, k, Kind::Left, None, &obs);
    let all = reach(&left, 1.0);
    #[allow(clippy::cast_precision_loss)]
    let frac = left.iter().flatten().count() as f64 / obs.len() as f64;
    let failed = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.subj as usize == k)
        .count();
    o.metric("left_rounds", all.map_or(f64::INFINITY, rounds));
    o.metric("recorded_left", frac);
    o.metric("recorded_failed", failed as f64);
    o.require(frac >= 1.0, || {
        format!("only {:.1} % recorded left", frac * 100.0)
    });
    o.require(failed == 0, || format!("{failed} recorded it as failed"));
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// How long T7's partition lasts beyond half of suspicion_max (with many independent
/// confirmations, suspicions end near suspicion_min, so both sides have declared each
/// other dead by then; `side_a_live_before_heal` shows it).
const T7_EXTRA_SECS: u64 = 5;

pub(super) fn t7(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T7", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let (_, smax) = c.suspicion();
    let half = n / 2;
    for a in 0..half {
        for b in half..n {
            let (x, y) = (c.id(a), c.id(b));
            c.world.partition(x, y);
        }
    }
    let len = smax / 2 + T7_EXTRA_SECS * SEC;
    c.run_for(len / 2);
    // A fact written on each side during the partition must merge.
    let fa = c.rng().below(half as u64) as usize;
    let fb = half + c.rng().below((n - half) as u64) as usize;
    c.set_fact(fa, "side", b"a".to_vec());
    c.set_fact(fb, "side", b"b".to_vec());
    c.run_for(len - len / 2);
    let split = c.disc(0).map_or(0, |d| d.live_members());
    c.world.heal_all();
    let took = c.run_until(180 * SEC, 500 * MS, |c| {
        c.converged()
            && c.live().iter().all(|&i| {
                c.disc(i).is_some_and(|d| {
                    d.member(&format!("n{fa}"))
                        .is_some_and(|m| m.fact("side") == Some("a"))
                        && d.member(&format!("n{fb}"))
                            .is_some_and(|m| m.fact("side") == Some("b"))
                })
            })
    });
    o.metric("partition_s", secs(len));
    o.metric("side_a_live_before_heal", split as f64);
    o.metric("reconverge_s", took.map_or(f64::INFINITY, secs));
    o.require(took.is_some(), || {
        "no re-convergence within 180 s of the heal".into()
    });
    o.finish(&mut c)
}

pub(super) fn t8(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T8", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.run_for(10 * SEC);
    let live = c.live();
    let snap = |c: &Cluster| -> Vec<(u64, u64)> {
        live.iter()
            .map(|&i| {
                c.disc(i)
                    .map_or((0, 0), |d| (d.stats().bytes_sent, d.stats().bytes_received))
            })
            .collect()
    };
    let a = snap(&c);
    let window = 10;
    c.run_for(window * SEC);
    let b = snap(&c);
    let mut total = 0.0;
    let mut max_out: f64 = 0.0;
    for (x, y) in a.iter().zip(&b) {
        #[allow(clippy::cast_precision_loss)]
        let (out, inn) = (
            (y.0 - x.0) as f64 / window as f64,
            (y.1 - x.1) as f64 / window as f64,
        );
        total += out + inn;
        max_out = max_out.max(out);
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = total / live.len() as f64;
    let largest = live
        .iter()
        .filter_map(|&i| c.disc(i))
        .map(|d| d.stats().largest_sent)
        .max()
        .unwrap_or(0);
    o.metric("bytes_per_s_in_out", mean);
    o.metric("max_out_bytes_per_s", max_out);
    o.metric("largest_datagram", largest as f64);
    o.metric("too_large", c.world.net_stats().too_large as f64);
    o.require(mean <= 2048.0, || {
        format!("{mean:.0} B/s per node > 2 KB/s")
    });
    o.require(max_out <= 21.0 * 1024.0, || {
        format!("{max_out:.0} B/s out > 21 KB/s")
    });
    o.require(largest <= 1400, || format!("a {largest}-byte datagram"));
    o.finish(&mut c)
}

/// Simulated duration of T9's storm.
const T9_SECS: u64 = 12;

pub(super) fn t9(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T9", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    c.record_facts(false);
    let t0 = c.now();
    // Every node writes "capacity" once a second, each at its own phase; value v of
    // node i was written at set[i][v].
    let phase: Vec<u64> = (0..n).map(|_| c.rng().below(SEC)).collect();
    let mut set: Vec<Vec<u64>> = vec![Vec::new(); n];
    let leaver = c.pick(3);
    let mut left_at = None;
    let mut stale_max: u64 = 0;
    for s in 0..T9_SECS * 10 {
        let slice = t0 + s * 100 * MS;
        for i in 0..n {
            if c.is_up(i) && (phase[i] / (100 * MS)) == s % 10 {
                let v = set[i].len();
                set[i].push(c.now());
                c.set_fact(i, "capacity", format!("{v}").into_bytes());
            }
        }
        c.run_to(slice + 100 * MS);
        if s == 30 {
            c.leave(leaver);
            left_at = Some(c.now());
        }
        if s == 80 || s == T9_SECS * 10 - 1 {
            // Staleness: how long ago the value each node sees was replaced.
            let now = c.now();
            for o_i in c.live() {
                let Some(d) = c.disc(o_i) else { continue };
                for m in d.members() {
                    let j = index(&m.name) as usize;
                    if j == o_i || j >= n || !c.is_up(j) || set[j].is_empty() {
                        continue;
                    }
                    let seen: Option<usize> = m.fact("capacity").and_then(|v| v.parse().ok());
                    let next = seen.map_or(0, |v| v + 1);
                    if let Some(&replaced) = set[j].get(next) {
                        stale_max = stale_max.max(now.saturating_sub(replaced));
                    }
                }
            }
        }
    }
    let obs: Vec<usize> = c.live();
    let t_leave = left_at.unwrap_or(t0);
    let left = reach(&c.first_seen(t_leave, leaver, Kind::Left, None, &obs), 1.0);
    o.metric("leave_rounds", left.map_or(f64::INFINITY, rounds));
    o.metric("fact_stale_max_s", secs(stale_max));
    o.require(left.is_some_and(|t| t <= 15 * ROUND), || {
        "the leave did not reach everyone in 15 rounds during the storm".into()
    });
    o.require(stale_max <= 10 * SEC, || {
        format!(
            "facts {:.1} s stale > 2 anti-entropy intervals",
            secs(stale_max)
        )
    });
    c.record_facts(true);
    c.settle(30 * SEC);
    o.finish(&mut c)
}

/// Simulated duration of T10's stalls.
const T10_SECS: u64 = 20;

pub(super) fn t10(seed: u64, n: usize) -> Outcome {
    let mut o = Outcome::new("T10", seed, n);
    let mut c = Cluster::new(seed, n, 10_000, true);
    c.warm();
    let s = c.pick(3);
    let t0 = c.now();
    let mut max_health = 0;
    let mut stalls = 0;
    while c.now() < t0 + T10_SECS * SEC {
        let gap = 2 * SEC + c.rng().below(3 * SEC);
        let len = 500 * MS + c.rng().below(2500 * MS);
        c.run_for(gap);
        c.pause(s);
        c.run_for(len);
        c.resume(s);
        stalls += 1;
        c.run_for(300 * MS);
        max_health = max_health.max(c.disc(s).map_or(0, |d| d.health()));
    }
    let fd = false_dead(&c, t0, |x| x != s);
    let dead_s = c
        .events()
        .iter()
        .filter(|e| e.t >= t0 && e.kind == Kind::Dead && e.subj as usize == s)
        .count();
    // Recovery: the score comes down one step per good probe, each probe period
    // stretched by the score (Lifeguard), so from 8 it takes about 45 s.
    c.run_until(60 * SEC, 500 * MS, |c| {
        c.disc(s).is_some_and(|d| d.health() == 0)
    });
    let end_health = c.disc(s).map_or(0, |d| d.health());
    o.metric("stalls", f64::from(stalls));
    o.metric("healthy_dead", fd as f64);
    o.metric("stalled_node_dead", dead_s as f64);
    o.metric("health_max", f64::from(max_health));
    o.metric("health_after_60s", f64::from(end_health));
    o.require(fd == 0, || format!("{fd} healthy members declared dead"));
    o.require(max_health > 0, || {
        "the stalled node's health score never rose".into()
    });
    o.require(end_health == 0, || {
        format!("health still {end_health} 60 s after")
    });
    c.settle(30 * SEC);
    o.finish(&mut c)
}
