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
    g.finish();
}

criterion_group!(benches, render, scrape_interference);
criterion_main!(benches);
