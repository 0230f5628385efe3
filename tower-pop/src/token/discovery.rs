//! The issuer's signing keys, discovered from its metadata and kept fresh. Feature `discovery`.
//!
//! [`IssuerKeys::discover`] takes an issuer identifier and does no I/O; the keys are fetched on
//! first use, or when the application awaits [`IssuerKeys::ready`] before serving.
//!
//! ## What is fetched, and what is refused
//!
//! - **Metadata** (RFC 8414 §3.1): `/.well-known/oauth-authorization-server` inserted between the
//!   issuer's host and its path, any terminating `/` of the path removed first
//!   (`https://as.example/tenant` → `https://as.example/.well-known/oauth-authorization-server/tenant`).
//!   When that answers a 4xx status, OpenID Connect Discovery 1.0 §4 is tried:
//!   `/.well-known/openid-configuration` appended to the issuer (trailing `/` removed). A 5xx or
//!   a transport failure does not fall back (the authorization server is down, not absent), and
//!   neither does a document that is served but wrong.
//! - The metadata's `issuer` must equal the configured identifier **byte for byte** (RFC 8414
//!   §3.3; no normalisation, RFC 8725 §3.8), and its `jwks_uri` must be an absolute `https` URL
//!   without credentials or fragment (RFC 8414 §2).
//! - **The JWK Set** (RFC 7517 §5) from `jwks_uri`: at most 256 KiB and 64 keys; unusable keys
//!   are skipped as for a configured set. Metadata is limited to [`MAX_METADATA_BYTES`] (64 KiB).
//! - Every call: no proxy, a total timeout ([`DiscoveryOptions::timeout`], default 5 s),
//!   redirects only within the origin of the URL asked for and at most three hops, rustls with
//!   aws-lc-rs over the platform's roots plus an optional extra root CA
//!   ([`DiscoveryOptions::root_ca_pem`]). Plain `http` only on loopback and only with
//!   [`DiscoveryOptions::insecure_allow_http_on_loopback`] (tests).
//!
//! ## Refresh strategy
//!
//! - Reading the keys never waits: the current set is an `Arc` swapped atomically
//!   (`arc-swap`), so requests whose `kid` is known proceed without a lock.
//! - **Periodic refresh**: the metadata and the JWK Set are fetched again after the JWK Set
//!   response's `Cache-Control: max-age`, clamped to [`DiscoveryOptions::refresh_bounds`]
//!   (default 1 min to 24 h), or after [`DISCOVERY_REFRESH_INTERVAL`](crate::defaults::DISCOVERY_REFRESH_INTERVAL) (5 min) without one. The
//!   refresh runs in a background task started by the first lookup that finds the set due;
//!   requests meanwhile use the current set. A changed `jwks_uri` takes effect at the next
//!   fetch, since each fetch reads the metadata again.
//! - **Unknown key**: a lookup whose `kid` (and algorithm) matches no key triggers one refetch,
//!   which the lookup awaits up to [`DiscoveryOptions::lookup_timeout`] (default 10 s).
//!   Refetches are **single-flight** (concurrent misses wait for the one fetch in progress) and
//!   **rate-limited**: at most one miss-triggered fetch per
//!   [`DiscoveryOptions::miss_refetch_interval`] (default 10 s), except that the first unknown
//!   `kid` after the first load or a periodic refresh refetches at once. A key the
//!   authorization server rotates in right after our start-up (or a refresh) is therefore
//!   fetched on first sight, and a flood of random `kid`s costs at most one fetch per interval
//!   plus one per refresh.
//! - **The authorization server down**: cached keys keep working, without time limit (a
//!   removed key stops working at the next successful fetch); a lookup for an unknown key gets a
//!   [`DiscoveryError`], which the verifier answers with 503, never with 401 (the client's token
//!   may be fine) and never with 200. Failed fetches are retried no sooner than the lower
//!   refresh bound, or on a miss after the miss interval.
//! - Nothing here logs a key; failures are logged at `warn` with the URL and the reason.
//!
//! Several trusted issuers: each issuer has its own [`IssuerKeys`], and a token is only ever
//! checked with the keys of the issuer it names (RFC 8725 §3.8), see `token::issuers`.
//!
//! Deployment: every instance fetches on its own; the lookup methods need a tokio runtime
//! (axum and actix-web both run on one).
//!
//! ## Example
//!
//! ```
//! use tower_pop::discovery::{DiscoveryOptions, IssuerKeys, RemoteConfigError};
//!
//! let keys = IssuerKeys::discover("https://as.example/tenant", DiscoveryOptions::default())
//!     .expect("an https issuer");
//! assert_eq!(
//!     keys.metadata_urls(),
//!     [
//!         "https://as.example/.well-known/oauth-authorization-server/tenant",
//!         "https://as.example/tenant/.well-known/openid-configuration",
//!     ]
//! );
//! // discover() does no I/O: nothing is fetched before first use or `ready().await`.
//! assert!(keys.current().is_empty());
//!
//! let err = IssuerKeys::discover("http://as.example", DiscoveryOptions::default()).unwrap_err();
//! assert!(matches!(err, RemoteConfigError::InvalidUrl { what: "issuer", .. }));
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::http::{
    FetchError, HttpClient, HttpSettings, check_url, http_setters, max_age, redacted,
};
use super::jwks::{KeySet, MAX_JWKS_BYTES};
use crate::clock::{Clock, SystemClock};
use crate::jose::Algorithm;

