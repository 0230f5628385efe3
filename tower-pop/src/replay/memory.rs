//! The default, in-process replay store (RFC 9449 §11.1).
//!
//! RFC 9449 §11.1 lets a server remember the `jti` of every proof it accepted for as long as
//! the `iat` check would still accept the proof, and decline a second use. This store does so
//! for one process, in bounded memory and at a cost per proof far below a signature check.
//!
//! # Layout
//!
//! - **Keys.** Each [`ReplayEntry::key`] (already SHA-256 of the proof-key thumbprint and the
//!   `jti`, so the raw `jti` is never stored) is hashed with SipHash-1-3 under a random
//!   per-store key ([`std::hash::RandomState`]: keys from the operating system's random source,
//!   documented by std as resistant to HashDoS). Clients choose their `jti`s, so they could aim
//!   collisions at an unkeyed table; those 64 keyed bits choose the shard and the buckets, so
//!   they cannot aim at this one. An entry is one 16-byte slot: a 96-bit fingerprint (the 64
//!   keyed bits and 32 bits of the entry key) and its 32-bit expiry.
//! - **Shards.** The top bits of the keyed hash choose one of 1024 shards, each behind its own
//!   lock, which covers the whole "is it there? if not, insert it", so of concurrent copies of
//!   one proof exactly one is [`ReplayOutcome::Fresh`], whatever their expiries.
//! - **Table.** A shard keeps its slots in one bucketized cuckoo hash table: each key has two
//!   candidate buckets of four slots (one 64-byte cache line each), so a lookup reads two cache
//!   lines however many entries and time slices there are. A slot whose expiry has passed is
//!   free space at once: nothing needs to delete it. A table grows (by 25–75%, staggered
//!   across shards) when more than 90% of its slots hold counted entries and shrinks to 60%
//!   when less than a quarter do, rehashing only that shard (about 10,000 entries at ten
//!   million: a pause of a few hundred microseconds for 1/1024 of the requests, none for the
//!   others; in steady traffic tables keep their size).
//! - **Time slices.** Each shard also counts its entries per time slice of expiry (1/8 of the
//!   longest lifetime seen: 10 s for the default 76 s lifetime, at most 450 s), in a short ring of
//!   counters: about nine live slices. Expiry is O(1) per slice: once the latest expiry in a
//!   slice has passed, its count is dropped whole, on the shard's next insert. There is no
//!   sweep over live entries and no stop-the-world pause, and memory follows the live load
//!   down as well as up. An entry answers [`ReplayOutcome::Replayed`] exactly until its
//!   `expires_at`; it is counted (against the capacity and in [`MemoryReplayCache::len`]) until
//!   its slice goes, at most one slice longer.
//!
//! # Capacity
//!
//! At most `capacity` entries are counted; when full the store refuses new proofs with
//! [`ReplayError::full`] (the request gets a 503), never evicting a live entry, because that
//! would let its proof be replayed. A replay of a live proof is still reported as a replay.
//! The store logs the condition at most once every 10 s.
//!
//! The default is sized so that honest load cannot fill it: an entry is only recorded after its
//! proof's signature was verified, so the store can never receive more than
//! `cores / fastest signature verification` entries per second, and each is counted at most
//! for the proof window plus one slice. See [`MemoryReplayCache::default_capacity`].
//!
//! # Deployment
//!
//! Each process has its own store. With several instances behind one API, a proof accepted by
//! one would be accepted by the others too: share a store instead (RFC 9449 §11.1, the `redis`
//! feature's `RedisReplayCache`).

use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::table::{SHARD_SHIFT, SHARDS, SLOTS, Table, slot};
use super::{BoxFuture, ReplayCache, ReplayEntry, ReplayError, ReplayOutcome};
use crate::defaults::{PROOF_FUTURE_SKEW, PROOF_MAX_AGE};

