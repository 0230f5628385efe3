//! A replay store on Redis, shared by every instance of an API; documented on
//! [`RedisReplayCache`], which `replay` re-exports.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Client, ConnectionAddr, RedisError, Value};

use super::{BoxFuture, ReplayCache, ReplayEntry, ReplayError, ReplayOutcome};
pub use crate::error::RedisConfigError;

// 0.1 paths of the store's defaults, which live in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::{
    REDIS_KEY_PREFIX as DEFAULT_KEY_PREFIX, REDIS_SKEW_MARGIN as DEFAULT_SKEW_MARGIN,
    REDIS_TIMEOUT as DEFAULT_TIMEOUT,
};

/// Time limit of one attempt to open a connection (TCP and TLS handshakes, `AUTH`, `SELECT`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest pause between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// Calls failing for this long make the store replace its connection.
const REPLACE_AFTER: Duration = Duration::from_secs(5);
/// At most one error log line per this period while Redis fails.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// A Redis URL with any user name, password and query removed, for logs and `Debug`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<unparsable url>".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let query = if tail.contains('?') { "?***" } else { "" };
    format!("{scheme}://{host}{path}{query}")
}

/// Builder of a [`RedisReplayCache`], from [`RedisReplayCache::builder`]. `Debug` redacts the
/// URL's credentials.
#[must_use]
pub struct RedisReplayCacheBuilder {
    url: String,
    /// Seed nodes of a Redis Cluster; empty for one Redis.
    cluster_nodes: Vec<String>,
    key_prefix: String,
    timeout: Duration,
    skew_margin: Duration,
    tls_ca_pem: Option<Vec<u8>>,
    key_quota: Option<(u64, Duration)>,
    wait: Option<(u32, Duration)>,
}

impl fmt::Debug for RedisReplayCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCacheBuilder")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("skew_margin", &self.skew_margin)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|_| "set"))
            .field("key_quota", &self.key_quota)
            .field("cluster_nodes", &self.cluster_nodes.len())
            .field("wait", &self.wait)
            .finish()
    }
}

impl RedisReplayCacheBuilder {
    /// A per-proof-key quota shared by every instance: at most `proofs` entries of one key
    /// (its [`owner`](ReplayEntry::owner)) recorded within the current and the previous
    /// `window`; past it the entry is not recorded and the verifier answers 429
    /// ([`ReplayOutcome::OverQuota`]). Counted in the same round trip as the `SET NX` (one Lua
    /// script: `GET` of two counters, `SET NX PX`, `INCR` + `PEXPIRE` of the current one), so
    /// concurrent requests on several instances cannot overshoot it, and replays are not
    /// counted. The counters live under `<key_prefix>q:<owner>:<window number>`, one or two
    /// per active key.
    ///
    /// Default: off: each verifier still counts its own quota in memory
    /// ([`PopConfigBuilder::proof_key_quota`](crate::config::PopConfigBuilder::proof_key_quota)), so
    /// one key holds at most (instances × that quota) entries here. A client sending `rate`
    /// proofs a second steadily holds up to `2 × rate × window` of this count: set `proofs`
    /// to at least that for the fastest honest client (e.g. 5,000/s, the default 76 s proof lifetime: 760,000).
    /// Both values at least 1 (`connect` refuses zero).
    pub fn key_quota(mut self, proofs: u64, window: Duration) -> Self {
        self.key_quota = Some((proofs, window));
        self
    }

