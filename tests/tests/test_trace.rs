//! Traces in the core: watches capture whole trees under concurrent traffic (threads and
//! tasks), failed traces are kept, observers get sampled spans, remote parents are continued.
//!
//! Wall clock and scheduling: captures wait under deadlines (bounds on the wait, never on speed),
//! and short sleeps only make calls overlap; what is checked holds for any interleaving.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitor_core::trace::{
    self, AttributeValue, SpanObserver, SpanOutcome, SpanRecord, Status, Trace, TraceParent, Watch,
    WatchError, WatchFilter,
};
use monitor_core::{monitored, FutureExt, Span, TraceId};

// Settings that are global to the process (failure keeping, record-all, sampling) and the
// ring of failed traces are shared: the tests run one at a time (`common::turn`).
use common::turn as global;

#[derive(Debug)]
struct Failed;

#[monitored]
fn leaf(i: u32) -> Result<u32, Failed> {
    trace::annotate("i", i);
    std::thread::sleep(Duration::from_micros(200));
    trace::checkpoint("slept");
    if i % 3 == 2 {
        Err(Failed)
    } else {
        Ok(i)
    }
}

#[monitored]
fn middle(i: u32) -> u32 {
    trace::event("start");
    let a = leaf(i).unwrap_or(0);
    // A child on another thread, carried by the span.
    let b = std::thread::spawn(Span::current().wrap(move || leaf(i + 1))).join().unwrap();
    a + b.unwrap_or(0)
}

#[monitored]
fn handle(i: u32) -> u32 {
    middle(i) + middle(i + 10)
}

fn assert_tree(t: &Trace) {
    let root = t.root_span().expect("root span");
    assert_eq!(root.name, "test_trace::handle");
    assert_eq!(
        t.spans.len(),
        1 + 2 + 2 * 2,
        "{:#?}",
        t.spans.iter().map(|s| s.name).collect::<Vec<_>>()
    );
    let ids: HashSet<_> = t.spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), t.spans.len(), "span ids are unique");
    for s in &t.spans {
        assert_eq!(s.trace_id, t.trace_id);
        if s.span_id == t.root {
            continue;
        }
        let parent =
            t.spans.iter().find(|p| Some(p.span_id) == s.parent_id).expect("parent in trace");
        // Timing order: a child runs within its parent.
        assert!(s.start_unix_ns >= parent.start_unix_ns, "{} starts after {}", s.name, parent.name);
        assert!(
            s.end_unix_ns() <= parent.end_unix_ns() + 1_000_000,
            "{} ends within {}",
            s.name,
            parent.name
        );
        match s.name {
            "test_trace::middle" => {
                assert_eq!(parent.name, "test_trace::handle");
                assert_eq!(s.events[0].name, "start");
            }
            "test_trace::leaf" => {
                assert_eq!(parent.name, "test_trace::middle");
                let AttributeValue::I64(i) = s.annotations[0].1 else { panic!("annotation") };
                let expect =
                    if i % 3 == 2 { SpanOutcome::Error("Failed") } else { SpanOutcome::Success };
                assert_eq!(s.outcome, expect);
                if expect != SpanOutcome::Success {
                    assert_eq!(s.status, Status::Error("Failed".into()));
                }
                let cp = &s.events[0];
                assert_eq!(cp.name, "slept");
                assert!(cp.since_checkpoint_ns.unwrap() >= 200_000);
                assert!(s.duration_ns >= 200_000);
            }
            other => panic!("unexpected span {other}"),
        }
    }
}

/// Runs `handle` from 4 threads until `stop`.
fn traffic(stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<u64>> {
    (0..4)
        .map(|t| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    handle(t * 100 + (n % 50) as u32);
                    n += 1;
                }
                n
            })
        })
        .collect()
}

#[test]
fn watch_by_function_captures_a_whole_tree_under_traffic() {
    let _g = global();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = traffic(Arc::clone(&stop));
    for _ in 0..5 {
        let w = Watch::start(WatchFilter::function(|s| s.name() == "test_trace::handle")).unwrap();
        let t = w.wait(Duration::from_secs(10)).unwrap();
        assert_tree(&t);
    }
    // A watch of an inner function captures from there down.
    let w = Watch::start(WatchFilter::function(|s| s.name() == "test_trace::middle")).unwrap();
    let t = w.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(t.root_span().unwrap().name, "test_trace::middle");
    assert_eq!(t.spans.len(), 3);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        assert!(th.join().unwrap() > 0);
    }
}

