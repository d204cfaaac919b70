//! What one monitored call costs, next to its floors: a relaxed atomic load, the function
//! without instrumentation, and the two clock reads every monitored call makes.
//!
//! `cargo bench -p monitor-core --bench hot_path`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monitor_core::monitored;

#[inline(never)]
fn plain(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[monitored]
#[inline(never)]
fn monitored_fn(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[monitored]
#[inline(never)]
fn monitored_parent(x: u64) -> Result<u64, std::io::Error> {
    monitored_fn(x)
}

/// Runs `f` `iters` times on each of `threads` threads started together; the time of the slowest.
fn on_threads(threads: usize, iters: u64, f: fn(u64) -> Result<u64, std::io::Error>) -> Duration {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for i in 0..iters {
                    let _ = black_box(f(i));
                }
                start.elapsed()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap_or_default()).max().unwrap_or_default()
}

fn hot_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(1));
    let floor = AtomicU64::new(1);
    g.bench_function("floor/relaxed_load", |b| b.iter(|| floor.load(Ordering::Relaxed)));
    g.bench_function("floor/two_instant_now", |b| {
        b.iter(|| {
            let t = Instant::now();
            black_box(t);
            Instant::now()
        })
    });
    g.bench_function("baseline/plain_fn", |b| b.iter(|| plain(black_box(7))));
    g.bench_function("monitored/sync_fn", |b| b.iter(|| monitored_fn(black_box(7))));
    g.bench_function("monitored/nested_pair", |b| b.iter(|| monitored_parent(black_box(7))));
    for threads in [1, 2] {
        g.bench_function(format!("baseline/plain_fn_{threads}_threads"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, plain))
        });
        g.bench_function(format!("monitored/sync_fn_{threads}_threads"), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, monitored_fn))
        });
    }
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
