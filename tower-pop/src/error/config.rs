//! Configuration errors: [`ConfigError`], what a builder's `build()` reports, and the typed
//! causes it keeps (each also the error of its own builder): the authorization server's HTTP
//! options, TLS, Redis, nonces, trusted proxies. Each variant quotes the setting or input at
//! fault, never a secret.

use std::fmt;
#[cfg(feature = "rustls")]
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The nonce lifetimes [`NonceConfigError::InvalidLifetime`] refuses what is outside of, in
/// seconds: 10 s to a day.
pub(crate) const NONCE_LIFETIME_SECS: std::ops::RangeInclusive<u64> = 10..=24 * 60 * 60;

/// A configuration that cannot work, reported by a builder's `build()`. Each variant quotes the
/// setting or the input at fault (never a secret), and keeps its cause typed
/// ([`source`](std::error::Error::source)); the errors of the other builders convert into it
/// (`?` works across them).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting was not given.
    Missing {
        /// The builder method that sets it.
        setting: &'static str,
    },
    /// The public origin is not an absolute `https://host[:port]` origin.
    InvalidPublicOrigin {
        /// The origin as given.
        origin: String,
    },
    /// The public origin is plain `http` without `insecure_allow_http()` (RFC 9449 §2: DPoP is
    /// used over TLS).
    InsecureHttpOrigin {
        /// The origin as given.
        origin: String,
    },
    /// An algorithm allow-list is empty.
    EmptyAlgorithms {
        /// The builder method that sets it.
        setting: &'static str,
    },
    /// An access-token algorithm this crate cannot verify tokens with.
    UnsupportedTokenAlgorithm {
        /// The algorithm.
        algorithm: crate::jose::Algorithm,
    },
    /// The proof `iat` window (`proof_max_age` + `proof_future_skew`) exceeds one hour.
    ProofWindowTooLarge {
        /// The window asked for.
        window: std::time::Duration,
    },
    /// The token leeway exceeds five minutes.
    TokenLeewayTooLarge {
        /// The leeway asked for.
        leeway: std::time::Duration,
    },
    /// The per-key proof quota is zero (it must let at least one proof through).
    InvalidProofKeyQuota,
    /// The realm has characters a challenge cannot carry (`"`, `\`, controls, non-ASCII).
    InvalidRealm {
        /// The realm as given.
        realm: String,
    },
    /// A file could not be read.
    UnreadableFile {
        /// The path.
        path: PathBuf,
        /// The operating system's reason.
        source: Arc<std::io::Error>,
    },
    /// An issuer cannot be trusted as configured (empty, repeated, or a static JWK Set for
    /// several).
    InvalidIssuer {
        /// The issuer as given.
        issuer: String,
        /// Why.
        reason: &'static str,
    },
    /// The discovery settings of an issuer are unusable (its identifier, root CA, a setting
    /// out of range).
    #[cfg(feature = "discovery")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What is wrong.
        source: RemoteConfigError,
    },
    /// The introspection settings are unusable (endpoint URL, root CA).
    #[cfg(feature = "introspection")]
    Introspection {
        /// What is wrong.
        source: RemoteConfigError,
    },
    /// The TLS server configuration is unusable.
    #[cfg(feature = "rustls")]
    Tls(Arc<TlsConfigError>),
    /// The Redis replay store's settings are unusable.
    #[cfg(feature = "redis")]
    Redis(RedisConfigError),
    /// The nonce settings are unusable.
    Nonce(Arc<NonceConfigError>),
    /// A trusted-proxy setting is unusable.
    Proxy(ProxyConfigError),
    /// The RFC 9728 resource identifier is not an absolute `https` URL without query or
    /// fragment, or a scope is not an RFC 6749 §3.3 scope-token.
    InvalidResource {
        /// The resource identifier as given.
        resource: String,
    },
    /// A required scope is not an RFC 6749 §3.3 scope-token.
    InvalidScope {
        /// The scope as given.
        scope: String,
    },
    /// A path given a policy of its own is not an absolute path (`/package.Service/Method`).
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// A setting breaks the FAPI 2.0 profile
    /// ([`PopConfigBuilder::fapi2`](crate::config::PopConfigBuilder::fapi2)).
    Fapi2 {
        /// The rule and its section.
        rule: &'static str,
    },
    /// The JWK Set document is unusable.
    InvalidJwks {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CORS allowed origin is not exactly what a browser sends in `Origin`
    /// ([`crate::cors::allowed_origins`]).
    InvalidCorsOrigin {
        /// The origin as given.
        origin: String,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { setting } => write!(f, "{setting} is required"),
            Self::InvalidPublicOrigin { origin } => write!(
                f,
                "public_origin {origin:?} is not an absolute http(s) origin such as https://api.example.com"
            ),
            Self::InsecureHttpOrigin { origin } => write!(
                f,
                "public_origin {origin:?} uses http; DPoP requires TLS (RFC 9449 §2): use https or insecure_allow_http()"
            ),
            Self::EmptyAlgorithms { setting } => write!(f, "{setting} must not be empty"),
            Self::UnsupportedTokenAlgorithm { algorithm } => {
                write!(f, "{algorithm} is not supported for access tokens")
            }
            Self::ProofWindowTooLarge { window } => write!(
                f,
                "proof iat window of {} s exceeds one hour",
                window.as_secs()
            ),
            Self::TokenLeewayTooLarge { leeway } => write!(
                f,
                "token_leeway of {} s exceeds 5 minutes",
                leeway.as_secs()
            ),
            Self::InvalidProofKeyQuota => f.write_str("proof_key_quota must be at least 1"),
            Self::InvalidRealm { realm } => {
                write!(f, "realm {realm:?} has characters a challenge cannot carry")
            }
            Self::UnreadableFile { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            Self::InvalidJwks { reason } => write!(f, "invalid JWK Set: {reason}"),
            Self::InvalidIssuer { issuer, reason } => write!(f, "issuer {issuer:?}: {reason}"),
            #[cfg(feature = "discovery")]
            Self::Discovery { issuer, source } => write!(f, "issuer {issuer:?}: {source}"),
            #[cfg(feature = "introspection")]
            Self::Introspection { source } => write!(f, "introspection: {source}"),
            #[cfg(feature = "rustls")]
            Self::Tls(source) => source.fmt(f),
            #[cfg(feature = "redis")]
            Self::Redis(source) => source.fmt(f),
            Self::Nonce(source) => source.fmt(f),
            Self::Proxy(source) => source.fmt(f),
            Self::InvalidResource { resource } => write!(
                f,
                "resource {resource:?} is not an absolute https URL without query or fragment (or a scope is invalid)"
            ),
            Self::InvalidScope { scope } => {
                write!(f, "scope {scope:?} is not an RFC 6749 scope-token")
            }
            Self::InvalidPath { path } => {
                write!(f, "path {path:?} is not an absolute path starting with '/'")
            }
            Self::Fapi2 { rule } => write!(f, "the FAPI 2.0 profile forbids this: {rule}"),
            Self::InvalidCorsOrigin { origin, reason } => {
                write!(
                    f,
                    "CORS origin {origin:?} is not a browser origin: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::UnreadableFile { source, .. } => Some(&**source),
            #[cfg(feature = "discovery")]
            Self::Discovery { source, .. } => Some(source),
            #[cfg(feature = "introspection")]
            Self::Introspection { source } => Some(source),
            #[cfg(feature = "rustls")]
            Self::Tls(source) => Some(&**source),
            #[cfg(feature = "redis")]
            Self::Redis(source) => Some(source),
            Self::Nonce(source) => Some(&**source),
            Self::Proxy(source) => Some(source),
            _ => None,
        }
    }
}

#[cfg(feature = "rustls")]
impl From<TlsConfigError> for ConfigError {
    fn from(source: TlsConfigError) -> Self {
        Self::Tls(Arc::new(source))
    }
}

#[cfg(feature = "redis")]
impl From<RedisConfigError> for ConfigError {
    fn from(source: RedisConfigError) -> Self {
        Self::Redis(source)
    }
}

impl From<NonceConfigError> for ConfigError {
    fn from(source: NonceConfigError) -> Self {
        Self::Nonce(Arc::new(source))
    }
}

impl From<ProxyConfigError> for ConfigError {
    fn from(source: ProxyConfigError) -> Self {
        Self::Proxy(source)
    }
}

#[cfg(any(feature = "discovery", feature = "introspection"))]
/// A setting of [`DiscoveryOptions`](crate::token::discovery::DiscoveryOptions) or
/// [`IntrospectionOptions`](crate::token::introspection::IntrospectionOptions) that cannot work. Each variant quotes the
/// input at fault, never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemoteConfigError {
    /// A URL that is not an absolute `https` URL without credentials, query or fragment (an
    /// issuer identifier, RFC 8414 §2), or a plain `http` URL without
    /// `insecure_allow_http_on_loopback` or on a host that is not loopback.
    InvalidUrl {
        /// What the URL is for (`issuer`, `introspection endpoint`).
        what: &'static str,
        /// The URL as given, without a password, its query and fragment cut to `?…`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The extra root CA is not PEM holding at least one certificate.
    InvalidRootCa {
        /// Why.
        reason: String,
    },
    /// A setting out of its range.
    InvalidSetting {
        /// The setter.
        setting: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// The HTTP client could not be built (TLS roots of the platform unusable, ...).
    Client {
        /// Why.
        reason: String,
    },
}

#[cfg(any(feature = "discovery", feature = "introspection"))]
impl fmt::Display for RemoteConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { what, url, reason } => write!(f, "{what} {url:?}: {reason}"),
            Self::InvalidRootCa { reason } => write!(f, "invalid root CA: {reason}"),
            Self::InvalidSetting { setting, reason } => write!(f, "{setting}: {reason}"),
            Self::Client { reason } => write!(f, "cannot build the HTTPS client: {reason}"),
        }
    }
}

