//! The call graph (caller -> callee edges with counts) and span ids.

use std::thread;

use monitor_core::{monitored, registry, Caller, Span, SpanId, TraceId};

#[monitored]
fn leaf() -> (Option<TraceId>, Option<SpanId>) {
    let s = Span::current();
    (s.trace_id(), s.span_id())
}

#[monitored]
fn middle() -> bool {
    let me = Span::current();
    let (trace, span) = leaf();
    trace == me.trace_id() && span != me.span_id() && span.is_some()
}

#[monitored]
fn top() -> bool {
    middle() && middle()
}

#[test]
fn edges_and_trace_ids() {
    assert!(top());
    assert!(middle());
    let (t1, _) = leaf();
    let (t2, _) = leaf();
    assert_ne!(t1, t2, "separate entry calls start separate traces");
    assert_eq!(t1.unwrap().to_string().len(), 32);

    let snap = registry().snapshot();
    let leaf = snap.function("test_callgraph::leaf").unwrap();
    assert_eq!(leaf.calls_from("test_callgraph::middle"), 3);
    assert_eq!(leaf.calls_from("entry"), 2);
    assert_eq!(leaf.callers.len(), 2);
    // Most calls first.
    assert_eq!(leaf.callers[0].caller.name(), "test_callgraph::middle");
    let middle = snap.function("test_callgraph::middle").unwrap();
    assert_eq!(middle.calls_from("test_callgraph::top"), 2);
    assert_eq!(middle.calls_from("entry"), 1);
    let top = snap.function("test_callgraph::top").unwrap();
    assert!(top.is_entry());
    match middle.callers.iter().find(|c| c.caller.name() == "test_callgraph::top") {
        Some(c) => assert!(matches!(c.caller, Caller::Function { id, .. } if id == top.id)),
        None => panic!("no edge from top"),
    }
}

#[monitored]
fn recurse(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    1 + recurse(n - 1)
}

#[test]
fn recursion_counts_each_call() {
    assert_eq!(recurse(9), 9);
    let snap = registry().snapshot();
    let f = snap.function("test_callgraph::recurse").unwrap();
    assert_eq!(f.success, 10);
    assert_eq!(f.calls_from("entry"), 1);
    assert_eq!(f.calls_from("test_callgraph::recurse"), 9);
    assert_eq!(f.highwater, 10);
    assert_eq!(f.in_flight, 0);
}

#[monitored]
fn shared_callee() {}

macro_rules! callers {
    ($($name:ident),*) => {
        $(
            #[monitored]
            fn $name() {
                shared_callee()
            }
        )*
        fn call_all() {
            $($name();)*
        }
    };
}

callers!(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9);

#[test]
fn callers_past_the_slots_count_as_other() {
    call_all();
    call_all();
    let snap = registry().snapshot();
    let f = snap.function("test_callgraph::shared_callee").unwrap();
    assert_eq!(f.success, 20);
    assert_eq!(f.callers.iter().map(|c| c.count).sum::<u64>(), 20);
    let other: u64 = f.callers.iter().filter(|c| c.caller == Caller::Other).map(|c| c.count).sum();
    assert_eq!(other, 4);
    assert_eq!(f.callers.len(), 9);
}

#[monitored]
fn on_thread() -> Option<TraceId> {
    Span::current().trace_id()
}

#[monitored]
fn spawns_threads() -> bool {
    let me = Span::current().trace_id();
    let carried = thread::spawn(Span::current().wrap(on_thread)).join().unwrap();
    let plain = thread::spawn(on_thread).join().unwrap();
    let scoped = Span::current();
    let in_scope = thread::scope(|s| s.spawn(|| scoped.in_scope(on_thread)).join().unwrap());
    carried == me && in_scope == me && plain != me
}

#[test]
fn spans_carried_into_threads() {
    assert!(spawns_threads());
    let snap = registry().snapshot();
    let f = snap.function("test_callgraph::on_thread").unwrap();
    assert_eq!(f.calls_from("test_callgraph::spawns_threads"), 2);
    assert_eq!(f.calls_from("entry"), 1);
}

#[monitored]
fn child_ids() -> (Option<SpanId>, Option<TraceId>) {
    let s = Span::current();
    (s.parent_id(), s.trace_id())
}

#[monitored]
fn parent_ids() -> bool {
    let me = Span::current();
    let (parent, trace) = child_ids();
    me.parent_id().is_none() && parent == me.span_id() && trace == me.trace_id()
}

#[test]
fn parent_span_ids_link_the_tree() {
    assert!(parent_ids());
    assert_eq!(child_ids().0, None);
}
