//! Tern against tokio, actix, ractor and kameo: every timing benchmark, in one criterion
//! binary. The workloads themselves live in the `tern_benches` library (one module per
//! framework); see its crate docs for exactly what each group measures.
//!
//! Run with `cargo bench -p tern-benches`. Settings are modest (30 samples, 1 s warm-up,
//! 4 s measurement per benchmark) so the whole suite, 31 benchmarks plus the idle-memory
//! table, fits in about five minutes on a 2-core machine.

// Benches are binaries: there is no public API to document, and an unwrap that fires
// means the benchmark itself is wrong.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use tern_benches::tern_peer::Tern;
use tern_benches::{
    FAN_IN_PER_SENDER, FAN_IN_SENDERS, PINGPONG_ROUND_TRIPS, Peer, RING_LAPS, RING_NODES,
    SPAWN_BATCH, TELL_BATCH, peers,
};

/// Adds one benchmark per framework to `group`, each timing `op(peer, iters)`.
fn each_peer(group: &mut BenchmarkGroup<'_, WallTime>, op: fn(&dyn Peer, u64) -> Duration) {
    for peer in peers() {
        group.bench_function(peer.name(), |b| b.iter_custom(|iters| op(peer, iters)));
    }
}

fn tell_batched(c: &mut Criterion) {
    let mut g = c.benchmark_group("tell_batched");
    g.throughput(Throughput::Elements(TELL_BATCH));
    each_peer(&mut g, |p, iters| p.tell_batched(iters, TELL_BATCH));
    // Extra row: tern with `try_tell` instead of `tell(..).await`.
    g.bench_function("tern_try_tell", |b| {
        b.iter_custom(|iters| Tern.tell_batched_try(iters, TELL_BATCH))
    });
    g.finish();
}

fn tell_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("tell_pingpong");
    // Two tells (ping -> pong -> ping) per round trip, each one a task switch.
    g.throughput(Throughput::Elements(2 * PINGPONG_ROUND_TRIPS));
    each_peer(&mut g, |p, iters| {
        p.tell_pingpong(iters, PINGPONG_ROUND_TRIPS)
    });
    g.finish();
}

fn ask(c: &mut Criterion) {
    let mut g = c.benchmark_group("ask");
    g.throughput(Throughput::Elements(1));
    each_peer(&mut g, |p, iters| p.ask(iters));
    g.finish();
}

fn fan_in(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan_in");
    g.throughput(Throughput::Elements(
        FAN_IN_SENDERS as u64 * FAN_IN_PER_SENDER,
    ));
    each_peer(&mut g, |p, iters| {
        p.fan_in(iters, FAN_IN_SENDERS, FAN_IN_PER_SENDER)
    });
    g.finish();
}

fn ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring");
    g.throughput(Throughput::Elements(RING_NODES as u64 * RING_LAPS));
    each_peer(&mut g, |p, iters| p.ring(iters, RING_NODES, RING_LAPS));
    g.finish();
}

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn");
    g.throughput(Throughput::Elements(SPAWN_BATCH as u64));
    each_peer(&mut g, |p, iters| p.spawn(iters, SPAWN_BATCH));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = compare;
    config = config();
    targets = tell_batched, tell_pingpong, ask, fan_in, ring, spawn
}
criterion_main!(compare);
