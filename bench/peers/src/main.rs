//! What one call costs with each instrumentation library, measured in one process: every
//! variant runs the same small function returning `Result`, interleaved in rounds so that
//! machine noise spreads over all of them, on 1 thread and on 2 threads calling the same
//! function. Prints one table: median, min and max ns per call over the rounds, and the
//! ratios to the un-instrumented function and to the two-`Instant::now()` floor.
//!
//! ```text
//! cargo run --release -p monitor-peers             # 11 rounds
//! cargo run --release -p monitor-peers -- 21 500000  # rounds, calls per round and thread
//! ```
//!
//! The variants: no instrumentation; two `std::time::Instant::now()` (the timing floor every
//! library pays at least once); `#[monitored]` (everything it records: outcome by kind, panics,
//! in flight, highwater, latency histogram, caller edge, span ids), and the same switched off at
//! run time; tracing `#[instrument(skip_all)]` under a registry subscriber with a level filter
//! (no output), and the same with the monitor's `MonitorLayer` added (what bridging a span
//! costs); fastrace `#[trace]` under a root span renewed every 1,024 calls per thread,
//! with its collector and a reporter that discards; metrics-rs with handles created once (a counter and a histogram,
//! Prometheus recorder); autometrics `#[autometrics]` (prometheus-client backend).

use std::hint::black_box;
use std::sync::{Arc, Barrier};

mod instructions;
use std::time::{Duration, Instant};