/// A table grows before more than 90% of its slots are counted entries, by 25% to 75%
/// depending on the shard (so the shards do not all grow at once, and the store's memory
/// follows its load smoothly) ...
const GROW_NUM: usize = 9;
const GROW_DEN: usize = 10;
/// ... and shrinks, to 60% full, when less than a quarter are.
const SHRINK_DEN: usize = 4;
const REFILL_NUM: usize = 3;
const REFILL_DEN: usize = 5;
/// A slice covers this fraction of the longest entry lifetime seen.
const SLICES_PER_LIFETIME: u64 = 8;
/// Longest slice: 1/8 of the longest proof window `PopConfig` allows (one hour).
const MAX_SLICE_SECS: u64 = 450;
/// Seconds between two "store full" log lines.
const FULL_LOG_INTERVAL_SECS: u64 = 10;
/// Expiries are stored as 32-bit offsets from a base this far before the first `now` seen
/// (room for clocks that step back), which leaves about 136 years ahead.
const BASE_MARGIN_SECS: u64 = 1 << 20;

/// The default proof lifetime, in seconds: `iat` past window, future skew, the 1 s the
/// verifier adds so that a proof is remembered until the `iat` check refuses it, and the
/// retention margin.
const DEFAULT_WINDOW_SECS: u64 =
    super::proof_lifetime_secs(PROOF_MAX_AGE.as_secs(), PROOF_FUTURE_SKEW.as_secs());

/// The cost of the fastest signature verification a proof can have, in nanoseconds, rounded
/// down. `cargo bench -p tower-pop --bench replay` prints each algorithm's cost with aws-lc-rs
/// on one core; on the (shared) development machine, an Intel Xeon with 2 cores, RS256 and
/// PS256 with 2048-bit keys (PS256 is in the default allow-list) cost 0.3 of an ES256 check and
/// Ed25519 0.6-0.8. With ES256 at about 40 us on an idle core that puts RSA-2048 at about
/// 12 us: 10 us leaves room for a faster core.
const FASTEST_VERIFY_NANOS: u64 = 10_000;

/// In-memory [`ReplayCache`] (RFC 9449 §11.1), bounded to `capacity` counted entries.
///
/// An entry is one 16-byte slot: a 96-bit fingerprint of its key (SipHash-1-3 under a random
/// per-store key, so clients cannot aim collisions) and its expiry, in one cuckoo hash table
/// per shard (1024 shards, one lock each, so "look up, then insert" is atomic: of concurrent
/// copies of a proof exactly one is [`ReplayOutcome::Fresh`]). A lookup reads two cache lines.
/// An entry answers [`ReplayOutcome::Replayed`] until exactly its `expires_at`; its slot is
/// free space from then on. Each shard counts its entries per time slice of expiry (1/8 of the
/// longest lifetime seen: 9 s by default) and drops a slice's count in O(1) once its last
/// entry has expired, so an entry is counted at most one slice longer. There is no sweep over
/// live entries and no pause of the whole store; tables grow and shrink with the load, one
/// shard at a time. Each live entry costs about 24 bytes (a slot in a table 50–90% full),
/// measured by `benches/replay.rs` at one and ten million entries.
///
/// **When full** it refuses new proofs with [`ReplayError::full`] (the request gets a 503)
/// rather than evicting a live entry, because evicting would let that proof be replayed; a
/// replay of a live proof is still reported as a replay. The store logs "full" at most once
/// every 10 s. The [default](Self::default_capacity) is sized so that honest load cannot fill it.
///
/// Each instance has its own store: with several instances behind one API, use a shared store.
///
/// ```
/// use tower_pop::MemoryReplayCache;
/// use tower_pop::replay::{ReplayEntry, ReplayOutcome};
///
/// let store = MemoryReplayCache::new(1000);
/// let entry = ReplayEntry::new([7; 32], 1_700_000_000, 1_700_000_061);
/// assert_eq!(store.insert_if_absent_sync(entry).unwrap(), ReplayOutcome::Fresh);
/// assert_eq!(store.insert_if_absent_sync(entry).unwrap(), ReplayOutcome::Replayed);
/// // After its expiry the entry is gone (the verifier's `iat` check refuses such proofs).
/// store.sweep(1_700_000_061);
/// assert!(store.is_empty());
/// ```
pub struct MemoryReplayCache {
    /// SipHash-1-3 under a random key.
    hasher: RandomState,
    shards: Box<[Padded]>,
    capacity: usize,
    /// Entries reserved from `capacity` by the shards: counted entries plus unused credit.
    reserved: AtomicUsize,
    /// Credit a shard takes from `reserved` at a time, so that inserts rarely touch it.
    credit_chunk: usize,
    /// Slice length in seconds: 1/8 of the longest lifetime seen, only ever growing.
    slice_secs: AtomicU64,
    /// Stored expiries are offsets from this time (set by the first insert).
    base: OnceLock<u64>,
    /// The latest `now` seen, for [`len`](Self::len).
    latest_now: AtomicU64,
    /// Times a shard took credit: if none did since the last sweep, no credit is stranded.
    credit_takes: AtomicU64,
    /// `(now, credit_takes)` at the last sweep made because the store looked full.
    last_full_sweep: Mutex<(u64, u64)>,
    /// When "store full" was last logged (`u64::MAX`: never).
    last_full_log: AtomicU64,
}