    /// Prefix of every key. Default [`REDIS_KEY_PREFIX`](crate::defaults::REDIS_KEY_PREFIX), `tower-pop:dpop:`: keeps the
    /// entries apart from other data in the same Redis. All instances of one API must use the
    /// same prefix; two APIs whose proofs must not be shared use different ones.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Time limit of one call, including any wait for a connection. Default
    /// [`REDIS_TIMEOUT`](crate::defaults::REDIS_TIMEOUT), 250 ms: a `SET` on a healthy Redis takes about a millisecond, and a
    /// Redis that cannot answer must turn into a quick 503, not a queue of stuck requests.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Added to every entry's time to live. Default [`REDIS_SKEW_MARGIN`](crate::defaults::REDIS_SKEW_MARGIN), 30 s.
    ///
    /// An entry must outlive the proof's acceptance window on **every** instance. The window's
    /// end ([`ReplayEntry::expires_at`]) is computed from the proof's `iat` by the clock of the
    /// instance that records it, and Redis counts the time to live from when it receives the
    /// `SET`. An instance whose clock runs `d` seconds behind keeps accepting that `iat` for
    /// `d` seconds more, and would find the entry already gone: set the margin to at least
    /// the largest such `d` between any two instances, plus the time a `SET` can take to reach
    /// Redis. It costs only memory: entries live that much longer.
    pub fn skew_margin(mut self, margin: Duration) -> Self {
        self.skew_margin = margin;
        self
    }

    /// Count an entry as recorded only once at least `replicas` replicas of the Redis that
    /// took it acknowledged it (`WAIT replicas timeout`, sent after the write on the same
    /// connection, in one round trip). Fewer acknowledgements within `timeout` is a
    /// [`ReplayError`] (503): the entry may be written, so the proof stays burned, and it is
    /// never accepted unreplicated.
    ///
    /// Redis replicates asynchronously: without this, a primary that fails after it recorded a
    /// proof but before a replica received it is replaced by a replica that never saw the
    /// proof, and the proof can be replayed within its window. With it, each proof costs the
    /// replication round trip, and `WAIT` holds the connection it runs on (requests queue
    /// behind it); the call's [`timeout`](Self::timeout) is extended by `timeout`. Default: off.
    /// `connect` refuses 0 or more than 16 replicas and a zero timeout.
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.wait = Some((replicas, timeout));
        self
    }

    /// Trust only these CA certificates (PEM, one or more) for a `rediss://` URL, instead of
    /// the system's roots. Default: the system's roots. For a Redis with a private CA.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_ca_pem = Some(pem.into());
        self
    }

    /// Check the settings and start connecting in the background; returns without waiting for
    /// Redis (see [`RedisReplayCache`]). Must be called within a Tokio runtime with its time
    /// driver enabled (`#[tokio::main]` enables it).
    pub async fn connect(self) -> Result<RedisReplayCache, RedisConfigError> {
        let redacted = redact(&self.url);
        if self.timeout.is_zero() {
            return Err(RedisConfigError::ZeroTimeout);
        }
        if self
            .key_quota
            .is_some_and(|(proofs, window)| proofs == 0 || window.as_secs() == 0)
        {
            return Err(RedisConfigError::ZeroKeyQuota);
        }
        if self.wait.is_some_and(|(replicas, timeout)| {
            replicas == 0 || replicas > 16 || timeout < Duration::from_millis(1)
        }) {
            return Err(RedisConfigError::InvalidWait);
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisConfigError::NoRuntime);
        }
        let wait = self.wait.map(|(replicas, timeout)| {
            (
                replicas,
                u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            )
        });
        // A WAIT may take its whole timeout: the call's bound covers it.
        let call_timeout = self.timeout + self.wait.map_or(Duration::ZERO, |(_, t)| t);
        let connection = if self.cluster_nodes.is_empty() {
            connect_single(&self.url, self.tls_ca_pem, call_timeout, &redacted)?
        } else {
            connect_cluster(
                &self.cluster_nodes,
                self.tls_ca_pem,
                call_timeout,
                &redacted,
            )?
        };
        Ok(RedisReplayCache {
            connection,
            key_prefix: self.key_prefix,
            key_quota: self
                .key_quota
                .map(|(proofs, window)| (proofs, window.as_secs())),
            timeout: call_timeout,
            wait,
            skew_margin_ms: u64::try_from(self.skew_margin.as_millis()).unwrap_or(u64::MAX),
            redacted_url: redacted,
            health: Health::default(),
        })
    }
}

