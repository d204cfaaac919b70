//! Switching recording off and on at run time, globally and per function. One test: the
//! global switch would disturb tests running beside it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use monitor_core::{monitored, registry, Span};

#[monitored]
fn child() -> bool {
    Span::current().site().is_some_and(|s| s.name() == "test_switch::child")
}

#[monitored]
fn parent() -> bool {
    child()
}

#[monitored]
async fn async_work() -> u8 {
    7
}

fn calls(name: &str) -> u64 {
    registry().snapshot().function(&format!("test_switch::{name}")).unwrap().calls()
}

#[test]
fn switches_stop_and_resume_recording() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(parent());
    assert_eq!((calls("parent"), calls("child")), (1, 1));

    // Globally off: nothing is recorded, no span is current, results are unchanged.
    monitor_core::set_enabled(false);
    assert!(!child(), "a switched-off call is no span");
    assert!(!parent());
    assert_eq!(rt.block_on(async_work()), 7);
    monitor_core::set_enabled(true);
    assert_eq!((calls("parent"), calls("child"), calls("async_work")), (1, 1, 0));

    // One site off: its callees hang under its caller (here: entry).
    let site = registry().sites().find(|s| s.name() == "test_switch::parent").unwrap();
    site.set_enabled(false);
    assert!(parent());
    site.set_enabled(true);
    let snap = registry().snapshot();
    let c = snap.function("test_switch::child").unwrap();
    assert_eq!((c.calls_from("test_switch::parent"), c.calls_from("entry")), (1, 1));
    assert_eq!(snap.function("test_switch::parent").unwrap().calls(), 1);

    // A call that started while on finishes recording after the switch flips.
    let mut fut = Box::pin(yields_once());
    let mut cx = Context::from_waker(Waker::noop());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    monitor_core::set_enabled(false);
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(1));
    monitor_core::set_enabled(true);
    let f = registry().snapshot().function("test_switch::yields_once").cloned().unwrap();
    assert_eq!((f.success, f.in_flight), (1, 0));
}

#[monitored]
async fn yields_once() -> u8 {
    YieldOnce(false).await;
    1
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}
