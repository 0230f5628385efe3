//! axum adapter for [`tower_pop`]: the [`RequirePopLayer`] and the [`PopAuth`] /
//! [`MaybePopAuth`] extractors.
//!
//! This crate's [`RequirePopLayer`] is tower-pop's layer plus two axum details: under
//! `Router::nest` axum strips the prefix from the request URI before route layers run, so the
//! layer reads axum's `OriginalUri` and checks `htu` against the URI the client actually sent;
//! and it passes axum's `ConnectInfo<SocketAddr>` on as the peer address, which trusted-proxy
//! certificates need (serve with `into_make_service_with_connect_info::<SocketAddr>()`, or with
//! [`tls::serve_tls`] under the `rustls` feature, which inserts both the address and the client
//! certificate).
//! The extractors hand a handler the verified token ([`tower_pop::Auth`]), with its claims typed
//! through serde. All checks, and the rule of what each extractor answers, live in `tower-pop`;
//! this crate only moves data between axum and it, and mirrors `actix-pop` name for name.
//!
//! | extractor | without the layer | anonymous (layer with `allow_anonymous`) | claims do not fit `C` |
//! |---|---|---|---|
//! | `PopAuth<C>` | 500, fixed body | 401 with the no-credentials challenge | 401 `invalid_token` |
//! | `MaybePopAuth<C>` | 500, fixed body | `MaybePopAuth(None)` | 401 `invalid_token` |
//! | `Option<PopAuth<C>>` | 500, fixed body | `None` | 401 `invalid_token` |
//!
//! `MaybePopAuth` is the portable spelling: on actix-web `Option<PopAuth>` cannot fail closed.
//!
//! Features: `rustls` ([`tls`]: serve over rustls with client-certificate capture); `cors`
//! ([`cors::dpop_cors`]: tower-http's `CorsLayer` set up for browser apps using DPoP from
//! another origin, to add outside the layer).
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use axum_pop::{PopAuth, PopConfig, RequirePopLayer, Verifier};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! #[derive(serde::Deserialize)]
//! struct Claims { sub: String }
//!
//! async fn whoami(auth: PopAuth<Claims>) -> String {
//!     format!("{} via {}", auth.claims.sub, auth.binding.as_str())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .build().unwrap());
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route_layer(RequirePopLayer::new(verifier));
//! let response = app.oneshot(Request::get("/whoami").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

// docs.rs (nightly rustdoc, `--cfg docsrs`): a badge on every item a feature gates.
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use tower_pop::extension::{Anonymous, AuthRejection, FromClaims};
pub use tower_pop::layer::{DefaultRejection, RejectionResponse};
use tower_pop::request::{OriginalTarget, PeerAddr};
use tower_pop::{Auth, Verified};

pub use tower_pop;
pub use tower_pop::{
    Algorithm, Binding, Challenge, Claims, ConfigError, PeerCertificate, PolicyBuilder, PopConfig,
    PopConfigBuilder, PopError, PopErrorKind, Refusal, RoutePolicy, SharedClaims, Verifier,
};

#[cfg(feature = "cors")]
pub mod cors;
/// RFC 9421 request signatures by the token's bound key: add [`RequireSignatureLayer`] inside
/// [`RequirePopLayer`] (`.route_layer(RequireSignatureLayer::new(..))` before
/// `.route_layer(RequirePopLayer::new(..))`). The same checks and answers as
/// `actix_pop::signature::RequireSignature`.
#[cfg(feature = "lifetime")]
pub mod lifetime;
#[cfg(feature = "httpsig")]
pub use tower_pop::httpsig::{RequireSignature, RequireSignatureLayer, SignaturePolicy};
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "rustls")]
pub mod tls;

/// [`tower_pop::RequirePopLayer`] for axum: the same verification, with the `htu` check made
/// against axum's `OriginalUri` (the URI before `Router::nest` stripped its prefix).
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePopLayer<R = DefaultRejection>(tower_pop::RequirePopLayer<R>);

impl RequirePopLayer {
    /// A layer that verifies every request with `verifier` (a `Verifier` or an `Arc<Verifier>`).
    pub fn new(verifier: impl Into<Arc<Verifier>>) -> Self {
        Self(tower_pop::RequirePopLayer::new(verifier))
    }
}

impl<R> PolicyBuilder for RequirePopLayer<R> {
    fn route_policy(&self) -> &RoutePolicy {
        self.0.route_policy()
    }