/// A shard's lock on its own cache lines, so that two cores do not share one.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

struct Shard {
    table: Table,
    /// Growth step in sixteenths of the table: 4 to 12.
    growth: usize,
    /// Disjoint slices, ordered by time (so their `max_expiry` are increasing too).
    slices: VecDeque<Slice>,
    /// Entries counted in `slices`.
    counted: usize,
    /// Entries this shard may still insert before it asks the store for more.
    credit: usize,
}

/// The count of entries whose expiry is in `start..end`, all expired once `max_expiry` has.
struct Slice {
    start: u64,
    end: u64,
    max_expiry: u64,
    count: usize,
}

impl Shard {
    fn new(index: usize) -> Self {
        Self {
            table: Table::with_buckets(1),
            growth: 4 + index * 8 / SHARDS,
            slices: VecDeque::new(),
            counted: 0,
            credit: 0,
        }
    }

    /// Drop the count of every slice whose entries have all expired at `now`; the number of
    /// entries no longer counted.
    fn drop_expired(&mut self, now: u64) -> usize {
        let mut freed = 0;
        while let Some(slice) = self.slices.front() {
            if slice.max_expiry > now {
                break;
            }
            freed += slice.count;
            self.slices.pop_front();
        }
        self.counted -= freed;
        freed
    }

    /// Count one more entry expiring at `expiry`, in its slice (created between its
    /// neighbours when missing).
    fn count(&mut self, expiry: u64, slice_secs: u64) {
        let i = self.slices.partition_point(|s| s.end <= expiry);
        if self.slices.get(i).is_none_or(|s| s.start > expiry) {
            let aligned = expiry - expiry % slice_secs;
            let start = match i.checked_sub(1).and_then(|p| self.slices.get(p)) {
                Some(prev) => prev.end.max(aligned),
                None => aligned,
            };
            let end = match self.slices.get(i) {
                Some(next) => next.start.min(aligned.saturating_add(slice_secs)),
                None => aligned.saturating_add(slice_secs),
            };
            let slice = Slice {
                start,
                end,
                max_expiry: expiry,
                count: 0,
            };
            self.slices.insert(i, slice);
        }
        let slice = &mut self.slices[i];
        slice.count += 1;
        slice.max_expiry = slice.max_expiry.max(expiry);
        self.counted += 1;
    }

    /// Insert a slot known to be absent, growing the table first when it would be more than
    /// 90% counted entries (or when the cuckoo walk fails).
    fn insert(&mut self, slot: u128, now: u32) {
        let bigger = self.table.buckets() * (16 + self.growth) / 16 + 1;
        // `counted` already includes this entry.
        if self.counted * GROW_DEN > self.table.slots() * GROW_NUM {
            self.table = self.table.rehashed(bigger, Some(slot), now);
        } else if let Err(homeless) = self.table.place(slot, now) {
            self.table = self.table.rehashed(bigger, Some(homeless), now);
        }
    }

    /// After slices expired: shrink a table that is less than a quarter counted entries.
    fn maybe_shrink(&mut self, now: u32) {
        let buckets = self.table.buckets();
        if buckets > 1 && self.counted * SHRINK_DEN < self.table.slots() {
            let target = (self.counted * REFILL_DEN / REFILL_NUM).div_ceil(SLOTS);
            self.table = self.table.rehashed(target.max(1), None, now);
        }
    }
}

/// The outcome of one attempt under a shard's lock.
enum Attempt {
    Done(ReplayOutcome),
    Full,
}

