//! A per-proof-key quota of recorded `jti`s, so one authenticated client cannot fill the replay
//! store and make it refuse everyone (RFC 9449 §11.1 leaves the store's sizing to the server).
//!
//! Every proof the verifier is about to record is counted against its key (the RFC 7638
//! thumbprint, hashed with a per-process random key, so no client can aim at another's
//! counters). A key that already has `quota` proofs recorded within the last proof lifetime is
//! refused with 429 and `Retry-After` ([`PopErrorKind::ProofKeyOverQuota`]); nothing is
//! recorded for it, and every other key goes on as before.
//!
//! Bounded by construction: a count-min sketch (two rows of [`WIDTH`] counters, a key's count is
//! the smaller of its two counters) per time slice, [`SLICES`] slices covering the proof
//! lifetime plus one slice. Each counter carries the number of its slice, so the counters of a
//! slice that has passed read as zero and are reused in place: expiry costs nothing and nothing
//! is ever swept. Memory is fixed (`SLICES × 2 × WIDTH × 8` bytes, 576 KiB), whatever the
//! traffic. Counts never fall short of the truth (collisions only add), so a key is never let
//! past its quota; a key is refused for another's traffic only if both its counters are shared
//! with keys holding a quota's worth of proofs, which a random hash key makes a matter of
//! chance (`(heavy keys / WIDTH)²`), not of choice.
//!
//! Concurrent requests cannot overshoot: each increments first and checks after, and a refused
//! request takes its increment back.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters per row (a power of two).
pub(crate) const WIDTH: usize = 4096;
/// Rows of the sketch.
const ROWS: usize = 2;
/// Time slices kept: the proof lifetime split in `SLICES - 1`, plus the current one.
pub(crate) const SLICES: u64 = 9;

/// Counts recorded proofs per key over the proof lifetime; see the module docs.
pub(crate) struct KeyQuota {
    quota: u64,
    slice_secs: u64,
    hasher: RandomState,
    /// `SLICES × ROWS × WIDTH` counters: slice number (high 32 bits), count (low 32 bits).
    counters: Box<[AtomicU64]>,
}

impl fmt::Debug for KeyQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyQuota")
            .field("quota", &self.quota)
            .field("slice_secs", &self.slice_secs)
            .finish_non_exhaustive()
    }
}

/// The proofs of one key, counted: take it back with [`KeyQuota::release`] if the proof is not
/// recorded after all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counted {
    slice: u64,
    buckets: [usize; ROWS],
}

/// An admitted proof's count, given back when dropped unless [`kept`](Self::keep): a request
/// that is refused after admission, or cancelled while the store is asked (client gone, a timeout
/// layer), does not use up its key's quota.
pub(crate) struct Admission<'a> {
    quota: &'a KeyQuota,
    counted: Option<Counted>,
}

impl Admission<'_> {
    /// The proof was recorded: its count stays.
    pub(crate) fn keep(mut self) {
        self.counted = None;
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if let Some(counted) = self.counted.take() {
            self.quota.release(counted);
        }
    }
}

impl KeyQuota {
    /// At most `quota` proofs of one key recorded within `lifetime_secs` (the proof window).
    pub(crate) fn new(quota: u64, lifetime_secs: u64) -> Self {
        let slice_secs = lifetime_secs.max(1).div_ceil(SLICES - 1).max(1);
        let len = usize::try_from(SLICES).unwrap_or(1) * ROWS * WIDTH;
        Self {
            quota,
            slice_secs,
            hasher: RandomState::new(),
            counters: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The window counted, in seconds: every slice kept (at least the proof lifetime plus one
    /// slice). A client sending `rate` proofs a second holds `rate × counted_window` of them.
    pub(crate) fn counted_window_secs(lifetime_secs: u64) -> u64 {
        lifetime_secs.max(1).div_ceil(SLICES - 1).max(1) * SLICES
    }

    fn index(&self, slice: u64, row: usize, bucket: usize) -> usize {
        (usize::try_from(slice % SLICES).unwrap_or(0) * ROWS + row) * WIDTH + bucket
    }

    /// Count one more proof of the key `jkt` at `now`: `Some` if it is within the quota, `None`
    /// (and nothing counted) if the key already holds its quota.
    pub(crate) fn admit(&self, jkt: &str, now: u64) -> Option<Counted> {
        let hash = self.hasher.hash_one(jkt.as_bytes());
        let mask = WIDTH as u64 - 1;
        let buckets = [
            usize::try_from(hash & mask).unwrap_or(0),
            usize::try_from((hash >> 32) & mask).unwrap_or(0),
        ];
        let slice = now / self.slice_secs;
        let tag = slice & 0xffff_ffff;
        for (row, bucket) in buckets.iter().enumerate() {
            let counter = &self.counters[self.index(slice, row, *bucket)];
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                // The count stays within its 32 bits (it never carries into the slice number).
                Some(if v >> 32 == tag {
                    if v & 0xffff_ffff == 0xffff_ffff {
                        v
                    } else {
                        v + 1
                    }
                } else {
                    (tag << 32) | 1
                })
            });
        }
        let counted = Counted { slice, buckets };
        if self.count(&counted) > self.quota {
            self.release(counted);
            None
        } else {
            Some(counted)
        }
    }

    /// Take back a proof counted by [`admit`](Self::admit) and not recorded.
    /// [`admit`](Self::admit), with the count given back on drop unless kept.
    pub(crate) fn admission(&self, jkt: &str, now: u64) -> Option<Admission<'_>> {
        self.admit(jkt, now).map(|counted| Admission {
            quota: self,
            counted: Some(counted),
        })
    }

