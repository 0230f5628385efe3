//! # tower-pop
//!
//! Stop stolen OAuth access tokens from working. A bearer token is cash: whoever holds it spends
//! it. A **sender-constrained** token names a key its client holds, and every request must prove
//! possession of that key. This crate is the resource-server side:
//!
//! - **DPoP** (RFC 9449): the client signs a short JWT per request (`DPoP` header) with the key
//!   whose RFC 7638 thumbprint the token carries in `cnf.jkt`. The checks of RFC 9449 §4.3 and
//!   §7.1, including `ath`, server nonces ([`nonce`], §8-9) and single use of each `jti`
//!   ([`replay`], in memory or shared through Redis).
//! - **mTLS certificate-bound tokens** (RFC 8705): the token's `cnf["x5t#S256"]` must be the
//!   SHA-256 of the client certificate of the connection (served by `tls` with rustls) or of
//!   one forwarded by a trusted proxy ([`mtls::proxy`], RFC 9440).
//! - **Access tokens**: JWTs (RFC 9068) verified against a configured JWK Set or keys discovered
//!   from the issuer (`discovery`, RFC 8414), opaque tokens by introspection (`introspection`,
//!   RFC 7662), RFC 9728 metadata ([`metadata`]) and required scopes ([`RoutePolicy`]).
//!
//! The core is framework-agnostic: a [`Verifier`] reads a borrowed [`PopRequest`] and returns a
//! [`Verified`] result or one [`PopError`], which [`Challenge`] turns into the status and
//! `WWW-Authenticate` header. [`RequirePopLayer`] wraps any tower service with it; `axum-pop` and
//! `actix-pop` adapt it to those frameworks.
//!
//! ## Example
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_pop::{PopConfig, RequirePopLayer, Verified, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let config = PopConfig::builder()
//!     .public_origin("https://api.example.com")      // what clients put in `htu`
//!     .issuer("https://as.example.com")              // the only trusted issuer
//!     .audience("https://api.example.com")           // the `aud` tokens must carry
//!     .jwks_json(r#"{"keys":[]}"#)                   // the issuer's keys
//!     .build()
//!     .expect("valid configuration");
//! let service = ServiceBuilder::new()
//!     .layer(RequirePopLayer::new(Arc::new(Verifier::new(config))))
//!     .service(service_fn(|req: Request<String>| async move {
//!         let who = req.extensions().get::<Verified>().and_then(|v| v.subject()).unwrap_or("");
//!         Ok::<_, std::convert::Infallible>(Response::new(who.to_owned()))
//!     }));
//! // No credentials: 401 with `WWW-Authenticate: DPoP algs="ES256 PS256 EdDSA Ed25519"`.
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], r#"DPoP algs="ES256 PS256 EdDSA Ed25519""#);
//! # }
//! ```
//!
//! ## Defaults, and why
//!
//! | setting | default | reason |
//! |---|---|---|
//! | proof of possession | required | a bearer token is cash; [`PopConfigBuilder::allow_bearer`] relaxes it by name |
//! | DPoP algorithms | `ES256 PS256 EdDSA Ed25519` | FAPI 2.0 §5.4.1 (`Ed25519` is RFC 9864's name for EdDSA/Ed25519); `none` and HMAC cannot be configured at all |
//! | token algorithms | `RS256 PS256 ES256 EdDSA` | RFC 9068 requires RS256 |
//! | proof `iat` window | 60 s past, 10 s future | RFC 9449 §11.1 "seconds or minutes"; FAPI 2.0 future rule |
//! | token `exp`/`nbf` leeway | 30 s | small clock skew, never minutes |
//! | replay entry | kept until the proof's `iat` window has passed, and 5 s more | a request whose clock reading is a little older than another's (a slow token step, a clock behind) still finds it; the clock is read again after the token step |
//! | replay store | in memory, sized from the machine (cores × 86 s / 10 us: 8.6 million proofs a core, about 24 bytes each), refuses when full | never accept a replay, never grow without bound; every entry cost a signature check, so honest load cannot fill it |
//! | per-key proof quota | 5,000 proofs a second per proof key, counted over the proof window (450,000 proofs), then 429 with `Retry-After` | one authenticated client cannot fill the replay store and make it refuse everyone; far above one honest client's rate |
//! | introspection | 32 calls in flight, 500 ms wait for a slot, a quarter of the slots per peer (IPv4 address, IPv6 /64), then 503 with `Retry-After`; inactive answers remembered 30 s (10,000) | a client flooding random opaque tokens cannot hold the authorization server's slots or honest users' requests |
//! | token cache | 10,000 verified tokens and 16 MiB, each until its `exp` and for 5 minutes at most, evicting (S3-FIFO) | a reused token costs one signature check; one client's many fresh tokens evict each other before anyone's reused token; a cached result is never served past its `exp` |
//! | remembered proof keys | a cached DPoP-bound token keeps its key's canonical form once a proof has shown it (in the token's weight) and, within 16 MiB for the whole process, that proof's header and the key as imported | a later proof with the same header is neither read nor imported again; its signature and claims are checked as every proof's; past the budget, proofs are read and imported each time |
//! | public origin | required, `https` | `htu` is never derived from client-controlled headers |
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `signer` | `dpop::signer`: builds `DPoP` proofs for clients, demos and tests |
//! | `client` | `client`: a reqwest-middleware middleware and a tower layer adding a proof to every request, following `DPoP-Nonce`, and a token-endpoint helper (implies `signer`) |
//! | `test-util` | `test_util`: a token issuer with a JWK Set, for tests (implies `signer`) |
//! | `rustls` | `tls::TlsConfig`: a rustls (aws-lc-rs) server configuration requesting client certificates, for the adapters' TLS servers |
//! | `redis` | `replay::RedisReplayCache`: one replay store shared by every instance, on Redis (`redis://`, `rediss://` over rustls with aws-lc-rs) |
//! | `discovery` | `discovery::IssuerKeys`: the issuer's keys from its RFC 8414 / OpenID Connect metadata over HTTPS, cached, refreshed, single-flight refetch on an unknown `kid` |
//! | `introspection` | `introspection::Introspector`: RFC 7662 introspection of opaque (non-JWT) access tokens, results cached briefly |
//! | `metrics` | counters and a histogram of decisions through the `metrics` facade ([Metrics](#metrics)) |
//!
//! ## Deployment
//!
//! - Behind a TLS-terminating proxy, set the public origin to the URL clients use.
//! - A router that rewrites the request URI before the layer runs (axum's `Router::nest`) must
//!   put the original into an [`OriginalTarget`] extension; `axum-pop`'s layer does.
//! - Several instances behind one API need a shared [`ReplayCache`]; the in-memory default only
//!   sees its own instance's proofs.
//! - Browser clients on another origin can only read the challenge if your CORS layer lists
//!   `WWW-Authenticate` and `DPoP-Nonce` in `Access-Control-Expose-Headers` (RFC 9449 §7.1
//!   and §8) and wraps this layer, so preflights never reach it and refusals carry the CORS
//!   headers. [`cors`] names the headers; `axum-pop` and `actix-pop` have presets on
//!   tower-http's and actix-cors's layers (feature `cors`).
//! - `discovery`, `introspection` and `redis` run on tokio and need a runtime with timers
//!   (axum's and actix-web's have them).
//! - Nothing here logs a token, proof or key; refusals are logged at `debug` by kind only, and
//!   server-side failures at `warn`/`error` (see [Observability](#observability)).
//! - **The token cache holds the tokens themselves.** It is keyed by the token (a keyed hash,
//!   compared in full in constant time), so a cached token stays in the process's memory for up
//!   to the cache's maximum age (5 minutes by default) and is wiped when it leaves. A bound
//!   token is useless without its key or certificate, but an unbound one (`allow_bearer`) is
//!   not: guard core dumps and heap snapshots of the process as you guard its secrets.
//!
//! ## Observability
//!
//! ### Logs
//!
//! Events go through [`tracing`](https://docs.rs/tracing) under these targets, which are stable
//! (filter on them, e.g. `RUST_LOG=tower_pop::verify=debug`). Fields carry fixed names only: a
//! refusal's kind ([`PopErrorKind::as_str`]), the scheme ([`AuthScheme::as_str`]), the binding
//! ([`Binding::as_str`]); never a token, proof, key, nonce, claim value or a URL with
//! credentials. [`Verifier::decide`] runs inside a `debug` span `verify` (target
//! `tower_pop::verify`), so the store and key events of a request nest under it.
//!
//! | target | level | event | fields |
//! |---|---|---|---|
//! | `tower_pop::verify` | `trace` | request accepted | `binding`, `scheme` (`binding = "anonymous"` without credentials where allowed) |
//! | `tower_pop::verify` | `debug` | request refused | `kind`, `scheme` (absent when no scheme was recognised) |
//! | `tower_pop::verify` | `warn` / `info` | requests refused for a server-side failure (503) other than the replay store's (first of a burst, then at most once every 10 s) / verified again after such a burst | `kind`, `scheme`, `failures` / `unlogged_failures` |
//! | `tower_pop::replay` | `error` | replay store failing, by kind (first failure of a burst, then at most once every 10 s) | `kind`, `failures` |
//! | `tower_pop::replay` | `error` | replay store full (in memory; at most once every 10 s) | `capacity` |
//! | `tower_pop::replay` | `warn` / `error` / `info` | Redis store not reachable at start-up / failing (at most once every 10 s) / recovered | `store` (URL without password), `error`, `cause`, `failed_calls`, `down_ms` |
//! | `tower_pop::mtls` | `debug` | a forwarded client certificate is not trustworthy | `reason` |
//! | `tower_pop::discovery` | `debug` / `warn` | issuer key set fetched / fetch failed (cached keys stay in use) | `issuer`, `keys`, `refresh_after`, `error` |
//! | `tower_pop::introspection` | `warn` / `error` / `info` | calls failing (unreachable, timeout, bad answer, every slot busy) / our client credentials refused / answering again; each once per burst, then at most every 10 s | `endpoint`, `client_id`, `status`, `failures`, `unlogged_failures` |
//! | `tower_pop::introspection` | `warn` | a peer holds its share of the call slots, its further opaque tokens refused (once per burst, then at most every 10 s) | `peer`, `refused` |
//! | `tower_pop::client` | `warn` / `debug` | request sent without a proof (URI not absolute) / `use_dpop_nonce` retry | none |
//!
//! Nonce refusals are `tower_pop::verify` events with `kind` `nonce_required` or
//! `invalid_nonce`; nonces themselves are never logged.
//!
//! ### Metrics
//!
//! With the `metrics` feature, [`Verifier::decide`] records each decision through the
//! [`metrics`](https://docs.rs/metrics) facade, in that one place; install any recorder (e.g.
//! `metrics-exporter-prometheus`) to collect them. Without the feature nothing is compiled in;
//! with it and no recorder, each record is a no-op call.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `tower_pop_requests_accepted_total` | counter | `binding`: `dpop`, `mtls`, `dpop+mtls`, `bearer`, `anonymous` | requests let through to the service |
//! | `tower_pop_requests_refused_total` | counter | `kind`: [`PopErrorKind::as_str`], e.g. `token_invalid`, `replayed`, `nonce_required` | requests refused |
//! | `tower_pop_verify_seconds` | histogram | none | time [`Verifier::decide`] took, refusals included |
//!
//! Label values come from fixed sets, so the number of series is bounded.

