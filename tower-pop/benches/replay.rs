//! The in-memory replay store: inserts per second with two threads, and resident bytes per
//! live entry at one million entries.
//!
//! `cargo bench -p tower-pop --bench replay`

#![allow(missing_docs, clippy::unwrap_used)] // bench binary: criterion macros, setup unwraps

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sha2::{Digest, Sha256};
use tower_pop::MemoryReplayCache;
use tower_pop::replay::{ReplayEntry, ReplayOutcome};

fn key(n: u64) -> [u8; 32] {
    Sha256::digest(n.to_le_bytes()).into()
}

/// Resident set size of this process, from /proc (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn bytes_per_entry() {
    const N: u64 = 1_000_000;
    let keys: Vec<[u8; 32]> = (0..N).map(key).collect();
    let before = rss_bytes();
    let store = MemoryReplayCache::new(N as usize + 1);
    for k in &keys {
        let outcome = store
            .insert_if_absent_sync(ReplayEntry::new(*k, 0, 70))
            .unwrap();
        assert_eq!(outcome, ReplayOutcome::Fresh);
    }
    let after = rss_bytes();
    assert_eq!(store.len(), N as usize);
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "replay/bytes_per_live_entry: {:.1} bytes (resident growth for {N} entries: {:.1} MiB)",
            (after.saturating_sub(before)) as f64 / N as f64,
            (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0)
        );
    }
    drop(store);
}

fn inserts_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(1));
    group.bench_function("insert_if_absent_two_threads", |b| {
        let next = Arc::new(AtomicU64::new(0));
        b.iter_custom(|iters| {
            // A fresh store per sample, big enough that it never fills.
            let store = Arc::new(MemoryReplayCache::new(usize::MAX));
            let start = Instant::now();
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (store, next) = (Arc::clone(&store), Arc::clone(&next));
                    std::thread::spawn(move || {
                        for _ in 0..iters.div_ceil(2) {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let entry = ReplayEntry::new(key(n), 0, 70);
                            assert_eq!(
                                store.insert_if_absent_sync(entry).unwrap(),
                                ReplayOutcome::Fresh
                            );
                        }
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap();
            }
            start.elapsed()
        });
    });
    group.finish();
}

fn main() {
    bytes_per_entry();
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    inserts_two_threads(&mut c);
    c.final_summary();
}