pub use crate::error::RemoteConfigError;

/// Largest metadata document accepted, in bytes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
// 0.1 paths of the discovery defaults, which live in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::{
    DISCOVERY_LOOKUP_TIMEOUT as DEFAULT_LOOKUP_TIMEOUT,
    DISCOVERY_MISS_REFETCH_INTERVAL as DEFAULT_MISS_REFETCH_INTERVAL,
    DISCOVERY_REFRESH_BOUNDS as DEFAULT_REFRESH_BOUNDS,
    DISCOVERY_REFRESH_INTERVAL as DEFAULT_REFRESH_INTERVAL,
};

/// How [`IssuerKeys`] fetches and refreshes; every default is the documented one.
#[derive(Clone)]
#[must_use]
pub struct DiscoveryOptions {
    http: HttpSettings,
    default_refresh: Duration,
    refresh_bounds: (Duration, Duration),
    miss_refetch_interval: Duration,
    lookup_timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                follow_redirects: true,
                ..HttpSettings::default()
            },
            default_refresh: crate::defaults::DISCOVERY_REFRESH_INTERVAL,
            refresh_bounds: crate::defaults::DISCOVERY_REFRESH_BOUNDS,
            miss_refetch_interval: crate::defaults::DISCOVERY_MISS_REFETCH_INTERVAL,
            lookup_timeout: crate::defaults::DISCOVERY_LOOKUP_TIMEOUT,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for DiscoveryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryOptions")
            .field("http", &self.http)
            .field("default_refresh", &self.default_refresh)
            .field("refresh_bounds", &self.refresh_bounds)
            .field("miss_refetch_interval", &self.miss_refetch_interval)
            .field("lookup_timeout", &self.lookup_timeout)
            .finish_non_exhaustive()
    }
}

impl DiscoveryOptions {
    http_setters!();

