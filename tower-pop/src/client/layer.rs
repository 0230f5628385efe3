//! The tower client middleware: [`SignDpopLayer`], [`SignDpop`] and its [`ResponseFuture`].

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt as _;
use tower_layer::Layer;
use tower_service::Service;

use super::wire::{self, NonceAsk, Target};
use super::{BoxError, ResponseBody, Shared, signing_builder};
use crate::dpop::signer::ProofSigner;
use crate::macros::inner_service_accessors;

/// A request body that may be sent twice, for the one retry after `use_dpop_nonce`.
///
/// Every `Clone` body is replayable (`String`, `Vec<u8>`, `Bytes`, `http_body_util::Full`,
/// `Empty`). A streaming body type of your own can implement it returning `None`: such requests
/// are signed but never retried, and the `use_dpop_nonce` answer is handed back (with the new
/// nonce remembered, so the next request carries it).
pub trait ReplayBody: Sized {
    /// A copy to send again, or `None` if the body cannot be replayed.
    fn try_clone(&self) -> Option<Self>;
}

impl<B: Clone> ReplayBody for B {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

/// Adds a fresh DPoP proof to every request of the wrapped client service, and retries once
/// when the server asks for a nonce. See [the module docs](super).
#[derive(Clone, Debug)]
#[must_use]
pub struct SignDpopLayer {
    shared: Shared,
}

impl SignDpopLayer {
    signing_builder!();

    fn from_shared(shared: Shared) -> Self {
        Self { shared }
    }
}

impl<S> Layer<S> for SignDpopLayer {
    type Service = SignDpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignDpop {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`SignDpopLayer`].
#[derive(Clone, Debug)]
pub struct SignDpop<S> {
    inner: S,
    shared: Shared,
}

impl<S> SignDpop<S> {
    /// Wrap `inner`, signing with `layer`'s signer and nonces.
    pub fn new(inner: S, layer: &SignDpopLayer) -> Self {
        layer.layer(inner)
    }

    /// A layer for this service.
    pub fn layer(signer: impl Into<Arc<ProofSigner>>) -> SignDpopLayer {
        SignDpopLayer::new(signer)
    }

    inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for SignDpop<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError> + Send,
    B: ReplayBody + Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Send,
{
    type Response = Response<ResponseBody<ResBody>>;
    /// The inner service's error, or a [`SignerError`](crate::dpop::signer::SignerError) when
    /// no proof could be made (the request is then not sent).
    type Error = BoxError;
    type Future = ResponseFuture<ResBody, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Use the service that was readied; keep a fresh clone for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let future = async move {
            let Some(target) = Target::from_uri(req.uri()) else {
                tracing::warn!(
                    target: crate::observe::CLIENT,
                    "request URI is not absolute: sent without a DPoP proof"
                );
                return inner
                    .call(req)
                    .await
                    .map(|r| r.map(ResponseBody::passed))
                    .map_err(Into::into);
            };
            let spare = replay(&req);
            // No proof, no request: a signing failure is the call's error.
            sign(&shared, &target, &mut req).await?;
            let response = inner.call(req).await.map_err(Into::into)?;
            let (response, asks) = inspect(&shared, &target, response).await;
            let Some(mut again) = spare.filter(|_| asks) else {
                return Ok(response);
            };
            tracing::debug!(target: crate::observe::CLIENT, "use_dpop_nonce: retrying once");
            sign(&shared, &target, &mut again).await?;
            poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = inner.call(again).await.map_err(Into::into)?;
            shared.remember(&target, response.headers());
            Ok(response.map(ResponseBody::passed))
        };
        ResponseFuture {
            inner: Box::pin(future),
        }
    }
}

/// A fresh proof for `req`, then, with [`sign_requests`](SignDpopLayer::sign_requests), its
/// RFC 9421 signature over its content, read from a copy of the body (bounded to 16 MiB); a body
/// that cannot be copied cannot be signed.
async fn sign<B>(shared: &Shared, target: &Target, req: &mut Request<B>) -> Result<(), BoxError>
where
    B: ReplayBody + Body,
    B::Error: Into<BoxError>,
{
    let method = req.method().clone();
    shared.sign(&method, target, req.headers_mut())?;
    if shared.signs_messages() {
        let content = match req.body().try_clone() {
            Some(copy) => Some(
                http_body_util::Limited::new(copy, 16 * 1024 * 1024)
                    .collect()
                    .await?
                    .to_bytes(),
            ),
            None => None,
        };
        let uri = req.uri().clone();
        shared.sign_message(&method, &uri, req.headers_mut(), content.as_deref())?;
    }
    Ok(())
}

/// A copy of `req` to send again, if its body is replayable.
fn replay<B: ReplayBody>(req: &Request<B>) -> Option<Request<B>> {
    let body = req.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// Remember the response's nonce; say whether it asks for a retry with it. A token endpoint's
/// 400 is read (at most 16 KiB) and handed back whole.
async fn inspect<ResBody: Body<Data = Bytes>>(
    shared: &Shared,
    target: &Target,
    response: Response<ResBody>,
) -> (Response<ResponseBody<ResBody>>, bool) {
    shared.remember(target, response.headers());
    let length = response.body().size_hint().exact();
    match wire::nonce_ask(response.status(), response.headers(), length) {
        NonceAsk::No => (response.map(ResponseBody::passed), false),
        NonceAsk::Yes => (response.map(ResponseBody::passed), true),
        NonceAsk::ReadBody => {
            let (parts, body) = response.into_parts();
            let body = ResponseBody::buffer(body).await;
            let asks = body.complete().is_some_and(wire::body_asks_nonce);
            (Response::from_parts(parts, body), asks)
        }
    }
}

/// The future of [`SignDpop`]: signing, the call, and at most one retry.
///
/// Boxed inside: the retry re-readies the inner service and may read an error body, a state
/// machine whose one allocation per request is small beside the proof's signature.
pub struct ResponseFuture<B: Body, E> {
    inner: BoxFuture<Result<Response<ResponseBody<B>>, E>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<B: Body, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl<B: Body, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use base64::Engine;
    use http::StatusCode;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::clock::ManualClock;
    use crate::jose::Algorithm;

    fn claims(proof: &str) -> Value {
        let payload = proof.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A server answering with `answers[i]` (status, extra headers, body) to call `i` (the last
    /// one again after the end), recording each call's `DPoP` header and body.
    #[allow(clippy::type_complexity)] // test fixture
    fn server(
        answers: Vec<(u16, Vec<(&'static str, &'static str)>, &'static str)>,
    ) -> (
        impl Service<
            Request<String>,
            Response = Response<String>,
            Error = Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + 'static,
        Arc<Mutex<Vec<(String, String)>>>,
    ) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let service = service_fn(move |req: Request<String>| {
            let mut log = log.lock().unwrap();
            let proof = req
                .headers()
                .get("dpop")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            log.push((proof, req.body().clone()));
            let (status, headers, body) = answers[(log.len() - 1).min(answers.len() - 1)].clone();
            let mut response = Response::new(body.to_owned());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .append(name, HeaderValue::from_static(value));
            }
            std::future::ready(Ok::<_, Infallible>(response))
        });
        (service, seen)
    }

    use http::HeaderValue;

    const ASK: (&str, &str) = ("www-authenticate", r#"Bearer, DPoP error="use_dpop_nonce""#);

    fn layer() -> SignDpopLayer {
        SignDpopLayer::new(ProofSigner::generate(Algorithm::ES256).unwrap())
            .with_clock(ManualClock::new(1_700_000_000))
    }

    fn get(url: &str, body: &str) -> Request<String> {
        Request::post(url)
            .header("authorization", "DPoP the.access.token")
            .header("dpop", "a stale proof")
            .body(body.to_owned())
            .unwrap()
    }

    /// One request with `body` to `url` through a new layer, to a [`server`] giving `answers`:
    /// the response, and the calls the server saw.
    #[allow(clippy::type_complexity)] // test fixture
    async fn exchange(
        answers: Vec<(u16, Vec<(&'static str, &'static str)>, &'static str)>,
        url: &str,
        body: &str,
    ) -> (Response<ResponseBody<String>>, Vec<(String, String)>) {
        let (inner, seen) = server(answers);
        let response = layer().layer(inner).oneshot(get(url, body)).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        (response, seen)
    }

    #[tokio::test]
    async fn retries_once_on_use_dpop_nonce_with_a_fresh_proof_and_the_nonce() {
        let (inner, seen) = server(vec![
            (401, vec![ASK, ("dpop-nonce", "n-1")], ""),
            (200, vec![("dpop-nonce", "n-2")], "ok"),
        ]);
        let layer = layer();
        let response = layer
            .layer(inner)
            .oneshot(get("https://user:pw@API.example.com/a/b?q=1#f", "the body"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let (first, second) = (claims(&seen[0].0), claims(&seen[1].0));
        assert_eq!(first["htu"], "https://api.example.com/a/b");
        assert_eq!(first["htm"], "POST");
        assert_eq!(first["iat"], 1_700_000_000);
        assert_eq!(
            first["ath"],
            crate::jose::thumbprint::ath("the.access.token")
        );
        assert!(first.get("nonce").is_none());
        assert_eq!(second["nonce"], "n-1");
        assert_eq!(second["ath"], first["ath"]);
        assert_ne!(second["jti"], first["jti"]);
        assert_eq!(
            (seen[0].1.as_str(), seen[1].1.as_str()),
            ("the body", "the body")
        );
        // The 200's nonce is the one remembered for the next request.
        assert_eq!(
            layer.nonces().get("https://api.example.com:443").as_deref(),
            Some("n-2")
        );
    }

    #[tokio::test]
    async fn the_next_request_carries_the_nonce_without_a_retry() {
        let (inner, seen) = server(vec![(200, vec![("dpop-nonce", "n-9")], "ok")]);
        let service = layer().layer(inner);
        for _ in 0..2 {
            let response = service
                .clone()
                .oneshot(get("http://127.0.0.1:8080/x", ""))
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(claims(&seen[0].0).get("nonce").is_none());
        assert_eq!(claims(&seen[1].0)["nonce"], "n-9");
    }

    #[tokio::test]
    async fn never_retries_twice() {
        let answers = vec![(401, vec![ASK, ("dpop-nonce", "n-1")], "")];
        let (response, seen) = exchange(answers, "https://api.example.com/", "").await;
        assert_eq!(response.status(), 401);
        assert_eq!(seen.len(), 2);
    }

    #[tokio::test]
    async fn no_retry_without_a_nonce_or_for_another_error() {
        let no_nonce = vec![(401, vec![ASK], "")];
        let other = vec![(
            401,
            vec![
                ("www-authenticate", r#"DPoP error="invalid_dpop_proof""#),
                ("dpop-nonce", "n"),
            ],
            "",
        )];
        for answers in [no_nonce, other] {
            let (response, seen) = exchange(answers, "https://api.example.com/", "").await;
            assert_eq!(response.status(), 401);
            assert_eq!(seen.len(), 1);
        }
    }

    #[tokio::test]
    async fn token_endpoint_400_is_retried_and_other_400s_come_back_whole() {
        let ask = r#"{"error":"use_dpop_nonce","error_description":"Authorization server requires nonce in DPoP proof"}"#;
        let answers = vec![
            (400, vec![("dpop-nonce", "as-1")], ask),
            (200, vec![], r#"{"access_token":"t"}"#),
        ];
        let token = "https://as.example.com/token";
        let (response, seen) = exchange(answers, token, "grant_type=x").await;
        assert_eq!(response.status(), 200);
        assert_eq!(claims(&seen[1].0)["nonce"], "as-1");

        let refusal = r#"{"error":"invalid_grant"}"#;
        let answers = vec![(400, vec![("dpop-nonce", "as-1")], refusal)];
        let (response, seen) = exchange(answers, token, "grant_type=x").await;
        assert_eq!(response.status(), 400);
        assert_eq!(seen.len(), 1);
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(refusal.len() as u64));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, refusal.as_bytes());
    }

    /// A body that cannot be sent twice.
    #[derive(Debug)]
    struct Streaming;

    impl ReplayBody for Streaming {
        fn try_clone(&self) -> Option<Self> {
            None
        }
    }

    impl Body for Streaming {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
            Poll::Ready(None)
        }
    }

    #[tokio::test]
    async fn a_body_that_cannot_be_replayed_is_not_retried() {
        let calls = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&calls);
        let inner = service_fn(move |_req: Request<Streaming>| {
            *counted.lock().unwrap() += 1;
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static(ASK.1));
            response
                .headers_mut()
                .insert("dpop-nonce", HeaderValue::from_static("n-1"));
            std::future::ready(Ok::<_, Infallible>(response))
        });
        let layer = layer();
        let request = Request::get("https://api.example.com/")
            .body(Streaming)
            .unwrap();
        let response = layer.layer(inner).oneshot(request).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(*calls.lock().unwrap(), 1);
        // The nonce is kept for the next request.
        assert_eq!(
            layer.nonces().get("https://api.example.com:443").as_deref(),
            Some("n-1")
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let layer = layer();
        let debug = format!("{layer:?}");
        assert!(debug.contains(layer.signer().thumbprint()), "{debug}");
        assert!(!debug.contains("\"d\"") && !debug.to_lowercase().contains("private"));
    }

    /// A proof that cannot be made fails the call with the signer's error, and the request is
    /// never sent (neither without a proof nor with a weak one).
    #[tokio::test]
    async fn signing_failure_is_the_call_error_and_nothing_is_sent() {
        let (inner, seen) = server(vec![(200, vec![], "ok")]);
        let layer = SignDpopLayer::new(ProofSigner::failing_for_tests());
        let error = layer
            .layer(inner)
            .oneshot(get("https://api.example.com/a", "body"))
            .await
            .unwrap_err();
        assert!(
            error
                .downcast_ref::<crate::dpop::signer::SignerError>()
                .is_some(),
            "{error}"
        );
        assert!(seen.lock().unwrap().is_empty(), "nothing sent");
    }
}
