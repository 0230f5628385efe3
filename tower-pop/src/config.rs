//! [`PopConfig`] and its builder: what the verifier trusts and how strict it is.
//!
//! Every default is the safe choice and states why. Relaxations are named `allow_*` or
//! `insecure_*`. Cross-field rules are checked in [`PopConfigBuilder::build`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::defaults;
use crate::dpop::htu;
use crate::dpop::nonce::Nonces;
use crate::error::ConfigError;
use crate::jose::Algorithm;
use crate::metadata::{ResourceDocument, ResourceMetadata};
use crate::mtls::proxy::ForwardedCertConfig;
use crate::replay::{MemoryReplayCache, ReplayCache};
use crate::token::jwks::KeySet;
use crate::token::jwt;
use crate::token::jwt::TokenProfile;
use crate::token::keys::KeySource;

const MAX_PROOF_WINDOW: Duration = Duration::from_secs(3600);
const MAX_TOKEN_LEEWAY: Duration = Duration::from_secs(300);

/// The verifier's configuration; build it with [`PopConfig::builder`].
pub struct PopConfig {
    pub(crate) public_origin: String,
    pub(crate) dpop_algorithms: Vec<Algorithm>,
    pub(crate) proof_max_age: u64,
    pub(crate) proof_future_skew: u64,
    pub(crate) allow_bearer: bool,
    /// The FAPI 2.0 profile is on ([`PopConfigBuilder::fapi2`]).
    pub(crate) fapi2: bool,
    pub(crate) realm: Option<String>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) token_algorithms: Vec<Algorithm>,
    pub(crate) token_leeway: u64,
    pub(crate) token_cache: crate::token::cache::CacheLimits,
    pub(crate) token_profile: TokenProfile,
    /// Every trusted issuer and where its keys come from; the first is the primary.
    pub(crate) issuers: Vec<(String, KeySource)>,
    #[cfg(feature = "introspection")]
    pub(crate) introspector: Option<Arc<crate::token::introspection::Introspector>>,
    pub(crate) replay: Arc<dyn ReplayCache>,
    /// What this API's replay keys and key owners are hashed with, so that APIs sharing one
    /// store never share an entry or a quota counter.
    pub(crate) replay_namespace: [u8; 32],
    /// Most proofs of one key recorded within the proof lifetime.
    pub(crate) proof_key_quota: u64,
    pub(crate) nonces: Option<Nonces>,
    pub(crate) forwarded: Option<ForwardedCertConfig>,
    pub(crate) resource: Option<ResourceDocument>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl PopConfig {
    /// Start a configuration.
    #[must_use]
    pub fn builder() -> PopConfigBuilder {
        PopConfigBuilder::default()
    }

    /// The configured public origin, e.g. `https://api.example.com`.
    #[must_use]
    pub fn public_origin(&self) -> &str {
        &self.public_origin
    }

    /// The DPoP proof algorithm allow-list, in the order advertised in `algs`.
    #[must_use]
    pub fn dpop_algorithms(&self) -> &[Algorithm] {
        &self.dpop_algorithms
    }

    /// Whether unbound bearer tokens are accepted.
    #[must_use]
    pub fn allows_bearer(&self) -> bool {
        self.allow_bearer
    }

    /// Whether the FAPI 2.0 profile is on ([`PopConfigBuilder::fapi2`]).
    #[must_use]
    pub fn is_fapi2(&self) -> bool {
        self.fapi2
    }

    /// Whether DPoP proofs must carry a server-provided nonce.
    #[must_use]
    pub fn requires_nonce(&self) -> bool {
        self.nonces.is_some()
    }
}

impl fmt::Debug for PopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopConfig")
            .field("public_origin", &self.public_origin)
            .field("dpop_algorithms", &self.dpop_algorithms)
            .field("proof_max_age", &self.proof_max_age)
            .field("proof_future_skew", &self.proof_future_skew)
            .field("allow_bearer", &self.allow_bearer)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("token_algorithms", &self.token_algorithms)
            .field("token_cache", &self.token_cache)
            .field("proof_key_quota", &self.proof_key_quota)
            .field("requires_nonce", &self.nonces.is_some())
            .field("forwarded_certificates", &self.forwarded)
            .finish_non_exhaustive()
    }
}

