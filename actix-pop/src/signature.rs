//! [`RequireSignature`]: RFC 9421 request signatures by the token's bound key, with RFC 9530
//! `Content-Digest` (feature `httpsig`). The same checks and answers as
//! `axum_pop::RequireSignatureLayer` ([`tower_pop::httpsig`]).
//!
//! Wrap it inside [`RequirePop`](crate::RequirePop) (actix-web runs the last `.wrap` first, so
//! `.wrap(RequireSignature::new(..)).wrap(RequirePop::new(..))`): it reads the [`Verified`] the
//! token middleware left, reads the body up to the policy's bound, checks it, and hands the
//! service the same bytes.

use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{FromRequest as _, HttpMessage as _, web};
use tower_pop::httpsig::{SignaturePolicy, SignatureVerifier};
use tower_pop::{PeerCertificate, Refusal, Verified, Verifier};

use crate::{DefaultRejection, LocalBoxFuture, RejectionResponse, apply_challenge};

/// Middleware that requires an RFC 9421 request signature fitting a [`SignaturePolicy`]:
/// `.wrap(RequireSignature::new(verifier, policy))`, inside [`RequirePop`](crate::RequirePop).
#[derive(Debug)]
#[must_use]
pub struct RequireSignature<R = DefaultRejection> {
    signatures: Arc<SignatureVerifier>,
    rejection: Rc<R>,
}

impl<R> Clone for RequireSignature<R> {
    fn clone(&self) -> Self {
        Self {
            signatures: Arc::clone(&self.signatures),
            rejection: Rc::clone(&self.rejection),
        }
    }
}

impl RequireSignature {
    /// Requests accepted by `verifier` must also carry a signature fitting `policy`.
    pub fn new(verifier: impl Into<Arc<Verifier>>, policy: SignaturePolicy) -> Self {
        Self {
            signatures: Arc::new(SignatureVerifier::new(verifier, policy)),
            rejection: Rc::new(DefaultRejection),
        }
    }
}

impl<R> RequireSignature<R> {
    /// Build refusals with `rejection`, as [`RequirePop::with_rejection_response`](crate::RequirePop::with_rejection_response).
    pub fn with_rejection_response<R2>(self, rejection: R2) -> RequireSignature<R2> {
        RequireSignature {
            signatures: self.signatures,
            rejection: Rc::new(rejection),
        }
    }
}

crate::transform!(RequireSignature, RequireSignatureMiddleware);

/// The service made by [`RequireSignature`].
#[derive(Debug)]
pub struct RequireSignatureMiddleware<S, R = DefaultRejection> {
    service: Rc<S>,
    config: RequireSignature<R>,
}

/// The request as `http` 1.x parts (actix-web is on `http` 0.2), with what the core reads from
/// extensions: the client certificate and the peer address.
fn http_parts(req: &ServiceRequest) -> Option<http::request::Parts> {
    let uri: http::Uri = req.uri().to_string().parse().ok()?;
    let mut builder = http::Request::builder()
        .method(req.method().as_str())
        .uri(uri);
    for (name, value) in req.headers() {
        builder = builder.header(name.as_str(), value.as_bytes());
    }
    let (mut parts, ()) = builder.body(()).ok()?.into_parts();
    let cert = req
        .request()
        .conn_data::<PeerCertificate>()
        .cloned()
        .or_else(|| req.extensions().get::<PeerCertificate>().cloned());
    if let Some(cert) = cert {
        parts.extensions.insert(cert);
    }
    if let Some(addr) = req.peer_addr() {
        parts.extensions.insert(tower_pop::PeerAddr(addr));
    }
    Some(parts)
}

impl<S, B, R> Service<ServiceRequest> for RequireSignatureMiddleware<S, R>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    R: RejectionResponse + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let RequireSignature {
            signatures,
            rejection,
        } = self.config.clone();
        Box::pin(async move {
            let refuse = |req: ServiceRequest, refusal: Refusal| {
                let mut response = rejection.response(&refusal);
                apply_challenge(&mut response, refusal.challenge());
                response.extensions_mut().insert(refusal.into_error());
                Ok(req.into_response(response).map_into_right_body())
            };
            // Taken out while checked (no copy), put back for the service.
            let Some(verified) = req.extensions_mut().remove::<Verified>() else {
                return refuse(req, signatures.refuse_unverified());
            };
            let limit = signatures.policy().body_limit();
            let announced = req
                .headers()
                .get(actix_web::http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if announced.is_some_and(|len| len > limit as u64) {
                return refuse(req, signatures.refuse_body(&verified, true));
            }
            let (http_req, payload) = req.parts_mut();
            let payload = web::Payload::from_request(http_req, payload).await?;
            let bytes = match payload.to_bytes_limited(limit).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => return refuse(req, signatures.refuse_body(&verified, false)),
                Err(_) => return refuse(req, signatures.refuse_body(&verified, true)),
            };
            let Some(parts) = http_parts(&req) else {
                return refuse(req, signatures.refuse_body(&verified, false));
            };
            match signatures.check(&parts, &verified, &bytes).await {
                Ok(signature) => {
                    req.extensions_mut().insert(signature);
                }
                Err(refusal) => return refuse(req, refusal),
            }
            req.extensions_mut().insert(verified);
            req.set_payload(Payload::from(bytes));
            let response = service.call(req).await?;
            Ok(response.map_into_left_body())
        })
    }
}
