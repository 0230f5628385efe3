//! The in-memory replay store's table: one bucketized cuckoo hash table per shard, of 16-byte
//! slots (a 96-bit fingerprint and a 32-bit expiry). Each key has two candidate buckets of four
//! slots (one 64-byte cache line each), so a lookup reads two cache lines however many entries
//! there are; a slot whose expiry has passed is free space at once. What goes in, how it is
//! counted and when a table grows is the store's ([`super::memory`]).

/// Number of shards (a power of two), each with its own lock.
pub(super) const SHARDS: usize = 1024;
/// The shard is chosen by the top `log2(SHARDS)` bits of the keyed hash.
pub(super) const SHARD_SHIFT: u32 = 64 - SHARDS.trailing_zeros();
/// Slots per bucket: four `u128`s are one 64-byte cache line.
pub(super) const SLOTS: usize = 4;
/// Evictions tried before a cuckoo insert gives up and the table grows.
const MAX_KICKS: usize = 256;

/// The slot of an entry: the 64 keyed bits of its key, 32 more bits of the key, and its expiry
/// as an offset from the store's base (never 0, which marks a slot never written).
pub(super) fn slot(keyed: u64, key: &[u8; 32], expiry: u32) -> u128 {
    let tail = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
    u128::from(keyed) << 64 | u128::from(tail) << 32 | u128::from(expiry)
}

/// One cache line of slots. A slot is `fingerprint << 32 | expiry`: 96 bits of key, then the
/// expiry as an offset from the store's base; it is free when that expiry is not after now
/// (`0`, never written, is free too).
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket([u128; SLOTS]);

fn expiry_of(slot: u128) -> u32 {
    slot as u32
}

fn fingerprint_of(slot: u128) -> u128 {
    slot >> 32
}

/// A cuckoo hash table of slots: each slot lives in one of its two candidate buckets.
pub(super) struct Table {
    buckets: Box<[Bucket]>,
}

impl Table {
    pub(super) fn with_buckets(buckets: usize) -> Self {
        Self {
            buckets: vec![Bucket([0; SLOTS]); buckets.max(1)].into_boxed_slice(),
        }
    }

    /// How many buckets of [`SLOTS`] slots it has.
    pub(super) fn buckets(&self) -> usize {
        self.buckets.len()
    }

    pub(super) fn slots(&self) -> usize {
        self.buckets.len() * SLOTS
    }

    pub(super) fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    /// The two candidate buckets of a slot, from its keyed bits (the top 64; the shard used
    /// their top 10): bits 53.. for the first, bits 31.. for the second, so they are independent
    /// for tables of up to 2^22 buckets (2^34 entries a shard).
    fn candidates(&self, slot: u128) -> (usize, usize) {
        let n = self.buckets.len() as u128;
        let keyed = (slot >> 64) as u64;
        // Multiply-shift maps the hash onto any table size, not just powers of two.
        let first = ((u128::from(keyed << (64 - SHARD_SHIFT)) * n) >> 64) as usize;
        let second = ((u128::from(keyed << 32) * n) >> 64) as usize;
        if second == first && n > 1 {
            (first, (first + 1) % self.buckets.len())
        } else {
            (first, second)
        }
    }

    /// Whether a live slot with this slot's fingerprint is present at `now`.
    pub(super) fn contains(&self, slot: u128, now: u32) -> bool {
        let (a, b) = self.candidates(slot);
        let fingerprint = fingerprint_of(slot);
        // Both buckets, without branching on what is loaded: the two cache misses overlap.
        let live_match = |k: &u128| fingerprint_of(*k) == fingerprint && expiry_of(*k) > now;
        let found_a = self.buckets[a]
            .0
            .iter()
            .fold(false, |f, k| f | live_match(k));
        let found_b = self.buckets[b]
            .0
            .iter()
            .fold(false, |f, k| f | live_match(k));
        found_a | found_b
    }

    /// Put `slot` in a free slot of bucket `b`, if there is one.
    fn put_free(&mut self, b: usize, slot: u128, now: u32) -> bool {
        match self.buckets[b].0.iter_mut().find(|k| expiry_of(**k) <= now) {
            Some(free) => {
                *free = slot;
                true
            }
            None => false,
        }
    }

    /// Insert a slot known to be absent, evicting others to their second bucket if needed.
    /// On failure the table is unchanged in content but one slot (returned) is homeless.
    pub(super) fn place(&mut self, slot: u128, now: u32) -> Result<(), u128> {
        let (a, b) = self.candidates(slot);
        if self.put_free(a, slot, now) || self.put_free(b, slot, now) {
            return Ok(());
        }
        // Random walk: evict a slot of the current bucket, move it to its other bucket.
        let mut carried = slot;
        let mut bucket = a;
        let mut walk = (slot >> 64) as u64 | 1;
        for _ in 0..MAX_KICKS {
            walk ^= walk << 13;
            walk ^= walk >> 7;
            walk ^= walk << 17;
            let victim = (walk % SLOTS as u64) as usize;
            std::mem::swap(&mut carried, &mut self.buckets[bucket].0[victim]);
            let (x, y) = self.candidates(carried);
            bucket = if x == bucket { y } else { x };
            if self.put_free(bucket, carried, now) {
                return Ok(());
            }
        }
        Err(carried)
    }

    /// A table of `buckets` buckets holding every live slot of this one and `extra`.
    pub(super) fn rehashed(&self, buckets: usize, extra: Option<u128>, now: u32) -> Self {
        let mut size = buckets;
        'retry: loop {
            let mut table = Self::with_buckets(size);
            let live = self.buckets.iter().flat_map(|b| b.0.iter().copied());
            for slot in live.chain(extra).filter(|&k| expiry_of(k) > now) {
                if table.place(slot, now).is_err() {
                    // Practically never at these loads; a bigger table always ends it.
                    size = size + size / 4 + 1;
                    continue 'retry;
                }
            }
            return table;
        }
    }
}