    fn map_policy(self, change: impl FnOnce(RoutePolicy) -> RoutePolicy) -> Self {
        Self(self.0.map_policy(change))
    }
}

impl<R> RequirePopLayer<R> {
    /// Build refusals with `rejection` (see
    /// [`tower_pop::RequirePopLayer::with_rejection_response`]); the status and challenge
    /// headers stay the layer's.
    pub fn with_rejection_response<R2>(self, rejection: R2) -> RequirePopLayer<R2> {
        RequirePopLayer(self.0.with_rejection_response(rejection))
    }

    /// Refusals as gRPC statuses, for a tonic service served as an axum `Router`
    /// (`tonic::service::Routes::into_axum_router`): see [`tower_pop::RequirePopLayer::grpc`].
    pub fn grpc(self) -> Self {
        Self(self.0.grpc())
    }

    /// Require `scope` on calls to `path` only (a gRPC method): see
    /// [`tower_pop::RequirePopLayer::require_scope_for`].
    ///
    /// # Errors
    /// When `scope` is not an RFC 6749 scope-token.
    pub fn require_scope_for(
        self,
        path: &str,
        scope: &str,
    ) -> Result<Self, tower_pop::ConfigError> {
        self.0.require_scope_for(path, scope).map(Self)
    }
}

impl<S, R: Clone> tower_layer::Layer<S> for RequirePopLayer<R> {
    type Service = RequirePop<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePop(self.0.layer(inner))
    }
}

/// The service made by this crate's [`RequirePopLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePop<S, R = DefaultRejection>(tower_pop::RequirePop<S, R>);

impl<S, R> RequirePop<S, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        self.0.get_ref()
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        self.0.get_mut()
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.0.into_inner()
    }
}

impl<S, R, B> tower_service::Service<http::Request<B>> for RequirePop<S, R>
where
    tower_pop::RequirePop<S, R>: tower_service::Service<http::Request<B>>,
{
    type Response =
        <tower_pop::RequirePop<S, R> as tower_service::Service<http::Request<B>>>::Response;
    type Error = <tower_pop::RequirePop<S, R> as tower_service::Service<http::Request<B>>>::Error;
    type Future = <tower_pop::RequirePop<S, R> as tower_service::Service<http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Under `Router::nest` the URI lost its prefix: `htu` is checked against the original.
        let nested = request
            .extensions()
            .get::<OriginalUri>()
            .filter(|OriginalUri(uri)| uri.path() != request.uri().path())
            .map(|OriginalUri(uri)| OriginalTarget(uri.clone()));
        let extensions = request.extensions_mut();
        if let Some(original) = nested {
            extensions.insert(original);
        }
        if let Some(ConnectInfo(addr)) = extensions.get::<ConnectInfo<SocketAddr>>().copied() {
            extensions.insert(PeerAddr(addr));
        }
        self.0.call(request)
    }
}

/// The RFC 9728 protected resource metadata route, unauthenticated, when the verifier has a
/// document ([`PopConfigBuilder::resource_metadata`]). Merge it next to the protected routes:
/// `app.merge(metadata_route(&verifier).unwrap_or_default())`. The same shape as
/// `actix_pop::metadata_route`.
pub fn metadata_route<S: Clone + Send + Sync + 'static>(
    verifier: &Verifier,
) -> Option<axum::Router<S>> {
    let doc = verifier.resource_document()?;
    let body = doc.json().to_owned();
    Some(axum::Router::new().route(
        doc.path(),
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    ))
}

/// [`metadata_route`], or an empty router without a document (the 0.1 shape).
#[doc(hidden)]
pub fn metadata_router<S: Clone + Send + Sync + 'static>(verifier: &Verifier) -> axum::Router<S> {
    metadata_route(verifier).unwrap_or_default()
}

/// A verified request: dereferences to [`tower_pop::Auth`] (`claims` as `C`, `binding`, `jkt`,
/// `certificate_thumbprint`). The same name and shape as `actix_pop::PopAuth`.
#[derive(Debug, Clone)]
pub struct PopAuth<C = Claims>(pub Auth<C>);

/// Optional authentication: `MaybePopAuth(None)` for an anonymous request let through by
/// [`RequirePopLayer::allow_anonymous`]. Without the layer it is a 500, never `None`.
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

/// Why [`PopAuth`] or [`MaybePopAuth`] could not be extracted: [`AuthRejection`] as an axum
/// response (500 with a fixed body for a missing layer, else the RFC challenge).
#[derive(Debug)]
pub struct PopAuthRejection(pub AuthRejection);

