//! Opaque access tokens, asked about at the authorization server (RFC 7662). Feature
//! `introspection`.
//!
//! A JWT access token is verified locally ([`looks_like_jwt`] tells them apart); any other
//! token is sent to the introspection endpoint, and the answer is held to the same rules as a
//! JWT's claims:
//!
//! - **The request** (RFC 7662 §2.1): `POST`, `application/x-www-form-urlencoded`, body
//!   `token=…&token_type_hint=access_token` and nothing else of the client's request: its DPoP
//!   proof and `Authorization` header never reach the authorization server (RFC 9449 §6.2
//!   leaves the binding check to us). The resource server authenticates with
//!   `client_secret_basic` (default): client id and secret are each form-urlencoded **before**
//!   base64 (RFC 6749 §2.3.1; RFC 9449 Figure 10's header skips that step, so it differs for
//!   secrets with `:` or `+`), or with `client_secret_post` (both in the body).
//! - **The answer** (RFC 7662 §2.2): only HTTP 200 with a JSON object counts, and only the JSON
//!   boolean `"active": true` means active: `false`, a missing member, `"true"` or `1` are
//!   inactive. An active answer is still checked: `iss` equals the configured issuer and `aud`
//!   contains the configured audience when the answer has them (RFC 7662 §4: the server may
//!   answer for tokens meant for others), `exp`/`nbf` with the configured leeway,
//!   member types (`scope`, `client_id`, `sub`, ... strings), and `cnf` read exactly as for a JWT
//!   (RFC 9449 §6.2, RFC 8705 §3.2), so `cnf.jkt` and `cnf["x5t#S256"]` bind the token the same
//!   way. A `token_type` of `DPoP` without `cnf.jkt` is inconsistent and refused, never taken
//!   for a bearer token.
//! - **Failures are ours**: the server unreachable or slow (timeout, default 5 s),
//!   a status other than 200 (401/403 mean it refused *our* credentials, logged at `error`),
//!   a redirect (never followed), a body over [`MAX_RESPONSE_BYTES`] or not JSON:
//!   [`IntrospectionError::Unavailable`], which the verifier answers with 503 and
//!   `Retry-After`, never 401 and never 200. Failures are logged once when they start, then at
//!   most every 10 s with a count, and once when the server answers again: a flood of tokens
//!   cannot multiply log lines.
//! - **Cache** (RFC 7662 §4 trades revocation latency for load): active results are cached,
//!   keyed by the token itself as the token cache is (crate docs), bounded by count ([`IntrospectionOptions::cache_capacity`],
//!   default 10,000) and bytes ([`IntrospectionOptions::cache_bytes`], default 16 MiB), evicting
//!   (S3-FIFO: results read once are evicted before reused ones), and each entry lives at most
//!   [`IntrospectionOptions::cache_ttl`] (default 60 s) and never past the token's `exp`. So a
//!   revoked token keeps working for at most the TTL. **Inactive answers** are remembered apart,
//!   by the token's SHA-256, for [`IntrospectionOptions::negative_cache_ttl`] (default 30 s),
//!   at most [`IntrospectionOptions::negative_cache_capacity`] of them (10,000, oldest out
//!   first), so they never compete with active ones: a client retrying a revoked token costs
//!   one call per 30 s.
//! - **A flood cannot starve honest users.** Random opaque tokens each cost a call, so calls
//!   are bounded three ways: at most [`IntrospectionOptions::max_concurrent`] in flight
//!   (default 32); a request waits at most [`IntrospectionOptions::permit_wait`] (default
//!   500 ms) for a free slot, then gets 503 with `Retry-After`; and the requests of one peer
//!   (the TCP peer's IPv4 address or IPv6 /64) hold at most
//!   [`IntrospectionOptions::max_concurrent_per_peer`] slots, waiting or in flight (default a
//!   quarter: 8), past which they get 503 at once. So one client flooding tokens leaves three
//!   quarters of the slots to everyone else. Behind a proxy every client is the proxy: raise
//!   the share and limit per client at the proxy.
//! - The client secret never appears in `Debug` or a log line; no token is ever logged.
//!
//! ## Example
//!
//! ```
//! use tower_pop::introspection::{IntrospectionOptions, Introspector, looks_like_jwt};
//!
//! let introspector = Introspector::new(
//!     IntrospectionOptions::new("https://as.example/introspect", "rs", "s3cr3t:+")
//!         .issuer("https://as.example")
//!         .audience("https://api.example"),
//! )
//! .expect("an https endpoint");
//! assert!(!format!("{introspector:?}").contains("s3cr3t"));
//!
//! // RFC 9449 Figure 10's opaque token goes to the endpoint; a JWS is verified locally.
//! assert!(!looks_like_jwt("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"));
//! assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"));
//!
//! assert!(Introspector::new(IntrospectionOptions::new("http://as.example/i", "rs", "x")).is_err());
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::Url;
use serde_json::{Map, Value};

