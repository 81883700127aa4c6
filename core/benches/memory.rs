//! Memory per cached token: a counting global allocator around `System` measures the live heap
//! bytes the edge holds after filling its cache with N real introspections, and compares it with
//! the edge's own estimate (`Stats::cache_bytes`). Plain `main` (harness = false).
//!
//! `cargo bench -p phantom-edge-core --bench memory` — `MEMORY_SIZES` (default
//! "100000,1000000") picks the fill sizes.

#![allow(missing_docs, missing_debug_implementations)]

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use common::*;
use support::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn add(n: isize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: forwards to `System` unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        add(l.size() as isize);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        add(l.size() as isize);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        add(new as isize - l.size() as isize);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Relaxed)
}

fn measure(label: &str, n: usize, rfc9701: bool) {
    // Everything not owned by the cache is built before the baseline.
    let mut h = if rfc9701 {
        let mut c = base_config("rfc9701");
        c["cache"]["max_entries"] = n.into();
        c["cache"]["max_bytes"] = (16usize << 30).into();
        c["cache"]["max_ttl"] = "3600s".into();
        Harness::new(c)
    } else {
        Harness::new(curity_config(n))
    };
    let tokens: Vec<String> = (0..n).map(|i| bearer("mem", i)).collect();
    let (ct, body) = if rfc9701 {
        (
            "application/token-introspection+jwt",
            rfc9701_body(&h.fake, &h.fake.es, h.now),
        )
    } else {
        ("application/jwt", curity_body(&h.fake, &h.fake.ed, h.now))
    };
    let hdrs = [("content-type", ct)];
    let empty_stats = h.edge.stats();
    let base = live();
    PEAK.store(base, Relaxed);
    let allocs0 = ALLOCS.load(Relaxed);
    let t = Instant::now();
    for (i, t) in tokens.iter().enumerate() {
        assert!(miss_and_answer(
            &mut h.edge,
            h.now,
            i as u64,
            t,
            &hdrs,
            body.as_bytes()
        ));
    }
    let elapsed = t.elapsed();
    let after = live();
    let peak = PEAK.load(Relaxed);
    let allocs = ALLOCS.load(Relaxed) - allocs0;
    let st = h.edge.stats();
    assert_eq!(st.cache_entries, n);
    let measured = (after - base) as f64 / n as f64;
    let estimated = (st.cache_bytes - empty_stats.cache_bytes) as f64 / n as f64;
    println!(
        "{label:<34} n={n:>8}  measured={measured:>7.1} B/token  estimate(Stats.cache_bytes)={estimated:>7.1} B/token  \
         estimate/measured={:.2}  peak-during-fill={:.1} B/token  allocs/miss={:.1}  fill={elapsed:.1?}",
        estimated / measured,
        (peak - base) as f64 / n as f64,
        allocs as f64 / n as f64,
    );
    drop(h);
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let sizes: Vec<usize> = std::env::var("MEMORY_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("memory per cached token (live heap bytes after the fill, counting allocator)");
    for &n in &sizes {
        measure("curity (forwarded AS JWT, no mint)", n, false);
    }
    // RFC 9701 entries hold a minted JWT (added on the first, filling, hit) instead.
    let n = sizes.first().copied().unwrap_or(100_000);
    measure("rfc9701 (minted JWT for 1 route)", n, true);
}
