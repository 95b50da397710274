//! The hot loop (decode and track, `Engine::process`) over generated captures with 10,
//! 10,000 and 100,000 tunnels, in frames per second; the ESP path alone with 10, 10,000
//! and 1,000,000 tracked SAs, with the memory each SA costs.
//!
//! `cargo bench --bench track`. Each capture iteration starts from a fresh engine, so
//! table growth is part of what is measured, as in a real run. The ESP-SA groups first
//! create every SA (and print the resident memory that added per SA), then measure
//! packets of SAs that already exist, visited in a shuffled order (later iterations
//! repeat the sequence numbers, which costs the same window check as new ones).

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{Capture, EspFrames};
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

/// Packets of existing ESP SAs, and the resident memory per SA of the table holding them.
fn esp_sas(c: &mut Criterion) {
    let mut g = c.benchmark_group("esp_sas");
    for sas in [10u32, 10_000, 1_000_000] {
        let create = EspFrames::new(sas, 1);
        let steady = EspFrames::new(sas, (2_000_000 / sas).clamp(1, 8));
        let before = rss_bytes();
        let mut engine = Engine::new(EngineConfig::default());
        for f in create.frames(1) {
            engine.process(&f);
        }
        let added = rss_bytes().saturating_sub(before);
        // A few SAs fit in memory the allocator already holds: no per-SA figure there.
        if sas >= 10_000 {
            println!(
                "esp_sas/{sas}: {} bytes resident per tracked SA ({:.1} MiB for {sas} SAs)",
                added / u64::from(sas),
                added as f64 / 1048576.0
            );
        }
        let mut next = create.len() + 1;
        g.throughput(Throughput::Elements(steady.len()));
        g.bench_function(format!("existing SAs, {sas}"), |b| {
            b.iter(|| {
                for f in steady.frames(next) {
                    engine.process(&f);
                }
                next += steady.len();
            });
            black_box(engine.tracker());
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

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = esp_sas, engine, report
}
criterion_main!(group);