/// One Redis at `url`: a connection manager that connects in the background (warmed by a
/// `PING` now rather than on the first request).
fn connect_single(
    url: &str,
    tls_ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    redacted: &str,
) -> Result<Connection, RedisConfigError> {
    let invalid = || RedisConfigError::InvalidUrl {
        url: redacted.to_owned(),
    };
    let client = Client::open(url).map_err(|_| invalid())?;
    let client = match client.get_connection_info().addr() {
        ConnectionAddr::TcpTls { insecure: true, .. } => {
            return Err(RedisConfigError::InsecureTls {
                url: redacted.to_owned(),
            });
        }
        ConnectionAddr::TcpTls { .. } => {
            // redis-rs builds its rustls configuration with the process-wide provider;
            // make sure there is one (`Err`: one is installed already, which is fine).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            match tls_ca_pem {
                Some(pem) => with_ca(&client, pem)?,
                None => client,
            }
        }
        _ if tls_ca_pem.is_some() => {
            return Err(RedisConfigError::CaWithoutTls {
                url: redacted.to_owned(),
            });
        }
        _ => client,
    };
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_max_delay(MAX_RECONNECT_DELAY);
    let manager = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
        .map_err(|_| invalid())?;
    let mut warm = manager.clone();
    let warm_target = redacted.to_owned();
    tokio::spawn(async move {
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<Value>(&mut warm);
        if tokio::time::timeout(CONNECT_TIMEOUT * 2, ping)
            .await
            .map_or(true, |r| r.is_err())
        {
            tracing::warn!(
                target: crate::observe::REPLAY,
                store = %warm_target,
                "redis replay store not reachable yet; DPoP requests are refused until it answers"
            );
        }
    });
    Ok(Connection::Single(Box::new(Single {
        client,
        config,
        manager: ArcSwap::from_pointee(manager),
    })))
}

/// `client` trusting only the CA certificates in `pem`.
fn with_ca(client: &Client, pem: Vec<u8>) -> Result<Client, RedisConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&pem).collect();
    if certs.map_or(true, |c| c.is_empty()) {
        return Err(RedisConfigError::InvalidTlsCa);
    }
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    Client::build_with_tls(client.get_connection_info().clone(), certificates)
        .map_err(|_| RedisConfigError::InvalidTlsCa)
}

/// A Redis Cluster client for `nodes` (all `redis://` or all `rediss://`), connected in the
/// background: calls fail (503) until the first connection is up, which is retried every
/// second. redis-rs's cluster connection follows `MOVED` and `ASK`, refreshes its slot map
/// and reconnects to nodes by itself.
fn connect_cluster(
    nodes: &[String],
    tls_ca_pem: Option<Vec<u8>>,
    timeout: Duration,
    redacted: &str,
) -> Result<Connection, RedisConfigError> {
    let tls = nodes.iter().all(|n| n.starts_with("rediss://"));
    if nodes.is_empty() || !(tls || nodes.iter().all(|n| n.starts_with("redis://"))) {
        return Err(RedisConfigError::InvalidCluster);
    }
    if nodes.iter().any(|n| n.contains("#insecure")) {
        return Err(RedisConfigError::InsecureTls {
            url: redacted.to_owned(),
        });
    }
    let mut builder = ClusterClient::builder(nodes.iter().map(String::as_str))
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(timeout)
        // Bounded: a request waits at most its call timeout, whatever the retries.
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(100);
    match tls_ca_pem {
        Some(pem) if tls => {
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            });
        }
        Some(_) => {
            return Err(RedisConfigError::CaWithoutTls {
                url: redacted.to_owned(),
            });
        }
        None => {}
    }
    if tls {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    let client = builder.build().map_err(|_| RedisConfigError::InvalidUrl {
        url: redacted.to_owned(),
    })?;
    let slot = Arc::new(ArcSwapOption::empty());
    let filled = Arc::clone(&slot);
    let target = redacted.to_owned();
    tokio::spawn(async move {
        let mut logged = false;
        loop {
            // The store was dropped: nobody waits for this connection.
            if Arc::strong_count(&filled) == 1 {
                return;
            }
            match tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection()).await {
                Ok(Ok(connection)) => {
                    filled.store(Some(Arc::new(connection)));
                    return;
                }
                _ if !logged => {
                    tracing::warn!(
                        target: crate::observe::REPLAY,
                        store = %target,
                        "redis cluster not reachable yet; DPoP requests are refused until it answers"
                    );
                    logged = true;
                }
                _ => {}
            }
            tokio::time::sleep(MAX_RECONNECT_DELAY).await;
        }
    });
    Ok(Connection::Cluster(slot))
}

