//! The default, in-process replay store.

use super::{BoxFuture, ReplayCache, ReplayEntry, ReplayError, ReplayOutcome};
use crate::expiring::ExpiringMap;

/// In-memory [`ReplayCache`] on a sharded concurrent map, bounded to `capacity` live entries.
///
/// **When full** of live entries it refuses new proofs with [`ReplayError::full`] (the request
/// gets a 503) rather than evicting a live entry, because evicting would let that proof be
/// replayed. Expired entries are swept first, so the store is only full when `capacity` proofs
/// were accepted within one `iat` window: size it as peak accepted requests per second times
/// the window (default window 70 s: 60 s max age plus 10 s future skew). Each live entry costs
/// about 90 bytes at one million entries (measured by `benches/replay.rs`: 86 bytes).
///
/// Each instance has its own store: with several instances behind one API, use a shared store.
#[derive(Debug)]
pub struct MemoryReplayCache {
    map: ExpiringMap<()>,
}

impl MemoryReplayCache {
    /// Default capacity: one million live proofs (about 14,000 accepted requests per second
    /// sustained over the default window).
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A store holding at most `capacity` live entries.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            map: ExpiringMap::new(capacity),
        }
    }

    /// Number of entries held, live or not yet swept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no entry is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every entry that has expired at `now` (seconds since the Unix epoch).
    pub fn sweep(&self, now: u64) {
        self.map.sweep(now);
    }

    /// The synchronous operation behind [`ReplayCache::insert_if_absent`].
    pub fn insert_if_absent_sync(&self, entry: ReplayEntry) -> Result<ReplayOutcome, ReplayError> {
        match self
            .map
            .insert_if_absent(entry.key, entry.expires_at, (), entry.now)
        {
            Ok(true) => Ok(ReplayOutcome::Fresh),
            Ok(false) => Ok(ReplayOutcome::Replayed),
            Err(_) => Err(ReplayError::full()),
        }
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl ReplayCache for MemoryReplayCache {
    fn insert_if_absent(
        &self,
        entry: ReplayEntry,
    ) -> BoxFuture<'_, Result<ReplayOutcome, ReplayError>> {
        let result = self.insert_if_absent_sync(entry);
        Box::pin(std::future::ready(result))
    }
}
