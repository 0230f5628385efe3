//! Every default of the crate, each with its reason, in one place.
//!
//! The builders start from these values; each setter's documentation names the one it
//! replaces. A default is the safe choice: a relaxation is spelled `allow_*` or `insecure_*` on
//! the builder, never a default. The crate documentation tables them.

use std::time::Duration;

use crate::jose::Algorithm;

/// DPoP proof algorithms: the FAPI 2.0 set (§5.4.1), `ES256 PS256 EdDSA`, plus `Ed25519`, the
/// RFC 9864 name for the same EdDSA-with-Ed25519 signature, which newer clients send.
pub const DPOP_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::ES256,
    Algorithm::PS256,
    Algorithm::EdDSA,
    Algorithm::Ed25519,
];

/// Access-token algorithms: RS256 (required by RFC 9068 §2.1), PS256, ES256, EdDSA.
pub const TOKEN_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// Longest accepted proof age, the past side of the `iat` window: 60 s. RFC 9449 §11.1 asks for
/// "seconds or minutes"; 60 s lets a request travel and a modestly skewed clock pass while
/// keeping the replay store small.
pub const PROOF_MAX_AGE: Duration = Duration::from_secs(60);

/// How far in the future a proof's `iat` may be: 10 s, the FAPI 2.0 rule (§5.3.2.1 item 13).
pub const PROOF_FUTURE_SKEW: Duration = Duration::from_secs(10);

/// How long a replay entry is kept past the end of its proof's `iat` window: 5 s. A request
/// whose clock reading is up to this much older than another's (read just before a store call
/// that took a while, or on an instance whose clock runs behind) still finds the entry the
/// other left. The verifier also reads the clock again after every token step that may wait.
pub const REPLAY_RETENTION_MARGIN: Duration = Duration::from_secs(5);

/// Clock leeway for a token's `exp` and `nbf`: 30 s ("tens of seconds, never minutes").
pub const TOKEN_LEEWAY: Duration = Duration::from_secs(30);

/// Verified tokens kept in the token cache: 10,000.
pub const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Bytes the token cache may hold, by an estimate of each entry's heap size: 16 MiB, room for
/// the default 10,000 entries at about 1.6 KiB each (a typical RFC 9068 token's claims).
pub const TOKEN_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Longest time a verified token is served from the cache: 5 minutes, so a change of the
/// issuer's keys (a key withdrawn after a compromise) reaches cached tokens within that time.
pub const TOKEN_CACHE_MAX_AGE: Duration = Duration::from_secs(300);

/// Proofs a second one proof key may sustain under the default per-key quota: 5,000, far above
/// what one honest client sends, so one authenticated client cannot fill the replay store.
pub const PROOF_KEY_RATE: u64 = 5_000;

/// Server nonce lifetime: 5 minutes (RFC 9449 §11.1 asks for a limited window).
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Tolerance for a nonce issued by an instance whose clock runs ahead: 30 seconds.
pub const NONCE_FUTURE_SKEW: Duration = Duration::from_secs(30);

/// Total time of one HTTP call to the authorization server (discovery, introspection),
/// connection included: 5 s, so a slow server cannot hold requests for long.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// Time between key-set refreshes when the JWK Set response has no `max-age`: 5 minutes.
pub const DISCOVERY_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Bounds for the key-set refresh interval, whatever `max-age` says: at least once a day, at
/// most once a minute.
pub const DISCOVERY_REFRESH_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 60 * 60));

/// Least time between two key-set fetches triggered by an unknown `kid`: 10 s, so a flood of
/// tokens with random `kid`s costs the authorization server one call every 10 s.
pub const DISCOVERY_MISS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// Longest time a lookup for an unknown `kid` waits for the refetch: 10 s.
pub const DISCOVERY_LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time an active introspection result is cached: 60 s, a short window for a
/// revocation to take effect.
pub const INTROSPECTION_CACHE_TTL: Duration = Duration::from_secs(60);

/// Introspection results cached: 10,000.
pub const INTROSPECTION_CACHE_CAPACITY: usize = 10_000;

/// Introspection calls in flight at once: 32, so a flood cannot open unbounded connections to
/// the authorization server.
pub const INTROSPECTION_MAX_CONCURRENT: usize = 32;

/// Longest wait for a free introspection call slot: 500 ms, a tenth of the call timeout. When
/// every slot is busy the authorization server is slow or flooded: a 503 with `Retry-After`
/// at once serves the client better than a request held for seconds.
pub const INTROSPECTION_PERMIT_WAIT: Duration = Duration::from_millis(500);

/// The share of the introspection call slots the requests of one peer (an IPv4 address, an
/// IPv6 /64) may hold, waiting or in flight: a quarter (8 of the default 32), so one client
/// flooding opaque tokens leaves three quarters to everyone else.
pub const INTROSPECTION_PEER_SHARE_DIVISOR: usize = 4;

/// How long an inactive introspection answer is remembered: 30 s, so a client retrying a
/// revoked or unknown token costs the authorization server one call per 30 s, not one per
/// request.
pub const INTROSPECTION_NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// Inactive answers remembered: 10,000 token hashes (about 1 MiB), oldest out first.
pub const INTROSPECTION_NEGATIVE_CAPACITY: usize = 10_000;

/// Key prefix of the Redis replay store: `tower-pop:dpop:`.
pub const REDIS_KEY_PREFIX: &str = "tower-pop:dpop:";

/// Time limit of one Redis call, connection wait included: 250 ms. A `SET` on a healthy Redis
/// takes about a millisecond; a request waits no longer than this for a store that hangs.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Margin added to every Redis entry's time to live: 30 s, so an instance whose clock runs up
/// to 30 s behind cannot accept a proof whose entry another instance already let expire.
pub const REDIS_SKEW_MARGIN: Duration = Duration::from_secs(30);

/// Origins a client's nonce store remembers: 1,024, far more than one client talks to, few
/// enough that a client steered to many hosts stays small.
pub const CLIENT_NONCE_ORIGINS: usize = 1024;

/// Redirects the client middleware follows for one request: 10, as reqwest's default policy.
pub const CLIENT_MAX_REDIRECTS: usize = 10;

/// Longest time a server waits for a request's whole header (HTTP/1.1), also for the next
/// request on a keep-alive connection: 10 s. A client that sends its header a byte at a time
/// (slowloris) holds its connection no longer than this.
pub const SERVER_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a connection may carry no byte in either direction before the server closes
/// it: 60 s (an idle HTTP/2 connection, a stalled body).
pub const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections a server holds at once; past it, new ones wait in the listen backlog: 10,000.
/// Raise the process's file-descriptor limit above it.
pub const SERVER_MAX_CONNECTIONS: usize = 10_000;

/// TLS handshakes a server runs at once, each costing a private-key operation: 128. A flood of
/// handshakes queues instead of taking every core.
pub const SERVER_MAX_TLS_HANDSHAKES: usize = 128;

/// Longest time from accepting a connection to the end of its TLS handshake: 10 s.
pub const SERVER_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