#[inline(never)]
fn plain(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[inline(never)]
fn instant_floor(x: u64) -> Result<u64, std::io::Error> {
    let start = Instant::now();
    let r = plain(x);
    black_box(start.elapsed());
    r
}

#[monitor_core::monitored]
#[inline(never)]
fn monitored(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[monitor_core::monitored]
#[inline(never)]
fn monitored_off(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

#[fastrace::trace]
#[inline(never)]
fn fastraced(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

/// A fastrace root span per thread, replaced every 1,024 calls: the root's cost is spread
/// over its children, as in a request that makes many calls, and the collector receives the
/// spans in batches.
fn fastrace_root(x: u64) -> Result<u64, std::io::Error> {
    type Root = Option<(fastrace::local::LocalParentGuard, fastrace::Span)>;
    thread_local! {
        static ROOT: std::cell::RefCell<(u32, Root)> = const { std::cell::RefCell::new((0, None)) };
    }
    ROOT.with(|r| {
        let mut r = r.borrow_mut();
        if r.0 % 1024 == 0 {
            // Drop the guard before its span, then start a new root.
            r.1 = None;
            let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
            let guard = root.set_local_parent();
            r.1 = Some((guard, root));
        }
        r.0 = r.0.wrapping_add(1);
    });
    fastraced(x)
}

fn metrics_handles() -> &'static (metrics::Counter, metrics::Histogram) {
    static HANDLES: std::sync::OnceLock<(metrics::Counter, metrics::Histogram)> =
        std::sync::OnceLock::new();
    HANDLES.get_or_init(|| {
        (metrics::counter!("calls_total", "function" => "f"), metrics::histogram!("call_seconds"))
    })
}

#[inline(never)]
fn metrics_rs(x: u64) -> Result<u64, std::io::Error> {
    let (calls, seconds) = metrics_handles();
    let start = Instant::now();
    let r = plain(x);
    calls.increment(1);
    seconds.record(start.elapsed().as_secs_f64());
    r
}

#[autometrics::autometrics]
#[inline(never)]
fn autometriced(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

struct Discard;

impl fastrace::collector::Reporter for Discard {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// The tracing subscriber a variant's threads run under.
#[derive(Clone, Copy)]
enum Subscriber {
    None,
    /// A registry with a level filter.
    Registry,
    /// The same with `MonitorLayer`.
    Bridged,
}

type Variant = (&'static str, fn(u64) -> Result<u64, std::io::Error>, Subscriber);

const VARIANTS: [Variant; 9] = [
    ("no instrumentation", plain, Subscriber::None),
    ("two Instant::now() (floor)", instant_floor, Subscriber::None),
    ("monitor #[monitored]", monitored, Subscriber::None),
    ("monitor, site switched off", monitored_off, Subscriber::None),
    ("tracing #[instrument]", traced, Subscriber::Registry),
    ("tracing #[instrument] + MonitorLayer", traced, Subscriber::Bridged),
    ("fastrace #[trace], shared root", fastrace_root, Subscriber::None),
    ("metrics-rs cached handles", metrics_rs, Subscriber::None),
    ("autometrics #[autometrics]", autometriced, Subscriber::None),
];

/// The subscribers, made once: each variant's threads set theirs as their default, so that
/// both tracing variants dispatch the same way.
fn dispatch(which: Subscriber) -> Option<tracing::Dispatch> {
    use tracing_subscriber::layer::SubscriberExt;
    static REGISTRY: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    static BRIDGED: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    let level = tracing_subscriber::filter::LevelFilter::INFO;
    match which {
        Subscriber::None => None,
        Subscriber::Registry => Some(
            REGISTRY
                .get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry().with(level)))
                .clone(),
        ),
        Subscriber::Bridged => Some(
            BRIDGED
                .get_or_init(|| {
                    let layer = monitor_tracing::MonitorLayer::new();
                    tracing::Dispatch::new(tracing_subscriber::registry().with(level).with(layer))
                })
                .clone(),
        ),
    }
}

/// What every variant needs before its first call: the subscribers (made first, so that the
/// callsites' interest is settled), fastrace's reporter, the metrics recorder, and the
/// switched-off site.
fn setup() {
    let _ = (dispatch(Subscriber::Registry), dispatch(Subscriber::Bridged));
    fastrace::set_reporter(Discard, fastrace::collector::Config::default());
    if let Err(e) = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        eprintln!("monitor-peers: could not install the metrics recorder: {e}");
    }
    if let Some(site) =
        monitor_core::registry().sites().find(|s| s.name().ends_with("::monitored_off"))
    {
        site.set_enabled(false);
    }
}

/// ns per call on each of `threads` threads started together (the slowest thread's time).
fn measure(
    f: fn(u64) -> Result<u64, std::io::Error>,
    subscriber: Subscriber,
    threads: usize,
    calls: u64,
) -> f64 {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let dispatch = dispatch(subscriber);
            std::thread::spawn(move || {
                let _default = dispatch.as_ref().map(tracing::dispatcher::set_default);
                // Warm up: first calls allocate per-site state, thread-locals and buffers.
                for i in 0..1_000 {
                    let _ = black_box(f(i));
                }
                barrier.wait();
                let start = Instant::now();
                for i in 0..calls {
                    let _ = black_box(f(i));
                }
                start.elapsed()
            })
        })
        .collect();
    let slowest = handles.into_iter().map(|h| h.join().unwrap_or(Duration::MAX)).max();
    slowest.unwrap_or(Duration::MAX).as_nanos() as f64 / calls as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--count") {
        count_instructions(&args[1..]);
        return;
    }
    let number = |i: usize, default: u64| match args.get(i) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("usage: monitor-peers [ROUNDS] [CALLS_PER_ROUND]");
            std::process::exit(2)
        }),
    };
    let rounds = number(0, 11).max(1) as usize;
    let calls = number(1, 300_000).max(1_000);

    setup();

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{rounds} rounds x {calls} calls per thread; {cpus} CPUs; median (min..max) ns per call"
    );
    let mut results = vec![[Vec::new(), Vec::new()]; VARIANTS.len()];
    for _ in 0..rounds {
        for (i, (_, f, subscriber)) in VARIANTS.iter().enumerate() {
            for (t, threads) in [1, 2].into_iter().enumerate() {
                results[i][t].push(measure(*f, *subscriber, threads, calls));
            }
        }
    }
    fastrace::flush();

    let stats = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        (s[s.len() / 2], s[0], s[s.len() - 1])
    };
    let base = [stats(&results[0][0]).0, stats(&results[0][1]).0];
    let floor = [stats(&results[1][0]).0, stats(&results[1][1]).0];
    println!(
        "\n| variant | 1 thread: median (min..max) | ×base | ×floor | 2 threads: median (min..max) | ×base | ×floor |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (i, (name, ..)) in VARIANTS.iter().enumerate() {
        let mut row = format!("| {name} |");
        for t in 0..2 {
            let (med, min, max) = stats(&results[i][t]);
            row.push_str(&format!(
                " {med:.1} ({min:.1}..{max:.1}) | {:.1} | {:.2} |",
                med / base[t],
                med / floor[t]
            ));
        }
        println!("{row}");
    }
    let overhead = |t: usize| stats(&results[2][t]).0 - base[t];
    println!(
        "\n#[monitored] overhead over the un-instrumented call: {:.1} ns (1 thread), {:.1} ns per call per thread (2 threads).",
        overhead(0),
        overhead(1)
    );
    let bridge = |t: usize| stats(&results[5][t]).0 - stats(&results[4][t]).0;
    println!(
        "MonitorLayer per span, over the registry alone: {:.1} ns (1 thread), {:.1} ns per span per thread (2 threads).",
        bridge(0),
        bridge(1)
    );
}

/// `--count WORKLOAD N`: runs one workload for `bench/peers/instructions`; `--count` alone
/// lists the workloads.
fn count_instructions(args: &[String]) {
    setup();
    let (Some(which), Some(n)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        for name in VARIANTS.iter().map(|v| v.0).chain(instructions::WORKLOADS) {
            println!("{name}");
        }
        return;
    };
    if !instructions::count(which, n) {
        eprintln!("monitor-peers: no workload {which:?}; `--count` lists them");
        std::process::exit(2);
    }
}
