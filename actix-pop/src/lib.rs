//! actix-web adapter for [`tower_pop`]: the [`RequirePop`] middleware (`.wrap(...)`) and the
//! [`PopAuth`] / [`MaybePopAuth`] extractors.
//!
//! actix-web 4 is on `http` 0.2, so the middleware builds tower-pop's framework-neutral
//! [`PopRequest`] from the actix request and translates the one
//! [`Outcome`] the [`Verifier`] decides; refusals come from the same
//! [`Challenge`] mapping as the tower layer, and the extractors follow the same
//! [`tower_pop::Auth::extract`] rule, so an axum and an actix service answer the same request
//! with the same status and headers. No check is implemented here; names mirror `axum-pop`.
//!
//! | extractor | without the middleware | anonymous (`allow_anonymous`) | claims do not fit `C` |
//! |---|---|---|---|
//! | `PopAuth<C>` | 500, fixed body | 401 with the no-credentials challenge | 401 `invalid_token` |
//! | `MaybePopAuth<C>` | 500, fixed body | `MaybePopAuth(None)` | 401 `invalid_token` |
//!
//! Use `MaybePopAuth<C>`, not `Option<PopAuth<C>>`, for optional authentication: actix-web's
//! blanket `Option` extractor turns every failure, a missing middleware included, into `None`,
//! which would serve anonymous users on a route that forgot `.wrap(...)`.
//!
//! Features: `rustls` (`tls`: bind over rustls with client-certificate capture); `cors`
//! (`cors::dpop_cors`: actix-cors set up for browser apps using DPoP from another origin, to
//! wrap outside the middleware).
//!
//! ```
//! use actix_web::{App, HttpResponse, test, web};
//! use actix_pop::{PopAuth, PopConfig, RequirePop, Verifier};
//!
//! #[derive(serde::Deserialize)]
//! struct Claims { sub: String }
//!
//! async fn whoami(auth: PopAuth<Claims>) -> HttpResponse {
//!     HttpResponse::Ok().body(auth.claims.sub.clone())
//! }
//!
//! # actix_web::rt::System::new().block_on(async {
//! let verifier = std::sync::Arc::new(Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .build().unwrap()));
//! let app = test::init_service(
//!     App::new().service(web::resource("/whoami").wrap(RequirePop::new(verifier)).to(whoami)),
//! ).await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/whoami").to_request()).await;
//! assert_eq!(response.status(), 401);
//! assert!(response.headers().contains_key("www-authenticate"));
//! # });
//! ```

// docs.rs (nightly rustdoc, `--cfg docsrs`): a badge on every item a feature gates.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::future::{Future, Ready, ready};
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use tower_pop::challenge::ResponseHeaders;
use tower_pop::extension::{AuthRejection, FromClaims};
use tower_pop::{Auth, Outcome, PopRequest, Verified};

pub use tower_pop;
pub use tower_pop::{
    Algorithm, Binding, Challenge, Claims, ConfigError, PeerCertificate, PolicyBuilder, PopConfig,
    PopConfigBuilder, PopError, PopErrorKind, Refusal, RoutePolicy, SharedClaims, Verifier,
};

#[cfg(feature = "cors")]
pub mod cors;
#[cfg(feature = "lifetime")]
pub mod lifetime;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "httpsig")]
pub mod signature;
#[cfg(feature = "rustls")]
pub mod tls;

/// The neutral request view of an actix request: method, path, every field the verifier reads,
/// the TCP peer address, and the client certificate if the TLS glue stored a [`PeerCertificate`]
/// (as connection data, see `tls`, or in the request extensions).
fn pop_request<'a>(req: &'a HttpRequest, cert: Option<&'a PeerCertificate>) -> PopRequest<'a> {
    let mut pop = PopRequest::new(req.method().as_str(), req.uri().path());
    for name in PopRequest::HEADERS {
        for value in req.headers().get_all(name) {
            pop = pop.header(name, value.as_bytes());
        }
    }
    if let Some(addr) = req.peer_addr() {
        pop = pop.peer_ip(addr.ip());
    }
    if let Some(cert) = cert {
        pop = pop.peer_certificate(cert.der());
    }
    pop
}