/// Builder for [`PopConfig`].
///
/// ```
/// use tower_pop::PopConfig;
///
/// let config = PopConfig::builder()
///     .public_origin("https://resource.example.org")
///     .issuer("https://server.example.com")
///     .audience("https://resource.example.org")
///     .jwks_json(r#"{"keys":[]}"#)
///     .build()
///     .expect("valid configuration");
/// assert_eq!(config.public_origin(), "https://resource.example.org");
///
/// // Plain http is refused unless asked for by name (RFC 9449 §2).
/// assert!(PopConfig::builder()
///     .public_origin("http://resource.example.org")
///     .issuer("https://server.example.com")
///     .audience("a")
///     .jwks_json(r#"{"keys":[]}"#)
///     .build()
///     .is_err());
/// ```
pub struct PopConfigBuilder {
    public_origin: Option<String>,
    insecure_http: bool,
    dpop_algorithms: Vec<Algorithm>,
    proof_max_age: Duration,
    proof_future_skew: Duration,
    allow_bearer: bool,
    fapi2: bool,
    realm: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    token_algorithms: Vec<Algorithm>,
    token_leeway: Duration,
    token_cache_capacity: usize,
    token_cache_bytes: u64,
    token_cache_max_age: Duration,
    token_profile: TokenProfile,
    jwks: Option<Result<String, ConfigError>>,
    extra_issuers: Vec<String>,
    #[cfg(feature = "discovery")]
    discovery: crate::token::discovery::DiscoveryOptions,
    #[cfg(feature = "introspection")]
    introspection: Option<crate::token::introspection::IntrospectionOptions>,
    replay: Option<Arc<dyn ReplayCache>>,
    replay_namespace: Option<String>,
    proof_key_quota: Option<u64>,
    nonces: Option<Nonces>,
    forwarded: Option<ForwardedCertConfig>,
    resource: Option<ResourceMetadata>,
    clock: Arc<dyn Clock>,
}