#[cfg(any(feature = "discovery", feature = "introspection"))]
impl std::error::Error for RemoteConfigError {}

#[cfg(feature = "rustls")]
/// A problem with the TLS configuration; file problems quote the path. Never contains key
/// material.
#[non_exhaustive]
#[derive(Debug)]
pub enum TlsConfigError {
    /// No certificate chain was given.
    MissingCertChain,
    /// No private key was given.
    MissingPrivateKey,
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// PEM that does not parse, or holds no certificate where one was expected.
    InvalidCertificates {
        /// `certificate chain` or `client CA`.
        what: &'static str,
        /// The quoted path, or `inline PEM`.
        origin: String,
        /// Why.
        reason: String,
    },
    /// The private key PEM does not hold exactly one parseable private key.
    InvalidPrivateKey {
        /// The quoted path, or `inline PEM`.
        origin: String,
    },
    /// rustls refused the configuration (a key that does not match the certificate, an
    /// unsupported key type, a CA certificate unusable as a trust anchor).
    Rejected {
        /// rustls' reason.
        reason: String,
    },
}

#[cfg(feature = "rustls")]
impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingCertChain => f.write_str("no tls certificate chain configured"),
            Self::MissingPrivateKey => f.write_str("no tls private key configured"),
            Self::Read { path, source } => {
                write!(f, "cannot read {:?}: {source}", path.display().to_string())
            }
            Self::InvalidCertificates {
                what,
                origin,
                reason,
            } => write!(f, "invalid {what} in {origin}: {reason}"),
            Self::InvalidPrivateKey { origin } => write!(
                f,
                "{origin} does not hold exactly one PKCS#8, PKCS#1 or SEC1 private key"
            ),
            Self::Rejected { reason } => write!(f, "tls configuration refused: {reason}"),
        }
    }
}

