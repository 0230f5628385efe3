//! Inactive answers (RFC 7662 §2.2 `"active": false`), remembered for a short time: a client
//! retrying a revoked or unknown token costs the authorization server one call per TTL, not
//! one per request. A token does not become active again, so the only cost of the TTL is
//! memory: bounded by count, oldest out first. Keyed by the token's SHA-256, never the token.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Token hashes answered inactive, each until its expiry (exclusive).
#[derive(Debug)]
pub(super) struct NegativeCache {
    ttl: u64,
    capacity: usize,
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    expiry: HashMap<[u8; 32], u64>,
    /// Insertion order, with each entry's expiry: the oldest leaves first. At most
    /// `capacity` places.
    order: VecDeque<([u8; 32], u64)>,
}

impl NegativeCache {
    /// Entries live `ttl` seconds; at most `capacity` of them (either zero: nothing is kept).
    pub(super) fn new(ttl: u64, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            inner: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every change leaves both collections consistent before the next can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `token_hash` was answered inactive and that answer is still remembered at `now`.
    pub(super) fn contains(&self, token_hash: &[u8; 32], now: u64) -> bool {
        self.capacity > 0
            && self.ttl > 0
            && self
                .lock()
                .expiry
                .get(token_hash)
                .is_some_and(|&expiry| now < expiry)
    }

    /// Remember that `token_hash` was answered inactive at `now`.
    pub(super) fn insert(&self, token_hash: [u8; 32], now: u64) {
        if self.capacity == 0 || self.ttl == 0 {
            return;
        }
        let expiry = now.saturating_add(self.ttl);
        let mut entries = self.lock();
        // The expired first, then the oldest while full.
        while let Some(&(hash, at)) = entries.order.front() {
            if at > now && entries.order.len() < self.capacity {
                break;
            }
            entries.order.pop_front();
            if entries.expiry.get(&hash) == Some(&at) {
                entries.expiry.remove(&hash);
            }
        }
        // Already there (two calls raced), the older place in the order is stale: it names
        // another expiry, so taking it out later removes nothing, and it counts as one of the
        // `capacity` places until then.
        entries.expiry.insert(token_hash, expiry);
        entries.order.push_back((token_hash, expiry));
    }

    /// Entries held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        let entries = self.lock();
        assert!(entries.expiry.len() <= entries.order.len());
        assert!(entries.order.len() <= self.capacity);
        entries.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn inactive_answers_are_remembered_for_the_ttl() {
        let cache = NegativeCache::new(30, 10);
        cache.insert(hash(1), 100);
        assert!(cache.contains(&hash(1), 100));
        assert!(cache.contains(&hash(1), 129));
        assert!(!cache.contains(&hash(1), 130));
        assert!(!cache.contains(&hash(2), 100));
    }

    #[test]
    fn the_oldest_leave_first_and_the_count_is_bounded() {
        let cache = NegativeCache::new(30, 3);
        for n in 0..10 {
            cache.insert(hash(n), 100);
            assert!(cache.len() <= 3);
        }
        assert!(cache.contains(&hash(9), 100));
        assert!(!cache.contains(&hash(0), 100));
        // Expired entries make room before live ones are evicted.
        cache.insert(hash(20), 200);
        assert_eq!(cache.len(), 1);
        // A repeated insert keeps one entry.
        cache.insert(hash(20), 201);
        assert_eq!(cache.len(), 1);
        assert!(cache.contains(&hash(20), 230));
    }

    #[test]
    fn zero_keeps_nothing() {
        for cache in [NegativeCache::new(0, 10), NegativeCache::new(30, 0)] {
            cache.insert(hash(1), 100);
            assert!(!cache.contains(&hash(1), 100));
        }
    }
}