impl MemoryReplayCache {
    /// The former fixed default capacity (one million live proofs).
    #[deprecated(note = "`Default` now sizes the store from the machine: use `default_capacity()`")]
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// The capacity of [`MemoryReplayCache::default`]: as many entries as this machine can
    /// accept proofs in one default proof window, so that honest load cannot fill it.
    ///
    /// `cores × (76 s + 10 s) / 10 us`: `cores` is [`std::thread::available_parallelism`];
    /// 76 s the default proof lifetime (60 s past, 10 s future, plus 1 s, plus the 5 s
    /// retention margin) and 10 s one time slice,
    /// the longest an entry stays counted past its expiry; 10 us a rounded-down cost of the
    /// cheapest signature check a proof can have (PS256/RS256 with 2048-bit keys, about 12 us;
    /// ES256 costs about 40 us). Every recorded proof had its signature checked, so no load,
    /// honest or not, can count more entries than that on this machine.
    ///
    /// That is 8.6 million entries per core. The limit only bounds memory: the tables follow
    /// the live load at about 24 bytes an entry, so a full store costs about 206 MB per core
    /// (17.2 million entries and 413 MB on 2 cores, 137.6 million and 3.3 GB on 16, 550.4
    /// million and 13.2 GB on 64), and only while every core does nothing but verify RSA proofs.
    ///
    /// With a longer proof window, size the store yourself with [`new`](Self::new): peak
    /// accepted proofs per second times the window plus one eighth.
    #[must_use]
    pub fn default_capacity() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        capacity_for(cores, DEFAULT_WINDOW_SECS)
    }

    /// A store counting at most `capacity` entries.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|i| Padded(Mutex::new(Shard::new(i))))
            .collect();
        Self {
            hasher: RandomState::new(),
            shards,
            capacity,
            reserved: AtomicUsize::new(0),
            // At most 1/16 of a shard's share stays stranded as credit in one shard.
            credit_chunk: (capacity / (SHARDS * 16)).clamp(1, 64),
            slice_secs: AtomicU64::new(1),
            base: OnceLock::new(),
            latest_now: AtomicU64::new(0),
            credit_takes: AtomicU64::new(0),
            last_full_sweep: Mutex::new((0, 0)),
            last_full_log: AtomicU64::new(u64::MAX),
        }
    }

    /// Number of entries counted in slices that have not expired at the latest time the store
    /// has seen (an entry may be counted up to one slice past its own expiry).
    #[must_use]
    pub fn len(&self) -> usize {
        let now = self.latest_now.load(Ordering::Relaxed);
        self.shards
            .iter()
            .map(|shard| {
                lock(shard)
                    .slices
                    .iter()
                    .filter(|s| s.max_expiry > now)
                    .map(|s| s.count)
                    .sum::<usize>()
            })
            .sum()
    }

    /// Whether no entry is counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the shards' tables (the heap the store uses, less allocator overhead and
    /// about 100 KB of locks and counters).
    #[must_use]
    pub fn allocated_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| lock(shard).table.bytes())
            .sum()
    }

    /// Drop every slice that has expired at `now` (seconds since the Unix epoch), in every
    /// shard, and shrink tables left mostly empty. Not needed for correctness or memory under
    /// load (each shard does this on its own inserts); useful before [`len`](Self::len) or
    /// after traffic stops.
    pub fn sweep(&self, now: u64) {
        self.observe_now(now);
        let now32 = self.offset(now);
        for shard in &self.shards {
            let mut guard = lock(shard);
            let freed = guard.drop_expired(now);
            guard.maybe_shrink(now32);
            // Return unused credit too, so that the count is exact afterwards.
            let credit = std::mem::take(&mut guard.credit);
            self.reserved.fetch_sub(freed + credit, Ordering::Relaxed);
        }
    }

    /// The synchronous operation behind [`ReplayCache::insert_if_absent`].
    ///
    /// An entry whose `expires_at` is not after its `now` is kept for one second, as
    /// [`ReplayEntry::ttl_secs`] says.
    pub fn insert_if_absent_sync(&self, entry: ReplayEntry) -> Result<ReplayOutcome, ReplayError> {
        let now = entry.now;
        let expiry = entry.expires_at.max(now.saturating_add(1));
        self.observe_now(now);
        self.observe_lifetime(expiry - now);
        let keyed = self.keyed_hash(&entry.key);
        if let Attempt::Done(outcome) = self.attempt(keyed, &entry.key, expiry, now) {
            return Ok(outcome);
        }
        // Full, or credit is stranded in other shards: make room, then retry once.
        self.make_room(now);
        if let Attempt::Done(outcome) = self.attempt(keyed, &entry.key, expiry, now) {
            return Ok(outcome);
        }
        self.log_full(now);
        Err(ReplayError::full())
    }

    /// Look the key up and insert it, all under its shard's lock.
    fn attempt(&self, keyed: u64, key: &[u8; 32], expiry: u64, now: u64) -> Attempt {
        let (now32, expiry32) = (self.offset(now), self.offset(expiry).max(1));
        let slot = slot(keyed, key, expiry32);
        let mut shard = lock(&self.shards[(keyed >> SHARD_SHIFT) as usize]);
        let freed = shard.drop_expired(now);
        if freed > 0 {
            self.reserved.fetch_sub(freed, Ordering::Relaxed);
            shard.maybe_shrink(now32);
        }
        if shard.table.contains(slot, now32) {
            return Attempt::Done(ReplayOutcome::Replayed);
        }
        if shard.credit == 0 && !self.take_credit(&mut shard) {
            return Attempt::Full;
        }
        shard.credit -= 1;
        shard.count(expiry, self.slice_secs.load(Ordering::Relaxed));
        shard.insert(slot, now32);
        Attempt::Done(ReplayOutcome::Fresh)
    }

    /// Sweep every shard, unless neither time has moved nor any shard taken credit since the
    /// last such sweep (then it would free nothing): a store that is really full refuses
    /// without touching other shards.
    fn make_room(&self, now: u64) {
        let mut last = self
            .last_full_sweep
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let takes = self.credit_takes.load(Ordering::Relaxed);
        if now > last.0 || takes != last.1 {
            *last = (now.max(last.0), takes);
            self.sweep(now);
        }
    }

    /// Reserve some entries of the capacity for `shard`.
    fn take_credit(&self, shard: &mut Shard) -> bool {
        let taken = self
            .reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |reserved| {
                let room = self.capacity.saturating_sub(reserved);
                (room > 0).then(|| reserved + self.chunk(room))
            });
        match taken {
            Ok(before) => {
                shard.credit += self.chunk(self.capacity - before);
                self.credit_takes.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        }
    }

    /// Credit to take when `room` entries are left: smaller as the store fills, so that
    /// little stays stranded in other shards.
    fn chunk(&self, room: usize) -> usize {
        self.credit_chunk.min(room / (2 * SHARDS)).max(1).min(room)
    }

    /// SipHash-1-3 of the entry key under the store's random key.
    fn keyed_hash(&self, key: &[u8; 32]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(key);
        hasher.finish()
    }

    /// `time` as an offset from the store's base, saturating (so a clock that stepped back
    /// past the base sees every entry as live: fail closed).
    fn offset(&self, time: u64) -> u32 {
        let base = *self
            .base
            .get_or_init(|| time.saturating_sub(BASE_MARGIN_SECS));
        u32::try_from(time.saturating_sub(base)).unwrap_or(u32::MAX)
    }

    fn observe_now(&self, now: u64) {
        // Read first: the value changes once a second, so the cache line stays shared.
        if now > self.latest_now.load(Ordering::Relaxed) {
            self.latest_now.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn observe_lifetime(&self, lifetime: u64) {
        let secs = lifetime
            .div_ceil(SLICES_PER_LIFETIME)
            .clamp(1, MAX_SLICE_SECS);
        if secs > self.slice_secs.load(Ordering::Relaxed) {
            self.slice_secs.fetch_max(secs, Ordering::Relaxed);
        }
    }

    /// Log "full" at most once every [`FULL_LOG_INTERVAL_SECS`] (the verifier logs each refusal).
    fn log_full(&self, now: u64) {
        let last = self.last_full_log.load(Ordering::Relaxed);
        let due = last == u64::MAX || now >= last.saturating_add(FULL_LOG_INTERVAL_SECS);
        if due
            && self
                .last_full_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::error!(
                target: crate::observe::REPLAY,
                capacity = self.capacity,
                "in-memory DPoP replay store full: new proofs get 503 until entries expire \
                 (capacity is MemoryReplayCache::new's argument)"
            );
        }
    }
}