#[cfg(feature = "rustls")]
impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(feature = "redis")]
/// Why a [`RedisReplayCache`](crate::replay::RedisReplayCache) could not be set up. Quotes the URL only with its credentials
/// removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// Not a Redis URL redis-rs accepts (`redis://`, `rediss://`, `redis+unix://`, `unix://`).
    InvalidUrl {
        /// The URL, credentials removed.
        url: String,
    },
    /// The URL turns off TLS certificate verification (`#insecure`).
    InsecureTls {
        /// The URL, credentials removed.
        url: String,
    },
    /// A CA was given for a URL that is not `rediss://`.
    CaWithoutTls {
        /// The URL, credentials removed.
        url: String,
    },
    /// The CA is not one or more PEM certificates.
    InvalidTlsCa,
    /// The timeout is zero.
    ZeroTimeout,
    /// `connect` was called outside a Tokio runtime.
    NoRuntime,
    /// The per-key quota or its window is zero (under one second).
    ZeroKeyQuota,
    /// A cluster was given no seed node, or seed nodes of different schemes.
    InvalidCluster,
    /// `wait_replicas` asks for no replica, more than 16, or a zero timeout.
    InvalidWait,
}

#[cfg(feature = "redis")]
impl fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url } => write!(f, "invalid redis url {url}"),
            Self::InsecureTls { url } => write!(
                f,
                "redis url {url} disables TLS certificate verification (#insecure)"
            ),
            Self::CaWithoutTls { url } => {
                write!(f, "a TLS CA was given for {url}, which does not use TLS")
            }
            Self::InvalidTlsCa => f.write_str("redis TLS CA is not a PEM certificate"),
            Self::ZeroTimeout => f.write_str("redis timeout must not be zero"),
            Self::NoRuntime => f.write_str("redis replay store needs a Tokio runtime"),
            Self::ZeroKeyQuota => {
                f.write_str("redis key quota and its window must be at least 1 (second)")
            }
            Self::InvalidCluster => f.write_str(
                "a redis cluster needs at least one seed node, all redis:// or all rediss://",
            ),
            Self::InvalidWait => f.write_str(
                "redis wait_replicas needs 1 to 16 replicas and a timeout of at least 1 ms",
            ),
        }
    }
}

