//! Counts stay exact under any number of threads, with errors and panics mixed in.
//!
//! Scheduling: threads meet at barriers and are joined before counting; counts are exact for any
//! interleaving.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::thread;

use monitor_core::{monitored, registry};

const THREADS: u64 = 8;
const CALLS: u64 = 20_000;

#[monitored]
fn mixed(i: u64) -> Result<u64, std::io::Error> {
    match i % 10 {
        0 => Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        1 => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        7 if i % 1000 == 7 => panic!("planned panic"),
        _ => Ok(i),
    }
}

#[monitored]
fn parent(i: u64) -> Result<u64, std::io::Error> {
    mixed(i)
}

#[test]
fn counts_are_exact_mt() {
    // Keep the planned panics quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in 0..CALLS {
                    let n = t * CALLS + i;
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        if n % 2 == 0 {
                            parent(n)
                        } else {
                            mixed(n)
                        }
                    }));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = std::panic::take_hook();

    let total = THREADS * CALLS;
    let count = |pred: &dyn Fn(u64) -> bool| (0..total).filter(|&n| pred(n)).count() as u64;
    let timed_out = count(&|n| n % 10 == 0);
    let not_found = count(&|n| n % 10 == 1);
    let panics = count(&|n| n % 1000 == 7);

    let snap = registry().snapshot();
    let f = snap.function("test_threads::mixed").unwrap();
    assert_eq!(f.error("TimedOut"), timed_out);
    assert_eq!(f.error("NotFound"), not_found);
    assert_eq!(f.panics, panics);
    assert_eq!(f.success, total - timed_out - not_found - panics);
    assert_eq!(f.cancelled, 0);
    assert_eq!(f.in_flight, 0);
    assert_eq!(f.success_times.count, f.success);
    assert_eq!(f.failure_times.count, timed_out + not_found + panics);
    let hist: u64 = f.success_times.buckets.iter().map(|b| b.count).sum();
    assert_eq!(hist, f.success);
    assert_eq!(f.calls_from("entry"), total / 2);
    assert_eq!(f.calls_from("test_threads::parent"), total / 2);
    assert!(f.highwater >= 1 && f.highwater <= THREADS);

    let p = snap.function("test_threads::parent").unwrap();
    assert_eq!(p.calls(), total / 2);
    assert_eq!(p.panics, count(&|n| n % 2 == 0 && n % 1000 == 7));
}

#[monitored]
fn hold(barrier: &Barrier) {
    // Every thread is inside this call when the barrier opens.
    barrier.wait();
    barrier.wait();
}

#[test]
fn highwater_sees_true_concurrency() {
    let n = 6;
    let barrier = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || hold(&b))
        })
        .collect();
    barrier.wait();
    let during = registry().snapshot();
    barrier.wait();
    for t in threads {
        t.join().unwrap();
    }
    let f = during.function("test_threads::hold").unwrap();
    assert_eq!(f.in_flight, n as u64);
    assert_eq!(f.highwater, n as u64);
    let after = registry().snapshot();
    let f = after.function("test_threads::hold").unwrap();
    assert_eq!((f.in_flight, f.highwater, f.success), (0, n as u64, n as u64));
}

#[monitored]
fn short_lived(i: u64) -> Result<u64, std::io::Error> {
    if i % 5 == 0 {
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    } else {
        Ok(i)
    }
}

#[test]
fn counts_stay_exact_as_threads_come_and_go() {
    // Waves of threads, each wave joined before the next starts: a thread that owns a stripe
    // gives it back when it ends, and a thread of the next wave counts on from there with
    // plain stores. Nothing any of them counted may be lost.
    const WAVES: u64 = 6;
    const PER_WAVE: u64 = 5;
    const N: u64 = 4_000;
    for wave in 0..WAVES {
        let threads: Vec<_> = (0..PER_WAVE)
            .map(|t| {
                thread::spawn(move || {
                    for i in 0..N {
                        let _ = short_lived((wave * PER_WAVE + t) * N + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    let total = WAVES * PER_WAVE * N;
    let snap = registry().snapshot();
    let f = snap.function("test_threads::short_lived").unwrap();
    assert_eq!(f.error("TimedOut"), total / 5);
    assert_eq!(f.success, total - total / 5);
    assert_eq!(f.success_times.count, f.success);
    let hist: u64 = f.success_times.buckets.iter().map(|b| b.count).sum();
    assert_eq!(hist, f.success);
    assert_eq!(f.calls_from("entry"), total);
    assert_eq!((f.in_flight, f.panics, f.cancelled), (0, 0, 0));
}
