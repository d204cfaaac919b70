//! The monitor server end to end: real requests over TCP to every route, with numbers checked
//! against known call patterns, and the server's defences against bad clients.
//!
//! Ports and wall clock: the server listens on a free loopback port; the slow-client tests rely
//! on the server's timeouts, with deadlines on the test side several times longer.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{check_with, parse, send, Reply};
use monitor_core::{monitored, ErrorKind};
use monitor_http::{Config, MonitorService, Routes, Server};
use serde_json::Value;

#[derive(Debug, ErrorKind)]
enum LookupError {
    Missing,
    Forbidden,
}

#[monitored(category = "db")]
fn lookup(key: u32) -> Result<u32, LookupError> {
    match key % 5 {
        3 => Err(LookupError::Missing),
        4 => Err(LookupError::Forbidden),
        _ => Ok(key),
    }
}

/// A name with every character that needs escaping somewhere.
#[monitored(name = "weird \"name\" <b>&\\N{x}\n,=")]
fn weird() {}

#[monitored]
fn handle(key: u32) -> Result<u32, LookupError> {
    let v = lookup(key)?;
    Ok(v + 1)
}

/// Known traffic, run once per process: `handle` 10 times (6 successes, 2 Missing, 2
/// Forbidden), `lookup` 10 times through `handle` and 5 times directly, `weird` once.
fn traffic() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        for k in 0..10 {
            let _ = handle(k);
        }
        for k in 0..5 {
            let _ = lookup(k);
        }
        weird();
    });
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        traffic();
        monitor_http::serve("127.0.0.1:0").unwrap()
    })
}

fn get_with(path: &str, extra: &str) -> Reply {
    common::get_with(server().local_addr(), path, extra)
}

fn get(path: &str) -> Reply {
    get_with(path, "")
}

#[test]
fn index_is_html_with_the_function_table() {
    let r = get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    assert!(r.body.contains("<table id=\"functions\">"));
    let row = r.body.lines().find(|l| l.contains(">test_http::handle<")).unwrap();
    assert!(
        row.contains("<td>6</td><td class=\"errors\" title=\"Forbidden: 2, Missing: 2\">4</td>"),
        "{row}"
    );
    assert!(r.body.contains("weird &quot;name&quot; &lt;b&gt;&amp;"), "names are escaped");
    for view in ["funcs", "funcs/json", "funcs/dot", "stats", "stats/json", "metrics", "debug/vars"]
    {
        assert!(r.body.contains(&format!("href=\"{view}\"")), "index links {view}");
    }
}

#[test]
fn functions_text_shows_callers_counts_and_quantiles() {
    let r = get("/funcs");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/plain; charset=utf-8");
    let block = r.body.split("\n[").find(|b| b.contains("] test_http::lookup\n")).unwrap();
    assert!(block.contains("  parents: test_http::handle, entry\n"), "{block}");
    assert!(
        block.contains("current: 0, highwater: 1, success: 9, errors: 6, panics: 0, cancelled: 0"),
        "{block}"
    );
    assert!(block.contains("error Forbidden: 3\n  error Missing: 3\n"), "{block}");
    for q in ["0.00", "0.10", "0.25", "0.50", "0.75", "0.90", "0.95", "0.99", "1.00"] {
        assert!(block.contains(&format!("    {q}: ")), "quantile {q} in {block}");
    }
    assert_eq!(get("/funcs/text").body, r.body);
    let filtered = get("/funcs?filter=handle").body;
    assert!(filtered.contains("test_http::handle") && !filtered.contains("test_http::lookup\n"));
}