#[monitored]
fn remote_entry() -> Option<TraceId> {
    leaf(0).ok();
    Span::current().trace_id()
}

#[test]
fn watch_by_trace_id_continues_a_remote_trace() {
    let _g = global();
    let tp: TraceParent =
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00".parse().unwrap();
    let w = Watch::start(WatchFilter::trace(tp.trace_id)).unwrap();
    // Calls in other traces do not bind it.
    remote_entry();
    assert!(!w.is_bound());
    let seen = Span::from_remote(tp).in_scope(remote_entry);
    assert_eq!(seen, Some(tp.trace_id));
    let t = w.wait(Duration::from_secs(5)).unwrap();
    assert_eq!(t.trace_id, tp.trace_id);
    let root = t.root_span().unwrap();
    assert_eq!(root.name, "test_trace::remote_entry");
    assert_eq!(root.parent_id, Some(tp.parent_id));
    assert!(root.remote_parent);
    assert_eq!(t.spans.len(), 2);
    // The remote parent makes it an entry point of the call graph.
    let snap = monitor_core::registry().snapshot();
    assert!(snap.function("test_trace::remote_entry").unwrap().is_entry());
}

#[monitored]
async fn async_leaf(i: u32) -> Result<u32, Failed> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    trace::annotate("i", i);
    if i == 1 {
        Err(Failed)
    } else {
        Ok(i)
    }
}

#[monitored]
async fn async_root() -> u32 {
    let local = async_leaf(0).await.unwrap_or(0);
    let spawned = tokio::spawn(async_leaf(1).with_current_span());
    let never = tokio::time::timeout(Duration::from_millis(2), async_leaf_slow()).await;
    assert!(never.is_err());
    local + spawned.await.unwrap().unwrap_or(0)
}

#[monitored]
async fn async_leaf_slow() {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

#[test]
fn async_trees_across_tasks_with_every_outcome() {
    let _g = global();
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let w = Watch::start(WatchFilter::function(|s| s.name() == "test_trace::async_root")).unwrap();
    rt.block_on(async {
        let fut = w.wait_async();
        let run = tokio::spawn(async_root());
        let t = tokio::time::timeout(Duration::from_secs(10), fut).await.expect("captured");
        run.await.unwrap();
        let outcomes: Vec<_> = {
            let mut v: Vec<_> = t.spans.iter().map(|s| (s.name, s.outcome)).collect();
            v.sort_by_key(|(n, o)| (*n, o.to_string()));
            v
        };
        assert_eq!(
            outcomes,
            vec![
                ("test_trace::async_leaf", SpanOutcome::Error("Failed")),
                ("test_trace::async_leaf", SpanOutcome::Success),
                ("test_trace::async_leaf_slow", SpanOutcome::Cancelled),
                ("test_trace::async_root", SpanOutcome::Success),
            ]
        );
    });
}

#[test]
fn watch_errors_and_limits() {
    let _g = global();
    assert_eq!(
        Watch::start(WatchFilter::function(|_| false)).unwrap_err(),
        WatchError::MatchesNothing
    );
    let mut held = Vec::new();
    let id = TraceId::from_u128(0xdead);
    loop {
        match Watch::start(WatchFilter::trace(id)) {
            Ok(w) => held.push(w),
            Err(e) => {
                assert_eq!(e, WatchError::TooMany { max: trace::MAX_WATCHES });
                break;
            }
        }
        assert!(held.len() <= trace::MAX_WATCHES);
    }
    let w = held.pop().unwrap();
    assert_eq!(
        w.wait(Duration::from_millis(20)).unwrap_err(),
        WatchError::Timeout(Duration::from_millis(20))
    );
    drop(held);
    drop(w);
    // Dropped watches free their places.
    let again: Vec<_> =
        (0..trace::MAX_WATCHES).map(|_| Watch::start(WatchFilter::trace(id)).unwrap()).collect();
    drop(again);
}

#[monitored]
fn flaky(i: u32) -> Result<u32, Failed> {
    if i == 7 {
        Err(Failed)
    } else {
        Ok(i)
    }
}

#[monitored]
fn request(i: u32) -> u32 {
    flaky(i).unwrap_or(0) + flaky(i + 100).unwrap_or(0)
}

#[monitored]
fn panics() {
    panic!("boom");
}

#[test]
fn failed_traces_are_kept_without_sampling() {
    let _g = global();
    trace::keep_failed_traces(4);
    for i in 0..200 {
        request(i);
    }
    let _ = std::panic::catch_unwind(panics);
    let failed = trace::failed_traces();
    trace::keep_failed_traces(0);
    let mine: Vec<_> = failed
        .iter()
        .filter(|t| {
            t.root_span().is_some_and(|r| {
                r.name.starts_with("test_trace::request") || r.name == "test_trace::panics"
            })
        })
        .collect();
    assert_eq!(mine.len(), 2, "the one failed request and the panic");
    let p = mine[0].root_span().unwrap();
    assert_eq!((p.name, p.outcome), ("test_trace::panics", SpanOutcome::Panic));
    let req = mine[1];
    assert_eq!(req.spans.len(), 3);
    let bad = req.spans.iter().find(|s| s.outcome.is_failure()).unwrap();
    assert_eq!((bad.name, bad.parent_id), ("test_trace::flaky", Some(req.root)));
    assert_eq!(trace::in_flight().iter().filter(|s| s.name.starts_with("test_trace::")).count(), 0);
}

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Arc<SpanRecord>>>>);

