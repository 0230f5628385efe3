//! The tower middleware: [`RequirePopLayer`], [`RequirePop`] and its [`ResponseFuture`].
//!
//! On success the request reaches the inner service with a [`Verified`] in its
//! extensions. On failure the inner service is not called: the layer answers itself, with the
//! status and `WWW-Authenticate` of [`crate::challenge::Challenge`], an empty body (or one built by
//! [`RequirePopLayer::with_rejection_response`]), and the [`PopError`](crate::error::PopError) in the
//! response extensions so outer layers can log or count it. A rejection is a response, never a
//! service error: the inner service's error type passes through untouched.
//!
//! ```
//! use std::sync::Arc;
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_pop::{PopConfig, PopError, Refusal, RequirePopLayer, Verifier};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::new(
//!     PopConfig::builder()
//!         .public_origin("https://resource.example.org")
//!         .issuer("https://server.example.com")
//!         .audience("https://resource.example.org")
//!         .jwks_json(r#"{"keys":[]}"#)
//!         .build()
//!         .unwrap(),
//! );
//! let service = ServiceBuilder::new()
//!     // A JSON body for refusals; status and challenge headers are still the layer's.
//!     .layer(RequirePopLayer::new(verifier).with_rejection_response(|refusal: &Refusal| {
//!         Response::new(format!(r#"{{"error":"{}"}}"#, refusal.error()))
//!     }))
//!     .service(service_fn(|_req: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("secret")))
//!     }));
//! let response = service.oneshot(Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert!(response.headers().contains_key("www-authenticate"));
//! assert!(response.extensions().get::<PopError>().is_some());
//! assert_eq!(response.into_body(), r#"{"error":"no access token"}"#);
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::challenge::ResponseHeaders;
use crate::extension::Verified;
use crate::macros::inner_service_accessors;
use crate::policy::{PolicyBuilder, RoutePolicy};
use crate::request::{OriginalTarget, PopRequest};
use crate::verifier::{Outcome, Refusal, Verifier};

/// Builds the response for a refused request; the layer then sets the status, the challenge
/// headers and the error extension on it, so a custom builder cannot get the protocol wrong.
///
/// Implemented for closures `Fn(&Refusal) -> Response<B>` and for [`DefaultRejection`].
pub trait RejectionResponse<B> {
    /// The response (typically its body and extra headers) for `refusal`.
    fn response(&self, refusal: &Refusal) -> Response<B>;
}

/// The default rejection: an empty body.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl<B: Default> RejectionResponse<B> for DefaultRejection {
    fn response(&self, _refusal: &Refusal) -> Response<B> {
        Response::new(B::default())
    }
}

impl<B, F> RejectionResponse<B> for F
where
    F: Fn(&Refusal) -> Response<B>,
{
    fn response(&self, refusal: &Refusal) -> Response<B> {
        self(refusal)
    }
}

/// Adds proof-of-possession verification to a service.
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePopLayer<R = DefaultRejection> {
    verifier: Arc<Verifier>,
    policy: Arc<RoutePolicy>,
    rejection: R,
    /// Refusals as gRPC statuses ([`grpc`](Self::grpc)).
    grpc: bool,
    /// Policies for single paths ([`require_scope_for`](Self::require_scope_for)).
    per_path: Arc<[PathPolicy]>,
}

/// A path's scopes on top of the layer's policy, and the two combined.
#[derive(Debug, Clone)]
struct PathPolicy {
    path: Box<str>,
    scopes: Vec<String>,
    policy: Arc<RoutePolicy>,
}

impl PathPolicy {
    /// `base` with this path's scopes (each already checked).
    fn combine(&self, base: &RoutePolicy) -> Arc<RoutePolicy> {
        let policy = self
            .scopes
            .iter()
            .fold(base.clone(), |policy, scope| policy.with_scope(scope));
        Arc::new(policy)
    }
}

impl RequirePopLayer {
    /// A layer that verifies every request with `verifier` (a `Verifier` or an
    /// `Arc<Verifier>`).
    pub fn new(verifier: impl Into<Arc<Verifier>>) -> Self {
        Self {
            verifier: verifier.into(),
            policy: Arc::new(RoutePolicy::new()),
            rejection: DefaultRejection,
            grpc: false,
            per_path: Arc::new([]),
        }
    }
}

