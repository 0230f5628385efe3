//! A bounded map whose entries expire, shared by the replay store and the token cache.
//!
//! Bounded: an insert that would pass `capacity` first sweeps expired entries and, if the map is
//! still full, is refused; the caller decides what "full" means (the replay store refuses the
//! request, the token cache just does not cache). Sweeps run inline, at most one at a time and at
//! most every [`SWEEP_INTERVAL_SECS`] unless the map is full; a sweep locks one `dashmap` shard
//! at a time, so requests on other shards never wait for it (no stop-the-world pause).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

/// Seconds between routine sweeps of expired entries.
pub(crate) const SWEEP_INTERVAL_SECS: u64 = 10;

/// The map is full of live entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

#[derive(Debug)]
pub(crate) struct ExpiringMap<V> {
    map: DashMap<[u8; 32], (u64, V)>,
    capacity: usize,
    sweeping: AtomicBool,
    next_sweep: AtomicU64,
}

impl<V: Clone> ExpiringMap<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: DashMap::new(),
            capacity,
            sweeping: AtomicBool::new(false),
            next_sweep: AtomicU64::new(0),
        }
    }

    /// The live value under `key`; an entry is live while `now < expires_at`.
    pub(crate) fn get(&self, key: &[u8; 32], now: u64) -> Option<V> {
        let entry = self.map.get(key)?;
        (entry.0 > now).then(|| entry.1.clone())
    }

    /// Insert unless a live entry exists, atomically per key. `Ok(true)` when inserted,
    /// `Ok(false)` when a live entry was already there.
    pub(crate) fn insert_if_absent(
        &self,
        key: [u8; 32],
        expires_at: u64,
        value: V,
        now: u64,
    ) -> Result<bool, Full> {
        if self.get(&key, now).is_some() {
            return Ok(false);
        }
        self.make_room(now)?;
        match self.map.entry(key) {
            Entry::Occupied(mut e) if e.get().0 <= now => {
                e.insert((expires_at, value));
                Ok(true)
            }
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(e) => {
                e.insert((expires_at, value));
                Ok(true)
            }
        }
    }

    /// Insert or replace.
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        expires_at: u64,
        value: V,
        now: u64,
    ) -> Result<(), Full> {
        self.make_room(now)?;
        self.map.insert(key, (expires_at, value));
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Sweep when due, or when full; refuse when still full afterwards.
    fn make_room(&self, now: u64) -> Result<(), Full> {
        let full = self.map.len() >= self.capacity;
        if full || now >= self.next_sweep.load(Ordering::Relaxed) {
            self.sweep(now);
        }
        if self.map.len() >= self.capacity {
            Err(Full)
        } else {
            Ok(())
        }
    }

    /// Drop expired entries; a no-op if another caller is already sweeping.
    pub(crate) fn sweep(&self, now: u64) {
        if self
            .sweeping
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.map.retain(|_, (expires_at, _)| *expires_at > now);
        self.next_sweep
            .store(now.saturating_add(SWEEP_INTERVAL_SECS), Ordering::Relaxed);
        self.sweeping.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_if_absent_is_single_use_until_expiry() {
        let m = ExpiringMap::new(10);
        assert_eq!(m.insert_if_absent([1; 32], 100, (), 50), Ok(true));
        assert_eq!(m.insert_if_absent([1; 32], 100, (), 99), Ok(false));
        // Expired entries no longer block (the iat check refuses such proofs anyway).
        assert_eq!(m.insert_if_absent([1; 32], 200, (), 100), Ok(true));
    }

    #[test]
    fn full_map_refuses_then_recovers_after_expiry() {
        let m = ExpiringMap::new(3);
        for i in 0..3 {
            assert_eq!(m.insert_if_absent([i; 32], 100, (), 0), Ok(true));
        }
        assert_eq!(m.insert_if_absent([9; 32], 100, (), 1), Err(Full));
        // A replay of a live key is still reported as a replay, not as "full".
        assert_eq!(m.insert_if_absent([0; 32], 100, (), 1), Ok(false));
        assert_eq!(m.len(), 3);
        assert_eq!(m.insert_if_absent([9; 32], 200, (), 100), Ok(true));
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn routine_sweep_empties_expired_entries_rpl_04() {
        let m = ExpiringMap::new(100);
        for i in 0..50 {
            m.insert([i; 32], 70, (), 0).expect("room");
        }
        assert_eq!(m.len(), 50);
        m.sweep(70);
        assert_eq!(m.len(), 0);
    }
}