mod admission;
mod negative;

use std::net::IpAddr;

use self::admission::{Admission, Refused};
use self::negative::NegativeCache;
use super::cache::{CacheLimits, TokenCache};
use super::http::{HttpClient, HttpSettings, check_url, http_setters, redacted};
use super::{Confirmation, TokenInfo, confirmation};
use crate::clock::{Clock, SystemClock};
use crate::credentials::MAX_TOKEN_LEN;
use crate::error::PopErrorKind;
use crate::jose::digest::sha256;
use crate::jose::json::parse_json_object;
use crate::jose::{b64url_decode, numeric_date};
use crate::observe::failure_log::FailureLog;

pub use crate::error::RemoteConfigError;

/// Largest introspection response accepted, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
// 0.1 paths of the introspection defaults, which live in `crate::defaults`.
#[doc(hidden)]
pub use crate::defaults::{
    INTROSPECTION_CACHE_CAPACITY as DEFAULT_CACHE_CAPACITY,
    INTROSPECTION_CACHE_TTL as DEFAULT_CACHE_TTL,
    INTROSPECTION_MAX_CONCURRENT as DEFAULT_MAX_CONCURRENT,
};
const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Whether `token` is a JWT to verify locally: three dot-separated base64url segments whose
/// first decodes to a JSON object with a string `alg` (RFC 7515 §7.1, §4.1.1). Anything else
/// (RFC 9449 Figure 10's `Kz~8…`, JWE, random strings) is opaque: introspect it.
#[must_use]
pub fn looks_like_jwt(token: &str) -> bool {
    let segments: Vec<&str> = token.splitn(4, '.').collect();
    let [header, payload, signature] = segments[..] else {
        return false;
    };
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if header.is_empty()
        || payload.is_empty()
        || ![header, payload, signature]
            .map(base64url)
            .iter()
            .all(|ok| *ok)
    {
        return false;
    }
    b64url_decode(header)
        .and_then(|h| parse_json_object(&h))
        .is_some_and(|h| h.get("alg").is_some_and(Value::is_string))
}

/// How the resource server authenticates to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (the default; RFC 6749 §2.3.1 says
    /// servers must support it).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
}

/// A secret that `Debug` does not print.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// An endpoint URL that `Debug` shows without a password or query.
#[derive(Clone)]
struct Endpoint(String);

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.0))
    }
}

/// Where and how to introspect; every default is the documented one. `Debug` shows neither the
/// client secret nor the endpoint's query.
#[derive(Clone, Debug)]
#[must_use]
pub struct IntrospectionOptions {
    endpoint: Endpoint,
    client_id: String,
    client_secret: Secret,
    auth_method: ClientAuthMethod,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    cache_ttl: Duration,
    cache_capacity: usize,
    cache_bytes: u64,
    max_concurrent: usize,
    max_concurrent_per_peer: Option<usize>,
    permit_wait: Duration,
    negative_cache_ttl: Duration,
    negative_cache_capacity: usize,
    recheck_every: Option<Duration>,
    http: HttpSettings,
    clock: Arc<dyn Clock>,
}