impl Default for PopConfigBuilder {
    fn default() -> Self {
        Self {
            public_origin: None,
            insecure_http: false,
            dpop_algorithms: defaults::DPOP_ALGORITHMS.to_vec(),
            proof_max_age: defaults::PROOF_MAX_AGE,
            proof_future_skew: defaults::PROOF_FUTURE_SKEW,
            allow_bearer: false,
            fapi2: false,
            realm: None,
            issuer: None,
            audience: None,
            token_algorithms: defaults::TOKEN_ALGORITHMS.to_vec(),
            token_leeway: defaults::TOKEN_LEEWAY,
            token_cache_capacity: defaults::TOKEN_CACHE_CAPACITY,
            token_cache_bytes: defaults::TOKEN_CACHE_BYTES,
            token_cache_max_age: defaults::TOKEN_CACHE_MAX_AGE,
            token_profile: TokenProfile::Rfc9068,
            jwks: None,
            extra_issuers: Vec::new(),
            #[cfg(feature = "discovery")]
            discovery: crate::token::discovery::DiscoveryOptions::default(),
            #[cfg(feature = "introspection")]
            introspection: None,
            replay: None,
            replay_namespace: None,
            proof_key_quota: None,
            nonces: None,
            forwarded: None,
            resource: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl fmt::Debug for PopConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PopConfigBuilder")
            .field("public_origin", &self.public_origin)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl PopConfigBuilder {
    /// Required. The origin clients use to reach this server (`https://host[:port]`), from
    /// which the expected `htu` is built. Never derived from the request's `Host` or
    /// `X-Forwarded-*` headers, which the client controls. Must be `https` unless
    /// [`insecure_allow_http`](Self::insecure_allow_http) is set.
    #[must_use]
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// Accept an `http://` public origin. DPoP must be used over TLS (RFC 9449 §2); this is for
    /// local development and tests on loopback only.
    #[must_use]
    pub fn insecure_allow_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    /// The DPoP proof algorithm allow-list, advertised in the `algs` challenge parameter.
    /// Default: [`defaults::DPOP_ALGORITHMS`].
    #[must_use]
    pub fn dpop_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old a proof may be. Default: [`defaults::PROOF_MAX_AGE`]; at most one hour.
    #[must_use]
    pub fn proof_max_age(mut self, max_age: Duration) -> Self {
        self.proof_max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be. Default: [`defaults::PROOF_FUTURE_SKEW`].
    #[must_use]
    pub fn proof_future_skew(mut self, skew: Duration) -> Self {
        self.proof_future_skew = skew;
        self
    }

    /// Also accept unbound bearer tokens (no `cnf`). Off by default: proof of possession is
    /// required (FAPI 2.0 §5.3.4 item 5). Tokens bound by `cnf` are never accepted as bearer tokens either way.
    #[must_use]
    pub fn allow_bearer(mut self) -> Self {
        self.allow_bearer = true;
        self
    }

    /// The FAPI 2.0 Security Profile's resource-server rules ([`crate::fapi2`] tables them,
    /// with their sections): sender-constrained tokens only, proofs and access tokens signed
    /// with `PS256`, `ES256` or `EdDSA` only (both allow-lists set to
    /// [`fapi2::ALGORITHMS`](crate::fapi2::ALGORITHMS)), and an `x-fapi-interaction-id` on
    /// every response. `build()` refuses a setting that breaks them ([`ConfigError::Fapi2`]):
    /// [`allow_bearer`](Self::allow_bearer), another algorithm, a `proof_future_skew` over
    /// 60 s.
    #[must_use]
    pub fn fapi2(mut self) -> Self {
        self.fapi2 = true;
        self.dpop_algorithms = crate::fapi2::ALGORITHMS.to_vec();
        // Access tokens name EdDSA `EdDSA` (RFC 8037); the RFC 9864 name is for proofs.
        self.token_algorithms = crate::fapi2::ALGORITHMS[..3].to_vec();
        self
    }

    /// A `realm` for the challenges (RFC 6750 §3). Default: none. Characters `"` and `\` and
    /// controls are refused by `build()`.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Required. The trusted issuer; a token's `iss` must equal it exactly (RFC 9068 §4).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Required. The `aud` value a token must contain (RFC 9068 §4).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Access-token algorithm allow-list (RFC 8725 §3.1). Default: [`defaults::TOKEN_ALGORITHMS`].
    /// ES512 and the RFC 9864 name `Ed25519` are not available for access tokens (use `EdDSA`).
    #[must_use]
    pub fn token_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.token_algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock leeway for `exp` and `nbf`. Default: [`defaults::TOKEN_LEEWAY`]; at most 5 minutes.
    #[must_use]
    pub fn token_leeway(mut self, leeway: Duration) -> Self {
        self.token_leeway = leeway;
        self
    }

    /// How many verified tokens to cache. Default: [`defaults::TOKEN_CACHE_CAPACITY`]; 0 disables
    /// the cache.
    ///
    /// The cache is keyed by the token itself (held in memory while cached, wiped when it
    /// leaves: see the token cache's security note in the crate docs) and evicts when full
    /// (S3-FIFO: a token seen once is evicted before one that is reused, so one client presenting
    /// many fresh tokens does not push out the tokens other clients reuse). It holds the
    /// verified token only: the proof, its binding and its `jti` are checked on every request.
    #[must_use]
    pub fn token_cache_capacity(mut self, capacity: usize) -> Self {
        self.token_cache_capacity = capacity;
        self
    }

    /// How many bytes the token cache may hold, by an estimate of each entry's heap size (its
    /// claims' JSON, strings, binding, bookkeeping); large tokens leave room for fewer entries.
    /// Default: [`defaults::TOKEN_CACHE_BYTES`]; 0 disables the cache.
    #[must_use]
    pub fn token_cache_bytes(mut self, bytes: u64) -> Self {
        self.token_cache_bytes = bytes;
        self
    }

    /// How long a verified token is served from the cache at most, whatever its `exp`; never
    /// past its `exp` (plus leeway) either. Bounds how long a withdrawn issuer key keeps
    /// cached tokens valid. Default: [`defaults::TOKEN_CACHE_MAX_AGE`]; 0 disables the cache.
    #[must_use]
    pub fn token_cache_max_age(mut self, max_age: Duration) -> Self {
        self.token_cache_max_age = max_age;
        self
    }

    /// The access-token profile. Default: [`TokenProfile::Rfc9068`] (`typ` `at+jwt`, a `kid`,
    /// and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti` required, RFC 9068 §2.2, §4).
    /// [`TokenProfile::PlainJwt`] accepts issuers that omit `typ`, `kid`, `client_id`, `iat` or
    /// `jti`; every other check stays.
    #[must_use]
    pub fn token_profile(mut self, profile: TokenProfile) -> Self {
        self.token_profile = profile;
        self
    }

    /// Another trusted issuer (multi-tenant APIs), with keys discovered from its metadata
    /// (feature `discovery`; a configured JWK Set belongs to one issuer only). A token is checked
    /// only with the keys of the issuer its `iss` names (RFC 8725 §3.8); the audience is shared.
    #[must_use]
    pub fn add_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.extra_issuers.push(issuer.into());
        self
    }

    /// How issuer keys are discovered when no JWK Set is configured (feature `discovery`):
    /// RFC 8414 metadata at `/.well-known/oauth-authorization-server` (inserted before the
    /// issuer's path), falling back to OpenID Connect's `/.well-known/openid-configuration`;
    /// the metadata's `issuer` must equal ours exactly and `jwks_uri` must be `https`. Default:
    /// [`DiscoveryOptions::default`](crate::token::discovery::DiscoveryOptions). The verifier's clock
    /// replaces the options' clock.
    #[cfg(feature = "discovery")]
    #[must_use]
    pub fn discovery(mut self, options: crate::token::discovery::DiscoveryOptions) -> Self {
        self.discovery = options;
        self
    }

    /// Introspect tokens that are not JWTs (RFC 7662, feature `introspection`); JWTs are
    /// always verified locally. The issuer, audience, leeway and clock of this configuration
    /// replace the options' own. Only the token goes to the authorization server, never the
    /// client's proof or `Authorization` header; a failing server is a 503.
    #[cfg(feature = "introspection")]
    #[must_use]
    pub fn introspection(
        mut self,
        options: crate::token::introspection::IntrospectionOptions,
    ) -> Self {
        self.introspection = Some(options);
        self
    }

    /// The issuer's JWK Set, as a JSON document.
    #[must_use]
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.jwks = Some(Ok(json.into()));
        self
    }

    /// The issuer's JWK Set, read from a file now.
    #[must_use]
    pub fn jwks_file(mut self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        self.jwks = Some(
            std::fs::read_to_string(path).map_err(|e| ConfigError::UnreadableFile {
                path: path.to_owned(),
                source: Arc::new(e),
            }),
        );
        self
    }

    /// Where proofs are recorded for single use. Default: a [`MemoryReplayCache`] with
    /// [`MemoryReplayCache::default_capacity`] (sized from this machine's cores).
    #[must_use]
    pub fn replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Self {
        self.replay = Some(cache);
        self
    }

    /// The name this API's entries are kept under in a replay store shared with other APIs
    /// (one Redis for several services): the replay keys and the key owners a store counts
    /// quotas by are hashed with it, so two APIs never refuse each other's proofs as replays
    /// nor share a quota. Default: the RFC 9728 resource identifier when
    /// [`resource_metadata`](Self::resource_metadata) is set, else the public origin; the
    /// instances of one API must agree on it (they do with the same flags).
    #[must_use]
    pub fn replay_namespace(mut self, name: impl Into<String>) -> Self {
        self.replay_namespace = Some(name.into());
        self
    }

    /// Most proofs of one proof key (by its RFC 7638 thumbprint) recorded for single use
    /// within the proof lifetime; a key past it is refused with 429 and `Retry-After`
    /// ([`PopErrorKind::ProofKeyOverQuota`](crate::error::PopErrorKind::ProofKeyOverQuota)) and
    /// nothing is recorded for it, while every other key goes on. So one authenticated client
    /// cannot fill the replay store and make it refuse everyone (RFC 9449 §11.1).
    ///
    /// Default: [`defaults::PROOF_KEY_RATE`] (5,000 proofs a second) times the counted window,
    /// which is the proof lifetime (`proof_max_age + proof_future_skew + 1 s`, plus the 5 s
    /// [`REPLAY_RETENTION_MARGIN`](defaults::REPLAY_RETENTION_MARGIN)) rounded up to nine
    /// slices of `ceil(lifetime / 8)` seconds: with the default 76 s lifetime, 9 × 10 s = 90 s,
    /// so 450,000 proofs. A client sending up to 5,000 proofs a second, steadily, is never
    /// refused; a burst above that is refused until older slices leave the window. The quota
    /// is counted in this verifier's memory (576 KiB, fixed), whatever the replay store: with
    /// several instances sharing one store, a key can hold up to (instances × quota) entries of
    /// it. Size the store well above (expected clients × quota) or lower the quota. At least 1.
    #[must_use]
    pub fn proof_key_quota(mut self, proofs: u64) -> Self {
        self.proof_key_quota = Some(proofs);
        self
    }

    /// Require server-provided nonces in DPoP proofs (RFC 9449 §9), minted and checked by
    /// `nonces`. Off by default. Once set, a proof without a `nonce`, or with one that is stale,
    /// forged or from another secret, is refused with 401 `use_dpop_nonce` and a fresh
    /// `DPoP-Nonce`; a valid nonce never skips any other check. Successful responses carry a
    /// fresh `DPoP-Nonce` once the presented one is half its lifetime old. Every response with a
    /// nonce carries `Cache-Control: no-store`.
    ///
    /// The proof's `iat` window stays anchored on this server's clock
    /// ([`proof_max_age`](Self::proof_max_age)); the nonce adds a server-time bound of its own
    /// (a proof cannot outlive its nonce), it does not widen the window for clients with bad
    /// clocks (RFC 9449 §11.1 leaves that choice to the server).
    ///
    /// Instances behind one API must share the nonce secret, or clients that move between them
    /// are asked to retry. Browser clients on another origin can read `DPoP-Nonce` only if CORS
    /// exposes it (`Access-Control-Expose-Headers: WWW-Authenticate, DPoP-Nonce`).
    #[must_use]
    pub fn require_nonce(mut self, nonces: Nonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// Trust client certificates forwarded by TLS-terminating proxies (RFC 9440 §2): the
    /// configured header is read only on connections whose peer address (a [`PeerAddr`]
    /// extension, actix's `peer_addr`) is inside `forwarded`'s trusted networks; from any other
    /// peer it is ignored and does not affect DPoP. On a trusted connection the header alone
    /// decides (the TLS certificate there is the proxy's): a missing, repeated or malformed
    /// header means no certificate, so certificate-bound tokens are refused. Every response
    /// whose decision read the header carries `Cache-Control: no-store`. Off by default.
    ///
    /// [`PeerAddr`]: crate::request::PeerAddr
    #[must_use]
    pub fn forwarded_certificates(mut self, forwarded: ForwardedCertConfig) -> Self {
        self.forwarded = Some(forwarded);
        self
    }

    /// Publish RFC 9728 protected resource metadata for this resource: the verifier then has a
    /// [`ResourceDocument`](crate::metadata::ResourceDocument) to serve, and every challenge
    /// carries `resource_metadata` with its URL (RFC 9728 §5.1). Off by default.
    #[must_use]
    pub fn resource_metadata(mut self, metadata: ResourceMetadata) -> Self {
        self.resource = Some(metadata);
        self
    }

    /// The time source. Default: the system clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Check the configuration.
    ///
    /// # Errors
    /// When a required setting is missing, the public origin is not an `https` origin (or
    /// `http` without [`insecure_allow_http`](Self::insecure_allow_http)), an allow-list is
    /// empty, a window or leeway is too large, or the JWK Set cannot be read.
    pub fn build(self) -> Result<PopConfig, ConfigError> {
        if self.fapi2 {
            self.check_fapi2()?;
        }
        let origin = self.public_origin.ok_or(ConfigError::Missing {
            setting: "public_origin",
        })?;
        let public_origin = normalize_origin(&origin, self.insecure_http)?;
        if self.dpop_algorithms.is_empty() {
            return Err(ConfigError::EmptyAlgorithms {
                setting: "dpop_algorithms",
            });
        }
        if self.token_algorithms.is_empty() {
            return Err(ConfigError::EmptyAlgorithms {
                setting: "token_algorithms",
            });
        }
        if let Some(alg) = self.token_algorithms.iter().find(|a| !jwt::supported(**a)) {
            return Err(ConfigError::UnsupportedTokenAlgorithm { algorithm: *alg });
        }
        if self.proof_max_age + self.proof_future_skew > MAX_PROOF_WINDOW {
            return Err(ConfigError::ProofWindowTooLarge {
                window: self.proof_max_age + self.proof_future_skew,
            });
        }
        if self.token_leeway > MAX_TOKEN_LEEWAY {
            return Err(ConfigError::TokenLeewayTooLarge {
                leeway: self.token_leeway,
            });
        }
        if self.proof_key_quota == Some(0) {
            return Err(ConfigError::InvalidProofKeyQuota);
        }
        let bad_realm_char = |b: u8| b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b);
        if let Some(realm) = self
            .realm
            .as_ref()
            .filter(|r| r.bytes().any(bad_realm_char))
        {
            return Err(ConfigError::InvalidRealm {
                realm: realm.clone(),
            });
        }
        let issuer = self
            .issuer
            .filter(|i| !i.is_empty())
            .ok_or(ConfigError::Missing { setting: "issuer" })?;
        let audience = self
            .audience
            .filter(|a| !a.is_empty())
            .ok_or(ConfigError::Missing {
                setting: "audience",
            })?;
        let mut issuers = Vec::with_capacity(1 + self.extra_issuers.len());
        for name in std::iter::once(&issuer).chain(&self.extra_issuers) {
            if name.is_empty() || issuers.iter().any(|(i, _)| i == name) {
                return Err(ConfigError::InvalidIssuer {
                    issuer: name.clone(),
                    reason: "empty or given twice",
                });
            }
            issuers.push((name.clone(), None));
        }
        match self.jwks {
            Some(jwks) if issuers.len() > 1 => {
                drop(jwks);
                return Err(ConfigError::InvalidIssuer {
                    issuer: issuers[1].0.clone(),
                    reason: "a configured JWK Set belongs to one issuer; discover the keys of several",
                });
            }
            Some(jwks) => {
                issuers[0].1 = Some(KeySource::Static(Arc::new(KeySet::from_json(&jwks?)?)));
            }
            None => {}
        }
        #[cfg(feature = "discovery")]
        let discovery = self.discovery;
        #[cfg(not(feature = "discovery"))]
        let discovery = ();
        let issuers = issuers
            .into_iter()
            .map(|(name, keys)| {
                let keys = match keys {
                    Some(keys) => keys,
                    None => discovered_keys(&discovery, &self.clock, &name)?,
                };
                Ok((name, keys))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        #[cfg(feature = "introspection")]
        let introspector = match self.introspection.clone() {
            Some(options) => Some(Arc::new(
                crate::token::introspection::Introspector::new(
                    options
                        .issuer(&issuer)
                        .audience(&audience)
                        .leeway(self.token_leeway)
                        .clock(Arc::clone(&self.clock)),
                )
                .map_err(|source| ConfigError::Introspection { source })?,
            )),
            None => None,
        };
        let mut dpop_algorithms = self.dpop_algorithms;
        dedup_in_order(&mut dpop_algorithms);
        let resource = match &self.resource {
            Some(metadata) => {
                let servers: Vec<&str> = issuers.iter().map(|(i, _)| i.as_str()).collect();
                let algs: Vec<&str> = dpop_algorithms.iter().map(|a| a.as_str()).collect();
                Some(ResourceDocument::new(
                    metadata,
                    &servers,
                    &algs,
                    !self.allow_bearer,
                    self.insecure_http,
                )?)
            }
            None => None,
        };
        let replay_namespace = crate::replay::namespace(
            self.replay_namespace
                .as_deref()
                .or(self.resource.as_ref().map(ResourceMetadata::resource))
                .unwrap_or(&public_origin),
        );
        Ok(PopConfig {
            public_origin,
            dpop_algorithms,
            proof_max_age: self.proof_max_age.as_secs(),
            proof_future_skew: self.proof_future_skew.as_secs(),
            allow_bearer: self.allow_bearer,
            fapi2: self.fapi2,
            realm: self.realm,
            issuer,
            audience,
            token_algorithms: self.token_algorithms,
            token_leeway: self.token_leeway.as_secs(),
            token_cache: crate::token::cache::CacheLimits {
                entries: self.token_cache_capacity,
                bytes: self.token_cache_bytes,
                max_age: self.token_cache_max_age.as_secs(),
            },
            token_profile: self.token_profile,
            issuers,
            #[cfg(feature = "introspection")]
            introspector,
            replay: self
                .replay
                .unwrap_or_else(|| Arc::new(MemoryReplayCache::default())),
            replay_namespace,
            proof_key_quota: self.proof_key_quota.unwrap_or_else(|| {
                let lifetime = crate::replay::proof_lifetime_secs(
                    self.proof_max_age.as_secs(),
                    self.proof_future_skew.as_secs(),
                );
                defaults::PROOF_KEY_RATE.saturating_mul(
                    crate::replay::quota::KeyQuota::counted_window_secs(lifetime),
                )
            }),
            nonces: self.nonces,
            forwarded: self.forwarded,
            resource,
            clock: self.clock,
        })
    }
}

/// The keys of `issuer` when no JWK Set is configured: discovered (feature `discovery`), else a
/// configuration error.
#[cfg(feature = "discovery")]
fn discovered_keys(
    options: &crate::token::discovery::DiscoveryOptions,
    clock: &Arc<dyn Clock>,
    issuer: &str,
) -> Result<KeySource, ConfigError> {
    {
        let options = options.clone().clock(Arc::clone(clock));
        crate::token::discovery::IssuerKeys::discover(issuer, options)
            .map(KeySource::Discovered)
            .map_err(|source| ConfigError::Discovery {
                issuer: issuer.to_owned(),
                source,
            })
    }
}

#[cfg(not(feature = "discovery"))]
fn discovered_keys(_: &(), _: &Arc<dyn Clock>, _issuer: &str) -> Result<KeySource, ConfigError> {
    Err(ConfigError::Missing {
        setting: "jwks_json or jwks_file (or the discovery feature)",
    })
}

fn dedup_in_order(algorithms: &mut Vec<Algorithm>) {
    let mut seen = Vec::with_capacity(algorithms.len());
    algorithms.retain(|a| {
        let first = !seen.contains(a);
        seen.push(*a);
        first
    });
}

/// `scheme://host[:port]` with no path, query or fragment, normalised like `htu`.
fn normalize_origin(origin: &str, insecure_http: bool) -> Result<String, ConfigError> {
    let bad = || ConfigError::InvalidPublicOrigin {
        origin: origin.to_owned(),
    };
    if origin.contains(['?', '#']) {
        return Err(bad());
    }
    let normalized = htu::normalize(origin).ok_or_else(bad)?;
    let normalized = normalized.strip_suffix('/').ok_or_else(bad)?;
    if normalized.matches('/').count() != 2 {
        return Err(bad());
    }
    if normalized.starts_with("http://") && !insecure_http {
        return Err(ConfigError::InsecureHttpOrigin {
            origin: origin.to_owned(),
        });
    }
    Ok(normalized.to_owned())
}

impl PopConfigBuilder {
    /// The rules of [`fapi2`](Self::fapi2) that a later setting could break.
    fn check_fapi2(&self) -> Result<(), ConfigError> {
        let fapi = |rule| Err(ConfigError::Fapi2 { rule });
        if self.allow_bearer {
            return fapi("sender-constrained access tokens only (§5.3.4 item 5): no allow_bearer");
        }
        let allowed =
            |algs: &[Algorithm]| algs.iter().all(|a| crate::fapi2::ALGORITHMS.contains(a));
        if !allowed(&self.dpop_algorithms) || !allowed(&self.token_algorithms) {
            return fapi("only PS256, ES256 and EdDSA (§5.4.1 item 1)");
        }
        if self.proof_future_skew.as_secs() > crate::fapi2::MAX_FUTURE_SKEW_SECS {
            return fapi("no proof more than 60 s in the future (§5.3.2.1 item 13)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PopConfigBuilder {
        PopConfig::builder()
            .issuer("https://server.example.com")
            .audience("https://resource.example.org")
            .jwks_json(r#"{"keys":[]}"#)
    }

    #[test]
    fn the_fapi2_profile_refuses_what_breaks_it_fapi_05_06_07() {
        let fapi = || base().public_origin("https://r.example").fapi2();
        let c = fapi().build().expect("the profile alone is valid");
        assert!(c.is_fapi2() && !c.allows_bearer());
        assert_eq!(c.dpop_algorithms(), crate::fapi2::ALGORITHMS);
        let refused =
            |builder: PopConfigBuilder| matches!(builder.build(), Err(ConfigError::Fapi2 { .. }));
        assert!(refused(fapi().allow_bearer()));
        assert!(refused(
            fapi().dpop_algorithms([Algorithm::ES256, Algorithm::RS256])
        ));
        assert!(refused(fapi().token_algorithms([Algorithm::RS256])));
        assert!(refused(fapi().proof_future_skew(Duration::from_secs(61))));
        // Narrower is fine.
        assert!(fapi().dpop_algorithms([Algorithm::ES256]).build().is_ok());
        assert!(
            !base()
                .public_origin("https://r.example")
                .build()
                .expect("ok")
                .is_fapi2()
        );
    }

    #[test]
    fn origin_is_normalised_and_must_be_an_origin() {
        let c = base()
            .public_origin("HTTPS://Resource.Example.ORG:443/")
            .build()
            .expect("ok");
        assert_eq!(c.public_origin(), "https://resource.example.org");
        for bad in [
            "https://r.example/api",
            "https://r.example/?q",
            "/x",
            "ftp://r.example",
            "https://u@r.example",
        ] {
            assert!(base().public_origin(bad).build().is_err(), "{bad}");
        }
        assert!(
            base()
                .public_origin("http://127.0.0.1:8080")
                .build()
                .is_err()
        );
        let c = base()
            .public_origin("http://127.0.0.1:8080")
            .insecure_allow_http()
            .build()
            .expect("ok");
        assert_eq!(c.public_origin(), "http://127.0.0.1:8080");
    }

    #[test]
    fn refuses_unworkable_settings() {
        let ok = || base().public_origin("https://r.example");
        assert!(ok().build().is_ok());
        assert!(ok().dpop_algorithms([]).build().is_err());
        assert!(ok().token_algorithms([Algorithm::ES512]).build().is_err());
        assert!(
            ok().proof_max_age(Duration::from_secs(7200))
                .build()
                .is_err()
        );
        assert!(ok().token_leeway(Duration::from_secs(600)).build().is_err());
        assert!(ok().realm("a\"b").build().is_err());
        assert!(ok().proof_key_quota(0).build().is_err());
        assert_eq!(ok().build().expect("ok").proof_key_quota, 450_000);
        assert!(ok().jwks_file("/nonexistent/jwks.json").build().is_err());
        assert!(ok().jwks_json("not json").build().is_err());
        assert!(
            PopConfig::builder()
                .public_origin("https://r.example")
                .jwks_json("{\"keys\":[]}")
                .audience("a")
                .build()
                .is_err()
        );
    }
}
