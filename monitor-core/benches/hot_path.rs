//! What one monitored call costs, next to its floors: a relaxed atomic load, the function
//! without instrumentation, two `Instant::now()`, and the two raw clock reads (with their
//! conversion to nanoseconds) every monitored call makes, the floor of any timing
//! instrumentation; on 1 and 2 threads, async, switched off at run time; and one histogram
//! record.
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

#[monitored]
#[inline(never)]
fn switched_off(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
async fn plain_async(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[monitored]
#[inline(never)]
async fn monitored_async(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

/// Polls a future that completes at once (no executor: the floor is the future itself).
fn run<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
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
    // The clock a monitored call reads: the TSC where the CPU's is invariant.
    let clock = quanta::Clock::new();
    g.bench_function("floor/two_tsc_reads", |b| {
        b.iter(|| {
            let t = clock.raw();
            black_box(t);
            clock.delta_as_nanos(t, clock.raw())
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

    let mut g = c.benchmark_group("switched_off");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline/plain_fn", |b| b.iter(|| plain(black_box(7))));
    if let Some(site) =
        monitor_core::registry().sites().find(|s| s.name().ends_with("::switched_off"))
    {
        site.set_enabled(false);
    }
    g.bench_function("monitored/site_off", |b| b.iter(|| switched_off(black_box(7))));
    g.finish();

    let mut g = c.benchmark_group("async");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline/plain_async_fn", |b| b.iter(|| run(plain_async(black_box(7)))));
    g.bench_function("monitored/async_fn", |b| b.iter(|| run(monitored_async(black_box(7)))));
    monitor_core::polls::set_enabled(true);
    g.bench_function("monitored/async_fn_polls_timed", |b| {
        b.iter(|| run(monitored_async(black_box(7))));
    });
    monitor_core::polls::set_enabled(false);
    g.finish();

    // What a call costs while its trace is recorded: every call with `record_all`, every call
    // kept until its trace ends with `keep_failed_traces`.
    let mut g = c.benchmark_group("traced");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline/monitored_fn", |b| b.iter(|| monitored_fn(black_box(7))));
    monitor_core::trace::record_all(true);
    g.bench_function("recorded/record_all", |b| b.iter(|| monitored_fn(black_box(7))));
    monitor_core::trace::record_all(false);
    monitor_core::trace::keep_failed_traces(32);
    g.bench_function("recorded/keep_failed_traces", |b| b.iter(|| monitored_fn(black_box(7))));
    monitor_core::trace::keep_exemplars(false);
    g.bench_function("recorded/keep_failed_traces_no_exemplars", |b| {
        b.iter(|| monitored_fn(black_box(7)));
    });
    monitor_core::trace::keep_exemplars(true);
    monitor_core::trace::keep_failed_traces(0);
    g.finish();

    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor/relaxed_fetch_add", |b| {
        b.iter(|| floor.fetch_add(black_box(1), Ordering::Relaxed))
    });
    let d = monitor_core::DurationVal::new();
    let mut i = 0u64;
    g.bench_function("duration_val/observe", |b| {
        b.iter(|| {
            i = i.wrapping_add(977);
            d.observe(Duration::from_nanos(black_box(i % 1_000_000)))
        })
    });
    let v = monitor_core::IntVal::new();
    g.bench_function("int_val/observe", |b| {
        b.iter(|| {
            i = i.wrapping_add(977);
            v.observe(black_box(i as i64 % 1_000_000))
        })
    });
    g.finish();
    #[cfg(feature = "tracing")]
    tracing_spans(c);
}

#[cfg(feature = "tracing")]
#[tracing::instrument(skip_all)]
#[inline(never)]
fn instrumented(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

/// With feature `tracing` (`cargo bench -p monitor-core --bench hot_path --features tracing --
/// tracing_spans`): a monitored call with no subscriber, then under tracing-subscriber's
/// registry, where it is also a span, beside `#[tracing::instrument]` under the same registry.
#[cfg(feature = "tracing")]
fn tracing_spans(c: &mut Criterion) {
    use tracing_subscriber::layer::SubscriberExt;
    let mut g = c.benchmark_group("tracing_spans");
    g.throughput(Throughput::Elements(1));
    g.bench_function("monitored/no_subscriber", |b| b.iter(|| monitored_fn(black_box(7))));
    let registry = tracing::Dispatch::new(
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO),
    );
    tracing::dispatcher::with_default(&registry, || {
        g.bench_function("monitored/under_registry", |b| b.iter(|| monitored_fn(black_box(7))));
        g.bench_function("instrument/under_registry", |b| b.iter(|| instrumented(black_box(7))));
    });
    let warn = tracing::Dispatch::new(
        tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::WARN),
    );
    tracing::dispatcher::with_default(&warn, || {
        g.bench_function("monitored/filtered_out", |b| b.iter(|| monitored_fn(black_box(7))));
    });
    g.finish();
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