    /// Time between refreshes when the JWK Set response has no `max-age` (default 5 min);
    /// clamped to the [`refresh_bounds`](Self::refresh_bounds).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.default_refresh = interval;
        self
    }

    /// The least and the most time between periodic refreshes, whatever `max-age` says
    /// (default 1 min and 24 h). The least also spaces retries after a failed fetch. `min` must
    /// be at least one second and not above `max`.
    pub fn refresh_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.refresh_bounds = (min, max);
        self
    }

    /// The least time between two fetches triggered by unknown keys (default 10 s, at least
    /// one second): the rate limit that protects the authorization server from a flood of
    /// random `kid`s, and the longest a newly published key may be refused.
    pub fn miss_refetch_interval(mut self, interval: Duration) -> Self {
        self.miss_refetch_interval = interval;
        self
    }

    /// How long a lookup for an unknown key waits for the refetch before answering with
    /// [`DiscoveryError::LookupTimeout`] (default 10 s).
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }

    /// The clock for refresh scheduling and the rate limit (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn validate(&self) -> Result<(), RemoteConfigError> {
        let (min, max) = self.refresh_bounds;
        if min < Duration::from_secs(1) || min > max {
            return Err(RemoteConfigError::InvalidSetting {
                setting: "refresh_bounds",
                reason: "min must be at least 1 s and not above max",
            });
        }
        if self.miss_refetch_interval < Duration::from_secs(1) {
            return Err(RemoteConfigError::InvalidSetting {
                setting: "miss_refetch_interval",
                reason: "must be at least 1 s",
            });
        }
        Ok(())
    }
}

/// Why the keys could not be fetched. Every value is a server-side fault: a verifier answers
/// 503 without a challenge error (never 401, never 200). Names URLs and reasons, never a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Connection refused, TLS failure, timeout or a broken response.
    Unreachable {
        /// The URL asked for.
        url: String,
    },
    /// An HTTP status other than 200 (for the metadata: after both locations).
    HttpStatus {
        /// The URL asked for.
        url: String,
        /// The status.
        status: u16,
    },
    /// The response body exceeded its limit.
    TooLarge {
        /// The URL asked for.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A redirect to another origin, or more than three.
    RedirectRefused {
        /// The URL asked for.
        url: String,
    },
    /// The metadata is not a JSON object with string `issuer` and `jwks_uri` members.
    InvalidMetadata {
        /// The metadata URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The metadata names another issuer (RFC 8414 §3.3).
    IssuerMismatch {
        /// The metadata URL.
        url: String,
        /// The `issuer` it names (at most 200 characters).
        found: String,
    },
    /// `jwks_uri` is not an absolute `https` URL.
    InvalidJwksUri {
        /// The URI (at most 200 characters).
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The JWK Set document is unusable (not JSON, no `keys`, too many keys).
    InvalidJwks {
        /// The JWK Set URL.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key is unknown and the refetch did not finish within the lookup timeout.
    LookupTimeout,
    /// Nothing has been fetched yet and no fetch was allowed now (rate limit).
    NotYetLoaded,
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { url } => write!(f, "{url}: unreachable or timed out"),
            Self::HttpStatus { url, status } => write!(f, "{url}: http status {status}"),
            Self::TooLarge { url, limit } => write!(f, "{url}: body larger than {limit} bytes"),
            Self::RedirectRefused { url } => {
                write!(f, "{url}: redirect to another origin or too many")
            }
            Self::InvalidMetadata { url, reason } => write!(f, "{url}: invalid metadata: {reason}"),
            Self::IssuerMismatch { url, found } => {
                write!(f, "{url}: metadata names issuer {found:?}")
            }
            Self::InvalidJwksUri { uri, reason } => write!(f, "jwks_uri {uri:?}: {reason}"),
            Self::InvalidJwks { url, reason } => write!(f, "{url}: invalid JWK Set: {reason}"),
            Self::LookupTimeout => f.write_str("key set refetch did not finish in time"),
            Self::NotYetLoaded => f.write_str("key set not loaded yet"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// `uri` without its user name and password: the error is logged, and a metadata document may
/// carry credentials in its `jwks_uri`. Text that is not a URL is not quoted at all.
fn without_userinfo(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            if !url.username().is_empty() || url.password().is_some() {
                // Both fail only for URLs without a host, which carry no user info anyway.
                let _ = url.set_username("");
                let _ = url.set_password(None);
            }
            url.to_string()
        }
        Err(_) => "(not an absolute URL)".to_owned(),
    }
}

fn truncated(s: &str) -> String {
    s.chars().take(200).collect()
}

fn fetch_error(url: &Url, error: FetchError, limit: usize) -> DiscoveryError {
    let url = url.to_string();
    match error {
        FetchError::Transport => DiscoveryError::Unreachable { url },
        FetchError::Redirect => DiscoveryError::RedirectRefused { url },
        FetchError::TooLarge => DiscoveryError::TooLarge { url, limit },
    }
}

/// A snapshot of an issuer's usable keys; cheap to clone, never changes.
#[derive(Clone)]
pub struct KeySnapshot(Arc<KeySet>);

impl KeySnapshot {
    /// The parsed set, for the token validator.
    #[allow(
        dead_code,
        reason = "wired into the verifier by the integration of issue 9"
    )]
    pub(crate) fn key_set(&self) -> &Arc<KeySet> {
        &self.0
    }

    /// The `kid`s of the usable keys, in document order (a key without `kid` is left out).
    #[must_use]
    pub fn key_ids(&self) -> Vec<&str> {
        self.0
            .keys
            .iter()
            .filter_map(|k| k.kid.as_deref())
            .collect()
    }

    /// Whether a key may verify a token with this `kid` (any key when `None`) and `alg`.
    #[must_use]
    pub fn contains(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        self.0.candidates(kid, alg).next().is_some()
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.keys.len()
    }

    /// Whether there is no usable key (nothing fetched yet, or an empty set).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.keys.is_empty()
    }
}

