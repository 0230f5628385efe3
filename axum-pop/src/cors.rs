//! A CORS preset for browser apps that use DPoP from another origin, on tower-http's
//! [`CorsLayer`] (feature `cors`).
//!
//! [`dpop_cors`] allows exactly the given origins, the methods of [`tower_pop::cors::METHODS`],
//! the `Authorization`, `DPoP` and `Content-Type` request headers, and exposes `DPoP-Nonce`,
//! `WWW-Authenticate` and `Retry-After` (the names are [`tower_pop::cors`]'s, shared with
//! `actix-pop`). Credentials (cookies) are not allowed: a DPoP app sends its token in a header.
//!
//! **Order matters.** The CORS layer must wrap the [`RequirePopLayer`](crate::RequirePopLayer):
//! on a `Router`, the layer added last is the outermost, so call `.layer(dpop_cors(..)?)` after
//! `.route_layer(RequirePopLayer::new(..))`; in a `ServiceBuilder`, the first listed is the
//! outermost, so list the CORS layer first. Then a preflight (`OPTIONS`, which carries no
//! token) is answered by the CORS layer and never reaches the verifier, and a refusal (401 with
//! `WWW-Authenticate`, RFC 9449 §7.1) passes back out through the CORS layer, which adds
//! `Access-Control-Allow-Origin` and `Access-Control-Expose-Headers`, so the page can read the
//! challenge and the `DPoP-Nonce` it is asked to use (RFC 9449 §8). With the CORS layer inside,
//! the browser sees a refused preflight and the app sees only "failed to fetch".
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use axum_pop::{PopAuth, PopConfig, RequirePopLayer, Verifier, cors::dpop_cors};
//! use http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::new(PopConfig::builder()
//!     .public_origin("https://api.example.com")
//!     .issuer("https://as.example.com")
//!     .audience("https://api.example.com")
//!     .jwks_json(r#"{"keys":[]}"#)
//!     .build().unwrap());
//! let app = Router::new()
//!     .route("/whoami", get(|auth: PopAuth| async move { auth.binding.as_str() }))
//!     .route_layer(RequirePopLayer::new(verifier))
//!     // Outside the verifier: added after it.
//!     .layer(dpop_cors(["https://app.example.com"]).expect("valid origins"));
//!
//! // The preflight is answered without a token.
//! let preflight = Request::options("/whoami")
//!     .header("origin", "https://app.example.com")
//!     .header("access-control-request-method", "GET")
//!     .header("access-control-request-headers", "authorization,dpop")
//!     .body(Body::empty()).unwrap();
//! let response = app.clone().oneshot(preflight).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
//!
//! // A refusal still carries the CORS headers, so the page can read the challenge.
//! let call = Request::get("/whoami")
//!     .header("origin", "https://app.example.com")
//!     .body(Body::empty()).unwrap();
//! let response = app.oneshot(call).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
//! assert_eq!(
//!     response.headers()["access-control-expose-headers"],
//!     "dpop-nonce,www-authenticate,retry-after",
//! );
//! # }
//! ```

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::AllowOrigin;
use tower_pop::ConfigError;
use tower_pop::cors::{EXPOSE_HEADERS, MAX_AGE, METHODS, REQUEST_HEADERS, allowed_origins};

pub use tower_http::cors::CorsLayer;

/// A [`CorsLayer`] that lets browser apps on `origins` call a DPoP-protected API: see the
/// [module docs](self), and add it outside the `RequirePopLayer`.
///
/// Each origin must be exactly what browsers send in `Origin` (`https://app.example.com`,
/// `http://localhost:3000`: no path, no trailing slash, no default port, no wildcard).
///
/// # Errors
/// A [`ConfigError`] quoting the first origin that is not one, or when `origins` is empty.
pub fn dpop_cors<I, S>(origins: I) -> Result<CorsLayer, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let origins = allowed_origins(origins)?;
    let origins = origins.iter().map(|origin| {
        // Checked above: ASCII without controls, always a valid header value.
        HeaderValue::from_str(origin).map_err(|_| ConfigError::InvalidCorsOrigin {
            origin: origin.clone(),
            reason: "not a header value",
        })
    });
    let origins = origins.collect::<Result<Vec<_>, _>>()?;
    // Every name in METHODS is a standard method.
    let methods: Vec<Method> = METHODS
        .iter()
        .filter_map(|m| Method::from_bytes(m.as_bytes()).ok())
        .collect();
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods(methods)
        .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSE_HEADERS.map(HeaderName::from_static))
        .max_age(MAX_AGE))
}
