//! The demo: an instrumented proxy under synthetic traffic and a web shop of two axum services
//! under real HTTP traffic, with the monitor served on http://127.0.0.1:9000/ (and mounted at
//! /monitor/ of the shop) and a summary printed every few seconds.
//!
//! ```text
//! cargo run -p monitor-examples --example demo                   # runs until Ctrl-C
//! cargo run -p monitor-examples --example demo -- --seconds 5    # stops after 5 s
//! cargo run -p monitor-examples --example demo -- --addr 127.0.0.1:0 --print
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 cargo run -p monitor-examples --example demo
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_examples::shop;
use monitor_examples::vlite::{traffic, Proxy};

// Allocation figures for /debug/vars, and allocations per call for every monitored function.
#[global_allocator]
static ALLOC: monitor_core::alloc::CountingAllocator =
    monitor_core::alloc::CountingAllocator::system();

fn usage() -> ! {
    eprintln!(
        "usage: demo [--addr HOST:PORT] [--seconds N] [--every N] [--print]\n\
         \x20 --addr     where the monitor listens (default 127.0.0.1:9000; port 0: any free one)\n\
         \x20 --seconds  stop after N seconds (default: run until interrupted)\n\
         \x20 --every    print a summary every N seconds (default 3)\n\
         \x20 --print    print every function's statistics, not only a summary"
    );
    std::process::exit(2)
}

fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1) {
        Some(v) => Some(v),
        None => usage(),
    }
}

fn parse_flag(args: &[String], name: &str) -> Option<u64> {
    flag_value(args, name).map(|v| v.parse().unwrap_or_else(|_| usage()))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        usage();
    }
    let known = ["--addr", "--seconds", "--every", "--print"];
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--print" => i += 1,
            a if known.contains(&a) => i += 2,
            _ => usage(),
        }
    }
    let seconds = parse_flag(&args, "--seconds");
    let print_all = args.iter().any(|a| a == "--print");
    let addr = flag_value(&args, "--addr").unwrap_or("127.0.0.1:9000");
    let every = Duration::from_secs(parse_flag(&args, "--every").unwrap_or(3).max(1));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            std::process::exit(1)
        }
    };
    // The demo's render bug panics now and then; the monitor counts those panics, so keep
    // the terminal for the statistics.
    std::panic::set_hook(Box::new(|_| {}));

    monitor_core::process::register();
    // Keep the last 32 traces in which a call failed, whole: /trace/errors/svg.
    monitor_core::trace::keep_failed_traces(32);
    monitor_core::trace::keep_slow_traces(4, Duration::from_secs(3600));
    let server = match monitor_http::serve(addr) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(1)
        }
    };
    // OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (and the other OTEL_* variables) ship
    // traces, metrics and the proxy's warnings to a collector.
    let exporters = match monitor_http::export::from_env() {
        Ok(exporters) => exporters,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::exit(2)
        }
    };
    if let Some(logger) = exporters.logs.as_ref().and_then(monitor_http::export::Exporter::logger) {
        let _ = logger.level(log::LevelFilter::Warn).install();
    }
    if exporters.traces.is_some() && std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
        // Some traces to send: one request in twenty.
        let _ = monitor_core::trace::set_sample_ratio(0.05);
    }
    let base = format!("http://{}", server.local_addr());
    println!("demo: a caching proxy and a web shop under traffic. The monitor is at:");
    println!("  {base}/             index: every view, and a table of the functions");
    println!("  {base}/funcs        per function: callers, counts, errors, latency quantiles");
    println!("  {base}/funcs/svg    the call graph; each node opens its function's page");
    println!("  {base}/funcs/dot    the same for Graphviz, /funcs/json, /stats, /stats/json");
    println!("  {base}/metrics      Prometheus; /debug/vars for expvar readers");
    println!("  {base}/slo/json     objectives: budget left, burn rates, whether they would page");
    println!("  {base}/slo/rules.yaml   their Prometheus alerting rules (and /slo/tests.yaml)");
    println!(
        "  {base}/trace/svg?regex=Proxy::handle   the next request's call tree (or /trace/json)"
    );
    println!(
        "  {base}/trace/errors/svg                the last failed requests, whole; /ps in flight"
    );
    if !exporters.is_empty() {
        println!("  and {exporters}, to the collector OTEL_EXPORTER_OTLP_* names");
    }

    let proxy = Arc::new(Proxy::new(0x5eed));
    let started = Instant::now();
    runtime.block_on(async {
        // Beside the proxy, a web shop of two axum services behind the monitor's middleware,
        // with customers ordering over real HTTP: routes, client calls and users in every view.
        match shop::start("127.0.0.1:0").await {
            Ok(shop) => {
                let at = shop.storefront;
                println!("  http://{at}/monitor/   the same, mounted in the demo's axum shop");
                println!(
                    "  {base}/trace/svg?regex=%5EGET%20/orders   one order across both services"
                );
                tokio::spawn(async move {
                    loop {
                        shop::customers(shop, 100, 4, 60).await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
            }
            Err(e) => eprintln!("demo: the shop did not start ({e}); the proxy runs alone"),
        }
        let mut next_report = started + every;
        loop {
            let tally =
                traffic(Arc::clone(&proxy), 200, 32, Duration::from_millis(60), rand_seed()).await;
            let now = Instant::now();
            let done = seconds.is_some_and(|s| now.duration_since(started).as_secs() >= s);
            if now >= next_report || done {
                next_report = now + every;
                report(started.elapsed(), &tally, print_all);
            }
            if done {
                break;
            }
        }
    });
    for (signal, sent) in exporters.shutdown() {
        println!(
            "demo: {signal}: {} exported, {} dropped, {} given up, {} unsent",
            sent.exported, sent.dropped, sent.given_up, sent.unsent
        );
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn report(elapsed: Duration, last: &monitor_examples::vlite::Tally, print_all: bool) {
    let snapshot = monitor_core::registry().snapshot();
    println!(
        "\nafter {:.0}s (last batch of 200 requests: {} ok, {} errors, {} panics, {} timed out)",
        elapsed.as_secs_f64(),
        last.ok,
        last.errors,
        last.panics,
        last.timeouts
    );
    if print_all {
        let mut out = String::new();
        monitor_http::write_text(&snapshot, &mut out);
        println!("{out}");
        return;
    }
    for f in snapshot.iter_called() {
        println!(
            "  {:<45} calls {:>7}  errors {:>5}  panics {:>3}  cancelled {:>4}  p99 {:>9.3} ms",
            f.name.trim_start_matches("monitor_examples::"),
            f.calls(),
            f.errors_total(),
            f.panics,
            f.cancelled,
            f.success_times.quantile(0.99) as f64 / 1e6
        );
    }
}