impl fmt::Debug for KeySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySnapshot")
            .field("key_ids", &self.key_ids())
            .field("len", &self.len())
            .finish()
    }
}

/// The RFC 8414 §3.1 and OpenID Connect Discovery §4 metadata locations of `issuer`, built
/// from its text as given (the issuer is compared byte for byte, so it is not normalised).
/// `issuer` has passed [`check_url`] without query or fragment.
fn metadata_urls(issuer: &str) -> [String; 2] {
    let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = path.strip_suffix('/').unwrap_or(path);
    let oauth = format!("{scheme}://{authority}/.well-known/oauth-authorization-server{path}");
    let oidc = format!(
        "{}/.well-known/openid-configuration",
        issuer.strip_suffix('/').unwrap_or(issuer)
    );
    [oauth, oidc]
}

#[derive(Deserialize)]
struct Metadata {
    // serde refuses a duplicate member of these fields; unknown members are ignored.
    issuer: Value,
    jwks_uri: Option<Value>,
}

/// A key set with where it came from.
struct Loaded {
    keys: Arc<KeySet>,
}

/// A time that is not set yet.
const NEVER: u64 = u64::MAX;

struct Inner {
    issuer: String,
    metadata_urls: [Url; 2],
    metadata_url_strings: [String; 2],
    client: HttpClient,
    options: DiscoveryOptions,
    /// The current set; `None` until the first successful fetch.
    state: ArcSwapOption<Loaded>,
    /// The error of the last fetch; `None` after a success.
    last_error: ArcSwapOption<DiscoveryError>,
    /// Held by the one task that fetches, never by a reader of the current set.
    refresh_lock: Arc<tokio::sync::Mutex<()>>,
    /// Incremented when a fetch ends, successful or not.
    generation: AtomicU64,
    /// A fetch holds the lock (read without it by rate-limited misses).
    in_flight: AtomicBool,
    /// When the last fetch triggered by a miss (or `ready`) started; [`NEVER`] before.
    last_miss_fetch: AtomicU64,
    /// Whether the next unknown `kid` may refetch at once, before the interval since the last
    /// miss fetch has passed: granted by the first fetch and each periodic refresh, taken by
    /// the next miss fetch. So a key rotated right after start-up (or after a refresh) is
    /// fetched on first sight, while a flood of random `kid`s still costs one fetch per
    /// interval.
    miss_credit: AtomicBool,
    /// When the periodic refresh is due; [`NEVER`] before the first fetch.
    next_refresh: AtomicU64,
    /// A background refresh task is scheduled or running.
    background: AtomicBool,
}

/// An issuer's keys, discovered from its metadata (RFC 8414) and refreshed; cheap to clone
/// (clones share one cache). See the [module documentation](self) for the strategy.
#[derive(Clone)]
pub struct IssuerKeys {
    inner: Arc<Inner>,
}