/// Set the status, `WWW-Authenticate` and other headers of `challenge` on `response`, replacing
/// any of the same names: whatever body a custom rejection builds, the protocol headers stay
/// right (as [`Challenge::apply`] does for the tower layer).
fn apply_challenge(response: &mut HttpResponse, challenge: &Challenge) {
    *response.status_mut() =
        StatusCode::from_u16(challenge.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    headers.remove(actix_web::http::header::WWW_AUTHENTICATE);
    if let Some(value) = challenge
        .www_authenticate()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(actix_web::http::header::WWW_AUTHENTICATE, value);
    }
    for (name, value) in challenge.headers().iter() {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Write a [`Challenge`] as an actix response: its status, `WWW-Authenticate` and other
/// headers, empty body.
fn challenge_response(challenge: &Challenge) -> HttpResponse {
    let mut response = HttpResponse::new(StatusCode::UNAUTHORIZED);
    apply_challenge(&mut response, challenge);
    response
}

/// How a refusal's response is built before the middleware sets its status and challenge
/// headers: the same shape as `axum_pop::RejectionResponse`
/// ([`tower_pop::layer::RejectionResponse`]), for actix-web's response type. Implemented by
/// [`DefaultRejection`] (an empty body) and by closures `Fn(&Refusal) -> HttpResponse`.
pub trait RejectionResponse {
    /// The response for `refusal`; its status and challenge headers are replaced afterwards.
    fn response(&self, refusal: &Refusal) -> HttpResponse;
}

/// Refusals with an empty body.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    fn response(&self, refusal: &Refusal) -> HttpResponse {
        challenge_response(refusal.challenge())
    }
}

impl<F> RejectionResponse for F
where
    F: Fn(&Refusal) -> HttpResponse,
{
    fn response(&self, refusal: &Refusal) -> HttpResponse {
        self(refusal)
    }
}

