//! While nothing asks for traces (no watch, no sampling, no failed-trace keeping, no recorded
//! parent), a monitored call records nothing: the hot path's one relaxed load of the recording
//! mode finds zero and the span stays ids only. One test in its own binary, so that no other
//! test turns recording on meanwhile.

use monitor_core::monitored;

#[monitored]
fn leaf(i: u64) -> Result<u64, std::io::Error> {
    if i % 7 == 0 {
        Err(std::io::Error::other("seventh"))
    } else {
        Ok(i)
    }
}

#[monitored]
fn root(i: u64) -> u64 {
    leaf(i).unwrap_or(0) + leaf(i + 1).unwrap_or(0)
}

#[monitored]
async fn async_root(i: u64) -> u64 {
    root(i)
}

fn traffic(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for i in 0..n {
        root(i);
        rt.block_on(async_root(i));
    }
}

#[test]
fn ordinary_calls_record_nothing_until_asked() {
    traffic(1_000);
    let stats = monitor_core::trace::stats();
    assert_eq!((stats.recorded_spans, stats.in_flight), (0, 0), "{stats:?}");
    // The calls were counted all the same.
    let snap = monitor_core::registry().snapshot();
    let leaf = snap.functions.iter().find(|f| f.name.ends_with("leaf")).unwrap();
    assert_eq!(leaf.calls(), 4_000);

    // Asked for, the same calls are recorded: the check above could fail.
    monitor_core::trace::set_sample_ratio(1.0).unwrap();
    traffic(10);
    monitor_core::trace::set_sample_ratio(0.0).unwrap();
    // Two roots, each with two leaves (the async root adds its own span): 3 + 4 per round.
    assert_eq!(monitor_core::trace::stats().recorded_spans, 70);
}
