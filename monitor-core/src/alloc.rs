//! A counting global allocator: Go-memstats-like figures for the process, and allocations per
//! call for every monitored function.
//!
//! Install it as the global allocator, wrapping the system allocator or any other:
//!
//! ```
//! use monitor_core::alloc::CountingAllocator;
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator::system();
//!
//! let v: Vec<u8> = Vec::with_capacity(4096);
//! let stats = monitor_core::alloc::stats().unwrap();
//! assert!(stats.allocations >= 1 && stats.allocated_bytes >= 4096);
//! # drop(v);
//! ```
//!
//! Each allocation costs a few relaxed increments: per-thread counters (which monitored calls
//! read at their start and end to attribute allocations to the function) and one of 16
//! cache-padded stripes of process totals. Without it installed, monitored calls pay one
//! relaxed load to find out.
#![allow(unsafe_code)] // A `GlobalAlloc` implementation is unsafe by definition; see SAFETY notes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// Counts allocations and frees, then hands each request to the wrapped allocator `A`.
///
/// ```
/// use monitor_core::alloc::CountingAllocator;
/// static A: CountingAllocator = CountingAllocator::system();
/// static B: CountingAllocator<std::alloc::System> = CountingAllocator::new(std::alloc::System);
/// ```
#[derive(Debug, Default)]
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    /// Counting over the system allocator.
    ///
    /// ```
    /// static A: monitor_core::alloc::CountingAllocator = monitor_core::alloc::CountingAllocator::system();
    /// ```
    pub const fn system() -> Self {
        CountingAllocator { inner: System }
    }
}

impl<A> CountingAllocator<A> {
    /// Counting over `inner` (another global allocator).
    ///
    /// ```
    /// let a = monitor_core::alloc::CountingAllocator::new(std::alloc::System);
    /// # drop(a);
    /// ```
    pub const fn new(inner: A) -> Self {
        CountingAllocator { inner }
    }
}

/// Whether a counting allocator has counted anything: until then there is nothing to read.
static ACTIVE: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Stripe {
    allocations: AtomicU64,
    frees: AtomicU64,
    allocated: AtomicU64,
    freed: AtomicU64,
}

const STRIPES: usize = 16;

#[allow(clippy::declare_interior_mutable_const)] // Only used to initialise the array below.
const EMPTY: CachePadded<Stripe> = CachePadded::new(Stripe {
    allocations: AtomicU64::new(0),
    frees: AtomicU64::new(0),
    allocated: AtomicU64::new(0),
    freed: AtomicU64::new(0),
});

static TOTALS: [CachePadded<Stripe>; STRIPES] = [EMPTY; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// This thread's allocations, for monitored calls to take differences of. `const`-initialised
/// and without `Drop`, so the allocator can use it at any time, even while the thread exits.
struct ThreadCounts {
    allocations: Cell<u64>,
    bytes: Cell<u64>,
    stripe: Cell<usize>,
}

thread_local! {
    static THREAD: ThreadCounts = const {
        ThreadCounts { allocations: Cell::new(0), bytes: Cell::new(0), stripe: Cell::new(usize::MAX) }
    };
}

#[inline]
fn on_alloc(size: usize) {
    if !ACTIVE.load(Relaxed) {
        ACTIVE.store(true, Relaxed);
    }
    let stripe = THREAD
        .try_with(|t| {
            t.allocations.set(t.allocations.get() + 1);
            t.bytes.set(t.bytes.get() + size as u64);
            match t.stripe.get() {
                usize::MAX => {
                    let s = NEXT_STRIPE.fetch_add(1, Relaxed) % STRIPES;
                    t.stripe.set(s);
                    s
                }
                s => s,
            }
        })
        .unwrap_or(0);
    let s = &TOTALS[stripe];
    s.allocations.fetch_add(1, Relaxed);
    s.allocated.fetch_add(size as u64, Relaxed);
}

#[inline]
fn on_free(size: usize) {
    let stripe = THREAD.try_with(|t| t.stripe.get()).unwrap_or(0) % STRIPES;
    let s = &TOTALS[stripe];
    s.frees.fetch_add(1, Relaxed);
    s.freed.fetch_add(size as u64, Relaxed);
}

// SAFETY: every method forwards the caller's request unchanged to `inner`, which upholds the
// `GlobalAlloc` contract; the bookkeeping around it touches only atomics and a `const`
// thread-local without destructor, and never allocates (so it cannot recurse).
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees about `layout` are passed on unchanged.
        let p = unsafe { self.inner.alloc(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { self.inner.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `inner` with `layout` (we only forward), as the caller
        // guarantees for this allocator.
        unsafe { self.inner.dealloc(ptr, layout) };
        on_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is passed on unchanged.
        let p = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

/// What the counting allocator has seen, process-wide.
///
/// ```
/// let s = monitor_core::alloc::AllocStats::default();
/// assert_eq!((s.in_use_bytes(), s.live_objects()), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocStats {
    /// Allocations made (Go's `Mallocs`; a reallocation counts as one free and one allocation).
    pub allocations: u64,
    /// Allocations freed (`Frees`).
    pub frees: u64,
    /// Bytes ever allocated (`TotalAlloc`).
    pub allocated_bytes: u64,
    /// Bytes ever freed.
    pub freed_bytes: u64,
}

impl AllocStats {
    /// Bytes allocated and not freed (`Alloc`, `HeapAlloc`).
    ///
    /// ```
    /// let s = monitor_core::alloc::AllocStats { allocated_bytes: 10, freed_bytes: 4, ..Default::default() };
    /// assert_eq!(s.in_use_bytes(), 6);
    /// ```
    pub fn in_use_bytes(&self) -> u64 {
        self.allocated_bytes.saturating_sub(self.freed_bytes)
    }

    /// Allocations not freed (`HeapObjects`).
    ///
    /// ```
    /// let s = monitor_core::alloc::AllocStats { allocations: 3, frees: 1, ..Default::default() };
    /// assert_eq!(s.live_objects(), 2);
    /// ```
    pub fn live_objects(&self) -> u64 {
        self.allocations.saturating_sub(self.frees)
    }
}

/// The process's allocation figures, if a [`CountingAllocator`] is the global allocator.
///
/// ```
/// // In a program without the counting allocator:
/// # if false {
/// assert_eq!(monitor_core::alloc::stats(), None);
/// # }
/// ```
pub fn stats() -> Option<AllocStats> {
    if !ACTIVE.load(Relaxed) {
        return None;
    }
    let mut s = AllocStats::default();
    for t in &TOTALS {
        s.allocations += t.allocations.load(Relaxed);
        s.frees += t.frees.load(Relaxed);
        s.allocated_bytes += t.allocated.load(Relaxed);
        s.freed_bytes += t.freed.load(Relaxed);
    }
    Some(s)
}

/// This thread's allocation count and bytes so far, if the counting allocator is in use.
#[inline(always)]
pub(crate) fn thread_counts() -> Option<(u64, u64)> {
    if !ACTIVE.load(Relaxed) {
        return None;
    }
    THREAD.try_with(|t| (t.allocations.get(), t.bytes.get())).ok()
}

/// Runs `f`, the monitor's own bookkeeping for a recorded call, without counting what it
/// allocates against the calls running on this thread (the process's figures still count it):
/// a span's allocations are the user's code's alone.
#[inline]
pub(crate) fn uncounted<R>(f: impl FnOnce() -> R) -> R {
    let Some(before) = thread_counts() else { return f() };
    let r = f();
    let _ = THREAD.try_with(|t| {
        t.allocations.set(before.0);
        t.bytes.set(before.1);
    });
    r
}