impl fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.inner.issuer)
            .field("keys", &self.current())
            .finish_non_exhaustive()
    }
}

/// Releases the refresh lock and publishes the end of a fetch, even if the fetch panicked.
struct FetchGuard {
    inner: Arc<Inner>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        self.inner.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.in_flight.store(false, Ordering::SeqCst);
    }
}

/// Clears the background flag when the background task ends.
struct BackgroundGuard(Arc<Inner>);

impl Drop for BackgroundGuard {
    fn drop(&mut self) {
        self.0.background.store(false, Ordering::SeqCst);
    }
}

impl IssuerKeys {
    /// Keys of `issuer`, an `https` URL without query or fragment (RFC 8414 §2). No I/O: the
    /// first fetch happens on first use or in [`ready`](Self::ready).
    ///
    /// # Errors
    ///
    /// An issuer that is not such a URL; options out of range; an unusable root CA.
    pub fn discover(issuer: &str, options: DiscoveryOptions) -> Result<Self, RemoteConfigError> {
        options.validate()?;
        check_url(issuer, options.http.insecure_allow_http_on_loopback, false).map_err(
            |reason| RemoteConfigError::InvalidUrl {
                what: "issuer",
                url: redacted(issuer),
                reason,
            },
        )?;
        let metadata_url_strings = metadata_urls(issuer);
        let parse = |url: &str| {
            Url::parse(url).map_err(|_| RemoteConfigError::InvalidUrl {
                what: "issuer",
                url: redacted(issuer),
                reason: "no metadata URL can be built from it",
            })
        };
        let metadata_urls = [
            parse(&metadata_url_strings[0])?,
            parse(&metadata_url_strings[1])?,
        ];
        let client = HttpClient::new(&options.http)?;
        Ok(Self {
            inner: Arc::new(Inner {
                issuer: issuer.to_owned(),
                metadata_urls,
                metadata_url_strings,
                client,
                options,
                state: ArcSwapOption::empty(),
                last_error: ArcSwapOption::empty(),
                refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
                generation: AtomicU64::new(0),
                in_flight: AtomicBool::new(false),
                last_miss_fetch: AtomicU64::new(NEVER),
                miss_credit: AtomicBool::new(false),
                next_refresh: AtomicU64::new(NEVER),
                background: AtomicBool::new(false),
            }),
        })
    }

    /// The issuer identifier, as configured.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The RFC 8414 metadata URL, then the OpenID Connect fallback.
    #[must_use]
    pub fn metadata_urls(&self) -> [&str; 2] {
        [
            &self.inner.metadata_url_strings[0],
            &self.inner.metadata_url_strings[1],
        ]
    }

    /// The current keys, without waiting (empty before the first successful fetch).
    #[must_use]
    pub fn current(&self) -> KeySnapshot {
        KeySnapshot(
            self.inner
                .state
                .load_full()
                .map_or_else(|| Arc::new(KeySet::default()), |l| Arc::clone(&l.keys)),
        )
    }

    /// Fetch the keys now unless they are loaded: await this before serving to fail fast on
    /// a misconfigured issuer. Counts as a miss for the rate limit, so calling it in a loop
    /// cannot hammer the authorization server.
    ///
    /// # Errors
    ///
    /// Why the fetch failed (or [`DiscoveryError::NotYetLoaded`] when rate-limited after a
    /// failure).
    pub async fn ready(&self) -> Result<(), DiscoveryError> {
        if self.inner.state.load().is_some() {
            return Ok(());
        }
        let generation = self.inner.generation.load(Ordering::SeqCst);
        self.inner.miss_refetch(generation).await;
        self.inner.answer().map(|_| ())
    }

