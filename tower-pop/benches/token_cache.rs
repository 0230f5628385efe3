//! The verified-token cache under a token-minting client: the hit rate of 100 honest clients,
//! each reusing its own token, while one client presents 10,000 freshly minted valid tokens,
//! with the map of 0.1.0 (`ExpiringMap`, which refused inserts when full of live entries) and
//! the evicting cache (S3-FIFO) at the same capacity; then the cost of a hit.
//!
//! `cargo bench -p tower-pop --bench token_cache` (a few seconds). Prints one table.
//!
//! Tokens are 1,000 bytes, about the size of an RFC 9068 JWT. Each request looks its token up
//! (0.1.0's map: by its SHA-256, as 0.1.0 keyed it) and, on a miss, caches the token as the
//! validator does after verifying its signature; only hits are counted, so the numbers are exact for the
//! sequence and independent of the machine. Two orders are measured: the flood starts before
//! the honest clients (1,000 tokens up front, then one after every honest request), and the
//! flood and the honest clients start together (one minted token after every honest request).

#![allow(missing_docs, clippy::unwrap_used)] // bench binary

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tower_pop::__fuzzing::TokenCache;

const NOW: u64 = 1_700_000_000;
/// Tokens live an hour.
const VALID_UNTIL: u64 = NOW + 3_600;
const HONEST: u64 = 100;
const MINTED: u64 = 10_000;

/// The policy of `ExpiringMap` as of 0.1.0 (commit 21c0d1c, `tower-pop/src/expiring.rs`): an
/// entry is served while `now < expires_at`; an insert into a map holding `capacity` entries
/// first drops expired ones and, if it is still full, is refused.
struct RefusingMap {
    map: HashMap<[u8; 32], u64>,
    capacity: usize,
}

impl RefusingMap {
    fn present(&mut self, token: &[u8], valid_until: u64, now: u64) -> bool {
        let key: [u8; 32] = Sha256::digest(token).into();
        if self.map.get(&key).is_some_and(|exp| *exp > now) {
            return true;
        }
        if self.map.len() >= self.capacity {
            self.map.retain(|_, exp| *exp > now);
        }
        if self.map.len() < self.capacity {
            self.map.insert(key, valid_until);
        }
        false
    }
}

/// Bytes of each token: about an RFC 9068 JWT.
const TOKEN_LEN: usize = 1_000;

/// A distinct token of [`TOKEN_LEN`] bytes for (`kind`, `i`).
fn token(kind: &str, i: u64) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(i.to_le_bytes());
    let digest: [u8; 32] = h.finalize().into();
    digest.iter().copied().cycle().take(TOKEN_LEN).collect()
}

/// Honest hits out of honest requests, for `present` under the flood: `up_front` minted tokens
/// first, the rest one after each honest request (100 clients in turn) until all are used,
/// honest requests going on until every client made 100.
fn run(mut present: impl FnMut(&[u8]) -> bool, up_front: u64) -> (u64, u64) {
    let honest: Vec<Vec<u8>> = (0..HONEST).map(|client| token("honest", client)).collect();
    let mut minted = 0;
    for _ in 0..up_front {
        present(&token("minted", minted));
        minted += 1;
    }
    let (mut hits, mut requests) = (0, 0);
    for _round in 0..100 {
        for client in &honest {
            hits += u64::from(present(client));
            requests += 1;
            if minted < MINTED {
                present(&token("minted", minted));
                minted += 1;
            }
        }
    }
    assert_eq!(minted, MINTED);
    (hits, requests)
}

fn rate((hits, requests): (u64, u64)) -> String {
    format!(
        "{:5.1} % ({hits}/{requests})",
        100.0 * hits as f64 / requests as f64
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, quickly.
    println!(
        "honest clients' hit rate, 100 clients reusing a token each, one client minting 10,000 tokens"
    );
    println!(
        "{:>9} {:>26} {:>26} {:>26}",
        "capacity", "flood first", "", "together"
    );
    println!(
        "{:>9} {:>26} {:>26} {:>26} {:>26}",
        "",
        "ExpiringMap (0.1.0)",
        "S3-FIFO (quick_cache)",
        "ExpiringMap (0.1.0)",
        "S3-FIFO (quick_cache)"
    );
    for capacity in [1_000usize, tower_pop::DEFAULT_TOKEN_CACHE_CAPACITY] {
        let up_front = capacity.min(MINTED as usize) as u64;
        let mut cells = Vec::new();
        for up_front in [up_front, 0] {
            let mut old = RefusingMap {
                map: HashMap::new(),
                capacity,
            };
            cells.push(rate(run(|k| old.present(k, VALID_UNTIL, NOW), up_front)));
            let new = TokenCache::new(capacity, tower_pop::DEFAULT_TOKEN_CACHE_BYTES, 300);
            cells.push(rate(run(|k| new.present(k, VALID_UNTIL, NOW), up_front)));
            assert!(new.len() <= capacity);
        }
        println!(
            "{capacity:>9} {:>26} {:>26} {:>26} {:>26}",
            cells[0], cells[1], cells[2], cells[3]
        );
    }
    println!(
        "(flood first: the first `capacity` minted tokens, at most 10,000, come before any honest request)"
    );

    // The cost of a hit and of a miss-and-insert, on this machine (wall time, one thread).
    let cache = TokenCache::new(10_000, tower_pop::DEFAULT_TOKEN_CACHE_BYTES, 300);
    let keys: Vec<Vec<u8>> = (0..1_000).map(|i| token("cost", i)).collect();
    for k in &keys {
        let _ = cache.present(k, VALID_UNTIL, NOW);
    }
    let rounds = 1_000;
    let start = Instant::now();
    for _ in 0..rounds {
        for k in &keys {
            black_box(cache.present(black_box(k), VALID_UNTIL, NOW));
        }
    }
    let hit = start.elapsed().as_nanos() as f64 / (rounds * keys.len()) as f64;
    let fresh: Vec<Vec<u8>> = (0..100_000).map(|i| token("fresh", i)).collect();
    let start = Instant::now();
    for k in &fresh {
        black_box(cache.present(black_box(k), VALID_UNTIL, NOW));
    }
    let miss = start.elapsed().as_nanos() as f64 / fresh.len() as f64;
    println!(
        "cost ({TOKEN_LEN}-byte tokens): hit {hit:.0} ns, miss and insert (evicting) {miss:.0} ns"
    );
}
