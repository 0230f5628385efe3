//! [`SignResponseLayer`]: RFC 9421 response signatures (§2.4, §3.1) by a server key, off unless
//! added: each response gets a `Content-Digest` (RFC 9530) and a signature over `@status`,
//! `content-digest` and, when the request carried a signature this crate verified, that
//! signature (`"signature";req;key="<label>"`), so the client holds the server's word on what it
//! answered to which request (non-repudiation, FAPI 2.0 Message Signing).
//!
//! The response body is read whole to digest it, up to a bound; a larger body (or one that
//! fails) is not signed and is logged, never turned into an error response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt as _, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::sign::{SignatureOptions, sign_response};
use super::verify::VerifiedSignature;
use crate::dpop::signer::ProofSigner;
use crate::macros::inner_service_accessors;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest response body signed by default (4 MiB).
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 4 * 1024 * 1024;

/// Signs every response of the wrapped service with `signer`'s key (see the module docs).
///
/// ```
/// use std::sync::Arc;
/// use tower_pop::Algorithm;
/// use tower_pop::dpop::signer::ProofSigner;
/// use tower_pop::httpsig::respond::SignResponseLayer;
/// use tower_pop::httpsig::sign::SignatureOptions;
/// let key = Arc::new(ProofSigner::generate(Algorithm::ES256).unwrap());
/// let layer = SignResponseLayer::new(key, "https://api.example.com", SignatureOptions::new(&[]).label("res"));
/// assert_eq!(layer.body_limit(), tower_pop::httpsig::respond::DEFAULT_MAX_RESPONSE_BODY);
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SignResponseLayer {
    shared: Shared,
}

#[derive(Debug, Clone)]
struct Shared {
    signer: Arc<ProofSigner>,
    options: SignatureOptions,
    scheme: String,
    authority: String,
    max_body: usize,
}

impl SignResponseLayer {
    /// Sign responses with `signer` under `options` (label, extra components, `keyid`);
    /// `public_origin` (`https://api.example.com`) gives the request's `@scheme` and
    /// `@authority` should `options` cover request components with `req`.
    pub fn new(signer: Arc<ProofSigner>, public_origin: &str, options: SignatureOptions) -> Self {
        let (scheme, authority) = public_origin
            .split_once("://")
            .map(|(s, a)| (s.to_owned(), a.trim_end_matches('/').to_owned()))
            .unwrap_or_default();
        Self {
            shared: Shared {
                signer,
                options,
                scheme,
                authority,
                max_body: DEFAULT_MAX_RESPONSE_BODY,
            },
        }
    }

    /// Sign bodies whose size is known to be at most `bytes`; others go out unsigned and
    /// untouched, with a warning.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.shared.max_body = bytes;
        self
    }

    /// The body bound.
    #[must_use]
    pub fn body_limit(&self) -> usize {
        self.shared.max_body
    }
}

impl<S> Layer<S> for SignResponseLayer {
    type Service = SignResponse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignResponse {
            inner,
            shared: Arc::new(self.shared.clone()),
        }
    }
}

/// The service made by [`SignResponseLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SignResponse<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> SignResponse<S> {
    inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SignResponse<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Body + From<Bytes> + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        // What the signature covers of the request: its own signature, by label.
        let label = request
            .extensions()
            .get::<VerifiedSignature>()
            .map(|s| s.label().to_owned());
        let mut seen = Request::new(());
        *seen.method_mut() = request.method().clone();
        // The target the client sent (under `Router::nest`, the full one).
        *seen.uri_mut() =
            crate::request::OriginalTarget::or(request.extensions(), request.uri()).clone();
        if label.is_some() {
            *seen.headers_mut() = request.headers().clone();
        }
        Box::pin(async move {
            let response = inner.call(request).await?;
            // Only a body known to fit is read: a stream or a large body passes untouched.
            let fits = response
                .body()
                .size_hint()
                .upper()
                .is_some_and(|upper| upper <= shared.max_body as u64);
            if !fits {
                tracing::warn!(
                    target: "tower_pop::httpsig",
                    "response body of unknown or large size: not signed"
                );
                return Ok(response);
            }
            let (mut parts, body) = response.into_parts();
            let bytes = match Limited::new(body, shared.max_body).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    // The body broke off within its announced size: nothing to sign or send.
                    tracing::warn!(target: "tower_pop::httpsig", "response body failed: not signed");
                    return Ok(Response::from_parts(parts, ResBody::from(Bytes::new())));
                }
            };
            let (seen, ()) = seen.into_parts();
            let request = Some((&seen, shared.scheme.as_str(), shared.authority.as_str()));
            if sign_response(
                &shared.signer,
                &shared.options,
                parts.status.as_u16(),
                &mut parts.headers,
                &bytes,
                request,
                label.as_deref(),
            )
            .is_err()
            {
                tracing::warn!(target: "tower_pop::httpsig", "response not signed: signing failed");
            }
            Ok(Response::from_parts(parts, ResBody::from(bytes)))
        })
    }
}