impl<R> PolicyBuilder for RequirePopLayer<R> {
    fn route_policy(&self) -> &RoutePolicy {
        &self.policy
    }

    fn map_policy(mut self, change: impl FnOnce(RoutePolicy) -> RoutePolicy) -> Self {
        self.policy = Arc::new(change((*self.policy).clone()));
        // Paths with scopes of their own keep them on top of the new policy.
        if !self.per_path.is_empty() {
            let per_path: Vec<PathPolicy> = self
                .per_path
                .iter()
                .map(|entry| PathPolicy {
                    policy: entry.combine(&self.policy),
                    ..entry.clone()
                })
                .collect();
            self.per_path = per_path.into();
        }
        self
    }
}

impl<R> RequirePopLayer<R> {
    /// Build refusals with `rejection` (a closure `Fn(&Refusal) -> Response<B>` or a
    /// [`RejectionResponse`]) instead of an empty body. The status, `WWW-Authenticate` and the
    /// [`PopError`](crate::error::PopError) extension are set by the layer afterwards.
    pub fn with_rejection_response<R2>(self, rejection: R2) -> RequirePopLayer<R2> {
        RequirePopLayer {
            verifier: self.verifier,
            policy: self.policy,
            rejection,
            grpc: self.grpc,
            per_path: self.per_path,
        }
    }

    /// Require `scope` on calls to `path` only, on top of the layer's policy: for a gRPC
    /// service, one method (`/package.Service/Method`) may need a scope its siblings do not.
    /// Scopes for one path add up; the layer's policy, set before or after, still applies to it.
    /// The path is matched exactly, against the path the client sent (under `Router::nest`,
    /// the full one), as `htu` is.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`](crate::error::ConfigError::InvalidScope) when `scope` is not
    /// an RFC 6749 scope-token; [`ConfigError::InvalidPath`](crate::error::ConfigError::InvalidPath)
    /// when `path` does not start with `/`.
    pub fn require_scope_for(
        mut self,
        path: &str,
        scope: &str,
    ) -> Result<Self, crate::error::ConfigError> {
        if !path.starts_with('/') {
            return Err(crate::error::ConfigError::InvalidPath {
                path: path.to_owned(),
            });
        }
        crate::policy::check_scope(scope)?;
        let mut per_path = self.per_path.to_vec();
        match per_path.iter_mut().find(|p| &*p.path == path) {
            Some(entry) => entry.scopes.push(scope.to_owned()),
            None => per_path.push(PathPolicy {
                path: path.into(),
                scopes: vec![scope.to_owned()],
                policy: Arc::clone(&self.policy),
            }),
        }
        for entry in &mut per_path {
            entry.policy = entry.combine(&self.policy);
        }
        self.per_path = per_path.into();
        Ok(self)
    }

    /// Protect a gRPC service (tonic): each call is verified as a `POST` to the public origin
    /// plus the call's path (`/package.Service/Method`), and a refusal is a gRPC status in a
    /// trailers-only response (HTTP 200, `grpc-status`, `grpc-message`, with the same
    /// `WWW-Authenticate` and `DPoP-Nonce` as metadata; see
    /// [`Challenge::apply_grpc`](crate::challenge::Challenge::apply_grpc)), since a gRPC client
    /// reads no HTTP 401. A streaming call is verified once, when it opens; the handler learns
    /// when the authorization ends from [`Verified::expires_at`].
    ///
    /// ```
    /// use http::{Request, Response};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use tower_pop::{PopConfig, RequirePopLayer, Verifier};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let verifier = Verifier::new(
    ///     PopConfig::builder()
    ///         .public_origin("https://grpc.example.org")
    ///         .issuer("https://server.example.com")
    ///         .audience("https://grpc.example.org")
    ///         .jwks_json(r#"{"keys":[]}"#)
    ///         .build()
    ///         .unwrap(),
    /// );
    /// let service = ServiceBuilder::new()
    ///     .layer(RequirePopLayer::new(verifier).grpc())
    ///     .service(service_fn(|_req: Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(Response::new(String::new()))
    ///     }));
    /// let call = Request::post("/pop.example.v1.WhoAmI/Get").body(String::new()).unwrap();
    /// let response = service.oneshot(call).await.unwrap();
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()["grpc-status"], "16"); // UNAUTHENTICATED
    /// assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("DPoP"));
    /// # }
    /// ```
    pub fn grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    /// The verifier.
    #[must_use]
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}