#[test]
fn functions_json_has_every_field() {
    let r = get("/funcs/json");
    assert_eq!(r.header("content-type"), "application/json");
    // Written while it is sent, like `/metrics`.
    assert_eq!(r.header("transfer-encoding"), "chunked");
    let funcs: Value = serde_json::from_str(&r.body).unwrap();
    let lookup =
        funcs.as_array().unwrap().iter().find(|f| f["name"] == "test_http::lookup").unwrap();
    assert_eq!(lookup["module"], "test_http");
    assert!(lookup["file"].as_str().unwrap().ends_with("test_http.rs"));
    assert!(lookup["line"].as_u64().unwrap() > 0);
    assert_eq!(lookup["category"], "db");
    assert_eq!(lookup["entry"], true);
    assert_eq!(
        lookup["callers"],
        serde_json::json!([{"name": "test_http::handle", "count": 10}, {"name": "entry", "count": 5}])
    );
    assert_eq!((lookup["current"].as_u64(), lookup["highwater"].as_u64()), (Some(0), Some(1)));
    assert_eq!(lookup["success"], 9);
    assert_eq!(lookup["errors"], serde_json::json!({"Forbidden": 3, "Missing": 3}));
    assert_eq!((lookup["panics"].as_u64(), lookup["cancelled"].as_u64()), (Some(0), Some(0)));
    for (kind, count) in [("success_times", 9), ("failure_times", 6)] {
        let t = &lookup[kind];
        assert_eq!(t["count"], count);
        for field in ["sum_ns", "min_ns", "max_ns", "avg_ns", "recent_ns"] {
            assert!(t[field].is_u64(), "{kind}.{field} is an integer");
        }
        let q = t["quantiles"].as_object().unwrap();
        let keys: Vec<&str> = q.keys().map(String::as_str).collect();
        assert_eq!(keys, ["0.00", "0.10", "0.25", "0.50", "0.75", "0.90", "0.95", "0.99", "1.00"]);
        assert_eq!(q["0.00"], t["min_ns"]);
        assert_eq!(q["1.00"], t["max_ns"]);
    }
    let handle =
        funcs.as_array().unwrap().iter().find(|f| f["name"] == "test_http::handle").unwrap();
    assert_eq!(handle["callers"], serde_json::json!([{"name": "entry", "count": 10}]));
}

#[test]
fn dot_is_valid_graphviz() {
    let r = get("/funcs/dot");
    assert_eq!(r.header("content-type"), "text/vnd.graphviz; charset=utf-8");
    let dot = &r.body;
    assert!(dot.starts_with("digraph monitor {"));
    let id = |name: &str| {
        let funcs: Value = serde_json::from_str(&get("/funcs/json").body).unwrap();
        funcs.as_array().unwrap().iter().find(|f| f["name"] == name).unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let (handle, lookup) = (id("test_http::handle"), id("test_http::lookup"));
    assert!(dot.contains(&format!("  f{handle} -> f{lookup} [label=\"10\"];")), "{dot}");
    assert!(dot.contains(&format!("  entry -> f{lookup} [label=\"5\"];")), "{dot}");
    check_with("dot", &["-Tsvg", "-o", "/dev/null"], dot);
}

#[test]
fn stats_text_and_json_agree() {
    let text = get("/stats");
    assert_eq!(text.status, 200);
    let line = |key: &str| text.body.lines().find(|l| l.starts_with(key)).map(str::to_string);
    assert_eq!(
        line("function,name=test_http::lookup,scope=test_http successes").as_deref(),
        Some("function,name=test_http::lookup,scope=test_http successes 9")
    );
    assert_eq!(
        line("function,error_kind=Missing,name=test_http::lookup,scope=test_http count").as_deref(),
        Some("function,error_kind=Missing,name=test_http::lookup,scope=test_http count 3")
    );
    assert!(text
        .body
        .contains("function_times,kind=failure,name=test_http::lookup,scope=test_http p99 "));
    assert!(
        text.body.contains("name=weird\\ \"name\"\\ <b>&\\\\N{x}\\n\\,\\="),
        "tag values are escaped"
    );
    let json: Value = serde_json::from_str(&get("/stats/json").body).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), text.body.lines().count());
    let successes = rows
        .iter()
        .find(|r| r[0] == "function" && r[1]["name"] == "test_http::lookup" && r[2] == "successes")
        .unwrap();
    assert_eq!(successes[3], 9);
    assert_eq!(successes[1]["scope"], "test_http");
    assert!(rows.iter().all(|r| r[3].is_number()), "no NaN or null values");
}