// docs.rs (nightly rustdoc, `--cfg docsrs`): a badge on every item a feature gates.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod binding;
pub mod challenge;
#[cfg(feature = "client")]
pub mod client;
pub mod clock;
mod config;
pub mod cors;
mod credentials;
pub mod defaults;
pub mod dpop;
pub mod error;
pub mod extension;
pub mod fapi2;
#[cfg(feature = "httpsig")]
pub mod httpsig;
// Not a public API: wrappers over internal parsers for the cargo-fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod __fuzzing;
pub mod jose;
pub mod layer;
#[cfg(feature = "lifetime")]
pub mod lifetime;
mod macros;
pub mod metadata;
pub mod mtls;
mod observe;
pub mod policy;
pub mod replay;
pub mod request;
pub mod server_limits;
#[cfg(feature = "test-util")]
pub mod test_util;
mod token;
mod verifier;

// The everyday names. Everything else lives in the module that owns it.
pub use challenge::Challenge;
pub use config::{PopConfig, PopConfigBuilder};
pub use error::{ConfigError, PopError, PopErrorKind};
pub use extension::{Auth, Binding, Claims, SharedClaims, Verified};
pub use jose::Algorithm;
pub use layer::{RequirePop, RequirePopLayer};
pub use policy::{PolicyBuilder, RoutePolicy};
pub use request::{PeerCertificate, PopRequest};
pub use verifier::{Outcome, Refusal, Verifier};

