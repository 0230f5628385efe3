//! The client side of DPoP (RFC 9449), behind the `client` feature: sign a proof for every
//! request, follow the servers' nonces, and get DPoP-bound tokens.
//!
//! - [`DpopMiddleware`]: a [`reqwest_middleware`](https://docs.rs/reqwest-middleware) middleware
//!   (reqwest-middleware 0.5, the line on reqwest 0.13), plus
//!   [`DpopMiddleware::request_token`] for the token endpoint.
//! - [`SignDpopLayer`] / [`SignDpop`]: the same as a tower `Layer` for any client service over
//!   `http::Request<B>` (hyper-util's legacy client, a tower stack around it).
//!
//! # What goes on the wire
//!
//! Every request gets a fresh `DPoP` header (RFC 9449 §4.2) from a
//! [`ProofSigner`]: `htm` the method, `htu` the request URL without query, fragment and
//! userinfo, `iat` now (from a [`Clock`]), a random `jti`, `ath` when the request carries an
//! `Authorization: DPoP <token>` field (RFC 9449 §7.1), and `nonce` when the origin gave one. A
//! `DPoP` field already on the request is replaced, and the value is marked sensitive for the
//! HTTP stack (no HPACK indexing). The token endpoint request of RFC 9449 §5 is the same with
//! no `Authorization` field, hence no `ath`.
//!
//! # Nonces (RFC 9449 §8, §9)
//!
//! - Any response's `DPoP-Nonce` is remembered per origin (`scheme://host:port`) in a
//!   [`NonceStore`], bounded to [`CLIENT_NONCE_ORIGINS`](crate::defaults::CLIENT_NONCE_ORIGINS) origins (the least recently updated
//!   is forgotten), and put into the next proof for that origin (RFC 9449 §8.2).
//! - A resource server's 401 with `WWW-Authenticate: DPoP error="use_dpop_nonce"` (RFC 9449 §9),
//!   or a token endpoint's 400 whose JSON body has `"error": "use_dpop_nonce"` (RFC 9449 §8),
//!   together with a `DPoP-Nonce`, is retried **once**, with a new proof carrying that nonce.
//!   A second refusal is handed back as it is: never a loop.
//! - Only a request whose body can be replayed is retried: for reqwest, one whose
//!   `Request::try_clone` succeeds (any body but a stream); for tower, a body type implementing
//!   [`ReplayBody`] (every `Clone` body: `String`, `Bytes`, `Full<Bytes>`, `Empty`). Other
//!   requests get the refusal back; the nonce is remembered, so the next request carries it.
//! - A 400 with a `DPoP-Nonce` is read to look at its JSON, up to 16 KiB (one not known to be
//!   longer, chunked or not): a body that ends by then is looked at, and any 400 that is not
//!   retried is handed back whole, what was read followed by the rest.
//!
//! # Redirects
//!
//! - [`DpopMiddleware::request_token`] never follows a redirect: a token request carries the
//!   client's secret and a grant. A 3xx is [`TokenError::Redirected`].
//! - The middleware follows redirects itself (up to [`CLIENT_MAX_REDIRECTS`](crate::defaults::CLIENT_MAX_REDIRECTS), 10, like reqwest;
//!   [`DpopMiddleware::max_redirects`]), so build its reqwest client with
//!   `redirect::Policy::none()`: reqwest's own following happens below the middleware and
//!   carries the first URL's `DPoP` field wherever it goes (a warning under
//!   `tower_pop::client` says so once). Within the first request's origin each hop gets a new
//!   proof for its URL; once the chain leaves that origin, `DPoP`, `Authorization`, `Cookie`
//!   and `Proxy-Authorization` are removed and nothing is signed again (the token and proofs
//!   are for the first origin only). 301, 302 (for `POST`) and 303 continue with `GET` and no
//!   body; 307 and 308 repeat the method and body when the body can be copied. A
//!   `DPoP-Nonce` is remembered under the origin of the response that sent it.
//! - The tower layer follows no redirects; do not put a redirect-following layer below it.
//!
//! # Deployment caveats
//!
//! - The tower layer needs absolute request URIs (hyper-util's client does too); a relative
//!   one is sent without a proof, with a warning under the log target `tower_pop::client`.
//! - Share one [`NonceStore`] (through [`DpopMiddleware::with_nonces`] /
//!   [`SignDpopLayer::with_nonces`]) between the clients of one key, so none of them pays the
//!   retry again.
//! - Nothing here logs a token, proof, nonce or key; `Debug` shows the algorithm, the public
//!   key's thumbprint and the number of remembered origins.
//!
//! # Why a feature of the core, not a crate
//!
//! The workspace's crates are fixed (core, two adapters, examples, conformance tests), and the
//! signer this builds on is the core's `dpop::signer`, which shares its JOSE and thumbprint
//! code with the verifier. The reqwest and reqwest-middleware types in these signatures are the
//! point of this module (it adapts reqwest), an exception to the core's "no dependency types"
//! rule that only exists with the feature on; reqwest is pulled in without TLS features, which
//! the application's own reqwest chooses.
//!
//! # Example
//!
//! A tower client in front of a server that asks for a nonce once, as a resource server with
//! nonces does:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, ServiceExt, service_fn};
//! use tower_pop::Algorithm;
//! use tower_pop::client::SignDpopLayer;
//! use tower_pop::dpop::signer::ProofSigner;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let calls = Arc::new(AtomicUsize::new(0));
//! let counted = Arc::clone(&calls);
//! let server = service_fn(move |req: Request<String>| {
//!     let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
//!     assert!(req.headers().contains_key("dpop"));
//!     let mut response = Response::new(String::new());
//!     if first {
//!         *response.status_mut() = StatusCode::UNAUTHORIZED;
//!         let challenge = r#"DPoP error="use_dpop_nonce""#.parse().unwrap();
//!         response.headers_mut().insert("www-authenticate", challenge);
//!     }
//!     response.headers_mut().insert("dpop-nonce", "n-1".parse().unwrap());
//!     async move { Ok::<_, std::convert::Infallible>(response) }
//! });
//! let layer = SignDpopLayer::new(ProofSigner::generate(Algorithm::ES256).unwrap());
//! let request = Request::get("https://api.example.com/whoami?x=1")
//!     .header("authorization", "DPoP the-access-token")
//!     .body(String::new())
//!     .unwrap();
//! let response = layer.layer(server).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(calls.load(Ordering::SeqCst), 2); // the first try and exactly one retry
//! assert_eq!(layer.nonces().get("https://api.example.com:443").as_deref(), Some("n-1"));
//! # }
//! ```

