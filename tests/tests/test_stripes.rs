//! Calls that start on one thread and end on another count exactly, while the threads own
//! their stripes: an owner writes its stripe's counters with plain stores, so the end of a
//! call must count on the stripe of the thread that ends it.
//!
//! A file of its own: its two threads are the process's first to call a monitored function,
//! so (on a machine of 2 or more CPUs) each owns a stripe. Scheduling: the threads meet at a
//! barrier before ending calls, and are joined before counting.

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread;

use monitor_core::{monitored, registry};

/// Pending at its first poll, ready at its second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[monitored]
async fn moved_between_threads(i: u64) -> Result<u64, std::io::Error> {
    YieldOnce(false).await;
    if i % 4 == 0 {
        return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    Ok(i)
}

#[test]
fn calls_that_end_on_another_thread_are_exact() {
    // Two threads each start futures, keep half and hand the other half to the other thread;
    // then both end all they hold at once (or drop them unfinished). A call counts its start
    // on the stripe of the thread that started it and its end on the stripe of the thread
    // that ends it, while both threads end calls of both: nothing may be lost.
    const N: u64 = 20_000;
    type Moved = Pin<Box<dyn Future<Output = Result<u64, std::io::Error>> + Send>>;
    fn poll(fut: &mut Moved) -> std::task::Poll<Result<u64, std::io::Error>> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fut.as_mut().poll(&mut cx)
    }
    let barrier = Arc::new(Barrier::new(2));
    let run = |first: u64, out: Sender<Vec<(u64, Moved)>>, inbox: Receiver<Vec<(u64, Moved)>>| {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            let (mut mine, mut theirs) = (Vec::new(), Vec::new());
            for i in first..first + N {
                let mut fut: Moved = Box::pin(moved_between_threads(i));
                assert!(poll(&mut fut).is_pending());
                if i % 2 == 0 {
                    mine.push((i, fut))
                } else {
                    theirs.push((i, fut))
                }
            }
            out.send(theirs).unwrap();
            mine.extend(inbox.recv().unwrap());
            barrier.wait();
            for (i, mut fut) in mine {
                if i % 10 == 9 {
                    drop(fut);
                } else {
                    assert!(poll(&mut fut).is_ready());
                }
            }
        })
    };
    let (to_second, second_inbox) = channel();
    let (to_first, first_inbox) = channel();
    let threads = [run(0, to_second, first_inbox), run(N, to_first, second_inbox)];
    for t in threads {
        t.join().unwrap();
    }
    let total = 2 * N;
    let cancelled = (0..total).filter(|i| i % 10 == 9).count() as u64;
    let not_found = (0..total).filter(|i| i % 10 != 9 && i % 4 == 0).count() as u64;
    let snap = registry().snapshot();
    let f = snap.function("test_stripes::moved_between_threads").unwrap();
    assert_eq!(f.cancelled, cancelled);
    assert_eq!(f.error("NotFound"), not_found);
    assert_eq!(f.success, total - cancelled - not_found);
    assert_eq!(f.failure_times.count, cancelled + not_found);
    assert_eq!((f.in_flight, f.panics), (0, 0));
}
