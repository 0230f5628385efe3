//! The cache of verified access tokens (JWTs, RFC 9068 §4; introspection answers, RFC 7662 §4),
//! bounded by count and by bytes, evicting.
//!
//! - **Key:** the token itself, hashed with a randomly seeded keyed hash (foldhash) and compared
//!   in full, in constant time. No SHA-256 per request: the entry carries the token's SHA-256
//!   (its `ath`, RFC 9449 §4.2), computed once when the token was verified. So the process's
//!   memory holds the cached tokens for up to the maximum age (5 min by default; each is wiped
//!   when it leaves the cache): a bound token is useless without its key or certificate, but a
//!   plain bearer token (`allow_bearer`) is not; guard core dumps and heap snapshots of the
//!   process as you guard its secrets.
//! - **Freshness, on every read (fail closed):** an entry is returned only while `now` is before
//!   its own expiry, which is never later than the token's `exp` (plus leeway) nor than its
//!   insertion plus the configured maximum age; an entry at or past either is removed and the
//!   token verified again. Expired entries left unread are evicted like any other.
//! - **Bounds:** a byte bound on an honest estimate of each entry's heap size (the claims' JSON
//!   tree, strings, the binding and the cache's own bookkeeping), and a count bound, enforced
//!   through the same weight: every entry weighs at least `bytes / entries`, so the cache holds
//!   at most `entries` entries and at most `bytes` bytes. Never refuses an insert: a full cache
//!   evicts.
//! - **Eviction: S3-FIFO** (`quick_cache`): a new entry enters a small probationary queue and is
//!   evicted first unless it is read again; entries read again move to the main queue, and keys
//!   evicted recently are remembered (without their value), so a token seen again soon is
//!   admitted to the main queue directly. So one client presenting many fresh tokens, each used
//!   once, churns the small queue only: tokens that honest clients reuse stay cached (measured
//!   by `benches/token_cache.rs`).
//!
//! What is cached is the verified token only (claims, validity window, `cnf`, the token's
//! SHA-256, and the `cnf.jkt` key once a proof has shown it): the proof, its binding to the
//! token's key or certificate, and single use of its `jti` are checked on every request, cache
//! hit or not. The binding of a proof to a remembered key is checked by comparing the proof's
//! key with it byte for byte (RFC 7638 canonical form), which implies the same thumbprint. The
//! entry also keeps what that proof showed (its encoded header, the key read from it, and the
//! key as imported), within a process-wide 16 MiB budget: a later proof with the same header
//! is not read again, and its signature is checked with the kept import. The canonical form is
//! counted in the entry's weight; what was shown, kept after insertion, is bounded by that
//! budget instead.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::mem::size_of;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::quality::SeedableRandomState;
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{OptionsBuilder, Weighter};
use serde_json::{Map, Value};

use super::TokenInfo;

/// Sizes of the cache; `entries == 0` or `bytes == 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheLimits {
    /// Most entries held.
    pub(crate) entries: usize,
    /// Most bytes held, by the entries' estimated heap size.
    pub(crate) bytes: u64,
    /// Seconds an entry may be served after it was inserted.
    pub(crate) max_age: u64,
}

/// The cache key: a token, compared in constant time (for its length).
#[derive(Clone)]
struct Key(Box<[u8]>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        crate::jose::digest::ct_eq(&self.0, &other.0)
    }
}

impl Eq for Key {}

// A token leaving the cache (evicted, expired, replaced) is wiped, not left in freed memory.
impl Drop for Key {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut *self.0);
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Lookup(&self.0).hash(state);
    }
}

/// A token looked up without copying it into a [`Key`]; hashes as the key does.
struct Lookup<'a>(&'a [u8]);

impl Hash for Lookup<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

impl quick_cache::Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        crate::jose::digest::ct_eq(self.0, &key.0)
    }
}

#[derive(Clone)]
struct Entry {
    info: Arc<TokenInfo>,
    /// Served while `now < expires_at`.
    expires_at: u64,
    weight: u64,
}

