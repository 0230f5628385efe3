//! The tower middleware that requires a request signature: [`RequireSignatureLayer`].
//!
//! It goes inside [`RequirePopLayer`](crate::layer::RequirePopLayer) (added before it with
//! `ServiceBuilder` or axum's `Router::layer`, so it runs after), reads the [`Verified`] the
//! token layer left, reads the body up to the policy's bound, checks `Content-Digest` and the
//! signature, and only then calls the service, with the same body bytes. A request that reaches
//! it without a [`Verified`] (the layers in the wrong order) is refused, never let through.

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

use super::policy::SignaturePolicy;
use super::verify::SignatureVerifier;
use crate::extension::Verified;
use crate::layer::{DefaultRejection, RejectionResponse};
use crate::macros::inner_service_accessors;
use crate::verifier::{Refusal, Verifier};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Requires an RFC 9421 request signature by the token's bound key (see [`SignaturePolicy`]).
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_pop::httpsig::{RequireSignatureLayer, SignaturePolicy};
/// use tower_pop::{PopConfig, RequirePopLayer, Verifier};
/// # use std::sync::Arc;
/// let verifier = Arc::new(Verifier::new(
///     PopConfig::builder()
///         .public_origin("https://resource.example.org")
///         .issuer("https://server.example.com")
///         .audience("https://resource.example.org")
///         .jwks_json(r#"{"keys":[]}"#)
///         .build()
///         .unwrap(),
/// ));
/// // The token layer first, then the signature layer.
/// let _layers = ServiceBuilder::new()
///     .layer(RequirePopLayer::new(Arc::clone(&verifier)))
///     .layer(RequireSignatureLayer::new(verifier, SignaturePolicy::new()));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireSignatureLayer<R = DefaultRejection> {
    signatures: Arc<SignatureVerifier>,
    rejection: R,
}

impl RequireSignatureLayer {
    /// Requests accepted by `verifier` must also carry a signature fitting `policy`.
    pub fn new(verifier: impl Into<Arc<Verifier>>, policy: SignaturePolicy) -> Self {
        Self {
            signatures: Arc::new(SignatureVerifier::new(verifier, policy)),
            rejection: DefaultRejection,
        }
    }
}

impl<R> RequireSignatureLayer<R> {
    /// Build refusals with `rejection`, as [`RequirePopLayer::with_rejection_response`](crate::layer::RequirePopLayer::with_rejection_response).
    pub fn with_rejection_response<R2>(self, rejection: R2) -> RequireSignatureLayer<R2> {
        RequireSignatureLayer {
            signatures: self.signatures,
            rejection,
        }
    }

    /// The signature verifier.
    #[must_use]
    pub fn signatures(&self) -> &Arc<SignatureVerifier> {
        &self.signatures
    }
}

impl<S, R: Clone> Layer<S> for RequireSignatureLayer<R> {
    type Service = RequireSignature<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireSignature {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RequireSignatureLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireSignature<S, R = DefaultRejection> {
    inner: S,
    layer: RequireSignatureLayer<R>,
}

impl<S, R> RequireSignature<S, R> {
    inner_service_accessors!();
}

/// The whole body, up to `limit` bytes: `Err(true)` beyond it (announced or read), `Err(false)`
/// for a body that broke off.
async fn read_body<B>(body: B, limit: usize, announced: Option<u64>) -> Result<Bytes, bool>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(true);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(e.is::<http_body_util::LengthLimitError>()),
    }
}

/// The `Content-Length` the client announced, if it is a number.
fn announced_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequireSignature<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    R: RejectionResponse<ResBody> + Clone + Send + Sync + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Send + 'static,
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
        let signatures = Arc::clone(&self.layer.signatures);
        let rejection = self.layer.rejection.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let refuse = |refusal: Refusal| {
                let mut response = rejection.response(&refusal);
                refusal.challenge().apply(&mut response);
                response.extensions_mut().insert(refusal.into_error());
                Ok(response)
            };
            // Taken out while checked (no copy), put back for the service.
            let Some(verified) = parts.extensions.remove::<Verified>() else {
                return refuse(signatures.refuse_unverified());
            };
            let limit = signatures.policy().body_limit();
            let bytes = match read_body(body, limit, announced_length(&parts.headers)).await {
                Ok(bytes) => bytes,
                Err(too_large) => return refuse(signatures.refuse_body(&verified, too_large)),
            };
            match signatures.check(&parts, &verified, &bytes).await {
                Ok(signature) => parts.extensions.insert(signature),
                Err(refusal) => return refuse(refusal),
            };
            parts.extensions.insert(verified);
            inner
                .call(Request::from_parts(parts, ReqBody::from(bytes)))
                .await
        })
    }
}