/// `cores × (window + one slice) / FASTEST_VERIFY_NANOS`, saturating.
fn capacity_for(cores: usize, window_secs: u64) -> usize {
    let counted_secs = window_secs.saturating_add(window_secs.div_ceil(SLICES_PER_LIFETIME));
    let per_core = counted_secs.saturating_mul(1_000_000_000) / FASTEST_VERIFY_NANOS;
    usize::try_from(per_core)
        .unwrap_or(usize::MAX)
        .saturating_mul(cores)
}

/// A shard's lock; a panic elsewhere cannot leave a shard inconsistent (no mutation is left
/// half done by anything that can panic), so a poisoned lock is used as is.
fn lock(shard: &Padded) -> MutexGuard<'_, Shard> {
    shard.0.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for MemoryReplayCache {
    /// A store of [`default_capacity`](Self::default_capacity) entries.
    fn default() -> Self {
        Self::new(Self::default_capacity())
    }
}

impl fmt::Debug for MemoryReplayCache {
    // Hand-written: the hash key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayCache")
            .field("capacity", &self.capacity)
            .field("reserved", &self.reserved.load(Ordering::Relaxed))
            .field("shards", &SHARDS)
            .field("slice_secs", &self.slice_secs.load(Ordering::Relaxed))
            .finish_non_exhaustive()
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    const T0: u64 = 1_700_000_000;