    /// The keys for a token with this `kid` and `alg`.
    ///
    /// - A known key (some key may verify `kid` + `alg`): the current set, at once and without
    ///   a lock; a due periodic refresh is started in the background.
    /// - An unknown key: waits for one single-flight, rate-limited refetch (at most
    ///   [`DiscoveryOptions::lookup_timeout`]), then answers with the set as it is. The key may
    ///   still be missing: the token is then invalid (401).
    ///
    /// # Errors
    ///
    /// The key is unknown and the last fetch failed, or the refetch timed out: a server
    /// fault (503).
    pub async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<KeySnapshot, DiscoveryError> {
        let inner = &self.inner;
        let now = inner.options.clock.now_unix();
        // Read the generation before the set: a fetch ending in between is then noticed.
        let generation = inner.generation.load(Ordering::SeqCst);
        if let Some(loaded) = inner.state.load_full() {
            inner.schedule_refresh_if_due(now);
            if loaded.keys.candidates(kid, alg).next().is_some() {
                return Ok(KeySnapshot(Arc::clone(&loaded.keys)));
            }
        }
        tokio::time::timeout(inner.options.lookup_timeout, inner.miss_refetch(generation))
            .await
            .map_err(|_| DiscoveryError::LookupTimeout)?;
        inner.answer()
    }
}

impl Inner {
    fn now(&self) -> u64 {
        self.options.clock.now_unix()
    }

    fn miss_allowed(&self, now: u64) -> bool {
        let last = self.last_miss_fetch.load(Ordering::SeqCst);
        last == NEVER
            || now >= last.saturating_add(self.options.miss_refetch_interval.as_secs())
            || self.miss_credit.load(Ordering::SeqCst)
    }

    /// The set after a lookup that could not find its key: an error if the last fetch
    /// failed (the key may exist), else the set as it is.
    fn answer(&self) -> Result<KeySnapshot, DiscoveryError> {
        if let Some(error) = self.last_error.load_full() {
            return Err((*error).clone());
        }
        self.state
            .load_full()
            .map(|l| KeySnapshot(Arc::clone(&l.keys)))
            .ok_or(DiscoveryError::NotYetLoaded)
    }

    /// Join the fetch in progress, or start one if the rate limit allows; returns when no
    /// fetch this lookup could wait for is left.
    async fn miss_refetch(self: &Arc<Self>, seen_generation: u64) {
        // Fast path for a flood of unknown keys: rate-limited and nothing in flight, so no
        // lock. Order matters: `in_flight` is set before `last_miss_fetch`, and read after.
        if !self.miss_allowed(self.now()) && !self.in_flight.load(Ordering::SeqCst) {
            return;
        }
        let lock = Arc::clone(&self.refresh_lock).lock_owned().await;
        if self.generation.load(Ordering::SeqCst) != seen_generation {
            return; // a fetch ended since this lookup read the set: it reads the new one
        }
        let now = self.now();
        if !self.miss_allowed(now) {
            return;
        }
        // Every miss fetch takes the credit; the first fetch of all grants it when done.
        self.miss_credit.store(false, Ordering::SeqCst);
        let first = self.last_miss_fetch.load(Ordering::SeqCst) == NEVER;
        self.in_flight.store(true, Ordering::SeqCst);
        self.last_miss_fetch.store(now, Ordering::SeqCst);
        self.fetch_holding(lock).await;
        if first {
            self.miss_credit.store(true, Ordering::SeqCst);
        }
    }