impl SpanObserver for Collect {
    fn observe(&mut self, spans: &[Arc<SpanRecord>]) {
        self.0.lock().unwrap().extend(spans.iter().cloned());
    }
}

#[monitored]
fn sampled_root(i: u32) -> u32 {
    flaky(i).unwrap_or(0)
}

#[test]
fn observers_get_sampled_traces_and_propagation_carries_the_flag() {
    let _g = global();
    let seen = Collect::default();
    let h = trace::add_observer("test", seen.clone(), 100_000);
    trace::set_sample_ratio(0.25).unwrap();
    let mut sampled = 0;
    for i in 0..2000 {
        sampled_root(i);
    }
    // The sampled flag goes out in traceparent.
    #[monitored]
    fn outgoing() -> (bool, String) {
        let s = Span::current();
        (s.is_sampled(), s.traceparent().unwrap().to_string())
    }
    for _ in 0..200 {
        let (is, header) = outgoing();
        assert_eq!(header.ends_with("-01"), is);
        sampled += usize::from(is);
    }
    trace::set_sample_ratio(0.0).unwrap();
    h.shutdown();
    assert!((20..=80).contains(&sampled), "about 25% of 200 sampled: {sampled}");
    let spans = seen.0.lock().unwrap();
    let roots = spans.iter().filter(|s| s.name == "test_trace::sampled_root").count();
    assert!((350..=650).contains(&roots), "about 25% of 2000 traces: {roots}");
    // Whole traces: every sampled root came with its child.
    let children = spans.iter().filter(|s| s.name == "test_trace::flaky").count();
    assert_eq!(children, roots);
    assert!(spans.iter().all(|s| s.sampled));
    let stats = trace::stats();
    assert!(stats.observers.iter().all(|o| o.name != "test"), "unregistered");
}

#[test]
fn in_flight_lists_running_recorded_spans() {
    let _g = global();
    trace::record_all(true);
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    #[monitored]
    fn blocked(tx: std::sync::mpsc::Sender<()>, done: std::sync::mpsc::Receiver<()>) {
        trace::annotate("waiting", true);
        tx.send(()).unwrap();
        done.recv().unwrap();
    }
    let th = std::thread::spawn(move || blocked(tx, done_rx));
    rx.recv().unwrap();
    trace::record_all(false);
    let running: Vec<_> =
        trace::in_flight().into_iter().filter(|s| s.name.ends_with("blocked")).collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].annotations, vec![("waiting".into(), AttributeValue::Bool(true))]);
    done_tx.send(()).unwrap();
    th.join().unwrap();
    assert!(trace::in_flight().iter().all(|s| !s.name.ends_with("blocked")));
}
