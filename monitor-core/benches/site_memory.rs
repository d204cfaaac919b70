//! What a called site costs in resident memory, measured from the process's own resident set
//! (not computed from types), over 10,000 monitored functions:
//!
//! 1. each called once with the monitor switched off: what calling 10,000 distinct functions
//!    costs any program (their code paged in, the sites' statics read);
//! 2. each called once more, switched on: what the monitor's records of a called site take
//!    (the site's statistics on the heap, its static written, its first histogram chunk);
//! 3. each called once from a second thread: another counter stripe, another histogram lane.
//!
//! Anonymous memory (heap, written statics) and file-backed memory (code, read-only data) are
//! told apart, as Linux's `/proc/self/status` counts them.
//!
//! `cargo bench -p monitor-core --bench site_memory` (Linux only: elsewhere it says so).

mod common {
    pub mod sites;
}
use common::sites;

/// Resident memory in bytes: (anonymous, file-backed).
#[derive(Clone, Copy)]
struct Resident {
    anon: u64,
    file: u64,
}

impl Resident {
    fn now() -> Option<Resident> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        };
        Some(Resident { anon: kib("RssAnon:")?, file: kib("RssFile:")? })
    }

    /// Bytes per site from `self` to `later`, anonymous and file-backed.
    fn per_site(self, later: Resident) -> (f64, f64) {
        let per = |a: u64, b: u64| (b as f64 - a as f64) / 10_000.0;
        (per(self.anon, later.anon), per(self.file, later.file))
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another bench skips this one.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"site_memory".contains(&a)) {
        return;
    }
    let Some(start) = Resident::now() else {
        println!("site_memory: no /proc/self/status here; nothing measured");
        return;
    };
    // The site table is built before the first reading, so it is not counted per site.
    let sites_known = monitor_core::registry().sites().count();

    monitor_core::set_enabled(false);
    let before = Resident::now().unwrap_or(start);
    sites::call_all();
    let paged_in = Resident::now().unwrap_or(before);
    monitor_core::set_enabled(true);
    sites::call_all();
    let recorded = Resident::now().unwrap_or(paged_in);
    std::thread::spawn(sites::call_all).join().expect("the second thread's calls");
    let two_threads = Resident::now().unwrap_or(recorded);

    let snap = monitor_core::registry().snapshot();
    let called = snap.iter_called().count();
    assert!(called >= 10_000, "the 10,000 sites were called ({called})");
    assert!(snap.iter_called().all(|f| f.success_times.count == f.calls()), "every call timed");

    println!("site_memory: {sites_known} sites in the table, {called} called");
    let row = |what: &str, (anon, file): (f64, f64)| {
        println!(
            "site_memory: {what}: {anon:.0} B anonymous + {file:.0} B file-backed per site = {:.0} B",
            anon + file
        );
    };
    row("first call, monitor off (code paged in)", before.per_site(paged_in));
    row("first recorded call (the monitor's records)", paged_in.per_site(recorded));
    row("a second thread's call", recorded.per_site(two_threads));
    row("all of it", before.per_site(two_threads));
}
