//! `/function?name=…`: one function's page, checked as served and as headless Chromium renders
//! it: counts, errors by kind, the latency histogram, callers and callees as links to their own
//! pages, kept failed and slow traces, and a live refresh that changes the numbers while
//! traffic runs.
//!
//! Wall clock: Chromium runs the page's refresh timer in virtual time (`--virtual-time-budget`),
//! while a thread keeps calling the function; the test checks that the count it shows grew
//! from the one the page came with, not by how much.

mod common;

use std::time::Duration;

use monitor_core::monitored;

#[derive(Debug, monitor_core::ErrorKind)]
enum DbError {
    Timeout,
}

#[monitored(name = "page::query")]
fn query(i: u64) -> Result<u64, DbError> {
    if i % 4 == 0 {
        Err(DbError::Timeout)
    } else {
        Ok(i)
    }
}

#[monitored(name = "page::handle <\"a\">")]
fn handle(i: u64) -> u64 {
    query(i).unwrap_or(0)
}

fn count_in(html: &str, key: &str) -> u64 {
    let cell = format!("data-k=\"{key}\">");
    let at = html.find(&cell).unwrap_or_else(|| panic!("no {key} cell")) + cell.len();
    html[at..].split('<').next().unwrap().parse().unwrap()
}

#[test]
fn the_page_of_a_function() {
    monitor_core::trace::keep_failed_traces(8);
    monitor_core::trace::keep_slow_traces(2, Duration::from_secs(3600));
    for i in 0..20 {
        handle(i);
    }
    // The page's snapshot: the function in full, its callees' counts, nothing else's.
    let handle_name = "page::handle <\"a\">";
    let around = monitor_core::registry().snapshot_around(handle_name);
    let full = monitor_core::registry().snapshot();
    let (a, f) = (around.function(handle_name).unwrap(), full.function(handle_name).unwrap());
    assert_eq!((a.success, a.success_times.count), (f.success, f.success_times.count));
    let (aq, fq) = (around.function("page::query").unwrap(), full.function("page::query").unwrap());
    assert_eq!(
        (aq.success, aq.errors.clone(), aq.callers.clone()),
        (fq.success, fq.errors.clone(), fq.callers.clone())
    );
    assert_eq!(aq.success_times.count, 0, "a callee's histogram is not read");
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let page = common::get(addr, "/function?name=page%3A%3Aquery");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").starts_with("text/html"));
    let body = &page.body;
    assert_eq!(count_in(body, "calls"), 20);
    assert_eq!(count_in(body, "errors"), 5);
    assert!(body.contains("<td class=\"name\">Timeout</td><td>5</td>"), "errors by kind");
    assert!(body.contains("<svg id=\"histogram\"") && body.contains("class=\"success\""));
    assert!(body.contains("class=\"failure\""), "failures drawn too");
    // The caller, with its hostile name escaped, links to its own page.
    assert!(body.contains("href=\"function?name=page%3A%3Ahandle%20%3C%22a%22%3E\""), "{body}");
    assert!(body.contains("page::handle &lt;&quot;a&quot;&gt;"));
    // Failed traces it took part in, each a link to the held trace.
    assert!(body.contains("<a href=\"trace/svg?trace_id="), "failed traces listed");
    // The caller's page lists it as a callee, and the slow traces rooted at the caller.
    let caller = common::get(addr, "/function?name=page%3A%3Ahandle%20%3C%22a%22%3E").body;
    assert!(caller.contains("href=\"function?name=page%3A%3Aquery\">page::query</a></td><td>20"));
    assert!(caller.contains("<h2>Slowest traces</h2>\n<table"), "{caller}");
    // The held trace the link leads to is served.
    let at = body.find("trace/svg?trace_id=").unwrap() + "trace/svg?trace_id=".len();
    let id = &body[at..at + 32];
    assert_eq!(common::get(addr, &format!("/trace/svg?trace_id={id}")).status, 200);
    // A name no function has, and no name.
    assert_eq!(common::get(addr, "/function?name=nope").status, 404);
    assert_eq!(common::get(addr, "/function").status, 400);
    monitor_core::trace::keep_failed_traces(0);
    monitor_core::trace::keep_slow_traces(0, Duration::from_secs(1));

    // In a browser, with traffic running: the refresh changes the count in place.
    let traffic = common::Calling::start(100, |i| {
        handle(i);
    });
    let url = format!("http://{addr}/function?name=page%3A%3Aquery");
    let out = common::chromium(&["--dump-dom", "--virtual-time-budget=7000"], &url);
    drop(traffic);
    server.shutdown();
    let Some(out) = out else { return };
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-refreshed="), "the refresh never ran:\n{dom}");
    // The script keeps the number the page came with beside the one it shows now.
    let cell = "<td data-k=\"calls\" data-first=\"";
    let at = dom.find(cell).expect("the calls cell was refreshed") + cell.len();
    let (first, rest) = dom[at..].split_once("\">").unwrap();
    let first: u64 = first.parse().unwrap();
    let shown: u64 = rest.split('<').next().unwrap().parse().unwrap();
    assert!(shown > first, "the count did not move: {first} then {shown}");
    assert!(dom.contains("<rect class=\"success\""), "the histogram is in the DOM");
}

#[monitored(name = "page::trended")]
fn trended(i: u64) -> Result<u64, DbError> {
    if i % 3 == 0 {
        Err(DbError::Timeout)
    } else {
        Ok(i)
    }
}

/// The page's trends are the function's own: calls/s and errors/s over each collector interval.
#[test]
fn trends_of_a_function() {
    monitor_core::set_collect_interval(Duration::from_millis(200));
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    let points = loop {
        for _ in 0..30 {
            let _ = trended(i);
            i += 1;
        }
        let points = monitor_core::function_history("page::trended");
        if points.len() >= 3 {
            break points;
        }
        assert!(std::time::Instant::now() < deadline, "no trend: {points:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(points.iter().any(|p| p.calls_per_s > 0.0), "{points:?}");
    // A third of the calls fail (over the intervals together: one interval may hold a few).
    let calls: f64 = points.iter().map(|p| p.calls_per_s).sum();
    let errors: f64 = points.iter().map(|p| p.errors_per_s).sum();
    assert!(errors > 0.0 && errors < calls, "{points:?}");
    let page = common::get(server.local_addr(), "/function?name=page%3A%3Atrended").body;
    server.shutdown();
    let trends = &page[page.find("id=\"trends\"").expect("a trends section")..];
    assert_eq!(trends.matches("<polyline").take(3).count(), 3, "three charts drawn");
}
