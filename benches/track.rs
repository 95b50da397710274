//! The hot loop (decode and track, `Engine::process`) over generated captures with 10,
//! 10,000 and 100,000 tunnels, in frames per second.
//!
//! `cargo bench --bench track`. Each iteration starts from a fresh engine, so table growth
//! is part of what is measured, as in a real run.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::Capture;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ipsecmon::engine::{Engine, EngineConfig};

const PACKETS: u64 = 200_000;

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    for tunnels in [10, 10_000, 100_000] {
        let cap = Capture::generated(PACKETS, tunnels);
        g.throughput(Throughput::Elements(cap.len()));
        g.bench_function(format!("process, {tunnels} tunnels"), |b| {
            b.iter_batched_ref(
                || Engine::new(EngineConfig::default()),
                |engine| {
                    for f in cap.frames() {
                        engine.process(&f);
                    }
                    black_box(engine.tracker());
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn report(c: &mut Criterion) {
    let cap = Capture::generated(PACKETS, 10_000);
    let mut engine = Engine::new(EngineConfig::default());
    for f in cap.frames() {
        engine.process(&f);
    }
    c.bench_function("report, 10,000 tunnels", |b| {
        b.iter(|| black_box(engine.tracker().report()))
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = engine, report
}
criterion_main!(group);
