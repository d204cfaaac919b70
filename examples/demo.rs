//! The demo: an instrumented proxy under synthetic traffic, with what `monitor` records about
//! it printed every few seconds.
//!
//! ```text
//! cargo run -p monitor-examples --example demo                 # runs until Ctrl-C
//! cargo run -p monitor-examples --example demo -- --seconds 5  # stops after 5 s
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_examples::vlite::{traffic, Proxy};

fn usage() -> ! {
    eprintln!("usage: demo [--seconds N] [--every N]");
    std::process::exit(2)
}

fn parse_flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(v) => Some(v),
        None => usage(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        usage();
    }
    let seconds = parse_flag(&args, "--seconds");
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

    let proxy = Arc::new(Proxy::new(0x5eed));
    let started = Instant::now();
    println!("demo: a proxy under synthetic traffic; statistics every {}s", every.as_secs());
    runtime.block_on(async {
        let mut next_report = started + every;
        loop {
            let tally =
                traffic(Arc::clone(&proxy), 200, 32, Duration::from_millis(60), rand_seed()).await;
            let now = Instant::now();
            let done = seconds.is_some_and(|s| now.duration_since(started).as_secs() >= s);
            if now >= next_report || done {
                next_report = now + every;
                report(started.elapsed(), &tally);
            }
            if done {
                break;
            }
        }
    });
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

fn report(elapsed: Duration, last: &monitor_examples::vlite::Tally) {
    let mut out = String::new();
    monitor_http::write_text(&monitor_core::registry().snapshot(), &mut out);
    println!(
        "\n===== after {:.1}s (last batch: {} ok, {} errors, {} panics, {} timed out) =====\n{out}",
        elapsed.as_secs_f64(),
        last.ok,
        last.errors,
        last.panics,
        last.timeouts
    );
}