mod body;
mod layer;
mod middleware;
mod nonces;
mod token;
mod wire;

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

pub use body::ResponseBody;
pub use layer::{ReplayBody, ResponseFuture, SignDpop, SignDpopLayer};

pub mod grpc;
pub use middleware::DpopMiddleware;
pub use nonces::{DEFAULT_NONCE_ORIGINS, NonceStore};
pub use token::{AccessToken, TokenError, TokenRequest};

use crate::clock::{Clock, SystemClock};
use crate::dpop::signer::{ProofSigner, SignerError};
use wire::{DPOP, Target};

/// The error of a [`SignDpop`] call: the inner service's error, or a [`SignerError`] when no
/// proof could be made (downcast to tell them apart).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The builder of a type whose `shared` field is a [`Shared`]: the middleware and the layer.
macro_rules! signing_builder {
    () => {
        /// Sign with `signer`, with a new [`NonceStore`](super::NonceStore) of its own.
        pub fn new(signer: impl Into<std::sync::Arc<crate::dpop::signer::ProofSigner>>) -> Self {
            Self::from_shared(super::Shared::new(signer.into()))
        }

        /// Share `nonces` with other layers and middleware
        /// ([`SignDpopLayer`](super::SignDpopLayer), [`DpopMiddleware`](super::DpopMiddleware)).
        pub fn with_nonces(mut self, nonces: std::sync::Arc<super::NonceStore>) -> Self {
            self.shared.nonces = nonces;
            self
        }

        /// Read `iat` from `clock` instead of the system clock.
        pub fn with_clock(mut self, clock: impl crate::clock::Clock) -> Self {
            self.shared.clock = std::sync::Arc::new(clock);
            self
        }

        /// Also sign every request with an RFC 9421 HTTP message signature by the same key
        /// (`options`' label and components, `created` now, `keyid` the key's thumbprint), after
        /// its DPoP proof, with a `Content-Digest` (RFC 9530) covering a body. A body that cannot
        /// be read before sending (a stream) makes the request fail rather than go unsigned.
        #[cfg(feature = "httpsig")]
        pub fn sign_requests(mut self, options: crate::httpsig::sign::SignatureOptions) -> Self {
            self.shared.http_signature = Some(std::sync::Arc::new(options));
            self
        }

        /// The signer.
        #[must_use]
        pub fn signer(&self) -> &crate::dpop::signer::ProofSigner {
            &self.shared.signer
        }

        /// The nonces remembered per origin.
        #[must_use]
        pub fn nonces(&self) -> &std::sync::Arc<super::NonceStore> {
            &self.shared.nonces
        }
    };
}