impl IntrospectionOptions {
    /// The endpoint (an `https` URL) and this resource server's client credentials there.
    pub fn new(
        endpoint: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: Endpoint(endpoint.into()),
            client_id: client_id.into(),
            client_secret: Secret(client_secret.into()),
            auth_method: ClientAuthMethod::default(),
            issuer: None,
            audience: None,
            leeway: crate::defaults::TOKEN_LEEWAY,
            cache_ttl: crate::defaults::INTROSPECTION_CACHE_TTL,
            cache_capacity: crate::defaults::INTROSPECTION_CACHE_CAPACITY,
            cache_bytes: crate::defaults::TOKEN_CACHE_BYTES,
            max_concurrent: crate::defaults::INTROSPECTION_MAX_CONCURRENT,
            max_concurrent_per_peer: None,
            permit_wait: crate::defaults::INTROSPECTION_PERMIT_WAIT,
            negative_cache_ttl: crate::defaults::INTROSPECTION_NEGATIVE_TTL,
            negative_cache_capacity: crate::defaults::INTROSPECTION_NEGATIVE_CAPACITY,
            recheck_every: None,
            http: HttpSettings::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// How to send the credentials (default `client_secret_basic`).
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// The `iss` an answer must carry when it has one (exact match). Default: not checked;
    /// set it (the verifier passes its configured issuer).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The audience an answer's `aud` (string or array) must contain when it has one. Default:
    /// not checked; set it (the verifier passes its configured audience).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Clock leeway for `exp` and `nbf` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest time an active result is cached (default 60 s; never past the token's `exp`;
    /// zero disables the cache). Revocation takes effect within this time.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Most cached results (default 10,000; zero disables the cache). A full cache evicts,
    /// results read only once first.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Most bytes of cached results, by an estimate of their heap size (default 16 MiB,
    /// [`TOKEN_CACHE_BYTES`](crate::defaults::TOKEN_CACHE_BYTES); zero disables the cache).
    pub fn cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Most introspection calls in flight at once (default
    /// [`INTROSPECTION_MAX_CONCURRENT`](crate::defaults::INTROSPECTION_MAX_CONCURRENT), 32; at
    /// least 1); more wait for a free slot within [`permit_wait`](Self::permit_wait).
    pub fn max_concurrent(mut self, calls: usize) -> Self {
        self.max_concurrent = calls;
        self
    }

    /// Most slots the requests of one peer (the TCP peer's IPv4 address or IPv6 /64) hold,
    /// waiting or in flight; its further requests needing a call get 503 with `Retry-After` at
    /// once. Default: a quarter of [`max_concurrent`](Self::max_concurrent)
    /// ([`INTROSPECTION_PEER_SHARE_DIVISOR`](crate::defaults::INTROSPECTION_PEER_SHARE_DIVISOR)),
    /// at least 1. Requests whose peer is unknown are not counted per peer. Behind a proxy,
    /// where every client is the proxy, set it to `max_concurrent`.
    pub fn max_concurrent_per_peer(mut self, calls: usize) -> Self {
        self.max_concurrent_per_peer = Some(calls);
        self
    }

    /// Longest wait for a free slot when all are busy; then the request gets 503 with
    /// `Retry-After`. Default
    /// [`INTROSPECTION_PERMIT_WAIT`](crate::defaults::INTROSPECTION_PERMIT_WAIT), 500 ms; at
    /// most the call timeout.
    pub fn permit_wait(mut self, wait: Duration) -> Self {
        self.permit_wait = wait;
        self
    }

    /// How long an inactive answer is remembered (default
    /// [`INTROSPECTION_NEGATIVE_TTL`](crate::defaults::INTROSPECTION_NEGATIVE_TTL), 30 s; zero
    /// remembers none).
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// Most inactive answers remembered, oldest out first (default
    /// [`INTROSPECTION_NEGATIVE_CAPACITY`](crate::defaults::INTROSPECTION_NEGATIVE_CAPACITY),
    /// 10,000; zero remembers none).
    pub fn negative_cache_capacity(mut self, entries: usize) -> Self {
        self.negative_cache_capacity = entries;
        self
    }

    http_setters!();

    /// Ask again every `interval` whether a token that opened a long-lived stream is still
    /// active (default: never; at least 1 s). Introspection is how an authorization server
    /// tells a resource server that a token was revoked (RFC 7662 §2.2, RFC 7009): a stream
    /// judged once, when it opened, would otherwise outlive a revocation until `exp`. Each
    /// stream's [`Lifetime`](crate::lifetime::Lifetime) (feature `lifetime`) then ends when an
    /// answer is no longer active or cannot be had in three attempts (fail closed). Each
    /// recheck is one call; all rechecks together hold at most one peer's share of the call
    /// slots, so many streams cannot starve the requests' calls.
    pub fn recheck_every(mut self, interval: Duration) -> Self {
        self.recheck_every = Some(interval);
        self
    }

    /// The clock for `exp`/`nbf` and the cache (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// Why an opaque token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The answer is not `"active": true` (RFC 7662 §2.2): 401 `invalid_token`.
    Inactive,
    /// Active, but for another issuer or audience, expired, not yet valid, with a
    /// malformed member or `cnf`, or too long to send: 401 `invalid_token`.
    TokenInvalid,
    /// `cnf` names only confirmation methods this server cannot check (RFC 7800 §3.1): never
    /// treated as a bearer token.
    UnsupportedBinding,
    /// The authorization server failed us (unreachable, timeout, non-200, non-JSON, our
    /// credentials refused): a server fault, 503.
    Unavailable,
}

impl IntrospectionError {
    /// Whether the fault is the server's side (the authorization server), not the client's.
    #[must_use]
    pub fn is_server_fault(self) -> bool {
        self == Self::Unavailable
    }
}

impl fmt::Display for IntrospectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Inactive => "token is not active",
            Self::TokenInvalid => "introspected token failed validation",
            Self::UnsupportedBinding => "unsupported token confirmation method",
            Self::Unavailable => "introspection endpoint unavailable",
        })
    }
}

impl std::error::Error for IntrospectionError {}

/// An active token as the authorization server described it, checked.
#[derive(Clone)]
pub struct IntrospectedToken(Arc<TokenInfo>);

impl IntrospectedToken {
    /// The introspection response members (`active`, `sub`, `scope`, `cnf`, ...).
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        &self.0.claims
    }

    /// `cnf.jkt`: the token is DPoP-bound to this key thumbprint (RFC 9449 §6.2).
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.0.confirmation.jkt.as_deref()
    }

    /// `cnf["x5t#S256"]`: the token is bound to this certificate (RFC 8705 §3.2).
    #[must_use]
    pub fn x5t_s256(&self) -> Option<&str> {
        self.0.confirmation.x5t_s256.as_deref()
    }
}

