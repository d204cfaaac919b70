//! After a function's first call, its calls allocate nothing: checked with a counting global
//! allocator around many calls of every kind (success, errors, panics, nested, async, cancelled),
//! and likewise every instrument's calls on a held handle.
#![allow(unsafe_code)] // A `GlobalAlloc` impl is unsafe by definition.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use monitor_core::monitored;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: defers every operation to `System`; only counts allocations on the calling thread.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

#[monitored]
fn work(i: u64) -> Result<u64, std::io::Error> {
    match i % 3 {
        0 => Ok(inner(i)),
        1 => Err(std::io::Error::from(std::io::ErrorKind::TimedOut)),
        _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    }
}

#[monitored]
fn inner(i: u64) -> u64 {
    i * 2
}

#[monitored]
fn panicky() {
    panic!("planned");
}

#[monitored]
async fn async_work(i: u64) -> u64 {
    Yield(i % 2 == 0).await;
    i
}

struct Yield(bool);

impl Future for Yield {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            self.0 = false;
            cx.waker().wake_by_ref();
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

fn run_async(i: u64, finish: bool) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(async_work(i));
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(_) => break,
            Poll::Pending if !finish => break,
            Poll::Pending => {}
        }
    }
}

struct Instruments {
    counter: monitor_core::Counter,
    meter: monitor_core::Meter,
    event: monitor_core::Event,
    int_val: monitor_core::IntVal,
    float_val: monitor_core::FloatVal,
    bool_val: monitor_core::BoolVal,
    duration_val: monitor_core::DurationVal,
    timer: monitor_core::Timer,
}

fn instruments() -> &'static Instruments {
    static I: std::sync::OnceLock<Instruments> = std::sync::OnceLock::new();
    I.get_or_init(|| {
        let s = monitor_core::Scope::new("hot_path");
        Instruments {
            counter: s.counter("c"),
            meter: s.meter("m"),
            event: s.event("e"),
            int_val: s.int_val("i"),
            float_val: s.float_val("f"),
            bool_val: s.bool_val("b"),
            duration_val: s.duration_val("d"),
            timer: s.timer("t"),
        }
    })
}

fn round(n: u64) {
    let m = instruments();
    for i in 0..n {
        let _ = std::hint::black_box(work(i));
        run_async(i, i % 5 != 0);
        m.counter.inc();
        m.meter.mark(i);
        m.event.mark();
        m.int_val.observe(i as i64 - 7);
        m.float_val.observe(i as f64 * 0.5);
        m.bool_val.observe(i % 2 == 0);
        m.duration_val.observe(std::time::Duration::from_nanos(i));
        m.timer.start().stop();
    }
}

#[test]
fn calls_after_the_first_allocate_nothing() {
    // Warm up: first calls allocate each site's statistics, first errors claim their kinds,
    // the thread picks its stripe, the clock calibrates, the panic machinery warms up.
    round(10);
    std::panic::set_hook(Box::new(|_| {}));
    let _ = catch_unwind(AssertUnwindSafe(panicky));

    let before = allocations();
    round(30_000);
    let after = allocations();
    assert_eq!(after - before, 0, "monitored calls allocated {} times", after - before);

    // Sanity check of the counter itself.
    let v = std::hint::black_box(vec![1u8; 16]);
    assert!(allocations() > after);
    drop(v);

    let snap = monitor_core::registry().snapshot();
    let w = snap.function("test_hot_path::work").unwrap();
    assert_eq!(w.calls(), 30_010);
    let a = snap.function("test_hot_path::async_work").unwrap();
    assert_eq!(a.success + a.cancelled, 30_010);
    assert_eq!(a.cancelled, 30_010 / 10);
}
