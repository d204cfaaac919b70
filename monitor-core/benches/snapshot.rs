//! A snapshot of 10,000 called sites, next to its floor: walking the same sites and reading
//! one atomic of each.
//!
//! `cargo bench -p monitor-core --bench snapshot`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

mod common {
    pub mod sites;
}
use common::sites;

fn snapshot(c: &mut Criterion) {
    let registry = monitor_core::registry();
    // Ten calls each, so every site has counts, callers and a histogram to read.
    for _ in 0..10 {
        sites::call_all();
    }
    let mut g = c.benchmark_group("snapshot_10k_sites");
    g.sample_size(20);
    g.bench_function("floor/walk_sites", |b| {
        b.iter(|| registry.sites().filter(|s| black_box(s).is_enabled()).count())
    });
    g.bench_function("snapshot", |b| b.iter(|| black_box(registry.snapshot())));
    g.finish();
    let snap = registry.snapshot();
    assert!(snap.iter_called().count() >= 10_000, "the 10,000 sites were called");
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