#[test]
fn metrics_are_valid_prometheus_and_openmetrics() {
    let r = get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    let m = &r.body;
    for family in [
        "function_current gauge",
        "function_highwater gauge",
        "function_successes_total counter",
        "function_errors_total counter",
        "function_panics_total counter",
        "function_cancelled_total counter",
        "function_times_seconds histogram",
    ] {
        assert!(m.contains(&format!("# TYPE {family}\n")), "family {family}");
    }
    assert!(
        m.contains("function_successes_total{name=\"test_http::lookup\",scope=\"test_http\"} 9\n")
    );
    assert!(m.contains("function_errors_total{error_kind=\"Missing\",name=\"test_http::lookup\",scope=\"test_http\"} 3\n"));
    assert!(m.contains("function_times_seconds_count{kind=\"failure\",name=\"test_http::lookup\",scope=\"test_http\"} 6\n"));
    assert!(m.contains("function_times_seconds_bucket{kind=\"success\",name=\"test_http::lookup\",scope=\"test_http\",le=\"+Inf\"} 9\n"));
    assert!(
        m.contains("name=\"weird \\\"name\\\" <b>&\\\\N{x}\\n,=\""),
        "label values are escaped"
    );
    // Buckets are cumulative.
    let buckets: Vec<u64> = m
        .lines()
        .filter(|l| {
            l.starts_with(
                "function_times_seconds_bucket{kind=\"success\",name=\"test_http::lookup\"",
            )
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 17);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    check_with("promtool", &["check", "metrics"], m);

    let om = get_with("/metrics", "Accept: application/openmetrics-text; version=1.0.0\r\n");
    assert_eq!(
        om.header("content-type"),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om.body.contains("# TYPE function_successes counter\n"));
}

/// `many::m0::f` … `many::m49::f`: enough functions for `/metrics` to pass 100 KiB.
mod many {
    macro_rules! functions {
        ($($m:ident)*) => {
            $(pub mod $m {
                #[monitor_core::monitored]
                pub fn f() -> Result<(), std::io::Error> {
                    Ok(())
                }
            })*
            pub const COUNT: usize = [$(stringify!($m)),*].len();
            pub fn call_all() {
                $(let _ = $m::f();)*
            }
        };
    }
    functions!(
        m0 m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19 m20 m21 m22 m23
        m24 m25 m26 m27 m28 m29 m30 m31 m32 m33 m34 m35 m36 m37 m38 m39 m40 m41 m42 m43 m44
        m45 m46 m47 m48 m49
    );
}

#[test]
fn metrics_are_sent_while_they_are_written() {
    many::call_all();
    let r = get("/metrics");
    assert_eq!(r.status, 200);
    // Written and sent in frames of 64 KiB or more, never whole: no length up front.
    assert_eq!(r.header("transfer-encoding"), "chunked");
    assert_eq!(r.header("content-length"), "");
    assert!(r.body.len() > 100 * 1024, "{} bytes", r.body.len());
    assert!(r.chunks >= 2, "{} chunks", r.chunks);
    // Cut between functions, never inside a family's header or a line.
    for family in ["function_current gauge", "function_times_seconds histogram"] {
        assert_eq!(r.body.matches(&format!("# TYPE {family}\n")).count(), 1, "{family}");
    }
    for i in 0..many::COUNT {
        let line = format!(
            "function_successes_total{{name=\"test_http::many::m{i}::f\",scope=\"test_http::many::m{i}\"}} "
        );
        assert_eq!(r.body.matches(&line).count(), 1, "{line}");
    }
    check_with("promtool", &["check", "metrics"], &r.body);
}

#[test]
fn expvar_has_memstats_and_our_stats() {
    let r = get("/debug/vars");
    assert_eq!(r.header("content-type"), "application/json");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["cmdline"].as_array().unwrap()[0].as_str().unwrap().contains("test_http"));
    let mem = &v["memstats"];
    for f in [
        "Alloc",
        "TotalAlloc",
        "Sys",
        "Lookups",
        "Mallocs",
        "Frees",
        "HeapAlloc",
        "HeapSys",
        "HeapIdle",
        "HeapInuse",
        "HeapReleased",
        "HeapObjects",
        "PauseTotalNs",
        "NumGC",
    ] {
        assert!(mem[f].is_u64(), "memstats.{f}");
    }
    assert_eq!(mem["PauseNs"].as_array().unwrap().len(), 256);
    // The server registers the process statistics; Sys is their resident set size.
    if cfg!(target_os = "linux") {
        assert!(mem["Sys"].as_u64().unwrap() > 1_000_000, "{mem}");
        assert_eq!(mem["Sys"], mem["HeapSys"]);
    }
    assert_eq!(v["function,name=test_http::lookup,scope=test_http"]["successes"], 9);
}

