//! Single use of each DPoP proof (RFC 9449 §11.1).
//!
//! The verifier records every accepted proof under a hash of (proof-key thumbprint, `jti`)
//! (scoped to the key, so one client cannot block another's `jti`s), kept until
//! the proof's `iat` window has passed, after which the `iat` check refuses it anyway (RFC 9449 §11.1),
//! and a [margin](crate::defaults::REPLAY_RETENTION_MARGIN) longer. The `iat` check and the
//! entry use the clock as read after the token step (which may wait on the authorization
//! server), never a reading from before it.
//! Only proofs that passed every other check are recorded, so filling the store takes valid
//! tokens and keys, not just traffic.
//!
//! [`ReplayCache`] is one atomic operation, "insert if absent, with expiry", so it can be backed
//! by a shared store when several instances serve one API (RFC 9449 §11.1); [`MemoryReplayCache`] is the
//! default for a single instance. A store that fails makes the verifier refuse the request with
//! 503 (RFC 9449 §7.1): a proof is never accepted unrecorded.
//!
//! Before a proof is recorded, its key is counted against a per-key quota (`quota`, in the
//! verifier's memory, whatever the store): a key holding more than its share of proofs within
//! the proof window is refused with 429 and `Retry-After`, so one authenticated client cannot
//! fill the store and make it refuse everyone. With several instances each counts its own
//! requests, so one key can hold up to (instances × quota) entries of a shared store, unless
//! the store counts a quota shared by all of them: every entry names its
//! [`owner`](ReplayEntry::owner) (a hash of the key's thumbprint), and the Redis store counts
//! it in the same round trip as the insert when configured to (`key_quota`, feature `redis`),
//! answering [`ReplayOutcome::OverQuota`].
//!
//! Store failures are logged by the verifier at `error`, by kind only (a store's error text may
//! quote its URL, password included), once per burst of failures and then at most every 10 s.

mod memory;
pub(crate) mod quota;
#[cfg(feature = "redis")]
mod redis;
mod table;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_SKEW_MARGIN, DEFAULT_TIMEOUT, RedisConfigError, RedisReplayCache,
    RedisReplayCacheBuilder,
};
pub use memory::MemoryReplayCache;

/// The SHA-256 of an API's replay namespace (domain-separated), see
/// `PopConfigBuilder::replay_namespace`.
pub(crate) fn namespace(name: &str) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"tower-pop/replay-namespace/v1\0");
    h.update(name.as_bytes());
    h.finalize().into()
}

/// The owner of a key's entries within `namespace`: its [`owner_key`] and the namespace
/// combined, so that APIs sharing a store count separate quotas. Both are SHA-256 outputs: two
/// pairs give the same owner only by a collision of those.
pub(crate) fn namespaced_owner(owner: &[u8; 32], namespace: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| owner[i] ^ namespace[i])
}

/// SHA-256 of a proof key's thumbprint (domain-separated): the owner of its replay entries, for
/// stores that count a per-key quota themselves (the thumbprint itself never goes to the store).
pub(crate) fn owner_key(jkt: &str) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"tower-pop/dpop-jkt/v1\0");
    h.update(jkt.as_bytes());
    h.finalize().into()
}

/// The longest a verifier keeps one proof's entry, in seconds: the `iat` window (`max_age` past,
/// `future_skew` ahead), the 1 s that keeps a proof until the `iat` check refuses it, and the
/// [retention margin](crate::defaults::REPLAY_RETENTION_MARGIN).
pub(crate) const fn proof_lifetime_secs(max_age: u64, future_skew: u64) -> u64 {
    max_age
        .saturating_add(future_skew)
        .saturating_add(1)
        .saturating_add(crate::defaults::REPLAY_RETENTION_MARGIN.as_secs())
}

/// A boxed, sendable future, as returned by [`ReplayCache::insert_if_absent`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One proof to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    pub(crate) key: [u8; 32],
    pub(crate) now: u64,
    pub(crate) expires_at: u64,
    pub(crate) owner: Option<[u8; 32]>,
}

impl ReplayEntry {
    /// An entry for `key`, recorded at `now`, to be kept until `expires_at` (exclusive).
    #[must_use]
    pub fn new(key: [u8; 32], now: u64, expires_at: u64) -> Self {
        Self {
            key,
            now,
            expires_at,
            owner: None,
        }
    }

    /// The same entry, owned by the proof key hashed to `owner`: a store with a per-key quota
    /// of its own (`RedisReplayCacheBuilder::key_quota`, feature `redis`) counts the entry
    /// against it. The verifier sets it on every entry.
    #[must_use]
    pub fn with_owner(mut self, owner: [u8; 32]) -> Self {
        self.owner = Some(owner);
        self
    }

    /// SHA-256 of the proof key's thumbprint (domain-separated), when set: whose entry this is.
    #[must_use]
    pub fn owner(&self) -> Option<&[u8; 32]> {
        self.owner.as_ref()
    }

    /// SHA-256 of the proof-key thumbprint and the `jti`: the raw `jti` is never stored (RFC 9449 §11.1).
    #[must_use]
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The verifier's current time, seconds since the Unix epoch.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// When the entry may be forgotten (exclusive), seconds since the Unix epoch.
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Seconds the entry must be kept (at least 1).
    #[must_use]
    pub fn ttl_secs(&self) -> u64 {
        self.expires_at.saturating_sub(self.now).max(1)
    }
}

/// Whether the proof was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// First use: recorded.
    Fresh,
    /// Seen before within its window.
    Replayed,
    /// Not recorded: the entry's [`owner`](ReplayEntry::owner) already holds its quota in a
    /// store that counts one (the verifier answers 429).
    OverQuota,
}

/// The store could not answer; the request is refused (fail closed).
#[derive(Debug)]
pub struct ReplayError {
    full: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ReplayError {
    /// The store is unreachable or failed.
    pub fn unavailable(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            full: false,
            source: Some(source.into()),
        }
    }

    /// The store is full of live entries.
    #[must_use]
    pub fn full() -> Self {
        Self {
            full: true,
            source: None,
        }
    }

    /// Whether the store was full (as opposed to unavailable).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.full
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.full {
            f.write_str("replay store full")
        } else {
            f.write_str("replay store unavailable")
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// A store of recently used proofs.
///
/// Implementations must make [`insert_if_absent`](Self::insert_if_absent) atomic: of many
/// concurrent calls with one key, exactly one may answer [`ReplayOutcome::Fresh`].
pub trait ReplayCache: Send + Sync + fmt::Debug + 'static {
    /// Record `entry` unless its key is already present and unexpired.
    fn insert_if_absent(
        &self,
        entry: ReplayEntry,
    ) -> BoxFuture<'_, Result<ReplayOutcome, ReplayError>>;
}
