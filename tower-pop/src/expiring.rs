//! A bounded map whose entries expire, for the token cache (the replay store has its own
//! layout, in `replay::memory`).
//!
//! Bounded: an insert that would pass `capacity` first sweeps expired entries and, if the map is
//! still full, is refused (the token cache then just does not cache). Sweeps run inline, at most one at a time and at
//! most every [`SWEEP_INTERVAL_SECS`] unless the map is full; a sweep locks one `dashmap` shard
//! at a time, so requests on other shards never wait for it (no stop-the-world pause).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;

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

    /// Entries held (live or not yet swept).
    #[cfg(any(test, feature = "introspection"))]
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
    fn entries_are_live_until_expiry() {
        let m = ExpiringMap::new(10);
        m.insert([1; 32], 100, 7, 50).expect("room");
        assert_eq!(m.get(&[1; 32], 99), Some(7));
        assert_eq!(m.get(&[1; 32], 100), None);
    }

    #[test]
    fn full_map_refuses_then_recovers_after_expiry() {
        let m = ExpiringMap::new(3);
        for i in 0..3 {
            m.insert([i; 32], 100, (), 0).expect("room");
        }
        assert_eq!(m.insert([9; 32], 100, (), 1), Err(Full));
        assert_eq!(m.len(), 3);
        assert_eq!(m.insert([9; 32], 200, (), 100), Ok(()));
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