#[test]
fn errors_are_clear() {
    let r = get("/no/such/page");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("/no/such/page"));
    let r = get("/funcs?color=red");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("unknown query parameter `color`"));
    assert_eq!(get("/funcs?filter=%zz").status, 400);
    let r = send(
        server().local_addr(),
        b"POST /funcs HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "GET, HEAD");
    let r = send(
        server().local_addr(),
        b"HEAD /funcs/json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(r.header("content-type"), "application/json");
    let r = send(server().local_addr(), b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(r.status, 400);
}

#[test]
fn huge_requests_are_refused_and_the_server_goes_on() {
    let path = format!("/funcs?filter={}", "a".repeat(100_000));
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(server().local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close before reading everything; either way it must not serve it.
    let _ = stream.write_all(req.as_bytes());
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let r = parse(&raw);
    assert!(r.status == 431 || r.status == 400 || raw.is_empty(), "status {}", r.status);
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = get_with("/funcs", &many_headers);
    assert!(r.status == 431 || r.status == 400, "status {}", r.status);
    assert_eq!(get("/funcs").status, 200);
}

#[test]
fn slow_clients_are_cut_off_and_connections_bounded() {
    let server = Config::default()
        .addr("127.0.0.1:0")
        // Long enough that the stalled clients below still hold their slots when the last
        // client connects, however loaded the machine; short enough to see them cut off.
        .header_timeout(Duration::from_millis(1500))
        .max_connections(2)
        .serve()
        .unwrap();
    let addr = server.local_addr();
    // Two clients that send half a request and stall take every connection slot.
    let mut slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /funcs HTTP/1.1\r\nHost: t\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    // A fresh client is still answered, from the reserve kept for a full server...
    let r = send(addr, b"GET /funcs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "a fresh client is served while two connections are held");
    // ...which stalled clients can take too (8 of them), and past it connections are refused.
    slow.extend((0..8).map(|_| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /funcs HTTP/1.1\r\nHost: t\r\n").unwrap();
        s
    }));
    std::thread::sleep(Duration::from_millis(50));
    let r = send(addr, b"GET /funcs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 503, "refused while every connection and the reserve are held");
    // The stalled clients are disconnected after the header timeout...
    let started = Instant::now();
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    assert!(started.elapsed() < Duration::from_secs(9), "stalled clients were cut off");
    // ...which frees their slots.
    std::thread::sleep(Duration::from_millis(100));
    let r = send(addr, b"GET /funcs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err(), "shut down");
}

#[test]
fn binding_a_taken_port_is_a_clear_error() {
    let taken = server().local_addr();
    let err = monitor_http::serve(taken.to_string()).unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    let err = monitor_http::serve("no-such-host.invalid:9").unwrap_err();
    assert!(err.to_string().contains("cannot resolve"), "{err}");
}

#[test]
fn routes_mount_under_a_prefix() {
    use tower_service::Service;
    traffic();
    let mut svc = MonitorService::new(Routes::new("/monitor").unwrap());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut call =
        |path: &str| rt.block_on(svc.call(http::Request::get(path).body(()).unwrap())).unwrap();
    assert_eq!(call("/monitor/").status(), 200);
    assert_eq!(call("/monitor").status(), 308);
    assert_eq!(call("/monitor/metrics").status(), 200);
    assert_eq!(call("/metrics").status(), 404);
}