/// Where the entries live: one Redis (a connection manager, replaced when stuck) or a Redis
/// Cluster (once connected).
enum Connection {
    Single(Box<Single>),
    Cluster(Arc<ArcSwapOption<ClusterConnection>>),
}

/// One Redis: its client, and the connection manager that is replaced when stuck.
struct Single {
    client: Client,
    config: ConnectionManagerConfig,
    manager: ArcSwap<ConnectionManager>,
}

/// `SET NX PX` counted against the owner's quota, atomically (Redis runs a script alone).
/// KEYS: the entry, the owner's counter of this window, of the previous one; ARGV: the entry's
/// time to live (ms), the quota, the counter's time to live (ms). Returns 1 fresh, 0 replayed,
/// 2 over quota (nothing written).
const QUOTA_SCRIPT: &str = r"
local held = tonumber(redis.call('GET', KEYS[2]) or '0') + tonumber(redis.call('GET', KEYS[3]) or '0')
if held >= tonumber(ARGV[2]) then return 2 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
";

/// Failure bookkeeping, for throttled logs and replacing a stuck connection.
#[derive(Debug, Default)]
struct Health {
    failing: AtomicBool,
    state: Mutex<FailureState>,
}

#[derive(Debug, Default)]
struct FailureState {
    since: Option<Instant>,
    last_log: Option<Instant>,
    last_replace: Option<Instant>,
    failures: u64,
    unlogged: u64,
}

/// Why a call failed; fixed texts, so the error can be logged anywhere (no URL, no key).
#[derive(Debug, Clone, Copy)]
enum Failure {
    Timeout,
    Redis,
    UnexpectedReply,
    /// Fewer replicas than asked acknowledged the write within the `WAIT` timeout.
    NotReplicated,
    /// The cluster connection is not up yet.
    NotConnected,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "redis did not answer in time",
            Self::Redis => "redis command failed",
            Self::UnexpectedReply => "unexpected reply from redis",
            Self::NotReplicated => "too few redis replicas acknowledged the write in time",
            Self::NotConnected => "redis cluster not connected yet",
        })
    }
}

impl std::error::Error for Failure {}