impl<S, R: Clone> Layer<S> for RequirePopLayer<R> {
    type Service = RequirePop<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePop {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RequirePopLayer`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RequirePop<S, R = DefaultRejection> {
    inner: S,
    layer: RequirePopLayer<R>,
}

impl<S> RequirePop<S> {
    /// Wrap `inner`, verifying every request with `verifier`.
    pub fn new(inner: S, verifier: impl Into<Arc<Verifier>>) -> Self {
        RequirePopLayer::new(verifier).layer(inner)
    }

    /// A layer that wraps services in [`RequirePop`]; the same as [`RequirePopLayer::new`].
    pub fn layer(verifier: impl Into<Arc<Verifier>>) -> RequirePopLayer {
        RequirePopLayer::new(verifier)
    }
}

impl<S, R> RequirePop<S, R> {
    inner_service_accessors!();
}

type VerifyFuture = Pin<Box<dyn Future<Output = (Parts, Outcome)> + Send>>;

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequirePop<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    R: RejectionResponse<ResBody> + Clone,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, R, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Use the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.layer.verifier);
        // The path the client sent, as `htu` is checked against it.
        let path = OriginalTarget::or(request.extensions(), request.uri()).path();
        let policy = self
            .layer
            .per_path
            .iter()
            .find(|p| &*p.path == path)
            .map_or(&self.layer.policy, |p| &p.policy);
        let policy = Arc::clone(policy);
        let (parts, body) = request.into_parts();
        let verify: VerifyFuture = Box::pin(async move {
            let reused = parts
                .extensions
                .get::<Verified>()
                .and_then(|v| verifier.reuse(v, &policy));
            let outcome = match reused {
                Some(outcome) => outcome,
                None => verifier.decide(&PopRequest::from(&parts), &policy).await,
            };
            (parts, outcome)
        });
        ResponseFuture {
            state: State::Verifying {
                verify,
                pending: Some(Pending {
                    inner,
                    body,
                    rejection: self.layer.rejection.clone(),
                    grpc: self.layer.grpc,
                }),
            },
        }
    }
}

/// What waits while the request is verified.
struct Pending<S, R, B> {
    inner: S,
    body: B,
    rejection: R,
    grpc: bool,
}

pin_project! {
    /// Response future of [`RequirePop`].
    pub struct ResponseFuture<S, R, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, R, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, R, B>
    where
        S: Service<Request<B>>,
    {
        Verifying { verify: VerifyFuture, pending: Option<Pending<S, R, B>> },
        Inner { #[pin] future: S::Future, headers: ResponseHeaders },
    }
}

impl<S: Service<Request<B>>, R, B> std::fmt::Debug for ResponseFuture<S, R, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, R, ReqBody, ResBody> Future for ResponseFuture<S, R, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: RejectionResponse<ResBody>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying { verify, pending } => {
                    let (mut parts, outcome) = std::task::ready!(verify.as_mut().poll(cx));
                    let Some(Pending {
                        mut inner,
                        body,
                        rejection,
                        grpc,
                    }) = pending.take()
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let headers = match outcome {
                        Outcome::Verified(verified) => {
                            let headers = verified.response_headers().clone();
                            parts.extensions.insert(verified);
                            headers
                        }
                        Outcome::Anonymous(anonymous) => {
                            let headers = anonymous.response_headers().clone();
                            parts.extensions.insert(anonymous);
                            headers
                        }
                        Outcome::Refused(refusal) => {
                            let mut response = rejection.response(&refusal);
                            if grpc {
                                refusal.challenge().apply_grpc(&mut response);
                            } else {
                                refusal.challenge().apply(&mut response);
                            }
                            response.extensions_mut().insert(refusal.into_error());
                            return Poll::Ready(Ok(response));
                        }
                    };
                    let future = inner.call(Request::from_parts(parts, body));
                    this.state.set(State::Inner { future, headers });
                }
                StateProj::Inner { future, headers } => {
                    let mut response = std::task::ready!(future.poll(cx))?;
                    headers.apply(&mut response);
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