    pub(crate) fn release(&self, counted: Counted) {
        let tag = counted.slice & 0xffff_ffff;
        for (row, bucket) in counted.buckets.iter().enumerate() {
            let counter = &self.counters[self.index(counted.slice, row, *bucket)];
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v >> 32 == tag && v & 0xffff_ffff > 0).then(|| v - 1)
            });
        }
    }

    /// The key's proofs over the kept slices: the smaller row sum.
    fn count(&self, counted: &Counted) -> u64 {
        let first = counted.slice.saturating_sub(SLICES - 1);
        counted
            .buckets
            .iter()
            .enumerate()
            .map(|(row, bucket)| {
                (first..=counted.slice)
                    .map(|slice| {
                        let v =
                            self.counters[self.index(slice, row, *bucket)].load(Ordering::Acquire);
                        if v >> 32 == slice & 0xffff_ffff {
                            v & 0xffff_ffff
                        } else {
                            0
                        }
                    })
                    .sum::<u64>()
            })
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    #[test]
    fn refuses_one_key_over_quota_only() {
        let q = KeyQuota::new(3, 71);
        for _ in 0..3 {
            assert!(q.admit("key-a", T0).is_some());
        }
        assert!(q.admit("key-a", T0).is_none());
        assert!(q.admit("key-a", T0 + 1).is_none());
        for _ in 0..3 {
            assert!(q.admit("key-b", T0).is_some());
        }
    }

    #[test]
    fn released_proofs_do_not_count() {
        let q = KeyQuota::new(2, 71);
        let counted = q.admit("k", T0).expect("within quota");
        q.release(counted);
        assert!(q.admit("k", T0).is_some());
        assert!(q.admit("k", T0).is_some());
        assert!(q.admit("k", T0).is_none());
    }

    #[test]
    fn an_admission_is_given_back_when_dropped_and_kept_only_when_asked() {
        let q = KeyQuota::new(1, 71);
        // Dropped (a refused or cancelled request): the quota is whole again.
        drop(q.admission("k", T0).expect("within quota"));
        let kept = q
            .admission("k", T0)
            .expect("the dropped one was given back");
        assert!(q.admission("k", T0).is_none(), "one at a time");
        kept.keep();
        assert!(q.admission("k", T0).is_none(), "a kept admission counts");
    }

    #[test]
    fn a_refused_request_is_not_counted() {
        let q = KeyQuota::new(1, 71);
        assert!(q.admit("k", T0).is_some());
        for _ in 0..100 {
            assert!(q.admit("k", T0).is_none());
        }
        // After the window, one proof again (the refusals left nothing behind).
        let later = T0 + KeyQuota::counted_window_secs(71);
        assert!(q.admit("k", later).is_some());
        assert!(q.admit("k", later).is_none());
    }

    #[test]
    fn proofs_older_than_the_counted_window_are_forgotten_in_place() {
        let q = KeyQuota::new(10, 71);
        let window = KeyQuota::counted_window_secs(71);
        assert!(window >= 71 + q.slice_secs);
        for _ in 0..10 {
            assert!(q.admit("k", T0).is_some());
        }
        assert!(q.admit("k", T0 + 71).is_none(), "still within the lifetime");
        // Once T0's slice has left the window, its counters read as zero.
        let fresh = (T0 / q.slice_secs + SLICES) * q.slice_secs;
        assert!(q.admit("k", fresh).is_some());
    }

    #[test]
    fn a_steady_client_at_the_documented_rate_is_never_refused() {
        // 10 proofs a second for 10 minutes, against a quota of 10 × the counted window.
        let q = KeyQuota::new(10 * KeyQuota::counted_window_secs(71), 71);
        for second in 0..600 {
            for _ in 0..10 {
                assert!(q.admit("k", T0 + second).is_some(), "at {second}");
            }
        }
    }

    #[test]
    fn concurrent_requests_cannot_overshoot() {
        let q = std::sync::Arc::new(KeyQuota::new(1_000, 71));
        let admitted: u64 = (0..4)
            .map(|_| {
                let q = std::sync::Arc::clone(&q);
                std::thread::spawn(move || {
                    (0..1_000).filter(|_| q.admit("k", T0).is_some()).count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .sum();
        assert!(admitted <= 1_000, "{admitted}");
        assert!(admitted >= 900, "{admitted}");
    }
}