/// A replay store on Redis, shared by every instance of an API (RFC 9449 §11.1).
///
/// With several instances behind one API, each instance's own memory only sees the proofs that
/// instance accepted, so a proof replayed to another instance would pass. [`RedisReplayCache`]
/// records every accepted proof in one Redis, with one atomic command per proof:
///
/// ```text
/// SET <key_prefix><base64url(entry key)> 1 NX PX <ttl ms>
/// ```
///
/// `OK` means the proof is new ([`ReplayOutcome::Fresh`]); a nil reply means some instance
/// already recorded it ([`ReplayOutcome::Replayed`]). `NX` makes this atomic across instances:
/// of many concurrent requests carrying one proof, exactly one is accepted. The entry key is
/// already a SHA-256 of (proof-key thumbprint, `jti`), so Redis never sees a raw `jti` (RFC 9449 §11.1).
///
/// ## Failing closed (RFC 9449 §7.1)
///
/// An error, a timeout ([`timeout`](RedisReplayCacheBuilder::timeout), default 250 ms, covering
/// the wait for a connection too) or an unexpected reply is a [`ReplayError`]: the verifier
/// refuses the request with 503 and never accepts a proof it could not record. A `SET` that
/// timed out may still have been applied; that proof is then burned, which is harmless because
/// a client makes a new proof for every retry (RFC 9449 §7.3).
///
/// ## Connecting
///
/// [`connect`](RedisReplayCacheBuilder::connect) checks the URL and returns at once, without
/// waiting for Redis: a server can start while Redis is down, and refuses DPoP requests with 503
/// until Redis answers. It starts connecting in the background; await
/// [`RedisReplayCache::ping`] to wait for Redis at start-up, or to serve a readiness probe. A
/// lost connection is re-established by itself (redis-rs's `ConnectionManager`, with retries
/// backing off to at most 1 s); if calls keep failing for 5 s the connection is also replaced,
/// which covers a peer that vanished without closing it. The first failure of a burst is logged
/// with `tracing::error!` (then at most once per 10 s), and the recovery with `info!`; neither
/// shows the URL, which may hold a password.
///
/// ## Deployment
///
/// - Every instance must use the same Redis (or Redis Cluster,
///   [`cluster_builder`](RedisReplayCache::cluster_builder)) and [`key_prefix`].
/// - Failover: Redis replicates asynchronously, so a replica promoted after its primary died
///   may lack the last writes, and proofs accepted just before the failover could be replayed
///   within their window. [`wait_replicas`](RedisReplayCacheBuilder::wait_replicas) closes that
///   window: an entry counts only once replicas acknowledged it, at the cost of the
///   replication round trip per proof.
/// - `rediss://` uses rustls with the aws-lc-rs provider and the system's root certificates
///   (`SSL_CERT_FILE` selects another bundle), or only the CA given to
///   [`tls_ca_pem`](RedisReplayCacheBuilder::tls_ca_pem). If no rustls provider is installed
///   process-wide, `connect` installs aws-lc-rs's. A `#insecure` URL (no certificate check) is
///   refused.
/// - Clocks: see [`skew_margin`](RedisReplayCacheBuilder::skew_margin).
///
/// [`key_prefix`]: RedisReplayCacheBuilder::key_prefix
///
/// ## Example
///
/// ```no_run
/// use std::sync::Arc;
/// use tower_pop::PopConfig;
/// use tower_pop::replay::{RedisReplayCache, ReplayEntry, ReplayOutcome, ReplayCache};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisReplayCache::builder("redis://127.0.0.1:6379/0").connect().await?;
/// store.ping().await?; // optional: wait until Redis answers
/// let entry = ReplayEntry::new([7; 32], 1_562_262_618, 1_562_262_679);
/// assert_eq!(store.insert_if_absent(entry).await?, ReplayOutcome::Fresh);
/// assert_eq!(store.insert_if_absent(entry).await?, ReplayOutcome::Replayed);
/// let config = PopConfig::builder()
///     .public_origin("https://api.example.com")
///     .issuer("https://as.example.com")
///     .audience("https://api.example.com")
///     .jwks_json(r#"{"keys":[]}"#)
///     .replay_cache(Arc::new(store))
///     .build()?;
/// # drop(config); Ok(()) }
/// ```
///
/// `Debug` shows the URL without its credentials.
pub struct RedisReplayCache {
    connection: Connection,
    key_prefix: String,
    /// Proofs per key, window in seconds.
    key_quota: Option<(u64, u64)>,
    /// Each call's bound (the `WAIT` timeout included).
    timeout: Duration,
    /// Replicas that must acknowledge a write, and how long `WAIT` waits (ms).
    wait: Option<(u32, u64)>,
    skew_margin_ms: u64,
    redacted_url: String,
    health: Health,
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("url", &self.redacted_url)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field(
                "cluster",
                &matches!(self.connection, Connection::Cluster(_)),
            )
            .field("wait", &self.wait)
            .field("skew_margin_ms", &self.skew_margin_ms)
            .field("failing", &self.health.failing.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisReplayCache {
    /// A builder for the Redis at `url`: `redis://[user][:password@]host[:port][/db]`,
    /// `rediss://…` for TLS, or `redis+unix:///path`.
    pub fn builder(url: impl Into<String>) -> RedisReplayCacheBuilder {
        RedisReplayCacheBuilder {
            url: url.into(),
            cluster_nodes: Vec::new(),
            key_prefix: crate::defaults::REDIS_KEY_PREFIX.to_owned(),
            timeout: crate::defaults::REDIS_TIMEOUT,
            skew_margin: crate::defaults::REDIS_SKEW_MARGIN,
            tls_ca_pem: None,
            key_quota: None,
            wait: None,
        }
    }

    /// A builder for a Redis Cluster (or Valkey cluster) reached through any of `nodes`, its
    /// seed nodes: `redis://[user][:password@]host:port` each, or all `rediss://` for TLS.
    /// Commands go to the primary of their key's slot, following `MOVED` and `ASK`; what one
    /// command touches shares a slot (see [`redis_key`](Self::redis_key)). The same options
    /// as one Redis apply.
    pub fn cluster_builder<I, S>(nodes: I) -> RedisReplayCacheBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let mut builder = Self::builder(nodes.first().cloned().unwrap_or_default());
        builder.cluster_nodes = nodes;
        builder
    }

    /// The Redis key of an entry: the prefix and the base64url of the 32-byte entry key. On a
    /// cluster with a [`key_quota`](RedisReplayCacheBuilder::key_quota), the owner's base64url
    /// in braces comes between them: a hash tag, so that the entry and its owner's counters,
    /// which one script touches, share a hash slot (a prefix with braces of its own would put
    /// every key in one slot).
    #[must_use]
    pub fn redis_key(&self, entry: &ReplayEntry) -> String {
        let mut key = String::with_capacity(self.key_prefix.len() + 90);
        key.push_str(&self.key_prefix);
        if let Some(owner) = self.tagged_owner(entry) {
            key.push('{');
            URL_SAFE_NO_PAD.encode_string(owner, &mut key);
            key.push('}');
        }
        URL_SAFE_NO_PAD.encode_string(entry.key(), &mut key);
        key
    }

    /// The owner whose hash tag groups an entry with its counters, on a cluster with a quota.
    fn tagged_owner<'e>(&self, entry: &'e ReplayEntry) -> Option<&'e [u8; 32]> {
        let cluster = matches!(self.connection, Connection::Cluster(_));
        if cluster && self.key_quota.is_some() {
            entry.owner()
        } else {
            None
        }
    }

    /// The time to live given to an entry in Redis, in milliseconds: its
    /// [`ttl_secs`](ReplayEntry::ttl_secs) plus the skew margin.
    #[must_use]
    pub fn ttl_millis(&self, entry: &ReplayEntry) -> u64 {
        entry
            .ttl_secs()
            .saturating_mul(1000)
            .saturating_add(self.skew_margin_ms)
    }

    /// Send `PING` within the timeout: `Ok` once Redis answers. For start-up and readiness
    /// probes.
    pub async fn ping(&self) -> Result<(), ReplayError> {
        let reply = self.call(redis::cmd("PING")).await?;
        match reply {
            Value::SimpleString(s) if s == "PONG" => {
                self.succeeded();
                Ok(())
            }
            _ => Err(self.failed(Failure::UnexpectedReply, None)),
        }
    }

    async fn insert(&self, entry: ReplayEntry) -> Result<ReplayOutcome, ReplayError> {
        if let (Some((proofs, window)), Some(owner)) = (self.key_quota, entry.owner()) {
            return self.insert_counted(&entry, owner, proofs, window).await;
        }
        let key = self.redis_key(&entry);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_millis(&entry));
        let outcome = match self.write(cmd, &key).await? {
            Value::Okay => ReplayOutcome::Fresh,
            Value::SimpleString(s) if s == "OK" => ReplayOutcome::Fresh,
            Value::Nil => ReplayOutcome::Replayed,
            _ => return Err(self.failed(Failure::UnexpectedReply, None)),
        };
        self.succeeded();
        Ok(outcome)
    }

    /// `SET NX` and the owner's quota in one atomic script (see
    /// [`key_quota`](RedisReplayCacheBuilder::key_quota)).
    async fn insert_counted(
        &self,
        entry: &ReplayEntry,
        owner: &[u8; 32],
        proofs: u64,
        window: u64,
    ) -> Result<ReplayOutcome, ReplayError> {
        let slice = entry.now() / window;
        let tagged = self.tagged_owner(entry).is_some();
        let counter = |slice: u64| {
            let mut key = format!("{}q:", self.key_prefix);
            if tagged {
                key.push('{');
            }
            URL_SAFE_NO_PAD.encode_string(owner, &mut key);
            if tagged {
                key.push('}');
            }
            key.push(':');
            key.push_str(&slice.to_string());
            key
        };
        let key = self.redis_key(entry);
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(QUOTA_SCRIPT)
            .arg(3)
            .arg(&key)
            .arg(counter(slice))
            .arg(counter(slice.saturating_sub(1)))
            .arg(self.ttl_millis(entry))
            .arg(proofs)
            // The current counter is read during the next window too.
            .arg(
                window
                    .saturating_mul(2_000)
                    .saturating_add(self.skew_margin_ms),
            );
        let outcome = match self.write(cmd, &key).await? {
            Value::Int(1) => ReplayOutcome::Fresh,
            Value::Int(0) => ReplayOutcome::Replayed,
            Value::Int(2) => ReplayOutcome::OverQuota,
            _ => return Err(self.failed(Failure::UnexpectedReply, None)),
        };
        self.succeeded();
        Ok(outcome)
    }

    /// One write of `key`'s entry; with [`wait_replicas`](RedisReplayCacheBuilder::wait_replicas),
    /// followed in the same round trip, on the same connection of the same node, by `WAIT`,
    /// and refused unless a write that took effect reached enough replicas.
    async fn write(&self, cmd: redis::Cmd, key: &str) -> Result<Value, ReplayError> {
        let Some((replicas, wait_ms)) = self.wait else {
            return self.call(cmd).await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(cmd).cmd("WAIT").arg(replicas).arg(wait_ms);
        let replies = self.call_pipeline(pipe, key).await?;
        let [written, acknowledged] = <[Value; 2]>::try_from(replies)
            .map_err(|_| self.failed(Failure::UnexpectedReply, None))?;
        // Nothing written (a replay, over quota): nothing to wait for.
        let wrote = matches!(written, Value::Okay | Value::Int(1))
            || matches!(&written, Value::SimpleString(s) if s == "OK");
        match acknowledged {
            Value::Int(n) if !wrote || n >= i64::from(replicas) => Ok(written),
            Value::Int(_) => Err(self.failed(Failure::NotReplicated, None)),
            _ => Err(self.failed(Failure::UnexpectedReply, None)),
        }
    }

    /// One command within the timeout (on a cluster, redis-rs routes it by its own keys);
    /// failures are recorded and turned into a `ReplayError`.
    async fn call(&self, cmd: redis::Cmd) -> Result<Value, ReplayError> {
        let answer = match &self.connection {
            Connection::Single(single) => {
                let mut connection = ConnectionManager::clone(&single.manager.load());
                tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut connection)).await
            }
            Connection::Cluster(slot) => {
                let Some(connection) = slot.load_full() else {
                    return Err(self.failed(Failure::NotConnected, None));
                };
                let mut connection = ClusterConnection::clone(&connection);
                tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut connection)).await
            }
        };
        self.settle(answer)
    }

    /// `pipe` within the timeout, on one connection: on a cluster, the primary of `key`'s
    /// slot (a `MOVED` there is an error: the write and its `WAIT` must meet one node).
    async fn call_pipeline(
        &self,
        pipe: redis::Pipeline,
        key: &str,
    ) -> Result<Vec<Value>, ReplayError> {
        let count = pipe.len();
        let answer = match &self.connection {
            Connection::Single(single) => {
                let mut connection = ConnectionManager::clone(&single.manager.load());
                tokio::time::timeout(
                    self.timeout,
                    pipe.query_async::<Vec<Value>>(&mut connection),
                )
                .await
            }
            Connection::Cluster(slot) => {
                let Some(connection) = slot.load_full() else {
                    return Err(self.failed(Failure::NotConnected, None));
                };
                let mut connection = ClusterConnection::clone(&connection);
                let route =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                tokio::time::timeout(
                    self.timeout,
                    connection.route_pipeline(pipe, 0, count, route),
                )
                .await
            }
        };
        self.settle(answer)
    }

    /// A call's answer within the timeout, or its failure recorded as a `ReplayError`.
    fn settle<T>(
        &self,
        answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, ReplayError> {
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(Failure::Redis, Some(&e))),
            Err(_) => Err(self.failed(Failure::Timeout, None)),
        }
    }

    fn succeeded(&self) {
        if !self.health.failing.load(Ordering::Relaxed)
            || !self.health.failing.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let mut state = self
            .health
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let down_for = state.since.map(|t| t.elapsed()).unwrap_or_default();
        tracing::info!(
            target: crate::observe::REPLAY,
            store = %self.redacted_url,
            down_ms = u64::try_from(down_for.as_millis()).unwrap_or(u64::MAX),
            failed_calls = state.failures,
            "redis replay store recovered"
        );
        *state = FailureState {
            last_replace: state.last_replace,
            ..FailureState::default()
        };
    }

    fn failed(&self, failure: Failure, error: Option<&RedisError>) -> ReplayError {
        self.health.failing.store(true, Ordering::Release);
        let now = Instant::now();
        let mut state = self
            .health
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = *state.since.get_or_insert(now);
        state.failures += 1;
        state.unlogged += 1;
        if state
            .last_log
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            // A redis-rs error names its kind and the server's or the OS's message, never the
            // connection's URL or password.
            tracing::error!(
                target: crate::observe::REPLAY,
                store = %self.redacted_url,
                error = %failure,
                cause = error.map(tracing::field::display),
                failed_calls = state.unlogged,
                "redis replay store unavailable; refusing DPoP proofs"
            );
            state.last_log = Some(now);
            state.unlogged = 0;
        }
        let stuck = now.duration_since(since) >= REPLACE_AFTER;
        let replace_due = state
            .last_replace
            .is_none_or(|t| now.duration_since(t) >= REPLACE_AFTER);
        if let Connection::Single(single) = &self.connection
            && stuck
            && replace_due
        {
            state.last_replace = Some(now);
            if let Ok(fresh) = ConnectionManager::new_lazy_with_config(
                single.client.clone(),
                single.config.clone(),
            ) {
                single.manager.store(Arc::new(fresh));
            }
        }
        ReplayError::unavailable(failure)
    }
}

impl ReplayCache for RedisReplayCache {
    fn insert_if_absent(
        &self,
        entry: ReplayEntry,
    ) -> BoxFuture<'_, Result<ReplayOutcome, ReplayError>> {
        Box::pin(self.insert(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_credentials_and_query() {
        assert_eq!(
            redact("redis://user:hunter2@db.internal:6380/2"),
            "redis://***@db.internal:6380/2"
        );
        assert_eq!(redact("rediss://:hunter2@h/"), "rediss://***@h/");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=1&pass=hunter2"),
            "redis+unix:///run/redis.sock?***"
        );
        assert_eq!(redact("rediss://a:b@c@h/#insecure"), "rediss://***@h/");
        assert_eq!(redact("hunter2"), "<unparsable url>");
    }
}
