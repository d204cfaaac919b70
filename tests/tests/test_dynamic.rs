//! Call sites made at run time: interned by name across threads, counted like static ones,
//! seen by captures and the call graph, bounded. One test: filling every run-time site would
//! disturb tests running beside it.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use monitor_core::trace::{Watch, WatchFilter};
use monitor_core::{
    monitored, registry, FunctionStats, Outcome, SiteBudget, SiteError, MAX_DYNAMIC_SITES,
};
use monitor_http::layer::{ClientLayer, ServerLayer};
use tower_layer::Layer;
use tower_service::Service;

mod common;
use common::ServiceFn;

#[monitored]
fn lookup() -> u32 {
    1
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn classify(status: &u16) -> Outcome {
    if *status >= 500 {
        Outcome::Error("http_500")
    } else {
        Outcome::Success
    }
}

#[test]
fn run_time_sites() {
    // Eight threads asking for the same names at once all get the same sites.
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..50)
                    .map(|i| {
                        let site = registry().site(&format!("GET /r{i}"), Some("http_server"));
                        std::ptr::from_ref(site.unwrap()) as usize
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Vec<usize>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for other in &all[1..] {
        assert_eq!(other, &all[0]);
    }
    assert_eq!(all[0].iter().collect::<HashSet<_>>().len(), 50);
    // The category is part of the identity.
    let server = registry().site("GET /r0", Some("http_server")).unwrap();
    let plain = registry().site("GET /r0", None).unwrap();
    assert!(!std::ptr::eq(server, plain));
    assert_eq!(plain.category(), None);

    // Calls at a run-time site count exactly, from many threads, with the caller edge.
    let site = registry().site("GET /users/{id}", Some("http_server")).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..1000u16 {
                    let status = if (i + t) % 10 == 0 { 503 } else { 200 };
                    let got = block_on(
                        site.instrument(async move { lookup() as u16 * status }, classify),
                    );
                    assert_eq!(got, status);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let snap = registry().snapshot();
    let f = snap.function("GET /users/{id}").unwrap();
    assert_eq!(f.calls(), 4000);
    assert_eq!(f.errors, vec![("http_500", 400)]);
    assert_eq!(f.category, Some("http_server"));
    assert_eq!(f.line, 0);
    assert_eq!(snap.function("test_dynamic::lookup").unwrap().calls_from("GET /users/{id}"), 4000);
    for (i, f) in snap.functions.iter().enumerate() {
        assert_eq!(f.id, i);
    }

    // A capture by function name sees a run-time site made before it.
    let watch = Watch::start(WatchFilter::function(|s| s.name() == "GET /users/{id}")).unwrap();
    block_on(site.instrument(async { lookup() as u16 * 200 }, classify));
    let trace = watch.wait(std::time::Duration::from_secs(10)).unwrap();
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"GET /users/{id}") && names.contains(&"test_dynamic::lookup"));

    // A body that panics while being made counts as the call's panic, and restores the span.
    let fragile = registry().site("GET /fragile", Some("http_server")).unwrap();
    let made = std::panic::catch_unwind(|| {
        fragile.instrument_with(|_span| -> std::future::Ready<u16> { panic!("no body") }, classify)
    });
    assert!(made.is_err());
    assert!(monitor_core::Span::current().is_none());
    let f = registry().snapshot().function("GET /fragile").cloned().unwrap();
    assert_eq!((f.panics, f.in_flight, f.calls()), (1, 0, 1));
    // The body is made under the call's span.
    let seen = block_on(fragile.instrument_with(
        |span| {
            let current = monitor_core::Span::current();
            assert_eq!(current.span_id(), span.span_id());
            std::future::ready(200u16)
        },
        classify,
    ));
    assert_eq!(seen, 200);
    // In two steps: the call is the given parent's child and current until its body is
    // handed over, then the span current before is current again.
    let job =
        registry().site("start_body job", None).unwrap().open_call(monitor_core::Span::none());
    let start = fragile.start_body(job.span());
    assert_eq!(monitor_core::Span::current().span_id(), start.span().span_id());
    assert_eq!(start.span().parent_id(), job.span().span_id());
    let fut = start.body(std::future::ready(201u16), classify);
    assert!(monitor_core::Span::current().is_none());
    assert_eq!(block_on(fut), 201);
    job.finish(monitor_core::Outcome::Success);
    // Dropped without a body, as a panic in the inner service would: a panic, span restored.
    drop(fragile.start_body(monitor_core::Span::none()));
    assert!(monitor_core::Span::current().is_none());
    let f = registry().snapshot().function("GET /fragile").cloned().unwrap();
    assert_eq!((f.panics, f.in_flight, f.calls()), (2, 0, 4));

    // A web layer made now keeps one site for routes past the limit.
    let mut server = ServerLayer::new()
        .route(|parts| Some(parts.uri.path().into()))
        .layer(ServiceFn(|_req| http::Response::new(())));
    let mut client = ClientLayer::new().layer(ServiceFn(|_req| http::Response::new(())));

    // Bad names and a full budget are errors, and nothing already made is lost.
    assert_eq!(registry().site("", None).unwrap_err(), SiteError::EmptyName);
    let app = SiteBudget::application();
    let mut made = 0;
    let err = loop {
        match registry().site(&format!("/path/{made}"), None) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
        assert!(made <= app.limit());
    };
    assert_eq!(err, SiteError::BudgetFull { budget: "application", max: app.limit() });
    assert!(err.to_string().contains("route template"), "{err}");
    // 50 routes, one without category, users, fragile, the job: made before.
    assert_eq!(made + 54, app.limit());
    assert_eq!(app.used(), app.limit());

    // The application's sites being used up, the layers still make sites of their own: what
    // clients send cannot starve the application, nor the application the layers.
    for path in ["/new/1", "/new/2"] {
        let req = http::Request::get(path).body(()).unwrap();
        block_on(server.call(req)).unwrap();
    }
    let snap = registry().snapshot();
    assert_eq!(snap.function("GET /new/1").map(FunctionStats::calls), Some(1));
    // Made-up methods are one method.
    for i in 0..50 {
        let method = http::Method::from_bytes(format!("X{i:04}M").as_bytes()).unwrap();
        let req = http::Request::builder().method(method).uri("/echo").body(()).unwrap();
        block_on(server.call(req)).unwrap();
    }
    let snap = registry().snapshot();
    assert_eq!(snap.function("OTHER /echo").map(FunctionStats::calls), Some(50));
    assert!(snap.functions.iter().all(|f| !f.name.starts_with('X')));
    // Routes past the servers' own share count at one site.
    let servers = SiteBudget::http_server();
    let mut route = 0;
    while servers.used() < servers.limit() {
        let req = http::Request::get(format!("/fill/{route}")).body(()).unwrap();
        block_on(server.call(req)).unwrap();
        route += 1;
        assert!(route <= servers.limit());
    }
    for path in ["/late/1", "/late/2"] {
        let req = http::Request::get(path).body(()).unwrap();
        block_on(server.call(req)).unwrap();
    }
    let other = registry().snapshot().function("HTTP (other routes)").cloned().unwrap();
    assert_eq!(other.calls(), 2);
    // ... while the clients' share is untouched.
    for uri in ["http://new-host-1/", "http://new-host-2:81/x"] {
        let req = http::Request::get(uri).body(()).unwrap();
        block_on(client.call(req)).unwrap();
    }
    let snap = registry().snapshot();
    assert_eq!(snap.function("GET new-host-2:81").map(FunctionStats::calls), Some(1));
    assert!(snap.function("HTTP (other hosts)").is_some_and(|f| f.calls() == 0));
    assert!(registry().sites().count() <= MAX_DYNAMIC_SITES + snap.functions.len());
    assert!(std::ptr::eq(site, registry().site("GET /users/{id}", Some("http_server")).unwrap()));
    let snap = registry().snapshot();
    assert_eq!(snap.function("GET /users/{id}").unwrap().calls(), 4001);
    assert_eq!(snap.functions.len(), registry().sites().count());
}