impl fmt::Debug for IntrospectedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IntrospectedToken").field(&self.0).finish()
    }
}

/// An RFC 7662 client with a bounded cache; share one per endpoint (`Arc`).
pub struct Introspector {
    endpoint: Url,
    /// The endpoint as logs and `Debug` show it: no password, no query.
    shown: String,
    client_id: String,
    auth_method: ClientAuthMethod,
    /// `Authorization` for `client_secret_basic` (marked sensitive).
    headers: HeaderMap,
    /// `&client_id=…&client_secret=…` for `client_secret_post`.
    body_credentials: Secret,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
    cache_ttl: u64,
    cache: TokenCache,
    negative: NegativeCache,
    admission: Admission,
    client: HttpClient,
    clock: Arc<dyn Clock>,
    /// Calls that failed (the server's fault or too busy), logged once per burst.
    failures: FailureLog,
    /// Our credentials refused (401/403), logged once per burst.
    refusals: FailureLog,
    /// Peers over their share, logged once per burst.
    over_share: FailureLog,
    /// [`IntrospectionOptions::recheck_every`].
    recheck_every: Option<Duration>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.shown)
            .field("client_id", &self.client_id)
            .field("auth_method", &self.auth_method)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// The application/x-www-form-urlencoded form of one value (RFC 6749 Appendix B).
fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// RFC 6749 §2.3.1: `Basic base64(form(id) ":" form(secret))`.
fn basic_credentials(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(pair))
}

type Claims = Map<String, Value>;

fn check(ok: bool) -> Result<(), IntrospectionError> {
    if ok {
        Ok(())
    } else {
        Err(IntrospectionError::TokenInvalid)
    }
}

fn numeric(claims: &Claims, name: &str) -> Result<Option<u64>, IntrospectionError> {
    claims
        .get(name)
        .map(|v| numeric_date(v).ok_or(IntrospectionError::TokenInvalid))
        .transpose()
}

/// RFC 7662 §2.2: active only when `active` is the JSON boolean `true`.
fn check_active(claims: &Claims) -> Result<(), IntrospectionError> {
    if claims.get("active") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err(IntrospectionError::Inactive)
    }
}

/// RFC 7662 §2.2 `iss`, when present, is the configured issuer exactly.
fn check_iss(claims: &Claims, issuer: Option<&str>) -> Result<(), IntrospectionError> {
    match (claims.get("iss"), issuer) {
        (None, _) => Ok(()),
        (Some(Value::String(iss)), Some(issuer)) => check(iss == issuer),
        (Some(Value::String(_)), None) => Ok(()),
        (Some(_), _) => Err(IntrospectionError::TokenInvalid),
    }
}

/// RFC 7662 §2.2, RFC 7519 §4.1.3: `aud`, when present, is ours or an array holding ours.
fn check_aud(claims: &Claims, audience: Option<&str>) -> Result<(), IntrospectionError> {
    let auds: Vec<&str> = match claims.get("aud") {
        None => return Ok(()),
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds
            .iter()
            .map(|a| a.as_str().ok_or(IntrospectionError::TokenInvalid))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(IntrospectionError::TokenInvalid),
    };
    audience.map_or(Ok(()), |audience| check(auds.contains(&audience)))
}

/// `exp`, when present, has not passed (with leeway): as for a JWT, the token is refused from
/// `exp + leeway` on (RFC 7519 §4.1.4: "on or after which"); returns that first instant of
/// invalidity (`u64::MAX` without `exp`).
fn check_exp(claims: &Claims, now: u64, leeway: u64) -> Result<u64, IntrospectionError> {
    let Some(exp) = numeric(claims, "exp")? else {
        return Ok(u64::MAX);
    };
    let valid_until = exp.saturating_add(leeway);
    check(now < valid_until)?;
    Ok(valid_until)
}

/// `nbf`, when present, has been reached (with leeway).
fn check_nbf(claims: &Claims, now: u64, leeway: u64) -> Result<u64, IntrospectionError> {
    let not_before = numeric(claims, "nbf")?.map_or(0, |nbf| nbf.saturating_sub(leeway));
    check(now >= not_before)?;
    Ok(not_before)
}

/// RFC 7662 §2.2 member types: `scope`, `client_id`, `username`, `token_type`, `sub`, `jti`
/// strings and `iat` a NumericDate when present.
fn check_member_types(claims: &Claims) -> Result<(), IntrospectionError> {
    numeric(claims, "iat")?;
    for name in ["scope", "client_id", "username", "token_type", "sub", "jti"] {
        check(matches!(claims.get(name), None | Some(Value::String(_))))?;
    }
    Ok(())
}

