//! Snapshot and rendering at 10,000 monitored functions, and what a site costs in memory.
//!
//! `cargo bench -p monitor-http --bench render`

use std::alloc::System;
use std::hint::black_box;

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, Method};
use http_body::Body as _;
use monitor_core::alloc::CountingAllocator;
use monitor_http::Routes;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new(System);

/// 10,000 monitored functions, `sites::…::f`, and `sites::call_all()`: the same ones the
/// snapshot bench of `monitor-core` measures.
#[path = "../../monitor-core/benches/common/sites.rs"]
mod sites;

/// Answers `GET path` as the server does, then reads the body to its end frame by frame, as a
/// connection sends it. Returns the body's length.
fn get(routes: &Routes, path: &str) -> usize {
    let mut body = routes.respond(&Method::GET, path, None, &HeaderMap::new()).into_body();
    let mut cx = Context::from_waker(Waker::noop());
    let mut len = 0;
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        len += frame.data_ref().map_or(0, |d| d.len());
    }
    len
}

#[::monitor_core::monitored]
#[inline(never)]
fn hot(x: u64) -> Result<u64, std::io::Error> {
    Ok(black_box(x).wrapping_mul(3))
}

/// A monitored call alone, then while another thread snapshots and renders `/metrics` for the
/// 10,000 sites in a loop, as a scraper polling hard would.
fn scrape_interference(c: &mut Criterion) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    sites::call_all();
    let mut g = c.benchmark_group("scrape_interference");
    g.bench_function("monitored_call/idle", |b| b.iter(|| hot(black_box(7))));
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let routes = Routes::new("").expect("the root is a prefix");
            let mut renders = 0u64;
            while !stop.load(Ordering::Relaxed) {
                black_box(get(&routes, "/metrics"));
                renders += 1;
            }
            renders
        })
    };
    g.bench_function("monitored_call/while_scraping", |b| b.iter(|| hot(black_box(7))));
    stop.store(true, Ordering::Relaxed);
    let renders = scraper.join().unwrap_or(0);
    println!("the scraper rendered /metrics {renders} times meanwhile");
    g.finish();
}

fn render(c: &mut Criterion) {
    let registry = monitor_core::registry();
    let sites = registry.sites().count();
    let never = std::mem::size_of::<monitor_core::CallSite>() + std::mem::size_of::<usize>();
    let before = monitor_core::alloc::stats().unwrap_or_default().in_use_bytes();
    sites::call_all();
    let after = monitor_core::alloc::stats().unwrap_or_default().in_use_bytes();
    println!(
        "{sites} sites; memory per never-called site: {never} bytes (static); per called site: \
         {} bytes (heap, after one call each)",
        after.saturating_sub(before) / sites as u64
    );
    for _ in 0..9 {
        sites::call_all();
    }

    let mut g = c.benchmark_group("render_10k_sites");
    g.sample_size(20);
    g.bench_function("snapshot", |b| b.iter(|| black_box(registry.snapshot())));
    let snap = registry.snapshot();
    assert_eq!(snap.functions.len(), sites);
    // What a client gets: the route takes the snapshot and renders, the body is read out.
    let routes = Routes::new("").expect("the root is a prefix");
    println!(
        "/funcs/json: {} bytes; /metrics: {} bytes",
        get(&routes, "/funcs/json"),
        get(&routes, "/metrics")
    );
    g.bench_function("snapshot+funcs_json", |b| b.iter(|| get(&routes, "/funcs/json")));
    g.bench_function("snapshot+metrics", |b| b.iter(|| get(&routes, "/metrics")));
    g.bench_function("functions_json_only", |b| {
        b.iter(|| {
            let mut out = String::new();
            monitor_http::write_functions_json(&snap, &mut out);
            out
        })
    });
    // One function's page at 10,000 sites (its callees are found among all of them).
    let name = snap.functions[sites / 2].name;
    g.bench_function("function_page", |b| {
        b.iter(|| {
            let mut out = String::new();
            monitor_http::write_function_html(&snap, name, &[], &[], &[], &mut out);
            out
        })
    });
    // The same as a client gets it: the route's snapshot (counts and callers of every function,
    // the histograms of this one alone) and the page.
    let query: String = format!("name={}", name.replace(':', "%3A"));
    g.bench_function("function_page_route", |b| {
        b.iter(|| {
            let resp = routes.respond(&Method::GET, "/function", Some(&query), &HeaderMap::new());
            assert_eq!(resp.status(), 200);
            resp
        })
    });
    g.finish();
}

/// The call graph of 1,000 called functions, each drawn (no collapsing by module): a tree of
/// run-time sites under one entry, three levels deep, with a cross edge from every node.
fn call_graph(c: &mut Criterion) {
    use monitor_core::{Outcome, Span};

    let site = |i: usize| {
        monitor_core::registry().site(&format!("graph::f{i}"), None).expect("within the budget")
    };
    let root = site(0).open_call(Span::none());
    let mut level = vec![root.span()];
    let mut next = 1;
    let mut opened = vec![root];
    while next < 1000 {
        let mut below = Vec::new();
        for &span in &level {
            for _ in 0..10 {
                if next >= 1000 {
                    break;
                }
                let call = site(next).open_call(span);
                // A cross edge: the node also calls its neighbour to the left.
                if next > 1 {
                    site(next - 1).open_call(call.span()).finish(Outcome::Success);
                }
                below.push(call.span());
                opened.push(call);
                next += 1;
            }
        }
        level = below;
    }
    for call in opened.into_iter().rev() {
        call.finish(Outcome::Success);
    }
    let mut snap = monitor_core::registry().snapshot();
    snap.functions.retain(|f| f.name.starts_with("graph::f"));
    assert_eq!(snap.iter_called().count(), 1000);
    let mut g = c.benchmark_group("call_graph");
    g.sample_size(20);
    g.bench_function("svg_1000_functions", |b| {
        b.iter(|| {
            let mut out = String::new();
            monitor_http::write_graph_svg_limited(&snap, 1000, &mut out);
            out
        })
    });
    g.finish();
}

criterion_group!(benches, render, scrape_interference, call_graph);
criterion_main!(benches);
