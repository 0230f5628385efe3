//! Single use of each DPoP proof (RFC 9449 §11.1).
//!
//! The verifier records every accepted proof under a hash of (proof-key thumbprint, `jti`)
//! (scoped to the key, so one client cannot block another's `jti`s), kept until
//! the proof's `iat` window has passed, after which the `iat` check refuses it anyway (RFC 9449 §11.1).
//! Only proofs that passed every other check are recorded, so filling the store takes valid
//! tokens and keys, not just traffic.
//!
//! [`ReplayCache`] is one atomic operation, "insert if absent, with expiry", so it can be backed
//! by a shared store when several instances serve one API (RFC 9449 §11.1); [`MemoryReplayCache`] is the
//! default for a single instance. A store that fails makes the verifier refuse the request with
//! 503 (RFC 9449 §7.1): a proof is never accepted unrecorded.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "redis")]
pub use self::redis::{
    DEFAULT_KEY_PREFIX, DEFAULT_SKEW_MARGIN, DEFAULT_TIMEOUT, RedisConfigError, RedisReplayCache,
    RedisReplayCacheBuilder,
};
pub use memory::MemoryReplayCache;

/// A boxed, sendable future, as returned by [`ReplayCache::insert_if_absent`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One proof to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEntry {
    pub(crate) key: [u8; 32],
    pub(crate) now: u64,
    pub(crate) expires_at: u64,
}

impl ReplayEntry {
    /// An entry for `key`, recorded at `now`, to be kept until `expires_at` (exclusive).
    #[must_use]
    pub fn new(key: [u8; 32], now: u64, expires_at: u64) -> Self {
        Self {
            key,
            now,
            expires_at,
        }
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
