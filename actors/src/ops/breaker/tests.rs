//! The breaker's state machine, by rule.
use super::*;

const S: Nanos = 1_000_000_000;

fn go(b: &mut Breaker, now: Nanos) -> Ticket {
    match b.admit(now) {
        Admit::Go(t) => t,
        Admit::Refuse { retry_after } => {
            panic!("refused at {now}, retry after {retry_after:?}")
        }
    }
}

fn fail_n(b: &mut Breaker, now: Nanos, n: u32) {
    for _ in 0..n {
        let t = go(b, now);
        b.record(now, t, Outcome::Failure);
    }
}

#[test]
fn opens_on_consecutive_failures_and_refuses_the_next_call() {
    let mut b = Breaker::new(BreakerConfig::default(), 1);
    fail_n(&mut b, 0, 4);
    assert_eq!(b.state(0), BreakerState::Closed);
    fail_n(&mut b, 0, 1);
    assert_eq!(b.state(0), BreakerState::Open);
    let Admit::Refuse { retry_after } = b.admit(0) else {
        panic!("call 6 must be refused")
    };
    // 5 s ± 20 %.
    assert!(
        retry_after >= Duration::from_secs(4) && retry_after <= Duration::from_secs(6),
        "{retry_after:?}"
    );
}

#[test]
fn one_probe_then_closed_on_success_or_open_longer_on_failure() {
    let cfg = BreakerConfig::default().jitter_percent(0);
    let mut b = Breaker::new(cfg, 1);
    fail_n(&mut b, 0, 5);
    let probe = go(&mut b, 5 * S);
    assert_eq!(b.state(5 * S), BreakerState::HalfOpen);
    assert!(
        matches!(b.admit(5 * S), Admit::Refuse { .. }),
        "one probe only"
    );
    b.record(5 * S + 1, probe, Outcome::Failure);
    assert_eq!(b.state(5 * S + 1), BreakerState::Open);
    // Re-opened for 10 s.
    assert!(matches!(b.admit(15 * S), Admit::Refuse { .. }));
    let probe = go(&mut b, 15 * S + 1);
    b.record(15 * S + 2, probe, Outcome::Success);
    assert_eq!(b.state(15 * S + 2), BreakerState::Closed);
    // Reset: five more failures needed, and the open period is back to 5 s.
    fail_n(&mut b, 16 * S, 4);
    assert_eq!(b.state(16 * S), BreakerState::Closed);
    fail_n(&mut b, 16 * S, 1);
    assert_eq!(b.next_change(), Some(21 * S));
}

#[test]
fn a_probe_that_never_answers_reopens_at_its_deadline() {
    let cfg = BreakerConfig::default().jitter_percent(0);
    let mut b = Breaker::new(cfg, 1);
    fail_n(&mut b, 0, 5);
    let probe = go(&mut b, 5 * S);
    assert_eq!(probe.probe_deadline(), Some(7 * S));
    assert_eq!(b.state(7 * S - 1), BreakerState::HalfOpen);
    assert_eq!(b.state(7 * S), BreakerState::Open);
    assert!(matches!(b.admit(7 * S), Admit::Refuse { .. }));
    assert_eq!(b.counts().probes_expired, 1);
    // Re-opened at the deadline for 10 s; the late reply changes nothing.
    b.record(8 * S, probe, Outcome::Success);
    assert_eq!(b.state(8 * S), BreakerState::Open);
    assert_eq!(b.next_change(), Some(17 * S));
}

#[test]
fn the_rate_rule_needs_min_calls_and_the_rate() {
    let cfg = BreakerConfig::default().consecutive(1000);
    // 60 % failures: opens once 10 calls are in the window.
    let mut b = Breaker::new(cfg, 1);
    let mut opened_at = None;
    for i in 0..20u32 {
        let t = go(&mut b, 0);
        let failed = i % 5 < 3;
        b.record(
            0,
            t,
            if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
        );
        if b.state(0) == BreakerState::Open {
            opened_at = Some(i + 1);
            break;
        }
    }
    assert!(opened_at.is_some_and(|n| n >= 10), "{opened_at:?}");
    // 40 % failures: never.
    let mut b = Breaker::new(cfg, 1);
    for i in 0..1000u32 {
        let t = go(&mut b, 0);
        let failed = i % 5 == 0 || i % 5 == 2;
        b.record(
            0,
            t,
            if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
        );
    }
    assert_eq!(b.state(0), BreakerState::Closed);
}