/// Set `headers` on a response, replacing any of the same names.
fn apply_headers<B>(response: &mut ServiceResponse<B>, headers: &ResponseHeaders) {
    for (name, value) in headers.iter() {
        if let Ok(value) = HeaderValue::from_str(value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
}

/// Middleware that verifies every request with a [`Verifier`]: `.wrap(RequirePop::new(v))`.
///
/// On success the request reaches the service with a [`Verified`] in its
/// extensions; on failure the service is not called and the response is the challenge (its body
/// built by [`with_rejection_response`](Self::with_rejection_response) when set), with the
/// [`PopError`] in the response extensions.
#[derive(Debug)]
#[must_use]
pub struct RequirePop<R = DefaultRejection> {
    verifier: Arc<Verifier>,
    policy: Arc<RoutePolicy>,
    rejection: Rc<R>,
}

// By hand: a closure rejection is not `Clone`, its `Rc` is.
impl<R> Clone for RequirePop<R> {
    fn clone(&self) -> Self {
        Self {
            verifier: Arc::clone(&self.verifier),
            policy: Arc::clone(&self.policy),
            rejection: Rc::clone(&self.rejection),
        }
    }
}

impl RequirePop {
    /// Verify every request with `verifier` (a `Verifier` or an `Arc<Verifier>`).
    pub fn new(verifier: impl Into<Arc<Verifier>>) -> Self {
        Self {
            verifier: verifier.into(),
            policy: Arc::new(RoutePolicy::new()),
            rejection: Rc::new(DefaultRejection),
        }
    }
}

impl<R> PolicyBuilder for RequirePop<R> {
    fn route_policy(&self) -> &RoutePolicy {
        &self.policy
    }

    fn map_policy(mut self, change: impl FnOnce(RoutePolicy) -> RoutePolicy) -> Self {
        self.policy = Arc::new(change((*self.policy).clone()));
        self
    }
}

impl<R> RequirePop<R> {
    /// Build refusals with `rejection` (a closure `Fn(&Refusal) -> HttpResponse` or a
    /// [`RejectionResponse`]) instead of an empty body. The status, `WWW-Authenticate` and the
    /// [`PopError`] extension are set by the middleware afterwards.
    pub fn with_rejection_response<R2>(self, rejection: R2) -> RequirePop<R2> {
        RequirePop {
            verifier: self.verifier,
            policy: self.policy,
            rejection: Rc::new(rejection),
        }
    }
}

/// The RFC 9728 protected resource metadata resource, unauthenticated, when the verifier has a
/// document ([`PopConfigBuilder::resource_metadata`]): mount it when `Some`
/// (`App::new().service(resource)`). The same shape as `axum_pop::metadata_route`.
#[must_use]
pub fn metadata_route(verifier: &Verifier) -> Option<actix_web::Resource> {
    let doc = verifier.resource_document()?;
    let body = doc.json().to_owned();
    Some(
        actix_web::web::resource(doc.path()).route(actix_web::web::get().to(move || {
            let body = body.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(body)
            }
        })),
    )
}

/// [`metadata_route`] (the 0.1 name).
#[doc(hidden)]
#[must_use]
pub fn metadata_service(verifier: &Verifier) -> Option<actix_web::Resource> {
    metadata_route(verifier)
}

/// The `Transform` of a middleware `$config<R>` whose service is `$middleware { service,
/// config }`: the same bounds for every middleware of this crate.
macro_rules! transform {
    ($config:ident, $middleware:ident) => {
        impl<S, B, R> Transform<S, ServiceRequest> for $config<R>
        where
            S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>
                + 'static,
            B: MessageBody + 'static,
            R: RejectionResponse + 'static,
        {
            type Response = ServiceResponse<EitherBody<B>>;
            type Error = actix_web::Error;
            type Transform = $middleware<S, R>;
            type InitError = ();
            type Future = Ready<Result<Self::Transform, Self::InitError>>;

            fn new_transform(&self, service: S) -> Self::Future {
                ready(Ok($middleware {
                    service: Rc::new(service),
                    config: self.clone(),
                }))
            }
        }
    };
}
#[cfg_attr(not(feature = "httpsig"), allow(unused_imports))]
pub(crate) use transform;

transform!(RequirePop, RequirePopMiddleware);

/// The service made by [`RequirePop`].
pub struct RequirePopMiddleware<S, R = DefaultRejection> {
    service: Rc<S>,
    config: RequirePop<R>,
}

impl<S, R: fmt::Debug> fmt::Debug for RequirePopMiddleware<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePopMiddleware")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B, R> Service<ServiceRequest> for RequirePopMiddleware<S, R>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    R: RejectionResponse + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let RequirePop {
            verifier,
            policy,
            rejection,
        } = self.config.clone();
        Box::pin(async move {
            let cert = req
                .request()
                .conn_data::<PeerCertificate>()
                .cloned()
                .or_else(|| req.extensions().get::<PeerCertificate>().cloned());
            let reused = req
                .extensions()
                .get::<Verified>()
                .and_then(|v| verifier.reuse(v, &policy));
            let outcome = match reused {
                Some(outcome) => outcome,
                None => {
                    verifier
                        .decide(&pop_request(req.request(), cert.as_ref()), &policy)
                        .await
                }
            };
            let headers = match outcome {
                Outcome::Verified(verified) => {
                    let headers = verified.response_headers().clone();
                    req.extensions_mut().insert(verified);
                    headers
                }
                Outcome::Anonymous(anonymous) => {
                    let headers = anonymous.response_headers().clone();
                    req.extensions_mut().insert(anonymous);
                    headers
                }
                Outcome::Refused(refusal) => {
                    let mut response = rejection.response(&refusal);
                    apply_challenge(&mut response, refusal.challenge());
                    response.extensions_mut().insert(refusal.into_error());
                    return Ok(req.into_response(response).map_into_right_body());
                }
            };
            let mut response = service.call(req).await?;
            apply_headers(&mut response, &headers);
            Ok(response.map_into_left_body())
        })
    }
}

