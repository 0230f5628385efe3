//! axum adapter for [`tower_pop`]: the [`PopAuth`] extractor.
//!
//! [`RequirePopLayer`] is a plain tower layer, so axum routes use it directly
//! (`Router::route_layer`); this crate adds the extractor that hands a handler the verified
//! token, with its claims typed through serde, and re-exports the core so one dependency line is
//! enough. All checks live in `tower-pop`; this crate only reads what the layer put in the
//! request extensions.
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

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

pub use tower_pop::{self, *};

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
                let status =
                    StatusCode::from_u16(challenge.status()).unwrap_or(StatusCode::UNAUTHORIZED);
                let mut response = status.into_response();
                if let Some(value) = challenge
                    .www_authenticate()
                    .and_then(|v| HeaderValue::from_str(v).ok())
                {
                    response
                        .headers_mut()
                        .insert(http::header::WWW_AUTHENTICATE, value);
                }
                response
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
    use std::sync::Arc;

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