// Remote key sets and introspection, public as `tower_pop::discovery` and
// `tower_pop::introspection` (the modules live under `token/`); the RFC 7638 thumbprints as
// `tower_pop::thumbprint`, the DPoP nonces as `tower_pop::nonce`, the TLS server configuration as
// `tower_pop::tls`.
pub use dpop::nonce;
pub use jose::thumbprint;
#[cfg(feature = "rustls")]
pub use mtls::tls;
#[cfg(feature = "discovery")]
pub use token::discovery;
#[cfg(feature = "introspection")]
pub use token::introspection;
pub use token::jwt::TokenProfile;

// The 0.1 paths of names that moved into their modules: kept working, out of the docs.
#[doc(hidden)]
pub use challenge::ResponseHeaders;
#[doc(hidden)]
pub use clock::{Clock, ManualClock, SystemClock};
#[doc(hidden)]
pub use defaults::{
    DPOP_ALGORITHMS as DEFAULT_DPOP_ALGORITHMS, PROOF_FUTURE_SKEW as DEFAULT_PROOF_FUTURE_SKEW,
    PROOF_KEY_RATE as DEFAULT_PROOF_KEY_RATE, PROOF_MAX_AGE as DEFAULT_PROOF_MAX_AGE,
    TOKEN_ALGORITHMS as DEFAULT_TOKEN_ALGORITHMS, TOKEN_CACHE_BYTES as DEFAULT_TOKEN_CACHE_BYTES,
    TOKEN_CACHE_CAPACITY as DEFAULT_TOKEN_CACHE_CAPACITY,
    TOKEN_CACHE_MAX_AGE as DEFAULT_TOKEN_CACHE_MAX_AGE, TOKEN_LEEWAY as DEFAULT_TOKEN_LEEWAY,
};
#[doc(hidden)]
pub use error::AuthScheme;
#[doc(hidden)]
pub use extension::{Anonymous, AuthRejection, ClaimsError};
#[doc(hidden)]
pub use jose::UnknownAlgorithm;
#[doc(hidden)]
pub use layer::{DefaultRejection, RejectionResponse, ResponseFuture};
#[doc(hidden)]
pub use mtls::proxy::{
    ClientCertHeader, ForwardedCert, ForwardedCertConfig, ProxyConfigError, TrustedProxies,
    UntrustworthyReason,
};
#[doc(hidden)]
pub use replay::{MemoryReplayCache, ReplayCache};
#[doc(hidden)]
pub use request::{OriginalTarget, PeerAddr};

/// The README's example, compiled and run as a doc-test so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