impl std::fmt::Display for PopAuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for PopAuthRejection {}

impl IntoResponse for PopAuthRejection {
    fn into_response(self) -> Response {
        match self.0.challenge() {
            Some(challenge) => challenge.to_response::<axum::body::Body>(),
            None => (
                StatusCode::INTERNAL_SERVER_ERROR,
                AuthRejection::MISSING_LAYER_BODY,
            )
                .into_response(),
        }
    }
}

fn markers(parts: &Parts) -> (Option<&Verified>, Option<&Anonymous>) {
    (parts.extensions.get(), parts.extensions.get())
}

impl<S: Send + Sync, C: FromClaims + Send> FromRequestParts<S> for PopAuth<C> {
    type Rejection = PopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (verified, anonymous) = markers(parts);
        Auth::require(verified, anonymous)
            .map(Self)
            .map_err(PopAuthRejection)
    }
}

impl<S: Send + Sync, C: FromClaims + Send> FromRequestParts<S> for MaybePopAuth<C> {
    type Rejection = PopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (verified, anonymous) = markers(parts);
        Auth::extract(verified, anonymous)
            .map(Self)
            .map_err(PopAuthRejection)
    }
}

impl<S: Send + Sync, C: FromClaims + Send> OptionalFromRequestParts<S> for PopAuth<C> {
    type Rejection = PopAuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let MaybePopAuth(auth) =
            <MaybePopAuth<C> as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        Ok(auth.map(Self))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt;

    use tower_pop::{ManualClock, dpop};

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

    async fn status(app: Router, request: Request<Body>) -> StatusCode {
        app.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn nested_routers_check_htu_against_the_original_uri() {
        let issuer = tower_pop::test_util::TestIssuer::new(
            "https://as.example.com",
            "https://api.example.com",
        );
        let client = dpop::signer::ProofSigner::generate(Algorithm::ES256).unwrap();
        let now = 1_700_000_000;
        let verifier = Arc::new(Verifier::new(
            PopConfig::builder()
                .public_origin("https://api.example.com")
                .issuer(issuer.issuer())
                .audience(issuer.audience())
                .jwks_json(issuer.jwks_json())
                .clock(Arc::new(ManualClock::new(now)))
                .build()
                .unwrap(),
        ));
        let token = issuer.dpop_token(now, client.thumbprint());
        let inner = Router::new()
            .route(
                "/x",
                get(|auth: PopAuth| async move { auth.binding.as_str() }),
            )
            .route_layer(RequirePopLayer::new(verifier));
        let app = Router::new().nest("/api", inner);
        let send = |htu: &str| {
            let proof = client
                .proof_at("GET", htu, Some(&token), None, now)
                .unwrap();
            Request::get("/api/x")
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .body(Body::empty())
                .unwrap()
        };
        let ok = app
            .clone()
            .oneshot(send("https://api.example.com/api/x"))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let stripped = app
            .oneshot(send("https://api.example.com/x"))
            .await
            .unwrap();
        assert_eq!(stripped.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn missing_layer_is_a_500() {
        let app = Router::new().route("/", get(|_: PopAuth| async { "x" }));
        let request = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(
            status(app, request).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let app = Router::new().route("/", get(|_: Option<PopAuth>| async { "x" }));
        let request = Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(
            status(app, request).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn optional_auth_lets_anonymous_requests_through_but_not_bad_ones() {
        let app = Router::new()
            .route(
                "/",
                get(|auth: Option<PopAuth>| async move {
                    if auth.is_some() { "user" } else { "anonymous" }
                }),
            )
            .route_layer(RequirePopLayer::new(verifier()).allow_anonymous());
        let anonymous = Request::get("/").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(anonymous).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // A handler that requires credentials behind the same layer answers 401 with challenge.
        let strict = Router::new()
            .route("/", get(|_: PopAuth| async { "user" }))
            .route_layer(RequirePopLayer::new(verifier()).allow_anonymous());
        let response = strict
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"DPoP algs="ES256 PS256 EdDSA Ed25519""#
        );
        let bad = Request::get("/")
            .header("authorization", "DPoP not-a-token")
            .body(Body::empty())
            .unwrap();
        assert_eq!(status(app, bad).await, StatusCode::UNAUTHORIZED);
    }
}

/// The README's example, compiled and run as a doc-test so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