use signing_builder;

/// What the middleware and the layer share: the key, the nonces, the clock.
#[derive(Clone)]
struct Shared {
    signer: Arc<ProofSigner>,
    nonces: Arc<NonceStore>,
    clock: Arc<dyn Clock>,
    /// With [`sign_requests`](DpopMiddleware::sign_requests): the RFC 9421 signature to add.
    #[cfg(feature = "httpsig")]
    http_signature: Option<Arc<crate::httpsig::sign::SignatureOptions>>,
}

impl Shared {
    fn new(signer: Arc<ProofSigner>) -> Self {
        Self {
            signer,
            nonces: Arc::new(NonceStore::new()),
            clock: Arc::new(SystemClock),
            #[cfg(feature = "httpsig")]
            http_signature: None,
        }
    }

    /// Whether requests get an RFC 9421 signature, so their body must be read first.
    fn signs_messages(&self) -> bool {
        #[cfg(feature = "httpsig")]
        return self.http_signature.is_some();
        #[cfg(not(feature = "httpsig"))]
        false
    }

    /// With [`sign_requests`](DpopMiddleware::sign_requests), the RFC 9421 signature over the
    /// request as it now is (proof included); `content` is its body, `None` when unreadable.
    #[cfg_attr(not(feature = "httpsig"), allow(unused_variables, clippy::unused_self))]
    fn sign_message(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &mut HeaderMap,
        content: Option<&[u8]>,
    ) -> Result<(), SignerError> {
        #[cfg(feature = "httpsig")]
        if let Some(options) = &self.http_signature {
            let content = content.ok_or(SignerError::SIGNING)?;
            let mut parts = http::Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .body(())
                .map_err(|_| SignerError::SIGNING)?
                .into_parts()
                .0;
            parts.headers = std::mem::take(headers);
            let result =
                crate::httpsig::sign::sign_request(&self.signer, options, &mut parts, content);
            *headers = parts.headers;
            result?;
        }
        Ok(())
    }

    /// Put a fresh proof for `method` to `target` into `headers`, with the origin's latest
    /// nonce and the `ath` of an `Authorization: DPoP` token already in `headers`.
    ///
    /// A proof that cannot be made (random generator or signature failed) is an error of the
    /// request: it is not sent, neither without a proof nor with a weak one.
    fn sign(
        &self,
        method: &http::Method,
        target: &Target,
        headers: &mut HeaderMap,
    ) -> Result<(), SignerError> {
        let nonce = self.nonces.get(&target.origin);
        let proof = self.signer.proof_at(
            method.as_str(),
            &target.htu,
            wire::dpop_token(headers),
            nonce.as_deref(),
            self.clock.now_unix(),
        )?;
        headers.remove(&DPOP);
        // A compact JWS is base64url and dots: always a valid field value.
        if let Ok(mut value) = HeaderValue::try_from(proof) {
            value.set_sensitive(true);
            headers.insert(&DPOP, value);
        }
        Ok(())
    }

    /// Remember the `DPoP-Nonce` of a response from `target`.
    fn remember(&self, target: &Target, headers: &HeaderMap) {
        if let Some(nonce) = wire::response_nonce(headers) {
            self.nonces.insert(&target.origin, nonce);
        }
    }
}

// Never print key material: the signer's Debug shows its algorithm and public thumbprint.
impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("signer", &self.signer)
            .field("nonces", &self.nonces)
            .field("clock", &self.clock)
            .finish()
    }
}
