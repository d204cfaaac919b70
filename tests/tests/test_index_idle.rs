//! The index of a process that has called nothing yet: the call graph's section is there,
//! hidden, and the metrics' section is there whatever it holds, so the page's refresh (which
//! swaps in the fresh page's sections and shows the graph once a function is called) has
//! somewhere to put what comes later; the refreshed page has the function's row, the new
//! instrument and the graph shown.
//!
//! Ports: the server listens on a free loopback port.

mod common;

use monitor_core::monitored;

#[monitored(name = "idle_index::late")]
fn late(i: u64) -> u64 {
    i ^ 0x55
}

#[test]
fn an_idle_index_has_room_for_what_comes_later() {
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let first = common::get(addr, "/").body;
    assert!(first.contains("<section id=\"graph-section\" hidden>"), "{first}");
    assert!(first.contains("<div id=\"live-metrics\" data-live>"), "{first}");
    assert!(!first.contains(">later<"));
    assert!(!first.contains(">idle_index::late</a>"), "not a row yet");
    assert!(first.contains("section.hidden=false"), "the refresh shows the graph");

    late(1);
    monitor_core::Scope::new("idle_index").counter("later").inc();
    let fresh = common::get(addr, "/").body;
    server.shutdown();
    assert!(fresh.contains("<section id=\"graph-section\">"), "{fresh}");
    assert!(fresh.contains(">idle_index::late</a>"), "{fresh}");
    let metrics = fresh.split("<div id=\"live-metrics\" data-live>").nth(1).unwrap();
    assert!(metrics.split("</div>").next().unwrap().contains(">later<"), "{metrics}");
}
