//! A CORS preset for browser apps that use DPoP from another origin, on actix-cors's [`Cors`]
//! middleware (feature `cors`); the same settings as `axum_pop::cors`.
//!
//! [`dpop_cors`] allows exactly the given origins, the methods of [`tower_pop::cors::METHODS`],
//! the `Authorization`, `DPoP` and `Content-Type` request headers, and exposes `DPoP-Nonce`,
//! `WWW-Authenticate` and `Retry-After` (the names are [`tower_pop::cors`]'s, shared with
//! `axum-pop`). Credentials (cookies) are not allowed: a DPoP app sends its token in a header.
//! A request from an origin not listed is served without CORS headers (as with tower-http), so
//! the browser keeps the answer from the page; its preflight is answered 400 (tower-http answers
//! 200 without `Access-Control-Allow-Origin`): the browser refuses either way.
//!
//! **Order matters.** The CORS middleware must wrap [`RequirePop`](crate::RequirePop): put it on
//! the `App` (`App::new().wrap(dpop_cors(..)?)`), which is outside every resource's own
//! `.wrap(RequirePop::new(..))`; when both are on the same `App` or scope, the `.wrap` called
//! last is the outermost, so wrap the CORS middleware last. Then a preflight (`OPTIONS`, which
//! carries no token) is answered by the CORS middleware and never reaches the verifier, and a
//! refusal (401 with `WWW-Authenticate`, RFC 9449 §7.1) passes back out through it and gets
//! `Access-Control-Allow-Origin` and `Access-Control-Expose-Headers`, so the page can read the
//! challenge and the `DPoP-Nonce` it is asked to use (RFC 9449 §8).
//!
//! ```
//! use actix_web::{App, HttpResponse, test, web};
//! use actix_pop::{PopAuth, PopConfig, RequirePop, Verifier, cors::dpop_cors};
//!
//! async fn whoami(auth: PopAuth) -> HttpResponse {
//!     HttpResponse::Ok().body(auth.binding.as_str())
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
//!     App::new()
//!         // On the App: outside the resource's RequirePop.
//!         .wrap(dpop_cors(["https://app.example.com"]).expect("valid origins"))
//!         .service(web::resource("/whoami").wrap(RequirePop::new(verifier)).to(whoami)),
//! ).await;
//!
//! // The preflight is answered without a token.
//! let preflight = test::TestRequest::default()
//!     .method(actix_web::http::Method::OPTIONS)
//!     .uri("/whoami")
//!     .insert_header(("origin", "https://app.example.com"))
//!     .insert_header(("access-control-request-method", "GET"))
//!     .insert_header(("access-control-request-headers", "authorization,dpop"))
//!     .to_request();
//! let response = test::call_service(&app, preflight).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), "https://app.example.com");
//!
//! // A refusal still carries the CORS headers, so the page can read the challenge.
//! let call = test::TestRequest::get()
//!     .uri("/whoami")
//!     .insert_header(("origin", "https://app.example.com"))
//!     .to_request();
//! let response = test::call_service(&app, call).await;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers().get("access-control-allow-origin").unwrap(), "https://app.example.com");
//! let exposed = response.headers().get("access-control-expose-headers").unwrap().to_str().unwrap();
//! assert!(exposed.contains("www-authenticate") && exposed.contains("dpop-nonce"));
//! # });
//! ```

use tower_pop::ConfigError;
use tower_pop::cors::{EXPOSE_HEADERS, MAX_AGE, METHODS, REQUEST_HEADERS, allowed_origins};

pub use actix_cors::Cors;

/// A [`Cors`] middleware that lets browser apps on `origins` call a DPoP-protected API: see the
/// [module docs](self), and wrap it outside `RequirePop`.
///
/// Each origin must be exactly what browsers send in `Origin` (`https://app.example.com`,
/// `http://localhost:3000`: no path, no trailing slash, no default port, no wildcard).
///
/// # Errors
/// A [`ConfigError`] quoting the first origin that is not one, or when `origins` is empty.
pub fn dpop_cors<I, S>(origins: I) -> Result<Cors, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let origins = allowed_origins(origins)?;
    let max_age = usize::try_from(MAX_AGE.as_secs()).unwrap_or(usize::MAX);
    // `Cors::default()` is actix-cors's restrictive base: no origin, method or header, no
    // credentials; a mismatched origin is passed through without CORS headers.
    let cors = origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    Ok(cors
        .allowed_methods(METHODS)
        .allowed_headers(REQUEST_HEADERS)
        .expose_headers(EXPOSE_HEADERS)
        .max_age(max_age)
        .block_on_origin_mismatch(false))
}