/// RFC 9449 §6.2, RFC 8705 §3.2: `cnf` as for a JWT; a `token_type` of `DPoP` needs `cnf.jkt`.
fn check_confirmation(claims: &Claims) -> Result<Confirmation, IntrospectionError> {
    let confirmation = confirmation(claims).map_err(|kind| match kind {
        PopErrorKind::UnsupportedBinding => IntrospectionError::UnsupportedBinding,
        _ => IntrospectionError::TokenInvalid,
    })?;
    let dpop_type = claims
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("DPoP"));
    check(!dpop_type || confirmation.jkt.is_some())?;
    Ok(confirmation)
}

/// The peer rechecks are counted as: `::`, never a TCP peer's address.
const RECHECK_PEER: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl Introspector {
    /// A client for `options`' endpoint.
    ///
    /// # Errors
    ///
    /// The endpoint is not an `https` URL, the client id is empty, a setting is out of range,
    /// or the root CA is unusable.
    pub fn new(options: IntrospectionOptions) -> Result<Self, RemoteConfigError> {
        let endpoint = check_url(
            &options.endpoint.0,
            options.http.insecure_allow_http_on_loopback,
            true,
        )
        .map_err(|reason| RemoteConfigError::InvalidUrl {
            what: "introspection endpoint",
            url: redacted(&options.endpoint.0),
            reason,
        })?;
        let invalid = |setting, reason| Err(RemoteConfigError::InvalidSetting { setting, reason });
        if options.client_id.is_empty() {
            return invalid("client_id", "must not be empty");
        }
        if options.leeway > MAX_LEEWAY {
            return invalid("leeway", "must not exceed 5 minutes");
        }
        if options.max_concurrent == 0 {
            return invalid("max_concurrent", "must be at least 1");
        }
        if options.max_concurrent_per_peer == Some(0) {
            return invalid("max_concurrent_per_peer", "must be at least 1");
        }
        if options
            .recheck_every
            .is_some_and(|every| every < Duration::from_secs(1))
        {
            return invalid("recheck_every", "must be at least 1 second");
        }
        let timeout = options
            .http
            .timeout
            .unwrap_or(crate::defaults::HTTP_TIMEOUT);
        if options.permit_wait > timeout {
            return invalid("permit_wait", "must not exceed the call timeout");
        }
        let secret = &options.client_secret.0;
        let mut headers = HeaderMap::new();
        let mut body_credentials = String::new();
        match options.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                let Ok(mut value) =
                    HeaderValue::from_str(&basic_credentials(&options.client_id, secret))
                else {
                    return invalid("client_secret", "cannot be sent in a header");
                };
                value.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, value);
            }
            ClientAuthMethod::ClientSecretPost => {
                body_credentials = format!(
                    "&client_id={}&client_secret={}",
                    form_encode(&options.client_id),
                    form_encode(secret)
                );
            }
        }
        let client = HttpClient::new(&HttpSettings {
            follow_redirects: false,
            ..options.http.clone()
        })?;
        Ok(Self {
            shown: redacted(endpoint.as_str()),
            endpoint,
            client_id: options.client_id,
            auth_method: options.auth_method,
            headers,
            body_credentials: Secret(body_credentials),
            issuer: options.issuer,
            audience: options.audience,
            leeway: options.leeway.as_secs(),
            cache_ttl: options.cache_ttl.as_secs(),
            cache: TokenCache::new(CacheLimits {
                entries: options.cache_capacity,
                bytes: options.cache_bytes,
                max_age: options.cache_ttl.as_secs(),
            }),
            negative: NegativeCache::new(
                options.negative_cache_ttl.as_secs(),
                options.negative_cache_capacity,
            ),
            admission: Admission::new(
                options.max_concurrent,
                options.permit_wait,
                options.max_concurrent_per_peer.unwrap_or(
                    options.max_concurrent / crate::defaults::INTROSPECTION_PEER_SHARE_DIVISOR,
                ),
            ),
            client,
            clock: options.clock,
            failures: FailureLog::default(),
            refusals: FailureLog::default(),
            over_share: FailureLog::default(),
            recheck_every: options.recheck_every,
        })
    }

    /// [`IntrospectionOptions::recheck_every`].
    #[must_use]
    pub fn recheck_every(&self) -> Option<Duration> {
        self.recheck_every
    }

    /// Whether `token` is still active, asked now, past the cache (a stream's recheck). A token
    /// no longer active leaves the cache and is remembered as inactive, so requests that carry
    /// it are refused from now on too. All rechecks together hold at most one peer's share of
    /// the call slots ([`IntrospectionOptions::max_concurrent_per_peer`]).
    ///
    /// # Errors
    /// [`IntrospectionError::Unavailable`] when no answer could be had.
    pub async fn still_active(&self, token: &str) -> Result<bool, IntrospectionError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(false);
        }
        let now = self.clock.now_unix();
        // All rechecks count as one peer: together they hold at most a peer's share of the
        // call slots, so many streams cannot starve the requests' calls.
        let claims = self.call(token, now, Some(RECHECK_PEER)).await?;
        let token_hash = sha256(token.as_bytes());
        match self.evaluate(claims, token_hash, now) {
            Ok(_) => Ok(true),
            Err(IntrospectionError::Unavailable) => Err(IntrospectionError::Unavailable),
            Err(_) => {
                self.cache.remove(token.as_bytes());
                self.negative.insert(token_hash, now);
                Ok(false)
            }
        }
    }

    /// Introspect `token` now (by the configured clock), from the cache when possible.
    ///
    /// # Errors
    ///
    /// See [`IntrospectionError`]; only [`IntrospectionError::Unavailable`] is a server fault.
    pub async fn introspect(&self, token: &str) -> Result<IntrospectedToken, IntrospectionError> {
        self.introspect_for(token, None).await
    }

    /// [`introspect`](Self::introspect) for a request from `peer`, whose requests hold at most
    /// [their share](IntrospectionOptions::max_concurrent_per_peer) of the call slots.
    ///
    /// # Errors
    ///
    /// See [`IntrospectionError`]; only [`IntrospectionError::Unavailable`] is a server fault.
    pub async fn introspect_for(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<IntrospectedToken, IntrospectionError> {
        let now = self.clock.now_unix();
        self.token_info(token, now, peer)
            .await
            .map(IntrospectedToken)
    }

    /// The verifier's entry point: `token` (not a JWT) checked at `now` for a request from
    /// `peer`, as a [`TokenInfo`] for the binding logic.
    pub(crate) async fn token_info(
        &self,
        token: &str,
        now: u64,
        peer: Option<IpAddr>,
    ) -> Result<Arc<TokenInfo>, IntrospectionError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(IntrospectionError::TokenInvalid);
        }
        // Served only before the entry's expiry (`exp`, the TTL); the window rechecked too.
        if let Some(info) = self.cache.get(token.as_bytes(), now) {
            check(now >= info.not_before && now < info.valid_until)?;
            return Ok(info);
        }
        let token_hash = sha256(token.as_bytes());
        if self.negative.contains(&token_hash, now) {
            return Err(IntrospectionError::Inactive);
        }
        let claims = self.call(token, now, peer).await?;
        if let Err(IntrospectionError::Inactive) = check_active(&claims) {
            self.negative.insert(token_hash, now);
        }
        let info = Arc::new(self.evaluate(claims, token_hash, now)?);
        if self.cache_ttl > 0 {
            // Never past `exp` itself, whatever the leeway, nor past the TTL (the cache's
            // maximum age); a full cache evicts.
            let exp = numeric(&info.claims, "exp")
                .ok()
                .flatten()
                .unwrap_or(u64::MAX);
            self.cache
                .insert(token.as_bytes(), Arc::clone(&info), exp, now);
        }
        Ok(info)
    }

    /// The checks of an active answer, in order.
    fn evaluate(
        &self,
        claims: Claims,
        token_hash: [u8; 32],
        now: u64,
    ) -> Result<TokenInfo, IntrospectionError> {
        check_active(&claims)?;
        check_iss(&claims, self.issuer.as_deref())?;
        check_aud(&claims, self.audience.as_deref())?;
        let valid_until = check_exp(&claims, now, self.leeway)?;
        let not_before = check_nbf(&claims, now, self.leeway)?;
        check_member_types(&claims)?;
        let confirmation = check_confirmation(&claims)?;
        Ok(TokenInfo {
            claims: Arc::new(claims),
            confirmation,
            valid_until,
            not_before,
            token_hash,
        })
    }

    /// RFC 7662 §2.1: POST the token; the answer as a JSON object, or `Unavailable`.
    async fn call(
        &self,
        token: &str,
        now: u64,
        peer: Option<IpAddr>,
    ) -> Result<Claims, IntrospectionError> {
        let _pass = match self.admission.enter(peer).await {
            Ok(pass) => pass,
            Err(Refused::PeerOverShare) => {
                if let Some(refused) = self.over_share.failed(now) {
                    tracing::warn!(
                        target: crate::observe::INTROSPECTION,
                        peer = ?peer,
                        refused,
                        "a peer holds its share of introspection calls; refusing its further opaque tokens"
                    );
                }
                return Err(IntrospectionError::Unavailable);
            }
            Err(Refused::Busy) => return Err(self.failed(now, &"every call slot busy")),
        };
        let body = format!(
            "token={}&token_type_hint=access_token{}",
            form_encode(token),
            self.body_credentials.0
        );
        let response = self
            .client
            .post_form(
                self.endpoint.clone(),
                self.headers.clone(),
                body,
                MAX_RESPONSE_BYTES,
            )
            .await
            .map_err(|e| self.failed(now, &e))?;
        match response.status {
            StatusCode::OK => {}
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                if let Some(failures) = self.refusals.failed(now) {
                    tracing::error!(
                        target: crate::observe::INTROSPECTION,
                        endpoint = %self.shown,
                        client_id = %self.client_id,
                        status = status.as_u16(),
                        failures,
                        "introspection endpoint refused our client credentials"
                    );
                }
                return Err(IntrospectionError::Unavailable);
            }
            status => return Err(self.failed(now, &format_args!("http status {status}"))),
        }
        let claims = parse_json_object(&response.body)
            .ok_or_else(|| self.failed(now, &"answer is not a JSON object"))?;
        self.answered();
        Ok(claims)
    }

    /// A failed call: logged once per burst, then every 10 s with a count.
    fn failed(&self, now: u64, what: &dyn fmt::Display) -> IntrospectionError {
        if let Some(failures) = self.failures.failed(now) {
            tracing::warn!(
                target: crate::observe::INTROSPECTION,
                endpoint = %self.shown,
                failures,
                "introspection failing: {what}"
            );
        }
        IntrospectionError::Unavailable
    }

    /// A call answered: the end of a burst of failures is logged once.
    fn answered(&self) {
        if let Some(unlogged) = self.failures.succeeded() {
            tracing::info!(
                target: crate::observe::INTROSPECTION,
                endpoint = %self.shown,
                unlogged_failures = unlogged,
                "introspection answering again"
            );
        }
        if let Some(unlogged) = self.refusals.succeeded() {
            tracing::info!(
                target: crate::observe::INTROSPECTION,
                endpoint = %self.shown,
                unlogged_failures = unlogged,
                "introspection endpoint accepts our client credentials again"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    const NOW: u64 = 1_562_262_618;

    fn introspector() -> Introspector {
        Introspector::new(
            IntrospectionOptions::new("https://server.example.com/introspect", "rs", "secret")
                .issuer("https://server.example.com")
                .audience("https://resource.example.org")
                .leeway(Duration::ZERO),
        )
        .expect("options")
    }

    fn eval(answer: Value) -> Result<TokenInfo, IntrospectionError> {
        let Value::Object(claims) = answer else {
            panic!("object")
        };
        introspector().evaluate(claims, [0; 32], NOW)
    }

    /// RFC 9449 Figure 11, with our audience.
    fn figure_11() -> Value {
        json!({"active":true,"sub":"someone@example.com","iss":"https://server.example.com",
            "nbf":1_562_262_611,"exp":1_562_266_216,"cnf":{"jkt":JKT}})
    }

    fn with(mut base: Value, member: &str, value: Value) -> Value {
        if value.is_null() {
            base.as_object_mut().expect("object").remove(member);
        } else {
            base[member] = value;
        }
        base
    }

    #[test]
    fn only_json_true_is_active_intro_02() {
        let info = eval(figure_11()).expect("active");
        assert_eq!(info.confirmation.jkt.as_deref(), Some(JKT));
        assert_eq!(info.valid_until, 1_562_266_216);
        for active in [
            json!(false),
            Value::Null,
            json!("true"),
            json!(1),
            json!([true]),
        ] {
            assert_eq!(
                eval(with(figure_11(), "active", active.clone())).map(|_| ()),
                Err(IntrospectionError::Inactive),
                "{active}"
            );
        }
    }

    #[test]
    fn active_answers_are_still_checked_intro_03() {
        let bad = [
            ("iss", json!("https://other.example")),
            ("iss", json!(["https://server.example.com"])),
            ("aud", json!("https://other.example")),
            ("aud", json!(["https://other.example", 7])),
            ("exp", json!(NOW - 1)),
            // `exp` itself is the first instant of invalidity, as for a JWT.
            ("exp", json!(NOW)),
            ("exp", json!("soon")),
            ("nbf", json!(NOW + 600)),
            ("scope", json!(["read"])),
            ("sub", json!(1)),
            ("cnf", json!({"jkt": "short"})),
        ];
        for (member, value) in bad {
            assert_eq!(
                eval(with(figure_11(), member, value.clone())).map(|_| ()),
                Err(IntrospectionError::TokenInvalid),
                "{member}: {value}"
            );
        }
        let ok = [
            (
                "aud",
                json!(["https://other.example", "https://resource.example.org"]),
            ),
            ("aud", json!("https://resource.example.org")),
            ("iss", Value::Null),
            ("exp", Value::Null),
            ("scope", json!("read write")),
        ];
        for (member, value) in ok {
            assert!(
                eval(with(figure_11(), member, value.clone())).is_ok(),
                "{member}: {value}"
            );
        }
        assert_eq!(
            eval(with(figure_11(), "cnf", json!({"kid": "x"}))).map(|_| ()),
            Err(IntrospectionError::UnsupportedBinding)
        );
    }

    #[test]
    fn dpop_token_type_without_jkt_is_refused_dpop_25() {
        let answer = with(figure_11(), "token_type", json!("DPoP"));
        assert!(eval(answer.clone()).is_ok());
        assert_eq!(
            eval(with(answer, "cnf", Value::Null)).map(|_| ()),
            Err(IntrospectionError::TokenInvalid)
        );
        // `Bearer` with cnf.jkt: the binding wins, the verifier refuses it as bearer.
        let bearer = with(figure_11(), "token_type", json!("Bearer"));
        assert!(eval(bearer).expect("active").confirmation.jkt.is_some());
    }

    #[test]
    fn basic_credentials_are_form_encoded_first_rfc6749_2_3_1() {
        // RFC 9449 Figure 10 sends id `rs` and secret `rs:Mku-6g_lCzKIdz4fsN7kYcya+Ti` without
        // the encoding step: `cnM6cnM6TWt1LTZnX2xDektJZHo0ZnNON2tZY3lhK1Rp`.
        let ours = basic_credentials("rs", "rs:Mku-6g_lCzKIdz4fsN7kYcya+Ti");
        let decoded = STANDARD
            .decode(ours.strip_prefix("Basic ").expect("basic"))
            .expect("base64");
        assert_eq!(decoded, b"rs:rs%3AMku-6g_lCzKIdz4fsN7kYcya%2BTi");
        assert_ne!(ours, "Basic cnM6cnM6TWt1LTZnX2xDektJZHo0ZnNON2tZY3lhK1Rp");
        assert_eq!(form_encode("a b/é"), "a+b%2F%C3%A9");
    }

    #[test]
    fn jwts_and_opaque_tokens_are_told_apart() {
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.e30.c2ln"));
        // An unsecured JWS still looks like a JWT (and is refused by the validator).
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.e30."));
        for opaque in [
            "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU",
            "2YotnFZFEjr1zCsicMWpAA",
            "e30.e30.c2ln",                      // header without alg
            "eyJhbGciOjF9.e30.c2ln",             // alg not a string
            "eyJhbGciOiJFUzI1NiJ9.e30.c2ln.x.y", // five parts (JWE)
            "eyJhbGciOiJFUzI1NiJ9..c2ln",
            "eyJhbGciOiJFUzI1NiJ9.e30=.c2ln",
            "",
        ] {
            assert!(!looks_like_jwt(opaque), "{opaque}");
        }
    }

    #[test]
    fn options_and_introspector_never_print_the_endpoint_query_or_a_password() {
        let options =
            IntrospectionOptions::new("https://u:pw@as.example/i?api_key=abc123", "rs", "s");
        let printed = format!("{options:?}");
        assert!(
            !printed.contains("abc123") && !printed.contains("pw@"),
            "{printed}"
        );
        let error = Introspector::new(options).map(|_| ()).unwrap_err();
        assert!(!error.to_string().contains("pw@"), "{error}");
        let introspector = Introspector::new(IntrospectionOptions::new(
            "https://as.example/i?api_key=abc123",
            "rs",
            "s",
        ))
        .expect("a query is allowed");
        let printed = format!("{introspector:?}");
        assert!(printed.contains("https://as.example/i?…"), "{printed}");
        assert!(!printed.contains("abc123"), "{printed}");
    }

    #[test]
    fn options_and_introspector_never_print_the_secret() {
        let options = IntrospectionOptions::new("https://as.example/i", "rs", "hunter2")
            .auth_method(ClientAuthMethod::ClientSecretPost);
        assert!(!format!("{options:?}").contains("hunter2"));
        let introspector = Introspector::new(options).expect("ok");
        assert!(!format!("{introspector:?}").contains("hunter2"));
        let basic = Introspector::new(IntrospectionOptions::new(
            "https://as.example/i",
            "rs",
            "hunter2",
        ))
        .expect("ok");
        let printed = format!("{basic:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("aHVudGVyMg"),
            "{printed}"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let new = |o| Introspector::new(o).map(|_| ());
        assert!(new(IntrospectionOptions::new("https://as.example/i", "", "s")).is_err());
        assert!(
            new(IntrospectionOptions::new("https://as.example/i", "rs", "s").max_concurrent(0))
                .is_err()
        );
        assert!(
            new(IntrospectionOptions::new("https://as.example/i", "rs", "s")
                .leeway(Duration::from_secs(301)))
            .is_err()
        );
        assert!(
            new(IntrospectionOptions::new(
                "https://as.example/i#f",
                "rs",
                "s"
            ))
            .is_err()
        );
        assert!(new(IntrospectionOptions::new("http://127.0.0.1:1/i", "rs", "s")).is_err());
        assert!(
            new(IntrospectionOptions::new("http://127.0.0.1:1/i", "rs", "s")
                .insecure_allow_http_on_loopback())
            .is_ok()
        );
    }
}
