//! The in-memory replay store: the signature costs its default capacity comes from, resident
//! bytes per live entry at one and ten million entries, inserts on one and two threads, and a
//! flood of unique proofs.
//!
//! `cargo bench -p tower-pop --bench replay` (about a minute and 1.5 GB of memory);
//! `REPLAY_FLOOD_SECS=30` floods for longer (default 5, at most 60); `REPLAY_SIZES=100000,1000000`
//! measures other sizes than one and ten million (at most twenty million).
//!
//! Time is simulated: every entry carries its own `now`, so a window of 71 s passes in well
//! under a second of real time and expiry is part of what is measured. Costs are the CPU time
//! of the measuring thread (the machine is shared), except criterion's, which are wall time.
//! Each memory measurement runs in a child process of its own.

#![allow(missing_docs, clippy::unwrap_used)] // bench binary: criterion macros, setup unwraps

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use criterion::{Criterion, Throughput};
use tower_pop::MemoryReplayCache;
use tower_pop::replay::{ReplayEntry, ReplayOutcome};

const T0: u64 = 1_700_000_000;
/// The default proof window: 60 s past, 10 s future, plus 1 s.
const WINDOW: u64 = 71;

/// A distinct key for `n` (the store hashes it again under its own key, so any spread will do).
fn key(n: u64) -> [u8; 32] {
    let mut out = [0; 32];
    let mut x = n;
    for chunk in out.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

/// Proof `n` of a stream of `per_sec` proofs a second starting at `T0`: `iat` spread over the
/// whole window (up to 60 s old, up to 10 s ahead), kept until `iat + 61` as the verifier does.
fn stream_entry(n: u64, per_sec: u64) -> ReplayEntry {
    let now = T0 + n / per_sec;
    let iat = now - 60 + n % WINDOW;
    ReplayEntry::new(key(n), now, iat + 61)
}

/// Resident set size of this process, from /proc (Linux).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// CPU time this thread has run, from /proc (Linux; the scheduler's nanosecond clock, brought
/// up to date at scheduler ticks, so only for loops of a tenth of a second or more). The
/// machine is shared: wall time also counts the time other processes had the core.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One signature verification per algorithm a proof may use, on one core: the floor of the
/// accept rate that sizes `MemoryReplayCache::default_capacity`.
fn verify_costs() {
    let rng = SystemRandom::new();
    let msg = [b'x'; 300]; // about a proof's signing input
    let time = |name: &str, verify: &dyn Fn() -> bool| {
        assert!(verify(), "{name}");
        let n = 2_000;
        let (start, cpu) = (Instant::now(), cpu_ns());
        for _ in 0..n {
            black_box(verify());
        }
        let cpu_us = (cpu_ns() - cpu) as f64 / 1e3 / f64::from(n);
        let wall_us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("replay/verify_cost/{name}: {cpu_us:.1} us CPU ({wall_us:.1} us wall)");
    };

    let ed = Ed25519KeyPair::generate().unwrap();
    let ed_sig = ed.sign(&msg);
    let ed_key = sig::UnparsedPublicKey::new(&sig::ED25519, ed.public_key().as_ref().to_vec());
    time("Ed25519", &|| ed_key.verify(&msg, ed_sig.as_ref()).is_ok());

    let es = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let es_sig = es.sign(&rng, &msg).unwrap();
    let es_key = sig::UnparsedPublicKey::new(
        &sig::ECDSA_P256_SHA256_FIXED,
        es.public_key().as_ref().to_vec(),
    );
    time("ES256", &|| es_key.verify(&msg, es_sig.as_ref()).is_ok());

    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let rsa_pub = rsa.public_key().as_ref().to_vec();
    for (name, padding, params) in [
        (
            "RS256-2048",
            &sig::RSA_PKCS1_SHA256 as &dyn sig::RsaEncoding,
            &sig::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            "PS256-2048",
            &sig::RSA_PSS_SHA256,
            &sig::RSA_PSS_2048_8192_SHA256,
        ),
    ] {
        let mut signature = vec![0; rsa.public_modulus_len()];
        rsa.sign(padding, &rng, &msg, &mut signature).unwrap();
        let public = sig::UnparsedPublicKey::new(params, rsa_pub.clone());
        time(name, &|| public.verify(&msg, &signature).is_ok());
    }
    println!(
        "replay/default_capacity: {} entries on this machine",
        MemoryReplayCache::default_capacity()
    );
}

/// `n` proofs received at one instant (every entry live, one slice per shard: the tables only
/// grow, the worst case for their load), then a steady stream holding about `n` live entries.
fn bytes_per_live_entry(n: u64) {
    let before = rss_bytes();
    let store = MemoryReplayCache::new(usize::MAX);
    let cpu = cpu_ns();
    // Inserts slower than 10 us, 100 us, 1 ms (wall clock: a shard's table growing, or this
    // thread preempted on a shared machine).
    let mut slow = [0u64; 3];
    for i in 0..n {
        let entry = ReplayEntry::new(key(i), T0, T0 + 61);
        let start = Instant::now();
        let outcome = store.insert_if_absent_sync(entry).unwrap();
        let micros = start.elapsed().as_micros();
        for (count, limit) in slow.iter_mut().zip([10, 100, 1000]) {
            *count += u64::from(micros >= limit);
        }
        assert_eq!(outcome, ReplayOutcome::Fresh);
    }
    let cpu = cpu_ns() - cpu;
    let after = rss_bytes();
    let live = store.len() as u64;
    assert_eq!(live, n);
    println!(
        "replay/burst/{n}: {:.1} bytes per live entry resident ({:.1} allocated), \
         {:.0} ns (CPU) per insert with the tables' growth, inserts over 10 us / 100 us / 1 ms: \
         {} / {} / {}, resident growth {:.1} MiB",
        after.saturating_sub(before) as f64 / live as f64,
        store.allocated_bytes() as f64 / live as f64,
        cpu as f64 / n as f64,
        slow[0],
        slow[1],
        slow[2],
        mib(after.saturating_sub(before)),
    );
    drop(store);

    // Steady state: n live proofs spread over the window, nine slices a shard, for three
    // windows, so slices are created, presized, filled and dropped.
    let per_sec = n / 61; // entries live about 61 s on average
    let before = rss_bytes();
    let store = MemoryReplayCache::new(usize::MAX);
    let total = per_sec * WINDOW * 3;
    let mut last_window = 0;
    let mut window_start = cpu_ns();
    for i in 0..total {
        assert_eq!(
            store
                .insert_if_absent_sync(stream_entry(i, per_sec))
                .unwrap(),
            ReplayOutcome::Fresh
        );
        if (i + 1) % (per_sec * WINDOW) == 0 {
            last_window = cpu_ns() - window_start;
            window_start = cpu_ns();
        }
    }
    let after = rss_bytes();
    let live = store.len() as u64;
    println!(
        "replay/steady/{n}: {live} held, {:.1} bytes per held entry resident ({:.1} allocated), \
         {:.0} ns (CPU) per insert in the last window, resident growth {:.1} MiB",
        after.saturating_sub(before) as f64 / live as f64,
        store.allocated_bytes() as f64 / live as f64,
        last_window as f64 / (per_sec * WINDOW) as f64,
        mib(after.saturating_sub(before)),
    );
}

/// Unique proofs as fast as the store takes them, `REPLAY_FLOOD_SECS` of real time, into the
/// default store. Simulated time runs at the rate of an ES256 flood with every core doing
/// nothing but verify proofs (`cores / 40 us`): memory must level off after the first window
/// and no insert may be refused.
fn flood() {
    let secs: u64 = std::env::var("REPLAY_FLOOD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .clamp(1, 60);
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let per_sec = cores * 1_000_000 / 40;
    let store = MemoryReplayCache::default();
    let before = rss_bytes();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut i = 0;
    let mut windows = Vec::new();
    while Instant::now() < deadline {
        for _ in 0..10_000 {
            let outcome = store
                .insert_if_absent_sync(stream_entry(i, per_sec))
                .expect("honest load never fills the default store");
            assert_eq!(outcome, ReplayOutcome::Fresh);
            i += 1;
            if i % (per_sec * WINDOW) == 0 {
                windows.push(format!("{:.0}", mib(rss_bytes())));
            }
        }
    }
    let elapsed = start.elapsed();
    let after = rss_bytes();
    println!(
        "replay/flood: {i} unique proofs in {:.1} s ({:.1} M/s; {} simulated s at {per_sec}/s), \
         resident {:.1} MiB before, {:.1} MiB after; at the end of each 71 s window: [{}] MiB; \
         {} counted, {:.1} MiB allocated",
        elapsed.as_secs_f64(),
        i as f64 / elapsed.as_secs_f64() / 1e6,
        i / per_sec,
        mib(before),
        mib(after),
        windows.join(", "),
        store.len(),
        mib(store.allocated_bytes() as u64),
    );
}

/// Inserts into a store in steady state (about 600,000 live entries, a million proofs a
/// window), on `threads` threads, each with its own stream. Wall time (the thread CPU clock
/// from /proc is only updated at scheduler ticks): noisy on a shared machine.
fn inserts(c: &mut Criterion) {
    const PER_SEC: u64 = 1_000_000 / 61;
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(1));
    for threads in [1u64, 2] {
        let store = Arc::new(MemoryReplayCache::new(usize::MAX));
        // Warm: one window of the stream, interleaved as the threads will continue it.
        let mut next = PER_SEC * WINDOW;
        for i in 0..next {
            store
                .insert_if_absent_sync(stream_entry(i, PER_SEC))
                .unwrap();
        }
        group.bench_function(format!("insert_if_absent_{threads}_thread"), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads);
                let first = next;
                next += per_thread * threads;
                let start = Instant::now();
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        let store = Arc::clone(&store);
                        std::thread::spawn(move || {
                            for j in 0..per_thread {
                                let entry = stream_entry(first + j * threads + t, PER_SEC);
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
                // `iters` inserts in this wall time: criterion's figure is time per insert
                // across the threads, its inverse the inserts per second.
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// Run one memory measurement in a child process of its own, so that what an earlier one
/// freed (and the allocator kept) does not blur its resident size.
fn in_child(phase: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env("REPLAY_PHASE", phase)
        .status()
        .unwrap();
    assert!(status.success(), "{phase}");
}

fn main() {
    match std::env::var("REPLAY_PHASE").ok().as_deref() {
        Some("flood") => return flood(),
        Some(n) => return bytes_per_live_entry(n.parse().unwrap()),
        None => {}
    }
    verify_costs();
    let sizes = std::env::var("REPLAY_SIZES").unwrap_or_else(|_| "1000000,10000000".into());
    for n in sizes
        .split(',')
        .filter_map(|n| n.trim().parse::<u64>().ok())
    {
        in_child(&n.clamp(1_000, 20_000_000).to_string());
    }
    in_child("flood");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    inserts(&mut c);
    c.final_summary();
}