    /// Start the periodic refresh in the background when due (never twice at once).
    fn schedule_refresh_if_due(self: &Arc<Self>, now: u64) {
        if now < self.next_refresh.load(Ordering::SeqCst)
            || self.background.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let guard = BackgroundGuard(Arc::clone(self));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime to run it on: the next lookup in one tries again
        };
        let generation = self.generation.load(Ordering::SeqCst);
        runtime.spawn(async move {
            let inner = Arc::clone(&guard.0);
            let lock = Arc::clone(&inner.refresh_lock).lock_owned().await;
            // Another fetch may have ended while this task waited for the lock.
            if inner.generation.load(Ordering::SeqCst) == generation
                && inner.now() >= inner.next_refresh.load(Ordering::SeqCst)
            {
                inner.in_flight.store(true, Ordering::SeqCst);
                inner.fetch_holding(lock).await;
                inner.miss_credit.store(true, Ordering::SeqCst);
            }
            drop(guard);
        });
    }

    /// Fetch while holding the refresh lock. The fetch runs in its own task when a runtime is
    /// there, so a lookup that gives up (timeout, client gone) does not cancel it for the
    /// others waiting.
    async fn fetch_holding(self: &Arc<Self>, lock: tokio::sync::OwnedMutexGuard<()>) {
        let guard = FetchGuard {
            inner: Arc::clone(self),
            _lock: lock,
        };
        let task = async move {
            let inner = Arc::clone(&guard.inner);
            let started = inner.now();
            let result = inner.fetch().await;
            inner.publish(result, started);
            drop(guard);
        };
        match tokio::runtime::Handle::try_current() {
            // A panic in the task has released the lock (FetchGuard); nothing else to do.
            Ok(runtime) => drop(runtime.spawn(task).await),
            Err(_) => task.await,
        }
    }

    fn publish(&self, result: Result<(KeySet, u64), DiscoveryError>, started: u64) {
        let (min, _) = self.options.refresh_bounds;
        match result {
            Ok((keys, refresh_after)) => {
                tracing::debug!(
                    target: crate::observe::DISCOVERY,
                    issuer = %self.issuer,
                    keys = keys.keys.len(),
                    refresh_after,
                    "issuer key set fetched"
                );
                self.state.store(Some(Arc::new(Loaded {
                    keys: Arc::new(keys),
                })));
                self.last_error.store(None);
                self.next_refresh
                    .store(started.saturating_add(refresh_after), Ordering::SeqCst);
            }
            Err(error) => {
                tracing::warn!(
                    target: crate::observe::DISCOVERY,
                    issuer = %self.issuer,
                    %error,
                    "issuer key set fetch failed; cached keys stay in use"
                );
                self.last_error.store(Some(Arc::new(error)));
                self.next_refresh
                    .store(started.saturating_add(min.as_secs()), Ordering::SeqCst);
            }
        }
    }

    /// One full fetch: metadata, then the JWK Set it names. Returns the set and the seconds
    /// until the next refresh.
    async fn fetch(&self) -> Result<(KeySet, u64), DiscoveryError> {
        let jwks_uri = self.fetch_jwks_uri().await?;
        let response = self
            .client
            .get(jwks_uri.clone(), MAX_JWKS_BYTES)
            .await
            .map_err(|e| fetch_error(&jwks_uri, e, MAX_JWKS_BYTES))?;
        if response.status != StatusCode::OK {
            return Err(DiscoveryError::HttpStatus {
                url: jwks_uri.to_string(),
                status: response.status.as_u16(),
            });
        }
        let invalid = |reason| DiscoveryError::InvalidJwks {
            url: jwks_uri.to_string(),
            reason,
        };
        let json = std::str::from_utf8(&response.body).map_err(|_| invalid("not UTF-8"))?;
        let keys = KeySet::from_json(json).map_err(|e| match e {
            crate::error::ConfigError::InvalidJwks { reason } => invalid(reason),
            _ => invalid("unusable"),
        })?;
        Ok((keys, self.refresh_after(response.cache_control.as_deref())))
    }

    /// Seconds until the next refresh: `max-age` or the default, within the bounds.
    fn refresh_after(&self, cache_control: Option<&str>) -> u64 {
        let (min, max) = self.options.refresh_bounds;
        cache_control
            .and_then(max_age)
            .unwrap_or(self.options.default_refresh.as_secs())
            .clamp(min.as_secs(), max.as_secs())
    }

    /// The `jwks_uri` of the issuer's metadata: RFC 8414 §3.1, then OpenID Connect
    /// Discovery §4 when the first answers a 4xx status.
    async fn fetch_jwks_uri(&self) -> Result<Url, DiscoveryError> {
        let mut last_status = None;
        for url in &self.metadata_urls {
            let response = self
                .client
                .get(url.clone(), MAX_METADATA_BYTES)
                .await
                .map_err(|e| fetch_error(url, e, MAX_METADATA_BYTES))?;
            if response.status == StatusCode::OK {
                return self.jwks_uri_from(url, &response.body);
            }
            let status = response.status;
            last_status = Some((url, status));
            if !status.is_client_error() {
                break;
            }
        }
        let (url, status) = last_status.map_or_else(
            || (String::new(), 0),
            |(url, status)| (url.to_string(), status.as_u16()),
        );
        Err(DiscoveryError::HttpStatus { url, status })
    }

    /// RFC 8414 §3.3: the metadata names exactly our issuer; §2: `jwks_uri` is `https`.
    fn jwks_uri_from(&self, url: &Url, body: &[u8]) -> Result<Url, DiscoveryError> {
        let invalid = |reason| DiscoveryError::InvalidMetadata {
            url: url.to_string(),
            reason,
        };
        // An object only (serde would also read the struct from an array), each member once.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(invalid("not a JSON object"));
        }
        let metadata: Metadata = serde_json::from_slice(body)
            .map_err(|_| invalid("not a JSON object with one issuer member"))?;
        let Value::String(issuer) = metadata.issuer else {
            return Err(invalid("issuer is not a string"));
        };
        if issuer != self.issuer {
            return Err(DiscoveryError::IssuerMismatch {
                url: url.to_string(),
                found: truncated(&issuer),
            });
        }
        let Some(Value::String(jwks_uri)) = metadata.jwks_uri else {
            return Err(invalid("no jwks_uri string"));
        };
        check_url(&jwks_uri, self.client.allows_http_on_loopback(), true).map_err(|reason| {
            DiscoveryError::InvalidJwksUri {
                uri: truncated(&without_userinfo(&jwks_uri)),
                reason,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_jwks_uri_is_quoted_without_credentials() {
        assert_eq!(
            without_userinfo("https://user:secret@as.example/jwks"),
            "https://as.example/jwks"
        );
        assert_eq!(
            without_userinfo("http://as.example/jwks"),
            "http://as.example/jwks"
        );
        assert_eq!(
            without_userinfo("//user:secret@x/jwks"),
            "(not an absolute URL)"
        );
    }

    #[test]
    fn metadata_urls_insert_before_the_path_rfc8414_3_1() {
        assert_eq!(
            metadata_urls("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example/"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example:8443/tenant/a/"),
            [
                "https://as.example:8443/.well-known/oauth-authorization-server/tenant/a",
                "https://as.example:8443/tenant/a/.well-known/openid-configuration"
            ]
        );
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let bad = DiscoveryOptions::default()
            .refresh_bounds(Duration::from_secs(600), Duration::from_secs(60));
        assert!(matches!(
            IssuerKeys::discover("https://as.example", bad),
            Err(RemoteConfigError::InvalidSetting {
                setting: "refresh_bounds",
                ..
            })
        ));
        let bad = DiscoveryOptions::default().miss_refetch_interval(Duration::ZERO);
        assert!(IssuerKeys::discover("https://as.example", bad).is_err());
        for issuer in [
            "https://as.example/?tenant=1",
            "https://as.example/#x",
            "as.example",
        ] {
            assert!(
                IssuerKeys::discover(issuer, DiscoveryOptions::default()).is_err(),
                "{issuer}"
            );
        }
    }

    #[test]
    fn refresh_interval_honours_max_age_within_bounds() {
        let keys = IssuerKeys::discover("https://as.example", DiscoveryOptions::default())
            .expect("issuer");
        let inner = &keys.inner;
        assert_eq!(inner.refresh_after(None), 300);
        assert_eq!(inner.refresh_after(Some("max-age=3600")), 3600);
        assert_eq!(inner.refresh_after(Some("max-age=5")), 60);
        assert_eq!(inner.refresh_after(Some("no-store")), 60);
        assert_eq!(inner.refresh_after(Some("max-age=999999999")), 86_400);
        assert_eq!(inner.refresh_after(Some("private")), 300);
    }
}
