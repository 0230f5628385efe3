//! axum adapter for [`tower_pop`]: the [`PopAuth`] extractor.
//!
//! This crate's [`RequirePopLayer`] is tower-pop's layer plus one axum detail: under
//! `Router::nest` axum strips the prefix from the request URI before route layers run, so the
//! layer reads axum's `OriginalUri` and checks `htu` against the URI the client actually sent.
//! The [`PopAuth`] extractor hands a handler the verified token, with its claims typed through
//! serde. The core is re-exported so one dependency line is enough. All checks live in
//! `tower-pop`; this crate only moves data between axum and it.
//!
//! | extractor | without the layer | anonymous (layer with `allow_anonymous`) | claims do not fit `C` |
//! |---|---|---|---|
//! | `PopAuth<C>` | 500 (a server bug) | 401 with the no-credentials challenge | 401 `invalid_token` |
//! | `Option<PopAuth<C>>` | 500 | `None` | 401 `invalid_token` |
//!
//! ```
//! use std::sync::Arc;
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
//! let verifier = Arc::new(Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .build().unwrap()));
//! let app = Router::new()
//!     .route("/whoami", get(whoami))
//!     .route_layer(RequirePopLayer::new(verifier));
//! let response = app.oneshot(Request::get("/whoami").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # }
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::OriginalUri;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

pub use tower_pop::{self, *};

#[cfg(feature = "rustls")]
pub mod tls;

/// [`tower_pop::RequirePopLayer`] for axum: the same verification, with the `htu` check made
/// against axum's `OriginalUri` (the URI before `Router::nest` stripped its prefix).
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePopLayer(tower_pop::RequirePopLayer);

impl RequirePopLayer {
    /// A layer that verifies every request with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self(tower_pop::RequirePopLayer::new(verifier))
    }

    /// Let requests without any credentials through (see
    /// [`tower_pop::RequirePopLayer::allow_anonymous`]); use with `Option<PopAuth<C>>`.
    pub fn allow_anonymous(self) -> Self {
        Self(self.0.allow_anonymous())
    }
}

impl<S> tower_layer::Layer<S> for RequirePopLayer {
    type Service = RequirePop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePop(self.0.layer(inner))
    }
}

/// The service made by this crate's [`RequirePopLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePop<S>(tower_pop::RequirePop<S>);

impl<S, B> tower_service::Service<http::Request<B>> for RequirePop<S>
where
    tower_pop::RequirePop<S>: tower_service::Service<http::Request<B>>,
{
    type Response =
        <tower_pop::RequirePop<S> as tower_service::Service<http::Request<B>>>::Response;
    type Error = <tower_pop::RequirePop<S> as tower_service::Service<http::Request<B>>>::Error;
    type Future = <tower_pop::RequirePop<S> as tower_service::Service<http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(OriginalUri(uri)) = request.extensions().get::<OriginalUri>().cloned() {
            request.extensions_mut().insert(OriginalTarget(uri));
        }
        self.0.call(request)
    }
}

/// The token's claims as a JSON object: the default claims type of [`PopAuth`].
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// A verified request: the token's claims as `C`, the binding proven, and the thumbprints.
///
/// The same name and shape as `actix_pop::PopAuth`.
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

impl<C: DeserializeOwned> PopAuth<C> {
    fn from_verified(verified: &Verified) -> Result<Self, PopAuthRejection> {
        let claims = verified
            .claims_as()
            .map_err(|_| PopAuthRejection::ClaimsMismatch(verified.claims_rejection()))?;
        Ok(Self {
            claims,
            binding: verified.binding(),
            jkt: verified.jkt().map(str::to_owned),
            certificate_thumbprint: verified.certificate_thumbprint().map(str::to_owned),
        })
    }
}

/// Why [`PopAuth`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum PopAuthRejection {
    /// No [`RequirePopLayer`] ran before this handler: a server bug, answered with 500.
    MissingLayer,
    /// The token is valid but its claims do not fit the handler's type: 401 `invalid_token`.
    ClaimsMismatch(Challenge),
    /// The layer let an anonymous request through but this handler needs credentials: 401
    /// with the no-credentials challenge.
    Anonymous(Challenge),
}

impl IntoResponse for PopAuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingLayer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "PopAuth used on a route without RequirePopLayer",
            )
                .into_response(),
            Self::ClaimsMismatch(challenge) | Self::Anonymous(challenge) => {
                challenge.to_response::<axum_core::body::Body>()
            }
        }
    }
}

impl<S: Send + Sync, C: DeserializeOwned + Send> FromRequestParts<S> for PopAuth<C> {
    type Rejection = PopAuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(anonymous) = parts.extensions.get::<Anonymous>() {
            return Err(PopAuthRejection::Anonymous(anonymous.challenge().clone()));
        }
        let verified = parts
            .extensions
            .get::<Verified>()
            .ok_or(PopAuthRejection::MissingLayer)?;
        Self::from_verified(verified)
    }
}

impl<S: Send + Sync, C: DeserializeOwned + Send> OptionalFromRequestParts<S> for PopAuth<C> {
    type Rejection = PopAuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(verified) = parts.extensions.get::<Verified>() {
            return Self::from_verified(verified).map(Some);
        }
        if parts.extensions.get::<Anonymous>().is_some() {
            return Ok(None);
        }
        Err(PopAuthRejection::MissingLayer)
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request;
    use tower::ServiceExt;

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
        let issuer = dpop::signer::ProofSigner::generate(Algorithm::ES256).unwrap();
        let client = dpop::signer::ProofSigner::generate(Algorithm::ES256).unwrap();
        let mut jwk: serde_json::Value = serde_json::from_str(&issuer.public_jwk()).unwrap();
        jwk["kid"] = serde_json::json!("k");
        let now = 1_700_000_000;
        let verifier = Arc::new(Verifier::new(
            PopConfig::builder()
                .public_origin("https://api.example.com")
                .issuer("https://as.example.com")
                .audience("https://api.example.com")
                .jwks_json(serde_json::json!({"keys": [jwk]}).to_string())
                .clock(Arc::new(ManualClock::new(now)))
                .build()
                .unwrap(),
        ));
        let token = issuer.sign_compact(
            &serde_json::json!({"typ": "at+jwt", "alg": "ES256", "kid": "k"}),
            &serde_json::json!({"iss": "https://as.example.com", "aud": "https://api.example.com",
                "sub": "alice", "exp": now + 60, "cnf": {"jkt": client.thumbprint()}}),
        );
        let inner = Router::new()
            .route(
                "/x",
                get(|auth: PopAuth| async move { auth.binding.as_str() }),
            )
            .route_layer(RequirePopLayer::new(verifier));
        let app = Router::new().nest("/api", inner);
        let send = |htu: &str| {
            let proof = client.proof_at("GET", htu, Some(&token), None, now);
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
            r#"Bearer, DPoP algs="ES256 PS256 EdDSA Ed25519""#
        );
        let bad = Request::get("/")
            .header("authorization", "DPoP not-a-token")
            .body(Body::empty())
            .unwrap();
        assert_eq!(status(app, bad).await, StatusCode::UNAUTHORIZED);
    }
}