    fn key(n: u64) -> [u8; 32] {
        let mut k = [0; 32];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k
    }

    fn insert(store: &MemoryReplayCache, n: u64, now: u64, expires_at: u64) -> ReplayOutcome {
        store
            .insert_if_absent_sync(ReplayEntry::new(key(n), now, expires_at))
            .expect("room")
    }

    impl MemoryReplayCache {
        fn most_slices_in_a_shard(&self) -> usize {
            self.shards
                .iter()
                .map(|s| lock(s).slices.len())
                .max()
                .unwrap_or(0)
        }
    }

    /// A small deterministic generator for times and lifetimes.
    struct XorShift(u64);

    impl XorShift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn fresh_once_then_replayed_until_expiry() {
        let store = MemoryReplayCache::new(100);
        assert_eq!(insert(&store, 1, T0, T0 + 61), ReplayOutcome::Fresh);
        assert_eq!(insert(&store, 1, T0, T0 + 61), ReplayOutcome::Replayed);
        assert_eq!(insert(&store, 1, T0 + 60, T0 + 61), ReplayOutcome::Replayed);
        // Replayed with another expiry (same key, other `iat`): still found, in any slice.
        assert_eq!(insert(&store, 1, T0 + 30, T0 + 91), ReplayOutcome::Replayed);
        assert_eq!(insert(&store, 2, T0, T0 + 61), ReplayOutcome::Fresh);
        assert_eq!(store.len(), 2);
    }

    /// `count` keys that fall in the same shard of `store`.
    fn keys_in_one_shard(store: &MemoryReplayCache, count: usize) -> Vec<u64> {
        let shard = |n: u64| store.keyed_hash(&key(n)) >> SHARD_SHIFT;
        let first = shard(0);
        (0..).filter(|&n| shard(n) == first).take(count).collect()
    }

    #[test]
    fn a_slice_is_counted_until_its_latest_entry_expires() {
        let store = MemoryReplayCache::new(100);
        let [a, b, c] = keys_in_one_shard(&store, 3)[..] else {
            unreachable!()
        };
        // Lifetimes up to 71 s: slices of 9 s. T0 is a multiple of 9 plus 8, so b (T0 + 64)
        // and c (T0 + 70) share the slice T0 + 64 .. T0 + 73, and a (T0 + 75) is in the next.
        assert_eq!(T0 % 9, 8);
        assert_eq!(insert(&store, b, T0, T0 + 64), ReplayOutcome::Fresh);
        assert_eq!(insert(&store, c, T0 - 1, T0 + 70), ReplayOutcome::Fresh);
        assert_eq!(insert(&store, a, T0 + 4, T0 + 75), ReplayOutcome::Fresh);
        assert_eq!(store.slice_secs.load(Ordering::Relaxed), 9);
        assert_eq!(store.most_slices_in_a_shard(), 2);
        // b answers by its own expiry: a replay until T0 + 64, fresh from then on.
        assert_eq!(insert(&store, b, T0 + 63, T0 + 64), ReplayOutcome::Replayed);
        store.sweep(T0 + 64);
        assert_eq!(insert(&store, b, T0 + 64, T0 + 125), ReplayOutcome::Fresh);
        // But it stays counted until its slice goes, with c, at T0 + 70.
        store.sweep(T0 + 69);
        assert_eq!(store.len(), 4);
        store.sweep(T0 + 70);
        assert_eq!(store.len(), 2);
        assert_eq!(store.most_slices_in_a_shard(), 2);
        assert_eq!(insert(&store, c, T0 + 70, T0 + 131), ReplayOutcome::Fresh);
        assert_eq!(insert(&store, a, T0 + 74, T0 + 75), ReplayOutcome::Replayed);
        assert_eq!(insert(&store, a, T0 + 75, T0 + 136), ReplayOutcome::Fresh);
    }

