//! actix-web adapter for [`tower_pop`]: the [`RequirePop`] middleware (`.wrap(...)`) and the
//! [`PopAuth`] extractor.
//!
//! actix-web 4 is on `http` 0.2, so the middleware builds tower-pop's framework-neutral
//! [`PopRequest`] from the actix request and runs the same [`Verifier`]; refusals come from the
//! same [`Challenge`] mapping as the tower layer, so an axum and an actix service answer the same
//! request with the same status and headers. No check is implemented here.
//!
//! Differences from `axum-pop`, both from actix-web itself: `Option<PopAuth<C>>` uses actix's
//! blanket `Option` extractor, which yields `None` whenever extraction fails (a missing
//! middleware or claims that do not fit `C` included), not only for anonymous requests.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, HttpResponse, test, web};
//! use actix_pop::{PopAuth, PopConfig, RequirePop, Verifier};
//!
//! #[derive(serde::Deserialize)]
//! struct Claims { sub: String }
//!
//! async fn whoami(auth: PopAuth<Claims>) -> HttpResponse {
//!     HttpResponse::Ok().body(auth.claims.sub)
//! }
//!
//! # #[actix_web::main] async fn main() {
//! let verifier = Arc::new(Verifier::new(PopConfig::builder()
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
//! # }
//! ```

use std::fmt;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

pub use tower_pop::{self, *};

#[cfg(feature = "rustls")]
pub mod tls;

/// The token's claims as a JSON object: the default claims type of [`PopAuth`].
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// The neutral request view of an actix request: method, path, every `Authorization` and
/// `DPoP` field, and the client certificate if the TLS glue stored a [`PeerCertificate`].
fn pop_request<'a>(req: &'a HttpRequest, cert: Option<&'a PeerCertificate>) -> PopRequest<'a> {
    let mut pop = PopRequest::new(req.method().as_str(), req.uri().path());
    for value in req.headers().get_all("authorization") {
        pop = pop.authorization(value.as_bytes());
    }
    for value in req.headers().get_all("dpop") {
        pop = pop.dpop(value.as_bytes());
    }
    if let Some(cert) = cert {
        pop = pop.peer_certificate(cert.der());
    }
    pop
}

/// Write a [`Challenge`] as an actix response: its status, its `WWW-Authenticate`, empty body.
fn challenge_response(challenge: &Challenge) -> HttpResponse {
    let status = StatusCode::from_u16(challenge.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status);
    if let Some(value) = challenge.www_authenticate() {
        response.insert_header(("www-authenticate", value));
    }
    response.finish()
}

/// Middleware that verifies every request with a [`Verifier`]: `.wrap(RequirePop::new(v))`.
///
/// On success the request reaches the service with a [`Verified`] in its extensions; on failure
/// the service is not called and the response is the challenge, with the [`PopError`] in the
/// response extensions.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePop {
    verifier: Arc<Verifier>,
    allow_anonymous: bool,
}

impl RequirePop {
    /// Verify every request with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            allow_anonymous: false,
        }
    }

    /// Let requests without any credentials through with an [`Anonymous`] marker (optional
    /// authentication); requests with credentials are still verified.
    pub fn allow_anonymous(mut self) -> Self {
        self.allow_anonymous = true;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequirePop
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequirePopMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequirePopMiddleware {
            service: Rc::new(service),
            verifier: Arc::clone(&self.verifier),
            allow_anonymous: self.allow_anonymous,
        }))
    }
}

/// The service made by [`RequirePop`].
pub struct RequirePopMiddleware<S> {
    service: Rc<S>,
    verifier: Arc<Verifier>,
    allow_anonymous: bool,
}

impl<S> fmt::Debug for RequirePopMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePopMiddleware")
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

impl<S, B> Service<ServiceRequest> for RequirePopMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let verifier = Arc::clone(&self.verifier);
        let allow_anonymous = self.allow_anonymous;
        Box::pin(async move {
            let cert = req.extensions().get::<PeerCertificate>().cloned();
            let result = verifier
                .verify(&pop_request(req.request(), cert.as_ref()))
                .await;
            match result {
                Ok(verified) => {
                    req.extensions_mut().insert(verified);
                }
                Err(error)
                    if allow_anonymous && error.kind() == PopErrorKind::MissingCredentials =>
                {
                    req.extensions_mut()
                        .insert(Anonymous::from_challenge(verifier.challenge(&error)));
                }
                Err(error) => {
                    let mut response = challenge_response(&verifier.refuse(&error));
                    response.extensions_mut().insert(error);
                    return Ok(req.into_response(response).map_into_right_body());
                }
            }
            service
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        })
    }
}

/// A verified request: the token's claims as `C`, the binding proven, and the thumbprints.
///
/// The same name and shape as `axum_pop::PopAuth`.
#[derive(Debug, Clone)]
pub struct PopAuth<C = Claims> {
    /// The access token's claims.
    pub claims: C,
    /// Which binding was proven.
    pub binding: Binding,
    /// The proven DPoP key's RFC 7638 thumbprint (`cnf.jkt`).
    pub jkt: Option<String>,
    /// The proven client certificate's `x5t#S256`.
    pub certificate_thumbprint: Option<String>,
}

/// Why [`PopAuth`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum PopAuthRejection {
    /// No [`RequirePop`] middleware ran before this handler: a server bug, answered with 500.
    MissingLayer,
    /// The token is valid but its claims do not fit the handler's type: 401 `invalid_token`.
    ClaimsMismatch(Challenge),
    /// The middleware let an anonymous request through but this handler needs credentials:
    /// 401 with the no-credentials challenge.
    Anonymous(Challenge),
}

impl fmt::Display for PopAuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLayer => f.write_str("PopAuth used on a route without RequirePop"),
            Self::ClaimsMismatch(_) => f.write_str("token claims do not fit the handler"),
            Self::Anonymous(_) => f.write_str("no access token"),
        }
    }
}

impl ResponseError for PopAuthRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ClaimsMismatch(c) | Self::Anonymous(c) => {
                StatusCode::from_u16(c.status()).unwrap_or(StatusCode::UNAUTHORIZED)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::MissingLayer => HttpResponse::InternalServerError().body(self.to_string()),
            Self::ClaimsMismatch(c) | Self::Anonymous(c) => challenge_response(c),
        }
    }
}

impl<C: DeserializeOwned> FromRequest for PopAuth<C> {
    type Error = PopAuthRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        if let Some(anonymous) = extensions.get::<Anonymous>() {
            return ready(Err(PopAuthRejection::Anonymous(
                anonymous.challenge().clone(),
            )));
        }
        let Some(verified) = extensions.get::<Verified>() else {
            return ready(Err(PopAuthRejection::MissingLayer));
        };
        ready(
            verified
                .claims_as()
                .map_err(|_| PopAuthRejection::ClaimsMismatch(verified.claims_rejection()))
                .map(|claims| Self {
                    claims,
                    binding: verified.binding(),
                    jkt: verified.jkt().map(str::to_owned),
                    certificate_thumbprint: verified.certificate_thumbprint().map(str::to_owned),
                }),
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
                        .to(|auth: Option<PopAuth>| async move {
                            if auth.is_some() { "user" } else { "anonymous" }
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
            r#"Bearer, DPoP algs="ES256 PS256 EdDSA Ed25519""#
        );
    }
}
