//! The tower middleware: [`RequirePopLayer`], [`RequirePop`] and its [`ResponseFuture`].
//!
//! On success the request reaches the inner service with a [`Verified`] in its extensions. On
//! failure the inner service is not called: the layer answers itself, with the status and
//! `WWW-Authenticate` of [`crate::Challenge`], an empty body, and the [`PopError`] in the
//! response extensions so outer layers can log or count it. A rejection is a response, never a
//! service error: the inner service's error type passes through untouched.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_pop::{PopConfig, RequirePopLayer, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Arc::new(Verifier::new(
//!     PopConfig::builder()
//!         .public_origin("https://resource.example.org")
//!         .issuer("https://server.example.com")
//!         .audience("https://resource.example.org")
//!         .jwks_json(r#"{"keys":[]}"#)
//!         .build()
//!         .unwrap(),
//! ));
//! let service = ServiceBuilder::new()
//!     .layer(RequirePopLayer::new(verifier))
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("secret")))
//!     }));
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers().contains_key("www-authenticate"));
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{PopError, PopErrorKind};
use crate::extension::{Anonymous, Verified};
use crate::request::PopRequest;
use crate::verifier::Verifier;

/// Adds proof-of-possession verification to a service.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePopLayer {
    verifier: Arc<Verifier>,
    allow_anonymous: bool,
}

impl RequirePopLayer {
    /// A layer that verifies every request with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self {
            verifier,
            allow_anonymous: false,
        }
    }

    /// Let requests that carry no credentials at all through, with an [`Anonymous`] marker
    /// instead of a [`Verified`], for routes where authentication is optional. Requests that
    /// do carry credentials are still verified, and refused when they fail.
    pub fn allow_anonymous(mut self) -> Self {
        self.allow_anonymous = true;
        self
    }
}

impl<S> Layer<S> for RequirePopLayer {
    type Service = RequirePop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePop {
            inner,
            verifier: Arc::clone(&self.verifier),
            allow_anonymous: self.allow_anonymous,
        }
    }
}

/// The service made by [`RequirePopLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePop<S> {
    inner: S,
    verifier: Arc<Verifier>,
    allow_anonymous: bool,
}

/// Build the refusal for `error`: status, challenge, empty body, the error in the extensions.
fn rejection<B: Default>(verifier: &Verifier, error: PopError) -> Response<B> {
    let mut response = verifier.refuse(&error).to_response();
    response.extensions_mut().insert(error);
    response
}

type VerifyFuture<F, ResBody> = Pin<Box<dyn Future<Output = Result<F, Response<ResBody>>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequirePop<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Use the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        let allow_anonymous = self.allow_anonymous;
        let verify: VerifyFuture<S::Future, ResBody> = Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let result = verifier.verify(&PopRequest::from(&parts)).await;
            match result {
                Ok(verified) => {
                    parts.extensions.insert::<Verified>(verified);
                }
                Err(error)
                    if allow_anonymous && error.kind() == PopErrorKind::MissingCredentials =>
                {
                    parts.extensions.insert(Anonymous {
                        challenge: verifier.challenge(&error),
                    });
                }
                Err(error) => return Err(rejection(&verifier, error)),
            }
            Ok(inner.call(Request::from_parts(parts, body)))
        });
        ResponseFuture {
            state: State::Verifying { verify },
        }
    }
}

pin_project! {
    /// Response future of [`RequirePop`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Verifying { verify: VerifyFuture<F, B> },
        Inner { #[pin] future: F },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying { verify } => {
                    match std::task::ready!(verify.as_mut().poll(cx)) {
                        Ok(future) => this.state.set(State::Inner { future }),
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Inner { future } => return future.poll(cx),
            }
        }
    }
}