    #[test]
    fn tables_grow_with_the_load_and_shrink_after_it() {
        let store = MemoryReplayCache::new(1_000_000);
        for n in 0..200_000 {
            assert_eq!(insert(&store, n, T0, T0 + 61), ReplayOutcome::Fresh);
        }
        let full = store.allocated_bytes();
        // 16-byte slots, 60-90% of them used.
        assert!(
            (200_000 * 16 * 10 / 9..=200_000 * 16 * 5 / 3).contains(&full),
            "{full}"
        );
        for n in 0..200_000 {
            assert_eq!(insert(&store, n, T0 + 60, T0 + 61), ReplayOutcome::Replayed);
        }
        store.sweep(T0 + 61);
        assert!(store.is_empty());
        assert_eq!(store.allocated_bytes(), SHARDS * 64);
        assert_eq!(insert(&store, 0, T0 + 61, T0 + 122), ReplayOutcome::Fresh);
    }

    #[test]
    fn expired_entries_leave_on_the_next_insert_without_a_sweep() {
        let store = MemoryReplayCache::new(10);
        for n in 0..10 {
            assert_eq!(insert(&store, n, T0, T0 + 61), ReplayOutcome::Fresh);
        }
        // Every shard drops its own expired slices; a full store makes room by itself.
        assert_eq!(insert(&store, 99, T0 + 61, T0 + 122), ReplayOutcome::Fresh);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn no_entry_is_forgotten_before_its_expiry() {
        let store = MemoryReplayCache::new(1_000_000);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut inserted = Vec::new();
        let mut n = 0;
        for now in T0..T0 + 300 {
            for _ in 0..50 {
                // Proofs up to 60 s old or 10 s ahead: expiry = iat + 61.
                let iat = now - 60 + rng.below(71);
                assert_eq!(insert(&store, n, now, iat + 61), ReplayOutcome::Fresh);
                inserted.push((n, iat + 61));
                n += 1;
            }
            // Every entry still live at `now` is remembered, whatever its slice.
            inserted.retain(|&(_, expiry)| expiry > now);
            for &(m, expiry) in inserted.iter().step_by(7) {
                assert_eq!(
                    insert(&store, m, now, expiry),
                    ReplayOutcome::Replayed,
                    "entry {m} expiring at {expiry} forgotten at {now}"
                );
            }
        }
        assert!(store.len() >= inserted.len());
    }

    #[test]
    fn twenty_concurrent_copies_give_exactly_one_fresh() {
        let store = Arc::new(MemoryReplayCache::new(10_000));
        for round in 0..50u64 {
            let barrier = Arc::new(Barrier::new(20));
            let threads: Vec<_> = (0..20u64)
                .map(|copy| {
                    let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        // Half the rounds send one entry; the others vary the expiry, so the
                        // copies would go to different slices: still one Fresh.
                        let expiry = if round % 2 == 0 {
                            T0 + 61
                        } else {
                            T0 + 1 + copy * 4
                        };
                        barrier.wait();
                        insert(&store, round, T0, expiry)
                    })
                })
                .collect();
            let fresh = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|o| *o == ReplayOutcome::Fresh)
                .count();
            assert_eq!(fresh, 1, "round {round}");
        }
    }

    #[test]
    fn full_store_refuses_then_recovers_after_expiry() {
        let store = MemoryReplayCache::new(3);
        for n in 0..3 {
            assert_eq!(insert(&store, n, T0, T0 + 61), ReplayOutcome::Fresh);
        }
        let refused = store
            .insert_if_absent_sync(ReplayEntry::new(key(9), T0 + 1, T0 + 62))
            .unwrap_err();
        assert!(refused.is_full());
        // A replay of a live key is still reported as a replay, not as "full".
        assert_eq!(insert(&store, 0, T0 + 1, T0 + 61), ReplayOutcome::Replayed);
        assert_eq!(store.len(), 3);
        assert_eq!(insert(&store, 9, T0 + 61, T0 + 122), ReplayOutcome::Fresh);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn capacity_is_exact_across_shards() {
        // Large enough that shards take credit in chunks.
        let store = MemoryReplayCache::new(100_000);
        assert!(store.credit_chunk > 1);
        for n in 0..100_000 {
            assert_eq!(insert(&store, n, T0, T0 + 61), ReplayOutcome::Fresh, "{n}");
        }
        for n in 100_000..100_010 {
            let refused = store
                .insert_if_absent_sync(ReplayEntry::new(key(n), T0, T0 + 61))
                .unwrap_err();
            assert!(refused.is_full());
        }
        assert_eq!(store.len(), 100_000);
    }

    #[test]
    fn memory_stays_flat_under_a_flood_of_unique_proofs() {
        let store = MemoryReplayCache::new(10_000_000);
        let per_sec = 2_000;
        let mut n = 0;
        let mut bytes_at = Vec::new();
        for now in T0..T0 + 600 {
            for _ in 0..per_sec {
                assert_eq!(insert(&store, n, now, now + 61), ReplayOutcome::Fresh);
                n += 1;
            }
            if (now - T0) % 100 == 99 {
                bytes_at.push(store.allocated_bytes());
                // Live: 61 s of proofs, plus at most one slice (9 s) not yet dropped.
                assert!(
                    store.len() <= per_sec as usize * (61 + 9),
                    "{}",
                    store.len()
                );
                // About nine live slices a shard, whatever the duration of the flood.
                assert!(store.most_slices_in_a_shard() <= 9);
            }
        }
        // After the first window, memory no longer grows; it only breathes by the one slice
        // in nine that is being filled or dropped.
        let (low, high) = bytes_at[1..]
            .iter()
            .fold((usize::MAX, 0), |(l, h), &b| (l.min(b), h.max(b)));
        assert!(high <= low + low / 5, "{bytes_at:?}");
        // And about 16 bytes of key in 24-32 bytes of table per held entry.
        let per_entry = high / store.len();
        assert!(
            (16..=40).contains(&per_entry),
            "{per_entry} bytes per entry"
        );
    }

    #[test]
    fn slices_widen_with_long_windows() {
        // A one-hour window still gives about nine slices a shard, not 900.
        let store = MemoryReplayCache::new(1_000_000);
        let mut n = 0;
        for now in (T0..T0 + 7200).step_by(10) {
            for _ in 0..20 {
                insert(&store, n, now, now + 3601);
                n += 1;
            }
        }
        assert_eq!(
            store.slice_secs.load(Ordering::Relaxed),
            451.min(MAX_SLICE_SECS)
        );
        assert!(store.most_slices_in_a_shard() <= 10);
    }

    #[test]
    fn an_entry_already_expired_is_kept_one_second() {
        let store = MemoryReplayCache::new(10);
        assert_eq!(insert(&store, 1, T0, T0 - 5), ReplayOutcome::Fresh);
        assert_eq!(insert(&store, 1, T0, T0 - 5), ReplayOutcome::Replayed);
        store.sweep(T0 + 1);
        assert!(store.is_empty());
    }

    #[test]
    fn stores_hash_under_their_own_random_keys() {
        let (a, b) = (MemoryReplayCache::new(1), MemoryReplayCache::new(1));
        assert_ne!(a.keyed_hash(&key(1)), b.keyed_hash(&key(1)));
        assert_eq!(a.keyed_hash(&key(1)), a.keyed_hash(&key(1)));
        assert!(!format!("{a:?}").contains("RandomState"));
    }

    #[test]
    fn default_capacity_is_cores_times_window_over_the_fastest_verify() {
        // The 71 s window plus one 9 s slice, at 10 us a proof.
        assert_eq!(capacity_for(1, 71), 8_000_000);
        // The default 76 s lifetime plus one 10 s slice.
        assert_eq!(capacity_for(1, DEFAULT_WINDOW_SECS), 8_600_000);
        assert_eq!(capacity_for(2, 71), 2 * capacity_for(1, 71));
        assert_eq!(capacity_for(usize::MAX, u64::MAX), usize::MAX);
        assert!(MemoryReplayCache::default_capacity() >= capacity_for(1, 71));
    }
}