/// The weight of an entry, computed once at insertion.
#[derive(Clone, Copy)]
struct EntryWeight;

impl Weighter<Key, Entry> for EntryWeight {
    fn weight(&self, _: &Key, entry: &Entry) -> u64 {
        entry.weight
    }
}

type Inner = Cache<Key, Entry, EntryWeight, SeedableRandomState, DefaultLifecycle<Key, Entry>>;

/// A bounded, evicting cache of verified tokens (see the module docs).
pub(crate) struct TokenCache {
    inner: Option<Inner>,
    limits: CacheLimits,
    /// Every entry weighs at least this much: `bytes / entries`, rounded up.
    min_weight: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

// Sizes only: an entry holds claims, which may be personal data.
impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.len())
            .field("bytes", &self.inner.as_ref().map_or(0, Inner::weight))
            .field("limits", &self.limits)
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("misses", &self.misses.load(Ordering::Relaxed))
            .finish()
    }
}

impl TokenCache {
    /// A cache with `limits`, its hash keyed with a random seed.
    pub(crate) fn new(limits: CacheLimits) -> Self {
        Self::with_hasher(limits, SeedableRandomState::random())
    }

    fn with_hasher(limits: CacheLimits, hasher: SeedableRandomState) -> Self {
        let enabled = limits.entries > 0 && limits.bytes > 0;
        let entries = u64::try_from(limits.entries).unwrap_or(u64::MAX);
        let min_weight = if enabled {
            limits.bytes.div_ceil(entries)
        } else {
            1
        };
        let inner = enabled
            .then(|| {
                OptionsBuilder::new()
                    .estimated_items_capacity(limits.entries)
                    .weight_capacity(limits.bytes)
                    .build()
                    .ok()
            })
            .flatten()
            .map(|options| {
                Cache::with_options(options, EntryWeight, hasher, DefaultLifecycle::default())
            });
        Self {
            inner,
            limits,
            min_weight,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache whose hashing does not depend on a random seed, so tests of its eviction are
    /// deterministic.
    #[cfg(test)]
    pub(crate) fn deterministic(limits: CacheLimits) -> Self {
        Self::with_hasher(limits, SeedableRandomState::fixed())
    }

    /// `token`, verified, while its entry is fresh at `now`; an entry at or past its expiry
    /// is removed.
    pub(crate) fn get(&self, token: &[u8], now: u64) -> Option<Arc<TokenInfo>> {
        let inner = self.inner.as_ref()?;
        let key = Lookup(token);
        let found = match inner.get(&key) {
            Some(entry) if now < entry.expires_at => Some(entry.info),
            Some(_) => {
                inner.remove_if(&key, |entry| now >= entry.expires_at);
                None
            }
            None => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Cache `info` for `token` until `expires_at` (exclusive), or for the maximum age from
    /// `now` if that ends sooner; evicts other entries when full.
    pub(crate) fn insert(&self, token: &[u8], info: Arc<TokenInfo>, expires_at: u64, now: u64) {
        let Some(inner) = &self.inner else {
            return;
        };
        let expires_at = expires_at.min(now.saturating_add(self.limits.max_age));
        if expires_at <= now {
            return;
        }
        let weight =
            (estimate_entry_bytes(&info) + token.len() as u64 + ALLOCATION_OVERHEAD as u64)
                .max(self.min_weight);
        inner.insert(
            Key(token.into()),
            Entry {
                info,
                expires_at,
                weight,
            },
        );
    }

    /// Entries held (fresh or not yet evicted).
    /// Forget `token` (it was revoked).
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    pub(crate) fn remove(&self, token: &[u8]) {
        if let Some(inner) = &self.inner {
            inner.remove(&Lookup(token));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, Inner::len)
    }

    /// Reads that found a fresh entry.
    #[cfg(test)]
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

/// Bookkeeping per entry besides the value: the key, the entry, and quick_cache's slot and
/// table overhead (links, hash, reference counter), rounded up.
const ENTRY_OVERHEAD: usize = size_of::<Key>() + size_of::<Entry>() + 64;
/// A heap block's header and rounding, per allocation.
const ALLOCATION_OVERHEAD: usize = 16;

/// An estimate of the heap an entry holds besides its key (the token, counted by the caller):
/// the `TokenInfo` and claims allocations, every JSON node and string in the claims, the `cnf`
/// thumbprints, and the cache's own bookkeeping.
fn estimate_entry_bytes(info: &TokenInfo) -> u64 {
    let strings = [&info.confirmation.jkt, &info.confirmation.x5t_s256]
        .into_iter()
        .flatten()
        .map(|s| s.capacity() + ALLOCATION_OVERHEAD)
        .sum::<usize>();
    // Room for the `jkt` key, remembered after insertion by the first proof that shows it.
    let known_key = if info.confirmation.jkt.is_some() {
        crate::dpop::known_key::KNOWN_KEY_MAX_BYTES
            + ALLOCATION_OVERHEAD
            + crate::dpop::known_key::REMEMBERED_KEY_BYTES
    } else {
        0
    };
    let total = ENTRY_OVERHEAD
        + known_key
        + size_of::<TokenInfo>()
        + ALLOCATION_OVERHEAD
        + size_of::<Map<String, Value>>()
        + ALLOCATION_OVERHEAD
        + map_bytes(&info.claims)
        + strings;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// Heap bytes of a JSON object: per member its key string and its value node (a B-tree holds
/// them in nodes of up to 11; counted per member, with the node's share of links), recursively.
/// The depth is bounded by the JSON parser and the size by the token's.
fn map_bytes(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| {
            k.capacity()
                + ALLOCATION_OVERHEAD
                + size_of::<String>()
                + size_of::<Value>()
                + 16
                + value_bytes(v)
        })
        .sum()
}

/// Heap bytes below a JSON value node (the node itself is counted by its parent).
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity() + ALLOCATION_OVERHEAD,
        Value::Array(items) => {
            items.capacity() * size_of::<Value>()
                + ALLOCATION_OVERHEAD
                + items.iter().map(value_bytes).sum::<usize>()
        }
        Value::Object(map) => map_bytes(map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Confirmation;
    use serde_json::json;

    fn info(claims: Value, valid_until: u64) -> Arc<TokenInfo> {
        let Value::Object(claims) = claims else {
            panic!("an object")
        };
        Arc::new(TokenInfo {
            claims: Arc::new(claims),
            confirmation: Confirmation::default(),
            valid_until,
            not_before: 0,
            token_hash: [0; 32],
        })
    }

    fn limits(entries: usize) -> CacheLimits {
        CacheLimits {
            entries,
            bytes: 1 << 30,
            max_age: 300,
        }
    }

    fn key(i: u64) -> Vec<u8> {
        format!("token-{i}").into_bytes()
    }

    #[test]
    fn entry_is_never_served_at_or_past_its_expiry() {
        let cache = TokenCache::deterministic(limits(100));
        cache.insert(&key(1), info(json!({}), 100), 100, 50);
        assert!(cache.get(&key(1), 99).is_some());
        assert!(cache.get(&key(1), 100).is_none());
        // Removed on that read: an earlier clock does not bring it back.
        assert!(cache.get(&key(1), 99).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn entry_is_never_served_past_the_maximum_age() {
        let cache = TokenCache::deterministic(limits(100));
        cache.insert(&key(1), info(json!({}), 10_000), 10_000, 1_000);
        assert!(cache.get(&key(1), 1_299).is_some());
        assert!(cache.get(&key(1), 1_300).is_none());
        // Already expired at insertion: not cached.
        cache.insert(&key(2), info(json!({}), 10_000), 500, 500);
        assert!(cache.get(&key(2), 500).is_none());
    }

    #[test]
    fn keys_compare_in_full() {
        let cache = TokenCache::deterministic(limits(100));
        let k = key(1);
        cache.insert(&k, info(json!({}), 100), 100, 0);
        for i in 0..k.len() {
            let mut other = k.clone();
            other[i] ^= 1;
            assert!(cache.get(&other, 1).is_none(), "byte {i}");
        }
        assert!(cache.get(&k[..k.len() - 1], 1).is_none(), "a prefix");
        assert!(
            cache.get(&[k.as_slice(), b"x"].concat(), 1).is_none(),
            "an extension"
        );
        assert!(cache.get(&k, 1).is_some());
    }

    #[test]
    fn full_cache_evicts_instead_of_refusing() {
        let cache = TokenCache::deterministic(limits(64));
        for i in 0..1_000 {
            cache.insert(&key(i), info(json!({}), 10_000), 10_000, 0);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        // The newest entry got in although the cache was full.
        assert!(cache.get(&key(999), 1).is_some());
    }

    #[test]
    fn byte_bound_holds_with_large_claims() {
        let bytes = 64 * 1024;
        let cache = TokenCache::deterministic(CacheLimits {
            entries: 10_000,
            bytes,
            max_age: 300,
        });
        let big = info(json!({ "blob": "x".repeat(4_000) }), 10_000);
        let weight = estimate_entry_bytes(&big);
        assert!(weight > 4_000, "{weight}");
        for i in 0..1_000 {
            cache.insert(&key(i), Arc::clone(&big), 10_000, 0);
        }
        let held = cache.inner.as_ref().map_or(0, Inner::weight);
        assert!(held <= bytes, "{held}");
        assert!(cache.len() as u64 <= bytes / weight, "{}", cache.len());
    }

    #[test]
    fn estimate_counts_nested_claims() {
        let small = estimate_entry_bytes(&info(json!({"sub": "a"}), 1));
        let nested = estimate_entry_bytes(&info(
            json!({"sub": "a", "roles": ["x".repeat(100), "y".repeat(100)], "o": {"k": "v".repeat(300)}}),
            1,
        ));
        assert!(nested >= small + 500, "{small} {nested}");
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = TokenCache::deterministic(limits(0));
        cache.insert(&key(1), info(json!({}), 100), 100, 0);
        assert!(cache.get(&key(1), 1).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn debug_prints_sizes_only() {
        let cache = TokenCache::deterministic(limits(10));
        cache.insert(&key(1), info(json!({"sub": "secret-subject"}), 100), 100, 0);
        let debug = format!("{cache:?}");
        assert!(debug.contains("entries: 1"), "{debug}");
        assert!(!debug.contains("secret-subject"), "{debug}");
    }

    /// 100 honest clients each reuse one token while one client presents 10,000 fresh tokens
    /// (its first 1,000 before any honest request, then one between honest requests), at a
    /// capacity of 1,000: the honest clients keep most of their hits. Deterministic: fixed
    /// hashing, counted hits.
    #[test]
    fn one_client_minting_tokens_does_not_evict_reused_tokens() {
        let cache = TokenCache::deterministic(CacheLimits {
            entries: 1_000,
            bytes: 1 << 30,
            max_age: 300,
        });
        let entry = info(json!({"sub": "alice"}), 10_000);
        let mut attacker = 1_000_000u64;
        let present = |k: Vec<u8>| {
            if cache.get(&k, 1).is_none() {
                cache.insert(&k, Arc::clone(&entry), 10_000, 1);
                false
            } else {
                true
            }
        };
        for _ in 0..1_000 {
            present(key(attacker));
            attacker += 1;
        }
        let mut honest_hits = 0;
        for round in 0..90 {
            for client in 0..100 {
                honest_hits += u32::from(present(key(client)));
                if round * 100 + client < 9_000 {
                    present(key(attacker));
                    attacker += 1;
                }
            }
        }
        assert_eq!(attacker, 1_000_000 + 10_000);
        // 9,000 honest requests; each client misses at most a few times (first sight, and once
        // more if the flood pushed it out of the probationary queue).
        assert!(honest_hits >= 8_500, "honest hits: {honest_hits} of 9000");
    }
}