#[test]
fn low_volume_failures_open_by_the_consecutive_rule() {
    let mut b = Breaker::new(BreakerConfig::default(), 3);
    for minute in 0..5 {
        fail_n(&mut b, minute * 60 * S, 1);
    }
    assert_eq!(b.state(4 * 60 * S), BreakerState::Open);
}

#[test]
fn ignored_outcomes_never_open_it() {
    let mut b = Breaker::new(BreakerConfig::default(), 3);
    for _ in 0..1000 {
        let t = go(&mut b, 0);
        b.record(0, t, Outcome::Ignored);
    }
    assert_eq!(b.state(0), BreakerState::Closed);
}

#[test]
fn outcomes_from_before_an_open_do_not_count_after_it() {
    let cfg = BreakerConfig::default().jitter_percent(0).consecutive(2);
    let mut b = Breaker::new(cfg, 3);
    let early = go(&mut b, 0);
    fail_n(&mut b, 0, 2);
    let probe = go(&mut b, 5 * S);
    b.record(5 * S, early, Outcome::Failure);
    assert_eq!(b.state(5 * S), BreakerState::HalfOpen);
    b.record(5 * S, probe, Outcome::Success);
    assert_eq!(b.state(5 * S), BreakerState::Closed);
}

#[test]
fn open_periods_grow_to_the_cap_and_jitter_is_seeded() {
    let cfg = BreakerConfig::default().max_open_for(Duration::from_secs(20));
    let run = |seed| {
        let mut b = Breaker::new(cfg, seed);
        fail_n(&mut b, 0, 5);
        let mut periods = Vec::new();
        let mut now = 0;
        for _ in 0..5 {
            let until = b.next_change().expect("open");
            periods.push(until - now);
            now = until;
            let probe = go(&mut b, now);
            b.record(now, probe, Outcome::Failure);
        }
        periods
    };
    let a = run(9);
    assert_eq!(a, run(9), "same seed, same periods");
    assert_ne!(a, run(10), "another seed, other jitter");
    for (k, p) in a.iter().enumerate() {
        let base = ((5 * S) << k).min(20 * S);
        assert!(*p >= base / 100 * 80 && *p <= base / 100 * 120, "{k}: {p}");
    }
}

#[test]
fn half_open_never_lasts_longer_than_the_probe_deadline() {
    // Probes that never answer, over an hour of calls every 100 ms.
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new(cfg, 5);
    fail_n(&mut b, 0, 5);
    let (mut since, mut longest) = (None, 0);
    let step = S / 10;
    for i in 1..36_000 {
        let now = i * step;
        let _ = b.admit(now);
        match (b.state(now), since) {
            (BreakerState::HalfOpen, None) => since = Some(now),
            (BreakerState::HalfOpen, Some(_)) => {}
            (_, Some(s)) => {
                longest = longest.max(now - s);
                since = None;
            }
            (_, None) => {}
        }
    }
    assert!(longest <= nanos(cfg.probe_deadline) + step, "{longest}");
    assert!(b.counts().probes_expired > 10);
}

#[test]
fn bad_settings_name_their_key() {
    let cases = [
        (BreakerConfig::default().probes(11), "breaker.probes"),
        (
            BreakerConfig::default().rate(50, 5, 10),
            "breaker.min_calls",
        ),
        (
            BreakerConfig::default().probe_deadline(Duration::MAX),
            "breaker.probe_deadline",
        ),
        (
            BreakerConfig::default().open_for(Duration::ZERO),
            "breaker.open_for",
        ),
        (
            BreakerConfig::default().consecutive(0),
            "breaker.consecutive",
        ),
    ];
    for (cfg, key) in cases {
        let err = cfg.validate().expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
    }
}
