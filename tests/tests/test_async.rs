//! Async calls: outcome at completion, cancellation on drop, parents across `.await` and
//! threads, spans carried into spawned tasks.
//!
//! Wall clock and scheduling: the cancellation test times a real tokio timeout (its bound is
//! one the timeout guarantees, see the test); the others only count, whatever the interleaving.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use monitor_core::{monitored, registry, FunctionStats, FutureExt, Span, TraceId};

fn stats(name: &str) -> FunctionStats {
    registry().snapshot().function(name).cloned().unwrap_or_else(|| panic!("no function {name}"))
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[monitored]
async fn sleeps_forever() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

#[monitored]
fn builds_future() -> impl Future<Output = u8> {
    async { 1 }
}

#[test]
fn dropped_futures_are_cancelled() {
    let rt = multi_thread();
    rt.block_on(async {
        for _ in 0..3 {
            // Wall-clock timing: `timeout` fixes its deadline when it is made, and an `async fn`'s
            // call starts at its first poll. Poll once first, so the call has started before the
            // deadline is set and lasts at least the 5 ms however late the runtime gets to it.
            let mut call = std::pin::pin!(sleeps_forever());
            let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
            assert!(first.is_pending());
            let r = tokio::time::timeout(Duration::from_millis(5), call).await;
            assert!(r.is_err());
        }
    });
    let f = stats("test_async::sleeps_forever");
    assert_eq!((f.cancelled, f.success, f.panics, f.in_flight), (3, 0, 0, 0));
    assert_eq!(f.failure_times.count, 3);
    // The monitor times calls with the raw TSC scaled by a ratio calibrated against the OS clock
    // (to within a few ppm); 0.1% covers that calibration, and nothing in scheduling can shorten
    // a call that started before its deadline was set.
    assert!(f.failure_times.min_ns >= 4_995_000, "cancelled after the 5 ms timeout: {f:?}");

    // An `async fn`'s call starts at its first poll: a future never polled made no call.
    drop(sleeps_forever());
    assert_eq!(stats("test_async::sleeps_forever").calls(), 3);
    // A function returning `impl Future` was called when it returned the future.
    drop(builds_future());
    assert_eq!(rt.block_on(builds_future()), 1);
    let b = stats("test_async::builds_future");
    assert_eq!((b.cancelled, b.success), (1, 1));
}

#[monitored]
async fn leaf(hops: u32) -> Option<TraceId> {
    for _ in 0..hops {
        tokio::task::yield_now().await;
    }
    Span::current().trace_id()
}

#[monitored]
async fn root(i: u32) -> bool {
    let mine = Span::current().trace_id();
    tokio::time::sleep(Duration::from_micros(u64::from(i % 3))).await;
    let child = leaf(i % 4).await;
    mine.is_some() && child == mine && Span::current().trace_id() == mine
}

#[test]
fn parents_survive_await_across_threads() {
    let rt = multi_thread();
    let ok = rt.block_on(async {
        let tasks: Vec<_> = (0..200).map(|i| tokio::spawn(root(i))).collect();
        let mut ok = 0;
        for t in tasks {
            ok += u32::from(t.await.unwrap());
        }
        ok
    });
    assert_eq!(ok, 200);
    let leaf = stats("test_async::leaf");
    assert_eq!(leaf.calls_from("test_async::root"), 200);
    assert_eq!(leaf.calls_from("entry"), 0);
    assert_eq!(stats("test_async::root").calls_from("entry"), 200);
}

#[monitored]
async fn spawned_child() -> Option<TraceId> {
    Span::current().trace_id()
}

#[monitored]
async fn spawner() -> (Option<TraceId>, Option<TraceId>, Option<TraceId>) {
    let carried = tokio::spawn(spawned_child().with_current_span()).await.unwrap();
    let detached = tokio::spawn(spawned_child()).await.unwrap();
    (Span::current().trace_id(), carried, detached)
}

#[test]
fn spawned_tasks_carry_the_span_when_asked() {
    let (mine, carried, detached) = multi_thread().block_on(spawner());
    assert!(mine.is_some());
    assert_eq!(carried, mine);
    assert_ne!(detached, mine);
    let c = stats("test_async::spawned_child");
    assert_eq!(c.calls_from("test_async::spawner"), 1);
    assert_eq!(c.calls_from("entry"), 1);
}

#[monitored]
async fn async_panics(n: u32) -> u32 {
    tokio::task::yield_now().await;
    if n > 0 {
        panic!("async boom");
    }
    n
}

#[test]
fn panics_in_tasks_are_panics_not_cancellations() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt = multi_thread();
    let results = rt.block_on(async {
        let a = tokio::spawn(async_panics(1)).await;
        let b = tokio::spawn(async_panics(0)).await;
        (a, b)
    });
    let _ = std::panic::take_hook();
    assert!(results.0.unwrap_err().is_panic());
    assert_eq!(results.1.unwrap(), 0);
    let f = stats("test_async::async_panics");
    assert_eq!((f.panics, f.success, f.cancelled, f.in_flight), (1, 1, 0, 0));
}

#[monitored]
async fn fails(n: u32) -> Result<u32, std::io::Error> {
    if n == 0 {
        Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))?;
    }
    Ok(n)
}

#[test]
fn async_errors_by_kind() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(rt.block_on(fails(0)).is_err());
    assert_eq!(rt.block_on(fails(2)).unwrap(), 2);
    let f = stats("test_async::fails");
    assert_eq!((f.success, f.errors), (1, vec![("ConnectionReset", 1)]));
}