#[cfg(feature = "redis")]
impl std::error::Error for RedisConfigError {}

/// A mistake in the nonce configuration. Never quotes a secret.
#[derive(Debug)]
#[non_exhaustive]
pub enum NonceConfigError {
    /// The secret is shorter than `min` bytes (an empty file reads as `len: 0`).
    SecretTooShort {
        /// Its length in bytes.
        len: usize,
        /// The minimum, [`MIN_SECRET_LEN`](crate::dpop::nonce::MIN_SECRET_LEN).
        min: usize,
    },
    /// The secret file could not be read.
    ReadSecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lifetime is outside 10 seconds ..= 24 hours.
    InvalidLifetime {
        /// The configured lifetime.
        lifetime: Duration,
    },
    /// The future skew is longer than the lifetime.
    InvalidFutureSkew {
        /// The configured skew.
        future_skew: Duration,
        /// The configured lifetime.
        lifetime: Duration,
    },
    /// The system random number generator failed.
    RandomUnavailable,
}

impl fmt::Display for NonceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretTooShort { len, min } => {
                write!(
                    f,
                    "nonce secret is {len} bytes, at least {min} are required"
                )
            }
            Self::ReadSecretFile { path, .. } => {
                write!(f, "cannot read nonce secret file {}", path.display())
            }
            Self::InvalidLifetime { lifetime } => write!(
                f,
                "nonce lifetime {lifetime:?} is outside {} s ..= {} s",
                NONCE_LIFETIME_SECS.start(),
                NONCE_LIFETIME_SECS.end()
            ),
            Self::InvalidFutureSkew {
                future_skew,
                lifetime,
            } => write!(
                f,
                "nonce future skew {future_skew:?} is longer than the lifetime {lifetime:?}"
            ),
            Self::RandomUnavailable => f.write_str("system random number generator failed"),
        }
    }
}

impl std::error::Error for NonceConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::ReadSecretFile { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A mistake in the trusted-proxy configuration; each variant quotes the offending input.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyConfigError {
    /// Not an IP network (`10.0.0.0/8`, `fd00::/8`) nor an IP address.
    InvalidNetwork {
        /// The string as given.
        input: String,
    },
    /// A network with bits set after its prefix (`10.0.0.1/8`): probably a typo for a host
    /// address or another prefix length, so refused rather than guessed.
    HostBitsSet {
        /// The string as given.
        input: String,
    },
    /// Not one of `rfc9440`, `xfcc`, `nginx`.
    UnknownHeader {
        /// The string as given.
        input: String,
    },
}

impl fmt::Display for ProxyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidNetwork { input } => {
                write!(f, "invalid trusted proxy network {input:?}")
            }
            Self::HostBitsSet { input } => write!(
                f,
                "trusted proxy network {input:?} has host bits set after its prefix"
            ),
            Self::UnknownHeader { input } => write!(
                f,
                "unknown client certificate header format {input:?} (expected rfc9440, xfcc or nginx)"
            ),
        }
    }
}

impl std::error::Error for ProxyConfigError {}