/// A verified request: dereferences to [`tower_pop::Auth`] (`claims` as `C`, `binding`, `jkt`,
/// `certificate_thumbprint`). The same name and shape as `axum_pop::PopAuth`.
#[derive(Debug, Clone)]
pub struct PopAuth<C = Claims>(pub Auth<C>);

/// Optional authentication: `MaybePopAuth(None)` for an anonymous request let through by
/// [`RequirePop::allow_anonymous`]. Without the middleware it is a 500, never `None`.
#[derive(Debug, Clone)]
pub struct MaybePopAuth<C = Claims>(pub Option<Auth<C>>);

impl<C> Deref for PopAuth<C> {
    type Target = Auth<C>;

    fn deref(&self) -> &Auth<C> {
        &self.0
    }
}

impl<C> DerefMut for PopAuth<C> {
    fn deref_mut(&mut self) -> &mut Auth<C> {
        &mut self.0
    }
}

/// Why [`PopAuth`] or [`MaybePopAuth`] could not be extracted: [`AuthRejection`] as an actix
/// error (500 with a fixed body for a missing middleware, else the RFC challenge).
#[derive(Debug)]
pub struct PopAuthRejection(pub AuthRejection);

impl fmt::Display for PopAuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PopAuthRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self.0.challenge() {
            Some(challenge) => challenge_response(challenge),
            None => HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body(AuthRejection::MISSING_LAYER_BODY),
        }
    }
}

impl<C: FromClaims + 'static> FromRequest for PopAuth<C> {
    type Error = PopAuthRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(
            Auth::require(extensions.get(), extensions.get())
                .map(Self)
                .map_err(PopAuthRejection),
        )
    }
}

impl<C: FromClaims + 'static> FromRequest for MaybePopAuth<C> {
    type Error = PopAuthRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        ready(
            Auth::extract(extensions.get(), extensions.get())
                .map(Self)
                .map_err(PopAuthRejection),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{App, test, web};

    use super::*;

    fn verifier() -> Arc<Verifier> {
        Arc::new(Verifier::new(
            PopConfig::builder()
                .public_origin("https://api.example.com")
                .issuer("https://as.example.com")
                .audience("https://api.example.com")
                .jwks_json(r#"{"keys":[]}"#)
                .build()
                .unwrap(),
        ))
    }

    #[actix_web::test]
    async fn missing_middleware_is_a_500() {
        let app =
            test::init_service(App::new().route("/", web::get().to(|_: PopAuth| async { "x" })))
                .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[actix_web::test]
    async fn anonymous_requests_pass_only_when_allowed() {
        let app = test::init_service(
            App::new()
                .service(
                    web::resource("/optional")
                        .wrap(RequirePop::new(verifier()).allow_anonymous())
                        .to(|auth: MaybePopAuth| async move {
                            if auth.0.is_some() {
                                "user"
                            } else {
                                "anonymous"
                            }
                        }),
                )
                .service(
                    web::resource("/required")
                        .wrap(RequirePop::new(verifier()).allow_anonymous())
                        .to(|_: PopAuth| async { "user" }),
                ),
        )
        .await;
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/optional").to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(test::read_body(response).await, "anonymous");
        let bad = test::TestRequest::get()
            .uri("/optional")
            .insert_header(("authorization", "DPoP x"))
            .to_request();
        assert_eq!(
            test::call_service(&app, bad).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let response =
            test::call_service(&app, test::TestRequest::get().uri("/required").to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            r#"DPoP algs="ES256 PS256 EdDSA Ed25519""#
        );
    }
}

/// The README's example, compiled and run as a doc-test so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
